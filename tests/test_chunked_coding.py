"""Decoding in chunks: the same bytes and images as in one piece, with memory for a chunk, not for the file.

The lattice code computes its means a call of ``SYMBOL_CHUNK`` symbols at a time, the decoder
recomputes the dithers from the seed a few rows at a time, and ``decompress(..., dtype=np.uint8)``
converts the lossy images chunk by chunk. None of this may change a bit of the stream or the output.
"""

from __future__ import annotations

import tracemalloc

import constriction
import numpy as np
import pytest
from codec_fixtures import cli, digits, small_model  # noqa: F401
from conftest import REPO
from PIL import Image

from latcomp.codec import compress, decompress, load_model, to_uint8
from latcomp.digits import codec
from latcomp.entropy import lattice_code
from latcomp.entropy.lattice_code import LatticeCode, RowsOnce, row_blocks, symbol_chunks
from latcomp.latent_codecs import LatentCodec, LatticeLatentCodec
from latcomp.lattices import ProductLattice
from latcomp.lattices.dither import seeded_uniforms
from latcomp.runtime.coding import SeededDither


class RecordedRows:
    """Dithers read by row slices (a :class:`~latcomp.entropy.lattice_code.DitherRows`) that records the reads."""

    def __init__(self, u: np.ndarray):
        self.u, self.reads = u, []

    def __len__(self) -> int:
        return len(self.u)

    def __getitem__(self, rows: slice) -> np.ndarray:
        self.reads.append(rows.stop - rows.start)
        return self.u[rows].copy()


