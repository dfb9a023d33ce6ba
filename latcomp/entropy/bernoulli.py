"""The second part of the two-part code (Section 3.3): binary pixels under the decoder's Q(D | Z − U)."""

from __future__ import annotations

import constriction
import numpy as np

_model = constriction.stream.model


class BernoulliPixelModel:
    """Binary symbols with given probabilities of a 1 (constriction ``Bernoulli(perfect=False)``)."""

    def __init__(self) -> None:
        self._family = _model.Bernoulli(perfect=False)

    def push(self, coder: constriction.stream.stack.AnsCoder, bits: np.ndarray, p: np.ndarray) -> None:
        """Push 0/1 symbols ``bits`` (any shape) with P(1) = ``p`` (same shape) onto the stack."""
        coder.encode_reverse(np.asarray(bits).ravel().astype(np.int32), self._family,
                             np.ascontiguousarray(p, np.float64).ravel())

    def pop(self, coder: constriction.stream.stack.AnsCoder, p: np.ndarray) -> np.ndarray:
        """Pop 0/1 symbols (uint8, shape of ``p``) with P(1) = ``p``."""
        p = np.ascontiguousarray(p, np.float64)
        return coder.decode(self._family, p.ravel()).reshape(p.shape).astype(np.uint8)

    @staticmethod
    def ideal_bits(bits: np.ndarray, p: np.ndarray) -> float:
        """Σ −log2 Q(bits) — the ideal length of the pixel code given Z − U."""
        bits = np.asarray(bits).astype(bool)
        p = np.asarray(p, np.float64)
        return float(-(np.log2(np.where(bits, p, 1.0 - p))).sum())
