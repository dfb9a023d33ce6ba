"""Training the text autoencoder: batches of sentences, λ annealing, evaluation, resumable step checkpoints.

The objective of a step is Σ (NLL + λ_t·rate) / Σ tokens over the batch (per predicted token, as
OpenNMT normalises), with λ annealed as in Appendix A.2.1: λ_t = λ·t/(t + ``anneal_half``), near 0
at the start, λ/2 at step ``anneal_half`` and λ asymptotically (the paper: ½ at 100k of 500k steps).

Reproducibility: step s takes its sentences from the shuffle of epoch ⌊s/steps_per_epoch⌋ (drawn
from (seed, epoch)) and its noise from the generator of its round (drawn from (seed, 2^32 + round)).
A round is ``eval_every`` steps, after which the run is validated and checkpointed (one safetensors
file replaced atomically, :func:`latcomp.train.save_checkpoint`; the run state is
:class:`latcomp.train.RunState` with rounds for epochs), so a resumed run computes what an
uninterrupted one would. The best-validation model is kept as ``model.safetensors`` + ``config.json``
+ ``vocabulary.json``.

Numbers are per **word**: the tokens of the sentence (words and marks as in the corpus's
``valid.txt``), not counting ``<eos>``, whose NLL is included in the sentence's NLL.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latcomp.fileio import atomic_write_text
from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.modelfile import save_model
from latcomp.text.corpus import load_sentences
from latcomp.text.model import TEXT_MODELS, Batch, LatticeTextAE, TextAutoEncoder
from latcomp.text.tokenizer import tokenize
from latcomp.text.vocabulary import DEFAULT_SIZE, SPECIALS, Vocabulary
from latcomp.text.vocabulary import FILE as VOCABULARY_FILE
from latcomp.train import (
    CHECKPOINT,
    LOG,
    RUN_FILES,
    RunState,
    TrainingError,
    epoch_generator,
    load_checkpoint,
    save_checkpoint,
)

NATS_PER_BIT = math.log(2.0)
#: Settings a resumed run may change: when it stops.
RESUMABLE = ("rounds",)
#: Noise generators are those of "epochs" from this index on (shuffles use the epochs themselves).
NOISE_STREAM = 1 << 32
#: Validation dithers come from this seed (the same numbers at every evaluation).
VALID_SEED = 12345


@dataclass
class TextTrainConfig:
    """Everything that determines a text training run (stored in its checkpoint and model config)."""

    architecture: str = "text-lattice"
    lattice: str = "z"
    vocab_size: int = DEFAULT_SIZE
    embed: int = 128
    hidden: int = 128
    layers: int = 1
    latent: int = 96
    lam: float = 1.0
    levels: int = 4  # M, words per quantizer of the straight-through families (text-st-*)
    commitment: float = 0.0  # β of their commitment loss (0: the paper's version)
    ema: float = 0.0  # γ of their EMA words (0: words learned by gradient, the paper's version)
    anneal_half: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    clip: float = 5.0
    rounds: int = 8
    eval_every: int = 250
    max_tokens: int = 64
    seed: int = 0
    data_dir: str | None = None

    @property
    def max_steps(self) -> int:
        return self.rounds * self.eval_every

    def hparams(self, vocab: int) -> dict[str, Any]:
        """The hyper-parameters of the family's spec: ``vocab``, then these settings' fields of those names."""
        from latcomp.families import family

        return {p.name: vocab if p.name == "vocab" else getattr(self, p.name)
                for p in family(self.architecture).hparams}


def lam_at(cfg: TextTrainConfig, step: int) -> float:
    """λ_t of step ``step`` (1-based; module docstring); constant λ when ``anneal_half`` is 0."""
    return cfg.lam * step / (step + cfg.anneal_half) if cfg.anneal_half else cfg.lam


# ----------------------------------------------------------------------------- data


@dataclass
class TextData:
    """The vocabulary and the token ids of the training and validation sentences."""

    vocab: Vocabulary
    train: list[list[int]]
    valid: list[list[int]]

    @classmethod
    def prepare(cls, cfg: TextTrainConfig, vocab: Vocabulary | None = None,
                sentences: tuple[list[str], list[str]] | None = None) -> TextData:
        """Tokenize the corpus (or ``sentences`` = (train, valid) as written), build or use ``vocab``;
        sentences without tokens are left out, longer ones cut to ``max_tokens``."""
        train_text, valid_text = sentences or (load_sentences("train", cfg.data_dir),
                                               load_sentences("valid", cfg.data_dir))
        train_tokens = [t[:cfg.max_tokens] for t in map(tokenize, train_text) if t]
        valid_tokens = [t[:cfg.max_tokens] for t in map(tokenize, valid_text) if t]
        vocab = vocab or Vocabulary.build(train_tokens, cfg.vocab_size)
        return cls(vocab, [vocab.ids(t) for t in train_tokens], [vocab.ids(t) for t in valid_tokens])


def step_batch(cfg: TextTrainConfig, train: list[list[int]], step: int, cache: dict[int, torch.Tensor]) -> Batch:
    """The sentences of (0-based) ``step``: a slice of its epoch's shuffle (``cache`` keeps the last shuffle)."""
    per_epoch = len(train) // cfg.batch_size
    epoch, index = divmod(step, per_epoch)
    if epoch not in cache:
        cache.clear()
        cache[epoch] = torch.randperm(len(train), generator=epoch_generator(cfg.seed, epoch))
    rows = cache[epoch][index * cfg.batch_size:(index + 1) * cfg.batch_size].tolist()
    return Batch.of([train[r] for r in rows])


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: TextAutoEncoder, sentences: list[list[int]], batch_size: int = 256,
             seed: int = VALID_SEED) -> dict[str, float]:
    """Bits per word of the NLL and rate (and their sum) at the final λ, with fixed dithers from ``seed``.

    A lattice model is also evaluated as the codec runs it: Z = K_Λ(X + U) (numpy, the frozen
    float32 scales), the decoder at Z − U, and the rate as the real code length −log₂ P(Z | U).
    """
    gen = epoch_generator(seed, NOISE_STREAM)
    totals = np.zeros(4)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = Batch.of(sentences[start:start + batch_size])
            out = model(batch, generator=gen)
            real = quantized_terms(model, batch, gen) if isinstance(model, LatticeTextAE) else (0.0, 0.0)
            totals += [out.distortion.sum().item(), out.rate.sum().item(), *real]
    words = sum(len(s) for s in sentences)
    nll, rate = float(totals[0] / words / NATS_PER_BIT), float(totals[1] / words / NATS_PER_BIT)
    result = {"nll_bits_per_word": nll, "rate_bits_per_word": rate, "bits_per_word": nll + rate, "words": words,
              "sentences": len(sentences)}
    if isinstance(model, LatticeTextAE):
        result.update(real_nll_bits_per_word=float(totals[2] / words / NATS_PER_BIT),
                      real_rate_bits_per_word=float(totals[3] / words))
    return result


