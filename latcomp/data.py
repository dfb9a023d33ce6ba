"""Dataset loaders for latcomp (numpy only, no torch).

Sources
-------
* **MNIST** (LeCun, Cortes & Burges): the four standard IDX files
  ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``. Downloads use the same
  mirrors as torchvision (:data:`MNIST_MIRRORS`) and are checked against the
  canonical md5 of the ``.gz`` files.
* **Binarized MNIST** (static binarization of Larochelle & Murray, 2011):
  ``{split}.npz`` files holding one uint8 0/1 array ``x`` of shape (N, 784), or
  the original text files ``binarized_mnist_{split}.amat`` (784 space-separated
  0/1 digits per line). The ``.amat`` files are downloaded from
  :data:`BINARIZED_MNIST_URL` and checked against their sha256 (the same values
  as the TFDS checksums).

Checksums
---------
:data:`CHECKSUMS` maps a file name to ``(algorithm, hexdigest)``. Every
download is verified against it; a file without an entry is never downloaded.
Files that are already on disk are only checked by format and shape (cheap),
not by hash.

Where files are looked for
--------------------------
For a dataset with sub-folder ``sub`` (``mnist`` or ``binarized_mnist``):
``data_dir``, ``data_dir/sub`` and ``default_data_dir()/sub``, in that order
(``data_dir`` defaults to :func:`default_data_dir`). Missing files are
downloaded into ``default_data_dir()/sub``.

Dynamic MNIST
-------------
``dynamic-mnist`` binarizes the grayscale MNIST images by sampling each pixel
from Bernoulli(pixel / 255). The last 10000 MNIST training images are held out
as ``valid`` (``train`` is the first 50000) and ``test`` is the MNIST test set.
See :func:`load_dataset` for the seeding.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import numpy as np

from .fileio import atomic_write

__all__ = [
    "DataError",
    "default_data_dir",
    "file_checksum",
    "download_file",
    "read_idx",
    "read_amat",
    "load_mnist",
    "load_binarized_mnist",
    "dynamic_binarize",
    "dynamic_mnist_images",
    "load_dataset",
    "CHECKSUMS",
    "MNIST_MIRRORS",
    "BINARIZED_MNIST_URL",
    "DATASETS",
]

PathLike = str | os.PathLike[str]
#: ``progress(bytes_done, total_bytes_or_None)``, called while downloading.
Progress = Callable[[int, int | None], None]

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"

#: Expected checksum of every downloadable file: name -> (algorithm, hexdigest).
CHECKSUMS: dict[str, tuple[str, str]] = {
    "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
    "binarized_mnist_train.amat": (
        "sha256", "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
    "binarized_mnist_valid.amat": (
        "sha256", "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
    "binarized_mnist_test.amat": (
        "sha256", "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
}

#: Number of examples per split (validated on load).
MNIST_SIZES: dict[str, int] = {"train": 60000, "test": 10000}
BINARIZED_MNIST_SIZES: dict[str, int] = {"train": 50000, "valid": 10000, "test": 10000}
#: The last this-many MNIST training images form the dynamic-mnist ``valid`` split.
DYNAMIC_MNIST_VALID_SIZE = 10000
DATASETS: tuple[str, ...] = ("binarized-mnist", "dynamic-mnist")

_IDX_NDIM = {0x0801: 1, 0x0803: 3}  # magic -> number of dimensions (ubyte data)
_AMAT_ROW_BYTES = 2 * 784  # 784 digits, 783 spaces, one newline
_EVAL_STREAM = {"valid": 1, "test": 2}  # SeedSequence spawn keys of the eval splits
_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class DataError(Exception):
    """A data file is missing, corrupt, of the wrong format, or cannot be downloaded."""


# --------------------------------------------------------------------------- paths


def default_data_dir() -> Path:
    """Return ``$LATCOMP_DATA`` if set, else the per-user cache folder.

    The cache folder is ``$XDG_CACHE_HOME/latcomp``, or ``~/.cache/latcomp`` when
    ``XDG_CACHE_HOME`` is unset.
    """
    env = os.environ.get("LATCOMP_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return Path(cache).expanduser() / "latcomp" if cache else Path.home() / ".cache" / "latcomp"


def _search_dirs(data_dir: PathLike | None, subdir: str) -> list[Path]:
    """Folders searched for a dataset's files, in order, without duplicates."""
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    dirs = [base, base / subdir, default_data_dir() / subdir]
    return list(dict.fromkeys(dirs))


