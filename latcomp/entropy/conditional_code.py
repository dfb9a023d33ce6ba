"""The conditional lattice code: P(Ẑ = z | U = u) with a Laplace scale and mean for every row and coordinate.

A conditional prior (a hyperprior, a context model, a text decoder) gives each row n (a
latent position) its own prior X̂_{n,i} ~ Laplace(μ_{n,i}, b_{n,i}). The point is coded as
by :class:`~latcomp.entropy.lattice_code.LatticeCode` (the sequential box code: the last
coordinate of each block first, in the block's lower-triangular basis), with the box of
coordinate i, given the coordinates already coded, centred on its own mean:

    P(k_i | k_{j>i}, u) = F_{b}(η_i − μ_i + w_i/2) − F_{b}(η_i − μ_i − w_i/2),   η = z − u,

so with m_i = (u_i + μ_i − s_i·c_i)/w_i (c_i the known part, w_i the box width) the symbol
k_i − ⌊m_i⌉ is QuantizedLaplace(m_i − ⌊m_i⌉, b_i/w_i) on unit bins: the support
−R … R is centred on the nearest integer ⌊m_i⌉ (``rint``) of the mean, so a mean of any size
costs its probability and nothing more. The boxes tile space: Σ_k P(k | u) = 1, and the code
length −Σ log P depends on Z − U only, so by the Crypto-Lemma its expectation given the
parameters is the training rate −Σ log P(box) at X − U (Theorem 1; :meth:`log2_prob` is the
code length of the real point, :class:`~latcomp.latent_codecs.ConditionalLatticeCodec` the
torch rate).

**Parameters** (:class:`LaplaceRows`), bit-identical on both sides:

* scales b_{n,i}: indices j into the fixed table :data:`latcomp.entropy.scales.SCALE_TABLE`
  (``LaplaceRows.from_indices``; what a model computes in exact integer arithmetic), or exact
  float64 values;
* means μ_{n,i}: none (0), or exact float64 values (a model that predicts means must compute
  them exactly on both sides, e.g. as integers times a power of two).

The coded scale is b/w and the mean (u + μ − s·c)/w: float64 additions, products and one
division, nothing else, so equal inputs give equal models. Support radius R = 2^⌈log2(32·b/w
+ 8)⌉ clamped to [16, 2^22] (:func:`~latcomp.entropy.lattice_code.support_radius`), now per
position.

**Stream order** (pops; pushes are the exact reverse): level by level (level 0 is the last
coordinate of every block); within a level, blocks of max(1, 2^16 // c) rows (c the level's
number of coordinates); within a row block, its positions grouped by R (ascending), row-major
within a group, one coder call per group (at most 2^16 symbols, so the empty-stream check of
the runtime's checked coder sits before every call); after the block's symbols, its escapes:
positions with |k_i − ⌊m_i⌉| ≥ R (row-major) send the excess |k_i − ⌊m_i⌉| − R as
:class:`LatticeCode` does. The rows' parameters, dithers and known parts are computed a row
block at a time; the dither of a multi-level lattice is read once per row block
(:class:`~latcomp.entropy.lattice_code.RowsOnce`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import constriction
import numpy as np

from latcomp.entropy.laplace import laplace_log_mass
from latcomp.entropy.lattice_code import (
    MIN_RADIUS,
    PRECISION,
    DitherRows,
    SequentialCode,
    family,
    pop_escapes,
    push_escapes,
    row_blocks,
    support_radius,
)
from latcomp.entropy.scales import SIZE, table_scale
from latcomp.errors import FormatError

Array = Any  # numpy.ndarray or torch.Tensor

#: Largest |μ/w| of a mean: keeps the centre ⌊m⌉ (below 2^51 with the known part) and k − ⌊m⌉ inside int64.
MAX_MEAN = float(1 << 50)
_LN2 = float(np.log(2.0))


class TableScales:
    """Laplace scales b = SCALE_TABLE[index] held as their table indices (N, dim), one byte each, looked up a
    slice of rows at a time: what a decoder keeps for every row of a large image (an eighth of float64 scales)."""

    def __init__(self, index: np.ndarray):
        index = np.asarray(index)
        if index.ndim != 2 or index.dtype.kind not in "iu":
            raise ValueError(f"scale indices must be a 2-D integer array, got {index.dtype} {index.shape}")
        if index.size and (index.min() < 0 or index.max() >= SIZE):
            raise ValueError(f"scale table indices must lie in 0 … {SIZE - 1}")
        self.index = index.astype(np.uint8 if SIZE <= 256 else np.int64, copy=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.index.shape

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return table_scale(self.index[rows])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(table_scale(self.index), dtype)


@dataclass(frozen=True)
class LaplaceRows:
    """Per-row Laplace parameters of a conditional prior: ``scale`` b and ``mean`` μ (None: 0), each (N, dim).

    numpy float64 for coding (:meth:`from_indices` for table indices), torch tensors for training
    (e.g. :func:`latcomp.entropy.scales.straight_through_scale` of a predicted log-scale index).
    """

    scale: Array | TableScales
    mean: Array | None = None

    @classmethod
    def from_indices(cls, index: np.ndarray, mean: np.ndarray | None = None) -> LaplaceRows:
        """Scales b = SCALE_TABLE[index] of integer table indices (N, dim), kept as the indices
        (:class:`TableScales`); ``mean`` exact float64 or None."""
        return cls(TableScales(index), None if mean is None else np.asarray(mean, np.float64))

    def rows(self, rows: slice) -> LaplaceRows:
        """The parameters of ``rows``."""
        return LaplaceRows(self.scale[rows], None if self.mean is None else self.mean[rows])

    def shifted(self, eta: Array) -> Array:
        """η − μ (η itself without means)."""
        return eta if self.mean is None else eta - self.mean


class ConditionalLatticeCode(SequentialCode):
    """P(Ẑ | U) of a scaled product lattice under per-row Laplace priors (module docstring).

    ``delta``: one scale per block (the model's, float32 converted exactly to float64); the
    prior of every call is a :class:`LaplaceRows` of float64 arrays with one row per row of k.
    """

    def push(self, coder: constriction.stream.stack.AnsCoder, k: np.ndarray, u: DitherRows,
             prior: LaplaceRows) -> None:
        """Push coordinates ``k`` (N, dim) int64 given dithers ``u`` and the rows' ``prior`` onto the ANS stack."""
        k, u = self.check_codable(k), self.read_once(u)
        self._check_prior(prior, len(k))
        for level, cols in reversed(list(enumerate(self.level_columns))):
            for rows in reversed(list(row_blocks(len(k), cols.size))):
                centre, mean, scale, radius = self._parameters(k, u, prior, rows, level, cols)
                offset = k[rows][:, cols] - centre
                escaped = np.flatnonzero(np.abs(offset) >= radius)
                push_escapes(coder, (np.abs(offset.ravel()[escaped]) - radius.ravel()[escaped]).astype(np.uint64))
                symbols = np.clip(offset, -radius, radius).ravel()
                for r, where in reversed(_groups(radius)):
                    coder.encode_reverse(symbols[where].astype(np.int32), family(r), mean[where], scale[where])

    def pop(self, coder: constriction.stream.stack.AnsCoder, u: DitherRows, prior: LaplaceRows) -> np.ndarray:
        """Pop coordinates k (N, dim) int64 given dithers ``u`` (N rows) and ``prior``; FormatError if invalid."""
        k, u = np.zeros((len(u), self.dim), np.int64), self.read_once(u)
        self._check_prior(prior, len(k))
        for level, cols in enumerate(self.level_columns):
            for rows in row_blocks(len(k), cols.size):
                centre, mean, scale, radius = self._parameters(k, u, prior, rows, level, cols)
                symbols = np.zeros(radius.size, np.int64)
                for r, where in _groups(radius):
                    symbols[where] = coder.decode(family(r), mean[where], scale[where])
                k[rows, cols] = self._with_escapes(coder, symbols, radius.ravel(), centre.ravel(), cols
                                                   ).reshape(radius.shape)
        return k

    def _with_escapes(self, coder: constriction.stream.stack.AnsCoder, symbols: np.ndarray, radius: np.ndarray,
                      centre: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """k = centre + symbol of a row block (raveled), the escaped positions completed from the stream."""
        escaped = np.flatnonzero(np.abs(symbols) >= radius)
        sign, r, c = np.sign(symbols[escaped]), radius[escaped], centre[escaped]
        limit = self.max_coord[cols][escaped % cols.size]
        room = np.maximum(limit - sign * c - r, 0).astype(np.uint64)  # |k| ≤ max_coord (checked below)
        symbols[escaped] = sign * (r + pop_escapes(coder, room).astype(np.int64))
        k = centre + symbols
        if np.any(np.abs(k[escaped]) > limit):
            raise FormatError("corrupt payload (invalid escape code)")
        return k

    def _parameters(self, k: np.ndarray, u: DitherRows, prior: LaplaceRows, rows: slice, level: int,
                    cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Of ``rows`` × the level's ``cols``: the centres ⌊m⌉ (int64), the coded means m − ⌊m⌉ and scales b/w
        (float64, raveled row-major) and the radii (int64), by the fixed recipe (module docstring)."""
        known = self.lattice.known_part(k[rows], level, cols)
        shift = self._dither_columns(u, rows, cols)
        if prior.mean is not None:
            shift = shift + prior.mean[rows][:, cols]
        mean = (shift - self.scale[cols] * known) / self.width[cols]  # |mean| < 2^51: |μ/w| ≤ 2^50, |c/d| < 2^44
        centre = np.rint(mean)
        scale = prior.scale[rows][:, cols] / self.width[cols]
        return centre.astype(np.int64), (mean - centre).ravel(), scale.ravel(), support_radius(scale)

    def _check_prior(self, prior: LaplaceRows, n: int) -> None:
        """ValueError unless ``prior`` holds float64 (n, dim) arrays, b/w finite and positive, |μ/w| ≤ 2^50."""
        if isinstance(prior.scale, TableScales) and prior.scale.shape == (n, self.dim):
            arrays = [] if prior.mean is None else [prior.mean]   # table entries: finite and positive
        else:
            arrays = [prior.scale] if prior.mean is None else [prior.scale, prior.mean]
        for a in arrays:
            if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != (n, self.dim):
                raise ValueError(f"a conditional prior for coding is float64 numpy arrays ({n}, {self.dim}), got "
                                 f"{getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
        for rows in row_blocks(n, self.dim):
            scale = prior.scale[rows] / self.width
            if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
                raise ValueError("conditional Laplace scales b/w must be finite and positive")
            if prior.mean is not None and not np.all(np.abs(prior.mean[rows]) <= MAX_MEAN * self.width):
                raise ValueError("conditional means must be finite with |μ/w| ≤ 2^50")

    def log2_prob(self, k: np.ndarray, u: np.ndarray, prior: LaplaceRows) -> np.ndarray:
        """log2 P(k_i | k_{j>i}, u) per coordinate under ``prior`` (the ideal code length is minus its sum)."""
        eta = self.scale * self.lattice.point(k) - np.asarray(u, np.float64)
        return laplace_log_mass(prior.shifted(eta), self.width, np.asarray(prior.scale)) / _LN2

    def ideal_bits(self, k: np.ndarray, u: np.ndarray, prior: LaplaceRows) -> float:
        """Σ −log2 P(Ẑ|U) of coordinates ``k`` (N, dim) under ``prior``: the ideal length of the latent code."""
        return float(-self.log2_prob(k, u, prior).sum())

    def min_bits_per_item(self) -> float:
        """A lower bound on the coded bits of one latent vector under any prior: after 24-bit quantization the
        most likely symbol still leaves 2^−24 to each of the ≥ 2·16 others (to refuse impossible claims)."""
        return -self.dim * float(np.log2(1.0 - 2.0 * MIN_RADIUS * 2.0**-PRECISION))


def _groups(radius: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The raveled positions of a row block with equal radius R, by ascending R, each in row-major order."""
    flat = radius.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.flatnonzero(np.diff(flat[order])) + 1
    return [(int(flat[part[0]]), part) for part in np.split(order, bounds)] if flat.size else []
