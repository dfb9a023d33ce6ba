"""Network building blocks: the gated layers of the paper's MNIST model (Section 4) and the
convolutional transforms of the photo model (GDN, strided convolutions).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


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


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al. 2016), or its inverse (IGDN).

    y_c = x_c / sqrt(β_c + Σ_j γ_cj·x_j²) (GDN) or x_c·sqrt(β_c + Σ_j γ_cj·x_j²) (IGDN),
    a 1×1 convolution of x² per position. β and γ are kept non-negative by squaring
    stored parameters (β ≥ 1e-6); initialised at β = 1, γ = 0.1·I.
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(math.sqrt(0.1) * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        norm = F.conv2d(x * x, self.gamma_root.square().view(c, c, 1, 1), self.beta_root.square() + 1e-6)
        return x * norm.sqrt() if self.inverse else x * norm.rsqrt()


def _strided_stack(sizes: list[int], conv: type[nn.Module], inverse: bool) -> nn.Sequential:
    """5×5 (transposed) convolutions of stride 2 between consecutive ``sizes``, (I)GDN between them."""
    extra = {"output_padding": 1} if conv is nn.ConvTranspose2d else {}
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(conv(cin, cout, 5, stride=2, padding=2, **extra))
        if i < len(sizes) - 2:
            layers.append(GDN(cout, inverse=inverse))
    return nn.Sequential(*layers)


def analysis_transform(channels: int, latent: int) -> nn.Sequential:
    """g_a (Ballé et al. 2018, factorized prior): 3 → N → N → N → M channels, each layer halves H and W."""
    return _strided_stack([3, channels, channels, channels, latent], nn.Conv2d, inverse=False)


def synthesis_transform(channels: int, latent: int) -> nn.Sequential:
    """g_s: M → N → N → N → 3 channels by transposed convolutions, each layer doubles H and W."""
    return _strided_stack([latent, channels, channels, channels, 3], nn.ConvTranspose2d, inverse=True)
