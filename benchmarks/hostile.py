"""Hostile-input benchmark: what decoding costs when a file lies, and what a genuine 1 MiB file costs.

Run ``python -m benchmarks.hostile`` (``--help`` for options). For each case it measures the
wall time of one untraced decode and, in a second decode, the peak memory traced by
``tracemalloc`` (numpy's arrays included):

* ``random payload, lossless`` / ``random payload, lossy``: 1 MiB of random payload bytes
  under a valid header of the shipped default model that claims the most images allowed
  (``MAX_PIXELS // 784``);
* ``genuine lossy file, CLI`` / ``genuine lossless file, CLI``: a genuine file of at most 1 MiB
  (the MNIST test digits, repeated) decoded as ``latcomp decode FILE -o OUT.npz`` does
  (in-process, writing the .npz);

each of these four files also by ``latcomp decode FILE -o OUT.npz`` in a fresh interpreter:
its wall time and maximum resident set size (what a user of the command sees);
the hostile and everyday input images (:func:`hostile_images`: a 304 KB PNG of
50000×50000 pixels, images over and at the pixel limit, animations, EXIF orientation,
48-bit RGB, a small gray photo, an output that is the input), each given to
``latcomp encode`` in a fresh interpreter: what it printed (one error line, warnings,
a traceback), its wall time and maximum resident set size;
and, in this process:

* the four bombs of ``tests/test_hostile_inputs.py``, with the same kind of model (8
  dimensions whose lattice points cost ~2·10^-5 bits, which makes count bombs possible);
* the hostile files of every container version (:mod:`benchmarks.hostile_files`: photo files of many
  1×1 images, a photo header of 2^24 sizes, Λ24 digit and text files of random payloads) and genuine
  files of every kind of shipped model, each decoded in a fresh interpreter (``--code DIR``: by the code
  at DIR, e.g. a worktree of the commit before a change; ``--cases REGEX`` picks some): time, maximum
  RSS, and the rule "no more than a genuine file of the same size with the most expensive model, and
  never more than 500 MB";
* the fuzz run (:mod:`benchmarks.hostile_fuzz`): seeded structure-aware mutants of small genuine
  files of container versions 1–4 (Z, E8 and Λ24 lattices; factorized and hyperprior photos; text),
  their CRCs recomputed, each decoded under ``tracemalloc``: outcomes by file and by kind of mutation,
  undetected changes, bugs, and the worst time and memory of one case;

and writes ``docs/results/hostile.json`` and ``hostile.md`` (with the command and the
machine). ``--parts`` runs some of the parts (digits, files, images, fuzz); ``--baseline FILE``
(repeatable) adds the numbers of earlier runs' JSON (e.g. of the code before a change) beside the
new ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import io
import json
import os
import re
import shlex
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.codec import MAX_PIXELS, compress, decompress, load_model
from latcomp.container import pack, unpack
from latcomp.data import load_dataset
from latcomp.measure.results import machine_info, write_results
from latcomp.modelfile import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
#: The memory ceiling for any hostile file (MB).
CEILING_MB = 500
#: The largest count a header may claim for 28×28 images.
MOST = MAX_PIXELS // 784


def outcome(work: Callable[..., Any], *args: Any) -> str:
    """``"ok"`` if ``work(*args)`` returns, else the name of the exception it raised."""
    try:
        work(*args)
    except Exception as exc:  # noqa: BLE001 - reported, not handled
        return type(exc).__name__
    return "ok"


def measure(work: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """The outcome and wall seconds of an untraced ``work(*args)``, and the traced peak (MiB) of a second call."""
    gc.collect()
    start = time.perf_counter()
    result = outcome(work, *args)
    seconds = time.perf_counter() - start
    gc.collect()
    tracemalloc.start()
    try:
        traced = outcome(work, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert traced == result, (result, traced)
    return {"outcome": result, "seconds": seconds, "peak_mib": peak / MIB}


def random_payload(size: int, seed: int = 0) -> bytes:
    """``size`` random bytes that are a well-formed payload (an ANS stream never ends in a zero byte)."""
    payload = bytearray(np.random.default_rng(seed).bytes(size))
    payload[-1] |= 1
    return bytes(payload)


def claiming(data: bytes, count: int, payload: bytes | None = None, lossless: bool | None = None) -> bytes:
    """``data`` re-packed (every checksum valid) claiming ``count`` images, with another payload or mode if given."""
    header, original = unpack(data)
    header = dataclasses.replace(header, count=count, layout="batch",
                                 lossless=header.lossless if lossless is None else lossless)
    return pack(header, original if payload is None else payload)


def peaked_model(directory: Path) -> Path:
    """The model of the bombs of tests/test_hostile_inputs.py: 8 dimensions, Δ = 1, b = e^-6 (torch, once)."""
    import torch

    from latcomp.modelfile import save_model
    from latcomp.nn.models import LatticeVAE

    torch.manual_seed(4)
    model = LatticeVAE(hidden=32, latent=8)
    with torch.no_grad():
        model.log_delta.zero_()
        model.log_b.fill_(-6.0)
    save_model(model, directory)
    return directory


def bombs(model: Path) -> dict[str, bytes]:
    """The decompression bombs of tests/test_hostile_inputs.py (valid checksums, impossible counts)."""
    lossy = compress(np.zeros((1, 28, 28), np.uint8), model, seed=1)
    lossless = compress(np.eye(28, dtype=np.uint8), model, lossless=True, seed=1)
    return {"2^24 images, 40-byte payload": claiming(lossy, 1 << 24, random_payload(40)),
            "the most images allowed, 32 random bytes, lossless": claiming(lossy, MOST, random_payload(32), True),
            "a real lossless digit claiming the most images": claiming(lossless, MOST),
            "a real lossy digit claiming the most images": claiming(lossy, MOST)}


def genuine_file(model: Any, digits: np.ndarray, lossless: bool, limit: int = MIB) -> bytes:
    """A file of at most ``limit`` bytes holding as many of ``digits`` (repeated) as fit."""
    per_digit = len(compress(digits, model, lossless=lossless, seed=0)) / len(digits)
    count = int(limit / per_digit * 0.995)
    while True:
        data = compress(np.resize(digits, (count, digits.shape[1])), model, lossless=lossless, seed=0)
        if len(data) <= limit:
            return data
        count = int(count * limit / len(data) * 0.999)


def code_version(code: Path = REPO) -> str:
    """``git describe --always --dirty`` of the measured checkout ("unknown" outside git)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=code, capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: ``latcomp ARGS``, then the process's peak resident set size in kB: VmHWM of /proc/self/status (Linux), which
