"""The fixed table of Laplace scales of conditional priors (hyperprior, text): b_j = 2^((j − OFFSET)/STEPS).

A conditional prior does not send its scales: it sends nothing and both sides compute an index j
per coordinate (from side information or context, in exact arithmetic), then read b_j from this
table. The table is computed with :mod:`decimal` (correctly rounded, the same on every machine)
and rounded once to float64, so encoder and decoder read bit-identical scales.

A continuous log-scale t (what a network predicts) maps to the index round(t) clipped to the
table (:func:`scale_index`); training uses b = :func:`table_scale` of that index, the scale the
coder will use.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np

#: Table entries per octave of scale (a ratio of 2^(1/8) ≈ 1.09 between neighbours).
STEPS = 8
#: Index of b = 1.
OFFSET = 48
#: Number of entries: b from 2^-6 (j = 0) to 2^8 (j = SIZE − 1).
SIZE = 113


def _table() -> np.ndarray:
    with localcontext() as ctx:
        ctx.prec = 40
        return np.array([float(Decimal(2) ** (Decimal(j - OFFSET) / STEPS)) for j in range(SIZE)], np.float64)


#: b_j for j = 0 … SIZE − 1 (float64, read-only).
SCALE_TABLE = _table()
SCALE_TABLE.setflags(write=False)
