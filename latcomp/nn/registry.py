"""The torch modules of the model families by name (the name stored in a model's config.json).

Read from the family specs (:mod:`latcomp.families`): a family names its torch module there.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from latcomp.families import families

MODELS: dict[str, type[nn.Module]] = {name: spec.torch_module() for name, spec in families().items()}


def build_model(architecture: str, **hparams: Any) -> nn.Module:
    """Instantiate a registered architecture by name with its hyper-parameters."""
    if architecture not in MODELS:
        raise ValueError(f"unknown model architecture {architecture!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[architecture](**hparams)
