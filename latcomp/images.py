"""Reading images to compress and writing decoded ones (Pillow, numpy; no torch).

Inputs (regular files of bounded size, or ``-`` for standard input, see
:func:`latcomp.fileio.read_input`), recognized by their content: any image Pillow
reads, an ``.npz`` (array ``x`` or its only array), an ``.npy`` or an IDX file
(MNIST's ``*-ubyte[.gz]``); a directory gives the image files under it, sorted by their
relative paths, which are their names in the container (what it skips is listed). An
array's shape and type are checked from its header before its data is read; so are an
image's size (at most :data:`MAX_IMAGE_PIXELS`) and frames (an animation or a multi-page file
is refused), and every failure or warning of Pillow is one line naming the
file. Images are read as a viewer shows them (EXIF orientation applied). Each input is a
digit or a photo by what it is (:func:`image_kind`).

Pixels become float intensities in [0, 1]. Binary masks are binary at any scale:
0/1 (bool, 1-bit images, or 0/1 numbers) and 0/255 values both give 0 and 1; other
8-bit values are divided by 255, 16-bit ones by 65535 (exactly). Conversions that
lose nothing (a gray palette, gray RGB, an opaque alpha channel) happen silently;
lossy ones (transparency, colour, resizing) need ``resize=True`` and are each
reported through ``warn``.

Outputs: a PNG per image (8-bit grayscale for one channel), a directory of PNGs,
an ``.npz`` with the array ``x``, or a PNG on standard output; every output is
written atomically and refused if it is a link or a special file (:mod:`latcomp.fileio`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .errors import CodecError, FormatError, InputError, LimitError, OutputError
from .fileio import MAX_INPUT_BYTES, atomic_write_bytes, atomic_write_dir, atomic_write_stream, read_input, write_stdout
from .filenames import directories, pack_names, png_names

#: File name suffixes taken from a directory.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                            ".pbm", ".ppm", ".pnm"})
#: ``warn(message)`` is told about every lossy conversion (default: :func:`warnings.warn`).
Warn = Callable[[str], None]
_IDX_NDIM = {0x0801: 1, 0x0803: 3}
#: Largest image (width × height) read; larger ones are refused before they are decoded.
MAX_IMAGE_PIXELS = 1 << 25


def _intensities(arr: np.ndarray, source: str) -> np.ndarray:
    """Array values → float64 intensities in [0, 1] (module docstring: masks are binary at any scale)."""
    if arr.dtype == bool or arr.size == 0:
        return arr.astype(np.float64)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputError(f"{source}: float values must be finite")
    low, high = arr.min(), arr.max()
    if arr.dtype.kind in "iu":
        if low < 0 or high > 255:
            raise InputError(f"{source}: integer values must be in 0..255")
        return arr.astype(np.float64) if high <= 1 else arr / 255.0
    if low >= 0 and high <= 1:
        return arr.astype(np.float64)
    if np.all((arr == 0) | (arr == 255)):
        return arr / 255.0
    raise InputError(f"{source}: float values must be intensities in [0, 1] (or a 0/255 mask)")


def _check_header(shape: tuple[int, ...], dtype: np.dtype, source: str,
                  image_shape: tuple[int, int, int]) -> None:
    """Check an array's shape and type from its file header, before its data is read."""
    from .codec import MAX_PIXELS, image_layout

    if dtype.kind not in "biuf" or dtype.hasobject:
        raise InputError(f"{source}: unsupported array dtype {dtype}")
    size = int(np.prod(shape, dtype=object))
    if size > MAX_PIXELS or size * dtype.itemsize > MAX_INPUT_BYTES:
        raise LimitError(f"{source}: array of shape {shape} and type {dtype} is larger than the limits of "
                         f"{MAX_PIXELS} pixels and {MAX_INPUT_BYTES} bytes")
    try:
        image_layout(tuple(shape), image_shape)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def _read_exactly(stream: io.BufferedIOBase, size: int, source: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise InputError(f"{source}: truncated array data ({len(data)} of {size} bytes)")
    return data


def _npy_array(stream: io.BufferedIOBase, source: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """An ``.npy`` stream: header first (shape and type checked), then exactly the data it announces."""
    fmt = np.lib.format
    version = fmt.read_magic(stream)
    read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if read_header is None:
        raise InputError(f"{source}: unsupported .npy version {version}")
    shape, fortran, dtype = read_header(stream)
    _check_header(shape, dtype, source, image_shape)
    data = _read_exactly(stream, int(np.prod(shape)) * dtype.itemsize, source)
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _npz_array(data: bytes, source: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
        if "x" not in names and len(names) != 1:
            raise InputError(f"{source}: .npz holds {len(names)} arrays {names}; name the images 'x'")
        with archive.open(("x" if "x" in names else names[0]) + ".npy") as member:
            return _npy_array(member, source, image_shape)


def _idx_array(data: bytes, source: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not): header first (dims checked), then exactly its data."""
    stream = gzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    magic = int.from_bytes(stream.read(4), "big")
    if magic not in _IDX_NDIM:
        raise InputError(f"{source}: bad IDX magic 0x{magic:08x}; expected 0x00000801 or 0x00000803")
    head = _read_exactly(stream, 4 * _IDX_NDIM[magic], source)
    dims = tuple(int.from_bytes(head[i:i + 4], "big") for i in range(0, len(head), 4))
    _check_header(dims, np.dtype(np.uint8), source, image_shape)
    body = _read_exactly(stream, int(np.prod(dims)), source)
    if stream.read(1):
        raise InputError(f"{source}: trailing data after the IDX array of shape {dims}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def read_array(data: bytes, source: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """The bytes of an ``.npz``, ``.npy`` or IDX file as float64 intensities in [0, 1]."""
    try:
        if data.startswith(b"PK"):
            arr = _npz_array(data, source, image_shape)
        elif data.startswith(b"\x93NUMPY"):
            arr = _npy_array(io.BytesIO(data), source, image_shape)
        else:
            arr = _idx_array(data, source, image_shape)
    except (InputError, LimitError):
        raise
    except (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
            zlib.error) as exc:
        raise InputError(f"{source}: unreadable array file ({exc})") from None
    return _intensities(arr, source)


def _is_array(data: bytes) -> bool:
    """True for the bytes of an ``.npz``, ``.npy``, IDX or gzip (IDX) file, False for images."""
    return data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"\x1f\x8b", b"\x00\x00\x08\x01",
                            b"\x00\x00\x08\x03"))


def _image_pixels(img, channels: int) -> tuple[np.ndarray, list[str]]:
    """A Pillow image as float intensities (H, W, channels), and the lossy steps this took."""
    lost = []
    palette = img.mode in ("P", "PA")
    if palette:
        img = img.convert("RGBA")  # exact; losses show below as colour or transparency
    elif img.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "F") and not img.mode.startswith("I;16"):
        lost.append(f"colour mode {img.mode} converted to RGB")
        img = img.convert("RGBA")
    arr = np.asarray(img)
    arr = arr[..., None] if arr.ndim == 2 else arr
    if arr.shape[-1] in (2, 4):
        if np.any(arr[..., -1] < (65535 if arr.dtype == np.uint16 else 255)):
            lost.append("alpha channel dropped, losing its transparency")
        arr = arr[..., :-1]
    if arr.dtype.kind in "iu" and arr.dtype.itemsize > 1 and arr.size and arr.max() > 1:
        if arr.min() < 0 or arr.max() > 65535:
            raise InputError(f"{img.mode} image values must be in 0..65535")
        x = arr / 65535.0  # 16-bit intensities, exactly
    else:
        x = _intensities(arr, f"{img.mode} image")
    if x.shape[-1] == 3 and channels == 1:
        if np.all(x[..., :1] == x[..., 1:]):
            x = x[..., :1]  # gray: exact
        else:
            lost.append(f"{'palette ' * palette}colours converted to grayscale")
            x = x @ np.array([[0.299], [0.587], [0.114]])  # ITU-R 601-2 luma, as Pillow's "L"
    elif x.shape[-1] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=-1)
    return x, lost


def _resample(x: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize float intensities (H, W, C) to (height, width, C) with Lanczos, clipped to [0, 1]."""
    from PIL import Image

    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c], np.float32), "F")
                         .resize((width, height), Image.Resampling.LANCZOS)) for c in range(x.shape[-1])]
    return np.clip(np.stack(planes, axis=-1).astype(np.float64), 0.0, 1.0)


