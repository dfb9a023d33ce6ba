"""Lattices Λ(B) = {B·i : i ∈ Z^m} (Section 3.1).

A lattice knows its nearest-point quantizer K_Λ (Eq. 4), the integer coordinates
of a lattice point, how to map uniforms on the unit cube to a dither uniform over
its Voronoi cell P0 (the U of the Crypto-Lemma, Lemma 1), and the cell's volume
V_Λ, second moment σ²_Λ and normalized second moment G(Λ) (Section 3.3.1).

The methods work on numpy arrays and on torch tensors alike (only arithmetic and
``.round()`` are used), so the same object serves training (torch, with a
learnable Δ) and the codec (numpy, no torch import). Vectors are along the last
axis. Further lattices (A2, D4, E8, Leech) subclass :class:`Lattice` and
implement :meth:`coords`, :meth:`point` and the cell moments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

Array = Any  # numpy.ndarray or torch.Tensor


class Lattice(ABC):
    """An m-dimensional lattice with generator matrix B (points B·k, k ∈ Z^m)."""

    #: Short name stored in model configs and container headers.
    kind: str = "abstract"

    @property
    @abstractmethod
    def dim(self) -> int:
        """The dimension m."""

    @abstractmethod
    def coords(self, x: Array) -> Array:
        """Integer coordinates k of the nearest lattice point K_Λ(x) = B·k (Eq. 4)."""

    @abstractmethod
    def point(self, k: Array) -> Array:
        """The lattice point B·k for integer coordinates k."""

    @abstractmethod
    def volume(self) -> Array:
        """Cell volume V_Λ = |det B|."""

    @abstractmethod
    def second_moment(self) -> Array:
        """σ²_Λ = (1/V)(1/m)∫_{P0} ||u||² du (Section 3.3.1)."""

    def nearest(self, x: Array) -> Array:
        """The quantizer K_Λ(x) = argmin_{p∈Λ} ||x − p|| (Eq. 4)."""
        return self.point(self.coords(x))

    def cell_uniform(self, v: Array) -> Array:
        """Map v ~ Uniform[0,1)^m to U ~ Uniform(P0).

        B·v is uniform over the fundamental parallelepiped, a fundamental domain of
        Λ; reducing it modulo Λ (w − K_Λ(w)) lands uniformly in the Voronoi cell P0.
        """
        w = self.point(v)
        return w - self.nearest(w)

    def nsm(self) -> Array:
        """Normalized second moment G(Λ) = σ²_Λ / V_Λ^{2/m} (Section 3.3.1)."""
        return self.second_moment() / self.volume() ** (2.0 / self.dim)


class RectangularLattice(Lattice):
    """The rectangular lattice of Section 4: diagonal basis diag(Δ_1, …, Δ_m).

    ``delta`` may be a numpy array or a (learnable) torch tensor of shape (m,).
    Its Voronoi cell is the box ∏(−Δ_i/2, Δ_i/2]; G = mean(Δ²)/(12·(∏Δ)^{2/m}),
    which is 1/12 when all Δ_i are equal.
    """

    kind = "rectangular"

    def __init__(self, delta: Array):
        self.delta = delta

    @property
    def dim(self) -> int:
        return int(self.delta.shape[-1])

    def coords(self, x: Array) -> Array:
        return (x / self.delta).round()

    def point(self, k: Array) -> Array:
        return k * self.delta

    def volume(self) -> Array:
        return self.delta.prod()

    def second_moment(self) -> Array:
        return (self.delta**2).mean() / 12.0

    def cell_uniform(self, v: Array) -> Array:
        """Closed form of :meth:`Lattice.cell_uniform` for a box: Δ·(v − 1/2)."""
        return (v - 0.5) * self.delta
