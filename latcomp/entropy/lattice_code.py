"""The code of a lattice point given the dither: P(Ẑ = z | U = u), sequentially, in closed form.

The Voronoi-cell mass of a non-cubic lattice has no closed form, so the point is coded
coordinate by coordinate in a **lower-triangular basis** B (:mod:`latcomp.lattices.base`):
with z = s·(k·B) (s the block's scale), coordinate i of z is s_i·(d_i·k_i + c_i), where
d_i = B[i, i] and c_i = Σ_{j>i} k_j·B[j, i] depends only on coordinates already coded
(the last coordinate of each block first). Given them, k_i moves on a 1-D lattice of step
w_i = s_i·d_i, and its probability is the Laplace prior's mass of a box of that width:

    P(k_i | k_{j>i}, u) = F_{b_i}(η_i + w_i/2) − F_{b_i}(η_i − w_i/2),   η = z − u,

i.e. k_i ~ QuantizedLaplace(mean (u_i − s_i·c_i)/w_i, scale b_i/w_i) on unit bins, exactly
constriction's model. The boxes (Π w_i = the cell volume) tile space, so the
probabilities sum to one; the code length −Σ log P depends on η = Z − U only, so by the
Crypto-Lemma its expectation is the same expression at X − U with U uniform on the
Voronoi cell: that is the training rate (Theorem 1 with the box prior, see
:mod:`latcomp.latent_codecs`). For the rectangular lattice (every block ``z``: d = 1, c = 0)
it is the per-dimension code of format version 1, bit for bit.

Coding order on the ANS stack (pops): level 0 (the last coordinate of every block), its
escapes, level 1, its escapes, …; pushes are the exact reverse. All parameters come
from the float32 values of the model file by one fixed float64 recipe (products and
divisions only), so encoder and decoder build bit-identical models.

Memory: the symbols of each group of equal radius go through the coder in calls of
:data:`SYMBOL_CHUNK` symbols (row-major over the group, a new call every 2^16 symbols),
and the means of a call are computed for its rows and the group's columns only; the
escapes are found a block of rows at a time. Besides k itself, coding needs a few
arrays of about 2^16 values, and the dithers ``u`` are read by row slices, so they
may be computed on demand (:class:`DitherRows`) instead of held.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Protocol

import constriction
import numpy as np

from latcomp.entropy.laplace import laplace_log_mass
from latcomp.errors import FormatError
from latcomp.lattices.product import ProductLattice

#: constriction's Python bindings quantize probabilities to this many bits.
PRECISION = 24
#: Smallest and largest support radius R_i of a coordinate.
MIN_RADIUS, MAX_RADIUS = 16, 1 << 22
#: Largest |k_i| a file can hold for a ``z`` block; the encoder clamps coordinates to it.
MAX_COORD = (1 << 62) - 1
#: Largest |k_i| for the other blocks: keeps Σ k_j·B[j, i] exact in float64.
MAX_LATTICE_COORD = (1 << 40) - 1
#: The coordinate symbols of a group are coded in calls of this many (docs/format.md, "Empty stream").
SYMBOL_CHUNK = 1 << 16
#: Most rows of a block of dithers (:meth:`SequentialCode.dither_rows`): Λ24's nearest-point search costs
#: ~70 µs a row, so a block bounds what a refused stream costs.
DITHER_ROWS = 1024
#: An ANS stream whose coder reports ``num_bits()`` holds at most this many bits more of information.
STREAM_SLACK_BITS = 64
#: Escape payload: number of 16-bit digits (0–4) with Uniform(5), then the digits.
_DIGITS = 4
_LN2 = math.log(2.0)

_model = constriction.stream.model


class DitherRows(Protocol):
    """Dithers read by rows: ``len(u)`` rows, ``u[a:b]`` rows a … b−1 as float64 (b − a, dim).

    A numpy array (N, dim) is one; an object that computes the rows of a slice when asked
    keeps a decoder from holding all N·dim dithers.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice) -> np.ndarray: ...


