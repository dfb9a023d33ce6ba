"""Reading images to compress and writing decoded ones (Pillow, numpy; no torch).

Inputs: any image Pillow reads, a directory of images (sorted by name), an
``.npz`` array (``x`` or its only array) or an IDX file (MNIST's ``*-ubyte[.gz]``).
Pixels become float intensities in [0, 1]: 8-bit values are divided by 255,
0/1 arrays and 1-bit images are taken as they are.

Outputs: a PNG per image (8-bit grayscale for one channel), a directory of PNGs,
or an ``.npz`` with the uint8 array ``x``; every file is written atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .data import DataError, read_idx
from .errors import InputError
from .fileio import atomic_write

#: File name suffixes taken from a directory.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                            ".pbm", ".ppm", ".pnm"})
_IDX_NAME = re.compile(r"(ubyte|\.idx\d?)(\.gz)?$", re.IGNORECASE)
#: Pillow modes taken as grayscale without ``--resize``.
_GRAY_MODES = {"1", "L"}


def is_array_file(path: Path) -> bool:
    """True for ``.npz`` and IDX files (batches), False for image files."""
    return path.suffix.lower() == ".npz" or bool(_IDX_NAME.search(path.name))


def _intensities(arr: np.ndarray, source: str) -> np.ndarray:
    """Array values → float64 in [0, 1] (0/1 and bool as they are, integers ≤ 255 divided by 255)."""
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InputError(f"{source}: integer values must be in 0..255")
        return arr.astype(np.float64) if arr.size == 0 or arr.max() <= 1 else arr / 255.0
    if arr.dtype.kind == "f":
        if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1):
            raise InputError(f"{source}: float values must be finite and in [0, 1]")
        return arr.astype(np.float64)
    raise InputError(f"{source}: unsupported array dtype {arr.dtype}")


def read_array(path: Path) -> np.ndarray:
    """An ``.npz`` (array ``x`` or its only array) or IDX file as float64 intensities in [0, 1]."""
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                names = archive.files
                if "x" in names:
                    arr = archive["x"]
                elif len(names) == 1:
                    arr = archive[names[0]]
                else:
                    raise InputError(f"{path}: .npz holds {len(names)} arrays {names}; name the images 'x'")
        except InputError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(f"{path}: unreadable .npz ({exc})") from None
    else:
        try:
            arr = read_idx(path)
        except DataError as exc:
            raise InputError(str(exc)) from None
    return _intensities(arr, str(path))


def read_image(path: Path, image_shape: tuple[int, int, int], resize: bool = False) -> np.ndarray:
    """One image file as float64 intensities (H, W) or (H, W, C) for the model's ``image_shape``.

    The image must already have the model's size and mode (grayscale: Pillow ``L``
    or ``1``) unless ``resize``, which converts the mode and resamples (Lanczos).
    """
    from PIL import Image, UnidentifiedImageError

    h, w, c = image_shape
    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            want_mode = "L" if c == 1 else "RGB"
            if c == 1 and mode == "P" and _gray_palette(img):
                img, mode = img.convert("L"), "L"
            if c == 1 and mode not in _GRAY_MODES or c == 3 and mode != "RGB":
                if not resize:
                    raise InputError(f"{path}: image mode {mode} but the model takes "
                                     f"{'grayscale' if c == 1 else 'RGB'} images; pass --resize to convert")
                img = img.convert(want_mode)
            if size != (w, h):
                if not resize:
                    raise InputError(f"{path}: image is {size[0]}×{size[1]} but the model takes {w}×{h}; "
                                     f"pass --resize to resample")
                img = img.convert(want_mode).resize((w, h), Image.Resampling.LANCZOS)
            arr = np.asarray(img)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None
    if arr.dtype == bool:
        return arr.astype(np.float64)
    return arr.astype(np.float64) / 255.0


def _gray_palette(img) -> bool:
    """True if a palette image only uses gray colours (r = g = b), as PNG optimizers write."""
    try:
        palette = np.asarray(img.getpalette() or [], np.int64)
        rgb = palette[:len(palette) // 3 * 3].reshape(-1, 3)[np.unique(np.asarray(img))]
    except (IndexError, ValueError):
        return False
    return len(rgb) > 0 and bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def list_inputs(inputs: list[Path]) -> list[Path]:
    """Expand directories to their image files (sorted by name, hidden files skipped)."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"{path}: no image files in this directory")
            files.extend(found)
        elif not path.exists():
            raise InputError(f"{path}: no such file or directory")
        else:
            files.append(path)
    return files


