"""The Barnes–Wall lattice Λ16 = RM(1,4) + 2·D16 (Construction B; Conway & Sloane, ch. 4 §10)."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from latcomp.lattices.base import CosetDecoder, Lattice, as_float_basis, triangular_basis
from latcomp.lattices.codes import reed_muller_1_4


class BarnesWall(Lattice):
    """Λ16: x ∈ Z^16 with x mod 2 ∈ RM(1,4) and Σx ≡ 0 (mod 4) — the union of the 32 cosets c + 2·D16.

    Every codeword has weight 0, 8 or 16, so Σx ≡ 0 (mod 4) is exactly "x − c ∈ 2·D16".
    Minimal norm 8, volume 2^12, G ≈ 0.06829.
    """

    name = "bw16"
    known_nsm = 0.06829

    @cached_property
    def basis(self) -> np.ndarray:
        n = 16
        gens = [list(map(int, c)) for c in reed_muller_1_4()[[1, 2, 4, 8, 16]]]
        gens += [[2 if i in (j, j + 1) else 0 for i in range(n)] for j in range(n - 1)]
        gens += [[2 if i == j else -2 if i == j + 1 else 0 for i in range(n)] for j in range(n - 1)]
        return as_float_basis(triangular_basis(gens))

    @cached_property
    def _decoder(self) -> CosetDecoder:
        return CosetDecoder(reed_muller_1_4()[[1, 2, 4, 8, 16]], np.zeros((1, 16)), t=1.0, m=2.0)

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return self._decoder(x)
