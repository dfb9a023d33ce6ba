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
"""

from __future__ import annotations

import math

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
#: Escape payload: number of 16-bit digits (0–4) with Uniform(5), then the digits.
_DIGITS = 4
_LN2 = math.log(2.0)

_model = constriction.stream.model


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


class LatticeCode:
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
        self.lattice = lattice
        delta, b = np.asarray(delta, np.float64), np.asarray(b, np.float64)
        if delta.shape != (lattice.num_blocks,) or b.shape != (lattice.dim,):
            raise ValueError(f"lattice {lattice.spec} needs {lattice.num_blocks} scales and {lattice.dim} "
                             f"prior scales, got {delta.shape} and {b.shape}")
        if not (np.all(np.isfinite(delta)) and np.all(delta > 0) and np.all(np.isfinite(b)) and np.all(b > 0)):
            raise ValueError("lattice scales and prior scales must be finite and positive")
        self.delta, self.b = delta, b
        #: s_i: the scale of each coordinate's block.
        self.scale = delta[lattice.block_of]
        #: w_i = s_i·d_i: the width of each coordinate's box.
        self.width = self.scale * lattice.steps
        #: b_i/w_i: the coded Laplace scales.
        self.coded_scale = b / self.width
        if not (np.all(np.isfinite(self.coded_scale)) and np.all(self.coded_scale > 0)):
            raise ValueError("b/delta must be finite and positive")
        self.radius = support_radius(self.coded_scale)
        cubic = np.array([lattice.names[i] == "z" for i in lattice.block_of])
        self.max_coord = np.where(cubic, MAX_COORD, MAX_LATTICE_COORD).astype(np.int64)
        #: Per level: its coordinates and their groups of equal radius (one constriction family each).
        self.levels = []
        for level in range(int(lattice.levels.max()) + 1):
            cols = np.flatnonzero(lattice.levels == level)
            radius = self.radius[cols]
            # sorted(set(...)) rather than np.unique, which imports numpy.ma (7 ms of cold start)
            groups = [(r, np.flatnonzero(radius == r)) for r in sorted(set(radius.tolist()))]
            self.levels.append((level, cols, groups))
        self._families = {r: _model.QuantizedLaplace(-r, r) for r in set(self.radius.tolist())}

    @property
    def dim(self) -> int:
        return self.lattice.dim

    def clamp(self, coords: np.ndarray) -> np.ndarray:
        """Float lattice coordinates → int64, clamped to ±max_coord (NaN → 0)."""
        coords = np.nan_to_num(np.asarray(coords, np.float64), nan=0.0)
        limit = self.max_coord.astype(np.float64) + 1.0
        return np.clip(np.clip(coords, -limit, limit).astype(np.int64), -self.max_coord, self.max_coord)

    def _means(self, k: np.ndarray, u: np.ndarray, level: int, cols: np.ndarray) -> np.ndarray:
        """(u_i − s_i·c_i)/w_i for the coordinates of ``level`` (float64, the fixed recipe)."""
        known = self.lattice.known_part(k, level)
        return (np.asarray(u, np.float64)[:, cols] - self.scale[cols] * known) / self.width[cols]

    def _params(self, mean: np.ndarray, cols: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = mean.shape[0]
        return (np.ascontiguousarray(mean[:, dims]).ravel(),
                np.ascontiguousarray(np.broadcast_to(self.coded_scale[cols[dims]], (n, dims.size))).ravel())

    def push(self, coder: constriction.stream.stack.AnsCoder, k: np.ndarray, u: np.ndarray) -> None:
        """Push coordinates ``k`` (N, dim) int64 given dithers ``u`` (N, dim) onto the ANS stack."""
        k = np.asarray(k, np.int64)
        if np.any(np.abs(k) > self.max_coord):
            raise ValueError("lattice coordinates exceed the largest codable value")
        for level, cols, groups in reversed(self.levels):
            kl = k[:, cols]
            radius = self.radius[cols]
            clipped = np.clip(kl, -radius, radius)
            _push_escapes(coder, kl, clipped, radius)
            mean = self._means(k, u, level, cols)
            for r, dims in reversed(groups):
                m, s = self._params(mean, cols, dims)
                coder.encode_reverse(np.ascontiguousarray(clipped[:, dims]).ravel().astype(np.int32),
                                     self._families[r], m, s)

    def pop(self, coder: constriction.stream.stack.AnsCoder, u: np.ndarray) -> np.ndarray:
        """Pop coordinates k (N, dim) int64 given dithers ``u`` (N, dim); FormatError if invalid."""
        u = np.asarray(u, np.float64)
        k = np.zeros(u.shape, np.int64)
        for level, cols, groups in self.levels:
            mean = self._means(k, u, level, cols)
            kl = np.empty(mean.shape, np.int64)
            for r, dims in groups:
                m, s = self._params(mean, cols, dims)
                kl[:, dims] = coder.decode(self._families[r], m, s).reshape(mean.shape[0], dims.size)
            _pop_escapes(coder, kl, self.radius[cols], self.max_coord[cols])
            k[:, cols] = kl
        return k

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
        p_max = -np.expm1(-0.5 / self.coded_scale) + 2.0**-(PRECISION - 1)
        p_max = np.minimum(p_max, 1.0 - 2.0 * self.radius * 2.0**-PRECISION)
        return float(-np.log2(p_max).sum())


def _push_escapes(coder: constriction.stream.stack.AnsCoder, k: np.ndarray, clipped: np.ndarray,
                  radius: np.ndarray) -> None:
    escaped = np.abs(clipped) == radius
    excess = (np.abs(k[escaped]) - np.broadcast_to(radius, k.shape)[escaped]).astype(np.uint64)
    if not excess.size:
        return
    ndig = sum((excess >= np.uint64(1 << (16 * j))).astype(np.int32) for j in range(_DIGITS))
    digits = [((e >> np.uint64(16 * j)) & np.uint64(0xFFFF))
              for e, nd in zip(excess, ndig, strict=True) for j in range(nd)]
    if digits:
        coder.encode_reverse(np.array(digits, np.int64).astype(np.int32), _model.Uniform(1 << 16))
    coder.encode_reverse(ndig.astype(np.int32), _model.Uniform(_DIGITS + 1))


def _pop_escapes(coder: constriction.stream.stack.AnsCoder, k: np.ndarray, radius: np.ndarray,
                 max_coord: np.ndarray) -> None:
    """Replace the escaped symbols ±R_i of ``k`` (in place) by their full values."""
    escaped = np.abs(k) == radius
    count = int(escaped.sum())
    if not count:
        return
    ndig = coder.decode(_model.Uniform(_DIGITS + 1), count).astype(np.int64)
    total = int(ndig.sum())
    digits = coder.decode(_model.Uniform(1 << 16), total).astype(np.uint64) if total else np.zeros(0, np.uint64)
    ends = np.cumsum(ndig)
    excess = np.zeros(count, np.uint64)
    for j in range(_DIGITS):
        has = ndig > j
        excess[has] |= digits[(ends - ndig)[has] + j] << np.uint64(16 * j)
    top = digits[ends[ndig > 0] - 1]
    r = np.broadcast_to(radius, k.shape)[escaped]
    limit = np.broadcast_to(max_coord, k.shape)[escaped]
    if np.any(top == 0) or np.any(excess > (limit - r).astype(np.uint64)):
        raise FormatError("corrupt payload (invalid escape code)")
    k[escaped] = np.sign(k[escaped]) * (r + excess.astype(np.int64))