def load_inputs(inputs: list[Path], image_shape: tuple[int, int, int], resize: bool = False) -> np.ndarray:
    """Read the CLI inputs as one array of float intensities in [0, 1].

    One image file gives an (H, W[, C]) array (a single-image container); one
    ``.npz``/IDX file keeps its own layout; anything else is stacked to (N, H, W[, C]).
    """
    files = list_inputs(inputs)
    h, w, c = image_shape
    shape = (h, w) if c == 1 else (h, w, c)
    if len(files) == 1 and len(inputs) == 1 and not inputs[0].is_dir():
        path = files[0]
        return read_array(path) if is_array_file(path) else read_image(path, image_shape, resize)
    parts = []
    for path in files:
        if is_array_file(path):
            arr = read_array(path)
            if arr.shape[1:] == shape:
                parts.append(arr)
            elif arr.ndim == 2 and arr.shape[1] == h * w * c:
                parts.append(arr.reshape((-1, *shape)))
            else:
                raise InputError(f"{path}: array of shape {arr.shape} does not hold {h}×{w}×{c} images")
        else:
            parts.append(read_image(path, image_shape, resize)[None])
    return np.concatenate(parts)


def binarize(images: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels with intensity ≥ ``threshold`` become 1, the others 0 (uint8)."""
    return (np.asarray(images) >= threshold).astype(np.uint8)


# ----------------------------------------------------------------------------- outputs


def _png_bytes(image_u8: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_u8)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: Path, image_u8: np.ndarray) -> None:
    """Write one uint8 image (H, W) or (H, W, C) as PNG, atomically."""
    data = _png_bytes(image_u8)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_npz(path: Path, images_u8: np.ndarray) -> None:
    """Write images as the uint8 array ``x`` of a compressed ``.npz``, atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x=images_u8)

    atomic_write(path, write)


def write_png_dir(directory: Path, images_u8: np.ndarray, force: bool = False) -> list[Path]:
    """Write images as ``00000.png``, ``00001.png``… into ``directory``.

    A new directory is filled under a temporary name and renamed into place, so it
    appears complete or not at all. An existing directory needs ``force``; its files
    of the same names are then replaced one by one (each atomically).
    """
    width = max(5, len(str(len(images_u8) - 1)))
    names = [f"{i:0{width}d}.png" for i in range(len(images_u8))]
    if directory.exists() and not force:
        raise FileExistsError(f"{directory} exists; pass --force to overwrite")
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a directory")
    parent = directory.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=parent))
    try:
        for name, image in zip(names, images_u8):
            (tmp / name).write_bytes(_png_bytes(image))
        if directory.exists():
            for name in names:
                os.replace(tmp / name, directory / name)
            tmp.rmdir()
        else:
            os.chmod(tmp, 0o777 & ~_umask())
            os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [directory / name for name in names]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_kind(out: Path, count: int, layout: str) -> str:
    """Where ``decode`` writes: ``"npz"`` for an .npz OUT, ``"png"`` for one image, else ``"dir"``.

    One image goes to a PNG when it was encoded as a single image or OUT ends in
    ``.png``; a batch cannot go to a ``.png`` (InputError).
    """
    suffix = out.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if count == 1 and (layout == "single" or suffix == ".png"):
        return "png"
    if suffix == ".png":
        raise InputError(f"the file holds {count} images; give a directory or an .npz as OUT")
    return "dir"

