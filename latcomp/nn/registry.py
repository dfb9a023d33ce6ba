"""Model architectures by name: the name stored in a model's config.json."""

from __future__ import annotations

from typing import Any

from torch import nn

from latcomp.nn.baselines import BASELINES
from latcomp.nn.hyperprior import PhotoHyperprior
from latcomp.nn.models import LatticeVAE
from latcomp.nn.photo import PhotoCodec

MODELS: dict[str, type[nn.Module]] = {cls.architecture: cls
                                      for cls in (LatticeVAE, PhotoCodec, PhotoHyperprior, *BASELINES)}


def build_model(architecture: str, **hparams: Any) -> nn.Module:
    """Instantiate a registered architecture by name with its hyper-parameters."""
    if architecture not in MODELS:
        raise ValueError(f"unknown model architecture {architecture!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[architecture](**hparams)
