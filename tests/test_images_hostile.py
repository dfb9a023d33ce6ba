"""Hostile and everyday images to encode: one line for every failure, no silent loss.

Images are refused from their header before they are decoded (pixel limit, Pillow's bomb
check, several frames); Pillow's warnings become one ``latcomp: warning:`` line each; a
1-bit image at the limit is read in about a byte a pixel; the EXIF orientation is applied;
48-bit RGB and 16-bit gray warn when rounding loses something, and 16-bit samples round
exactly; each input is routed by what it is, never by its neighbours; no output is an input.
"""

from __future__ import annotations

import io
import os
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import cli, make_photo_model, small_model  # noqa: F401
from PIL import Image, ImageOps

from benchmarks.hostile import (
    blank_1bit_png,
    encoded,
    exif_rotated_jpeg,
    frames_file,
    photo_pixels,
    png_48bit,
    png_chunk,
    zeros_zlib,
)
from latcomp.container import unpack
from latcomp.errors import InputError, LimitError
from latcomp.images import MAX_IMAGE_PIXELS, image_kind, read_image, read_photo

DIGIT = (28, 28, 1)


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory) -> Path:
    return make_photo_model(tmp_path_factory.mktemp("hostile-photo"))


def one_line_error(code: int, err: str) -> bool:
    return code != 0 and err.startswith("latcomp: error:") and err.count("\n") == 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mask() -> np.ndarray:
    mask = np.zeros((28, 28), np.uint8)
    mask[5:23, 12:16] = 1
    return mask


# --------------------------------------------------------------------------- bombs and Pillow's messages


def test_a_decompression_bomb_is_one_line_from_its_header(tmp_path, capsys, photo_model):
    """304 KB claiming 50000×50000 pixels: Pillow's DecompressionBombError was a 30-line traceback from the
    CLI's digit-or-photo test; now one LimitError line, from the header, with little memory."""
    bomb = blank_1bit_png(50000, 50000)
    assert len(bomb) < 400_000
    tracemalloc.start()
    with pytest.raises(LimitError, match=f"2500000000 pixels is larger than the limit of {MAX_IMAGE_PIXELS}"):
        read_photo(bomb, "bomb.png")
    with pytest.raises(LimitError):
        image_kind(bomb, "bomb.png", DIGIT)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 << 20
    src = _write(tmp_path / "bomb.png", bomb)
    for extra in ([], ["--model", str(photo_model)]):  # routed by the CLI, or named
        code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "b.lat"), *extra)
        assert one_line_error(code, err) and str(src) in err and "limit" in err, err


def test_over_the_pixel_limit_prints_no_pillow_warning(tmp_path, capsys, photo_model):
    """10000² is over latcomp's limit (2^25) and Pillow's warning level: one error line, not Pillow's 2 lines."""
    src = _write(tmp_path / "big.png", blank_1bit_png(10000, 10000))
    for extra in ([], ["--model", str(photo_model)]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning escaping to Python's machinery fails the test
            code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "b.lat"), *extra)
        assert one_line_error(code, err) and "10000×10000" in err, err


def test_pillow_warnings_become_one_warning_line_each(tmp_path, capsys, photo_model, monkeypatch):
    from PIL import PngImagePlugin

    load = PngImagePlugin.PngImageFile.load

    def warning_load(self):
        warnings.warn("a warning of Pillow's\nover two lines", UserWarning, stacklevel=1)
        return load(self)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", warning_load)
    src = _write(tmp_path / "in.png", encoded(Image.fromarray(photo_pixels(20, 24)), "PNG"))
    code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model),
                    "--quiet")
    assert code == 0 and err == f"latcomp: warning: {src}: a warning of Pillow's over two lines\n", err


