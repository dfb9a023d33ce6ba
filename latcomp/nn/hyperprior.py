"""The photo model with a scale hyperprior on the lattice latent (Ballé et al. 2018, on the paper's lattices).

The transforms g_a, g_s are those of the factorized model (:mod:`latcomp.nn.photo`, same
attribute names, so its weights warm-start this model). Two latents, both dithered lattice
latents trained by dithered SGD (Theorem 1):

* the **main latent** y = g_a(x) (M channels at 1/16 of the resolution) on the product lattice
  of the ``lattice`` spec (``e8*16`` as the shipped models, or ``z``), one learned scale Δ per
  block, coded with a Laplace prior whose scale is given per position and channel by the
  hyper-latent;
* the **hyper-latent** z = h_a(|y|) (N channels at 1/64) on the rectangular lattice with its own
  learned steps and a factorized Laplace prior with learned scales (a
  :class:`~latcomp.latent_codecs.lattice.LatticeLatentCodec`, as the factorized model's latent).

The hyper-synthesis h_s maps Z_z − U_z to a continuous log-scale index t per position and channel
of y; the scale used is the table's b = SCALE_TABLE[round(t)] (:mod:`latcomp.entropy.scales`,
b_j = 2^((j − 48)/8)), the one the coder reads, with the straight-through gradient of
2^((t − 48)/8). h_s is ReLU-and-convolution only (no GDN), so that it can be run in exact integer
arithmetic by the coder.

The objective per image (as the factorized model; CompressAI's convention):

    loss = λ·255²·MSE(x, x̂) + (rate_y + rate_z) / (H·W)    (rates in bits)

with rate_y = −Σ log(F_b(η + w/2) − F_b(η − w/2)) at η = y − U_y and the per-position b, and
rate_z the hyper-latent codec's rate at η_z = z − U_z. By the Crypto-Lemma (Z − U has the law of
X − U at both levels, and b is a function of the hyper-level only) their expectation is the
expected length of the real two-level code (tested by Monte Carlo). The decoder networks see
Z − U at both levels: h_s sees η_z, g_s sees η.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.entropy.scales import OFFSET, STEPS, straight_through_scale
from latcomp.families.photo import latent_size
from latcomp.latent_codecs import ConditionalLatticeCodec, LatticeLatentCodec
from latcomp.lattices.product import ProductLattice
from latcomp.nn.models import Output, lattice_parameters
from latcomp.nn.photo import (
    PhotoFactorized,
    from_rows,
    photo_transforms,
    rate_step_factor,
    rd_objective,
    relattice,
    to_rows,
)

#: The hyper-latent's lattice (one rectangular lattice per channel).
HYPER_LATTICE = "z"
#: h_a halves the latent's sides twice.
HYPER_DOWNSAMPLING = 4
#: Gain of h_a's last layer at a warm start. Fresh, h_a maps the latents of a trained factorized model to
#: z of standard deviation about 0.03 (photo-base on BSDS500 crops), which the hyper-latent's initial
#: unit lattice step quantizes to 0 almost always: z would carry no information and its scales, learned
#: slowly, would have to shrink 30-fold first. With this gain z starts at about unit scale.
HYPER_GAIN = 32.0


def hyper_analysis(latent: int, channels: int) -> nn.Sequential:
    """h_a (bmshj2018): |y| → conv 3×3 s1, ReLU, conv 5×5 s2, ReLU, conv 5×5 s2: M → N → N → N channels."""
    return nn.Sequential(nn.Conv2d(latent, channels, 3, stride=1, padding=1), nn.ReLU(),
                         nn.Conv2d(channels, channels, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(channels, channels, 5, stride=2, padding=2))


def hyper_synthesis(channels: int, latent: int) -> nn.Sequential:
    """h_s: conv-transpose 5×5 s2, ReLU, conv-transpose 5×5 s2, ReLU, conv 3×3 s1: N → N → N → M log-scale indices.

    Convolutions and ReLU only, so that it runs in exact integer arithmetic at coding time.
    """
    return nn.Sequential(nn.ConvTranspose2d(channels, channels, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(channels, channels, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
                         nn.Conv2d(channels, latent, 3, stride=1, padding=1))


def index_of_scale(b: torch.Tensor) -> torch.Tensor:
    """The continuous index t with 2^((t − OFFSET)/STEPS) = b (the inverse of the table's law)."""
    return OFFSET + STEPS * torch.log2(b)


@dataclass
class HyperTerms:
    """Per-image rates in nats of the two levels, and the reconstruction."""

    rate_y: torch.Tensor
    rate_z: torch.Tensor
    x_hat: torch.Tensor


class PhotoHyperprior(nn.Module):
    """g_a, g_s, the main lattice latent with scales from the hyper-latent, h_a, h_s (module docstring).

    ``channels`` N: hidden channels of all networks and the hyper-latent's channels; ``latent`` M;
    ``lam`` λ; ``lattice``: the lattice spec of one main-latent position.
    """

    architecture = "photo-hyperprior"

    def __init__(self, channels: int = 64, latent: int = 128, lam: float = 0.013, lattice: str = "e8"):
        super().__init__()
        product = photo_transforms(self, channels, latent, lam, lattice)
        self.hyper_product = ProductLattice(HYPER_LATTICE, channels)
        self.log_delta = lattice_parameters(product)[0]
        self.hyper_analysis = hyper_analysis(latent, channels)
        self.hyper_synthesis = hyper_synthesis(channels, latent)
        self.hyper_log_delta, self.hyper_log_b = lattice_parameters(self.hyper_product)

    def hyper_codec(self) -> LatticeLatentCodec:
        """The hyper-latent's codec (factorized Laplace prior) with the current scales."""
        return LatticeLatentCodec(self.hyper_product, self.hyper_log_delta.exp(), self.hyper_log_b.exp())

    def latent_codec(self) -> ConditionalLatticeCodec:
        """The main latent's codec (its prior is given per row: :meth:`terms`)."""
        return ConditionalLatticeCodec(self.product, self.log_delta.exp())

    def sizes(self, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
        """(h, w) of the main latent and (h_z, w_z) of the hyper-latent for images ``x`` (B, 3, H, W)."""
        h, w = latent_size(*x.shape[2:])
        return (h, w), (-(-h // HYPER_DOWNSAMPLING), -(-w // HYPER_DOWNSAMPLING))

    def noise_shape(self, x: torch.Tensor) -> tuple[int, int]:
        """(B, h·w·M + h_z·w_z·N): the uniforms of both levels' dithers, one row per image."""
        (h, w), (hz, wz) = self.sizes(x)
        return x.shape[0], h * w * self.hparams["latent"] + hz * wz * self.hparams["channels"]

    def _split_noise(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The uniforms of one image row of ``v`` split into the main latent's rows and the hyper-latent's."""
        (h, w), _ = self.sizes(x)
        m, n = self.hparams["latent"], self.hparams["channels"]
        return v[:, :h * w * m].reshape(-1, m), v[:, h * w * m:].reshape(-1, n)

    def scale_indices(self, eta_z: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """h_s(Z_z − U_z) cropped to the main latent ``shape`` (B, M, h, w): the continuous indices t."""
        return self.hyper_synthesis(eta_z)[..., :shape[2], :shape[3]]

    def terms(self, x: torch.Tensor, v: torch.Tensor) -> HyperTerms:
        """Both levels' training rates (nats per image) and x̂ for images ``x`` with uniforms ``v`` (noise_shape)."""
        y = self.analysis(x)
        z = self.hyper_analysis(y.abs())
        v_y, v_z = self._split_noise(x, v)
        return self.decoder_terms(y - from_rows(self.latent_codec().dither(v_y), tuple(y.shape)),
                                  z - from_rows(self.hyper_codec().dither(v_z), tuple(z.shape)))

    def decoder_terms(self, eta: torch.Tensor, eta_z: torch.Tensor) -> HyperTerms:
        """Both levels' rates (nats per image) and x̂ = g_s(η) of the decoder's inputs η (B, M, h, w) and
        η_z (B, N, h_z, w_z): y − U and z − U_z in training, Z − U and Z_z − U_z at coding (where the rates are
        the code lengths, up to the float h_s's rare index differences from the exact one)."""
        t = self.scale_indices(eta_z, tuple(eta.shape))
        prior = LaplaceRows(to_rows(straight_through_scale(t)))
        batch = eta.shape[0]
        return HyperTerms(self.latent_codec().rate_nats(to_rows(eta), prior).reshape(batch, -1).sum(-1),
                          self.hyper_codec().rate_nats(to_rows(eta_z)).reshape(batch, -1).sum(-1),
                          self.synthesis(eta))

    def latent_terms(self, etas: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The total rate (nats per image) and x̂ of the decoder's inputs ``etas`` = (η, η_z) (:meth:`decoder_terms`)."""
        terms = self.decoder_terms(*etas)
        return terms.rate_y + terms.rate_z, terms.x_hat

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Output:
        """The training objective for images ``x`` (B, 3, H, W) in [0, 1] (module docstring).

        ``v`` ~ Uniform[0, 1) of :meth:`noise_shape` is drawn from ``generator`` if not given. Output as
        the factorized model's: loss per image, rate (both levels) in nats, distortion = MSE on the
        0–255 scale, ``logits`` = the reconstruction.
        """
        if v is None:
            v = torch.rand(self.noise_shape(x), generator=generator, dtype=x.dtype)
        out = self.terms(x, v)
        return rd_objective(self.lam, x, out.rate_y + out.rate_z, out.x_hat)

    @torch.no_grad()
    def codec_tensors(self) -> dict[str, torch.Tensor]:
        """The entropy-model parameters the codec reads, float32: Δ per main block, the hyper-latent's Δ and b."""
        return {"lattice.delta": self.log_delta.exp().float(), "hyper.delta": self.hyper_log_delta.exp().float(),
                "hyper.b": self.hyper_log_b.exp().float()}


def fine_tune_start(source: nn.Module, hparams: dict[str, Any]) -> PhotoHyperprior:
    """The start of ``latcomp train --init`` (:attr:`latcomp.families.Family.fine_tune`): a new model of
    ``hparams`` warm-started from ``source`` (:func:`warm_start`)."""
    model = PhotoHyperprior(**hparams)
    warm_start(model, source)
    return model


@torch.no_grad()
def warm_start(model: PhotoHyperprior, source: nn.Module) -> None:
    """Start ``model`` from the weights of ``source`` (the start of ``latcomp train --init``).

    From a ``photo-factorized`` model: g_a, g_s and the main latent's block scales of
    :func:`latcomp.nn.photo.relattice` (the source's channels regrouped into ``model``'s lattice and
    its scales moved to ``model``'s λ), h_s's last bias set to the index of the source's static
    Laplace scale of each channel, so that the hyperprior starts near the factorized prior, and h_a's
    last layer multiplied by :data:`HYPER_GAIN`; the rest of h_a and h_s and the hyper-latent's scales
    stay fresh. From a ``photo-hyperprior`` model on the
    same lattice: all its weights, the main latent's scales moved to the new λ.
    """
    if source.architecture == PhotoFactorized.architecture:
        start = relattice(source, model.product.spec, lam=model.lam)
        for name in ("analysis", "synthesis"):
            getattr(model, name).load_state_dict(getattr(start, name).state_dict())
        model.log_delta.copy_(start.log_delta)
        model.hyper_synthesis[-1].bias.copy_(index_of_scale(start.log_b.exp()))
        model.hyper_analysis[-1].weight.mul_(HYPER_GAIN)
        model.hyper_analysis[-1].bias.mul_(HYPER_GAIN)
        return
    if source.product.spec != model.product.spec:
        raise ValueError(f"a {source.architecture} model on {source.product.spec} cannot start one on "
                         f"{model.product.spec}")
    model.load_state_dict(source.state_dict())
    model.log_delta.add_(math.log(rate_step_factor(source.lam, model.lam)))
