"""The container format alone: layout, strict parsing, checksums (no model involved)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from latcomp.container import (
    FIXED_BYTES,
    FLAG_STORED,
    MAGIC,
    MAX_COUNT,
    MIN_HEADER_BYTES,
    VERSIONS,
    Header,
    content_crc,
    pack,
    payload_to_words,
    unpack,
    words_to_payload,
)
from latcomp.errors import CodecError, FormatError


def header(**changes) -> Header:
    fields = dict(lossless=False, layout="single", model_id=bytes(range(8)), seed=2**64 - 1, payload_crc=0,
                  content_crc=0xDEADBEEF, count=1, image_shape=(28, 28, 1), payload_bytes=0)
    fields.update(changes)
    return Header(**fields)


def test_round_trip_and_documented_layout():
    payload = bytes([1, 2, 3, 4, 5, 6, 7])
    data = pack(header(lossless=True), payload)
    h, p = unpack(data)
    assert p == payload
    assert (h.lossless, h.layout, h.model_id, h.seed, h.count, h.image_shape) == \
        (True, "single", bytes(range(8)), 2**64 - 1, 1, (28, 28, 1))
    assert h.header_bytes == 39 == MIN_HEADER_BYTES  # the header of one MNIST image (docs/format.md)
    assert data[:4] == MAGIC == b"LATC" and data[4] == 1 and 1 in VERSIONS and data[5] == 0x01 | (2 << 1)
    assert struct.unpack_from("<Q", data, 14)[0] == 2**64 - 1
    assert struct.unpack_from("<I", data, 22)[0] == zlib.crc32(payload)
    assert struct.unpack_from("<I", data, 26)[0] == 0xDEADBEEF
    assert data[FIXED_BYTES:FIXED_BYTES + 5] == bytes([1, 28, 28, 1, 7])
    assert struct.unpack_from("<I", data, 35)[0] == zlib.crc32(data[:35])
    assert len(data) == 39 + 7


def test_large_values_use_longer_varints():
    h, _ = unpack(pack(header(layout="batch", count=MAX_COUNT, image_shape=(65536, 300, 4)), b"\x01" * 200))
    assert (h.count, h.image_shape, h.payload_bytes) == (MAX_COUNT, (65536, 300, 4), 200)
    assert h.header_bytes == FIXED_BYTES + 4 + 3 + 2 + 1 + 2 + 4


@pytest.mark.parametrize("bad", [dict(count=0), dict(count=MAX_COUNT + 1), dict(image_shape=(0, 28, 1)),
                                 dict(image_shape=(28, 28, 5)), dict(layout="single", count=2),
                                 dict(model_id=b"short"), dict(seed=-1)])
def test_pack_refuses_invalid_headers(bad):
    with pytest.raises(FormatError):
        pack(header(**{"layout": "batch", **bad}) if "layout" not in bad else header(**bad), b"")


def test_every_single_bit_flip_is_detected():
    data = pack(header(layout="batch", count=3), bytes(range(1, 30)))
    for i in range(len(data) * 8):
        corrupt = bytearray(data)
        corrupt[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            unpack(bytes(corrupt))


def test_every_truncation_and_extension_is_detected():
    data = pack(header(), bytes(range(1, 12)))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])
    for extra in (b"\x00", b"\x01", data):
        with pytest.raises(FormatError, match="trailing data"):
            unpack(data + extra)


def _resealed(head: bytes) -> bytes:
    """Header bytes with a correct header CRC appended (a crafted, well-formed header)."""
    return head + struct.pack("<I", zlib.crc32(head))


def _fixed(version=1, flags=0, payload=b""):
    return struct.pack("<4sBB8sQII", MAGIC, version, flags, bytes(8), 0, zlib.crc32(payload), 0)


@pytest.mark.parametrize("varints, message", [
    (bytes([0, 28, 28, 1, 0]), "count 0"),
    (bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 28, 28, 1, 0]), "count"),
    (bytes([1, 0x81, 0x80, 0x04, 28, 1, 0]), "shape"),
    (bytes([1, 28, 28, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), "payload length"),
    (bytes([1, 28, 28, 1, 0x80, 0x00]), "non-canonical"),
    (bytes([1, 28, 28, 1] + [0x80] * 12), "too long"),
    (bytes([1, 28, 28, 1, 100]), "truncated"),
])
def test_absurd_sizes_fail_at_once(varints, message):
    with pytest.raises(FormatError, match=message):
        unpack(_resealed(_fixed() + varints))


def test_wrong_magic_version_and_flags():
    good = pack(header(), b"\x05")
    with pytest.raises(FormatError, match="not a latcomp file"):
        unpack(b"LATX" + good[4:])
    with pytest.raises(FormatError, match="looks like a PNG"):
        unpack(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(FormatError, match="empty"):
        unpack(b"")
    unknown = max(VERSIONS) + 1  # the first unsupported version
    with pytest.raises(FormatError, match=f"version {unknown}"):
        unpack(_resealed(_fixed(version=unknown) + bytes([1, 28, 28, 1, 0])))
    with pytest.raises(FormatError, match="flags"):
        unpack(_resealed(_fixed(flags=0x80) + bytes([1, 28, 28, 1, 0])))
    with pytest.raises(FormatError, match="layout"):
        unpack(_resealed(_fixed(flags=0x06) + bytes([1, 28, 28, 1, 0])))


def test_payload_words_round_trip_without_trailing_zero_bytes():
    words = np.array([0xFFFFFFFF, 0x00000001, 0x00000200], np.uint32)
    payload = words_to_payload(words)
    assert len(payload) == 10 and payload[-1] != 0
    assert np.array_equal(payload_to_words(payload), words)
    assert payload_to_words(b"").size == 0
    with pytest.raises(FormatError):
        payload_to_words(b"\x01\x00")


def test_errors_are_codec_errors():
    assert issubclass(FormatError, CodecError)
    assert not issubclass(FormatError, (ValueError, OSError))


def test_stored_pixels_flag_is_version_2_only():
    """Bit 3 (pixels stored raw) needs version 2 and the lossless mode; readers of version 1 files, and
    readers that know no bit 3, refuse it (docs/format.md)."""
    stored = header(lossless=True, stored=True, lattice="z*40")
    raw = bytes(98)  # 784 pixels, 1 bit each
    data = pack(stored, raw + b"\x07")
    h, payload = unpack(data)
    assert (h.version, h.stored, h.stored_bytes, h.lattice) == (2, True, 98, "z*40") and payload == raw + b"\x07"
    assert data[4] == 2 and data[5] & FLAG_STORED
    for bad in (dict(lattice=""), dict(lossless=False)):  # version 1 / lossy cannot say "stored"
        with pytest.raises(FormatError, match="stored pixels"):
            pack(header(**{"lossless": True, "stored": True, "lattice": "z*40", **bad}), raw)
    with pytest.raises(FormatError, match="shorter than"):
        pack(stored, raw[:-1])
    v1 = bytearray(pack(header(lossless=True), b"\x07"))  # a version 1 file with bit 3 set is refused
    v1[5] |= FLAG_STORED
    head_len = unpack(pack(header(lossless=True), b"\x07"))[0].header_bytes
    v1[head_len - 4:head_len] = struct.pack("<I", zlib.crc32(bytes(v1[:head_len - 4])))
    with pytest.raises(FormatError, match="unknown flags"):
        unpack(bytes(v1))


def test_content_crc_of_parts_and_unmaterialized_zeros():
    rng = np.random.default_rng(0)
    k = rng.integers(-9, 9, (3, 5))
    for n, zeros in [(0, 0), (5, 0), (13, 7), (16, 1000), (8, 3), (0, 20), (1, 1 << 21)]:
        pixels = (rng.random(n) < 0.5).astype(np.uint8)
        whole = np.concatenate([pixels, np.zeros(zeros, np.uint8)])
        for cut in {0, n // 3, n}:
            assert content_crc(k, [pixels[:cut], pixels[cut:]], zeros) == content_crc(k, whole)
    assert content_crc(k) == zlib.crc32(k.astype("<i8").tobytes())


def _fields_header(**changes) -> Header:
    """A version-4 header: a count, a lattice spec and the modality's own fields."""
    return header(**{"image_shape": (0, 0, 0), "lattice": "e8*3", "fields": b"\x05modality", "count": 3,
                     "layout": "batch", **changes})