def test_a_one_bit_image_at_the_limit_is_read_in_a_byte_a_pixel():
    """The photo reader kept 1-bit (and 16-bit) images as float64 intensities and their rounded copy: 16 bytes a
    pixel (2^26 pixels, then the limit: 1 GiB of the 1.66 GB measured for an 8 KB PNG). Now uint8 all the way."""
    side = 4096
    data = blank_1bit_png(side, side)
    tracemalloc.start()
    x = read_photo(data, "limit.png")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert x.shape == (side, side) and x.dtype == np.uint8 and not x.any()
    assert peak < 2.2 * side * side, peak / side**2  # the result and one temporary of a byte a pixel


# --------------------------------------------------------------------------- no silent loss


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "TIFF"])
def test_animations_and_pages_are_refused(tmp_path, capsys, photo_model, small_model, fmt):
    src = _write(tmp_path / f"frames.{fmt.lower()}", frames_file(fmt))
    for model in (photo_model, small_model):
        code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "x.lat"), "--model", str(model))
        assert one_line_error(code, err) and "3 frames" in err and "own" in err, err
    single = _write(tmp_path / f"one.{fmt.lower()}", frames_file(fmt, count=1))
    code, err = cli(capsys, "encode", str(single), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model),
                    "--quiet")
    assert code == 0 and err == "", err


def test_a_multi_picture_jpeg_codes_its_primary_image_with_a_warning():
    """A camera's MPO (a JPEG with previews or a depth map) is a still photo: its first picture, and a warning."""
    primary, other = (Image.fromarray(photo_pixels(32, 48, seed)) for seed in (0, 1))
    data = encoded(primary, "MPO", save_all=True, append_images=[other])
    lines: list[str] = []
    x = read_photo(data, "cam.jpg", warn=lines.append)
    with Image.open(io.BytesIO(data)) as img:
        assert np.array_equal(x, np.asarray(img.convert("RGB")))  # frame 0
    assert lines == ["cam.jpg: multi-picture JPEG (MPO): only its primary image is coded, 1 other picture dropped"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_is_applied_as_viewers_do(orientation):
    data = exif_rotated_jpeg(48, 32, orientation)
    with Image.open(io.BytesIO(data)) as img:
        expected = np.asarray(ImageOps.exif_transpose(img))
    x = read_photo(data, "rotated.jpg")
    assert x.shape == ((48, 32, 3) if orientation >= 5 else (32, 48, 3))
    assert np.array_equal(x, expected)


def test_the_exif_orientation_of_a_digit_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180°
    data = encoded(Image.fromarray(_mask() * 255), "PNG", exif=exif)
    assert np.array_equal(read_image(data, "d.png", DIGIT), _mask()[::-1, ::-1])


def test_48_bit_rgb_warns_as_16_bit_gray(tmp_path, capsys, photo_model):
    pixels = photo_pixels(16, 20).astype(np.uint16) * 257 + 3  # low bytes that 8 bits cannot keep
    lines: list[str] = []
    x = read_photo(png_48bit(pixels), "rgb48.png", warn=lines.append)
    assert lines == ["rgb48.png: 16 bits per sample (RGB) cut to 8 bits"]
    assert np.array_equal(x, pixels >> 8)  # Pillow keeps the high byte
    src = _write(tmp_path / "rgb48.png", png_48bit(pixels))
    code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model),
                    "--quiet")
    assert code == 0 and err.count("latcomp: warning:") == 1 and "16 bits" in err, err


def test_other_cuts_to_8_bits_warn_and_packed_pixels_do_not():
    """A 16-bit PPM (maxval 65535) is cut to 8 bits by Pillow: a warning; a 16-bit (5-6-5) BMP is not: none."""
    import struct

    lines: list[str] = []
    read_photo(b"P6\n4 3\n65535\n" + bytes(range(72)), "x.ppm", warn=lines.append)
    assert lines == ["x.ppm: 16 bits per sample (RGB) cut to 8 bits"]
    pixels = bytes(8 * 3)
    bmp = (b"BM" + struct.pack("<IHHI", 66 + len(pixels), 0, 0, 66)
           + struct.pack("<IiiHHIIiiII", 40, 4, 3, 1, 16, 3, len(pixels), 0, 0, 0, 0)
           + struct.pack("<III", 0xF800, 0x07E0, 0x001F) + pixels)
    lines.clear()
    assert read_photo(bmp, "565.bmp", warn=lines.append).shape == (3, 4, 3) and lines == []


