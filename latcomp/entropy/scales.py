"""The fixed table of Laplace scales of conditional priors (hyperprior, text): b_j = 2^((j − OFFSET)/STEPS).

A conditional prior does not send its scales: it sends nothing and both sides compute an index j
per coordinate (from side information or context, in exact arithmetic), then read b_j from this
table. The table is computed with :mod:`decimal` (correctly rounded, the same on every machine)
and rounded once to float64, so encoder and decoder read bit-identical scales.

A continuous log-scale t (what a network predicts) maps to the index ⌊t + ½⌋ clipped to the
table (:func:`scale_index`); training uses b = :func:`straight_through_scale` (t): the table scale
of that index, the scale the coder will use, with the gradient of the continuous 2^((t − OFFSET)/STEPS).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any

import numpy as np

from latcomp.entropy.laplace import is_torch

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


def scale_index(t: Any) -> Any:
    """j = clip(⌊t + ½⌋, 0, SIZE − 1): the table index of a continuous log-scale index t (numpy or torch).

    Rounding is to the nearest integer, halves up (exact for the fixed-point t of an integer hyper-synthesis,
    (n + 2^(F−1)) >> F for t = n/2^F; ``t + 0.5`` in t's precision, then ``floor``). Returns int64 of t's
    shape. A NaN has no index (ValueError); ±inf go to the table's ends.
    """
    if is_torch(t):
        import torch

        if torch.isnan(t).any():
            raise ValueError("a log-scale index is NaN")
        return torch.clamp(torch.floor(t.detach() + 0.5), 0, SIZE - 1).to(torch.int64)
    t = np.asarray(t, np.float64)
    if np.isnan(t).any():
        raise ValueError("a log-scale index is NaN")
    return np.clip(np.floor(t + 0.5), 0, SIZE - 1).astype(np.int64)


def table_scale(index: Any) -> Any:
    """b_j of table indices j (numpy int array → float64; a torch index tensor → a float64 tensor)."""
    if is_torch(index):
        import torch

        return torch.tensor(SCALE_TABLE)[index.cpu()].to(index.device)
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise ValueError(f"scale indices must be integers, got {index.dtype}")
    if index.size and (index.min() < 0 or index.max() >= SIZE):
        raise ValueError(f"scale indices must lie in 0 … {SIZE - 1}")
    return SCALE_TABLE[index]


def straight_through_scale(t: Any) -> Any:
    """Training's Laplace scale of a continuous log-scale index t (torch): the value of b_{scale_index(t)}, the
    table scale the coder will use, with the gradient of 2^((t − OFFSET)/STEPS) (straight through the rounding
    and the clipping), in t's dtype."""
    return _straight_through().apply(t)


@lru_cache(maxsize=1)
def _straight_through() -> Any:
    import torch

    class TableScale(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(t)
            return table_scale(scale_index(t)).to(t.dtype)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            (t,) = ctx.saved_tensors
            return grad * torch.exp2((t - OFFSET) / STEPS) * (math.log(2.0) / STEPS)

    return TableScale
