"""Entropy models for the codec, independent of the file format and of the networks.

Each model codes one kind of symbol on a constriction ANS stack (``AnsCoder``):
``push`` must be called in the reverse of the ``pop`` order (a stack), and
``ideal_bits`` gives the information content −log2 P that the coded size should
approach. All parameters are computed with one fixed float64 recipe (division
only, no exp/matmul) from the float32 values frozen in the model file, so encoder
and decoder build bit-identical models (see ``docs/format.md``).

* :class:`LaplaceLatentModel` — the code P(Ẑ|U) of Theorem 1 for the rectangular
  lattice with the Laplacian prior of Section 4: with Z = Δ·k and dither U = u,
  k_i ~ Laplace(mean u_i/Δ_i, scale b_i/Δ_i) quantized to unit bins centred on the
  integers (constriction's ``QuantizedLaplace``), on a finite support [−R_i, R_i]
  with an escape for coordinates beyond it.
* :class:`BernoulliPixelModel` — binary pixels with the decoder's probabilities
  Q(D_j = 1 | Z − U), the second part of the two-part code of Section 3.3.
"""

from __future__ import annotations

import math

import constriction
import numpy as np

from latcomp.errors import FormatError
from latcomp.entropy.laplace import laplace_log_mass

#: constriction's Python bindings quantize probabilities to this many bits.
PRECISION = 24
#: Smallest and largest support radius R_i of a latent dimension.
MIN_RADIUS, MAX_RADIUS = 16, 1 << 22
#: Largest |k_i| a file can hold; the encoder clamps coordinates to it.
MAX_COORD = (1 << 62) - 1
#: Escape payload: number of 16-bit digits (0–4) with Uniform(5), then the digits.
_DIGITS = 4
_LN2 = math.log(2.0)

_model = constriction.stream.model


def support_radius(scale: np.ndarray) -> np.ndarray:
    """R_i = 2^⌈log2(32·s_i + 8)⌉ clamped to [16, 2^22], for s_i = b_i/Δ_i (exact: frexp only).

    The Laplace tail beyond R_i has mass < e^−32, so escapes are rare, while a small R
    keeps the cost of constriction's minimum probability 2^−24 per symbol (about
    2R·2^−24/ln 2 bits) negligible for peaked dimensions.
    """
    y = 32.0 * np.asarray(scale, np.float64) + 8.0
    mantissa, exponent = np.frexp(y)  # y = mantissa·2^exponent, mantissa in [0.5, 1)
    ceil_log2 = np.where(mantissa == 0.5, exponent - 1, exponent).astype(np.int64)
    ceil_log2 = np.clip(ceil_log2, MIN_RADIUS.bit_length() - 1, MAX_RADIUS.bit_length() - 1)
    return np.left_shift(np.int64(1), ceil_log2)