#: EXIF tag of the orientation in which a viewer shows an image (1: as stored).
_ORIENTATION = 0x0112


def _check_image_header(img: Any) -> list[str]:
    """Refuse from its header, before decoding, an image over :data:`MAX_IMAGE_PIXELS` or of several frames;
    the lossy steps Pillow will take that its header announces (16-bit colour cut to 8 bits; an MPO's extra
    pictures)."""
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise LimitError(f"image of {width}×{height} pixels is larger than the limit of {MAX_IMAGE_PIXELS} pixels")
    lost = []
    if getattr(img, "is_animated", False):
        if img.format != "MPO":
            raise InputError(f"a {img.format} of {img.n_frames} frames: latcomp codes still images, and coding "
                             f"the first alone would lose the others; save each frame as an image of its own "
                             f"(several images encode into one .lat)")
        lost.append(f"multi-picture JPEG (MPO): only its primary image is coded, {img.n_frames - 1} other "
                    f"picture{'s' * (img.n_frames > 2)} dropped")
    if not img.mode.startswith("I") and any(map(_more_than_8_bits, img.tile)):
        lost.append(f"16 bits per sample ({img.mode}) cut to 8 bits")
    return lost


def _more_than_8_bits(tile: Any) -> bool:
    """Whether Pillow decodes this tile of samples of more than 8 bits into 8 (PNG and TIFF rawmodes
    ``…;16B/L/N``, a PPM of maxval over 255); 16-bit gray is read as mode I;16 and is not cut."""
    args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
    if tile.codec_name == "ppm":
        return len(args) > 1 and isinstance(args[1], int) and args[1] > 255
    return bool(args) and re.search(r";16[BLN]$", str(args[0])) is not None