#: starts afresh at exec (``ru_maxrss`` keeps the high-water mark of the process that forked it).
_CLI_WITH_RSS = ("import sys\nfrom latcomp.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
                 "    hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
                 "    print('MAXRSS', hwm[0], file=sys.stderr)\n")


def cli_process(*args: str) -> dict[str, Any]:
    """Wall seconds and peak resident memory (MiB) of ``latcomp ARGS`` in a fresh interpreter (start-up included),
    its exit status and what it printed on standard error."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CLI_WITH_RSS, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    rss = re.search(r"^MAXRSS (\d+)\n", proc.stderr, re.MULTILINE)
    stderr = proc.stderr[:rss.start()] + proc.stderr[rss.end():]  # a traceback comes after the finally clause
    return {"process_seconds": seconds, "process_max_rss_mib": int(rss.group(1)) / 1024,
            "returncode": proc.returncode, "stderr": stderr}


def printed(returncode: int, stderr: str) -> str:
    """What a CLI run showed its user: ``ok``, ``error``, ``traceback``, with its warnings and other lines counted."""
    lines = stderr.splitlines()
    if any(line.startswith("Traceback") for line in lines):
        return f"traceback ({len(lines)} lines)"
    errors = sum(line.startswith("latcomp: error:") for line in lines)
    warns = sum(line.startswith("latcomp: warning:") for line in lines)
    other = len(lines) - errors - warns
    parts = ["ok" if returncode == 0 else "error" if errors == 1 else f"exit {returncode}"]
    parts += [f"{warns} warning{'s' * (warns != 1)}"] * bool(warns) + [f"{other} other lines"] * bool(other)
    return ", ".join(parts)



def megabyte_cases(m: Any, data_dir: str | Path | None, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The 1 MiB files: random payloads claiming the most images, and genuine lossy and lossless files."""
    from latcomp.cli import main as cli_main

    cases: dict[str, dict[str, Any]] = {}
    files: dict[str, Path] = {}
    lossy = compress(np.zeros((1, 28, 28), np.uint8), m, seed=1)
    for mode, lossless in (("lossless", True), ("lossy", False)):
        name = f"random payload, {mode}"
        log(name)
        data = claiming(lossy, MOST, random_payload(MIB - 100), lossless)
        files[name] = tmp / f"random-{mode}.lat"
        files[name].write_bytes(data)
        cases[name] = {"file_bytes": len(data), "claimed_images": MOST, **measure(decompress, data, m)}
    digits = load_dataset("binarized-mnist", "test", data_dir)
    for mode, lossless in (("lossy", False), ("lossless", True)):
        name = f"genuine {mode} file, CLI"
        log(name)
        start = time.perf_counter()
        data = genuine_file(m, digits, lossless)
        made = time.perf_counter() - start
        files[name] = tmp / f"genuine-{mode}.lat"
        files[name].write_bytes(data)
        count = unpack(data)[0].count
        content = {"pixels, uint8": count * 784 / MIB, "lattice coordinates, int64": count * m.latent.dim * 8 / MIB}
        cases[name] = {"file_bytes": len(data), "images": count, "seconds_to_make_it": made, "content_mib": content,
                       **measure(cli_main, ["decode", str(files[name]), "-o", str(tmp / "out.npz"), "--quiet",
                                            "--force"])}
    for name, path in files.items():
        log(f"{name}: a fresh process")
        run = cli_process("decode", str(path), "-o", str(tmp / "out.npz"), "--quiet", "--force", "--model",
                          str(m.directory))
        cases[name].update({key: run[key] for key in ("process_seconds", "process_max_rss_mib")})
    return cases


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_48bit(pixels: np.ndarray) -> bytes:
    """A PNG of 16 bits per sample, RGB (48-bit; Pillow writes none), of (H, W, 3) uint16 pixels."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def photo_pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour pattern with noise, (height, width, 3) uint8: a stand-in for a photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = 120 + 60 * np.sin(yy / 5.0)[..., None] * np.cos(xx / 9.0)[..., None] * np.array([1.0, -0.5, 0.3])
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def encoded(image: Any, format: str, **options: Any) -> bytes:
    """``image`` (a Pillow image) saved in ``format`` to bytes."""
    buf = io.BytesIO()
    image.save(buf, format=format, **options)
    return buf.getvalue()


def frames_file(format: str, count: int = 3, size: tuple[int, int] = (40, 30)) -> bytes:
    """An animation (GIF, APNG) or multi-page file (TIFF) of ``count`` different frames."""
    from PIL import Image

    frames = [Image.fromarray(photo_pixels(size[1], size[0], seed)) for seed in range(count)]
    if format == "GIF":
        frames = [f.convert("P") for f in frames]
    return encoded(frames[0], format, save_all=True, append_images=frames[1:])


def exif_rotated_jpeg(width: int = 48, height: int = 32, orientation: int = 6) -> bytes:
    """A JPEG of width × height pixels whose EXIF says: rotate it for display (6: 90° clockwise)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(Image.fromarray(photo_pixels(height, width)), "JPEG", exif=exif, quality=95)


