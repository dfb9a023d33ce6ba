"""The CLI with photos: encode picks the photo model for photos and the MNIST model for digits, decode
restores size and mode, conversions that lose something warn, and wrong outputs are one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import cli, make_photo_model, run_latcomp

from latcomp.container import unpack
from latcomp.modelfile import DEFAULT_PHOTO_QUALITY, PHOTO_QUALITIES


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory) -> Path:
    return make_photo_model(tmp_path_factory.mktemp("cli-photo"), lattice="e8")


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = 120 + 60 * np.sin(yy / 5.0)[..., None] * np.cos(xx / 9.0)[..., None] * np.array([1.0, -0.5, 0.3])
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (5, 300)])
def test_rgb_photo_round_trips_with_its_size(tmp_path, capsys, photo_model, size):
    src = _save(tmp_path / "in.png", _photo(*size))
    code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model))
    assert code == 0 and "bits/pixel" in err
    header = unpack((tmp_path / "x.lat").read_bytes())[0]
    assert header.version == 3 and header.sizes == (size,) and header.channels == 3
    code, err = cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "out.png"),
                    "--model", str(photo_model))
    assert code == 0, err
    out = _read(tmp_path / "out.png")
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_grayscale_stays_grayscale_and_a_batch_keeps_every_size(tmp_path, capsys, photo_model):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _save(folder / "a.png", _photo(20, 30)[..., 0])
    _save(folder / "b.png", _photo(33, 17, seed=1)[..., 1])
    code, err = cli(capsys, "encode", str(folder), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model))
    assert code == 0, err
    assert unpack((tmp_path / "x.lat").read_bytes())[0].channels == 1
    code, err = cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "out/"),
                    "--model", str(photo_model))
    assert code == 0, err
    shapes = [_read(p).shape for p in sorted((tmp_path / "out").iterdir())]
    assert shapes == [(20, 30), (33, 17)]


@pytest.mark.parametrize("mode,warning", [("RGBA", "alpha"), ("I;16", "8 bits"), ("P", None), ("1", None)])
def test_conversions_warn_only_when_they_lose_something(tmp_path, capsys, photo_model, mode, warning):
    from PIL import Image

    rgb = _photo(24, 40)
    if mode == "RGBA":
        img = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "RGBA")
    elif mode == "I;16":
        img = Image.fromarray((rgb[..., 0].astype(np.uint16) * 257 + 3).astype(np.uint16))
    elif mode == "P":
        img = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    else:
        img = Image.fromarray(rgb[..., 0] > 128)
    img.save(tmp_path / "in.png")
    code, err = cli(capsys, "encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.lat"),
                    "--model", str(photo_model))
    assert code == 0, err
    if warning:
        assert f"latcomp: warning: {tmp_path / 'in.png'}" in err and warning in err
    else:
        assert "warning" not in err


def test_digits_still_use_the_mnist_model_and_photos_the_photo_model(tmp_path, capsys):
    """Without --model, a 28×28 grayscale digit goes to the MNIST model (format 1), a photo to a photo model."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    _save(tmp_path / "digit.png", digit)
    code, err = cli(capsys, "encode", str(tmp_path / "digit.png"), "-o", str(tmp_path / "d.lat"))
    assert code == 0, err
    assert unpack((tmp_path / "d.lat").read_bytes())[0].version in (1, 2)
    from latcomp.photo.codec import photo_model

    if not (photo_model(3) / "config.json").is_file():
        pytest.skip("no shipped photo model in this checkout")
    _save(tmp_path / "photo.png", _photo(40, 60))
    code, err = cli(capsys, "encode", str(tmp_path / "photo.png"), "-o", str(tmp_path / "p.lat"), "-q", "1")
    assert code == 0, err
    assert unpack((tmp_path / "p.lat").read_bytes())[0].version == 3
    code, err = cli(capsys, "decode", str(tmp_path / "p.lat"), "-o", str(tmp_path / "p.png"))
    assert code == 0, err  # the file names its model: no --model or -q needed
    assert _read(tmp_path / "p.png").shape == (40, 60, 3)