def _oriented(img: Any, warn: Warn) -> Any:
    """The image as a viewer shows it: its EXIF orientation applied (a transposition, nothing lost)."""
    from PIL import ImageOps

    try:
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception as exc:  # noqa: BLE001 - any failure to parse EXIF: the image itself is still read
        warn(f"unreadable EXIF data ignored ({type(exc).__name__})")
        return img
    # exif_transpose copies even an image it does not turn: called only for one it turns
    return ImageOps.exif_transpose(img) if orientation in range(2, 9) else img


def _bomb_limit(exc: Exception, source: str) -> LimitError:
    """Pillow's decompression-bomb error (from the header, above twice its own limit) as the pixel limit's error."""
    claimed = re.search(r"\((\d+) pixels\)", str(exc))
    return LimitError(f"{source}: image of {claimed.group(1) + ' pixels' if claimed else 'more pixels'} is larger "
                      f"than the limit of {MAX_IMAGE_PIXELS} pixels")


@contextlib.contextmanager
def _opened(data: bytes, source: str, warn: Warn | None = None) -> Iterator[tuple[Any, list[str]]]:
    """Open an image file's bytes with Pillow, its header checked (:func:`_check_image_header`): the image, not yet
    decoded, and the lossy steps its header announces.

    Within the block, any failure is one :class:`InputError` (or :class:`LimitError`) line
    naming ``source``; when it ends without one, each warning Pillow gave goes to ``warn`` as
    one line (its decompression-bomb warning never: the pixel limit here is lower than Pillow's).
    """
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                yield img, _check_image_header(img)
        except CodecError as exc:
            raise type(exc)(f"{source}: {exc}") from None
        except Image.DecompressionBombError as exc:
            raise _bomb_limit(exc, source) from None
        except UnidentifiedImageError:
            raise InputError(f"{source}: not an image Pillow can read") from None
        except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, TypeError, struct.error,
                zlib.error) as exc:
            raise InputError(f"{source}: unreadable image ({' '.join(str(exc).split()) or type(exc).__name__})") \
                from None
    for message in dict.fromkeys(' '.join(str(item.message).split()) for item in caught):  # each once, in order
        (warn or warnings.warn)(f"{source}: {message}")


