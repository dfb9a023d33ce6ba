"""Baselines for the lattice VAE, with the same contract and networks (Table 1, Figure 4).

Every model maps binary images d (N, data_dim) to an :class:`~latcomp.models.Output`
of per-example terms, ``loss = distortion + λ·rate`` (Eq. 15's form), rate in nats,
``distortion = −log Q(d|·)`` under the decoder's Bernoulli likelihood. Encoder and
decoder are the lattice VAE's gated MLPs (Section 4).

* :class:`GaussianLatticeVAE` ("gaussian-lattice"): the paper's "Gaussian lattice
  VAE" (Section 3.3.1, Table 1; Gaussian dithering of Appendix A.2.1). Posterior
  N(μ(d), diag σ²) with σ learned per dimension but not data dependent, prior
  N(0, I): by Eq. 11 and Section 3.3.1 the dither of a very good high-dimensional
  lattice is nearly i.i.d. Gaussian, so this stands for the ideal lattice.
* :class:`GaussianVAE` ("gaussian"): the standard VAE, σ(d) data dependent.
* :class:`ScalarQuantizerAE` ("st-scalar") and :class:`VectorQuantizerAE`
  ("st-vector"): the straight-through quantizers of Appendix A.2.1
  (:mod:`latcomp.nn.quantizers`, shared with the text baselines): one scalar quantizer per
  latent dimension, or one 2-D vector quantizer per pair of dimensions, M learned words and a
  learned code each; the rate is the code length of the chosen words. Hyper-parameters
  ``commitment`` β and ``ema`` γ (both 0: the paper's version, the loss exactly
  distortion + λ·rate) give the VQ-VAE version: + β·‖x − sg(q)‖², EMA words.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from latcomp.nn.models import AutoEncoder, Output
from latcomp.nn.quantizers import StraightThroughQuantizers

# --------------------------------------------------------------------------- Gaussian VAEs


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) in nats, summed over the last dimension.

    Per dimension ½(μ² + σ² − 1 − log σ²); the VAE rate of Section 3.3.1 / Appendix A.2.1.
    """
    return 0.5 * (mu.square() + sigma.square() - 1.0 - 2.0 * sigma.log()).sum(-1)


class _GaussianBase(AutoEncoder):
    """Reparametrized Gaussian posterior, N(0, I) prior; subclasses define :meth:`posterior`."""

    def posterior(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) of the approximate posterior N(μ, diag σ²), each (N, latent)."""
        raise NotImplementedError

    def forward(self, d: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        """Negative ELBO (λ = 1) with one reparametrized sample w = μ + σ·ε, ε ~ N(0, I)."""
        mu, sigma = self.posterior(d)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return self._objective(d, mu + sigma * eps, gaussian_kl(mu, sigma))


class GaussianLatticeVAE(_GaussianBase):
    """Gaussian lattice VAE: μ(d) from the encoder, σ = exp(log_sigma) per dimension (init 1)."""

    architecture = "gaussian-lattice"

    def __init__(self, data_dim: int = 784, hidden: int = 300, latent: int = 40, lam: float = 1.0):
        super().__init__(data_dim, hidden, latent, lam)
        self.log_sigma = nn.Parameter(torch.zeros(latent))

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def posterior(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.encoder(d)
        return mu, self.sigma.expand_as(mu)


class GaussianVAE(_GaussianBase):
    """Standard VAE: the encoder's last layer outputs (μ, log σ²), 2·latent values."""

    architecture = "gaussian"

    def __init__(self, data_dim: int = 784, hidden: int = 300, latent: int = 40, lam: float = 1.0):
        super().__init__(data_dim, hidden, latent, lam, encoder_out=2 * latent)

    def posterior(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(d).chunk(2, dim=-1)
        return mu, (0.5 * log_var).exp()


# --------------------------------------------------------------------------- straight-through quantizers


class _StraightThroughAE(StraightThroughQuantizers, AutoEncoder):
    """latent/k independent k-dimensional quantizers with M learned words and a learned code each."""

    def __init__(self, data_dim: int = 784, hidden: int = 300, latent: int = 40, lam: float = 1.0,
                 levels: int = 4, commitment: float = 0.0, ema: float = 0.0):
        AutoEncoder.__init__(self, data_dim, hidden, latent, lam, levels=levels, commitment=commitment, ema=ema)
        self.init_quantizers(latent, levels, commitment, ema)

    def quantize(self, d: torch.Tensor) -> torch.Tensor:
        """The indices (N, Q) of the words chosen for the images ``d``."""
        return self.quantizer_index(self.encoder(d))

    def forward(self, d: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        """distortion at the quantized latent + λ · code length of the chosen words (+ the commitment term)."""
        x = self.encoder(d)
        w, rate = self.quantize_latent(x)
        out = self._objective(d, w, rate)
        return replace(out, loss=out.loss + self.penalty(x, w))


class ScalarQuantizerAE(_StraightThroughAE):
    """N = latent scalar quantizers, M levels each (init linspace(−1.5, 1.5, M))."""

    architecture = "st-scalar"
    word_dim = 1


class VectorQuantizerAE(_StraightThroughAE):
    """N = latent/2 two-dimensional quantizers, M code vectors each (init on a circle of radius 1)."""

    architecture = "st-vector"
    word_dim = 2


BASELINES: tuple[type[nn.Module], ...] = (GaussianLatticeVAE, GaussianVAE, ScalarQuantizerAE, VectorQuantizerAE)