def test_photo_errors_are_one_line(tmp_path, capsys, photo_model):
    _save(tmp_path / "in.png", _photo(20, 20))
    code, err = cli(capsys, "encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.lat"), "--lossless",
                    "--model", str(photo_model))
    assert code != 0 and err.count("\n") == 1 and "MNIST" in err
    cli(capsys, "encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model))
    code, err = cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "x.npz"),
                    "--model", str(photo_model))
    assert code != 0 and err.count("\n") == 1 and "PNG" in err
    assert not (tmp_path / "x.npz").exists()
    code, err = cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "x.png"))
    assert code != 0 and err.count("\n") == 1  # the file's model is no shipped one


def test_info_prints_each_size(tmp_path, capsys, photo_model):
    _save(tmp_path / "in.png", _photo(21, 34))
    cli(capsys, "encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model))
    proc = run_latcomp("info", str(tmp_path / "x.lat"))
    assert proc.returncode == 0 and "21×34, 3 channels" in proc.stdout and "format version: 3" in proc.stdout


def test_stdin_and_stdout(tmp_path, photo_model):
    import subprocess
    import sys

    from codec_fixtures import REPO

    data = io.BytesIO()
    from PIL import Image

    Image.fromarray(_photo(18, 22)).save(data, format="PNG")
    env = {"PYTHONPATH": str(REPO)}
    enc = subprocess.run([sys.executable, "-m", "latcomp", "encode", "-", "-o", "-", "--model", str(photo_model)],
                         input=data.getvalue(), capture_output=True, env=env, timeout=120)
    assert enc.returncode == 0, enc.stderr
    dec = subprocess.run([sys.executable, "-m", "latcomp", "decode", "-", "-o", "-", "--model", str(photo_model)],
                         input=enc.stdout, capture_output=True, env=env, timeout=120)
    assert dec.returncode == 0, dec.stderr
    assert np.asarray(Image.open(io.BytesIO(dec.stdout))).shape == (18, 22, 3)


@pytest.mark.parametrize("quality", PHOTO_QUALITIES)
def test_every_shipped_quality_level_round_trips(tmp_path, capsys, quality):
    """The shipped photo models: the CLI and the Python API give the same image, of the original size."""
    from latcomp.photo import codec

    if not (codec.photo_model(quality) / "config.json").is_file():
        pytest.skip("no shipped photo model in this checkout")
    image = _photo(45, 61, seed=quality)
    api = codec.decompress(codec.compress(image, quality=quality, seed=7))
    _save(tmp_path / "in.png", image)
    code, err = cli(capsys, "encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.lat"), "-q", str(quality),
                    "--seed", "7")
    assert code == 0, err
    code, err = cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / "out.png"))
    assert code == 0, err
    np.testing.assert_array_equal(_read(tmp_path / "out.png"), api)
    assert api.shape == image.shape
    assert 10 * np.log10(255**2 / np.mean((api.astype(float) - image) ** 2)) > 20  # a trained model, not noise


def test_quality_levels_outside_the_shipped_ones_are_refused(tmp_path, capsys):
    """-q takes exactly the shipped levels; the library refuses the same values with one line."""
    from latcomp.errors import InputError
    from latcomp.photo import codec

    _save(tmp_path / "in.png", _photo(20, 24, seed=1))
    for quality in (PHOTO_QUALITIES[0] - 1, PHOTO_QUALITIES[-1] + 1):
        code, err = cli(capsys, "encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.lat"), "-q", str(quality))
        assert code == 2 and "--quality" in err and not (tmp_path / "x.lat").exists()
        with pytest.raises(InputError, match="quality must be one of"):
            codec.photo_model(quality)
    assert DEFAULT_PHOTO_QUALITY in PHOTO_QUALITIES
