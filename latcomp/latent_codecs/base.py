"""The latent-codec interface: one object for training (torch) and for coding (numpy).

As CompressAI's entropy models (``forward`` for training, ``compress`` / ``decompress`` for
coding) and tensorflow-compression's universal entropy models (one model on both sides), a
:class:`LatentCodec` holds a dithered lattice Λ = s_1·Λ_1 ⊕ … (a
:class:`~latcomp.lattices.ProductLattice` with one scale per block, ``delta``) and the code of
its points under a Laplace prior. Its implementations differ in where the prior comes from:

* :class:`~latcomp.latent_codecs.LatticeLatentCodec`: a factorized prior of its own (one scale
  b_i per coordinate, a model parameter); ``prior`` is always None;
* :class:`~latcomp.latent_codecs.ConditionalLatticeCodec`: a prior per row (position), given to
  every call as a :class:`~latcomp.entropy.conditional_code.LaplaceRows` (scales and means from
  a hyperprior or a context model).

The contract (``prior`` as above; torch or numpy where marked):

* training (torch or numpy): :meth:`dither` (U = s·U₀(v), reparametrized), :meth:`forward`
  (x, v, prior) → (η = x − U, rate in nats per row), :meth:`rate_nats` (η, prior), and the
  box-prior density ``log_prior``;
* coding (numpy): :meth:`seeded_dither`, :meth:`quantize` (x, u) → k, :meth:`reconstruct`
  (k, u) → Z − U, ``push`` (coder, k, u, prior) and ``pop`` (coder, u, prior) → k on a
  constriction ANS stack shared with the rest of the file, :meth:`compress` (quantize + push),
  :meth:`decompress` (pop + reconstruct), ``ideal_bits`` (k, u, prior) and
  ``min_bits_per_item`` (a lower bound for plausibility checks).

By Theorem 1 the mean training rate at X − U equals the mean code length of the real point
(tests/test_latent_codec.py, tests/test_conditional_code.py).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.entropy.laplace import is_torch
from latcomp.entropy.lattice_code import DitherRows, SequentialCode
from latcomp.lattices.dither import seeded_uniforms
from latcomp.lattices.product import ProductLattice
from latcomp.steps import spans

Array = Any  # numpy.ndarray or torch.Tensor

#: Rows per step of the coding-side dither and quantizer: their temporaries (several copies of a
#: step for a lattice's nearest-point search) stay a few MiB whatever the number of rows.
ROWS_PER_STEP = 1 << 12


def like(values: np.ndarray, ref: Array, index: bool = False) -> Array:
    """``values`` as the array type of ``ref`` (and its dtype, unless they are ``index`` integers)."""
    if is_torch(ref):
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(values))
        return tensor if index else tensor.to(ref.dtype)
    return values


class LatentCodec(ABC):
    """A dithered lattice latent and the code of its points (module docstring).

    ``delta``: one scale per block of ``lattice`` (numpy or torch, (blocks,)). The numpy entropy
    model :attr:`code` is built on first use from float64 copies of the parameters.
    """

    #: The entropy model P(Ẑ|U) of the lattice points (numpy; a cached property of each implementation).
    code: SequentialCode

    def __init__(self, lattice: ProductLattice, delta: Array):
        self.lattice, self.delta = lattice, delta

    @property
    def dim(self) -> int:
        return self.lattice.dim

    # ----------------------------------------------------------- both sides (numpy or torch)

    @property
    def scale(self) -> Array:
        """s_i: the scale of each coordinate's block."""
        return self.delta[like(self.lattice.block_of, self.delta, index=True)]

    @property
    def width(self) -> Array:
        """w_i = s_i·d_i: the box widths of the sequential code."""
        return self.scale * like(self.lattice.steps, self.delta)

    def log_volume(self) -> Array:
        """log V of the scaled cell, Σ_b log V_b."""
        return self.block_log_volumes().sum()

    def block_log_volumes(self) -> Array:
        """log V_b = n_b·log s_b + log V(Λ_b) of every block's scaled cell, (blocks,)."""
        sizes = np.array([blk.dim for blk in self.lattice.blocks], np.float64)
        unit = np.array([math.log(blk.volume) for blk in self.lattice.blocks])
        log_delta = self.delta.log() if is_torch(self.delta) else np.log(self.delta)
        return like(sizes, self.delta) * log_delta + like(unit, self.delta)

    def in_cell(self, e: np.ndarray) -> np.ndarray:
        """Whether each block of ``e`` (..., dim) lies in its scaled Voronoi cell (K_Λ(e) = 0), (..., blocks)."""
        k = self.lattice.quantize(np.asarray(e, np.float64) / np.asarray(self.scale, np.float64))
        zero = k == 0
        return np.logical_and.reduceat(zero, self.lattice.starts, axis=-1)

    def dither(self, v: Array) -> Array:
        """U = s·U₀ with U₀ = the unit cell's dither of uniforms ``v`` (..., dim) (Lemma 1).

        ``v`` may be a torch tensor (training; U then carries gradients to the scales).
        """
        v_np = v.detach().cpu().numpy() if is_torch(v) else v
        return self.scale * like(self.lattice.cell_uniform(v_np), self.delta)

    @abstractmethod
    def rate_nats(self, eta: Array, prior: LaplaceRows | None = None) -> Array:
        """Σ_i −log P(box_i) at η (..., dim): the training rate and the point's code length (nats)."""

    def forward(self, x: Array, v: Array, prior: LaplaceRows | None = None) -> tuple[Array, Array]:
        """Training (Eq. 15): η = x − U with U = :meth:`dither` (v), and the rate of η in nats per row.

        η is what the synthesis sees (it has the law of Z − U, Crypto-Lemma) and the rate's mean is the
        mean code length of the real point (Theorem 1).
        """
        eta = x - self.dither(v)
        return eta, self.rate_nats(eta, prior)

    # ----------------------------------------------------------- coding side (numpy)

    def seeded_dither(self, seed: int, count: int, start: int = 0) -> np.ndarray:
        """``count`` dithers (float64 (count, dim)) from the 64-bit ``seed``: the shared randomness of a file.

        ``start`` gives rows ``start … start + count − 1`` of the file's dithers (those of its
        images from ``start`` on), so they can be computed a few rows at a time (as here, in
        steps of :data:`ROWS_PER_STEP`).
        """
        u = np.empty((count, self.dim))
        for a, b in spans(count, ROWS_PER_STEP):
            u[a:b] = self.dither(seeded_uniforms(seed, (b - a, self.dim), (start + a) * self.dim))
        return u

    def quantize(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Integer coordinates k of Z = K_Λ(x + u) (int64 (rows, dim), clamped to what a file can hold),
        in steps of :data:`ROWS_PER_STEP` rows."""
        x = np.asarray(x, np.float64)
        limit = self.code.max_coord.astype(np.float64)
        k = np.empty(x.shape, np.int64)
        for a, b in spans(len(x), ROWS_PER_STEP):
            y = np.clip(np.nan_to_num((x[a:b] + u[a:b]) / self.code.scale, nan=0.0), -limit, limit)
            k[a:b] = self.code.clamp(self.lattice.quantize(y))
        return k

    def reconstruct(self, k: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Z − U = s·(k·B) − u, the decoder network's input (float64, exact recipe), in steps of
        :data:`ROWS_PER_STEP` rows."""
        w = np.empty(np.shape(u))
        for a, b in spans(len(w), ROWS_PER_STEP):
            w[a:b] = self.code.scale * self.lattice.point(k[a:b]) - u[a:b]
        return w

    @abstractmethod
    def push(self, coder: Any, k: np.ndarray, u: DitherRows, prior: LaplaceRows | None = None) -> None:
        """Push coordinates ``k`` (N, dim) given dithers ``u`` onto the ANS stack ``coder``."""

    @abstractmethod
    def pop(self, coder: Any, u: DitherRows, prior: LaplaceRows | None = None) -> np.ndarray:
        """Pop the coordinates k (N, dim) int64 of ``len(u)`` rows from ``coder`` (FormatError if invalid)."""

    @abstractmethod
    def ideal_bits(self, k: np.ndarray, u: np.ndarray, prior: LaplaceRows | None = None) -> float:
        """Σ −log2 P(Ẑ|U): the ideal length of the code of ``k``."""

    def min_bits_per_item(self) -> float:
        """A lower bound on the coded bits of one row, whatever its point, dither (and prior)."""
        return self.code.min_bits_per_item()

    def compress(self, coder: Any, x: np.ndarray, u: np.ndarray, prior: LaplaceRows | None = None) -> np.ndarray:
        """Quantize ``x`` with dithers ``u``, push the point onto ``coder``; returns its coordinates k."""
        k = self.quantize(x, u)
        self.push(coder, k, u, prior)
        return k

    def decompress(self, coder: Any, u: DitherRows, prior: LaplaceRows | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Pop the coordinates k of ``len(u)`` rows; returns k and Z − U, the synthesis input."""
        k = self.pop(coder, u, prior)
        return k, self.reconstruct(k, np.asarray(u[0:len(u)], np.float64))
