"""The text autoencoder's networks in numpy, bit-reproducible (no torch): what encode and decode run.

Lossless decoding feeds the decoder's next-token distribution Q(token | Z − U, tokens so far) to
the entropy coder, so encoder and decoder must compute *identical* probabilities. As for the
digit and photo models (:mod:`latcomp.exact.networks`), every matrix product is an exact integer
product (:class:`~latcomp.exact.networks.ExactLinear`: any BLAS, thread count or batch gives the
same bits) and the nonlinearities are tables built from correctly rounded constants:

* σ is :func:`~latcomp.exact.networks.exact_sigmoid`, and tanh(x) = 2σ(2x) − 1 (exact IEEE steps);
* the GRU cell is torch's: r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise,
  n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h (elementwise IEEE);
* the next-token distribution is quantized to integer frequencies
  f_i = ⌊2^FREQ_BITS · exp(l_i − max l)⌋ + 1 with exp(x) = σ(x)/σ(−x) from the same table
  (:func:`exact_exp`), so every token has a non-zero frequency and the total is an exact integer
  whatever the summation order (:func:`frequencies`).

The results agree with the torch model to about 1e-6 and are identical across machines, thread
counts and batch sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latcomp.exact.networks import ExactLinear, exact_sigmoid
from latcomp.exact.networks import tensor as _get
from latcomp.families import ModelShapeError
from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.text.vocabulary import BOS, PAD

#: The encoder runs groups of sentences of at most this many token positions (padding included).
CELLS = 1 << 14
#: Next-token frequencies have this many bits of resolution (the most likely token has 2^FREQ_BITS + 1).
FREQ_BITS = 30


def exact_exp(x: np.ndarray) -> np.ndarray:
    """exp(x) for x ≤ 0 as σ(x)/σ(−x) with the table sigmoid (relative error < 3e-6; x < −32 gives e^−32)."""
    x = np.minimum(np.asarray(x, np.float64), 0.0)
    return exact_sigmoid(x) / exact_sigmoid(-x)


def exact_tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x) = 2σ(2x) − 1 with the table sigmoid."""
    return 2.0 * exact_sigmoid(2.0 * x) - 1.0


def frequencies(logits: np.ndarray) -> np.ndarray:
    """Integer-valued float64 frequencies of the quantized softmax of each row of ``logits`` (module docstring)."""
    shifted = logits - logits.max(-1, keepdims=True)
    return np.floor(np.ldexp(exact_exp(shifted), FREQ_BITS)) + 1.0


class ExactGRU:
    """One direction of one layer of a torch GRU with exact products (module docstring)."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str, suffix: str):
        self.input = ExactLinear(_get(weights, f"{prefix}.weight_ih_{suffix}"),
                                 _get(weights, f"{prefix}.bias_ih_{suffix}"))
        self.state = ExactLinear(_get(weights, f"{prefix}.weight_hh_{suffix}"),
                                 _get(weights, f"{prefix}.bias_hh_{suffix}"))
        self.hidden = self.state.in_features

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """h' from the input rows ``x`` (N, in) and states ``h`` (N, hidden)."""
        gi, gh = self.input(x), self.state(h)
        k = self.hidden
        r = exact_sigmoid(gi[:, :k] + gh[:, :k])
        z = exact_sigmoid(gi[:, k:2 * k] + gh[:, k:2 * k])
        n = exact_tanh(gi[:, 2 * k:] + r * gh[:, 2 * k:])
        return (1.0 - z) * n + z * h


