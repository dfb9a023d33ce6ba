"""The hexagonal lattice A2, for 2-D tests and pictures (Conway & Sloane, ch. 4 §6)."""

from __future__ import annotations

import math

import numpy as np

from latcomp.lattices.base import Lattice

_S = math.sqrt(3.0)
_H = _S / 2.0  # exact halving


class Hexagonal(Lattice):
    """A2 with basis (1, 0), (½, √3/2): the union of R = Z × √3Z and R + (½, √3/2).

    Points are written as k1·(√3/2) with k1 an integer, as k·B writes them (so
    coords/point round-trip bit for bit). Each coset is decoded by rounding, the nearer of
    the two candidates wins (ties: R).
    Only element-wise IEEE operations in a fixed order, so the result is the same on
    every machine although √3 is irrational. G = 5/(36√3) ≈ 0.0801875.
    """

    name = "a2"
    known_nsm = 5.0 / (36.0 * math.sqrt(3.0))

    @property
    def basis(self) -> np.ndarray:
        return np.array([[1.0, 0.0], [0.5, _H]])

    def nearest(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        x0, x1 = x[..., 0], x[..., 1]
        a = np.stack([np.rint(x0), 2.0 * np.rint(x1 / _S) * _H], -1)
        b = np.stack([np.rint(x0 - 0.5) + 0.5, (2.0 * np.rint((x1 - _H) / _S) + 1.0) * _H], -1)
        da = (x0 - a[..., 0]) ** 2 + (x1 - a[..., 1]) ** 2
        db = (x0 - b[..., 0]) ** 2 + (x1 - b[..., 1]) ** 2
        return np.where((db < da)[..., None], b, a)

    def coords(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64)
        k1 = np.rint(p[..., 1] / _H)
        return np.stack([np.rint(p[..., 0] - 0.5 * k1), k1], -1).astype(np.int64)
