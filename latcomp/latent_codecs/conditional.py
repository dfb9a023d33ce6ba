"""The dithered lattice latent under a conditional Laplace prior: scales and means per row (position).

The prior of row n is X̂_{n,i} ~ Laplace(μ_{n,i}, b_{n,i}), given to every call as a
:class:`~latcomp.entropy.conditional_code.LaplaceRows` by what predicts it (a hyperprior's
synthesis, a context model): in training as torch tensors (b from
:func:`~latcomp.entropy.scales.straight_through_scale` of a predicted log-scale index, so
training sees the table scale the coder will use), in coding as float64 arrays
(``LaplaceRows.from_indices`` of the indices computed in exact arithmetic). The lattice and
its scales ``delta`` are the model's, as for :class:`~latcomp.latent_codecs.LatticeLatentCodec`.

* **rate** (training, Theorem 1): −Σ_i log(F_{b}(η_i − μ_i + w_i/2) − F_{b}(η_i − μ_i − w_i/2))
  per row at η = X − U, with the row's b and μ: given the prior, its mean over the dither is
  the mean code length of the real point (:class:`~latcomp.entropy.conditional_code.ConditionalLatticeCode`,
  the same function at η = Z − U; tests/test_conditional_code.py checks both by Monte Carlo).
* **prior density** of W = Z − U: g(w) = Π_i f_{X̂−U_i}(w_i − μ_i), as for the factorized prior.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from latcomp.entropy.conditional_code import ConditionalLatticeCode, LaplaceRows
from latcomp.entropy.laplace import laplace_log_density, laplace_log_mass
from latcomp.entropy.lattice_code import DitherRows
from latcomp.latent_codecs.base import Array, LatentCodec


def _given(prior: LaplaceRows | None) -> LaplaceRows:
    if prior is None:
        raise ValueError("the conditional lattice latent needs the rows' prior (LaplaceRows)")
    return prior


class ConditionalLatticeCodec(LatentCodec):
    """Lattice + per-row Laplace priors + entropy model (module docstring).

    ``delta``: one scale per block (numpy or torch, (blocks,)); every call takes the rows' prior.
    """

    def rate_nats(self, eta: Array, prior: LaplaceRows | None = None) -> Array:
        """Σ_i −log P(box_i) at η (N, dim) under the rows' prior: the training rate per row (nats)."""
        prior = _given(prior)
        return -laplace_log_mass(prior.shifted(eta), self.width, prior.scale).sum(-1)

    def log_prior(self, w: Array, prior: LaplaceRows | None = None) -> Array:
        """log g(w) of W = Z − U under the rows' box prior, summed per row."""
        prior = _given(prior)
        return laplace_log_density(prior.shifted(w), self.width, prior.scale).sum(-1)

    @cached_property
    def code(self) -> ConditionalLatticeCode:
        """The entropy model P(Ẑ|U) (numpy; the lattice scales as float64 copies)."""
        return ConditionalLatticeCode(self.lattice, np.asarray(self.delta, np.float64))

    def push(self, coder: Any, k: np.ndarray, u: DitherRows, prior: LaplaceRows | None = None) -> None:
        self.code.push(coder, k, u, _given(prior))

    def pop(self, coder: Any, u: DitherRows, prior: LaplaceRows | None = None) -> np.ndarray:
        return self.code.pop(coder, u, _given(prior))

    def ideal_bits(self, k: np.ndarray, u: np.ndarray, prior: LaplaceRows | None = None) -> float:
        return self.code.ideal_bits(k, u, _given(prior))
