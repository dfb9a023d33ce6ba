"""Straight-through quantizers (Appendix A.2.1), one concept for the MNIST and the text baselines.

Q = latent/k independent k-dimensional quantizers (k = 1: scalar, k = 2: vector), each with M
words and a learned *code* (a distribution over its M words, as logits). A latent X (N, latent)
is split into Q vectors x, each replaced by its nearest word q (Euclidean distance), and the rate
is the code length of the chosen words, Σ −log p(word) in nats: the length an entropy coder
writes under the learned code (the paper's "representation cost").

Straight-through estimators. The decoder's input has the forward value of the chosen words and
the gradient of the identity in x (Bengio et al., 2013), and also reaches the chosen words:

    w = q + (x − sg(x))       (forward: w == q bit-exactly; ∂w/∂x = I, ∂w/∂q = I)

The code length depends on x only through the discrete choice, so with the hard value alone λ
would send no gradient to the encoder or the words (and Adam would cancel its scale on the code
logits, making every λ train the same model). Its forward value is the exact code length; its
backward pass goes through the soft assignment a = softmax(−‖x − q_j‖²) (temperature 1):

    rate = −log p(i*) + (r_soft − sg(r_soft)),   r_soft = Σ_j a_j · sg(−log p_j)

so λ pulls encoder outputs (and words learned by gradient) towards cheap words, while the code
logits get exactly the gradient of the hard code length.

Two versions, chosen by two hyper-parameters (0 and 0: the paper's):

* ``commitment`` β: the VQ-VAE commitment loss β·‖x − sg(q)‖² per example (van den Oord et al.,
  2017, Eq. 3), added to the training loss (not to the rate: the rate stays the code length).
* ``ema`` decay γ: the words are not trained by the optimizer but follow exponential moving
  averages of the vectors assigned to them (VQ-VAE Appendix A.1, Laplace-smoothed counts;
  :func:`ema_update`); the codebook and the averages are buffers, saved with the model and in
  checkpoints, so a resumed run continues them exactly. With γ = 0 the words are parameters
  learned by the objective's gradient (the paper: "optimized using gradient descent").

Dead words are not restarted: a word no vector chooses keeps its value until its count decays
(γ^t ≲ ε), after which its average shrinks it towards the origin, where vectors may pick it again.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: Laplace smoothing ε of the EMA counts (Sonnet's VectorQuantizerEMA default).
EMA_EPSILON = 1e-5


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


def code_length(code_logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Σ_quantizers −log p(chosen word) in nats, per example; p = softmax(code_logits) (Q, M)."""
    log_p = torch.log_softmax(code_logits, dim=-1)                              # (Q, M)
    chosen = log_p[torch.arange(log_p.shape[0], device=index.device), index]    # (N, Q)
    return -chosen.sum(-1)


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


def commitment_loss(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """‖x − sg(q)‖² per example (VQ-VAE's commitment term, without β), summed over every other dimension."""
    return (x - q.detach()).square().flatten(1).sum(-1)


@torch.no_grad()
def ema_update(count: torch.Tensor, total: torch.Tensor, x: torch.Tensor, index: torch.Tensor, decay: float,
               eps: float = EMA_EPSILON) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One EMA step of the words (VQ-VAE Appendix A.1), per quantizer; returns (counts, sums, words).

    With n_j the number of vectors of ``x`` (N, Q, k) assigned to word j by ``index`` (N, Q) and
    s_j their sum: N_j ← γ·N_j + (1 − γ)·n_j, m_j ← γ·m_j + (1 − γ)·s_j, the Laplace-smoothed
    counts Ñ_j = (N_j + ε) / (Σ_i N_i + M·ε) · Σ_i N_i, and the words e_j = m_j / Ñ_j.
    ``count`` is (Q, M), ``total`` (Q, M, k); γ = ``decay``.
    """
    levels = count.shape[-1]
    onehot = F.one_hot(index, levels).to(x.dtype)                                # (N, Q, M)
    count = decay * count + (1 - decay) * onehot.sum(0)
    total = decay * total + (1 - decay) * torch.einsum("nqm,nqk->qmk", onehot, x.detach())
    size = count.sum(-1, keepdim=True)
    smoothed = (count + eps) / (size + levels * eps) * size
    return count, total, total / smoothed.unsqueeze(-1)


def initial_words(levels: int, word_dim: int) -> torch.Tensor:
    """The initial M words (M, k), the same for every quantizer: k = 1 on linspace(−1.5, 1.5, M), k = 2 on a
    circle of radius 1 (starting at 45°)."""
    if word_dim == 1:
        return torch.linspace(-1.5, 1.5, levels).unsqueeze(-1)
    angle = torch.arange(levels, dtype=torch.float32) * (2 * math.pi / levels) + math.pi / 4
    return torch.stack([angle.cos(), angle.sin()], dim=-1)


class StraightThroughQuantizers:
    """The quantizers of a model (module docstring), a mixin of its ``nn.Module``; ``word_dim`` is k.

    Its tensors sit on the model itself (``codebook`` (Q, M, k), ``code_logits`` (Q, M); with EMA also
    the buffers ``ema_count`` (Q, M) and ``ema_sum`` (Q, M, k)), so that the MNIST models saved before
    this class existed keep their keys.
    """

    word_dim = 1
    architecture = ""

    def init_quantizers(self, latent: int, levels: int, commitment: float, ema: float) -> None:
        """Register the tensors of latent/k quantizers of ``levels`` words (ValueError for impossible sizes)."""
        if latent % self.word_dim:
            raise ValueError(f"{self.architecture}: latent ({latent}) must be a multiple of {self.word_dim}")
        if levels < 1:
            raise ValueError(f"{self.architecture}: levels must be at least 1, got {levels}")
        if commitment < 0 or not 0 <= ema < 1:
            raise ValueError(f"{self.architecture}: commitment must be ≥ 0 and ema in [0, 1), got {commitment}, "
                             f"{ema}")
        self.commitment, self.ema = commitment, ema
        words = initial_words(levels, self.word_dim).expand(latent // self.word_dim, -1, -1).clone()
        module: nn.Module = self  # type: ignore[assignment]
        if ema:
            module.register_buffer("codebook", words)
            module.register_buffer("ema_count", torch.ones(words.shape[:2]))
            module.register_buffer("ema_sum", words.clone())
        else:
            self.codebook = nn.Parameter(words)
        self.code_logits = nn.Parameter(torch.zeros(words.shape[:2]))

    def quantizer_index(self, x: torch.Tensor) -> torch.Tensor:
        """The chosen words' indices (N, Q) of the latent ``x`` (N, latent)."""
        return nearest_codeword(x.unflatten(-1, (-1, self.word_dim)), self.codebook)[0]

    def quantize_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the decoder's input w (N, latent), the code length in nats (N,)) of the latent ``x`` (N, latent).

        In training mode with EMA, the words are then moved by :func:`ema_update` (after w is made).
        """
        vectors = x.unflatten(-1, (-1, self.word_dim))
        index, words = nearest_codeword(vectors, self.codebook)
        w = straight_through(vectors, words).flatten(-2)
        rate = straight_through_code_length(vectors, self.codebook, self.code_logits, index)
        if self.ema and self.training:  # type: ignore[attr-defined]
            self.ema_count, self.ema_sum, self.codebook = ema_update(self.ema_count, self.ema_sum, vectors, index,
                                                                     self.ema)
        return w, rate

    def penalty(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """β·‖x − sg(q)‖² per example, q the chosen words (the forward value of ``w``); zeros when β = 0."""
        return self.commitment * commitment_loss(x, w)