class NumpyTextModel:
    """The torch-free text autoencoder (:class:`latcomp.text.model.LatticeTextAE`) from its float32 tensors."""

    architecture = "text-lattice"

    def __init__(self, weights: dict[str, np.ndarray], hparams: dict[str, Any]):
        self.hparams = hparams
        self.layers = int(hparams["layers"])
        self.embedding = _get(weights, "embedding.weight")
        self.encoder = [[ExactGRU(weights, "encoder", f"l{i}{d}") for d in ("", "_reverse")]
                        for i in range(self.layers)]
        self.to_latent = ExactLinear(_get(weights, "to_latent.weight"), _get(weights, "to_latent.bias"))
        self.from_latent = ExactLinear(_get(weights, "from_latent.weight"), _get(weights, "from_latent.bias"))
        self.decoder = [ExactGRU(weights, "decoder", f"l{i}") for i in range(self.layers)]
        project = _get(weights, "project.weight")
        self.project = ExactLinear(project, np.zeros(len(project)))
        self.output = ExactLinear(_get(weights, "output.weight"), _get(weights, "output.bias"))
        try:
            self.latent = LatticeLatentCodec.from_spec(hparams["lattice"], int(hparams["latent"]),
                                                       _get(weights, "codec.lattice.delta"),
                                                       _get(weights, "codec.prior.b"))
            _ = self.latent.code
        except ValueError as exc:
            raise ModelShapeError(str(exc)) from None

    @property
    def vocab_size(self) -> int:
        return len(self.embedding)

    def encode(self, sentences: list[list[int]]) -> np.ndarray:
        """X = e_c(sentence) for token-id lists (an empty one is read as one padding token): float64 (N, latent).

        Sentences go through in groups of similar length of at most :data:`CELLS` tokens (padding
        included), so a very long line costs its own length only; the result does not depend on the grouping.
        """
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        x = np.empty((len(sentences), self.to_latent.out_features))
        start = 0
        while start < len(order):
            stop = start + 1
            while stop < len(order) and (stop + 1 - start) * max(1, len(sentences[order[stop]])) <= CELLS:
                stop += 1
            rows = order[start:stop]
            x[rows] = self._encode_group([sentences[i] for i in rows])
            start = stop
        return x

    def _encode_group(self, sentences: list[list[int]]) -> np.ndarray:
        seqs = [s or [PAD] for s in sentences]
        lengths = np.array([len(s) for s in seqs])
        ids = np.full((len(seqs), lengths.max()), PAD, np.int64)
        for row, s in enumerate(seqs):
            ids[row, :len(s)] = s
        x = self.embedding[ids]                                       # (N, T, embed)
        for forward, backward in self.encoder:
            fwd, h_f = self._run(forward, x, lengths, reverse=False)
            bwd, h_b = self._run(backward, x, lengths, reverse=True)
            x = np.concatenate([fwd, bwd], -1)
        return self.to_latent(np.concatenate([h_f, h_b], -1))

    @staticmethod
    def _run(cell: ExactGRU, x: np.ndarray, lengths: np.ndarray, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
        """Outputs (N, T, hidden) and final states of one direction over sequences of ``lengths`` (packed semantics)."""
        n, t, _ = x.shape
        h = np.zeros((n, cell.hidden))
        out = np.zeros((n, t, cell.hidden))
        for step in range(t):
            pos = lengths - 1 - step if reverse else np.full(n, step)
            live = pos >= 0 if reverse else pos < lengths
            rows = np.flatnonzero(live)
            h[rows] = cell.step(x[rows, pos[rows]], h[rows])
            out[rows, pos[rows]] = h[rows]
        return out, h

    def start(self, w: np.ndarray) -> np.ndarray:
        """The decoder's initial states (layers, N, 2·hidden) from Z − U = ``w`` (N, latent)."""
        h = exact_tanh(self.from_latent(np.asarray(w, np.float64)))
        return np.ascontiguousarray(h.reshape(len(h), self.layers, -1).transpose(1, 0, 2))

    def step(self, states: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(new states, next-token logits (N, vocab)) after feeding ``tokens`` (N,) (``<bos>`` first)."""
        new = self._advance(states, tokens)
        return new, self.logits(new[-1])

    def _advance(self, states: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The decoder GRU's states after feeding ``tokens``."""
        x = self.embedding[np.asarray(tokens, np.int64)]
        new = np.empty_like(states)
        for layer, cell in enumerate(self.decoder):
            x = new[layer] = cell.step(x, states[layer])
        return new

    def logits(self, top: np.ndarray) -> np.ndarray:
        """Next-token logits from the last layer's states (rows are independent: any batching gives the same)."""
        return self.output(self.project(top))

    def teacher_forced(self, w: np.ndarray, sentence: list[int]) -> np.ndarray:
        """Next-token logits (len + 1, vocab) of one sentence given its tokens (what the lossless encoder codes)."""
        states, tops = self.start(w[None]), []
        for token in [BOS, *sentence]:
            states = self._advance(states, np.array([token]))
            tops.append(states[-1, 0])
        return self.logits(np.stack(tops))