def row_blocks(n: int, width: int) -> Iterator[slice]:
    """Slices of the rows 0 … n−1 in blocks of about :data:`SYMBOL_CHUNK` values of ``width`` each (≥ 1 row)."""
    step = max(1, SYMBOL_CHUNK // max(width, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def symbol_chunks(n: int, width: int) -> list[tuple[slice, slice]]:
    """The calls that code n × ``width`` symbols (row-major): every SYMBOL_CHUNK symbols a new one.

    Each call is (rows, part): the rows it touches and the slice of their raveled symbols
    (rows × width, row-major) it codes.
    """
    return symbol_pieces(0, n * width, width, SYMBOL_CHUNK)


def symbol_pieces(start: int, stop: int, width: int, step: int) -> list[tuple[slice, slice]]:
    """The symbols ``start`` … ``stop`` − 1 of a row-major array of ``width`` columns as (rows, part) pieces
    (as :func:`symbol_chunks`), a new piece at every multiple of ``step``."""
    out = []
    while start < stop:
        end = min((start // step + 1) * step, stop)
        first, last = start // width, -(-end // width)
        out.append((slice(first, last), slice(start - first * width, end - first * width)))
        start = end
    return out


@lru_cache(maxsize=None)
def family(radius: int) -> constriction.stream.model.QuantizedLaplace:
    """constriction's QuantizedLaplace family on the symbols −R … R."""
    return _model.QuantizedLaplace(-radius, radius)


def support_radius(scale: np.ndarray) -> np.ndarray:
    """R_i = 2^⌈log2(32·s_i + 8)⌉ clamped to [16, 2^22], for s_i = b_i/w_i (exact: frexp only).

    The Laplace tail beyond R_i has mass < e^−32, so escapes are rare, while a small R
    keeps the cost of constriction's minimum probability 2^−24 per symbol (about
    2R·2^−24/ln 2 bits) negligible for peaked dimensions.
    """
    y = 32.0 * np.asarray(scale, np.float64) + 8.0
    mantissa, exponent = np.frexp(y)  # y = mantissa·2^exponent, mantissa in [0.5, 1)
    ceil_log2 = np.where(mantissa == 0.5, exponent - 1, exponent).astype(np.int64)
    ceil_log2 = np.clip(ceil_log2, MIN_RADIUS.bit_length() - 1, MAX_RADIUS.bit_length() - 1)
    return np.left_shift(np.int64(1), ceil_log2)


def positive(values: np.ndarray, size: int, owner: str, what: str) -> np.ndarray:
    """``values`` as float64 (size,), or ValueError unless they are that many finite positive numbers."""
    values = np.asarray(values, np.float64)
    if values.shape != (size,):
        raise ValueError(f"{owner} needs {size} {what}, got {values.shape}")
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError(f"{what} must be finite and positive")
    return values


class SequentialCode:
    """What every sequential box code of a scaled product lattice shares (module docstring).

    ``delta`` (one scale per block, the float32 of the model file converted exactly to
    float64) fixes the scale s_i of each coordinate, its box width w_i = s_i·d_i and the
    largest |k_i| a file can hold; the priors differ (:class:`LatticeCode`: one scale per
    coordinate; :class:`latcomp.entropy.conditional_code.ConditionalLatticeCode`: scales
    and means per row).
    """

    def __init__(self, lattice: ProductLattice, delta: np.ndarray):
        self.lattice = lattice
        self.delta = delta = positive(delta, lattice.num_blocks, f"lattice {lattice.spec}", "scales")
        #: s_i: the scale of each coordinate's block.
        self.scale = delta[lattice.block_of]
        #: w_i = s_i·d_i: the width of each coordinate's box.
        self.width = self.scale * lattice.steps
        cubic = np.array([lattice.names[i] == "z" for i in lattice.block_of])
        self.max_coord = np.where(cubic, MAX_COORD, MAX_LATTICE_COORD).astype(np.int64)

    @property
    def dim(self) -> int:
        return self.lattice.dim

    @property
    def level_columns(self) -> list[np.ndarray]:
        """The coordinates of each coding level, level 0 first."""
        return [np.flatnonzero(self.lattice.levels == level) for level in range(int(self.lattice.levels.max()) + 1)]

    def clamp(self, coords: np.ndarray) -> np.ndarray:
        """Float lattice coordinates → int64, clamped to ±max_coord (NaN → 0)."""
        coords = np.nan_to_num(np.asarray(coords, np.float64), nan=0.0)
        limit = self.max_coord.astype(np.float64) + 1.0
        return np.clip(np.clip(coords, -limit, limit).astype(np.int64), -self.max_coord, self.max_coord)

    def check_codable(self, k: np.ndarray) -> np.ndarray:
        """``k`` as int64, or ValueError if a coordinate exceeds what a file can hold."""
        k = np.asarray(k, np.int64)
        if any(np.any(np.abs(k[rows]) > self.max_coord) for rows in row_blocks(len(k), self.dim)):
            raise ValueError("lattice coordinates exceed the largest codable value")
        return k

    @property
    def dither_rows(self) -> int:
        """Rows of a block of dithers (read at once): about SYMBOL_CHUNK values, at most DITHER_ROWS rows."""
        return max(1, min(SYMBOL_CHUNK // self.dim, DITHER_ROWS))

    def read_once(self, u: DitherRows) -> DitherRows:
        """``u`` read by every level: computed rows are kept (:class:`RowsOnce`) if the lattice has several levels.

        A decoder that wraps its lazy dither with this before :meth:`push`/:meth:`pop` and reads the same object for
        Z − U afterwards computes every row once in all.
        """
        if isinstance(u, (np.ndarray, RowsOnce)) or self.lattice.levels.max() == 0:
            return u
        return RowsOnce(u, self.dither_rows)

    def _dither_columns(self, u: DitherRows, rows: slice, cols: np.ndarray) -> np.ndarray:
        """u[rows][:, cols] as float64, reading about SYMBOL_CHUNK dithers at a time."""
        parts = [np.asarray(u[rows.start + block.start:rows.start + block.stop], np.float64)[:, cols]
                 for block in row_blocks(rows.stop - rows.start, self.dim)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


class RowsOnce:
    """Dithers ``u`` (a :class:`DitherRows`) read in aligned blocks of ``block`` rows, each computed once and kept.

    The means of every level of a multi-level lattice need the dither of every row (their own
    columns of it); reading a computed ``u`` (the decoder's, from the seed) through this object
    evaluates each row once however many levels read it (a Leech file of 24 levels: once, not 24
    times). It holds the rows read so far (at most all N·dim float64 values, the size of k) and
    computes none before they are asked for, so a stream that ends early costs what it holds.
    """

    def __init__(self, u: DitherRows, block: int):
        self.u, self.block, self.blocks = u, block, {}

    def __len__(self) -> int:
        return len(self.u)

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(len(self.u))
        if start >= stop:
            return np.asarray(self.u[start:start], np.float64)
        parts = []
        for index in range(start // self.block, -(-stop // self.block)):
            first = index * self.block
            if index not in self.blocks:
                self.blocks[index] = np.asarray(self.u[first:min(first + self.block, len(self.u))], np.float64)
            parts.append(self.blocks[index][max(start - first, 0):stop - first])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


class LatticeCode(SequentialCode):
    """P(Ẑ | U) of a scaled product lattice under a factorized Laplace prior (module docstring).

    ``delta`` (one scale per block) and ``b`` (one prior scale per coordinate) are the
    float32 entropy parameters of the model file, converted exactly to float64.

    Support and escape: coordinate i codes clip(k_i, −R_i, R_i); the two end symbols
    carry the whole tail mass, so ±R_i means "|k_i| ≥ R_i" and is followed, after the
    level's symbols, by the excess |k_i| − R_i of each escaped position (row-major):
    its number of 16-bit digits with Uniform(5), then the digits, least significant
    first, with Uniform(2^16).
    """

    def __init__(self, lattice: ProductLattice, delta: np.ndarray, b: np.ndarray):
        super().__init__(lattice, delta)
        self.b = b = positive(b, lattice.dim, f"lattice {lattice.spec}", "prior scales")
        #: b_i/w_i: the coded Laplace scales.
        self.coded_scale = b / self.width
        if not (np.all(np.isfinite(self.coded_scale)) and np.all(self.coded_scale > 0)):
            raise ValueError("b/delta must be finite and positive")
        self.radius = support_radius(self.coded_scale)
        #: Per level: its coordinates and their groups of equal radius (one constriction family each).
        self.levels = []
        for level, cols in enumerate(self.level_columns):
            radius = self.radius[cols]
            # sorted(set(...)) rather than np.unique, which imports numpy.ma (7 ms of cold start)
            groups = [(r, np.flatnonzero(radius == r)) for r in sorted(set(radius.tolist()))]
            self.levels.append((level, cols, groups))
        self._families = {r: family(r) for r in set(self.radius.tolist())}

    def _means(self, k: np.ndarray, u: DitherRows, rows: slice, level: int, cols: np.ndarray) -> np.ndarray:
        """(u_i − s_i·c_i)/w_i for ``rows`` and the columns ``cols`` of ``level`` (float64, the fixed recipe)."""
        known = self.lattice.known_part(k[rows], level, cols)
        return (self._dither_columns(u, rows, cols) - self.scale[cols] * known) / self.width[cols]

    def _calls(self, k: np.ndarray, u: DitherRows, level: int, cols: np.ndarray
               ) -> Iterator[tuple[slice, slice, np.ndarray, np.ndarray]]:
        """The coder calls of one group: (rows, part, means, scales) with the parameters of its symbols."""
        for rows, part in symbol_chunks(len(k), cols.size):
            yield rows, part, *self._parameters(k, u, rows, part, level, cols)

    def _parameters(self, k: np.ndarray, u: DitherRows, rows: slice, part: slice, level: int, cols: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """The means and coded scales of the symbols ``part`` of ``rows`` × ``cols`` (row-major)."""
        return (self._means(k, u, rows, level, cols).ravel()[part],
                np.tile(self.coded_scale[cols], rows.stop - rows.start)[part])

    def push(self, coder: constriction.stream.stack.AnsCoder, k: np.ndarray, u: DitherRows) -> None:
        """Push coordinates ``k`` (N, dim) int64 given dithers ``u`` (N, dim) onto the ANS stack."""
        k, u = self.check_codable(k), self.read_once(u)
        for level, cols, groups in reversed(self.levels):
            rows, where = self._escapes(k, cols)
            push_escapes(coder, (np.abs(k[rows, where]) - self.radius[where]).astype(np.uint64))
            for r, dims in reversed(groups):
                group = cols[dims]
                for rows, part, mean, scale in reversed(list(self._calls(k, u, level, group))):
                    symbols = np.clip(k[rows][:, group], -r, r).ravel()[part].astype(np.int32)
                    coder.encode_reverse(symbols, self._families[r], mean, scale)

    def pop(self, coder: constriction.stream.stack.AnsCoder, u: DitherRows) -> np.ndarray:
        """Pop coordinates k (N, dim) int64 given dithers ``u`` (N rows); FormatError if invalid.

        Work bounded by the stream: before each call, the stream must still hold the fewest bits
        (:func:`min_bits`) of every coordinate symbol left to pop, or the payload is refused as
        corrupt. A call covers at most one block of dither rows (:meth:`read_once`), so a header
        that claims more lattice points than its payload holds costs the dithers of about the
        points the payload holds (a random payload overspends its floor within the first call),
        not of all that it claims. The format's chunks of SYMBOL_CHUNK symbols are split into such
        calls (the same bytes: ANS codes symbol by symbol); the empty-stream check of a
        :class:`~latcomp.runtime.coding.CheckedCoder` stays at the start of each format chunk.
        """
        k, u = np.zeros((len(u), self.dim), np.int64), self.read_once(u)
        fewest = min_bits(self.coded_scale, self.radius)
        left = len(k) * float(fewest.sum())   # the fewest bits of the coordinate symbols still to pop
        unchecked = getattr(coder, "unchecked", coder)
        for level, cols, groups in self.levels:
            for r, dims in groups:
                group = cols[dims]
                step = self.dither_rows * group.size   # one block of dither rows
                for chunk in range(0, len(k) * group.size, SYMBOL_CHUNK):   # the format's chunks
                    stop = min(chunk + SYMBOL_CHUNK, len(k) * group.size)
                    for i, (rows, part) in enumerate(symbol_pieces(chunk, stop, group.size, step)):
                        if coder.num_bits() + STREAM_SLACK_BITS < left:
                            raise FormatError("corrupt payload (the stream ends before the lattice coordinates it "
                                              "claims: it holds fewer bits than they need)")
                        mean, scale = self._parameters(k, u, rows, part, level, group)
                        left -= float(np.tile(fewest[group], rows.stop - rows.start)[part].sum())
                        block = k[rows][:, group]
                        flat = block.ravel()  # row-major (a copy: fancy indexing may return another layout)
                        # only a format chunk's first call checks for an empty stream (docs/format.md)
                        flat[part] = (coder if i == 0 else unchecked).decode(self._families[r], mean, scale)
                        k[rows, group] = flat.reshape(block.shape)
            rows, where = self._escapes(k, cols)
            excess = pop_escapes(coder, (self.max_coord[where] - self.radius[where]).astype(np.uint64))
            k[rows, where] = np.sign(k[rows, where]) * (self.radius[where] + excess.astype(np.int64))
        return k

    def _escapes(self, k: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns (row-major over k[:, cols]) of the coordinates with |k_i| ≥ R_i, by row blocks."""
        radius, found = self.radius[cols], []
        for rows in row_blocks(len(k), cols.size):
            flat = np.flatnonzero(np.abs(k[rows][:, cols]) >= radius)
            found.append(flat + rows.start * cols.size)
        where = np.concatenate(found) if found else np.zeros(0, np.int64)
        return where // cols.size, cols[where % cols.size]

    def log2_prob(self, k: np.ndarray, u: np.ndarray) -> np.ndarray:
        """log2 P(k_i | k_{j>i}, u) per coordinate (the ideal code length is minus its sum)."""
        eta = self.scale * self.lattice.point(k) - np.asarray(u, np.float64)
        return laplace_log_mass(eta, self.width, self.b) / _LN2

    def ideal_bits(self, k: np.ndarray, u: np.ndarray) -> float:
        """Σ −log2 P(Ẑ|U) of coordinates ``k`` (N, dim): the ideal length of the latent code."""
        return float(-self.log2_prob(k, u).sum())

    def min_bits_per_item(self) -> float:
        """A lower bound on the coded bits of one latent vector, whatever k and u.

        A unit bin of a Laplace of scale s holds at most 1 − e^{−1/(2s)}; after
        quantization to 24 bits the most likely symbol still leaves ≥ 2^−24 to each of
        the 2R other symbols. Used to reject headers that claim more items than the
        payload could possibly hold.
        """
        return float(min_bits(self.coded_scale, self.radius).sum())


def min_bits(coded_scale: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Fewest bits of one coordinate of coded scale s and radius R (:meth:`LatticeCode.min_bits_per_item`)."""
    p_max = -np.expm1(-0.5 / coded_scale) + 2.0**-(PRECISION - 1)
    p_max = np.minimum(p_max, 1.0 - 2.0 * radius * 2.0**-PRECISION)
    return -np.log2(p_max)


def push_escapes(coder: constriction.stream.stack.AnsCoder, excess: np.ndarray) -> None:
    """Push the escape payload of the excesses |k_i| − R_i (uint64) of a level's escaped positions."""
    if not excess.size:
        return
    ndig = sum((excess >= np.uint64(1 << (16 * j))).astype(np.int32) for j in range(_DIGITS))
    digits = [((e >> np.uint64(16 * j)) & np.uint64(0xFFFF))
              for e, nd in zip(excess, ndig, strict=True) for j in range(nd)]
    if digits:
        coder.encode_reverse(np.array(digits, np.int64).astype(np.int32), _model.Uniform(1 << 16))
    coder.encode_reverse(ndig.astype(np.int32), _model.Uniform(_DIGITS + 1))


def pop_escapes(coder: constriction.stream.stack.AnsCoder, room: np.ndarray) -> np.ndarray:
    """Pop the excesses of a level's escaped positions; ``room`` is max_coord − R_i of each (uint64)."""
    count = room.size
    if not count:
        return np.zeros(0, np.uint64)
    ndig = coder.decode(_model.Uniform(_DIGITS + 1), count).astype(np.int64)
    total = int(ndig.sum())
    digits = coder.decode(_model.Uniform(1 << 16), total).astype(np.uint64) if total else np.zeros(0, np.uint64)
    ends = np.cumsum(ndig)
    excess = np.zeros(count, np.uint64)
    for j in range(_DIGITS):
        has = ndig > j
        excess[has] |= digits[(ends - ndig)[has] + j] << np.uint64(16 * j)
    top = digits[ends[ndig > 0] - 1]
    if np.any(top == 0) or np.any(excess > room):
        raise FormatError("corrupt payload (invalid escape code)")
    return excess