def _decoded(data: bytes, source: str, convert: Callable[[Any], tuple[np.ndarray, list[str]]],
             warn: Warn | None = None) -> tuple[str, tuple[int, int], np.ndarray, list[str]]:
    """Decode an image file's bytes (:func:`_opened`), as a viewer shows it (its EXIF orientation applied):
    (mode, (width, height), ``convert``'s pixels, the lossy steps of the header and of ``convert``)."""
    with _opened(data, source, warn) as (img, lost):
        img.load()
        oriented = _oriented(img, lambda message: (warn or warnings.warn)(f"{source}: {message}"))
        x, converted = convert(oriented)
        return img.mode, oriented.size, x, lost + converted


def read_image(data: bytes, source: str, image_shape: tuple[int, int, int], resize: bool = False,
               warn: Warn | None = None) -> np.ndarray:
    """The bytes of one image file as float64 intensities (H, W) or (H, W, C) for the model's ``image_shape``.

    Conversions that lose nothing are silent. A lossy one (transparency, colour, another
    size) is an :class:`InputError` unless ``resize``; then each is reported to ``warn``.
    """

    h, w, c = image_shape
    mode, (width, height), x, lost = _decoded(data, source, lambda img: _image_pixels(img, c), warn)
    if lost and not resize:
        raise InputError(f"{source}: image mode {mode} but the model takes {'grayscale' if c == 1 else 'RGB'} "
                         f"images, and converting it is lossy: {lost[0]}; pass --resize to convert")
    if (width, height) != (w, h):
        if not resize:
            raise InputError(f"{source}: image is {width}×{height} but the model takes {w}×{h}; "
                             f"pass --resize to resample")
        lost.append(f"resized from {width}×{height} to {w}×{h}")
        x = _resample(x, w, h)
    for step in lost:
        (warn or warnings.warn)(f"{source}: {step}")
    return x[..., 0] if c == 1 else x


def list_inputs(inputs: list[str | Path], warn: Warn | None = None) -> list[str]:
    """Expand directories to their image files (:func:`input_files`); ``-`` is stdin."""
    return [path for path, _ in input_files(inputs, warn)]


def input_files(inputs: list[str | Path], warn: Warn | None = None) -> list[tuple[str, str]]:
    """(path, name) of every input file: a directory gives the image files under it, its sub-directories'
    too, sorted by their paths relative to it, which are their names (``2024/a.jpg``); a file given by
    itself is named by its base name, ``-`` (standard input, at most once) by ``-``.

    Hidden entries are skipped silently; every other entry under a directory that is not an image file
    (other suffixes, links to directories or special files) is listed to ``warn`` in one line per directory.
    """
    files: list[tuple[str, str]] = []
    for item in map(str, inputs):
        if item != "-" and os.path.isdir(item):
            found, skipped = _directory_images(Path(item))
            if not found:
                raise InputError(f"{item}: no image files in this directory")
            if skipped:
                shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
                (warn or warnings.warn)(f"{item}: skipped {len(skipped)} entr{'ies' if len(skipped) > 1 else 'y'} "
                                        f"that {'are' if len(skipped) > 1 else 'is'} not an image file: {shown}")
            files.extend((os.path.join(item, *name.split("/")), name) for name in found)
        else:
            files.append((item, item if item == "-" else Path(item).name))
    if [path for path, _ in files].count("-") > 1:
        raise InputError("standard input (-) can be read only once")
    return files


def _directory_images(top: Path) -> tuple[list[str], list[str]]:
    """The image files under ``top`` (not through links to directories) and its other entries (hidden ones
    aside), as sorted relative paths; a directory is listed as ``name/``."""
    found, skipped, pending = [], [], [PurePosixPath()]
    while pending:
        relative = pending.pop()
        for entry in (top / relative).iterdir():
            name = relative / entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                pending.append(name)
            elif entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
                found.append(str(name))
            else:
                skipped.append(f"{name}/" if entry.is_dir() else str(name))
    return sorted(found), sorted(skipped)