def quantized_terms(model: LatticeTextAE, batch: Batch, gen: torch.Generator) -> tuple[float, float]:
    """(Σ NLL in nats at Z − U, Σ real code length of Z in bits) of a batch, Z = K_Λ(e_c(D) + U)."""
    tensors = model.codec_tensors()
    codec = LatticeLatentCodec(model.product, tensors["lattice.delta"].double().numpy(),
                               tensors["prior.b"].double().numpy())
    x = model.encode(batch).double().numpy()
    u = codec.dither(torch.rand(x.shape, generator=gen, dtype=torch.float64).numpy())
    k = codec.quantize(x, u)
    w = torch.from_numpy(codec.reconstruct(k, u)).float()
    return model.token_nll(w, batch).sum().item(), float(-codec.code.log2_prob(k, u).sum())


# ----------------------------------------------------------------------------- the run


class TextReporter:
    """Progress callbacks (silent by default)."""

    def step(self, step: int, steps: int, metrics: dict[str, float]) -> None:
        pass

    def round(self, record: dict[str, Any]) -> None:
        pass


def train_text(cfg: TextTrainConfig, out: str | Path, resume: bool = False, force: bool = False,
               reporter: TextReporter | None = None,
               sentences: tuple[list[str], list[str]] | None = None) -> RunState:
    """Train (or resume) a text model into ``out`` (module docstring); return the final run state.

    A new run needs ``out`` missing or empty unless ``force``; ``resume`` continues from its checkpoint
    with the recorded settings (only :data:`RESUMABLE` and ``data_dir`` are taken from ``cfg``).
    ``sentences`` = (train, valid) as written replaces the corpus.
    """
    if resume and force:
        raise ValueError("resume and force exclude each other")
    out, reporter = Path(out), reporter or TextReporter()
    model_sd: dict[str, torch.Tensor] | None = None
    if resume:
        saved, state, model_sd, opt_sd = load_checkpoint(out / CHECKPOINT, config_type=TextTrainConfig)
        cfg = replace(saved, data_dir=cfg.data_dir, **{k: getattr(cfg, k) for k in RESUMABLE})
        vocab: Vocabulary | None = Vocabulary.load(out)
    else:
        _check_new_run_dir(out, force)
        state, vocab = RunState(), None
    check_settings(cfg)
    data = TextData.prepare(cfg, vocab, sentences)
    if len(data.train) < cfg.batch_size or not data.valid:
        raise TrainingError(f"need at least {cfg.batch_size} training sentences and one validation sentence")
    if force:
        for name in (*RUN_FILES, VOCABULARY_FILE):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = TEXT_MODELS[cfg.architecture](**cfg.hparams(len(data.vocab)))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if model_sd is not None:
        model.load_state_dict(model_sd)
        opt.load_state_dict(opt_sd)
    else:
        data.vocab.save(out)
    while state.epoch < cfg.rounds:
        _train_round(model, opt, data, cfg, state, reporter, out)
    return state


