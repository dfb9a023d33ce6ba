"""Lattices Λ(B) = {k·B : k ∈ Z^n} (Section 3.1) and their nearest-point quantizers K_Λ (Eq. 4).

A :class:`Lattice` here is one *unit* block (Z, A2, D4, E8, Λ16, Λ24) in its
natural coordinates; :class:`latcomp.lattices.product.ProductLattice` puts blocks
side by side, each with a learned scale, to fill a latent.

Every block has a **lower-triangular basis** B (rows are basis vectors, B[j, i] = 0
for i > j). Coordinate i of a point k·B then depends only on k_j for j ≥ i, so the
integer coordinates can be entropy-coded one after the other from the last to the
first, each on a 1-D lattice of step B[i, i] (the sequential box code of
:mod:`latcomp.entropy.lattice_code`).

**Exact arithmetic.** The decoder of a file must regenerate the dither
U = w − K_Λ(w), w = v·B, bit for bit. All bases except A2's are dyadic
(integers and halves), the uniforms v are cut to 32 bits (:data:`DITHER_BITS`),
so every coordinate of w is a multiple of 2^−33 far below 2^20 and the product
v·B is exact in float64 whatever the summation order. The decoders below then
use only exact operations on such inputs (rint, comparisons, additions of
dyadics, and distance comparisons through the exact linear score Σ p·(p − 2x)),
so K_Λ(w), hence U, is the same on every machine. A2's basis has √3/2 on the
diagonal only; its products are single multiplications, correctly rounded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction
from functools import cached_property

import numpy as np

#: Uniforms of non-rectangular dithers are cut to this many bits (exact products, see above).
DITHER_BITS = 32
_DITHER_SCALE = float(1 << DITHER_BITS)
#: Added to the cost bound of an odd-parity coset: beyond any bound (squared residuals, at most n/4).
_ODD_PENALTY = 1e30


class Lattice(ABC):
    """An n-dimensional unit lattice block with a lower-triangular basis (rows) and an exact decoder."""

    #: Name in lattice specs, model configs and container headers ("e8", "leech", …).
    name: str = "abstract"
    #: Normalized second moment G(Λ) from Conway & Sloane (Table 2.3), for tests and docs.
    known_nsm: float = float("nan")

    @property
    @abstractmethod
    def basis(self) -> np.ndarray:
        """Lower-triangular generator matrix (float64, rows are basis vectors)."""

    @abstractmethod
    def nearest(self, x: np.ndarray) -> np.ndarray:
        """K_Λ(x): the nearest lattice point to each row of ``x`` (..., n), float64 (Eq. 4)."""

    @property
    def dim(self) -> int:
        return self.basis.shape[0]

    @cached_property
    def steps(self) -> np.ndarray:
        """The diagonal of B: the 1-D lattice step of each coordinate given the later ones."""
        return np.diag(self.basis).copy()

    @cached_property
    def volume(self) -> float:
        """V_Λ = |det B| = Π steps."""
        return float(np.prod(self.steps))

    def point(self, k: np.ndarray) -> np.ndarray:
        """The lattice point k·B for integer coordinates k (..., n), float64 (exact for |k| < 2^40)."""
        return np.asarray(k, np.float64) @ self.basis

    def coords(self, points: np.ndarray) -> np.ndarray:
        """Integer coordinates k (int64) of lattice points p = k·B, by back-substitution."""
        p = np.asarray(points, np.float64)
        k = np.zeros(p.shape, np.float64)
        b = self.basis
        for i in range(self.dim - 1, -1, -1):
            known = k[..., i + 1:] @ b[i + 1:, i] if i + 1 < self.dim else 0.0
            k[..., i] = np.rint((p[..., i] - known) / b[i, i])
        return k.astype(np.int64)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Coordinates k of K_Λ(x) (int64)."""
        return self.coords(self.nearest(x))

    def cell_uniform(self, v: np.ndarray) -> np.ndarray:
        """Map v ~ Uniform[0, 1)^n to U ~ Uniform(P0), the Voronoi cell (Lemma 1's dither).

        w = v·B is uniform on the fundamental parallelepiped, a fundamental domain of Λ;
        w − K_Λ(w) lands uniformly in P0. v is first cut to :data:`DITHER_BITS` bits so
        that the result is exact (module docstring).
        """
        v = np.floor(np.asarray(v, np.float64) * _DITHER_SCALE) / _DITHER_SCALE
        w = v @ self.basis
        return w - self.nearest(w)


