"""What ``latcomp encode``/``decode``/``info`` write, and how: safe outputs, conventions, stored pixels.

Outputs are created exclusively without ``--force`` (race-free), a directory is
replaced as a whole, temp files vanish on SIGINT/SIGTERM and are cleaned up after a
``kill -9``, links and special files are never followed or replaced, and long names
work. ``-`` is stdin/stdout, the extension of OUT chooses the format, masks are binary
at any scale, lossy conversions warn. A lossless file is never much larger than the
raw bits (format version 2, stored pixels), and version 1 files are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import REPO, cli, digits, sharp_model, small_model  # noqa: F401
from PIL import Image

from latcomp import container, fileio
from latcomp.cli import main
from latcomp.codec import compress, decompress, read_header
from latcomp.errors import FormatError


def run(*args: str, stdin: bytes | None = None, timeout: float = 60, **popen: object) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter (bytes in and out)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "latcomp", *args], input=stdin, capture_output=True, env=env,
                          timeout=timeout, **popen)


def one_line_error(code: int, err: str) -> bool:
    return code != 0 and err.startswith("latcomp: error:") and err.count("\n") == 1


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".latcomp-"))


@pytest.fixture
def png(tmp_path, digits) -> Path:
    Image.fromarray(digits[0] * 255).save(tmp_path / "d0.png")
    return tmp_path / "d0.png"


# --------------------------------------------------------------------------- exclusive creation


def test_exclusive_creation_has_exactly_one_winner(tmp_path):
    """Two writers of the same new name, both past every check, publish at the same moment: one wins."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(content: bytes) -> None:
        def write(tmp: Path) -> None:
            tmp.write_bytes(content)
            barrier.wait()  # both temp files are complete; now both publish
        try:
            fileio.atomic_write(tmp_path / "same.lat", write, overwrite=False)
            outcomes.append("ok")
        except FileExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=writer, args=(bytes([i]) * 10,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["exists", "ok"]
    assert (tmp_path / "same.lat").read_bytes() in (bytes(10), bytes([1]) * 10) and temps(tmp_path) == []


def test_concurrent_encodes_to_the_same_name(tmp_path, png, small_model):
    for trial in range(2):
        out = tmp_path / f"same{trial}.lat"
        procs = [subprocess.Popen([sys.executable, "-m", "latcomp", "encode", str(png), "-o", str(out), "--model",
                                   str(small_model), "--seed", str(seed), "--quiet"], stderr=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
                 for seed in (1, 2)]
        codes = [p.wait(timeout=60) for p in procs]
        errors = [p.stderr.read().decode() for p in procs]
        assert sorted(codes) == [0, 1], errors
        assert "exists; pass --force" in "".join(errors)
        assert read_header(out.read_bytes()).seed in (1, 2)
    assert temps(tmp_path) == []


# --------------------------------------------------------------------------- directories


def test_decode_force_replaces_a_directory_as_a_whole(capsys, tmp_path, small_model, digits):
    big, small = tmp_path / "big.lat", tmp_path / "small.lat"
    big.write_bytes(compress(digits[:7], small_model, lossless=True, seed=1))
    small.write_bytes(compress(digits[10:13], small_model, lossless=True, seed=1))
    out = tmp_path / "out"
    assert cli(capsys, "decode", str(big), "-o", str(out), "--model", str(small_model))[0] == 0
    inode = out.stat().st_ino
    code, err = cli(capsys, "decode", str(small), "-o", str(out), "--model", str(small_model))
    assert one_line_error(code, err) and "--force" in err and len(list(out.iterdir())) == 7
    assert cli(capsys, "decode", str(small), "-o", str(out) + "/", "--model", str(small_model), "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "00002.png"]  # no stale 00003…
    assert out.stat().st_ino != inode  # a new directory took the name
    for i in range(3):
        assert np.array_equal(np.asarray(Image.open(out / f"{i:05d}.png")), digits[10 + i] * 255)
    (out / "notes.txt").write_text("mine")
    code, err = cli(capsys, "decode", str(big), "-o", str(out), "--model", str(small_model), "--force")
    assert one_line_error(code, err) and "notes.txt" in err and (out / "notes.txt").exists()
    assert temps(tmp_path) == []


def test_directory_outputs_without_renameat2(tmp_path, monkeypatch):
    """Where renameat2 is missing (not Linux, old kernels): mkdir claims a new name, two renames swap."""
    monkeypatch.setattr(fileio, "_renameat2", lambda *args: False)
    out = tmp_path / "out"
    fileio.atomic_write_dir(out, lambda d: (d / "a.png").write_bytes(b"a"))
    with pytest.raises(FileExistsError, match="--force"):
        fileio.atomic_write_dir(out, lambda d: (d / "b.png").write_bytes(b"b"))
    fileio.atomic_write_dir(out, lambda d: (d / "b.png").write_bytes(b"b"), overwrite=True)
    assert [p.name for p in out.iterdir()] == ["b.png"] and temps(tmp_path) == []


# --------------------------------------------------------------------------- signals and stale temp files

SLOW_WRITER = """
import signal, sys, time
from latcomp.fileio import atomic_write, atomic_write_stream, signals_as_exceptions
# Python turns SIGINT into KeyboardInterrupt only if SIGINT was not ignored when it started: a shell that starts
# a job in the background (pytest ... &) makes its children ignore SIGINT. Restore it, as the test means to.
signal.signal(signal.SIGINT, signal.default_int_handler)
def wait():
    print("writing", flush=True)
    time.sleep(60)
def write_named(tmp):
    tmp.write_bytes(b"partial")
    wait()
def write_stream(f):
    f.write(b"partial")
    f.flush()
    wait()
with signals_as_exceptions():
    if sys.argv[2] == "stream":
        atomic_write_stream(sys.argv[1], write_stream)
    else:
        atomic_write(sys.argv[1], write_named)
"""


def _start_slow_writer(target: Path, how: str = "named", sigint: object = signal.SIG_DFL) -> subprocess.Popen:
    """A process writing ``target`` slowly (``how``: a named temp file, or ``stream``: an unnamed one where
    Linux allows), started with SIGINT's disposition ``sigint`` (SIG_IGN: as a background job of a shell)."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target), how], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    assert proc.stdout.readline() == b"writing\n"
    assert len(temps(target.parent)) == (how == "named")
    return proc


@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["foreground", "background"])
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)])
def test_temp_files_are_removed_on_signals(tmp_path, sig, status, sigint):
    """Also when the suite runs as a background job (SIGINT ignored in its children unless restored)."""
    proc = _start_slow_writer(tmp_path / "out.lat", sigint=sigint)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == status
    assert temps(tmp_path) == [] and not (tmp_path / "out.lat").exists()


def test_kill_9_leaves_no_temp_file_of_a_stream(tmp_path):
    """The CLI's outputs (.lat, .png, .npz) are written to a file without a name (O_TMPFILE): a kill -9 while
    writing leaves nothing at all, not even a temp file for the next run to remove."""
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE on this system")
    proc = _start_slow_writer(tmp_path / "out.lat", "stream")
    proc.kill()
    proc.wait(timeout=30)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named temp file"])
def test_streams_are_atomic_exclusive_and_keep_the_umask(tmp_path, monkeypatch, unnamed):
    if not unnamed:
        monkeypatch.setattr(fileio, "_unnamed_file", lambda directory: None)
    out = tmp_path / "a.bin"
    fileio.atomic_write_stream(out, lambda f: f.write(b"one"), overwrite=False)
    with pytest.raises(FileExistsError, match="--force"):
        fileio.atomic_write_stream(out, lambda f: f.write(b"two"), overwrite=False)
    fileio.atomic_write_stream(out, lambda f: f.write(b"three"))
    mask = os.umask(0)
    os.umask(mask)
    assert out.read_bytes() == b"three" and out.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_an_unnamed_file_that_cannot_be_linked_is_copied(tmp_path, monkeypatch):
    """Where the file system refuses to link an O_TMPFILE file, its content goes through a named temp file."""
    monkeypatch.setattr(fileio, "_link_unnamed", lambda fd, path: False)
    fileio.atomic_write_stream(tmp_path / "a.bin", lambda f: f.write(b"x" * 100_000))
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 100_000 and temps(tmp_path) == []


def test_write_errors_name_the_output_not_the_temp_file(capsys, tmp_path, png, small_model, monkeypatch):
    """No space left on device named no path; a directory that refuses new files named the temp file."""
    import errno

    out = tmp_path / "out.lat"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / ".latcomp-1-abcdef.tmp"))

    for target, fake in ((fileio.os, "fsync"), (fileio, "_unnamed_file"), (fileio.tempfile, "mkstemp")):
        with monkeypatch.context() as patch:
            patch.setattr(target, fake, full if fake == "fsync" else refused)
            if fake == "mkstemp":
                patch.setattr(fileio, "_unnamed_file", lambda directory: None)
            code, err = cli(capsys, "encode", str(png), "-o", str(out), "--model", str(small_model))
        assert one_line_error(code, err) and f"{out}: " in err and ".latcomp-" not in err, (fake, err)
        assert not out.exists() and temps(tmp_path) == []


def test_stale_temp_files_of_killed_runs_are_removed_by_the_next_run(capsys, tmp_path, png, small_model):
    proc = _start_slow_writer(tmp_path / "out.lat")
    proc.kill()
    proc.wait(timeout=30)
    stale = temps(tmp_path)
    assert len(stale) == 1
    (tmp_path / f".latcomp-{os.getpid()}-keepmine.tmp").write_bytes(b"")  # a running process's: kept
    assert cli(capsys, "encode", str(png), "-o", str(tmp_path / "a.lat"), "--model", str(small_model))[0] == 0
    assert temps(tmp_path) == [f".latcomp-{os.getpid()}-keepmine.tmp"]


# --------------------------------------------------------------------------- links, special files, long names


def test_force_never_follows_or_replaces_links_or_special_files(capsys, tmp_path, png, small_model):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link.lat").symlink_to(victim)
    (tmp_path / "dirlink").symlink_to(tmp_path / "realdir", target_is_directory=True)
    (tmp_path / "realdir").mkdir()
    os.mkfifo(tmp_path / "fifo.lat")
    lat = tmp_path / "a.lat"
    lat.write_bytes(compress(np.zeros((2, 28, 28), np.uint8), small_model, seed=1))
    cases = [("encode", str(png), "-o", str(tmp_path / "link.lat")),
             ("encode", str(png), "-o", str(tmp_path / "fifo.lat")),
             ("encode", str(png), "-o", "/dev/null"),
             ("decode", str(lat), "-o", str(tmp_path / "dirlink")),
             ("decode", str(lat), "-o", str(tmp_path / "dirlink") + "/")]
    for args in cases:
        start = time.perf_counter()
        code, err = cli(capsys, *args, "--force", "--model", str(small_model))
        assert time.perf_counter() - start < 5 and one_line_error(code, err), (args, err)
        assert "symbolic link" in err or "FIFO" in err or "device" in err, err
    assert victim.read_text() == "precious" and (tmp_path / "link.lat").is_symlink()
    assert (tmp_path / "dirlink").is_symlink() and list((tmp_path / "realdir").iterdir()) == []


def test_long_output_names_work_or_fail_in_one_line(capsys, tmp_path, png, small_model):
    for name in ("n" * 250 + ".lat", "n" * 251 + ".png"):  # 254 and 255 bytes: the longest names
        if name.endswith(".lat"):
            code, err = cli(capsys, "encode", str(png), "-o", str(tmp_path / name), "--model", str(small_model))
            lat = tmp_path / name
        else:
            code, err = cli(capsys, "decode", str(lat), "-o", str(tmp_path / name), "--model", str(small_model))
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 0
    code, err = cli(capsys, "encode", str(png), "-o", str(tmp_path / ("n" * 256 + ".lat")), "--model",
                    str(small_model))
    assert one_line_error(code, err) and "too long" in err.lower()
    assert temps(tmp_path) == []


# --------------------------------------------------------------------------- conventions


def test_dash_is_stdin_and_stdout(tmp_path, png, small_model, digits):
    proc = run("encode", "-", "-o", "-", "--lossless", "--model", str(small_model), stdin=png.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert b"standard output: 1 image, lossless" in proc.stderr
    lat = proc.stdout
    assert np.array_equal(decompress(lat, small_model), digits[0])
    proc = run("decode", "-", "-o", "-", "--model", str(small_model), stdin=lat)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"\x89PNG") and b"standard output: 1 image" in proc.stderr
    (tmp_path / "out.png").write_bytes(proc.stdout)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), digits[0] * 255)
    proc = run("info", "-", stdin=lat)
    assert proc.returncode == 0 and b"file:           standard input" in proc.stdout
    batch = compress(digits[:2], small_model, seed=1)
    proc = run("decode", "-", "-o", "-", "--model", str(small_model), stdin=batch)
    assert proc.returncode == 1 and b"2 images" in proc.stderr and proc.stdout == b""


def test_the_extension_of_out_chooses_the_format(capsys, tmp_path, small_model, digits):
    lat = tmp_path / "one.lat"
    lat.write_bytes(compress(digits[0], small_model, lossless=True, seed=1))
    code, err = cli(capsys, "decode", str(lat), "-o", str(tmp_path / "out.jpg"), "--model", str(small_model))
    assert one_line_error(code, err) and ".jpg" in err and not (tmp_path / "out.jpg").exists()
    assert cli(capsys, "decode", str(lat), "-o", str(tmp_path / "dir") + "/", "--model", str(small_model))[0] == 0
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["00000.png"]  # a trailing slash: a directory
    assert cli(capsys, "decode", str(lat), "-o", str(tmp_path / "one.npz"), "--model", str(small_model))[0] == 0
    assert np.array_equal(np.load(tmp_path / "one.npz")["x"], digits[0])
    assert cli(capsys, "decode", str(lat), "-o", str(tmp_path / "one.png"), "--model", str(small_model))[0] == 0


def test_info_prints_the_header_without_the_model(capsys, tmp_path, small_model, digits):
    lat = tmp_path / "b.lat"
    data = compress(digits[:4], small_model, lossless=True, seed=9)
    lat.write_bytes(data)
    main(["info", str(lat)])  # no --model: info never loads one
    out = capsys.readouterr().out
    header = read_header(data)
    for text in (f"format version: {header.version}", f"model id:       {header.model_id.hex()}",
                 "lattice:        z (rectangular)", "mode:           lossless", "images:         4 (layout batch)",
                 "image size:     28×28, 1 channel", f"size:           {len(data)} bytes (header "
                 f"{header.header_bytes}, payload {header.payload_bytes})",
                 f"bits per pixel: {8 * len(data) / (4 * 784):.4f}"):
        assert text in out, (text, out)
    lat.write_bytes(data[:-1])
    code, err = cli(capsys, "info", str(lat))
    assert one_line_error(code, err) and "truncated" in err


def test_masks_are_binary_at_any_scale(capsys, tmp_path, small_model, digits):
    x = digits[0]
    inputs = {"mask01.png": lambda p: Image.fromarray(x).save(p),
              "mask255.png": lambda p: Image.fromarray(x * 255).save(p),
              "mask16.png": lambda p: Image.fromarray(x.astype(np.uint16) * 65535).save(p),
              "bits.png": lambda p: Image.fromarray(x.astype(bool)).save(p),
              "a01.npz": lambda p: np.savez(p, x=x[None]), "a255.npz": lambda p: np.savez(p, x=x[None] * 255),
              "f255.npz": lambda p: np.savez(p, x=x[None] * 255.0), "b.npy": lambda p: np.save(p, x[None] > 0)}
    for name, save in inputs.items():
        save(tmp_path / name)
        out = tmp_path / (name + ".lat")
        code, err = cli(capsys, "encode", str(tmp_path / name), "-o", str(out), "--lossless", "--model",
                        str(small_model))
        assert code == 0 and "warning" not in err, (name, err)
        assert np.array_equal(decompress(out.read_bytes(), small_model).reshape(28, 28), x), name


def test_every_lossy_conversion_warns(capsys, tmp_path, small_model, digits):
    x = digits[0] * 255
    alpha = np.where(np.arange(28)[:, None] < 14, 255, 100).astype(np.uint8) * np.ones((1, 28), np.uint8)
    colour = Image.fromarray(np.stack([x, x // 2, 255 - x], axis=-1))
    cases = {
        "alpha.png": (Image.fromarray(np.stack([x, alpha], axis=-1), "LA"), "alpha channel dropped"),
        "big.png": (Image.fromarray(np.kron(x, np.ones((2, 2), np.uint8))), "resized from 56×56 to 28×28"),
        "colour.png": (colour, "colours converted to grayscale"),
        "palette.png": (colour.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "palette colours"),
    }
    for name, (image, warning) in cases.items():
        image.save(tmp_path / name)
        code, err = cli(capsys, "encode", str(tmp_path / name), "-o", str(tmp_path / (name + ".lat")), "--model",
                        str(small_model))
        assert one_line_error(code, err) and "--resize" in err, (name, err)  # lossy: not without --resize
        code, err = cli(capsys, "encode", str(tmp_path / name), "-o", str(tmp_path / (name + ".lat")), "--resize",
                        "--model", str(small_model), "--quiet")
        lines = err.splitlines()
        assert code == 0 and lines and all(line.startswith("latcomp: warning: ") for line in lines), (name, err)
        assert any(warning in line for line in lines), (name, err)
    lossless = {"opaque.png": Image.fromarray(np.stack([x, np.full_like(x, 255)], axis=-1), "LA"),
                "gray-rgb.png": Image.fromarray(np.stack([x, x, x], axis=-1)),
                "gray-palette.png": Image.fromarray(x).convert("P")}
    for name, image in lossless.items():  # exact conversions: silent, no --resize needed
        image.save(tmp_path / name)
        code, err = cli(capsys, "encode", str(tmp_path / name), "-o", str(tmp_path / (name + ".lat")), "--lossless",
                        "--threshold", "0.5", "--model", str(small_model), "--quiet")
        assert code == 0 and err == "", (name, err)
        assert np.array_equal(decompress((tmp_path / (name + ".lat")).read_bytes(), small_model), digits[0])


# --------------------------------------------------------------------------- stored pixels and versions


def test_lossless_is_never_much_larger_than_the_raw_bits(sharp_model, monkeypatch):
    """Pixels the model predicts badly are stored raw (format version 2, flag bit 3): the file is at most
    the raw bits plus the lattice point and a header; a reader that knows no such flag refuses it."""
    rng = np.random.default_rng(0)
    for x in (np.ones((28, 28), np.uint8), (rng.random((5, 28, 28)) < 0.5).astype(np.uint8)):
        data = compress(x, sharp_model, lossless=True, seed=3)
        header = read_header(data)
        assert header.stored and header.version == 2 and data[4] == 2 and data[5] & 0x08
        assert header.lattice == "z*8"
        raw = -(-x.size // 8)
        lossy = compress(x, sharp_model, seed=3)  # the same lattice point: the same stream
        assert len(data) - len(lossy) - raw <= 1 + len("z*8") + 2  # the spec, a longer payload length
        assert np.array_equal(decompress(data, sharp_model), x)
        monkeypatch.setattr(container, "VERSIONS", (1,))  # a reader of version 1 only
        with pytest.raises(FormatError, match="unsupported format version 2"):
            decompress(data, sharp_model)
        monkeypatch.setattr(container, "VERSIONS", (1, 2))
        monkeypatch.setattr(container, "FLAG_STORED", 0)  # a reader of version 2 without the stored flag
        with pytest.raises(FormatError, match="unknown flags"):
            decompress(data, sharp_model)
        monkeypatch.undo()


#: Version 1 files made by latcomp before stored pixels existed (the shipped model, seed 7): the same
#: bytes are written today, and they decode to the same images.
GOLDEN_V1 = {False: ("c5a3ac13119049dde4a91b4d5703e4dd8e074263cd19fd784db1461075d8025e",
                     "235b79edc645e0784617b1e9c54a461ad9c2eb2412e31ddce3abefeec544fc9b"),
             True: ("de6527072f2450130c2dc40e6096bf01998ecc9a8c4405fc29d716a17c463f67",
                    "6843a6fa53687ed9f63a125ce494dcb125f4da03582546b9a16869d0cc78ded7")}


@pytest.mark.parametrize("lossless", [False, True])
def test_version_1_files_are_unchanged(lossless):
    from latcomp.modelfile import DEFAULT_MODEL

    if not (Path(DEFAULT_MODEL) / "model.safetensors").exists():
        pytest.skip("no default model")
    x = np.zeros((3, 28, 28), np.uint8)
    x[1, 5:23, 13:16] = 1
    x[2, 6:22, 8:20] = 1
    x[2, 9:19, 11:17] = 0
    data = compress(x, DEFAULT_MODEL, lossless=lossless, seed=7)
    assert data[4] == 1
    out = decompress(data, DEFAULT_MODEL)
    assert (hashlib.sha256(data).hexdigest(), hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()) == \
        GOLDEN_V1[lossless]


# --------------------------------------------------------------------------- progress on a terminal

PROGRESS_JOB = """
import sys, time
from latcomp.cli import _run_with_progress
def work(report):
    time.sleep(float(sys.argv[1]))
    if sys.argv[2] == "fail":
        raise SystemExit("latcomp: error: it failed")
_run_with_progress("encode", sys.argv[2] == "quiet", work)
print("done", file=sys.stderr)
"""


def _on_a_terminal(*args: str) -> bytes:
    """What ``python -c PROGRESS_JOB ARGS`` shows on a terminal (a pseudo-terminal: stdout and stderr)."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", PROGRESS_JOB, *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"})
    os.close(slave)
    shown = b""
    while proc.poll() is None or select.select([master], [], [], 0.1)[0]:
        if select.select([master], [], [], 0.1)[0]:
            try:
                shown += os.read(master, 1 << 16)
            except OSError:  # the terminal closed
                break
    proc.wait(timeout=30)
    os.close(master)
    return shown


def test_progress_shows_on_a_terminal_for_jobs_over_a_second():
    slow = _on_a_terminal("1.6", "ok")
    assert b"encode" in slow and b"0:00:01" in slow and slow.endswith(b"done\r\n"), slow
    assert _on_a_terminal("0.1", "ok") == b"done\r\n"  # a quick job: nothing
    assert _on_a_terminal("1.6", "quiet") == b"done\r\n"
    failed = _on_a_terminal("1.6", "fail")
    assert b"encode" in failed and failed.endswith(b"\x1b[2Klatcomp: error: it failed\r\n"), failed  # no blank line


def test_every_encode_and_decode_reports_progress(capsys, tmp_path, png, small_model, monkeypatch):
    """The CLI runs each job (digits and photos, encode and decode) through _run_with_progress."""
    from codec_fixtures import make_photo_model

    from latcomp import cli as cli_module

    jobs: list[str] = []
    run = cli_module._run_with_progress
    monkeypatch.setattr(cli_module, "_run_with_progress", lambda label, quiet, work: jobs.append(label) or
                        run(label, quiet, work))
    photo = make_photo_model(tmp_path / "photo")
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(tmp_path / "p.png")
    for source, model in ((png, small_model), (tmp_path / "p.png", photo)):
        assert cli(capsys, "encode", str(source), "-o", str(tmp_path / "x.lat"), "--model", str(model),
                   "--force")[0] == 0
        assert cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "x.png"), "--model", str(model),
                   "--force")[0] == 0
    assert jobs == ["encode", "decode"] * 2


def test_a_failed_large_decode_prints_only_its_error_line(capsys, tmp_path, small_model):
    """A decode of 8192 images or more printed an empty line (the progress bar's, off a terminal) before its error."""
    import dataclasses

    header, _ = container.unpack(compress(np.zeros((1, 28, 28), np.uint8), small_model, seed=1))
    payload = bytes(range(1, 256)) * 8
    lat = tmp_path / "many.lat"
    lat.write_bytes(container.pack(dataclasses.replace(header, count=10_000, layout="batch"), payload))
    code, err = cli(capsys, "decode", str(lat), "-o", str(tmp_path / "many.npz"), "--model", str(small_model))
    assert one_line_error(code, err), repr(err)