def image_names(inputs: list[str | Path], blobs: list[tuple[str, bytes]], warn: Warn | None = None
                ) -> tuple[str, ...]:
    """The names an encode of ``inputs`` (read as ``blobs``) records (:mod:`latcomp.filenames`): those of
    :func:`input_files` when the run has a directory or several files and every input is an image file (no
    array, no standard input), else (). Names that a decoder could not write (two images under one name, a
    control character) are recorded for no image, and ``warn`` is told so."""
    names = tuple(name for _, name in input_files(inputs, warn=lambda message: None))
    folder = any(item != "-" and os.path.isdir(item) for item in map(str, inputs))
    if not (folder or len(names) > 1) or "-" in names or any(_is_array(data) for _, data in blobs):
        return ()
    try:
        pack_names(names)
        png_names(names)
    except FormatError as exc:
        (warn or warnings.warn)(f"{exc}: the file records no names (a directory output numbers the images)")
        return ()
    return names


def read_inputs(inputs: list[str | Path], warn: Warn | None = None) -> list[tuple[str, bytes]]:
    """(source name, bytes) of every CLI input (directories expanded by :func:`list_inputs`, which tells
    ``warn`` what it skips; ``-`` is standard input), each read once with :func:`latcomp.fileio.read_input`
    (regular files of bounded size)."""
    return [("standard input" if path == "-" else path, read_input(path)) for path in list_inputs(inputs, warn)]


def load_inputs(inputs: list[str | Path], image_shape: tuple[int, int, int], resize: bool = False,
                warn: Warn | None = None, blobs: list[tuple[str, bytes]] | None = None) -> np.ndarray:
    """Read the CLI inputs as one array of intensities in [0, 1] (``blobs``: their bytes, if already read).

    One image file gives an (H, W[, C]) array (a single-image container); one array file
    keeps its own layout; anything else is stacked to (N, H, W[, C]). The total is bounded
    by the codec's ``MAX_PIXELS``.
    """
    from .codec import MAX_PIXELS, image_layout

    blobs = read_inputs(inputs) if blobs is None else blobs
    h, w, c = image_shape
    shape = (h, w) if c == 1 else (h, w, c)
    parts, pixels = [], 0
    for source, data in blobs:
        arr = read_array(data, source, image_shape) if _is_array(data) else \
            read_image(data, source, image_shape, resize, warn)
        pixels += arr.size
        if pixels > MAX_PIXELS:
            raise LimitError(f"the inputs hold more than the limit of {MAX_PIXELS} pixels per file; "
                             f"split them into several files")
        if len(blobs) == 1 and not (len(inputs) == 1 and os.path.isdir(str(inputs[0]))):
            return arr
        parts.append(arr.reshape((-1, *shape)) if image_layout(arr.shape, image_shape) != "single" else arr[None])
    return np.concatenate(parts)


def image_kind(data: bytes, source: str, digit_shape: tuple[int, int, int]) -> str:
    """What one input is, by itself and never by the other inputs of a run: ``"digit"`` or ``"photo"``.

    Arrays (``.npz``, ``.npy``, IDX) are digits. An image is a digit when it is a binary mask
    (two levels, 0 and the full scale, at any bit depth) of the digit model's size
    ``digit_shape`` whose mode converts to it without loss; every other image, a gray 28×28
    photo too, is a photo. Only the header is read unless the size is the digit model's; an
    image that cannot be read at all fails here, in one line.
    """
    if _is_array(data):
        return "digit"
    with _opened(data, source, warn=lambda message: None) as (img, lost):
        size = img.size
    if size != digit_shape[1::-1] or lost:
        return "photo"
    try:
        x = read_image(data, source, digit_shape, warn=lambda message: None)
    except InputError:  # converting it to gray loses something: colour, transparency
        return "photo"
    return "digit" if np.all((x == 0) | (x == 1)) else "photo"