# --------------------------------------------------------------------------- decoders


def decode_dn(y: np.ndarray) -> np.ndarray:
    """Nearest point of D_n = {z ∈ Z^n : Σz even} to each row of ``y`` (Conway & Sloane, ch. 20).

    Round every coordinate; if the sum is odd, round the coordinate with the largest
    rounding error (the first such) the other way. Exact for dyadic inputs.
    """
    f = np.rint(y)
    e = y - f
    odd = np.remainder(f.sum(-1), 2.0) != 0
    if np.any(odd):
        i = np.argmax(np.abs(e), axis=-1)[..., None]
        ei = np.take_along_axis(e, i, -1)
        fix = np.where(odd[..., None], np.where(ei >= 0, 1.0, -1.0), 0.0)
        np.put_along_axis(f, i, np.take_along_axis(f, i, -1) + fix, -1)
    return f


def exact_score(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """‖x − p‖² − ‖x‖² = Σ p·(p − 2x), exact for the dyadic inputs of the dither (module docstring)."""
    return (p * (p - 2.0 * x)).sum(-1)


class CosetDecoder:
    """Nearest point of Λ = ∪_{base, c ∈ C} (base + t·c + m·D_n), C a binary linear code (Construction A/B).

    E8 = D8 ∪ (D8 + ½) (C = {0}, two bases), the Barnes–Wall lattice (C = RM(1,4), t = 1,
    m = 2) and the Leech lattice (C = Golay, two bases, t = 2, m = 4) are all of this form.

    :meth:`brute_force` decodes every coset with :func:`decode_dn` and keeps the nearest
    (the reference). :meth:`__call__` gets the same answer fast: with per-coordinate
    rounding costs, the D_n-rounding cost of every coset is one matrix product, a lower
    bound on its true cost (the parity fix only adds), and the parity of every coset's
    rounding is a table lookup (C is linear). Only cosets whose bound is within a margin
    of the best parity-even coset can win; those few are decoded exactly and compared by
    :func:`exact_score` (ties: the first coset). Both give identical results (tested).
    """

    #: Float error allowed on the bounds (their true values are sums of ≤ 24 squares ≤ ¼;
    #: float32 products err by < 1e-5).
    _MARGIN = 1e-4
    #: Rows per block of the fast decoder (bounds memory: rows × cosets floats).
    _ROWS = 1024

    def __init__(self, generator: np.ndarray, bases: np.ndarray, t: float, m: float):
        from latcomp.lattices.codes import span

        self.generator = np.asarray(generator, np.int64).reshape(-1, np.shape(bases)[-1])
        if len(self.generator) > 13:  # the parity table holds 4^k bytes
            raise ValueError("the coset decoder takes binary codes of dimension at most 13")
        self.code = span(self.generator).astype(np.float64)   # (M, n) 0/1, in coefficient order
        self.bases = np.asarray(bases, np.float64)             # (H, n)
        self.t, self.m = float(t), float(m)
        h, mm = len(self.bases), len(self.code)
        self.offsets = (self.bases[:, None, :] + self.t * self.code[None]).reshape(h * mm, -1)

    @cached_property
    def _parity_table(self) -> np.ndarray:
        """table[s, i] = ⟨s, i⟩ mod 2 over the bits of s and i (k-bit coefficient vectors): the parity of s & i."""
        idx = np.arange(1 << len(self.generator), dtype=np.uint16)
        parity = np.zeros(len(idx), np.uint8)   # parity[j]: the number of set bits of j, mod 2
        for b in range(len(self.generator)):
            parity ^= ((idx >> b) & 1).astype(np.uint8)
        return parity[idx[:, None] & idx[None, :]]

    def _coset_points(self, x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return offsets + self.m * decode_dn((x - offsets) / self.m)

    def brute_force(self, x: np.ndarray) -> np.ndarray:
        """Reference: decode all cosets, keep the nearest (first on exact ties)."""
        x = np.asarray(x, np.float64)
        flat = x.reshape(-1, x.shape[-1])
        out = np.empty_like(flat)
        for start in range(0, len(flat), 16):
            rows = flat[start:start + 16, None, :]
            p = self._coset_points(rows, self.offsets[None])
            best = np.argmin(exact_score(p, rows), axis=1)
            out[start:start + 16] = p[np.arange(len(p)), best]
        return out.reshape(x.shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        flat = x.reshape(-1, x.shape[-1])
        if len(self.offsets) <= 4:
            return self.brute_force(x)
        out = np.empty_like(flat)
        for start in range(0, len(flat), self._ROWS):
            out[start:start + self._ROWS] = self._fast(flat[start:start + self._ROWS])
        return out.reshape(x.shape)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        k = len(self.generator)
        weights = (1 << np.arange(k - 1, -1, -1))  # coefficient index: first generator row is the top bit
        bounds, parities = [], []
        for base in self.bases:
            cost, par = [], []
            for bit in (0.0, 1.0):
                y = (x - base - self.t * bit) / self.m
                f = np.rint(y)
                cost.append((y - f) ** 2)
                par.append(np.remainder(f, 2.0).astype(np.int64))
            delta = (cost[1] - cost[0]).astype(np.float32)
            bounds.append(cost[0].sum(-1, keepdims=True).astype(np.float32) + delta @ self.code.T.astype(np.float32))
            flips = (par[1] ^ par[0]) @ self.generator.T % 2           # ⟨flips, c⟩ = ⟨G·flips, coeffs⟩
            parities.append(self._parity_table[flips @ weights] ^ (par[0].sum(-1, keepdims=True) % 2).astype(np.uint8))
        bound, parity = np.concatenate(bounds, 1), np.concatenate(parities, 1)
        # the best even coset's bound (odd cosets pushed past every bound; ×0 and +0 leave even ones exact), and
        # the cosets within the margin of it, row-major (flatnonzero: many times faster than a 2-D nonzero)
        best_even = (bound + parity * np.float32(_ODD_PENALTY)).min(axis=1)
        rows, cols = np.divmod(np.flatnonzero(bound <= best_even[:, None] + np.float32(self._MARGIN)), bound.shape[1])
        p = self._coset_points(x[rows], self.offsets[cols])
        score = exact_score(p, x[rows])
        # per row: the minimal exact score, ties to the first coset (rows and cols are sorted)
        order = np.lexsort((cols, score, rows))
        first = np.ones(len(order), bool)
        first[1:] = rows[order][1:] != rows[order][:-1]
        chosen = order[first]
        out = np.empty_like(x)
        out[rows[chosen]] = p[chosen]
        return out


def triangular_basis(generators: list[list[Fraction | int]]) -> list[list[Fraction]]:
    """A lower-triangular basis (rows, positive diagonal, size-reduced) of the lattice spanned by ``generators``.

    Exact rational arithmetic: for each column from the last to the first, a gcd
    reduction leaves one generator with a non-zero entry there; it becomes that
    column's basis row. Off-diagonal entries are then reduced into [−d/2, d/2] (d the
    diagonal entry of their column; Python's round sends halves to even).
    """
    n = len(generators[0])
    pool = [[Fraction(v) for v in g] for g in generators]
    rows: list[list[Fraction] | None] = [None] * n
    for col in range(n - 1, -1, -1):
        while True:
            live = [r for r in pool if r[col] != 0]
            if len(live) <= 1:
                break
            pivot = min(live, key=lambda r: abs(r[col]))
            for r in live:
                if r is not pivot:
                    q = r[col] // pivot[col]
                    for i in range(n):
                        r[i] -= q * pivot[i]
        if not live:
            raise ValueError("generators do not span a full-rank lattice")
        row = live[0]
        pool = [r for r in pool if r is not row and any(r)]
        rows[col] = [-v for v in row] if row[col] < 0 else row
    basis = [r for r in rows if r is not None]
    for j in range(n):
        for i in range(j - 1, -1, -1):
            q = round(basis[j][i] / basis[i][i])
            if q:
                basis[j] = [a - q * b for a, b in zip(basis[j], basis[i], strict=True)]
    return basis


def as_float_basis(rows: list[list[Fraction]]) -> np.ndarray:
    return np.array([[float(v) for v in r] for r in rows], np.float64)