def test_16_bit_samples_round_exactly_and_warn_only_when_they_lose_something():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    lines: list[str] = []
    x = read_photo(encoded(Image.fromarray(values), "PNG"), "all.png", warn=lines.append)
    assert np.array_equal(x, np.rint(values / 257.0).astype(np.uint8)) and len(lines) == 1
    lines.clear()
    exact = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 8-bit levels at 16 bits
    assert np.array_equal(read_photo(encoded(Image.fromarray(exact), "PNG"), "e.png", warn=lines.append),
                          np.arange(256).reshape(16, 16)) and lines == []


def test_a_gray_palette_photo_stays_gray():
    gray = photo_pixels(20, 30)[..., 0]
    assert np.array_equal(read_photo(encoded(Image.fromarray(gray).convert("P"), "PNG"), "p.png"), gray)


# --------------------------------------------------------------------------- routing, output ≠ input


@pytest.mark.parametrize("name, image", [
    ("0/255", Image.fromarray(_mask() * 255)), ("0/1", Image.fromarray(_mask())),
    ("1-bit", Image.fromarray(_mask().astype(bool))), ("16-bit", Image.fromarray(_mask().astype(np.uint16) * 65535)),
    ("gray RGB", Image.fromarray(np.repeat(_mask()[..., None] * 255, 3, axis=-1))),
    ("palette", Image.fromarray(_mask() * 255).convert("P"))])
def test_binary_masks_of_the_digit_size_are_digits(name, image):
    assert image_kind(encoded(image, "PNG"), name, DIGIT) == "digit"


def test_everything_else_is_a_photo():
    rgb = photo_pixels(28, 28)
    for image in (Image.fromarray(rgb[..., 0]), Image.fromarray(rgb), Image.fromarray(np.pad(_mask() * 255, 1)),
                  Image.fromarray(np.stack([_mask() * 255, _mask() * 0, _mask() * 0], axis=-1))):
        assert image_kind(encoded(image, "PNG"), "x.png", DIGIT) == "photo"
    buf = io.BytesIO()
    np.save(buf, _mask()[None])
    assert image_kind(buf.getvalue(), "x.npy", DIGIT) == "digit"


def test_routing_never_depends_on_the_neighbours(tmp_path, capsys):
    """A gray 28×28 photo goes to a photo model even beside digits; digits and photos in one run: one line."""
    from latcomp.photo.codec import photo_model as shipped_photo_model

    if not (shipped_photo_model(3) / "config.json").is_file():
        pytest.skip("no shipped photo model in this checkout")
    gray = _write(tmp_path / "gray.png", encoded(Image.fromarray(photo_pixels(28, 28)[..., 0]), "PNG"))
    mask = _write(tmp_path / "mask.png", encoded(Image.fromarray(_mask() * 255), "PNG"))
    code, err = cli(capsys, "encode", str(gray), "-o", str(tmp_path / "g.lat"), "--quiet")
    assert code == 0 and unpack((tmp_path / "g.lat").read_bytes())[0].version == 3, err
    code, err = cli(capsys, "encode", str(mask), "-o", str(tmp_path / "m.lat"), "--quiet")
    assert code == 0 and unpack((tmp_path / "m.lat").read_bytes())[0].version in (1, 2), err
    code, err = cli(capsys, "encode", str(mask), str(gray), "-o", str(tmp_path / "both.lat"))
    assert one_line_error(code, err) and f"{mask} is a digit" in err and f"{gray} is a photo" in err, err


