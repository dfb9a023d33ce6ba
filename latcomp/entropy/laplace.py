"""The Laplacian prior of Section 4 and the density of X̂ − U.

Per dimension, X̂ ~ Laplace(0, b) and U ~ Uniform(−Δ/2, Δ/2) independent. Then
(erratum 1 in docs/errata.md)

    f_{X̂−U}(η) = (F_b(η + Δ/2) − F_b(η − Δ/2)) / Δ,

with F_b the Laplace CDF. The paper's displayed two-case formula is Δ·f_{X̂−U}(η),
the probability mass of a cell of width Δ; it is also P(Ẑ = z | U = u) with
η = z − u (Theorem 1, Eq. 6), and Eq. 15's rate term is −log of it.

All functions accept numpy arrays or torch tensors (the codec must not import
torch) and are evaluated in log space so that values and gradients stay finite
for |η|/b up to 1e3 and Δ/b from 1e-4 to 1e3 in float32 and float64.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor

_LOG_HALF = math.log(0.5)


def is_torch(x: Array) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch")


def _namespace(x: Array) -> ModuleType:
    """torch for tensors, numpy otherwise (torch is imported only if already in use)."""
    if is_torch(x):
        import torch

        return torch
    return np


def laplace_log_mass(eta: Array, delta: Array, b: Array) -> Array:
    """log(Δ·f_{X̂−U}(η)) = log P(η − Δ/2 ≤ X̂ < η + Δ/2) for X̂ ~ Laplace(0, b).

    With a = |η|/b and h = Δ/(2b):
      a ≥ h:  log ½ − (a − h) + log(1 − e^{−2h})
      a < h:  log ½ + log((1 − e^{−(h−a)}) + (1 − e^{−(h+a)}))
    Each branch is written with expm1 (no cancellation) and evaluated on inputs
    clamped to its own domain, so the branch not taken cannot inject inf/NaN
    into gradients.
    """
    xp = _namespace(eta)
    a = xp.abs(eta) / b
    h = delta / (2.0 * b)
    outer = _LOG_HALF - xp.maximum(a - h, 0.0 * a) + xp.log(-xp.expm1(-2.0 * h))
    a_in = xp.minimum(a, h)
    inner = _LOG_HALF + xp.log(-xp.expm1(a_in - h) - xp.expm1(-(h + a_in)))
    return xp.where(a >= h, outer, inner)


def laplace_log_density(eta: Array, delta: Array, b: Array) -> Array:
    """log f_{X̂−U}(η), the density of X̂ − U (Section 4, corrected by erratum 1)."""
    xp = _namespace(eta)
    return laplace_log_mass(eta, delta, b) - xp.log(delta + 0.0 * eta)


def rate_nats(eta: Array, delta: Array, b: Array) -> Array:
    """Per-dimension Theorem-1 rate log f_U(U)/f_{X̂−U}(η) = −log(Δ f_{X̂−U}(η)) (Eq. 7, 15).

    For the rectangular lattice f_U = 1/Δ, so the rate is minus the log mass. By
    Theorem 1 its expectation over the dither equals E[−log P(Ẑ|U)], the ideal
    length of the real code for the quantized point.
    """
    return -laplace_log_mass(eta, delta, b)
