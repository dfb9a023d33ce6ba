"""The photo model: convolutional transforms around the dithered lattice latent.

Ballé et al.'s factorized-prior architecture (2018) with the paper's latent instead of
uniform noise: the analysis transform g_a maps an RGB image x ∈ [0, 1]^{3×H×W}
(H, W multiples of 16) to a latent y of M channels at 1/16 of the resolution. Each
spatial position is one lattice vector of dimension M: the lattice spec (e.g. ``"z"``
for a per-channel rectangular lattice, ``"e8"`` for E8 on groups of 8 consecutive
channels) tiles the channels, with one learned scale per block and one Laplace scale
b_c per channel, shared by all positions (a factorized prior, so the entropy model is
static and decoding needs nothing but the model file).

Training is dithered SGD (Theorem 1) exactly as for MNIST: the synthesis transform sees
W = y − U with U the lattice's dither, and the rate is the code length of the box code
at η = y − U, which is the expected size of the coded lattice point. The objective per
image (CompressAI's convention, so that λ values compare):

    loss = λ·255²·MSE(x, x̂) + rate / (H·W)     (MSE on [0, 1], rate in bits)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from latcomp.families.photo import latent_size
from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.lattices.product import ProductLattice
from latcomp.nn.layers import analysis_transform, synthesis_transform
from latcomp.nn.models import Output, lattice_parameters


def to_rows(y: torch.Tensor) -> torch.Tensor:
    """(B, M, h, w) latents → (B·h·w, M) lattice vectors, position-major (row r = (b, i, j))."""
    return y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])


def from_rows(rows: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`to_rows` for latents of ``shape`` (B, M, h, w)."""
    b, m, h, w = shape
    return rows.reshape(b, h, w, m).permute(0, 3, 1, 2)


def rd_objective(lam: float, x: torch.Tensor, rate: torch.Tensor, x_hat: torch.Tensor) -> Output:
    """The photo models' objective per image (module docstring): λ·255²·MSE(x, x̂) + rate/(H·W), ``rate`` in nats
    per image turned into bits per pixel of ``x`` (B, 3, H, W) in [0, 1]."""
    mse = (x_hat - x).square().mean(dim=(1, 2, 3))
    bpp = rate / (math.log(2.0) * x.shape[2] * x.shape[3])
    return Output(lam * 255.0**2 * mse + bpp, rate, 255.0**2 * mse, x_hat)


def photo_transforms(module: nn.Module, channels: int, latent: int, lam: float, lattice: str) -> ProductLattice:
    """The part every photo model shares: ``module``'s hparams, λ, the lattice of one latent position and the
    transforms g_a, g_s (attributes ``analysis``, ``synthesis``). Returns the lattice."""
    product = ProductLattice(lattice, latent)
    module.hparams = dict(channels=channels, latent=latent, lam=lam, lattice=product.spec)
    module.lam, module.product = lam, product
    module.analysis = analysis_transform(channels, latent)
    module.synthesis = synthesis_transform(channels, latent)
    return product


