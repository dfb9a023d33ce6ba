"""Gray and colour photos in one file (each image's mode is restored): the gray ones are
coded as R = G = B, marked by a header bit each (container flag bit 5), and decoded as 8-bit gray."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import make_photo_model
from conftest import run_cli as cli

from latcomp.container import FLAG_GRAY, relabeled, unpack
from latcomp.errors import FormatError


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory) -> Path:
    return make_photo_model(tmp_path_factory.mktemp("gray-photo"), lattice="e8")


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    base = 120 + 60 * np.sin(yy / 5.0)[..., None] * np.cos(xx / 9.0)[..., None] * np.array([1.0, -0.5, 0.3])
    return np.clip(base + np.random.default_rng(seed).normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _read(path: Path) -> tuple[str, np.ndarray]:
    from PIL import Image

    with Image.open(path) as img:
        return img.mode, np.asarray(img)


def test_a_mixed_folder_decodes_each_image_in_its_mode(tmp_path, capsys, photo_model):
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    gray = _photo(20, 30)[..., 0]
    Image.fromarray(gray).save(folder / "a.png")
    Image.fromarray(_photo(16, 24, seed=1)).save(folder / "b.png")
    assert cli(capsys, "encode", folder, "-o", tmp_path / "m.lat", "--model", photo_model, "--seed", "4")[0] == 0
    header = unpack((tmp_path / "m.lat").read_bytes())[0]
    assert header.channels == 3 and header.gray == (True, False)
    assert cli(capsys, "decode", tmp_path / "m.lat", "-o", tmp_path / "out/", "--model", photo_model)[0] == 0
    (mode_a, a), (mode_b, b) = _read(tmp_path / "out" / "a.png"), _read(tmp_path / "out" / "b.png")
    assert (mode_a, a.shape, mode_b, b.shape) == ("L", (20, 30), "RGB", (16, 24, 3))
    # the gray image alone, same seed (its latent rows come first, so the same dither): the same pixels
    assert cli(capsys, "encode", folder / "a.png", "-o", tmp_path / "a.lat", "--model", photo_model, "--seed",
               "4")[0] == 0
    assert cli(capsys, "decode", tmp_path / "a.lat", "-o", tmp_path / "a.png", "--model", photo_model)[0] == 0
    assert np.array_equal(_read(tmp_path / "a.png")[1], a)


def test_gray_bits_are_in_the_header_and_checked(photo_model):
    from latcomp.photo.codec import compress, decompress

    data = compress([_photo(16, 16), _photo(16, 16, seed=1)], photo_model, seed=2)
    marked = relabeled(data, gray=(False, True))
    header = unpack(marked)[0]
    assert header.gray == (False, True) and marked[5] & FLAG_GRAY and not data[5] & FLAG_GRAY
    plain, gray = decompress(data, photo_model), decompress(marked, photo_model)
    assert gray[1].shape == (16, 16) and np.array_equal(gray[0], plain[0])  # the library returns each mode
    assert relabeled(marked, gray=()) == data
    for gray in ((True, True), (False, False, True)):  # all gray is a 1-channel file; one bit per image
        with pytest.raises(FormatError):
            relabeled(data, gray=gray)
    bits_at = header.header_bytes - 5  # the bits' byte: last before the header CRC (no names)
    assert marked[bits_at] == 0b10
    for byte in (0b110, 0b11, 0):  # a padding bit, all gray, none gray
        head = marked[:bits_at] + bytes([byte])
        with pytest.raises(FormatError, match="gray"):
            unpack(head + struct.pack("<I", zlib.crc32(head)) + marked[header.header_bytes:])