def test_symbol_chunks_cover_the_rows_in_order(monkeypatch):
    for n, width, chunk in ((5, 3, 4), (10, 7, 16), (3, 40, 1 << 16), (2, 5, 3)):
        monkeypatch.setattr(lattice_code, "SYMBOL_CHUNK", chunk)
        calls = symbol_chunks(n, width)
        grid = np.arange(n * width).reshape(n, width)
        coded = np.concatenate([grid[rows].ravel()[part] for rows, part in calls])
        assert np.array_equal(coded, np.arange(n * width))  # every symbol once, row-major
        # a new call every `chunk` symbols, as docs/format.md states ("Empty stream")
        assert [rows.start * width + part.start for rows, part in calls] == list(range(0, n * width, chunk))
        blocks = list(row_blocks(n, width))
        assert np.array_equal(np.concatenate([np.arange(n)[b] for b in blocks]), np.arange(n))
        assert all(b.stop - b.start == max(1, chunk // width) for b in blocks[:-1])


def test_dither_rows_are_slices_of_the_whole():
    whole = seeded_uniforms(7, (50, 8))
    assert np.array_equal(seeded_uniforms(7, (13, 8), start=21 * 8), whole[21:34])
    with pytest.raises(ValueError):
        seeded_uniforms(7, (1,), start=-1)
    for spec in ("z", "e8", "d4*1+z*4"):
        latent = LatticeLatentCodec(ProductLattice(spec, 8), np.linspace(0.5, 2, ProductLattice(spec, 8).num_blocks),
                                    np.ones(8))
        full = latent.seeded_dither(3, 50)
        lazy = SeededDither(latent, 3, 50)
        assert len(lazy) == 50 and np.array_equal(lazy[0:50], full)
        assert np.array_equal(lazy[17:40], full[17:40]) and np.array_equal(lazy[45:99], full[45:])


def test_known_part_of_some_columns_is_those_columns():
    lattice = ProductLattice("leech+e8*2+d4+z*3")
    rng = np.random.default_rng(0)
    k = rng.integers(-1000, 1000, (20, lattice.dim))
    for level in range(int(lattice.levels.max()) + 1):
        cols = np.flatnonzero(lattice.levels == level)
        full = lattice.known_part(k, level)
        pick = rng.permutation(len(cols))[:max(1, len(cols) // 2)]
        assert np.array_equal(lattice.known_part(k, level, cols[pick]), full[:, pick])
    with pytest.raises(ValueError, match="level"):
        lattice.known_part(k, 0, np.array([0]))  # column 0 (leech) is coded at level 23


@pytest.mark.parametrize("spec", ["z*6", "e8+z*2", "d4*2+a2"])
def test_the_stream_does_not_depend_on_the_chunk_size(monkeypatch, spec):
    """One call per group (the chunk larger than the file), small chunks and the default: the same bytes and
    the same coordinates back, escapes included (huge coordinates in many row blocks), and the dithers are read
    a block of rows at a time."""
    lattice = ProductLattice(spec)
    code = LatticeCode(lattice, np.linspace(0.2, 1.5, lattice.num_blocks), np.geomspace(0.05, 40, lattice.dim))
    rng = np.random.default_rng(1)
    n = 300
    u = rng.random((n, lattice.dim)) - 0.5
    k = np.rint(rng.laplace(0, 3, (n, lattice.dim)) * (rng.random((n, lattice.dim)) < 0.9)).astype(np.int64)
    k[rng.random((n, lattice.dim)) < 0.02] = 1 << 33  # escapes everywhere
    k = np.clip(k, -code.max_coord, code.max_coord)
    streams = []
    for chunk in (1 << 40, 1 << 16, 37, 5):
        monkeypatch.setattr(lattice_code, "SYMBOL_CHUNK", chunk)
        coder = constriction.stream.stack.AnsCoder()
        code.push(coder, k, RecordedRows(u))
        words = coder.get_compressed()
        streams.append(words.tobytes())
        rows = RecordedRows(u)
        assert np.array_equal(code.pop(constriction.stream.stack.AnsCoder(words), rows), k)
        assert max(rows.reads) <= max(1, chunk // lattice.dim)
    assert len(set(streams)) == 1


def test_decompress_to_uint8_is_to_uint8_of_the_means(small_model, digits):
    lossy = compress(digits, small_model, seed=5)
    means = decompress(lossy, small_model)
    eight = decompress(lossy, small_model, dtype=np.uint8)
    assert eight.dtype == np.uint8 and eight.shape == means.shape and np.array_equal(eight, to_uint8(means))
    single = compress(digits[0], small_model, seed=5)
    assert np.array_equal(decompress(single, small_model, dtype="uint8"), to_uint8(decompress(single, small_model)))
    lossless = compress(digits, small_model, lossless=True, seed=5)
    pixels = decompress(lossless, small_model, dtype=np.uint8)
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, digits)
    with pytest.raises(ValueError, match="dtype"):
        decompress(lossy, small_model, dtype=np.float32)


def test_to_uint8_in_blocks_is_the_same(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.random((7, 28, 28))
    x[0, 0, :4] = [0.0, 1.0, 0.5 / 255, 1.5 / 255]  # ties round to even, both ways
    expected = np.rint(x * 255.0).astype(np.uint8)
    monkeypatch.setattr(codec, "_UINT8_BLOCK", 1000)
    assert np.array_equal(to_uint8(x), expected)
    assert np.array_equal(to_uint8(x[:, ::2, 1::3]), expected[:, ::2, 1::3])  # not contiguous
    assert np.array_equal(to_uint8(np.uint8(1)), np.uint8(255)) and to_uint8(x[0]).shape == (28, 28)
    assert np.array_equal(to_uint8((x > 0.5).astype(np.uint8)), (x > 0.5) * np.uint8(255))


def test_eight_bit_lossy_decoding_does_not_hold_the_float64_images(small_model):
    """The CLI's path: N lossy images as 8-bit pixels hold N·784 bytes, the float64 means N·784·8; the rest (the
    network's chunk of 2048 images, the coordinates) is the same, so the peaks differ by about 7 bytes a pixel."""
    x = (np.random.default_rng(3).random((20_000, 784)) < 0.2).astype(np.uint8)
    data = compress(x, small_model, seed=1)
    load_model(small_model)
    peaks = {}
    for dtype in (np.uint8, None):
        tracemalloc.start()
        try:
            out = decompress(data, small_model, dtype=dtype)
            peaks[dtype] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert out.shape == x.shape
        del out
    assert peaks[None] - peaks[np.uint8] > 0.75 * 7 * x.size, {k: v / x.size for k, v in peaks.items()}


def test_cli_decode_of_a_lossy_batch_is_unchanged(capsys, tmp_path, small_model, digits):
    """``latcomp decode`` writes to_uint8 of the means, to an .npz and to PNGs (now without float64 images)."""
    (tmp_path / "x.lat").write_bytes(compress(digits[:4], small_model, seed=2))
    expected = to_uint8(decompress((tmp_path / "x.lat").read_bytes(), small_model))
    for out in ("y.npz", "dir"):
        code, err = cli(capsys, "decode", str(tmp_path / "x.lat"), "-o", str(tmp_path / out), "--model",
                        str(small_model))
        assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "y.npz")["x"], expected)
    for i in range(4):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "dir" / f"{i:05d}.png")), expected[i])


