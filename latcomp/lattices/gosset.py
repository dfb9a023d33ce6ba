"""The Gosset lattice E8 = D8 ∪ (D8 + ½) (Conway & Sloane, ch. 4 §8.1 and ch. 20 §3)."""

from __future__ import annotations

from fractions import Fraction
from functools import cached_property

import numpy as np

from latcomp.lattices.base import CosetDecoder, Lattice, as_float_basis, triangular_basis


class Gosset(Lattice):
    """E8: decode in D8 and in D8 + ½, keep the nearer. G = 0.0716821.

    Basis (lower-triangular, det 1, from :func:`triangular_basis`): 2·e_0, then e_j − e_0 for
    j = 1 … 6, then (½, …, ½); steps (2, 1, 1, 1, 1, 1, 1, ½).
    """

    name = "e8"
    known_nsm = 0.0716821

    @cached_property
    def basis(self) -> np.ndarray:
        gens = [[2] + [0] * 7] + [[0] * (j - 1) + [-1, 1] + [0] * (7 - j) for j in range(1, 7)]
        gens.append([0] * 6 + [-1, 1])
        gens.append([Fraction(1, 2)] * 8)
        return as_float_basis(triangular_basis(gens))

    @cached_property
    def _decoder(self) -> CosetDecoder:
        return CosetDecoder(np.zeros((0, 8)), np.array([np.zeros(8), np.full(8, 0.5)]), t=0.0, m=1.0)

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return self._decoder(x)
