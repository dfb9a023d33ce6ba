"""Tests for latcomp.data. Fast, and never touch the internet."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from latcomp import data
from latcomp.data import DataError

REAL_DATA = (Path(os.environ["LATCOMP_DATA"]) if os.environ.get("LATCOMP_DATA")
             else Path(__file__).resolve().parents[1].parent / "shared" / "data")
DEAD_URL = "file:///nonexistent-latcomp-mirror/"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Never use the user's cache or the real mirrors."""
    monkeypatch.setenv("LATCOMP_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "MNIST_MIRRORS", (DEAD_URL,))
    monkeypatch.setattr(data, "BINARIZED_MNIST_URL", DEAD_URL)


# ------------------------------------------------------------------------ helpers


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def amat_bytes(x: np.ndarray) -> bytes:
    return b"".join(b" ".join(b"%d" % v for v in row) + b"\n" for row in x)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def synthetic_mnist(folder: Path, n: int = 5, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return images, labels


def trust(monkeypatch, folder: Path, algorithm: str = "md5") -> None:
    """Register the checksums of the files in ``folder`` as the expected ones."""
    table = dict(data.CHECKSUMS)
    for f in folder.iterdir():
        table[f.name] = (algorithm, hashlib.new(algorithm, f.read_bytes()).hexdigest())
    monkeypatch.setattr(data, "CHECKSUMS", table)


@pytest.fixture
def http_mirror(tmp_path):
    """(served folder, base URL) of an HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------ read_idx


@pytest.mark.parametrize("name", ["x-idx3-ubyte.gz", "x-idx3-ubyte"])
def test_read_idx_roundtrip_images(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = data.read_idx(write_idx(tmp_path / name, images))
    assert out.dtype == np.uint8 and out.shape == (4, 28, 28)
    np.testing.assert_array_equal(out, images)
    out[0, 0, 0] = 1  # writable


@pytest.mark.parametrize("name", ["y-idx1-ubyte.gz", "y-idx1-ubyte"])
def test_read_idx_roundtrip_labels(tmp_path, name):
    labels = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / name, labels)), labels)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad-magic.gz"
    raw = bytearray(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    raw[2] = 0x0D  # int32 data instead of ubyte
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="bad-magic.gz.*magic"):
        data.read_idx(path)


@pytest.mark.parametrize("cut", [2, 10, 100])
def test_read_idx_truncated(tmp_path, cut):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-cut] if cut != 2 else b"\0\0")
    with pytest.raises(DataError, match="short-idx3-ubyte"):
        data.read_idx(path)


def test_read_idx_extra_bytes(tmp_path):
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8)) + b"\0")
    with pytest.raises(DataError, match="long-idx1-ubyte.*bytes"):
        data.read_idx(path)


def test_read_idx_corrupt_gzip_and_missing(tmp_path):
    path = tmp_path / "corrupt.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(50, np.uint8)))[:-6])
    with pytest.raises(DataError, match="unreadable file .*corrupt.gz"):
        data.read_idx(path)
    with pytest.raises(DataError, match="missing file .*nope.gz"):
        data.read_idx(tmp_path / "nope.gz")


# ---------------------------------------------------------------------- downloads


def test_download_http(tmp_path, monkeypatch, http_mirror):
    served, base = http_mirror
    images, labels = synthetic_mnist(served)
    trust(monkeypatch, served)
    monkeypatch.setitem(data.MNIST_SIZES, "test", len(labels))
    got_images, got_labels = data.load_mnist("test", tmp_path / "empty", mirrors=[base])
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    cached = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in served.iterdir())
    # Second load finds the cached files: no mirror needed.
    again, _ = data.load_mnist("test", tmp_path / "empty", download=False)
    np.testing.assert_array_equal(again, images)


def test_download_file_url_with_progress(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "blob.bin").write_bytes(os.urandom(3000))
    trust(monkeypatch, served, "sha256")
    calls = []
    out = data.download_file("blob.bin", [served.as_uri()], tmp_path / "dest",
                             progress=lambda done, total: calls.append((done, total)))
    assert out == tmp_path / "dest" / "blob.bin"
    assert out.read_bytes() == (served / "blob.bin").read_bytes()
    assert calls[-1][0] == 3000
    assert os.listdir(tmp_path / "dest") == ["blob.bin"]


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch, http_mirror):
    served, base = http_mirror
    (served / "blob.bin").write_bytes(b"hello")
    bad = "0" * 32
    monkeypatch.setitem(data.CHECKSUMS, "blob.bin", ("md5", bad))
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        data.download_file("blob.bin", [base], dest)
    message = str(info.value)
    assert "blob.bin" in message and bad in message and md5(served / "blob.bin") in message
    assert "\n" not in message
    assert list(dest.iterdir()) == []


def test_download_falls_back_to_second_mirror(tmp_path, monkeypatch, http_mirror):
    served, base = http_mirror
    (served / "blob.bin").write_bytes(b"payload")
    trust(monkeypatch, served)
    out = data.download_file("blob.bin", [base + "missing/", DEAD_URL, base], tmp_path / "d")
    assert out.read_bytes() == b"payload"


def test_download_all_mirrors_fail(tmp_path, monkeypatch, http_mirror):
    _, base = http_mirror
    monkeypatch.setitem(data.CHECKSUMS, "blob.bin", ("md5", "0" * 32))
    dest = tmp_path / "d"
    with pytest.raises(DataError) as info:
        data.download_file("blob.bin", [base, DEAD_URL], dest)
    message = str(info.value)
    assert base + "blob.bin" in message and DEAD_URL + "blob.bin" in message
    assert "LATCOMP_DATA" in message and "--data-dir" in message
    assert list(dest.iterdir()) == []


def test_download_refuses_unknown_checksum(tmp_path):
    with pytest.raises(DataError, match="no known checksum for unknown.bin"):
        data.download_file("unknown.bin", [DEAD_URL], tmp_path)


# ------------------------------------------------------------------ binarized MNIST


def test_amat_equals_npz(tmp_path, monkeypatch):
    x = np.random.default_rng(2).integers(0, 2, (7, 784), dtype=np.uint8)
    monkeypatch.setitem(data.BINARIZED_MNIST_SIZES, "valid", 7)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "binarized_mnist_valid.amat").write_bytes(amat_bytes(x))
    (tmp_path / "b" / "binarized_mnist").mkdir(parents=True)
    np.savez_compressed(tmp_path / "b" / "binarized_mnist" / "valid.npz", x=x)
    from_amat = data.load_binarized_mnist("valid", tmp_path / "a", download=False)
    from_npz = data.load_binarized_mnist("valid", tmp_path / "b", download=False)
    assert from_amat.dtype == from_npz.dtype == np.uint8
    np.testing.assert_array_equal(from_amat, from_npz)
    np.testing.assert_array_equal(from_amat, x)


def test_amat_crlf_and_no_final_newline(tmp_path):
    x = np.random.default_rng(3).integers(0, 2, (3, 784), dtype=np.uint8)
    path = tmp_path / "x.amat"
    path.write_bytes(amat_bytes(x).replace(b"\n", b"\r\n")[:-2])
    np.testing.assert_array_equal(data.read_amat(path), x)


@pytest.mark.parametrize("content", [b"0 1 2\n", b"1 " * 783 + b"2\n", b"1," * 783 + b"1\n",
                                     b"MATLAB 5.0 MAT-file"])
def test_amat_rejects_bad_text(tmp_path, content):
    path = tmp_path / "bad.amat"
    path.write_bytes(content)
    with pytest.raises(DataError, match="bad.amat"):
        data.read_amat(path)


def test_binarized_download(tmp_path, monkeypatch, http_mirror):
    served, base = http_mirror
    x = np.random.default_rng(4).integers(0, 2, (4, 784), dtype=np.uint8)
    (served / "binarized_mnist_test.amat").write_bytes(amat_bytes(x))
    trust(monkeypatch, served, "sha256")
    monkeypatch.setitem(data.BINARIZED_MNIST_SIZES, "test", 4)
    got = data.load_binarized_mnist("test", tmp_path / "empty", url=base)
    np.testing.assert_array_equal(got, x)
    assert (tmp_path / "cache" / "binarized_mnist" / "binarized_mnist_test.amat").is_file()


def test_binarized_npz_validation(tmp_path, monkeypatch):
    monkeypatch.setitem(data.BINARIZED_MNIST_SIZES, "test", 2)
    np.savez(tmp_path / "test.npz", x=np.full((2, 784), 2, np.uint8))
    with pytest.raises(DataError, match="test.npz.*0 or 1"):
        data.load_binarized_mnist("test", tmp_path, download=False)
    np.savez(tmp_path / "test.npz", x=np.zeros((3, 784), np.uint8))
    with pytest.raises(DataError, match=r"test.npz.*\(2, 784\)"):
        data.load_binarized_mnist("test", tmp_path, download=False)
    np.savez(tmp_path / "test.npz", y=np.zeros((2, 784), np.uint8))
    with pytest.raises(DataError, match="test.npz.*'x'"):
        data.load_binarized_mnist("test", tmp_path, download=False)
    (tmp_path / "test.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="unreadable file .*test.npz"):
        data.load_binarized_mnist("test", tmp_path, download=False)


# -------------------------------------------------------------------- missing files


def test_missing_without_download(tmp_path):
    with pytest.raises(DataError, match="missing file t10k-images-idx3-ubyte.gz.*LATCOMP_DATA"):
        data.load_mnist("test", tmp_path, download=False)
    with pytest.raises(DataError, match="missing file binarized_mnist_valid.amat"):
        data.load_binarized_mnist("valid", tmp_path, download=False)


def test_mnist_wrong_shape(tmp_path):
    synthetic_mnist(tmp_path / "mnist", n=3)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz.*\(10000, 28, 28\)"):
        data.load_mnist("test", tmp_path, download=False)


def test_mnist_bad_label(tmp_path, monkeypatch):
    synthetic_mnist(tmp_path, n=3)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 12, 3], np.uint8))
    monkeypatch.setitem(data.MNIST_SIZES, "test", 3)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*12"):
        data.load_mnist("test", tmp_path, download=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("valid", tmp_path, download=False)
    with pytest.raises(ValueError, match="split"):
        data.load_binarized_mnist("dev", tmp_path, download=False)
    with pytest.raises(ValueError, match="dataset"):
        data.load_dataset("cifar", "train", tmp_path, download=False)


def test_default_data_dir(monkeypatch, tmp_path):
    assert data.default_data_dir() == tmp_path / "cache"
    monkeypatch.delenv("LATCOMP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir() == tmp_path / "xdg" / "latcomp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.default_data_dir() == Path.home() / ".cache" / "latcomp"


# ------------------------------------------------------------- dynamic binarization


def test_dynamic_binarize_seeded_and_unbiased():
    levels = np.array([0, 1, 64, 128, 200, 255], np.uint8)
    images = np.tile(np.repeat(levels, 784 // 6 + 1)[:784], (400, 1))
    a = data.dynamic_binarize(images, np.random.default_rng(7))
    b = data.dynamic_binarize(images.reshape(400, 28, 28), np.random.default_rng(7))
    c = data.dynamic_binarize(images, np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.shape == (400, 784)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    for level in levels:
        mean = a[images == level].mean()
        assert abs(mean - level / 255) < 0.01, (level, mean)
    assert a[images == 0].max() == 0 and a[images == 255].min() == 1
    with pytest.raises(ValueError):
        data.dynamic_binarize(images.astype(np.float32), np.random.default_rng(0))


def test_dynamic_mnist_split_and_seeds(tmp_path, monkeypatch):
    images, _ = synthetic_mnist(tmp_path, n=12, split="train")
    test_images, _ = synthetic_mnist(tmp_path, n=4, split="t10k")
    monkeypatch.setattr(data, "MNIST_SIZES", {"train": 12, "test": 4})
    monkeypatch.setattr(data, "DYNAMIC_MNIST_VALID_SIZE", 5)
    flat = images.reshape(12, 784)
    np.testing.assert_array_equal(data.dynamic_mnist_images("train", tmp_path), flat[:7])
    np.testing.assert_array_equal(data.dynamic_mnist_images("valid", tmp_path), flat[7:])
    np.testing.assert_array_equal(data.dynamic_mnist_images("test", tmp_path),
                                  test_images.reshape(4, 784))
    load = functools.partial(data.load_dataset, "dynamic-mnist", data_dir=tmp_path, download=False)
    train = load("train", seed=3)
    np.testing.assert_array_equal(train, data.dynamic_binarize(flat[:7], np.random.default_rng(3)))
    for split, n in [("train", 7), ("valid", 5), ("test", 4)]:
        x = load(split, seed=3)
        assert x.shape == (n, 784) and x.dtype == np.uint8 and x.max() <= 1
        np.testing.assert_array_equal(x, load(split, seed=3))
        assert (x != load(split, seed=4)).any()


# ---------------------------------------------------------------------- real data


def real_file(*parts: str) -> Path:
    path = REAL_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"real data not found: {path}")
    return path


@pytest.mark.parametrize("split,n,ones", [("train", 50000, 5_118_041),
                                          ("valid", 10000, 1_028_036),
                                          ("test", 10000, 1_038_896)])
def test_real_binarized_mnist(split, n, ones):
    real_file("binarized_mnist", f"{split}.npz")
    x = data.load_binarized_mnist(split, REAL_DATA, download=False)
    assert x.shape == (n, 784) and x.dtype == np.uint8
    assert int(x.sum(dtype=np.int64)) == ones


def test_real_mnist_test():
    real_file("mnist", "t10k-images-idx3-ubyte.gz")
    real_file("mnist", "t10k-labels-idx1-ubyte.gz")
    images, labels = data.load_mnist("test", REAL_DATA, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.tolist()[:10] == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist()[:3] == [980, 1135, 1032]


def test_real_dynamic_mnist_valid():
    real_file("mnist", "train-images-idx3-ubyte.gz")
    real_file("mnist", "train-labels-idx1-ubyte.gz")
    x = data.load_dataset("dynamic-mnist", "valid", REAL_DATA, seed=0, download=False)
    assert x.shape == (10000, 784) and x.dtype == np.uint8
    assert 0.12 < x.mean() < 0.14