def _photo_pixels(img: Any) -> tuple[np.ndarray, list[str]]:
    """A Pillow image as uint8 pixels (H, W, 1) gray or (H, W, 3) RGB, and the lossy steps this took.

    8-bit images stay integers (one byte a sample, no float copy of a large photo); a
    palette gives RGB, or gray if all its colours are gray; 16-bit samples v become
    round(v·255/65535) = round(v/257), exactly in integers.
    """
    lost = []
    palette = img.mode in ("P", "PA")
    if palette:
        img = img.convert("RGBA")  # exact; losses show below as transparency
    elif img.mode == "1":
        img = img.convert("L")  # exact: 0 and 255
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not img.mode.startswith("I;16"):
        lost.append(f"colour mode {img.mode} converted to RGB")
        img = img.convert("RGB")
    arr = np.asarray(img)
    arr = arr[..., None] if arr.ndim == 2 else arr
    if arr.shape[-1] in (2, 4):
        if np.any(arr[..., -1] != 255):
            lost.append("alpha channel dropped, losing its transparency")
        arr = arr[..., :-1]
    if palette and np.all(arr[..., :1] == arr[..., 1:]):
        arr = arr[..., :1]  # a gray palette: gray, exactly
    return (arr, lost) if arr.dtype == np.uint8 else (_eight_bits(arr, img.mode, lost), lost)


def _eight_bits(arr: np.ndarray, mode: str, lost: list[str]) -> np.ndarray:
    """Samples of more than 8 bits (16-bit or 32-bit integers, floats) as 8-bit levels; a lossy rounding is
    appended to ``lost``."""
    if arr.dtype.kind == "f":
        x = _intensities(arr, f"{mode} image") * 255.0
        levels = np.rint(x)
        exact = np.array_equal(levels, x)
    else:
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{mode} image values must be in 0..65535")
        if arr.size and arr.max() <= 1:
            return arr.astype(np.uint8) * np.uint8(255)  # a 0/1 mask
        quotient, remainder = np.divmod(arr, 257)
        levels = quotient + (remainder >= 129)  # round(v/257): 257 is odd, so no sample is a tie
        exact = not np.any(remainder)
    if not exact:
        lost.append("more than 8 bits per sample, rounded to 8 bits")
    return levels.astype(np.uint8)


def read_photo(data: bytes, source: str, warn: Warn | None = None) -> np.ndarray:
    """An image file for the photo codec: (H, W) gray or (H, W, 3) RGB uint8, as a viewer shows it.

    Lossless conversions are silent (palettes, 1-bit, an opaque alpha channel, the EXIF
    orientation); lossy ones are reported to ``warn``: transparency dropped, 16-bit samples
    rounded (or, for colour, cut by Pillow) to 8 bits, other colour modes (CMYK, …) converted
    to RGB, an MPO's extra pictures dropped. Animations and multi-page files are refused.
    """
    _, _, x, lost = _decoded(data, source, _photo_pixels, warn)
    for step in lost:
        (warn or warnings.warn)(f"{source}: {step}")
    return x[..., 0] if x.shape[-1] == 1 else x


def one_channel_count(photos: list[np.ndarray]) -> tuple[list[np.ndarray], tuple[bool, ...]]:
    """Photos for one file, which has one channel count: as they are when all are gray or all RGB (and no
    gray bits), else the gray ones repeated to R = G = B (nothing lost) and a bit per image, true for
    those, to record in the header (:func:`latcomp.container.relabeled`) so that decoding restores them."""
    gray = tuple(photo.ndim == 2 for photo in photos)
    if all(gray) or not any(gray):
        return photos, ()
    return [np.repeat(p[..., None], 3, axis=-1) if is_gray else p for p, is_gray in zip(photos, gray, strict=True)], \
        gray