def check_settings(cfg: TextTrainConfig) -> None:
    """The model's hyper-parameters against its family's spec, before any work (TrainingError)."""
    from latcomp.families import FamilyError, check_hparams, family

    if cfg.architecture not in TEXT_MODELS:
        raise TrainingError(f"unknown text architecture {cfg.architecture!r}; known: {', '.join(TEXT_MODELS)}")
    try:
        check_hparams(family(cfg.architecture), cfg.hparams(cfg.vocab_size + len(SPECIALS)))
    except FamilyError as exc:
        raise TrainingError(f"invalid settings: {exc}") from None


def _train_round(model: TextAutoEncoder, opt: torch.optim.Optimizer, data: TextData, cfg: TextTrainConfig,
                 state: RunState, reporter: TextReporter, out: Path) -> None:
    """Round ``state.epoch + 1``: ``eval_every`` steps, then validation and the round's files."""
    start, first = time.perf_counter(), state.epoch * cfg.eval_every
    last = first + cfg.eval_every
    gen, shuffles = epoch_generator(cfg.seed, NOISE_STREAM + state.epoch), {}
    totals = np.zeros(3)
    model.train()
    for step in range(first, last):
        batch = step_batch(cfg, data.train, step, shuffles)
        out_ = model(batch, generator=gen, lam=lam_at(cfg, step + 1))
        loss = out_.loss.sum() / out_.tokens.sum()
        if not math.isfinite(loss.item()):
            raise TrainingError(f"the training loss at step {step + 1} is {loss.item()}: training diverged and was "
                                f"stopped before saving (try a smaller learning rate)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        words = float(batch.lengths.sum())
        totals += [out_.distortion.sum().item() / words, out_.rate.sum().item() / words, 1]
        reporter.step(step + 1, cfg.max_steps, {"nll_bits_per_word": float(totals[0] / totals[2] / NATS_PER_BIT),
                                                "rate_bits_per_word": float(totals[1] / totals[2] / NATS_PER_BIT)})
    train_seconds = time.perf_counter() - start
    valid = evaluate(model, data.valid)
    seconds = time.perf_counter() - start
    improved = bool(valid["bits_per_word"] < state.best_valid)
    train_nll, train_rate = (float(t / totals[2] / NATS_PER_BIT) for t in totals[:2])
    record = {"step": last, "lam": lam_at(cfg, last), "train_nll_bits_per_word": train_nll,
              "train_rate_bits_per_word": train_rate,
              **{f"valid_{k}": v for k, v in valid.items()}, "seconds": seconds,
              "seconds_per_step": train_seconds / (last - first), "best": improved}
    state.epoch, state.seconds = state.epoch + 1, state.seconds + seconds
    state.log.append(record)
    if improved:
        state.best_epoch, state.best_valid = state.epoch, valid["bits_per_word"]
        save_model(model, out, training={"config": asdict(cfg), "best_step": last, "valid": valid,
                                         "seconds": state.seconds})
    save_checkpoint(out / CHECKPOINT, model, opt, cfg, state)
    atomic_write_text(out / LOG, "".join(json.dumps(r) + "\n" for r in state.log))
    reporter.round(record)


def _check_new_run_dir(out: Path, force: bool) -> None:
    """A new run goes into a missing or empty directory, or anywhere with ``force``."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out} exists and is not a directory")
    if not force and out.exists() and any(out.iterdir()):
        hint = "pass --resume to continue it or --force" if (out / CHECKPOINT).exists() else "pass --force"
        raise TrainingError(f"{out} is not empty; {hint} to start over")


def load_text_model(directory: str | Path) -> tuple[TextAutoEncoder, Vocabulary]:
    """The torch model and vocabulary of a text model directory (checked by :func:`latcomp.modelfile.load_model`)."""
    from latcomp.modelfile import load_model

    return load_model(directory), Vocabulary.load(directory)
