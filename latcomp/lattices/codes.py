"""The binary codes behind Λ16 and Λ24: first-order Reed–Muller RM(1,4) and the extended Golay code."""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np


def span(generator: np.ndarray) -> np.ndarray:
    """All 2^k codewords (rows, uint8) of the binary code spanned by ``generator`` (k, n), in a fixed order."""
    g = np.asarray(generator, np.int64) % 2
    coeffs = np.array(list(product((0, 1), repeat=len(g))), np.int64)
    return ((coeffs @ g) % 2).astype(np.uint8)


@lru_cache(maxsize=None)
def reed_muller_1_4() -> np.ndarray:
    """RM(1,4): the [16, 5, 8] code of the all-ones word and the four coordinate functions (32 words)."""
    i = np.arange(16)
    gen = np.vstack([np.ones(16, np.int64)] + [(i >> b) & 1 for b in range(4)])
    return span(gen)


@lru_cache(maxsize=None)
def golay_generator() -> np.ndarray:
    """A generator (12, 24) of the extended Golay code: the [23, 12, 7] quadratic-residue code plus a parity bit.

    Rows are the 12 cyclic shifts of the idempotent-free generator polynomial
    g(x) = Π (x − α^r) over the quadratic residues r mod 23, written out below.
    """
    g = np.array([1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1], np.int64)  # x^11 + x^9 + x^7 + x^6 + x^5 + x + 1
    rows = []
    for s in range(12):
        r = np.zeros(23, np.int64)
        r[s:s + 12] = g
        rows.append(np.append(r, r.sum() % 2))
    return np.array(rows)


@lru_cache(maxsize=None)
def golay_code() -> np.ndarray:
    """The 4096 codewords (uint8, (4096, 24)) of the extended binary Golay code C24."""
    return span(golay_generator())
