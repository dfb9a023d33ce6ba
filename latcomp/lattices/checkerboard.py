"""The checkerboard lattices D_n = {z ∈ Z^n : Σz even}; D4 is the densest 4-D lattice."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from latcomp.lattices.base import Lattice, as_float_basis, decode_dn, triangular_basis


class Checkerboard(Lattice):
    """D_n (n ≥ 2): nearest point by rounding and a parity fix (Conway & Sloane, ch. 20 §2)."""

    known_nsms = {4: 0.0766032}

    def __init__(self, n: int = 4):
        if n < 2:
            raise ValueError("D_n needs n >= 2")
        self.n = n
        self.name = f"d{n}"
        self.known_nsm = self.known_nsms.get(n, float("nan"))

    @cached_property
    def basis(self) -> np.ndarray:
        gens = [[1 if i in (j, j + 1) else 0 for i in range(self.n)] for j in range(self.n - 1)]
        gens += [[1 if i == j else -1 if i == j + 1 else 0 for i in range(self.n)] for j in range(self.n - 1)]
        return as_float_basis(triangular_basis(gens))

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return decode_dn(np.asarray(x, np.float64))
