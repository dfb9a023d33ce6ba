"""The text autoencoder of Appendix A.2.1: a GRU sequence autoencoder without attention (torch).

* **Encoder** e_c: word embeddings → a bidirectional GRU (``layers`` layers, ``hidden`` per
  direction); the last layer's final states of both directions (2·hidden values, the paper's
  "communication pipe") → a linear map to the representation X ∈ R^latent.
* **Representation**, one of four kinds (a subclass each):

  - :class:`LatticeTextAE` (``text-lattice``): the dithered lattice latent of the rest of latcomp
    (:class:`~latcomp.latent_codecs.lattice.LatticeLatentCodec`: product blocks ``z``, ``e8``,
    ``leech``…, learned block scales and Laplace prior). Training feeds the decoder X − U with U
    the shared-seed dither, and the rate is the Theorem 1 term −log P_{X̂−U} at X − U (Eq. 15,
    erratum 1); coding feeds it Z − U with Z = K_Λ(X + U), the same law (Crypto-Lemma), and the
    real code length of Z has the training rate's expectation.
  - :class:`GaussianTextAE` (``text-gaussian``): the paper's stand-in for a good high-dimensional
    lattice: W = X + σ·ε with σ a learned diagonal (not data dependent) and rate
    KL(N(X, σ²) ‖ N(0, I)).

  - :class:`ScalarQuantizerTextAE` (``text-st-scalar``) and :class:`VectorQuantizerTextAE`
    (``text-st-vector``): the paper's straight-through baselines, one scalar quantizer per
    dimension or one 2-D vector quantizer per pair, M learned words and a learned code each
    (:mod:`latcomp.nn.quantizers`, the same as the MNIST ``st-*`` models'): W = the chosen words,
    rate = their code length. With ``commitment`` β > 0 the loss also has β·‖X − sg(W)‖² and with
    ``ema`` γ > 0 the words are EMA averages (VQ-VAE), the careful practitioner's version.

* **Decoder**: W → linear + tanh → the initial state of every layer of a GRU of 2·hidden units,
  teacher-forced on ``<bos>`` + sentence, and a softmax over the vocabulary for each next token
  (the sentence, then ``<eos>``) through a linear bottleneck of ``embed`` units (the output layer
  is the machine's main cost; this halves it at the small size). Its word NLL is the distortion.

Objective per sentence (nats): NLL + λ·rate, λ annealed during training (``lam`` argument of
:meth:`TextAutoEncoder.forward`; ``hparams["lam"]`` is its final value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.lattices.product import ProductLattice
from latcomp.nn.baselines import gaussian_kl
from latcomp.nn.models import lattice_parameters
from latcomp.nn.quantizers import StraightThroughQuantizers
from latcomp.text.vocabulary import BOS, EOS, PAD


@dataclass
class TextOutput:
    """Per-sentence terms of the objective (nats) and the number of predicted tokens (words + ``<eos>``)."""

    loss: torch.Tensor
    rate: torch.Tensor
    distortion: torch.Tensor
    tokens: torch.Tensor


@dataclass
class Batch:
    """Padded token ids (N, T) of sentences (without ``<bos>``/``<eos>``) and their lengths (N,)."""

    ids: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def of(cls, sentences: list[list[int]]) -> Batch:
        lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
        ids = torch.full((len(sentences), max(1, int(lengths.max()) if len(sentences) else 1)), PAD,
                         dtype=torch.long)
        for row, s in enumerate(sentences):
            ids[row, :len(s)] = torch.tensor(s, dtype=torch.long)
        return cls(ids, lengths)

    def __len__(self) -> int:
        return len(self.lengths)


class TextAutoEncoder(nn.Module):
    """The shared encoder, decoder and objective (module docstring); subclasses make the representation."""

    architecture = ""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, latent: int, lam: float, **extra: Any):
        super().__init__()
        self.hparams: dict[str, Any] = dict(vocab=vocab, embed=embed, hidden=hidden, layers=layers,
                                            latent=latent, lam=lam, **extra)
        self.lam = lam
        self.embedding = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.encoder = nn.GRU(embed, hidden, layers, batch_first=True, bidirectional=True)
        self.to_latent = nn.Linear(2 * hidden, latent)
        self.from_latent = nn.Linear(latent, layers * 2 * hidden)
        self.decoder = nn.GRU(embed, 2 * hidden, layers, batch_first=True)
        self.project = nn.Linear(2 * hidden, embed, bias=False)
        self.output = nn.Linear(embed, vocab)

    def encode(self, batch: Batch) -> torch.Tensor:
        """X = e_c(sentence): (N, latent)."""
        packed = pack_padded_sequence(self.embedding(batch.ids), batch.lengths.clamp(min=1), batch_first=True,
                                      enforce_sorted=False)
        _, h = self.encoder(packed)                                    # (layers·2, N, hidden)
        return self.to_latent(torch.cat([h[-2], h[-1]], dim=-1))

    def initial_state(self, w: torch.Tensor) -> torch.Tensor:
        """The decoder GRU's initial states (layers, N, 2·hidden) from the representation W."""
        layers = self.hparams["layers"]
        return torch.tanh(self.from_latent(w)).unflatten(-1, (layers, -1)).transpose(0, 1).contiguous()

    def token_nll(self, w: torch.Tensor, batch: Batch) -> torch.Tensor:
        """−log Q(sentence, <eos> | W) in nats per sentence (teacher forcing; padding never reaches the softmax)."""
        n, t = batch.ids.shape
        bos = torch.full((n, 1), BOS, dtype=torch.long)
        states, _ = self.decoder(self.embedding(torch.cat([bos, batch.ids], 1)), self.initial_state(w))
        targets = torch.cat([batch.ids, torch.full((n, 1), PAD, dtype=torch.long)], 1)
        targets[torch.arange(n), batch.lengths] = EOS
        mask = torch.arange(t + 1).unsqueeze(0) <= batch.lengths.unsqueeze(1)
        nll = F.cross_entropy(self.logits(states[mask]), targets[mask], reduction="none")
        return torch.zeros(n, dtype=nll.dtype).index_add(0, mask.nonzero()[:, 0], nll)

    def next_token_logits(self, w: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits (N, T+1, vocab) of every next token given W and the tokens ``ids`` (N, T) so far."""
        bos = torch.full((len(ids), 1), BOS, dtype=torch.long)
        states, _ = self.decoder(self.embedding(torch.cat([bos, ids], 1)), self.initial_state(w))
        return self.logits(states)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Next-token logits from decoder states: a rank-``embed`` output layer (half the softmax's cost)."""
        return self.output(self.project(states))

    def represent(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the decoder's input W, the rate in nats per sentence) from X and the noise ``v``."""
        raise NotImplementedError

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        """The noise ``v`` of :meth:`represent` (held constant: the reparametrization)."""
        raise NotImplementedError

    def noise_shape(self, batch: Batch) -> tuple[int, int]:
        """The shape (N, latent) of the noise ``v`` that :meth:`forward` draws for a batch, a row each."""
        return len(batch), self.hparams["latent"]

    def penalty(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor | float:
        """A training term besides NLL and rate per sentence (the straight-through models' commitment); 0 here."""
        return 0.0

    def forward(self, batch: Batch, v: torch.Tensor | None = None, generator: torch.Generator | None = None,
                lam: float | None = None) -> TextOutput:
        """NLL + λ·rate (+ :meth:`penalty`) per sentence (λ = ``lam``, default the final ``hparams["lam"]``)."""
        v = self.draw_noise(self.noise_shape(batch), generator) if v is None else v
        x = self.encode(batch)
        w, rate = self.represent(x, v)
        nll = self.token_nll(w, batch)
        loss = nll + (self.lam if lam is None else lam) * rate + self.penalty(x, w)
        return TextOutput(loss, rate, nll, batch.lengths + 1)

    def codec_tensors(self) -> dict[str, torch.Tensor]:
        return {}


class LatticeTextAE(TextAutoEncoder):
    """The representation on a dithered lattice (module docstring); ``lattice`` is a lattice spec."""

    architecture = "text-lattice"

    def __init__(self, vocab: int = 10_004, embed: int = 128, hidden: int = 128, layers: int = 1,
                 latent: int = 96, lam: float = 1.0, lattice: str = "z"):
        product = ProductLattice(lattice, latent)
        super().__init__(vocab, embed, hidden, layers, latent, lam, lattice=product.spec)
        self.product = product
        self.log_delta, self.log_b = lattice_parameters(product)

    def latent_codec(self) -> LatticeLatentCodec:
        """The latent codec with the current (differentiable) scales."""
        return LatticeLatentCodec(self.product, self.log_delta.exp(), self.log_b.exp())

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        """Uniforms on [0, 1)^latent, a row per sentence (the dither's noise)."""
        return torch.rand(shape, generator=generator)

    def represent(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W = X − U with U = s·U₀(v) the reparametrized dither; the Theorem 1 rate at X − U."""
        latent = self.latent_codec()
        eta = x - latent.dither(v)
        return eta, latent.rate_nats(eta)

    @torch.no_grad()
    def codec_tensors(self) -> dict[str, torch.Tensor]:
        """The entropy-model parameters of the coding path, frozen as float32 (as the lattice VAE's)."""
        return {"lattice.delta": self.log_delta.exp().float(), "prior.b": self.log_b.exp().float()}


class GaussianTextAE(TextAutoEncoder):
    """Gaussian dithering (module docstring): W = X + σ·ε, σ = exp(log_sigma) per dimension.

    σ starts at 1/√12, the noise power of the lattice models' initial dither (a cell of unit volume
    per dimension): with σ = 1 the decoder learns to ignore W before the encoder can say anything
    (posterior collapse; measured: 0.1 bits/word of rate after 100 steps).
    """

    architecture = "text-gaussian"

    def __init__(self, vocab: int = 10_004, embed: int = 128, hidden: int = 128, layers: int = 1,
                 latent: int = 96, lam: float = 1.0):
        super().__init__(vocab, embed, hidden, layers, latent, lam)
        self.log_sigma = nn.Parameter(torch.full((latent,), -0.5 * math.log(12.0)))

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        """Standard normals ε, a row per sentence."""
        return torch.randn(shape, generator=generator)

    def represent(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W = X + σ·ε with ε = ``v``; rate KL(N(X, σ²) ‖ N(0, I))."""
        sigma = self.log_sigma.exp().expand_as(x)
        return x + sigma * v, gaussian_kl(x, sigma)


class _StraightThroughTextAE(StraightThroughQuantizers, TextAutoEncoder):
    """Straight-through quantizers of the representation (module docstring, :mod:`latcomp.nn.quantizers`)."""

    def __init__(self, vocab: int = 10_004, embed: int = 128, hidden: int = 128, layers: int = 1,
                 latent: int = 96, lam: float = 1.0, levels: int = 4, commitment: float = 0.0, ema: float = 0.0):
        TextAutoEncoder.__init__(self, vocab, embed, hidden, layers, latent, lam, levels=levels,
                                 commitment=commitment, ema=ema)
        self.init_quantizers(latent, levels, commitment, ema)

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        """No noise (quantization is deterministic): an empty row per sentence; ``generator`` is not drawn from."""
        return torch.empty(shape[0], 0)

    def represent(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W = the chosen words (straight-through), rate = their code length Σ −log p(word)."""
        return self.quantize_latent(x)


class ScalarQuantizerTextAE(_StraightThroughTextAE):
    """One scalar quantizer per latent dimension, M learned levels each."""

    architecture = "text-st-scalar"
    word_dim = 1


class VectorQuantizerTextAE(_StraightThroughTextAE):
    """One 2-D vector quantizer per pair of latent dimensions, M learned code vectors each."""

    architecture = "text-st-vector"
    word_dim = 2


TEXT_MODELS: dict[str, type[TextAutoEncoder]] = {
    cls.architecture: cls for cls in (LatticeTextAE, GaussianTextAE, ScalarQuantizerTextAE, VectorQuantizerTextAE)}
