"""Image names in containers : a folder's file names and relative paths are recorded and
restored; names read from a file are untrusted (no absolute path, no '..', nothing written outside the output
directory, nothing replaced without --force)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import make_model, make_photo_model
from conftest import run_cli as cli
from conftest import synthetic_binary

from latcomp.container import FLAG_NAMES, relabeled, unpack
from latcomp.errors import FormatError
from latcomp.filenames import check_name, png_names


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory) -> Path:
    return make_photo_model(tmp_path_factory.mktemp("names-photo"), lattice="e8")


def _save(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _photo_file(photo_model: Path) -> bytes:
    from latcomp.photo.codec import compress

    return compress([_photo(16, 16), _photo(20, 12, seed=1)], photo_model, seed=3)


def _with_raw_names(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` with the name bytes ``old`` replaced by ``new`` (same length) and a valid header CRC: a file
    whose only fault is its names."""
    assert len(old) == len(new) and data.count(old) == 1
    header, _ = unpack(data)
    head = data[:header.header_bytes - 4].replace(old, new)
    return head + struct.pack("<I", zlib.crc32(head)) + data[header.header_bytes:]


def test_names_round_trip_in_the_header_and_leave_the_content_alone(photo_model):
    data = _photo_file(photo_model)
    named = relabeled(data, names=("a.jpg", "2024/b.png"))
    header, payload = unpack(named)
    assert header.names == ("a.jpg", "2024/b.png") and named[5] & FLAG_NAMES
    assert payload == unpack(data)[1] and header.content_crc == unpack(data)[0].content_crc
    assert unpack(data)[0].names == () and not data[5] & FLAG_NAMES  # files without names: bytes as before
    assert relabeled(named, names=()) == data
    for i in range(unpack(data)[0].header_bytes, len(named) - len(unpack(data)[1])):  # names under the header CRC
        with pytest.raises(FormatError):
            unpack(named[:i] + bytes([named[i] ^ 0x01]) + named[i + 1:])