@pytest.mark.parametrize("spec", ["leech+e8+z*2", "e8*2"])
def test_the_dither_of_a_multi_level_lattice_is_computed_once_per_row(spec):
    """Every level's means read the dither of every row; read through the decoder's lazy dither, each
    row must be computed once however many levels the lattice has (24 for Leech), and the bytes not change."""
    lattice = ProductLattice(spec)
    latent = LatticeLatentCodec(lattice, np.linspace(0.4, 1.2, lattice.num_blocks), np.geomspace(0.2, 5, lattice.dim))
    n = 3000  # several row blocks of the cache
    u = latent.seeded_dither(4, n)
    k = latent.quantize(np.random.default_rng(2).laplace(0, 1, (n, lattice.dim)) * latent.b, u)
    pushed = RecordedRows(u)
    coder = constriction.stream.stack.AnsCoder()
    latent.code.push(coder, k, pushed)
    words = coder.get_compressed()
    direct = constriction.stream.stack.AnsCoder()
    latent.code.push(direct, k, u)
    assert np.array_equal(words, direct.get_compressed())
    popped = RecordedRows(u)
    assert np.array_equal(latent.code.pop(constriction.stream.stack.AnsCoder(words), popped), k)
    assert sum(pushed.reads) == n and sum(popped.reads) == n  # before: n per level and radius group


def test_rows_once_are_slices_of_the_whole_computed_once_per_block():
    u = np.random.default_rng(3).random((50, 4))
    rows = RecordedRows(u)
    once = RowsOnce(rows, 7)
    for a, b in ((0, 50), (3, 19), (13, 14), (44, 99), (20, 20), (0, 7), (49, 50)):
        assert np.array_equal(once[a:b], u[a:b])
    assert len(once) == 50 and [r for r in rows.reads if r] == [7] * 7 + [1]  # each aligned block once, when first used
    code = LatticeCode(ProductLattice("e8"), np.ones(1), np.ones(8))
    assert code.read_once(once) is once and isinstance(code.read_once(rows), RowsOnce)  # a decoder may share one
    assert LatticeCode(ProductLattice("z", 8), np.ones(8), np.ones(8)).read_once(rows) is rows  # one level: lazy


def test_decoding_a_leech_file_computes_its_dither_at_most_twice_per_row(monkeypatch):
    """The Λ24 time bomb, end to end with the shipped Λ24 model: the decoder's dither rows are computed once
    for the coordinates (not once per level: 24 times) and once more at most for Z − U."""
    model = REPO / "models" / "mnist-lattice-vae-leech24"
    x = (np.random.default_rng(6).random((300, 28, 28)) < 0.15).astype(np.uint8)
    data = compress(x, model, seed=3)
    rows = []
    seeded = LatentCodec.seeded_dither

    def counted(self, seed, count, start=0):
        rows.append(count)
        return seeded(self, seed, count, start)

    monkeypatch.setattr(LatentCodec, "seeded_dither", counted)
    decompress(data, model)
    assert len(x) <= sum(rows) <= 2 * len(x), rows
