"""What the straight-through families (MNIST ``st-*``, text ``text-st-*``) share: their quantizers'
hyper-parameters, tensor shapes and latent check (:mod:`latcomp.nn.quantizers`); torch-free.

A config without ``commitment`` or ``ema`` (the MNIST models written before they existed) means 0:
the paper's version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from latcomp.families import HParam, Shapes

HPARAMS = (HParam("levels", "int", high=1 << 16),                                   # M, words per quantizer
           HParam("commitment", "nonnegative", required=False, default=0.0),         # β of β·‖x − sg(q)‖²
           HParam("ema", "fraction", required=False, default=0.0))                  # γ of the EMA words; 0: none


def quantizer_tensors(hp: Mapping[str, Any], word_dim: int) -> Shapes:
    """The words, code logits and (with EMA) the averages of latent/k quantizers of k = ``word_dim``."""
    quantizers, levels = hp["latent"] // word_dim, hp["levels"]
    shapes: Shapes = {"codebook": (quantizers, levels, word_dim), "code_logits": (quantizers, levels)}
    if hp.get("ema", 0.0):
        shapes.update({"ema_count": (quantizers, levels), "ema_sum": (quantizers, levels, word_dim)})
    return shapes


def latent_check(name: str, word_dim: int) -> Callable[[Mapping[str, Any]], str | None]:
    """The check of family ``name``: its latent splits into k = ``word_dim`` dimensional quantizers."""
    def check(hp: Mapping[str, Any]) -> str | None:
        return f"latent of {name} must be a multiple of {word_dim}" if hp["latent"] % word_dim else None
    return check