def test_version_4_carries_the_modality_fields_under_the_header_crc():
    for h in (_fields_header(), _fields_header(lossless=True, layout="single", count=1, fields=bytes(300))):
        data = pack(h, b"\x07\x01")
        assert data[4] == 4 == h.version
        back, payload = unpack(data)
        assert payload == b"\x07\x01" and back.fields == h.fields and back.lattice == "e8*3"
        assert (back.count, back.lossless, back.layout) == (h.count, h.lossless, h.layout)
        assert back.image_shape == (0, 0, 0) and back.sizes == () and back.image_pixels == 0
        assert back.header_bytes == len(data) - 2
        for i in range(4, back.header_bytes):  # every header byte, the fields' too, is checked
            damaged = bytearray(data)
            damaged[i] ^= 0x10
            with pytest.raises(FormatError):
                unpack(bytes(damaged))


@pytest.mark.parametrize("changes,match", [
    ({"fields": b""}, "1 to 65536 bytes of fields"), ({"fields": bytes(65537)}, "fields"),
    ({"lattice": ""}, "lattice spec"), ({"image_shape": (28, 28, 1)}, "image shape"),
    ({"sizes": ((2, 3),) * 3}, "sizes"), ({"stored": True, "lossless": True}, "stored"),
])
def test_version_4_headers_outside_the_format_are_refused(changes, match):
    with pytest.raises(FormatError, match=match):
        pack(_fields_header(**changes), b"\x01")