def zeros_zlib(size: int, block: int = 1 << 22) -> bytes:
    """The zlib stream of ``size`` zero bytes, made fast: one block compressed after a full flush (which resets
    the dictionary) gives the same bytes every time, so it is compressed once and repeated."""
    stream = zlib.compressobj(9)
    count, rest = divmod(size, block)
    head = stream.compress(bytes(block)) + stream.flush(zlib.Z_FULL_FLUSH) if count else b""
    repeated = stream.compress(bytes(block)) + stream.flush(zlib.Z_FULL_FLUSH) if count > 1 else b""
    tail = stream.compress(bytes(rest)) + stream.flush()
    if not count:
        return tail
    adler = (size % 65521) << 16 | 1  # Adler-32 of zeros: A stays 1, B adds it once per byte
    return head + repeated * (count - 1) + tail[:-4] + struct.pack(">I", adler)


def blank_1bit_png(width: int, height: int) -> bytes:
    """An all-black 1-bit PNG: a few bytes per megapixel, whatever its claimed size (50000² in 304 KB)."""
    idat = zeros_zlib(height * (1 + (width + 7) // 8))  # each row: filter byte 0, then black pixels
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def hostile_images() -> dict[str, tuple[str, bytes]]:
    """The hostile input images: case name → (file name, bytes), made here (small files)."""
    from PIL import Image

    gray = photo_pixels(28, 28)[..., 0]
    return {"50000×50000 1-bit PNG (a decompression bomb)": ("bomb.png", blank_1bit_png(50000, 50000)),
            "10000×10000 1-bit PNG (over the pixel limit)": ("big.png", blank_1bit_png(10000, 10000)),
            "8192×4096 1-bit PNG (at the pixel limit)": ("limit.png", blank_1bit_png(8192, 4096)),
            "animated GIF, 3 frames": ("anim.gif", frames_file("GIF")),
            "APNG, 3 frames": ("anim.png", frames_file("PNG")),
            "TIFF, 3 pages": ("pages.tif", frames_file("TIFF")),
            "JPEG, EXIF orientation 6 (rotate 90°)": ("rotated.jpg", exif_rotated_jpeg()),
            "48-bit RGB PNG": ("rgb48.png", png_48bit(photo_pixels(32, 48).astype(np.uint16) * 257 + 3)),
            "28×28 gray photo": ("gray28.png", encoded(Image.fromarray(gray), "PNG"))}


def _decoded_note(lat: Path, tmp: Path) -> str:
    """How the encoded file of an image case decodes: its format version and the decoded image's size and mode."""
    from PIL import Image

    if not lat.is_file():
        return "no file"
    out = tmp / "decoded.png"
    run = cli_process("decode", str(lat), "-o", str(out), "--force", "--quiet")
    if run["returncode"] != 0:
        return f"decode: {printed(run['returncode'], run['stderr'])}"
    with Image.open(out) as img:
        return f"format {unpack(lat.read_bytes())[0].version}, decodes to {img.size[0]}×{img.size[1]} {img.mode}"


def image_cases(tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """``latcomp encode`` of each :func:`hostile_images` file (and of a photo onto itself) in a fresh interpreter."""
    from PIL import Image

    cases: dict[str, Any] = {}
    for name, (file_name, data) in hostile_images().items():
        log(name)
        path, lat = tmp / file_name, tmp / (file_name + ".lat")
        path.write_bytes(data)
        lat.unlink(missing_ok=True)
        run = cli_process("encode", str(path), "-o", str(lat), "--quiet")
        cases[name] = {"file_bytes": len(data), "outcome": printed(run["returncode"], run["stderr"]),
                       "first_line": (run["stderr"].splitlines() or [""])[0][:200],
                       "decoded": _decoded_note(lat, tmp), **run}
        del cases[name]["stderr"], cases[name]["returncode"]
    log("a photo encoded onto itself")
    source = tmp / "self.png"
    source.write_bytes(encoded(Image.fromarray(photo_pixels(32, 48)), "PNG"))
    before = source.read_bytes()
    run = cli_process("encode", str(source), "-o", str(source), "--force", "--quiet")
    cases["encode x.png -o x.png --force"] = {
        "file_bytes": len(before), "outcome": printed(run["returncode"], run["stderr"]),
        "first_line": (run["stderr"].splitlines() or [""])[0][:200],
        "decoded": "source kept" if source.read_bytes() == before else "source replaced",
        "process_seconds": run["process_seconds"], "process_max_rss_mib": run["process_max_rss_mib"]}
    return cases


def count_bombs(tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The bombs of tests/test_hostile_inputs.py, decoded in this process (:func:`measure`)."""
    log("bombs of tests/test_hostile_inputs.py")
    peaked = load_model(peaked_model(tmp / "peaked"))
    return {name: {"file_bytes": len(bomb), **measure(decompress, bomb, peaked)}
            for name, bomb in bombs(peaked.directory).items()}


def file_cases(data_dir: Path, code: Path, pattern: str, tmp: Path, log: Callable[[str], None], timeout: float = 900
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hostile and genuine files of :mod:`benchmarks.hostile_files` whose names match ``pattern``, each
    decoded by the code at ``code`` in a fresh interpreter (stopped after ``timeout`` seconds): (hostile
    cases, genuine cases)."""
    from benchmarks.hostile_files import bombs as file_bombs
    from benchmarks.hostile_files import decode_process, genuine_files

    def want(name: str) -> bool:
        return re.search(pattern, name) is not None

    hostile: dict[str, Any] = {}
    for name, (kind, model, data) in file_bombs(REPO, log, want).items():
        log(f"{name}: a fresh process")
        path = tmp / "bomb.lat"
        path.write_bytes(data)
        hostile[name] = {"kind": kind, "file_bytes": len(data), **decode_process(kind, model, path, code, timeout)}
    genuine: dict[str, Any] = {}
    for name, (kind, model, data, rows) in genuine_files(REPO, data_dir, log, want).items():
        log(f"{name}: a fresh process")
        path = tmp / "genuine.lat"
        path.write_bytes(data)
        genuine[name] = {"kind": kind, "file_bytes": len(data), "rows": rows,
                         **decode_process(kind, model, path, code, timeout)}
    return hostile, genuine


#: The parts of the benchmark (``--parts``).
PARTS = ("digits", "files", "images", "fuzz")


def run_benchmark(model: str | Path = DEFAULT_MODEL, data_dir: str | Path | None = None, fuzz_cases: int = 400,
                  parts: tuple[str, ...] = PARTS, code: Path = REPO, cases: str = "", timeout: float = 900,
                  fuzz_shards: int = 1, fuzz_trace: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure the cases of the module docstring of the chosen ``parts``; a JSON-ready dict."""
    from benchmarks.hostile_fuzz import corpus, run_fuzz_sharded

    m = load_model(model)
    res: dict[str, Any] = {"cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if "digits" in parts:
            res["cases"] = {**megabyte_cases(m, data_dir, Path(tmp), log), **count_bombs(Path(tmp), log)}
        if "files" in parts:
            shared = Path(data_dir) if data_dir else REPO.parent / "shared" / "data"
            res["files"], res["genuine"] = file_cases(shared, Path(code), cases, Path(tmp), log, timeout)
        if "images" in parts:
            res["images"] = image_cases(Path(tmp), log)
    if "fuzz" in parts:
        log(f"fuzz ({fuzz_cases} cases)")
        res["fuzz"] = run_fuzz_sharded(corpus(REPO), fuzz_cases, fuzz_shards, log=log, trace=fuzz_trace)
    shown = Path(model).resolve()
    shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"model": str(shown), "code": code_version(Path(code)), "parts": list(parts), **res,
            "machine": machine_info(), "date": date}


#: The columns of a file decoded in a fresh process (:mod:`benchmarks.hostile_files`).
_PROCESS = [("process_seconds", "process seconds", 2), ("process_cpu_seconds", "process CPU seconds", 2),
            ("process_max_rss_mib", "max RSS MiB", 0)]
#: The table's measured columns: (key in a case, heading, decimals).
_COLUMNS = [("seconds", "seconds", 2), ("peak_mib", "traced peak MiB", 0), ("process_seconds", "process seconds", 2),
            ("process_max_rss_mib", "process max RSS MiB", 0)]


def _cell(case: dict[str, Any], old: dict[str, Any] | None, key: str, decimals: int) -> str:
    """``value`` or ``value (before)``; – where a case lacks it."""
    if key not in case:
        return "–"
    text = f"{case[key]:,.{decimals}f}"
    return f"{text} ({old[key]:,.{decimals}f})" if old and key in old else text


def to_markdown(res: dict[str, Any], command: str, note: str, baselines: list[dict[str, Any]] | None = None) -> str:
    """A human-readable report of :func:`run_benchmark`'s results (and of baseline runs, in parentheses)."""
    mach, baselines = res["machine"], baselines or []
    lines = ["# Hostile inputs: decode time and memory", "",
             f"Command: `{command}`  ", f"Date: {res['date']}, code {res['code']}  ",
             f"Machine: {mach['cpu']}, {mach['cpu_count']} CPUs, load average "
             f"{', '.join(f'{v:.2f}' for v in mach['load_average'] or [])}; {note}; OMP_NUM_THREADS="
             f"{mach['threads']['OMP_NUM_THREADS']}; "
             + ", ".join(f"{name} {version}" for name, version in mach["versions"].items()) + "  "]
    for r in res.get("reused", []):
        if r["parts"]:
            lines.append(f"Parts {', '.join(r['parts'])}: from the run `{r['command']}` on code {r['code']}, "
                         f"{r['date']}, load average {', '.join(f'{v:.2f}' for v in r['load_average'] or [])}"
                         f"{'; ' + r['note'] if r.get('note') else ''}.  ")
    for b in baselines:
        covered = sum(len(b.get(part) or {}) for part in ("cases", "files", "genuine", "images"))
        lines.append(f"Before (in parentheses, {covered} cases): `{b['command']}` on code {b['code']}, {b['date']}, "
                     f"load average {', '.join(f'{v:.2f}' for v in b['machine']['load_average'] or [])}"
                     f"{'; ' + b['note'] if b.get('note') else ''}.  ")
    before: dict[str, dict[str, Any]] = {}
    for b in baselines:  # a later baseline's case replaces an earlier one's
        for part in ("cases", "files", "genuine", "images"):
            before.setdefault(part, {}).update(b.get(part) or {})
    if res.get("cases"):
        lines += _digit_table(res["cases"], before.get("cases", {}), res["model"])
    if "files" in res:
        lines += _file_tables(res["files"], res["genuine"], before.get("files", {}), before.get("genuine", {}))
    lines += _image_table(res.get("images", {}), before.get("images", {}))
    if "fuzz" in res:
        lines += _fuzz_table(res["fuzz"])
    return "\n".join(lines) + "\n"


def _digit_table(cases: dict[str, Any], before: dict[str, Any], model: str) -> list[str]:
    """The rows of the 1 MiB digit files and the count bombs (and of a baseline run, in parentheses)."""
    lines = ["", f"## Digit files in this process (model `{model}`; the bombs: an 8-dimensional model whose lattice "
             "points cost ~2·10^-5 bits)", "",
             "Seconds: one untraced decode in this process; traced peak: tracemalloc's peak in a second decode; "
             "process: `latcomp decode FILE -o OUT.npz` in a fresh interpreter (start-up and model load included), "
             "its wall time and maximum resident set size.", "",
             "| case | file bytes | outcome | " + " | ".join(h for _, h, _ in _COLUMNS) + " |",
             "|---|---:|---|" + "---:|" * len(_COLUMNS)]
    for name, case in cases.items():
        old = before.get(name)
        outcome = case["outcome"] if not old or old["outcome"] == case["outcome"] else \
            f"{case['outcome']} ({old['outcome']})"
        lines.append(f"| {name} | {case['file_bytes']:,} | {outcome} | "
                     + " | ".join(_cell(case, old, key, d) for key, _, d in _COLUMNS) + " |")
    lines.append("")
    for name, case in cases.items():
        if "content_mib" in case:
            content = ", ".join(f"{k} {v:.0f} MiB" for k, v in case["content_mib"].items())
            lines.append(f"The {name.split(',')[0]} holds {case['images']:,} digits (content: {content}); "
                         "`latcomp decode` writes them to an .npz.  ")
    return lines


def genuine_rates(genuine: dict[str, Any]) -> dict[str, float]:
    """The most CPU seconds per byte of a genuine file of each kind (photo, digits, text) over the shipped models."""
    rates: dict[str, float] = {}
    for case in genuine.values():
        if case["outcome"] == "ok" and "process_cpu_seconds" in case:
            rate = case["process_cpu_seconds"] / case["file_bytes"]
            rates[case["kind"]] = max(rates.get(case["kind"], 0.0), rate)
    return rates


def _file_tables(files: dict[str, Any], genuine: dict[str, Any], before: dict[str, Any],
                 genuine_before: dict[str, Any]) -> list[str]:
    """The genuine files' cost per byte and the hostile files against the rule, as Markdown tables."""
    rates = genuine_rates(genuine)
    lines = ["", "## Files of every container version, each decoded in a fresh interpreter", "",
             "Process: the library's `decompress` (`unpack` for a header alone) in a fresh interpreter with "
             "`OMP_NUM_THREADS=1` (start-up and model load included, like `latcomp decode`): wall seconds and "
             "maximum resident set size (VmHWM).", "", "Genuine files (the yardstick):", "",
             "| file | kind | file bytes | latent rows or items | outcome | " + " | ".join(h for _, h, _ in _PROCESS)
             + " | CPU µs per byte |", "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    for name, case in genuine.items():
        old = genuine_before.get(name)
        lines.append(f"| {name} | {case['kind']} | {case['file_bytes']:,} | {case['rows']:,} | {case['outcome']} | "
                     + " | ".join(_cell(case, old, key, d) for key, _, d in _PROCESS)
                     + f" | {1e6 * case.get('process_cpu_seconds', 0.0) / case['file_bytes']:,.1f} |")
    lines += ["", "The rule, per kind: a hostile file may take the CPU seconds of a genuine file of its size at the "
              "highest rate above (" + ", ".join(f"{k} {1e6 * v:,.1f} µs/byte" for k, v in sorted(rates.items()))
              + "; a header alone: the photo rate) and never more than " f"{CEILING_MB} MB.", "",
              "| hostile file | kind | file bytes | outcome | " + " | ".join(h for _, h, _ in _PROCESS)
              + " | genuine CPU seconds at this size | within the rule |", "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for name, case in files.items():
        old = before.get(name)
        outcome = case["outcome"] if not old or old["outcome"] == case["outcome"] else \
            f"{case['outcome']} (before: {old['outcome']})"
        budget = rates.get("photo" if case["kind"] == "container" else case["kind"], 0.0) * case["file_bytes"]
        rss = case.get("process_max_rss_mib", float("inf"))
        cpu = case.get("process_cpu_seconds", float("inf"))
        within = "yes" if cpu <= budget and rss * MIB <= CEILING_MB * 1e6 else "NO"
        lines.append(f"| {name} | {case['kind']} | {case['file_bytes']:,} | {outcome} | "
                     + " | ".join(_cell(case, old, key, d) for key, _, d in _PROCESS)
                     + f" | {budget:,.1f} | {within} |")
    return lines


def _fuzz_table(fz: dict[str, Any]) -> list[str]:
    """The fuzz run's outcomes by file and by kind of mutation, as Markdown tables."""
    results = sorted({r for counts in fz["by_file"].values() for r in counts})
    lines = ["", f"## Fuzz: {fz['cases']:,} structure-aware mutants of {len(fz['files'])} small genuine files",
             "", f"{fz['seconds']:,.0f} s wall, {fz['cpu_seconds']:,.0f} s CPU ({fz.get('shards', 1)} process(es), "
             f"tracemalloc {'on' if fz['max_peak_mib'] is not None else 'off'}); worst case {fz['max_seconds']:.3f} s"
             + (f", {fz['max_peak_mib']:.1f} MiB traced" if fz["max_peak_mib"] is not None else "")
             + f", largest resident set of a fuzzing process {fz.get('max_rss_mib', 0):,.0f} MiB. Totals: "
             + ", ".join(f"{k} {v:,}" for k, v in sorted(fz["outcomes"].items())) + ".", "",
             "| file | bytes | " + " | ".join(results) + " |", "|---|---:|" + "---:|" * len(results)]
    for label, counts in fz["by_file"].items():
        lines.append(f"| {label} | {fz['files'][label]:,} | " + " | ".join(f"{counts.get(r, 0):,}" for r in results)
                     + " |")
    lines += ["", "| mutation | " + " | ".join(results) + " |", "|---|" + "---:|" * len(results)]
    for kind, counts in sorted(fz["by_kind"].items()):
        lines.append(f"| {kind} | " + " | ".join(f"{counts.get(r, 0):,}" for r in results) + " |")
    lines += ["", "Undetected changes and bugs (first 20): "
              + ("none" if not fz["failures"] else "; ".join(f"{f['file']}, {f['kind']}: {f['outcome']}"
                                                           for f in fz["failures"]))]
    return lines


def _image_table(images: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """The rows of :func:`image_cases` (and of a baseline run, in parentheses) as a Markdown table."""
    if not images:
        return []

    def text(name: str, key: str) -> str:
        old = before.get(name, {}).get(key)
        new = images[name][key]
        return new if old is None or old == new else f"{new} (before: {old})"

    lines = ["", "Images to encode: `latcomp encode FILE -o FILE.lat --quiet` in a fresh interpreter (the shipped "
             "models, chosen by the CLI); what it printed on standard error, how its output decodes "
             "(`latcomp decode`), its wall time and maximum resident set size.", "",
             "| image | file bytes | printed | decoded | process seconds | process max RSS MiB |",
             "|---|---:|---|---|---:|---:|"]
    for name, case in images.items():
        cells = [_cell(case, before.get(name), key, d) for key, _, d in _COLUMNS[2:]]
        lines.append(f"| {name} | {case['file_bytes']:,} | {text(name, 'outcome')} | {text(name, 'decoded')} | "
                     + " | ".join(cells) + " |")
    lines += ["", "First lines printed:", ""]
    lines += [f"- {name}: `{case['first_line']}`" for name, case in images.items() if case["first_line"]]
    return lines


#: The keys of a run's results that each part fills.
PART_KEYS = {"digits": ("cases",), "files": ("files", "genuine"), "images": ("images",), "fuzz": ("fuzz",)}


def reused(res: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """Copy into ``res`` the results of the parts of the ``earlier`` run that ``res`` lacks; what was copied and
    where it came from (its parts, command, code, date, machine load and note)."""
    parts = [p for p in earlier.get("parts", PARTS)
             if p not in res["parts"] and all(key in earlier for key in PART_KEYS[p])]
    for part in parts:
        res.update({key: earlier[key] for key in PART_KEYS[part]})
        res["parts"].append(part)
    return {"parts": parts, **{key: earlier.get(key) for key in ("command", "code", "date", "note")},
            "load_average": earlier["machine"]["load_average"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model directory (default: the shipped one)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (default: $LATCOMP_DATA or the cache)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts to run ({', '.join(PARTS)})")
    parser.add_argument("--code", default=str(REPO), help="the code that decodes the files of the files part")
    parser.add_argument("--cases", default="", help="regular expression: the files part's cases to run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds after which a file's decode is stopped")
    parser.add_argument("--fuzz-cases", type=int, default=400, help="number of fuzzed files")
    parser.add_argument("--fuzz-shards", type=int, default=1, help="processes the fuzz cases are split between")
    parser.add_argument("--fuzz-untraced", action="store_true", help="no tracemalloc in the fuzz run (about 2x faster)")
    parser.add_argument("--reuse", action="append", default=[],
                        help="JSON of an earlier run whose parts this run does not run are reported (repeatable)")
    parser.add_argument("--baseline", action="append", default=[], help="JSON of an earlier run (repeatable)")
    parser.add_argument("--note", default="", help="what else the machine ran (stated in the report)")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "results"), help="where hostile.{json,md} go")
    args = parser.parse_args(argv)
    parts = tuple(p for p in args.parts.split(",") if p)
    if not set(parts) <= set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    command = shlex.join(["python", "-m", "benchmarks.hostile", *(sys.argv[1:] if argv is None else argv)])
    res = run_benchmark(args.model, args.data_dir, args.fuzz_cases, parts, Path(args.code), args.cases, args.timeout,
                        args.fuzz_shards, not args.fuzz_untraced, log=lambda s: print(s, file=sys.stderr))
    res["note"] = args.note
    res["reused"] = [reused(res, json.loads(Path(path).read_text())) for path in args.reuse]
    baselines = [json.loads(Path(b).read_text()) for b in args.baseline]
    if baselines:
        res["baselines"] = baselines
    js, md = write_results("hostile", res, to_markdown(res, command, args.note, baselines), command, args.out_dir)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
