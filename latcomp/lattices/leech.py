"""The Leech lattice Λ24, scaled by √8 to integer coordinates (Conway & Sloane, ch. 4 §11).

Λ24 = 2·L ∪ (2·L + a), a = (−3, 1, …, 1), L = C24 + 2·D24 (Construction B of the Golay
code C24): 8192 cosets of 4·D24, 2t + 4D24 and a + 2t + 4D24 for t in C24. The
nearest-point decoder is :class:`latcomp.lattices.base.CosetDecoder`: one matrix
product bounds the cost of all 8192 cosets, the few that can win are decoded exactly.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from latcomp.lattices.base import CosetDecoder, Lattice, as_float_basis, triangular_basis
from latcomp.lattices.codes import golay_code, golay_generator

#: The odd coset's offset (−3, 1^23).
ODD = np.array([-3.0] + [1.0] * 23)


def is_leech_point(x: np.ndarray) -> np.ndarray:
    """Membership by the defining congruences (independent of the decoder), for tests.

    Integer x with all coordinates ≡ m (mod 2); Σx ≡ 4m (mod 8); and the positions with
    x ≡ 2 (mod 4) (m = 0) or x ≡ 1 (mod 4) (m = 1) form a Golay codeword.
    """
    x = np.asarray(x)
    xi = np.rint(x).astype(np.int64)
    integral = np.all(xi == x, axis=-1)
    m = xi[..., :1] % 2
    same_parity = np.all(xi % 2 == m, axis=-1)
    total = (xi.sum(-1) - 4 * m[..., 0]) % 8 == 0
    word = np.where(m == 0, xi % 4 == 2, xi % 4 == 1).astype(np.uint8)
    codewords = {c.tobytes() for c in golay_code()}
    in_code = np.array([w.tobytes() in codewords for w in word.reshape(-1, 24)]).reshape(word.shape[:-1])
    return integral & same_parity & total & in_code


class Leech(Lattice):
    """Λ24 (√8-scaled: minimal norm 32, volume 8^12); G ≈ 0.06577."""

    name = "leech"
    known_nsm = 0.06577

    @cached_property
    def basis(self) -> np.ndarray:
        n = 24
        gens = [list(map(int, 2 * r)) for r in golay_generator()]
        gens += [[4 if i in (j, j + 1) else 0 for i in range(n)] for j in range(n - 1)]
        gens += [[4 if i == j else -4 if i == j + 1 else 0 for i in range(n)] for j in range(n - 1)]
        gens.append([int(v) for v in ODD])
        return as_float_basis(triangular_basis(gens))

    @cached_property
    def _decoder(self) -> CosetDecoder:
        return CosetDecoder(golay_generator(), np.array([np.zeros(24), ODD]), t=2.0, m=4.0)

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return self._decoder(x)