class LaplaceLatentModel:
    """P(Ẑ = Δ·k | U = u) for the rectangular lattice: per dimension a quantized Laplace.

    ``delta`` and ``b`` are the float32 entropy parameters of the model file (Δ_i and
    the prior scales b_i), converted exactly to float64. The coded parameters are
    ``mean = u/Δ`` and ``scale = b/Δ`` (float64 divisions), the recipe of
    ``docs/format.md``.

    Support and escape: dimension i codes clip(k_i, −R_i, R_i) (R_i from
    :func:`support_radius`); the two end symbols carry the whole tail mass, so a
    symbol ±R_i means "|k_i| ≥ R_i" and is followed (after all latent symbols, in
    row-major order of the escaped positions) by the excess |k_i| − R_i: its number
    of 16-bit digits with Uniform(5), then the digits, least significant first, with
    Uniform(2^16). Any |k_i| ≤ :data:`MAX_COORD` can be coded.
    """

    def __init__(self, delta: np.ndarray, b: np.ndarray):
        self.delta = np.asarray(delta, np.float64)
        self.b = np.asarray(b, np.float64)
        if self.delta.shape != self.b.shape or self.delta.ndim != 1:
            raise ValueError("delta and b must be 1-D arrays of the same length")
        if not (np.all(np.isfinite(self.delta)) and np.all(self.delta > 0)
                and np.all(np.isfinite(self.b)) and np.all(self.b > 0)):
            raise ValueError("delta and b must be finite and positive")
        self.scale = self.b / self.delta
        if not (np.all(np.isfinite(self.scale)) and np.all(self.scale > 0)):
            raise ValueError("b/delta must be finite and positive")
        self.radius = support_radius(self.scale)
        # sorted(set(...)) rather than np.unique, which imports numpy.ma (7 ms of cold start)
        self.groups = [(r, np.flatnonzero(self.radius == r)) for r in sorted(set(self.radius.tolist()))]
        self._families = {r: _model.QuantizedLaplace(-r, r) for r, _ in self.groups}

    @property
    def dim(self) -> int:
        return self.delta.shape[0]

    def means(self, u: np.ndarray) -> np.ndarray:
        """The coded means u/Δ (float64 division, the fixed recipe)."""
        return np.asarray(u, np.float64) / self.delta

    def clamp(self, coords: np.ndarray) -> np.ndarray:
        """Float lattice coordinates → int64, clamped to ±MAX_COORD (NaN → 0)."""
        coords = np.nan_to_num(np.asarray(coords, np.float64), nan=0.0)
        limit = float(MAX_COORD + 1)  # 2^62, exact in float64 (MAX_COORD itself is not)
        return np.clip(np.clip(coords, -limit, limit).astype(np.int64), -MAX_COORD, MAX_COORD)

    def _group_params(self, mean: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = mean.shape[0]
        return (np.ascontiguousarray(mean[:, dims]).ravel(),
                np.ascontiguousarray(np.broadcast_to(self.scale[dims], (n, dims.size))).ravel())

    def push(self, coder: constriction.stream.stack.AnsCoder, k: np.ndarray, u: np.ndarray) -> None:
        """Push coordinates ``k`` (N, m) int64 given dithers ``u`` (N, m) onto the ANS stack."""
        k = np.asarray(k, np.int64)
        if np.any(np.abs(k) > MAX_COORD):
            raise ValueError("lattice coordinates exceed MAX_COORD")
        clipped = np.clip(k, -self.radius, self.radius)
        escaped = np.abs(clipped) == self.radius
        excess = (np.abs(k[escaped]) - np.broadcast_to(self.radius, k.shape)[escaped]).astype(np.uint64)
        if excess.size:
            ndig = sum((excess >= np.uint64(1 << (16 * j))).astype(np.int32) for j in range(_DIGITS))
            digits = [((e >> np.uint64(16 * j)) & np.uint64(0xFFFF)) for e, nd in zip(excess, ndig)
                      for j in range(nd)]
            if digits:
                coder.encode_reverse(np.array(digits, np.int64).astype(np.int32), _model.Uniform(1 << 16))
            coder.encode_reverse(ndig.astype(np.int32), _model.Uniform(_DIGITS + 1))
        mean = self.means(u)
        for r, dims in reversed(self.groups):
            m, s = self._group_params(mean, dims)
            coder.encode_reverse(np.ascontiguousarray(clipped[:, dims]).ravel().astype(np.int32),
                                 self._families[r], m, s)

    def pop(self, coder: constriction.stream.stack.AnsCoder, u: np.ndarray) -> np.ndarray:
        """Pop coordinates k (N, m) int64 given dithers ``u`` (N, m); FormatError if invalid."""
        mean = self.means(u)
        k = np.empty(mean.shape, np.int64)
        for r, dims in self.groups:
            m, s = self._group_params(mean, dims)
            k[:, dims] = coder.decode(self._families[r], m, s).reshape(mean.shape[0], dims.size)
        escaped = np.abs(k) == self.radius
        count = int(escaped.sum())
        if count:
            ndig = coder.decode(_model.Uniform(_DIGITS + 1), count).astype(np.int64)
            total = int(ndig.sum())
            digits = (coder.decode(_model.Uniform(1 << 16), total).astype(np.uint64) if total
                      else np.zeros(0, np.uint64))
            ends = np.cumsum(ndig)
            excess = np.zeros(count, np.uint64)
            for j in range(_DIGITS):
                has = ndig > j
                excess[has] |= digits[(ends - ndig)[has] + j] << np.uint64(16 * j)
            top = digits[ends[ndig > 0] - 1]
            radius = np.broadcast_to(self.radius, k.shape)[escaped]
            if np.any(top == 0) or np.any(excess > (MAX_COORD - radius).astype(np.uint64)):
                raise FormatError("corrupt payload (invalid escape code)")
            k[escaped] = np.sign(k[escaped]) * (radius + excess.astype(np.int64))
        return k

    def log2_prob(self, k: np.ndarray, u: np.ndarray) -> np.ndarray:
        """log2 P(Ẑ = Δk | U = u) per coordinate (the ideal code length is minus its sum)."""
        eta = np.asarray(k, np.float64) * self.delta - u
        return laplace_log_mass(eta, self.delta, self.b) / _LN2

    def ideal_bits(self, k: np.ndarray, u: np.ndarray) -> float:
        """Σ −log2 P(Ẑ|U) of coordinates ``k`` (N, m): the ideal length of the latent code."""
        return float(-self.log2_prob(k, u).sum())

    def min_bits_per_item(self) -> float:
        """A lower bound on the coded bits of one latent vector, whatever k and u.

        A unit bin of a Laplace of scale s holds at most 1 − e^{−1/(2s)}; after
        quantization to 24 bits the most likely symbol still leaves ≥ 2^−24 to each of
        the 2R other symbols. Used to reject headers that claim more items than the
        payload could possibly hold.
        """
        p_max = -np.expm1(-0.5 / self.scale) + 2.0**-(PRECISION - 1)
        p_max = np.minimum(p_max, 1.0 - 2.0 * self.radius * 2.0**-PRECISION)
        return float(-np.log2(p_max).sum())


class BernoulliPixelModel:
    """Binary symbols with given probabilities of a 1 (constriction ``Bernoulli(perfect=False)``)."""

    def __init__(self) -> None:
        self._family = _model.Bernoulli(perfect=False)

    def push(self, coder: constriction.stream.stack.AnsCoder, bits: np.ndarray, p: np.ndarray) -> None:
        """Push 0/1 symbols ``bits`` (any shape) with P(1) = ``p`` (same shape) onto the stack."""
        coder.encode_reverse(np.asarray(bits).ravel().astype(np.int32), self._family,
                             np.ascontiguousarray(p, np.float64).ravel())

    def pop(self, coder: constriction.stream.stack.AnsCoder, p: np.ndarray) -> np.ndarray:
        """Pop 0/1 symbols (uint8, shape of ``p``) with P(1) = ``p``."""
        p = np.ascontiguousarray(p, np.float64)
        return coder.decode(self._family, p.ravel()).reshape(p.shape).astype(np.uint8)

    @staticmethod
    def ideal_bits(bits: np.ndarray, p: np.ndarray) -> float:
        """Σ −log2 Q(bits) — the ideal length of the pixel code given Z − U."""
        bits = np.asarray(bits).astype(bool)
        p = np.asarray(p, np.float64)
        return float(-(np.log2(np.where(bits, p, 1.0 - p))).sum())
