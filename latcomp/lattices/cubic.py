"""The integer lattice Z (one dimension): the rectangular lattice of Section 4, block by block."""

from __future__ import annotations

import numpy as np

from latcomp.lattices.base import Lattice


class Cubic(Lattice):
    """Z: basis [1], K(x) = rint(x), G = 1/12.

    Its dither keeps the closed form U = v − ½ on all 53 bits of v (the recipe of
    format version 1), so files of the rectangular lattice VAE decode unchanged.
    """

    name = "z"
    known_nsm = 1.0 / 12.0

    @property
    def basis(self) -> np.ndarray:
        return np.ones((1, 1))

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return np.rint(x)

    def coords(self, points: np.ndarray) -> np.ndarray:
        return np.rint(points).astype(np.int64)

    def point(self, k: np.ndarray) -> np.ndarray:
        return np.asarray(k, np.float64)

    def cell_uniform(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v, np.float64) - 0.5
