"""Network building blocks of the paper's MNIST model (Section 4)."""

from __future__ import annotations

import torch
from torch import nn


class GatedLinear(nn.Module):
    """Gated linear layer h(x)·σ(g(x)): two affine maps, the only nonlinearity is the gate."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.h = nn.Linear(in_features, out_features)
        self.g = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


def gated_mlp(sizes: list[int]) -> nn.Sequential:
    """Gated layers between consecutive sizes, then a plain linear layer (Section 4).

    ``gated_mlp([784, 300, 300, 40])`` is the paper's encoder e_c; the decoder is
    ``gated_mlp([40, 300, 300, 784])`` whose output are the Bernoulli logits
    (the sigmoid of the paper's last layer is applied inside the likelihood).
    """
    layers: list[nn.Module] = [GatedLinear(i, o) for i, o in zip(sizes[:-2], sizes[1:-1], strict=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)
