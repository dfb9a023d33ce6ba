"""The latcomp container: a versioned, checksummed binary format (``docs/format.md``).

Layout (little-endian; varints are unsigned LEB128 in their shortest form)::

    offset  size  field
    0       4     magic  b"LATC"
    4       1     format version (1: rectangular lattice; 2: lattice spec below, stored pixels;
                  3: photos of any size, per-image sizes below; 4: a modality's own fields below)
    5       1     flags: bit 0 lossless; bits 1-2 array layout; bit 3 stored pixels (v2 only); bit 4 image
                  names (v1-v3); bit 5 gray images (v3, C = 3); bits 6-7 zero
    6       8     model id: the first 8 bytes of SHA-256 of the model's weights file
    14      8     dither seed (u64)
    22      4     CRC32 of the payload bytes
    26      4     CRC32 of the decoded content (lattice coordinates, then packed pixels)
    30      var   count N, height H, width W, channels C, payload length P (bytes)
                  [v3: count N, channels C, payload length P; v4: count N, payload length P]
    [v2-v4] var   length L of the lattice spec, then L ASCII bytes (e.g. b"e8*2")
    [v3]    var   height H_i and width W_i of each of the N images
    [gray]  ⌈N/8⌉ bit i (LSB first) set: image i is gray, coded as R = G = B and decoded as luma
    [v4]    var   length E ≥ 1 of the modality's fields, then E bytes (their layout is the modality's)
    [names] var   length B ≥ 2 of the image names, then B bytes: N names, each UTF-8 and a NUL byte
                  (:mod:`latcomp.filenames`)
    …       4     CRC32 of all header bytes before it
    …       P     payload: the ANS stream, u32 words little-endian, trailing zero bytes dropped;
                  with stored pixels: first the raw pixels (numpy.packbits), then the ANS stream

The file is exactly header + payload. Every byte is covered by a CRC32 (the
header CRC covers the two other CRCs), and CRC32 detects every single-bit change
of the data it covers, so any single-bit change anywhere in a file is detected.
Sizes are bounded (:data:`MAX_COUNT` …) and checked against the file length
before anything is allocated, so absurd headers fail at once.

This module knows nothing about models or coders: :func:`pack` and :func:`unpack`
convert between :class:`Header` + payload and bytes.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import FormatError, LimitError
from .filenames import MAX_NAMES_BYTES, pack_names, unpack_names

MAGIC = b"LATC"
#: Version 1: the rectangular lattice (sequential code with one level). Version 2 adds the
#: lattice spec: a reader must decode the coordinates level by level (docs/format.md).
VERSIONS = (1, 2, 3, 4)
#: Version 3 (photos): images of any size, each with its own height and width.
PHOTO_VERSION = 3
#: Version 4: a count, a lattice spec and the fields of a modality whose items are not images of a fixed
#: or recorded size (text: lines); the container checks their length and CRC, the modality their meaning.
FIELDS_VERSION = 4
#: Most bytes of a version-4 header's modality fields.
MAX_FIELDS_BYTES = 1 << 16
#: Longest lattice spec a header may carry, and its alphabet.
MAX_SPEC_BYTES = 64
_SPEC_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789*+")
#: Flag bit of the lossless mode (pixels coded after the lattice point).
FLAG_LOSSLESS = 0x01
#: Flag bit (version 2, lossless only): the pixels are stored raw, 1 bit each, before the ANS stream
#: of the lattice point, because coding them would have made the file larger.
FLAG_STORED = 0x08
#: Flag bit (versions 1 to 3): the header records the name of every image (:mod:`latcomp.filenames`).
FLAG_NAMES = 0x10
#: Flag bit (version 3, 3 channels): a bit per image says which are gray (a batch of gray and colour photos).
FLAG_GRAY = 0x20
#: Array layout of the images given to ``compress`` (returned alike by ``decompress``).
LAYOUT_SHIFT, LAYOUT_MASK = 1, 0x06
LAYOUTS = ("batch", "flat", "single")  # (N, H, W[, C]) / (N, H·W·C) / (H, W[, C])
MODEL_ID_BYTES = 8
MAX_COUNT = 1 << 24
MAX_SIDE = 1 << 16
#: Most latent rows of a photo file (version 3) in this implementation: Σ ⌈H_i/16⌉·⌈W_i/16⌉ ≤ 2^17, one image
#: of 2^25 pixels (33.5 megapixels, e.g. 8K UHD's 7680 × 4320). Decoding holds about 3 KiB per row
#: (coordinates, dither and priors, then the pixels), so a file that lies is refused within 500 MB (a genuine
#: photo at the limit takes about 600 MB: docs/photos.md); every image costs at least one row, so this also
#: bounds a version-3 header's count before its sizes are decoded.
MAX_PHOTO_ROWS = 1 << 17
MAX_CHANNELS = 4
#: Channels of a photo file: grayscale or RGB.
PHOTO_CHANNELS = (1, 3)
MAX_PAYLOAD = 1 << 34
_FIXED = struct.Struct("<4sBB8sQII")
#: Size of the fixed part of the header (before the varints).
FIXED_BYTES = _FIXED.size
_MAX_VARINT_BYTES = 10
#: Bytes of a version-3 size list scanned at a time (:func:`_skip_sizes`).
_SCAN_BYTES = 1 << 20
#: The smallest possible header: fixed part, five one-byte varints, header CRC.
MIN_HEADER_BYTES = FIXED_BYTES + 5 + 4


@dataclass(frozen=True)
class Header:
    """The decoded header of a container (all fields validated)."""

    lossless: bool
    layout: str
    model_id: bytes
    seed: int
    payload_crc: int
    content_crc: int
    count: int
    image_shape: tuple[int, int, int]
    payload_bytes: int
    #: Canonical lattice spec of the latent ("" in version 1: the rectangular lattice).
    lattice: str = ""
    #: The pixels are stored raw instead of coded (lossless only; needs version 2, i.e. a lattice spec).
    stored: bool = False
    #: Version 3 (photos): (height, width) of every image; ``image_shape`` is then (0, 0, C).
    sizes: tuple[tuple[int, int], ...] = ()
    #: Version 4: the modality's own header fields (1 to :data:`MAX_FIELDS_BYTES` bytes); ``image_shape`` is then
    #: (0, 0, 0). None: versions 1 to 3.
    fields: bytes | None = None
    #: Versions 1 to 3, optional: the name of every image (relative paths, checked by
    #: :func:`latcomp.filenames.check_name`); () when the file records none.
    names: tuple[str, ...] = ()
    #: Version 3 with 3 channels, optional: which images are gray (some, not all); () when none is.
    gray: tuple[bool, ...] = ()
    #: Length of the header in bytes (set by :func:`unpack`/:func:`pack`).
    header_bytes: int = 0

    @property
    def version(self) -> int:
        if self.fields is not None:
            return FIELDS_VERSION
        return PHOTO_VERSION if self.sizes else 2 if self.lattice else 1

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @property
    def mode(self) -> str:
        return "lossless" if self.lossless else "lossy"

    @property
    def pixel_count(self) -> int:
        """N·H·W·C (version 3: Σ H_i·W_i·C): the number of pixels the file decodes to."""
        if self.sizes:
            return sum(h * w for h, w in self.sizes) * self.channels
        return self.count * self.image_shape[0] * self.image_shape[1] * self.image_shape[2]

    @property
    def image_pixels(self) -> int:
        """N·H·W (version 3: Σ H_i·W_i): the pixels of the images, the denominator of bits per pixel (version 4: 0)."""
        return self.pixel_count // self.channels if self.channels else 0

    @property
    def stored_bytes(self) -> int:
        """Length of the raw pixels at the start of the payload (0 unless ``stored``)."""
        return -(-self.pixel_count // 8) if self.stored else 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int, name: str) -> tuple[int, int]:
    value = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise FormatError(f"truncated header (in field {name})")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise FormatError(f"corrupt header (non-canonical {name})")
            return value, pos + i + 1
    raise FormatError(f"corrupt header (field {name} too long)")


def _check_fields(h: Header) -> None:
    if h.layout not in LAYOUTS:
        raise FormatError(f"corrupt header (unknown layout {h.layout!r})")
    if len(h.model_id) != MODEL_ID_BYTES:
        raise FormatError("model id must have 8 bytes")
    if not 0 <= h.seed < 2**64:
        raise FormatError("seed out of range")
    if not 1 <= h.count <= MAX_COUNT:
        raise FormatError(f"image count {h.count} out of range (1..{MAX_COUNT})")
    if h.fields is not None:
        _check_modality_fields(h)
    elif h.sizes:
        _check_photo_fields(h)
    else:
        height, width, channels = h.image_shape
        if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE and 1 <= channels <= MAX_CHANNELS):
            raise FormatError(f"image shape {h.image_shape} out of range")
    if h.layout == "single" and h.count != 1:
        raise FormatError("corrupt header (single-image layout with several images)")
    if not 0 <= h.payload_bytes <= MAX_PAYLOAD:
        raise FormatError(f"payload length {h.payload_bytes} out of range")
    spec = h.lattice.encode("ascii", "replace")
    if len(spec) > MAX_SPEC_BYTES or not set(spec) <= _SPEC_CHARS:
        raise FormatError("corrupt header (bad lattice spec)")
    if h.stored and not (h.lossless and h.lattice):
        raise FormatError("corrupt header (stored pixels need the lossless mode and format version 2)")
    if h.names and (len(h.names) != h.count or h.fields is not None):
        raise FormatError("corrupt header (image names need one per image and format version 1 to 3)")
    if h.gray and (len(h.gray) != h.count or not h.sizes or h.channels != 3 or all(h.gray) or not any(h.gray)):
        raise FormatError("corrupt header (gray images need a photo file of 3 channels, one bit per image, and "
                          "some gray and some colour images)")
    if h.payload_bytes < h.stored_bytes:
        raise FormatError(f"corrupt header (payload of {h.payload_bytes} bytes is shorter than its "
                          f"{h.stored_bytes} bytes of stored pixels)")


def _check_photo_fields(h: Header) -> None:
    """Version 3: N sizes within bounds, 1 or 3 channels, a lattice spec, lossy, batch or single layout."""
    if len(h.sizes) != h.count or h.image_shape[:2] != (0, 0) or h.channels not in PHOTO_CHANNELS:
        raise FormatError("corrupt header (photo sizes or channels)")
    if not all(1 <= s <= MAX_SIDE for size in h.sizes for s in size):
        raise FormatError(f"image sizes out of range (1..{MAX_SIDE})")
    if h.lossless or h.stored or not h.lattice or h.layout == "flat":
        raise FormatError("corrupt header (a photo file is lossy, has a lattice spec and no flat layout)")


def _check_modality_fields(h: Header) -> None:
    """Version 4: 1 to MAX_FIELDS_BYTES bytes of fields, image shape (0, 0, 0), no sizes or stored pixels, a lattice."""
    if not 1 <= len(h.fields) <= MAX_FIELDS_BYTES or h.image_shape != (0, 0, 0) or h.sizes or h.stored \
            or not h.lattice:
        raise FormatError("corrupt header (a version-4 file has 1 to 65536 bytes of fields, a lattice spec, and no "
                          "image shape, sizes or stored pixels)")


def _header_fields(h: Header) -> tuple[int, ...]:
    """The varints after the fixed part (before the lattice spec)."""
    if h.fields is not None:
        return h.count, h.payload_bytes
    if h.sizes:
        return h.count, h.channels, h.payload_bytes
    return (h.count, *h.image_shape, h.payload_bytes)


def pack(header: Header, payload: bytes) -> bytes:
    """Serialize ``header`` (its ``payload_bytes`` is set from ``payload``) and the payload."""
    flags = (FLAG_LOSSLESS if header.lossless else 0) | (LAYOUTS.index(header.layout) << LAYOUT_SHIFT) | \
        (FLAG_STORED if header.stored else 0) | (FLAG_NAMES if header.names else 0) | (FLAG_GRAY if header.gray else 0)
    header = dataclasses.replace(header, payload_bytes=len(payload), payload_crc=zlib.crc32(payload))
    _check_fields(header)
    head = _FIXED.pack(MAGIC, header.version, flags, header.model_id, header.seed, header.payload_crc,
                       header.content_crc)
    head += b"".join(_varint(v) for v in _header_fields(header))
    if header.lattice:
        head += _varint(len(header.lattice)) + header.lattice.encode("ascii")
    head += b"".join(_varint(v) for size in header.sizes for v in size)
    head += np.packbits(np.array(header.gray, bool), bitorder="little").tobytes()
    if header.fields is not None:
        head += _varint(len(header.fields)) + header.fields
    if header.names:
        names = pack_names(header.names)
        head += _varint(len(names)) + names
    head += struct.pack("<I", zlib.crc32(head))
    return head + payload


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and verify a container: returns the header and the payload, or raises FormatError.

    Checks, in order: magic, version, header fields and header CRC (a photo header's size list is located
    first and decoded only after the CRC), the file length,
    the payload CRC. Cheap (no allocation beyond a slice of ``data``).
    """
    data = bytes(data)
    if data and len(data) < len(MAGIC) and MAGIC.startswith(data) or MIN_HEADER_BYTES > len(data) >= 4 \
            and data.startswith(MAGIC):
        raise FormatError(f"truncated file ({len(data)} bytes; a latcomp header has at least "
                          f"{MIN_HEADER_BYTES})")
    if data[:len(MAGIC)] != MAGIC:
        raise FormatError(f"not a latcomp file ({_describe(data)})")
    _, version, flags, model_id, seed, payload_crc, content_crc = _FIXED.unpack_from(data)
    if version not in VERSIONS:
        raise FormatError(f"unsupported format version {version} (this latcomp reads versions "
                          f"{', '.join(map(str, VERSIONS))}; the file is corrupt or from another latcomp version)")
    pos = FIXED_BYTES
    values = []
    names = {PHOTO_VERSION: ("count", "channels", "payload length"), FIELDS_VERSION: ("count", "payload length")}.get(
        version, ("count", "height", "width", "channels", "payload length"))
    for name in names:
        value, pos = _read_varint(data, pos, name)
        values.append(value)
    values[1:1] = {PHOTO_VERSION: [0, 0], FIELDS_VERSION: [0, 0, 0]}.get(version, [])
    lattice, sizes, fields = "", (), None
    if version >= 2:
        length, pos = _read_varint(data, pos, "lattice spec length")
        if not 1 <= length <= MAX_SPEC_BYTES or len(data) < pos + length:
            raise FormatError("corrupt header (bad lattice spec length)")
        raw = data[pos:pos + length]
        pos += length
        if not set(raw) <= _SPEC_CHARS:
            raise FormatError("corrupt header (bad lattice spec)")
        lattice = raw.decode("ascii")
    sizes_at = pos
    if version == PHOTO_VERSION:  # found, not decoded: the header CRC is checked first
        pos = _skip_sizes(data, pos, values[0])
    gray_at, has_gray = pos, bool(flags & FLAG_GRAY) and version == PHOTO_VERSION
    if has_gray:
        pos += -(-values[0] // 8)
    if version == FIELDS_VERSION:
        fields, pos = _read_fields(data, pos)
    names_at = pos
    if flags & FLAG_NAMES and version != FIELDS_VERSION:  # found, not decoded: the header CRC is checked first
        pos = _skip_names(data, pos)
    if len(data) < pos + 4:
        raise FormatError("truncated header")
    (stored_crc,) = struct.unpack_from("<I", data, pos)
    if zlib.crc32(data[:pos]) != stored_crc:
        raise FormatError("header checksum mismatch: the file is corrupt")
    if version == PHOTO_VERSION:
        sizes = _read_sizes(data, sizes_at, values[0])
    names = _read_names(data, names_at, values[0]) if pos > names_at else ()
    gray = _read_gray(data[gray_at:names_at], values[0]) if has_gray else ()
    if flags & ~(FLAG_LOSSLESS | LAYOUT_MASK | (FLAG_STORED if version == 2 else 0) |
                 (FLAG_NAMES if version != FIELDS_VERSION else 0) | (FLAG_GRAY if version == PHOTO_VERSION else 0)):
        raise FormatError(f"corrupt header (unknown flags 0x{flags:02x})")
    layout_index = (flags & LAYOUT_MASK) >> LAYOUT_SHIFT
    count, height, width, channels, payload_bytes = values
    header = Header(lossless=bool(flags & FLAG_LOSSLESS),
                    layout=LAYOUTS[layout_index] if layout_index < len(LAYOUTS) else "?",
                    model_id=model_id, seed=seed, payload_crc=payload_crc, content_crc=content_crc,
                    count=count, image_shape=(height, width, channels), payload_bytes=payload_bytes,
                    lattice=lattice, stored=bool(flags & FLAG_STORED), sizes=sizes, fields=fields,
                    names=names, gray=gray, header_bytes=pos + 4)
    _check_fields(header)
    expected = header.header_bytes + payload_bytes
    if len(data) < expected:
        raise FormatError(f"truncated file ({len(data)} bytes, expected {expected})")
    if len(data) > expected:
        raise FormatError(f"trailing data after the payload ({len(data)} bytes, expected {expected})")
    payload = data[header.header_bytes:]
    if zlib.crc32(payload) != payload_crc:
        raise FormatError("payload checksum mismatch: the file is corrupt")
    return header, payload


def _skip_sizes(data: bytes, pos: int, count: int) -> int:
    """The end of the ``count`` (height, width) varint pairs of a version-3 header at ``pos``, found without
    decoding them: by counting their last bytes (< 0x80) a chunk at a time, so a header of many sizes with a
    bad CRC costs a scan of its bytes and one chunk of memory before the CRC refuses it."""
    if count > MAX_PHOTO_ROWS:
        raise LimitError(f"the file claims {count} photos; a photo file holds at most {MAX_PHOTO_ROWS} latent rows "
                         f"of 16×16 pixels, and each image takes at least one")
    if not 1 <= count <= MAX_COUNT or len(data) < pos + 2 * count:
        raise FormatError("truncated header (image sizes)")
    view, left = np.frombuffer(data, np.uint8), 2 * count
    while left:
        last = view[pos:pos + _SCAN_BYTES] < 0x80
        if not len(last):
            raise FormatError("truncated header (image sizes)")
        found = int(np.count_nonzero(last))
        if found >= left:
            return pos + int(np.flatnonzero(last)[left - 1]) + 1
        left, pos = left - found, pos + len(last)
    return pos


def _read_sizes(data: bytes, pos: int, count: int) -> tuple[tuple[int, int], ...]:
    """The ``count`` (height, width) pairs of a version-3 header at ``pos`` (after :func:`_skip_sizes` and the
    header CRC)."""
    sizes = []
    for _ in range(count):
        height, pos = _read_varint(data, pos, "height")
        width, pos = _read_varint(data, pos, "width")
        sizes.append((height, width))
    return tuple(sizes)


def _read_fields(data: bytes, pos: int) -> tuple[bytes, int]:
    """The modality fields of a version-4 header (their length bounded before they are sliced)."""
    length, pos = _read_varint(data, pos, "fields length")
    if not 1 <= length <= MAX_FIELDS_BYTES or len(data) < pos + length:
        raise FormatError("corrupt header (bad fields length)")
    return data[pos:pos + length], pos + length


def _read_gray(bits: bytes, count: int) -> tuple[bool, ...]:
    """The ``count`` gray-image bits of a version-3 header (LSB first; the padding bits zero)."""
    gray = np.unpackbits(np.frombuffer(bits, np.uint8), bitorder="little")
    if gray[count:].any():
        raise FormatError("corrupt header (gray-image padding bits)")
    return tuple(bool(bit) for bit in gray[:count])


def _skip_names(data: bytes, pos: int) -> int:
    """The end of the image names field at ``pos`` (its length bounded by the bytes present, nothing decoded)."""
    length, pos = _read_varint(data, pos, "names length")
    if not 2 <= length <= MAX_NAMES_BYTES or len(data) < pos + length:
        raise FormatError("corrupt header (bad image names length)")
    return pos + length


def _read_names(data: bytes, pos: int, count: int) -> tuple[str, ...]:
    """The names of the field at ``pos`` (after :func:`_skip_names` and the header CRC), checked."""
    length, pos = _read_varint(data, pos, "names length")
    return unpack_names(data[pos:pos + length], count)


#: Header fields that label a file's images without changing its payload or content (:func:`relabeled`).
LABELS = ("names", "gray")


def relabeled(data: bytes, **labels: tuple) -> bytes:
    """The container ``data`` with the given :data:`LABELS` set in its header: ``names`` (one per image, or ()),
    ``gray`` (one bit per image of a 3-channel photo file, some set, or ()). The payload and its content are
    unchanged, so the images decode to the same pixels."""
    if not set(labels) <= set(LABELS):
        raise TypeError(f"only {', '.join(LABELS)} can be relabeled")
    header, payload = unpack(data)
    return pack(dataclasses.replace(header, **{name: tuple(value) for name, value in labels.items()}), payload)


def words_to_payload(words: np.ndarray) -> bytes:
    """ANS words (u32) → payload bytes, little-endian, without the trailing zero bytes."""
    return np.asarray(words, np.uint32).astype("<u4").tobytes().rstrip(b"\x00")


def payload_to_words(payload: bytes) -> np.ndarray:
    """Payload bytes → u32 words (zero-padded to a whole word); FormatError if not canonical."""
    if payload and payload[-1] == 0:
        raise FormatError("corrupt payload (ends in a zero byte)")
    padded = payload + b"\x00" * (-len(payload) % 4)
    return np.frombuffer(padded, "<u4").astype(np.uint32)


def content_crc(k: np.ndarray, pixels: np.ndarray | list[np.ndarray] | None = None, zero_pixels: int = 0) -> int:
    """CRC32 of the decoded content: coordinates as int64 LE, then pixels packed 8 per byte.

    ``pixels`` may be one array or a list of consecutive parts (row-major), followed by
    ``zero_pixels`` pixels of value 0 that are never materialized: a decoder can check the
    content of a file whose stream ends in zeros before it allocates them. ``None`` (and no
    zeros) is the lossy content: the coordinates alone.
    """
    crc = zlib.crc32(np.ascontiguousarray(k, "<i8").tobytes())
    if pixels is None and not zero_pixels:
        return crc
    carry = np.zeros(0, np.uint8)  # pixels of an incomplete byte, completed by the next part

    def feed(bits: np.ndarray) -> None:
        nonlocal crc, carry
        bits = np.concatenate([carry, bits])
        whole = bits.size - bits.size % 8
        crc = zlib.crc32(np.packbits(bits[:whole]).tobytes(), crc)
        carry = bits[whole:]

    for part in [] if pixels is None else [pixels] if isinstance(pixels, np.ndarray) else pixels:
        feed(np.asarray(part, np.uint8).ravel())
    head = min(zero_pixels, -carry.size % 8)
    feed(np.zeros(head, np.uint8))
    zero_bytes, rest = divmod(zero_pixels - head, 8)
    block = bytes(min(zero_bytes, 1 << 20))
    while zero_bytes:
        crc = zlib.crc32(block[:zero_bytes], crc)
        zero_bytes -= min(zero_bytes, len(block))
    carry = np.concatenate([carry, np.zeros(rest, np.uint8)])
    return zlib.crc32(np.packbits(carry).tobytes(), crc) if carry.size else crc


def model_id_hex(model_id: bytes) -> str:
    return model_id.hex()


_KNOWN = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
          b"PK\x03\x04": "a zip/.npz archive", b"\x1f\x8b": "a gzip file", b"RIFF": "a RIFF/WebP file",
          b"\x93NUMPY": "a .npy array", b"BM": "a BMP image"}


def _describe(data: bytes) -> str:
    if not data:
        return "the file is empty"
    for magic, what in _KNOWN.items():
        if data.startswith(magic):
            return f"it looks like {what}"
    return f"bad magic {data[:4].hex(' ')}, expected {MAGIC.hex(' ')}"