def _locate(names: Sequence[str], fetch_name: str, subdir: str, data_dir: PathLike | None,
            download: bool, base_urls: Sequence[str]) -> Path:
    """Find the first of ``names`` on disk, else download ``fetch_name`` into the cache."""
    dirs = _search_dirs(data_dir, subdir)
    for name in names:
        for folder in dirs:
            if (folder / name).is_file():
                return folder / name
    if download:
        return download_file(fetch_name, base_urls, default_data_dir() / subdir)
    looked = ", ".join(str(d) for d in dirs)
    raise DataError(f"missing file {fetch_name} (looked in {looked}); "
                    f"pass download=True or put it in --data-dir or $LATCOMP_DATA")


def _check_split(split: str, sizes: dict[str, int]) -> int:
    """Return the expected size of ``split``; ValueError if it is not a known split."""
    if split not in sizes:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(sizes)}")
    return sizes[split]


# ----------------------------------------------------------------------- downloads


def file_checksum(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file with a :mod:`hashlib` algorithm (e.g. ``"md5"``, ``"sha256"``)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(filename: str, base_urls: Sequence[str], dest_dir: PathLike,
                  progress: Progress | None = None) -> Path:
    """Download ``filename`` into ``dest_dir``, trying each base URL in turn.

    The file is streamed to a temporary file in ``dest_dir``, verified against
    :data:`CHECKSUMS` and then moved into place atomically. A network error moves
    on to the next URL; a checksum mismatch deletes the temporary file and raises
    :class:`DataError` at once. Prints nothing.
    """
    if filename not in CHECKSUMS:
        raise DataError(f"no known checksum for {filename}; refusing to download unverified data")
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create download folder {dest_dir} for {filename}: {exc}") from exc
    failures = []
    import http.client  # imported here: the codec's cold start does not need it

    for base in base_urls:
        url = base.rstrip("/") + "/" + filename
        try:
            return _download_one(url, filename, dest_dir, progress)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{url} ({_one_line(exc)})")
    raise DataError(f"could not download {filename}: tried {'; '.join(failures) or 'no URLs'}. "
                    f"Get the file by hand and put it in --data-dir or $LATCOMP_DATA "
                    f"(or {dest_dir})")


def _download_one(url: str, filename: str, dest_dir: Path, progress: Progress | None) -> Path:
    """Fetch one URL to a temp file, verify its checksum, then move it into place atomically."""

    def fetch_and_verify(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            _fetch(url, out, progress)
        _verify_checksum(tmp, filename, url)

    atomic_write(dest_dir / filename, fetch_and_verify)
    return dest_dir / filename


def _fetch(url: str, out: BinaryIO, progress: Progress | None) -> None:
    """Stream ``url`` into the binary file object ``out``."""
    import urllib.request  # imported here: the codec's cold start does not need it

    request = urllib.request.Request(url, headers={"User-Agent": "latcomp"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        for chunk in iter(lambda: resp.read(_CHUNK), b""):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)


def _verify_checksum(path: Path, filename: str, url: str) -> None:
    """Raise :class:`DataError` unless ``path`` has the checksum listed for ``filename``."""
    algorithm, expected = CHECKSUMS[filename]
    actual = file_checksum(path, algorithm)
    if actual != expected.lower():
        raise DataError(f"checksum mismatch for {filename} downloaded from {url}: "
                        f"expected {algorithm} {expected}, got {actual}; the download was deleted")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# ------------------------------------------------------------------------- readers


def _read_bytes(path: Path) -> bytes:
    """All bytes of ``path``, gunzipped if the file starts with the gzip magic."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except FileNotFoundError as exc:
        raise DataError(f"missing file {path}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"unreadable file {path}: {_one_line(exc)}") from exc


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or raw) of unsigned bytes.

    Accepts magic 0x00000801 (labels, 1-D) and 0x00000803 (images, 3-D) and
    checks that the byte count matches the dimensions in the header. Returns a
    writable uint8 array of shape (N,) or (N, rows, cols).
    """
    path = Path(path)
    data = _read_bytes(path)
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic not in _IDX_NDIM:
        found = "no header" if magic is None else f"0x{magic:08x}"
        raise DataError(f"{path}: bad IDX magic ({found}); expected 0x00000801 or 0x00000803")
    header = 4 + 4 * _IDX_NDIM[magic]
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = tuple(int.from_bytes(data[i:i + 4], "big") for i in range(4, header, 4))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path}: IDX dims {dims} need {expected} bytes, "
                        f"but the file has {len(data)}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def read_amat(path: PathLike) -> np.ndarray:
    """Parse a binarized-MNIST ``.amat`` text file into a uint8 0/1 array (N, 784).

    Each line must hold 784 digits 0/1 separated by single spaces (``\\r\\n``
    line ends and a missing final newline are accepted).
    """
    path = Path(path)
    text = _read_bytes(path)
    if text.startswith(b"MATLAB"):
        raise DataError(f"{path}: this is a MATLAB .mat file, not a text .amat; "
                        f"convert it to an .npz holding a uint8 array 'x'")
    text = text.replace(b"\r\n", b"\n")
    if text and not text.endswith(b"\n"):
        text += b"\n"
    rows = np.frombuffer(text, np.uint8)
    if rows.size % _AMAT_ROW_BYTES:
        raise DataError(f"{path}: not a binarized-MNIST .amat file "
                        f"(expected lines of 784 space-separated 0/1 digits)")
    rows = rows.reshape(-1, _AMAT_ROW_BYTES)
    seps = rows[:, 1::2]
    digits = rows[:, 0::2] - np.uint8(ord("0"))  # non-digits wrap to values > 1
    if (seps[:, :-1] != ord(" ")).any() or (seps[:, -1] != ord("\n")).any() or (digits > 1).any():
        raise DataError(f"{path}: not a binarized-MNIST .amat file "
                        f"(expected lines of 784 space-separated 0/1 digits)")
    return digits


def _read_npz(path: Path) -> np.ndarray:
    """The array ``x`` of an ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise DataError(f"{path}: no array 'x' in the .npz (found {archive.files})")
            return archive["x"]
    except FileNotFoundError as exc:
        raise DataError(f"missing file {path}") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"unreadable file {path}: {_one_line(exc)}") from exc


def _check_binary(x: np.ndarray, path: Path, n: int) -> np.ndarray:
    """Validate a binarized array: uint8, shape (n, 784), values in {0, 1}."""
    if x.dtype != np.uint8 or x.shape != (n, 784):
        raise DataError(f"{path}: expected a uint8 array of shape ({n}, 784), "
                        f"got {x.dtype} {x.shape}")
    if x.size and x.max() > 1:
        raise DataError(f"{path}: values must be 0 or 1, found {x.max()}")
    return x


# ------------------------------------------------------------------------- loaders


def load_mnist(split: str = "train", data_dir: PathLike | None = None, download: bool = True,
               mirrors: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load grayscale MNIST: images uint8 (N, 28, 28) and labels uint8 (N,).

    ``split`` is ``"train"`` (60000) or ``"test"`` (10000). Files are searched as
    described in the module docstring (``.gz`` or uncompressed); missing ones are
    downloaded from ``mirrors`` (default :data:`MNIST_MIRRORS`) if ``download``.
    """
    n = _check_split(split, MNIST_SIZES)
    prefix = "train" if split == "train" else "t10k"
    urls = tuple(mirrors) if mirrors is not None else MNIST_MIRRORS
    images = _load_idx(f"{prefix}-images-idx3-ubyte", (n, 28, 28), 255, data_dir, download, urls)
    labels = _load_idx(f"{prefix}-labels-idx1-ubyte", (n,), 9, data_dir, download, urls)
    return images, labels


def _load_idx(stem: str, shape: tuple[int, ...], max_value: int, data_dir: PathLike | None,
              download: bool, urls: Sequence[str]) -> np.ndarray:
    """Locate (or download) one MNIST IDX file and check its shape and value range."""
    path = _locate([f"{stem}.gz", stem], f"{stem}.gz", "mnist", data_dir, download, urls)
    array = read_idx(path)
    if array.shape != shape:
        raise DataError(f"{path}: expected shape {shape}, got {array.shape}")
    if array.size and array.max() > max_value:
        raise DataError(f"{path}: value {array.max()} out of range (max {max_value})")
    return array


def load_binarized_mnist(split: str = "train", data_dir: PathLike | None = None,
                         download: bool = True, url: str | None = None) -> np.ndarray:
    """Load static binarized MNIST as a uint8 0/1 array (N, 784), row-major 28x28 pixels.

    ``split`` is ``"train"`` (50000), ``"valid"`` (10000) or ``"test"`` (10000).
    Prefers ``{split}.npz``, then ``binarized_mnist_{split}.amat``; downloads the
    ``.amat`` from ``url`` (default :data:`BINARIZED_MNIST_URL`) if ``download``.
    """
    n = _check_split(split, BINARIZED_MNIST_SIZES)
    amat = f"binarized_mnist_{split}.amat"
    path = _locate([f"{split}.npz", amat], amat, "binarized_mnist", data_dir, download,
                   [url or BINARIZED_MNIST_URL])
    x = _read_npz(path) if path.suffix == ".npz" else read_amat(path)
    return _check_binary(x, path, n)


def dynamic_binarize(images_uint8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample each pixel from Bernoulli(pixel / 255); returns uint8 0/1 of shape (N, 784).

    ``images_uint8`` is uint8 of shape (N, 28, 28) or (N, 784). Pixels 0 and 255
    always give 0 and 1.
    """
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim < 2 or int(np.prod(images.shape[1:])) != 784:
        raise ValueError(f"expected uint8 images of shape (N, 28, 28) or (N, 784), "
                         f"got {images.dtype} {images.shape}")
    flat = images.reshape(len(images), 784)
    p = flat.astype(np.float32) * np.float32(1 / 255)
    return (rng.random(flat.shape, dtype=np.float32) < p).astype(np.uint8)


def dynamic_mnist_images(split: str, data_dir: PathLike | None = None,
                         download: bool = True) -> np.ndarray:
    """Grayscale uint8 images (N, 784) of a dynamic-mnist split, before binarization.

    ``train`` is the first 50000 MNIST training images, ``valid`` the last 10000
    and ``test`` the MNIST test set. Use with :func:`dynamic_binarize` to draw a
    fresh binarization (e.g. each epoch).
    """
    _check_split(split, BINARIZED_MNIST_SIZES)
    images, _ = load_mnist("test" if split == "test" else "train", data_dir, download)
    n_train = len(images) - DYNAMIC_MNIST_VALID_SIZE
    selected = {"train": images[:n_train], "valid": images[n_train:], "test": images}[split]
    return selected.reshape(len(selected), 784)


def load_dataset(name: str, split: str, data_dir: PathLike | None = None, seed: int = 0,
                 download: bool = True) -> np.ndarray:
    """Load a binary dataset split as uint8 0/1 of shape (N, 784).

    ``name`` is ``"binarized-mnist"`` (the fixed Larochelle & Murray binarization;
    ``seed`` is ignored) or ``"dynamic-mnist"`` (split as in
    :func:`dynamic_mnist_images`). For dynamic-mnist, ``train`` is binarized with
    ``np.random.default_rng(seed)``; ``valid`` and ``test`` use the independent
    streams ``SeedSequence(seed, spawn_key=(1,))`` and ``(2,)``, so a given seed
    always yields the same evaluation sets, whatever else was loaded.
    """
    if name == "binarized-mnist":
        return load_binarized_mnist(split, data_dir, download)
    if name != "dynamic-mnist":
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    images = dynamic_mnist_images(split, data_dir, download)
    stream = _EVAL_STREAM.get(split)
    seq = seed if stream is None else np.random.SeedSequence(seed, spawn_key=(stream,))
    return dynamic_binarize(images, np.random.default_rng(seq))
