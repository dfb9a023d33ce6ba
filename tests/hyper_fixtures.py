"""Small random photo-hyperprior models for the hyperprior tests (no trained model needed)."""

from __future__ import annotations

import math

import torch

from latcomp.nn.hyperprior import PhotoHyperprior


@torch.no_grad()
def lively_model(seed: int, lattice: str = "e8") -> PhotoHyperprior:
    """N = 8, M = 16, at scales where both latents take many lattice points and h_s's indices t spread over
    several table entries (fresh ReLU layers of so few channels are often dead: their biases are made positive)."""
    torch.manual_seed(seed)
    model = PhotoHyperprior(channels=8, latent=16, lam=0.01, lattice=lattice)
    model.log_delta.fill_(math.log(0.03))
    model.hyper_log_delta.fill_(math.log(0.01))
    model.hyper_log_b.fill_(math.log(0.02))
    for layer, gain in zip(model.hyper_synthesis[::2], (30.0, 3.0, 30.0), strict=True):
        layer.weight.mul_(gain)
        layer.bias.fill_(0.1)
    model.hyper_synthesis[-1].bias.fill_(30.0)
    return model
