"""The dithered lattice latent with a factorized Laplace prior (Sections 3.2–3.3 and 4).

One object holds the lattice Λ = s_1·Λ_1 ⊕ … (a :class:`~latcomp.lattices.ProductLattice`
with one scale per block), the factorized Laplace prior X̂_i ~ Laplace(0, b_i) and the
sequential code of lattice points (:class:`~latcomp.entropy.lattice_code.LatticeCode`); the
interface is :class:`~latcomp.latent_codecs.base.LatentCodec`'s, with no per-row prior.
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

from functools import cached_property
from typing import Any

import numpy as np

from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.entropy.laplace import laplace_log_density, laplace_log_mass
from latcomp.entropy.lattice_code import DitherRows, LatticeCode
from latcomp.latent_codecs.base import Array, LatentCodec
from latcomp.lattices.product import ProductLattice

__all__ = ["LatticeLatentCodec"]


def _static(prior: LaplaceRows | None) -> None:
    if prior is not None:
        raise ValueError("the factorized lattice latent has its own prior; it takes no per-row prior")


class LatticeLatentCodec(LatentCodec):
    """Lattice + factorized Laplace prior + entropy model (module docstring).

    ``delta``: one scale per block (numpy or torch, (blocks,)); ``b``: one prior scale
    per coordinate ((dim,)). The entropy model (numpy only) is built on first use.
    """

    def __init__(self, lattice: ProductLattice, delta: Array, b: Array):
        super().__init__(lattice, delta)
        self.b = b

    @classmethod
    def from_spec(cls, spec: str, dim: int, delta: Array, b: Array) -> LatticeLatentCodec:
        return cls(ProductLattice(spec, dim), delta, b)

    def rate_nats(self, eta: Array, prior: LaplaceRows | None = None) -> Array:
        """Σ_i −log P(box_i) at η (..., dim): the training rate and the point's code length (nats)."""
        _static(prior)
        return -laplace_log_mass(eta, self.width, self.b).sum(-1)

    def log_prior(self, w: Array) -> Array:
        """log g(w), the density of W = Z − U under the box prior (module docstring), summed."""
        return laplace_log_density(w, self.width, self.b).sum(-1)

    @cached_property
    def code(self) -> LatticeCode:
        """The entropy model P(Ẑ|U) (numpy; built on first use from float64 copies of the parameters)."""
        return LatticeCode(self.lattice, np.asarray(self.delta, np.float64), np.asarray(self.b, np.float64))

    def push(self, coder: Any, k: np.ndarray, u: DitherRows, prior: LaplaceRows | None = None) -> None:
        _static(prior)
        self.code.push(coder, k, u)

    def pop(self, coder: Any, u: DitherRows, prior: LaplaceRows | None = None) -> np.ndarray:
        _static(prior)
        return self.code.pop(coder, u)

    def ideal_bits(self, k: np.ndarray, u: np.ndarray, prior: LaplaceRows | None = None) -> float:
        _static(prior)
        return self.code.ideal_bits(k, u)