def test_encode_help_states_the_routing_rule(capsys):
    from latcomp.cli import main

    main(["encode", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "never by the other inputs" in text and "binary 28×28 masks" in text and "gray 28×28 photo" in text


def test_an_output_is_never_an_input(tmp_path, capsys, photo_model, monkeypatch):
    src = _write(tmp_path / "x.png", encoded(Image.fromarray(photo_pixels(20, 24)), "PNG"))
    original = src.read_bytes()
    os.link(src, tmp_path / "hard.png")
    (tmp_path / "link.png").symlink_to(src)
    monkeypatch.chdir(tmp_path)
    cases = [(str(src), str(src)), ("x.png", str(src)), (str(src), "./x.png"), ("link.png", "x.png"),
             (str(src), "hard.png"), (str(tmp_path), "x.png")]  # a directory of inputs holds it
    for source, out in cases:
        code, err = cli(capsys, "encode", source, "-o", out, "--force", "--model", str(photo_model))
        assert one_line_error(code, err) and "input" in err, (source, out, err)
        assert src.read_bytes() == original and (tmp_path / "hard.png").read_bytes() == original
    lat = tmp_path / "x.lat"
    assert cli(capsys, "encode", str(src), "-o", str(lat), "--model", str(photo_model))[0] == 0
    data = lat.read_bytes()
    code, err = cli(capsys, "decode", str(lat), "-o", str(lat), "--force", "--model", str(photo_model))
    assert one_line_error(code, err) and "is the input" in err and lat.read_bytes() == data
    out = tmp_path / "out"
    out.mkdir()
    (out / "00000.png").write_bytes(data)  # a container named like a decoded image, inside the output
    code, err = cli(capsys, "decode", str(out / "00000.png"), "-o", str(out), "--force", "--model",
                    str(photo_model))
    assert one_line_error(code, err) and "holds the input" in err and (out / "00000.png").read_bytes() == data


def test_unreadable_images_are_one_line(tmp_path, capsys, photo_model):
    good = encoded(Image.fromarray(photo_pixels(40, 40)), "PNG")
    text_bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zeros_zlib(200 << 20))  # 200 MB of text in 200 KB
    for name, data in {"truncated.png": good[:len(good) // 2], "garbage.png": b"\x89PNG\r\n\x1a\n" + bytes(50),
                       "empty.jpg": b"", "bad-exif.jpg": exif_rotated_jpeg()[:200],
                       "text-bomb.png": good[:33] + text_bomb + good[33:]}.items():
        src = _write(tmp_path / name, data)
        for extra in ([], ["--model", str(photo_model)]):
            code, err = cli(capsys, "encode", str(src), "-o", str(tmp_path / "x.lat"), *extra)
            assert one_line_error(code, err) and str(src) in err, (name, err)
    with pytest.raises(InputError):
        read_photo(good[:100], "t.png")


def test_a_folder_lists_what_it_skips(tmp_path, capsys, photo_model):
    """Sub-folders are read (their images keep their relative paths: tests/test_filenames.py); what is not an
    image file is listed, links to directories (never followed) too; hidden entries are skipped silently."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    _write(folder / "a.png", encoded(Image.fromarray(photo_pixels(20, 24)), "PNG"))
    (folder / "notes.txt").write_text("mine")
    (folder / "sub" / "more.txt").write_text("mine")
    (folder / "loop").symlink_to(folder)
    (folder / ".hidden.png").write_bytes(b"")
    code, err = cli(capsys, "encode", str(folder), "-o", str(tmp_path / "x.lat"), "--model", str(photo_model),
                    "--quiet")
    assert code == 0 and err == f"latcomp: warning: {folder}: skipped 3 entries that are not an image file: " \
                                f"loop/, notes.txt, sub/more.txt\n", err


def test_a_photo_batch_is_never_told_to_use_an_npz(tmp_path, capsys, photo_model):
    """Photos of their own sizes are no one array: the hint for a batch names a directory only."""
    for name in ("a.png", "b.png"):
        _write(tmp_path / name, encoded(Image.fromarray(photo_pixels(20, 24)), "PNG"))
    lat = tmp_path / "two.lat"
    assert cli(capsys, "encode", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(lat), "--model",
               str(photo_model))[0] == 0
    code, err = cli(capsys, "decode", str(lat), "-o", str(tmp_path / "two.png"), "--model", str(photo_model))
    assert one_line_error(code, err) and "give a directory (a name ending in /) as OUT" in err and ".npz" not in err
