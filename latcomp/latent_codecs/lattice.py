"""The dithered lattice latent with a Laplace prior (Sections 3.2–3.3 and 4).

One object holds the lattice Λ = s_1·Λ_1 ⊕ … (a :class:`~latcomp.lattices.ProductLattice`
with one scale per block), the factorized Laplace prior X̂_i ~ Laplace(0, b_i) and the
sequential code of lattice points (:class:`~latcomp.entropy.lattice_code.LatticeCode`).
Its parameters may be torch tensors (training: gradients reach the scales and b through
the reparametrized dither U = s·U₀) or numpy arrays (coding, no torch).

With w_i = s_i·d_i the width of coordinate i's box (d_i the diagonal of the block's
triangular basis), every quantity is a sum over coordinates of the closed forms of
:mod:`latcomp.entropy.laplace`:

* **rate** (training, Eq. 15 / Theorem 1): −Σ log(F_{b_i}(η_i + w_i/2) − F_{b_i}(η_i − w_i/2))
  at η = X − U. The code length of the real point is the same function at η = Z − U,
  and by the Crypto-Lemma Z − U has the law of X − U: the training rate is the
  expected size of the file.
* **prior density** of W = Z − U for importance sampling: g(w) = Π_i f_{X̂−U_i}(w_i) with
  U_i uniform on the box of width w_i (``laplace_log_density``). g integrates to one, the
  two-part code "point, then data given Z − U" has length −log g(W) − log Q(D|W) + log V,
  and the proposal is uniform on the Voronoi cell (density 1/V): the −ELBO at λ = 1 is
  rate + distortion, as for the rectangular lattice.

For ``z`` blocks only (the paper's rectangular lattice) all of this is Section 4 as
written (with erratum 1).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from latcomp.entropy.laplace import laplace_log_density, laplace_log_mass
from latcomp.entropy.lattice_code import LatticeCode
from latcomp.lattices.dither import seeded_uniforms
from latcomp.lattices.product import ProductLattice
from latcomp.steps import spans

Array = Any  # numpy.ndarray or torch.Tensor

#: Rows per step of the coding-side dither and quantizer: their temporaries (several copies of a
#: step for a lattice's nearest-point search) stay a few MiB whatever the number of rows.
ROWS_PER_STEP = 1 << 12


def _is_torch(x: Array) -> bool:
    return type(x).__module__.startswith("torch")


def _like(values: np.ndarray, ref: Array, index: bool = False) -> Array:
    """``values`` as the array type of ``ref`` (and its dtype, unless they are ``index`` integers)."""
    if _is_torch(ref):
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(values))
        return tensor if index else tensor.to(ref.dtype)
    return values


class LatticeLatentCodec:
    """Lattice + Laplace prior + entropy model (module docstring).

    ``delta``: one scale per block (numpy or torch, (blocks,)); ``b``: one prior scale
    per coordinate ((dim,)). The entropy model (numpy only) is built on first use.
    """

    def __init__(self, lattice: ProductLattice, delta: Array, b: Array):
        self.lattice = lattice
        self.delta, self.b = delta, b

    @classmethod
    def from_spec(cls, spec: str, dim: int, delta: Array, b: Array) -> LatticeLatentCodec:
        return cls(ProductLattice(spec, dim), delta, b)

    @property
    def dim(self) -> int:
        return self.lattice.dim

    # ----------------------------------------------------------- both sides (numpy or torch)

    @property
    def scale(self) -> Array:
        """s_i: the scale of each coordinate's block."""
        return self.delta[_like(self.lattice.block_of, self.delta, index=True)]

    @property
    def width(self) -> Array:
        """w_i = s_i·d_i: the box widths of the sequential code."""
        return self.scale * _like(self.lattice.steps, self.delta)

    def log_volume(self) -> Array:
        """log V of the scaled cell, Σ_b log V_b."""
        return self.block_log_volumes().sum()

    def block_log_volumes(self) -> Array:
        """log V_b = n_b·log s_b + log V(Λ_b) of every block's scaled cell, (blocks,)."""
        sizes = np.array([blk.dim for blk in self.lattice.blocks], np.float64)
        unit = np.array([math.log(blk.volume) for blk in self.lattice.blocks])
        log_delta = self.delta.log() if _is_torch(self.delta) else np.log(self.delta)
        return _like(sizes, self.delta) * log_delta + _like(unit, self.delta)

    def in_cell(self, e: np.ndarray) -> np.ndarray:
        """Whether each block of ``e`` (..., dim) lies in its scaled Voronoi cell (K_Λ(e) = 0), (..., blocks)."""
        k = self.lattice.quantize(np.asarray(e, np.float64) / np.asarray(self.scale, np.float64))
        zero = k == 0
        return np.logical_and.reduceat(zero, self.lattice.starts, axis=-1)

    def dither(self, v: Array) -> Array:
        """U = s·U₀ with U₀ = the unit cell's dither of uniforms ``v`` (..., dim) (Lemma 1).

        ``v`` may be a torch tensor (training; U then carries gradients to the scales).
        """
        v_np = v.detach().cpu().numpy() if _is_torch(v) else v
        return self.scale * _like(self.lattice.cell_uniform(v_np), self.delta)

    def rate_nats(self, eta: Array) -> Array:
        """Σ_i −log P(box_i) at η (..., dim): the training rate and the point's code length (nats)."""
        return -laplace_log_mass(eta, self.width, self.b).sum(-1)

    def log_prior(self, w: Array) -> Array:
        """log g(w), the density of W = Z − U under the box prior (module docstring), summed."""
        return laplace_log_density(w, self.width, self.b).sum(-1)

    # ----------------------------------------------------------- coding side (numpy)

    @cached_property
    def code(self) -> LatticeCode:
        """The entropy model P(Ẑ|U) (numpy; built on first use from float64 copies of the parameters)."""
        return LatticeCode(self.lattice, np.asarray(self.delta, np.float64), np.asarray(self.b, np.float64))

    def seeded_dither(self, seed: int, count: int, start: int = 0) -> np.ndarray:
        """``count`` dithers (float64 (count, dim)) from the 64-bit ``seed``: the shared randomness of a file.

        ``start`` gives rows ``start … start + count − 1`` of the file's dithers (those of its
        images from ``start`` on), so they can be computed a few rows at a time (as here, in
        steps of :data:`ROWS_PER_STEP`).
        """
        u = np.empty((count, self.dim))
        for a, b in spans(count, ROWS_PER_STEP):
            u[a:b] = self.dither(seeded_uniforms(seed, (b - a, self.dim), (start + a) * self.dim))
        return u

    def quantize(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Integer coordinates k of Z = K_Λ(x + u) (int64 (rows, dim), clamped to what a file can hold),
        in steps of :data:`ROWS_PER_STEP` rows."""
        x = np.asarray(x, np.float64)
        limit = self.code.max_coord.astype(np.float64)
        k = np.empty(x.shape, np.int64)
        for a, b in spans(len(x), ROWS_PER_STEP):
            y = np.clip(np.nan_to_num((x[a:b] + u[a:b]) / self.code.scale, nan=0.0), -limit, limit)
            k[a:b] = self.code.clamp(self.lattice.quantize(y))
        return k

    def reconstruct(self, k: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Z − U = s·(k·B) − u, the decoder network's input (float64, exact recipe), in steps of
        :data:`ROWS_PER_STEP` rows."""
        w = np.empty(np.shape(u))
        for a, b in spans(len(w), ROWS_PER_STEP):
            w[a:b] = self.code.scale * self.lattice.point(k[a:b]) - u[a:b]
        return w