class PhotoFactorized(nn.Module):
    """g_a, the lattice latent with its Laplace prior, g_s (module docstring).

    ``channels`` N: width of the hidden layers; ``latent`` M: latent channels (a multiple
    of the lattice's block sizes); ``lam``: the rate–distortion weight λ; ``lattice``:
    the lattice spec of one latent position.
    """

    architecture = "photo-factorized"

    hparams: dict[str, Any]

    def __init__(self, channels: int = 64, latent: int = 128, lam: float = 0.025, lattice: str = "z"):
        super().__init__()
        product = photo_transforms(self, channels, latent, lam, lattice)
        self.log_delta, self.log_b = lattice_parameters(product)

    def latent_codec(self) -> LatticeLatentCodec:
        """The latent codec with the current (differentiable) scales."""
        return LatticeLatentCodec(self.product, self.log_delta.exp(), self.log_b.exp())

    def noise_shape(self, x: torch.Tensor) -> tuple[int, int]:
        """The shape (B·h·w, M) of the uniforms ``v`` that :meth:`forward` draws for images ``x`` (B, 3, H, W).

        h = ⌈H/16⌉, w = ⌈W/16⌉; the rows of image b are contiguous (distributed training shares them out).
        """
        h, w = latent_size(*x.shape[2:])
        return x.shape[0] * h * w, self.hparams["latent"]

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Output:
        """The training objective for images ``x`` (B, 3, H, W) in [0, 1], one dither per position.

        ``v`` ~ Uniform[0, 1) of the latent's shape in row layout (B·h·w, M) is drawn from
        ``generator`` if not given. Output: loss per image, rate in nats per image,
        distortion = MSE per image on the 0–255 scale, ``logits`` = the reconstruction.
        """
        y = self.analysis(x)
        if v is None:
            v = torch.rand(self.noise_shape(x), generator=generator, dtype=y.dtype)
        rate, x_hat = self.latent_terms((y - from_rows(self.latent_codec().dither(v), tuple(y.shape)),))
        return rd_objective(self.lam, x, rate, x_hat)

    def latent_terms(self, etas: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rate (nats per image) and x̂ = g_s(η) of the decoder's input ``etas`` = (η,), η (B, M, h, w):
        y − U in training, Z − U at coding (where the rate is the code length of Z)."""
        (eta,) = etas
        return self.latent_codec().rate_nats(to_rows(eta)).reshape(eta.shape[0], -1).sum(-1), self.synthesis(eta)

    @torch.no_grad()
    def codec_tensors(self) -> dict[str, torch.Tensor]:
        """The entropy-model parameters the codec reads, frozen as float32 (one Δ per block, one b per channel)."""
        return {"lattice.delta": self.log_delta.exp().float(), "prior.b": self.log_b.exp().float()}


def channel_order(model: PhotoFactorized) -> list[int]:
    """Latent channels from most to least active, by b_c/w_c (the coded Laplace scale, Δ-relative).

    Consecutive channels of this order form the blocks of a lattice such as E8, so that a
    block's channels are alike: all active or all idle (the lattice gain needs every
    dimension of a block active, and an idle channel costs nothing in an idle block).
    """
    codec = model.latent_codec()
    activity = (codec.b / codec.width).detach()
    return torch.argsort(activity, descending=True, stable=True).tolist()


@torch.no_grad()
def relattice(source: PhotoFactorized, lattice: str, lam: float | None = None) -> PhotoFactorized:
    """A copy of ``source`` on another lattice, its channels regrouped by :func:`channel_order`.

    The transforms are the same functions with the latent channels permuted (rows of g_a's
    last layer, inputs of g_s's first layer, b); each new block's scale is the geometric
    mean of its channels' widths w_c = Δ·d_c divided by the new block's mean step, so the
    cell volume per block is kept. The start of a fine-tuning run (``latcomp train --init``).

    With a new ``lam`` every scale is also multiplied by (λ_source/λ)^{1/2}: for fixed
    transforms the dithered quantizer's λ·255²·MSE + rate is λ·c·Δ² − n·log2 Δ + const at high
    rate (MSE = Δ²/12 per dimension exactly, by the subtractive dither), least at Δ ∝ λ^{−1/2}.
    The run then starts near its new rate instead of walking there step by step
    (:func:`rate_step_factor`).
    """
    hp = source.hparams
    model = PhotoFactorized(hp["channels"], hp["latent"], hp["lam"] if lam is None else lam, lattice)
    model.load_state_dict({k: v for k, v in source.state_dict().items() if k != "log_delta"}, strict=False)
    same = model.product.spec == source.product.spec
    order = torch.arange(hp["latent"]) if same else torch.tensor(channel_order(source))
    last, first = model.analysis[-1], model.synthesis[0]
    last.weight.copy_(last.weight[order])
    last.bias.copy_(last.bias[order])
    first.weight.copy_(first.weight[order])
    model.log_b.copy_(source.log_b[order])
    log_width = source.latent_codec().width.log()[order]
    steps = torch.from_numpy(model.product.steps).log()
    starts = list(model.product.starts) + [hp["latent"]]
    blocks = zip(starts, starts[1:], strict=False)
    log_delta = torch.stack([(log_width[a:b] - steps[a:b]).mean() for a, b in blocks])
    model.log_delta.copy_(log_delta + math.log(rate_step_factor(hp["lam"], model.lam)))
    return model


def fine_tune_start(source: PhotoFactorized, hparams: dict[str, Any]) -> PhotoFactorized:
    """The start of ``latcomp train --init`` (:attr:`latcomp.families.Family.fine_tune`): ``source`` on the run's
    lattice and λ, its channels regrouped by activity (:func:`relattice`)."""
    return relattice(source, hparams["lattice"], lam=hparams["lam"])


def rate_step_factor(lam_from: float, lam_to: float) -> float:
    """(λ_from/λ_to)^{1/2}: how the λ-optimal lattice scale of fixed transforms moves at high rate."""
    return math.sqrt(lam_from / lam_to)