def binarize(images: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels with intensity ≥ ``threshold`` become 1, the others 0 (uint8)."""
    return (np.asarray(images) >= threshold).astype(np.uint8)


# ----------------------------------------------------------------------------- outputs


def _png_bytes(image_u8: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_u8)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | Path, image_u8: np.ndarray, force: bool = False) -> None:
    """Write one uint8 image (H, W) or (H, W, C) as PNG, atomically; ``-`` is standard output.

    An existing file is replaced only with ``force``; two writers of a new name cannot both succeed.
    """
    data = _png_bytes(image_u8)
    if str(path) == "-":
        write_stdout(data)
    else:
        atomic_write_bytes(path, data, overwrite=force)


def write_npz(path: str | Path, images: np.ndarray, force: bool = False) -> None:
    """Write images as the array ``x`` of a compressed ``.npz``, atomically (replacing only with ``force``)."""
    atomic_write_stream(path, lambda f: np.savez_compressed(f, x=images), overwrite=force)


_PNG_NAME = re.compile(r"[0-9]+\.png")


def check_png_dir(directory: str | Path, force: bool, names: Sequence[str] = ()) -> None:
    """Refuse a directory output before any work: see :func:`latcomp.fileio.check_output`, and, since
    ``force`` replaces the whole directory, one that holds anything but the images this decode writes
    (``NNNNN.png``, or the PNG names of the image names ``names``: :func:`latcomp.filenames.png_names`)."""
    from .fileio import check_output

    check_output(directory, force, directory=True)
    if os.path.isdir(directory):
        outputs = png_names(names)
        ours = set(outputs) | directories(outputs)
        other = sorted(path for path in _tree(Path(directory)) if path not in ours and not _PNG_NAME.fullmatch(path))
        if other:
            raise OutputError(f"{directory} holds files that latcomp did not write ({other[0]}); "
                              f"refusing to replace it")


def _tree(directory: Path) -> list[str]:
    """Every entry under ``directory`` (links not followed), as a path relative to it with ``/``."""
    found = []
    for root, dirs, files in os.walk(directory):
        here = PurePosixPath(Path(root).relative_to(directory).as_posix())
        found += [str(here / name) for name in dirs + files]
    return found


def write_png_dir(directory: str | Path, images_u8: Sequence[np.ndarray], force: bool = False,
                  names: Sequence[str] = ()) -> list[Path]:
    """Write images into ``directory`` under the PNG names of their image names ``names``
    (:func:`latcomp.filenames.png_names`: ``a.jpg`` → ``a.png``, ``2024/b.png``, in sub-directories made
    here), or, without names, as ``00000.png``, ``00001.png``….

    The images are written into a new directory that then takes the name in one step: a
    new directory appears complete or not at all, and with ``force`` an existing one (of
    decoded images only, :func:`check_png_dir`) is replaced as a whole, so no image of an
    earlier, larger batch remains. Names are checked (:func:`latcomp.filenames.check_name`), so no
    file is written outside the new directory.
    """
    directory = Path(directory)
    width = max(5, len(str(len(images_u8) - 1)))
    outputs = png_names(names) if names else [f"{i:0{width}d}.png" for i in range(len(images_u8))]
    check_png_dir(directory, force, names)

    def fill(tmp: Path) -> None:
        for name, image in zip(outputs, images_u8, strict=True):
            path = tmp.joinpath(*name.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as file:
                file.write(_png_bytes(image))

    atomic_write_dir(directory, fill, overwrite=force)
    return [directory.joinpath(*name.split("/")) for name in outputs]


def output_kind(out: str, count: int, modality: str = "digits") -> str:
    """What ``decode`` writes to OUT, by its form: ``"stdout"``, ``"png"``, ``"npz"`` or ``"dir"``.

    ``-`` is standard output (one image, as PNG); a name ending in ``/`` or naming an existing
    directory, or one without an extension, is a directory; ``.png`` (one image) and ``.npz``
    are those formats. Any other extension is an error, never PNG bytes under a wrong name.
    The hint for several images offers an ``.npz`` only to ``modality`` digits (photos of
    their own sizes are no one array).
    """
    if out != "-" and (out.endswith(("/", os.sep)) or os.path.isdir(out)):
        return "dir"
    suffix = Path(out).suffix.lower()
    if out == "-" or suffix == ".png":
        if count != 1:
            where = "a directory or an .npz" if modality == "digits" else "a directory (a name ending in /)"
            raise InputError(f"the file holds {count} images; give {where} as OUT")
        return "stdout" if out == "-" else "png"
    if suffix in (".npz", ""):
        return suffix[1:] or "dir"
    raise OutputError(f"{out}: unknown output type {suffix}; OUT must end in .png (one image) or .npz, be a "
                      f"directory (end it with /), or be - (standard output)")
