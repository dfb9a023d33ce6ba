"""Trainable models with one contract, in CompressAI's spirit.

Every model maps a batch of binary images d (float, shape (N, data_dim)) to a
:class:`Output` of per-example terms of the objective (Eq. 15):

    loss = distortion + λ·rate,   distortion = −log Q(D | ·),   rate in nats.

``LatticeVAE`` is the paper's MNIST rectangular-lattice VAE (Section 4). Its
forward pass is the training system of Figure 2 (right): subtractive dither
without quantization, X − U with X = e_c(D). :meth:`LatticeVAE.quantize` is the
inference system of Figure 2 (left): Z = K_Λ(X + U), decoded from Z − U. By the
Crypto-Lemma both feed the decoder the same law, and by Theorem 1 the training
rate equals the expected code length of Z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.lattices.product import ProductLattice
from latcomp.nn.layers import gated_mlp


@dataclass
class Output:
    """Per-example terms of the objective; ``logits`` parametrize Q(D|·) (Bernoulli)."""

    loss: torch.Tensor
    rate: torch.Tensor
    distortion: torch.Tensor
    logits: torch.Tensor


def bernoulli_nll(logits: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """−log Q(d | logits) in nats per example, for the decoder's sigmoid-Bernoulli likelihood."""
    return F.binary_cross_entropy_with_logits(logits, d, reduction="none").sum(-1)


def lattice_parameters(product: ProductLattice) -> tuple[nn.Parameter, nn.Parameter]:
    """The learned latent scales: log Δ_b per block (initialised to a cell of unit volume per dimension)
    and log b_i per dimension (initialised to b = 1)."""
    unit_log_volume = torch.tensor([math.log(b.volume) / b.dim for b in product.blocks])
    return nn.Parameter(-unit_log_volume), nn.Parameter(torch.zeros(product.dim))


class AutoEncoder(nn.Module):
    """The shared skeleton: gated encoder and decoder (Section 4), λ, and the objective.

    The encoder maps data_dim → hidden → hidden → ``encoder_out`` (default: latent),
    the decoder latent → hidden → hidden → data_dim Bernoulli logits. Subclasses
    define ``forward`` (how the decoder's input and the rate are made).
    """

    architecture = ""

    def __init__(self, data_dim: int, hidden: int, latent: int, lam: float,
                 encoder_out: int | None = None, **extra: Any):
        super().__init__()
        self.hparams: dict[str, Any] = dict(data_dim=data_dim, hidden=hidden, latent=latent, lam=lam, **extra)
        self.lam = lam
        self.encoder = gated_mlp([data_dim, hidden, hidden, encoder_out or latent])
        self.decoder = gated_mlp([latent, hidden, hidden, data_dim])

    def _objective(self, d: torch.Tensor, w: torch.Tensor, rate: torch.Tensor) -> Output:
        """loss = −log Q(d|w) + λ·rate per example (Eq. 15's form), with w the decoder's input."""
        logits = self.decoder(w)
        distortion = bernoulli_nll(logits, d)
        return Output(distortion + self.lam * rate, rate, distortion, logits)

    def codec_tensors(self) -> dict[str, torch.Tensor]:
        """Entropy-model tensors the codec needs; none for models it cannot code."""
        return {}


class LatticeVAE(AutoEncoder):
    """Lattice VAE: gated encoder/decoder, a dithered lattice latent with learned scales and Laplace prior.

    Encoder e_c: data_dim → hidden → hidden → latent (two gated layers, then linear);
    decoder: latent → hidden → hidden → data_dim (two gated layers, then linear +
    sigmoid). ``lattice`` is a lattice spec (:mod:`latcomp.lattices.product`): ``"z"``
    is the paper's rectangular lattice (one learned Δ_i per dimension), ``"e8"`` tiles
    the latent with E8 blocks, ``"leech+e8*2"`` mixes blocks. Each block has a learned
    scale Δ_b = exp(log_delta_b) (initialised to a cell of unit volume per dimension)
    and each dimension a Laplace scale b_i = exp(log_b_i).
    """

    architecture = "lattice-vae"

    def __init__(self, data_dim: int = 784, hidden: int = 300, latent: int = 40, lam: float = 1.0,
                 lattice: str = "z"):
        product = ProductLattice(lattice, latent)
        super().__init__(data_dim, hidden, latent, lam, lattice=product.spec)
        self.product = product
        self.log_delta, self.log_b = lattice_parameters(product)

    @property
    def delta(self) -> torch.Tensor:
        return self.log_delta.exp()

    @property
    def b(self) -> torch.Tensor:
        return self.log_b.exp()

    def latent_codec(self) -> LatticeLatentCodec:
        """The latent codec with the current (differentiable) scales."""
        return LatticeLatentCodec(self.product, self.delta, self.b)

    def noise_shape(self, d: torch.Tensor) -> tuple[int, int]:
        """The shape (N, latent) of the uniforms ``v`` that :meth:`forward` draws for a batch ``d``, a row each."""
        return d.shape[0], self.hparams["latent"]

    def forward(self, d: torch.Tensor, v: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Output:
        """Training objective Eq. 15 with one dither per example.

        ``v`` ~ Uniform[0,1)^m is the dither's noise (drawn from ``generator`` if
        not given) and is held constant; U = Δ·U₀(v) is reparametrized so that
        gradients reach the scales as well as the encoder.
        """
        x = self.encoder(d)
        if v is None:
            v = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        latent = self.latent_codec()
        eta = x - latent.dither(v)
        return self._objective(d, eta, latent.rate_nats(eta))

    @torch.no_grad()
    def codec_tensors(self) -> dict[str, torch.Tensor]:
        """The entropy-model parameters the codec reads, frozen as float32 (Δ_b and b_i).

        They are stored in the model file as they are so that encoder and decoder
        compute P(Ẑ|U) from bit-identical values, with no exp on either side.
        """
        return {"lattice.delta": self.delta.float(), "prior.b": self.b.float()}

    @torch.no_grad()
    def quantize(self, d: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference path: integer coordinates k of Z = K_Λ(e_c(d) + u), and Z − u."""
        latent = LatticeLatentCodec(self.product, self.delta.double().numpy(), self.b.double().numpy())
        x, u_np = self.encoder(d).double().numpy(), u.double().numpy()
        k = latent.quantize(x, u_np)
        return torch.from_numpy(k), torch.from_numpy(latent.reconstruct(k, u_np)).to(d.dtype)
