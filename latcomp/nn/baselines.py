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
  ("st-vector"): the straight-through quantizers of Appendix A.2.1. N independent
  quantizers (scalar: one per latent dimension; vector: one per pair of
  dimensions), each with M learned code words and a learned *code* (a
  distribution over its M words, as logits). The rate is the code length of the
  chosen words, Σ −log p(word), in nats; the paper calls its average the
  representation cost.

Straight-through estimator (choice documented here). The forward value is exactly
the chosen code word q; the backward pass treats quantization as the identity in x
(Bengio et al., 2013) *and* lets the decoder's gradient reach the chosen word:

    w = q + (x − sg(x))       (forward: w == q bit-exactly; ∂w/∂x = I, ∂w/∂q = I)

so the code words are "optimized using gradient descent" on the objective itself,
as Appendix A.2.1 says, and no VQ-VAE codebook/commitment terms are added: the loss
is exactly distortion + λ·rate.

The code length needs a straight-through estimator too: it depends on x only
through the discrete choice, so with the hard value alone λ would send no
gradient to the encoder or the words (and Adam would cancel its scale on the
code logits, making every λ train the same model). The rate's forward value is
the exact code length −log p(chosen word); its backward pass goes through the
soft assignment a = softmax(−‖x − q_j‖²) (temperature 1, latent units):

    rate = −log p(i*) + (r_soft − sg(r_soft)),   r_soft = Σ_j a_j · sg(−log p_j)

so λ pulls encoder outputs and words towards cheap words, while the code logits
get exactly the gradient of the hard code length.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from latcomp.nn.models import AutoEncoder, Output

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


def nearest_codeword(x: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-word quantization for independent quantizers (Appendix A.2.1).

    ``x`` (N, Q, k) holds one k-dimensional vector per quantizer, ``codebook``
    (Q, M, k) each quantizer's M words. Returns the indices (N, Q) of the nearest
    words in Euclidean distance and the words themselves (N, Q, k), the latter
    differentiable with respect to ``codebook``.
    """
    dist = (x.detach().unsqueeze(-2) - codebook.detach().unsqueeze(0)).square().sum(-1)  # (N, Q, M)
    index = dist.argmin(-1)
    words = codebook[torch.arange(codebook.shape[0], device=index.device), index]
    return index, words


def straight_through_code_length(x: torch.Tensor, codebook: torch.Tensor, code_logits: torch.Tensor,
                                 index: torch.Tensor) -> torch.Tensor:
    """Σ −log p(chosen word) per example (forward), with gradients through the soft assignment.

    See the module docstring: the forward value equals :func:`code_length`; the
    backward pass reaches ``x`` and ``codebook`` through softmax(−‖x − q_j‖²).
    """
    hard = code_length(code_logits, index)
    lengths = -torch.log_softmax(code_logits, dim=-1).detach()                 # (Q, M)
    assign = torch.softmax(-(x.unsqueeze(-2) - codebook.unsqueeze(0)).square().sum(-1), dim=-1)  # (N, Q, M)
    soft = (assign * lengths).sum((-1, -2))
    return hard + (soft - soft.detach())


def straight_through(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward value exactly ``q``; gradient passes to ``x`` (identity) and to ``q``."""
    return q + (x - x.detach())


def code_length(code_logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Σ_quantizers −log p(chosen word) in nats, per example; p = softmax(code_logits) (Q, M)."""
    log_p = torch.log_softmax(code_logits, dim=-1)                              # (Q, M)
    chosen = log_p[torch.arange(log_p.shape[0], device=index.device), index]    # (N, Q)
    return -chosen.sum(-1)


class _StraightThroughAE(AutoEncoder):
    """latent/k independent k-dimensional quantizers with M learned words and a learned code each."""

    word_dim = 1

    def __init__(self, data_dim: int = 784, hidden: int = 300, latent: int = 40, lam: float = 1.0,
                 levels: int = 4):
        if latent % self.word_dim:
            raise ValueError(f"{self.architecture}: latent ({latent}) must be a multiple of {self.word_dim}")
        if levels < 1:
            raise ValueError(f"{self.architecture}: levels must be at least 1, got {levels}")
        super().__init__(data_dim, hidden, latent, lam, levels=levels)
        quantizers = latent // self.word_dim
        self.codebook = nn.Parameter(self.initial_words(levels).expand(quantizers, -1, -1).clone())
        self.code_logits = nn.Parameter(torch.zeros(quantizers, levels))

    @staticmethod
    def initial_words(levels: int) -> torch.Tensor:
        """Initial words (M, k), the same for every quantizer."""
        raise NotImplementedError

    def quantize(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output split into quantizers, then nearest words: (indices (N, Q), x (N, Q, k))."""
        x = self.encoder(d).unflatten(-1, (-1, self.word_dim))
        return nearest_codeword(x, self.codebook)[0], x

    def forward(self, d: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        """distortion at the quantized latent + λ · code length of the chosen words (deterministic)."""
        x = self.encoder(d).unflatten(-1, (-1, self.word_dim))
        index, words = nearest_codeword(x, self.codebook)
        w = straight_through(x, words).flatten(-2)
        return self._objective(d, w, straight_through_code_length(x, self.codebook, self.code_logits, index))


class ScalarQuantizerAE(_StraightThroughAE):
    """N = latent scalar quantizers, M levels each (init linspace(−1.5, 1.5, M))."""

    architecture = "st-scalar"
    word_dim = 1

    @staticmethod
    def initial_words(levels: int) -> torch.Tensor:
        return torch.linspace(-1.5, 1.5, levels).unsqueeze(-1)


class VectorQuantizerAE(_StraightThroughAE):
    """N = latent/2 two-dimensional quantizers, M code vectors each (init on a circle of radius 1)."""

    architecture = "st-vector"
    word_dim = 2

    @staticmethod
    def initial_words(levels: int) -> torch.Tensor:
        angle = torch.arange(levels, dtype=torch.float32) * (2 * math.pi / levels) + math.pi / 4
        return torch.stack([angle.cos(), angle.sin()], dim=-1)


BASELINES: tuple[type[nn.Module], ...] = (GaussianLatticeVAE, GaussianVAE, ScalarQuantizerAE, VectorQuantizerAE)
