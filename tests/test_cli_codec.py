"""``latcomp encode`` / ``latcomp decode``: outputs, errors in one line, no torch, atomic writes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import cli, digits, other_model, run_latcomp, small_model  # noqa: F401
from PIL import Image

from latcomp.codec import compress, decompress, load_model, read_header


def save_png(path: Path, image_u8: np.ndarray, mode: str | None = None) -> Path:
    img = Image.fromarray(image_u8)
    (img.convert(mode) if mode else img).save(path)
    return path


@pytest.fixture
def pngs(tmp_path, digits) -> Path:
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(5):
        save_png(folder / f"d{i}.png", digits[i] * 255)
    return folder


def test_single_png_round_trip_lossless_and_lossy(capsys, tmp_path, pngs, small_model, digits):
    src = pngs / "d0.png"
    code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "a.lat"), "--lossless",
                    "--model", str(small_model), "--seed", "7")
    assert code == 0, err
    assert "1 image, lossless" in err and "header 39" in err
    code, err = cli(capsys, "decode", str(tmp_path / "a.lat"), "-o", str(tmp_path / "a.png"), "--model",
                    str(small_model))
    assert code == 0, err
    out = Image.open(tmp_path / "a.png")
    assert out.mode == "L" and np.array_equal(np.asarray(out), digits[0] * 255)
    code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "b.lat"), "--model", str(small_model),
                    "--seed", "7")
    assert code == 0, err
    assert cli(capsys, "decode", str(tmp_path / "b.lat"), "-o", str(tmp_path / "b.png"), "--model",
               str(small_model))[0] == 0
    expected = decompress(compress(digits[0], small_model, seed=7), small_model)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), np.rint(expected * 255).astype(np.uint8))


def test_batches_directory_npz_and_idx(capsys, tmp_path, pngs, small_model, digits):
    assert cli(capsys, "encode", str(pngs), "-o", str(tmp_path / "dir.lat"), "--lossless", "--model",
               str(small_model))[0] == 0
    header = read_header((tmp_path / "dir.lat").read_bytes())
    assert header.count == 5 and header.layout == "batch"
    assert cli(capsys, "decode", str(tmp_path / "dir.lat"), "-o", str(tmp_path / "out"), "--model",
               str(small_model))[0] == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"d{i}.png" for i in range(5)]  # a folder keeps its names (tests/test_filenames.py)
    for i in range(5):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / f"d{i}.png")), digits[i] * 255)
    # .npz in, .npz out: the same array back (lossless keeps 0/1 values and the (N, 784) layout)
    flat = digits[:10].reshape(10, 784)
    np.savez(tmp_path / "x.npz", x=flat)
    assert cli(capsys, "encode", str(tmp_path / "x.npz"), "-o", str(tmp_path / "x.lat"), "--lossless",
               "--model", str(small_model))[0] == 0
    assert cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "y.npz"), "--model",
               str(small_model))[0] == 0
    assert np.array_equal(np.load(tmp_path / "y.npz")["x"], flat)
    # several files and an IDX array (8-bit, binarized with --threshold)
    idx = tmp_path / "t10k-images-idx3-ubyte"
    gray = (digits[:3] * 200 + 20).astype(np.uint8)
    idx.write_bytes(struct.pack(">IIII", 0x0803, 3, 28, 28) + gray.tobytes())
    code, err = cli(capsys, "encode", str(idx), str(pngs / "d1.png"), "-o", str(tmp_path / "m.lat"),
                    "--lossless", "--threshold", "0.5", "--model", str(small_model))
    assert code == 0, err
    got = decompress((tmp_path / "m.lat").read_bytes(), small_model)
    assert np.array_equal(got, np.concatenate([digits[:3], digits[1:2]]))


def test_encode_input_errors_are_one_line(capsys, tmp_path, small_model, digits):
    big = save_png(tmp_path / "big.png", np.kron(digits[0], np.ones((2, 2), np.uint8)) * 255)
    red = np.stack([digits[0] * 255, np.zeros_like(digits[0]), np.zeros_like(digits[0])], axis=-1)
    rgb = save_png(tmp_path / "rgb.png", red)  # colour: converting it is lossy (a gray RGB image is not)
    gray = save_png(tmp_path / "gray.png", (digits[0] * 100 + 50).astype(np.uint8))
    cases = [
        ([str(big)], "56×56"), ([str(rgb)], "mode RGB"), ([str(gray), "--lossless"], "--threshold"),
        ([str(tmp_path / "missing.png")], "no such file"), ([str(tmp_path / "nothing.lat")], "no such file"),
    ]
    (tmp_path / "nothing.lat").touch()
    cases[-1] = ([str(tmp_path / "nothing.lat")], "not an image")
    for args, message in cases:
        code, err = cli(capsys, "encode", *args, "-o", str(tmp_path / "o.lat"), "--model", str(small_model))
        assert code != 0 and message in err, (args, err)
        assert err.startswith("latcomp: error:") and err.count("\n") == 1
        assert not (tmp_path / "o.lat").exists()
    # --resize converts size and mode; lossless then needs --threshold
    for src in (big, rgb):
        assert cli(capsys, "encode", str(src), "-o", str(tmp_path / "r.lat"), "--resize", "--threshold", "0.5",
                   "--lossless", "--force", "--model", str(small_model))[0] == 0


def test_existing_outputs_are_kept_unless_force(capsys, tmp_path, pngs, small_model):
    out = tmp_path / "a.lat"
    out.write_bytes(b"precious")
    code, err = cli(capsys, "encode", str(pngs / "d0.png"), "-o", str(out), "--model", str(small_model))
    assert code != 0 and "--force" in err and out.read_bytes() == b"precious"
    assert cli(capsys, "encode", str(pngs / "d0.png"), "-o", str(out), "--force", "--model",
               str(small_model))[0] == 0
    assert read_header(out.read_bytes()).count == 1
    png = tmp_path / "a.png"
    png.write_bytes(b"precious")
    code, err = cli(capsys, "decode", str(out), "-o", str(png), "--model", str(small_model))
    assert code != 0 and png.read_bytes() == b"precious"
    assert cli(capsys, "decode", str(out), "-o", str(png), "--force", "--model", str(small_model))[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.lat", "a.png", "pngs"]  # no temp files left


def _bad_files(good: bytes, tmp_path: Path) -> dict[str, Path]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    head = struct.pack("<4sBB8sQII", b"LATC", 1, 0, bytes(8), 0, 0, 0) + bytes([0xFF, 0xFF, 0xFF, 0x7F, 28, 28,
                                                                             1, 0])
    variants = {
        "empty": b"", "truncated": good[:-3], "header only": good[:20], "extended": good + b"\x00",
        "bit-flipped": bytes(flipped), "wrong magic": b"LATX" + good[4:], "version": good[:4] + b"\x09" + good[5:],
        "absurd count": head + struct.pack("<I", zlib.crc32(head)),
        "png renamed": (tmp_path / "pngs" / "d0.png").read_bytes(), "text": b"hello world\n" * 10,
    }
    paths = {}
    for name, data in variants.items():
        path = tmp_path / f"{name.replace(' ', '-')}.lat"
        path.write_bytes(data)
        paths[name] = path
    paths["directory"] = tmp_path / "pngs"
    return paths


def test_malformed_inputs_to_decode(capsys, tmp_path, pngs, small_model, other_model, digits):
    good = compress(digits[:3], small_model, lossless=True, seed=1)
    paths = _bad_files(good, tmp_path)
    (tmp_path / "good.lat").write_bytes(good)
    paths["another model"] = tmp_path / "good.lat"
    for name, path in paths.items():
        model = other_model if name == "another model" else small_model
        for out in ("out.png", "out.npz", "outdir"):
            code, err = cli(capsys, "decode", str(path), "-o", str(tmp_path / out), "--model", str(model))
            assert code != 0, name
            assert err.startswith("latcomp: error:") and err.count("\n") == 1, (name, err)
            assert "Traceback" not in err
            assert not (tmp_path / out).exists(), name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_cli_subprocess_does_not_import_torch_and_fails_fast(tmp_path, pngs, small_model, digits):
    """A fresh interpreter: encode and decode without torch; malformed input → one line, quickly."""
    proc = run_latcomp("encode", str(pngs / "d0.png"), "-o", str(tmp_path / "a.lat"), "--lossless",
                       "--model", str(small_model))
    assert proc.returncode == 0, proc.stderr
    proc = run_latcomp("decode", str(tmp_path / "a.lat"), "-o", str(tmp_path / "a.png"), "--model",
                       str(small_model))
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), digits[0] * 255)
    (tmp_path / "bad.lat").write_bytes(b"LATC" + bytes(60))
    proc = run_latcomp("decode", str(tmp_path / "bad.lat"), "-o", str(tmp_path / "b.png"), "--model",
                       str(small_model))
    assert proc.returncode != 0 and proc.stderr.startswith("latcomp: error:")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "b.png").exists()


def test_decode_of_a_batch_to_a_png_is_a_usage_error(capsys, tmp_path, small_model, digits):
    (tmp_path / "b.lat").write_bytes(compress(digits[:2], small_model))
    code, err = cli(capsys, "decode", str(tmp_path / "b.lat"), "-o", str(tmp_path / "x.png"), "--model",
                    str(small_model))
    assert code != 0 and "directory or an .npz" in err and not (tmp_path / "x.png").exists()


def test_default_model_round_trip(capsys, tmp_path, shared_data):
    """The shipped model on a real digit, if the model and the data are present."""
    from latcomp.data import load_dataset
    from latcomp.modelfile import DEFAULT_MODEL

    if not (DEFAULT_MODEL / "model.safetensors").exists():
        pytest.skip("no default model")
    x = load_dataset("binarized-mnist", "test", shared_data, download=False)[:100]
    model = load_model(DEFAULT_MODEL)
    data = compress(x, model, lossless=True, seed=0)
    assert np.array_equal(decompress(data, model), x)
    assert 8 * len(data) / x.size < 0.5  # far below 1 bit/pixel


def test_a_batch_cannot_be_decoded_into_one_png(capsys, tmp_path, pngs, small_model):
    assert cli(capsys, "encode", str(pngs), "-o", str(tmp_path / "b.lat"), "--model", str(small_model))[0] == 0
    code, err = cli(capsys, "decode", str(tmp_path / "b.lat"), "-o", str(tmp_path / "b.png"), "--model",
                    str(small_model))
    assert code != 0 and err.strip().splitlines() == [
        f"latcomp: error: {tmp_path / 'b.lat'}: the file holds 5 images; give a directory or an .npz as OUT"]
    assert not (tmp_path / "b.png").exists()