def test_a_version_4_fields_length_beyond_the_file_is_refused_before_reading():
    data = bytearray(pack(_fields_header(fields=b"abc"), b"\x01"))
    at = data.index(b"abc") - 1  # the varint length of the fields
    data[at] = 0x7F
    with pytest.raises(FormatError, match="fields length"):
        unpack(_resealed(bytes(data[:data.index(b"abc") + 3])) + b"\x01")


def test_the_cli_reads_a_version_4_header_and_refuses_to_decode_what_it_cannot_write(tmp_path, capsys):
    from latcomp.cli import main

    path = tmp_path / "t.lat"
    path.write_bytes(pack(_fields_header(), b"\x01"))
    main(["info", str(path)])
    out = capsys.readouterr().out
    assert "format version: 4" in out and "modality:       text" in out and "items:          3" in out
    with pytest.raises(SystemExit):
        main(["decode", str(path), "-o", str(tmp_path / "out") + "/"])
    assert capsys.readouterr().err.strip().startswith("latcomp: error:")


def _photo_header(sizes) -> Header:
    return header(layout="batch", count=len(sizes), image_shape=(0, 0, 3), lattice="e8*16", sizes=tuple(sizes))


def test_a_photo_size_list_is_decoded_only_after_the_header_crc(monkeypatch):
    """A version-3 header listing many sizes with a bad CRC is refused before one size is decoded
    (the list is located by a bounded scan); with a good CRC the sizes come back, across the scan's chunks."""
    import latcomp.container as container

    sizes = [(1 + i % 300, 1 + (i * 7919) % 20000) for i in range(120_000)]  # 1-, 2- and 3-byte varints
    monkeypatch.setattr(container, "_SCAN_BYTES", 4099)  # many chunks, a varint split across their edges
    data = pack(_photo_header(sizes), b"\x07")
    h, payload = unpack(data)
    assert h.sizes == tuple(sizes) and payload == b"\x07"
    corrupt = bytearray(data)
    corrupt[h.header_bytes - 1] ^= 1
    monkeypatch.setattr(container, "_read_sizes", lambda *a: pytest.fail("sizes decoded before the CRC"))
    with pytest.raises(FormatError, match="header checksum mismatch"):
        unpack(bytes(corrupt))
    with pytest.raises(FormatError, match=r"truncated header \(image sizes\)"):
        unpack(data[:FIXED_BYTES + 300_000])