@pytest.mark.parametrize("name", ["../x.png", "/etc/passwd", "a//b.png", "a/./b.png", "a/", ".", "..", "a\\b.png",
                                  "a\nb.png", "", "x" * 256 + ".png", "a/\x7f.png", "\x9b2J.png", "a/" * 32 + "b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(FormatError):
        check_name(name)


def test_names_that_would_collide_are_refused():
    assert png_names(["a.jpg", "b", "c.tar.gz", "d/e.PNG"]) == ["a.png", "b.png", "c.tar.png", "d/e.png"]
    for names in (["a.jpg", "a.png"], ["a", "a.png/b.png"], ["x/a.png", "x.gif", "x.png/b.png"]):
        with pytest.raises(FormatError):
            png_names(names)


@pytest.mark.parametrize("hostile", [b"../a.png", b"/tmp/a.p", b"sub/../a", b"\xff\xfeab.png", b"ab\\c.png"])
def test_a_file_with_hostile_names_is_one_error_line_and_writes_nothing(tmp_path, capsys, photo_model, hostile):
    data = relabeled(_photo_file(photo_model), names=("safe.png", "b.png"))
    bad = _with_raw_names(data, b"safe.png", hostile)
    (tmp_path / "bad.lat").write_bytes(bad)
    work = tmp_path / "work"
    work.mkdir()
    for command in (["info"], ["decode", "-o", str(work / "out") + "/", "--model", str(photo_model)]):
        code, err = cli(capsys, *command[:1], str(tmp_path / "bad.lat"), *command[1:])
        assert code == 1 and err.startswith("latcomp: error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.lat", "work"] and not any(work.iterdir())
    assert not Path("/tmp/a.png").exists()


def test_a_file_whose_names_collide_or_miscount_is_refused(photo_model):
    data = relabeled(_photo_file(photo_model), names=("a.png", "b.png"))
    with pytest.raises(FormatError, match="both be written"):
        unpack(_with_raw_names(data, b"b.png", b"a.jpg"))
    with pytest.raises(FormatError, match="does not hold 2 names"):
        unpack(_with_raw_names(data, b"a.png\x00b", b"a.png/b"))


def test_a_folder_keeps_its_names_and_tree(tmp_path, capsys, photo_model):
    folder = tmp_path / "photos"
    _save(folder / "b.jpg", _photo(16, 24))
    _save(folder / "a.png", _photo(20, 20, seed=1)[..., 0])
    _save(folder / "2024" / "x" / "c.bmp", _photo(12, 16, seed=2))
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty").mkdir()
    code, err = cli(capsys, "encode", folder, "-o", tmp_path / "p.lat", "--model", photo_model)
    assert code == 0 and "skipped 1 entry that is not an image file: notes.txt" in err, err
    assert unpack((tmp_path / "p.lat").read_bytes())[0].names == ("2024/x/c.bmp", "a.png", "b.jpg")
    from latcomp.cli import main

    main(["info", str(tmp_path / "p.lat")])
    assert "names:          2024/x/c.bmp, a.png, b.jpg\n" in capsys.readouterr().out
    code, err = cli(capsys, "decode", tmp_path / "p.lat", "-o", tmp_path / "out/", "--model", photo_model)
    assert code == 0, err
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["2024/x/c.png", "a.png", "b.png"]
    from PIL import Image

    assert Image.open(tmp_path / "out" / "2024" / "x" / "c.png").size == (16, 12)
    # an existing output: refused without --force, replaced with it (it holds only what this decode writes)
    code, err = cli(capsys, "decode", tmp_path / "p.lat", "-o", tmp_path / "out/", "--model", photo_model)
    assert code == 1 and "pass --force" in err
    assert cli(capsys, "decode", tmp_path / "p.lat", "-o", tmp_path / "out/", "--model", photo_model,
               "--force")[0] == 0
    (tmp_path / "out" / "2024" / "mine.txt").write_text("the user's")
    code, err = cli(capsys, "decode", tmp_path / "p.lat", "-o", tmp_path / "out/", "--model", photo_model, "--force")
    assert code == 1 and "2024/mine.txt" in err and (tmp_path / "out" / "2024" / "mine.txt").exists()


def test_files_given_one_by_one_keep_their_base_names_unless_they_clash(tmp_path, capsys, photo_model):
    one, two = _save(tmp_path / "d1" / "a.png", _photo(16, 16)), _save(tmp_path / "d2" / "b.jpg", _photo(16, 16))
    assert cli(capsys, "encode", one, two, "-o", tmp_path / "x.lat", "--model", photo_model)[0] == 0
    assert unpack((tmp_path / "x.lat").read_bytes())[0].names == ("a.png", "b.jpg")
    assert cli(capsys, "encode", one, "-o", tmp_path / "one.lat", "--model", photo_model)[0] == 0
    assert unpack((tmp_path / "one.lat").read_bytes())[0].names == ()  # one file: -o names it on decode
    _save(tmp_path / "d2" / "a.jpg", _photo(16, 16))  # a clash: numbered as before names existed, with a warning
    code, err = cli(capsys, "encode", one, tmp_path / "d2", "-o", tmp_path / "y.lat", "--model", photo_model)
    assert code == 0 and "latcomp: warning: the images a.png and a.jpg would both be written as a.png: the file " \
                         "records no names" in err, err
    assert unpack((tmp_path / "y.lat").read_bytes())[0].names == ()


def test_a_name_that_is_not_utf8_is_numbered_with_a_warning(tmp_path, capsys, photo_model):
    import os

    folder = tmp_path / "odd"
    _save(folder / "a.png", _photo(16, 16))
    _save(folder / os.fsdecode(b"\xffb.png"), _photo(16, 16, seed=1))
    code, err = cli(capsys, "encode", folder, "-o", tmp_path / "o.lat", "--model", photo_model)
    assert code == 0 and "unpaired surrogate" in err and "records no names" in err, err
    assert unpack((tmp_path / "o.lat").read_bytes())[0].names == ()


def test_digit_folders_keep_their_names_and_arrays_are_numbered(tmp_path, capsys):
    model = make_model(tmp_path / "model")
    digits = synthetic_binary(2) * 255
    for i, name in enumerate(("seven.png", "one.png")):
        _save(tmp_path / "digits" / name, digits[i].reshape(28, 28).astype(np.uint8))
    assert cli(capsys, "encode", tmp_path / "digits", "-o", tmp_path / "d.lat", "--model", model, "--lossless")[0] == 0
    assert unpack((tmp_path / "d.lat").read_bytes())[0].names == ("one.png", "seven.png")
    assert cli(capsys, "decode", tmp_path / "d.lat", "-o", tmp_path / "out/", "--model", model)[0] == 0
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "seven.png")), digits[0].reshape(28, 28))
    np.savez(tmp_path / "a.npz", x=digits.reshape(2, 28, 28) // 255)
    assert cli(capsys, "encode", tmp_path / "a.npz", tmp_path / "digits", "-o", tmp_path / "e.lat", "--model",
               model)[0] == 0
    assert unpack((tmp_path / "e.lat").read_bytes())[0].names == ()
