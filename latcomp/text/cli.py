"""``latcomp train --arch text-*``: the text families' settings from the train command's options.

The train command's options keep their meaning: ``--lattice``, ``--levels``, ``--commitment``,
``--ema`` (the straight-through families), ``--lam`` (the final λ of the
annealing), ``--vocab-size``, ``--latent``, ``--batch-size``, ``--lr``, ``--clip``, ``--seed``, ``--data-dir``,
``--resume``/``--force``; an "epoch" is a round of ``--steps-per-epoch`` steps (one validation
and checkpoint each) and ``--max-epochs`` rounds are run. ``--text-size`` picks the network
(:data:`SIZES`). Options not given take the text defaults of
:class:`~latcomp.text.training.TextTrainConfig`, not the MNIST ones; λ reaches half its final
value after a fifth of the steps (the paper: 100k of 500k).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

#: Network sizes (embedding, GRU units per encoder direction, layers); "paper" is Appendix A.2.1's.
SIZES = {"small": (128, 128, 1), "paper": (500, 250, 2)}
#: Train-command options → TextTrainConfig fields of the same meaning.
SAME = {"lattice": "lattice", "lam": "lam", "latent": "latent", "batch_size": "batch_size", "lr": "lr",
        "clip": "clip", "seed": "seed", "steps_per_epoch": "eval_every", "levels": "levels", "commitment": "commitment",
        "ema": "ema", "vocab_size": "vocab_size"}
#: Rounds of a new run when --max-epochs is not given.
DEFAULT_ROUNDS = 8


def is_text_run(architecture: str, out: Path, resume: bool) -> bool:
    """Whether ``latcomp train`` trains a text family: ``--arch`` names one, or the run resumed in ``out`` is one."""
    from latcomp.families import families

    if resume:
        import json

        from safetensors import SafetensorError, safe_open

        from latcomp.train import CHECKPOINT

        try:
            with safe_open(str(out / CHECKPOINT), framework="np") as f:
                architecture = json.loads(f.metadata()["config"]).get("architecture", architecture)
        except (OSError, SafetensorError, ValueError, KeyError, TypeError, AttributeError):
            return False  # the usual trainer reports the missing or damaged checkpoint
    spec = families().get(architecture)
    return spec is not None and spec.modality == "text"


def text_config(ctx: click.Context, out: Path, resume: bool, options: dict[str, Any]) -> Any:
    """The :class:`TextTrainConfig` of the command line (a new run) or of the checkpoint (``resume``)."""
    from latcomp.text.training import TextTrainConfig
    from latcomp.train import CHECKPOINT, load_checkpoint

    given = {name for name in options if ctx.get_parameter_source(name) in
             (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    data_dir = str(options["data_dir"]) if options["data_dir"] else None
    if resume:
        saved = load_checkpoint(out / CHECKPOINT, tensors=False, config_type=TextTrainConfig)[0]
        rounds = options["max_epochs"] if "max_epochs" in given else saved.rounds
        return replace(saved, data_dir=data_dir, rounds=rounds)
    cfg = TextTrainConfig(architecture=options["architecture"], data_dir=data_dir,
                          **{field: options[name] for name, field in SAME.items() if name in given})
    embed, hidden, layers = SIZES[options["text_size"]]
    cfg = replace(cfg, embed=embed, hidden=hidden, layers=layers, rounds=options["max_epochs"] or DEFAULT_ROUNDS)
    return replace(cfg, anneal_half=max(1, cfg.max_steps // 5))


class EchoReporter:
    """One line per round (and a progress line every 50 steps) on stdout."""

    def step(self, step: int, steps: int, metrics: dict[str, float]) -> None:
        if step % 50 == 0:
            click.echo(f"step {step}/{steps}  train NLL {metrics['nll_bits_per_word']:.3f}  "
                       f"rate {metrics['rate_bits_per_word']:.3f} bits/word")

    def round(self, r: dict[str, Any]) -> None:
        real = (f"  real (Z = K(X+U)): NLL {r['valid_real_nll_bits_per_word']:.3f} + rate "
                f"{r['valid_real_rate_bits_per_word']:.3f}") if "valid_real_nll_bits_per_word" in r else ""
        click.echo(f"step {r['step']}  λ {r['lam']:.3f}  valid NLL {r['valid_nll_bits_per_word']:.3f} + rate "
                   f"{r['valid_rate_bits_per_word']:.3f} bits/word{real}  {r['seconds_per_step']:.3f} s/step"
                   f"{'  *best*' if r['best'] else ''}")


def train_command(ctx: click.Context, out: Path, resume: bool, force: bool, options: dict[str, Any]) -> None:
    """Run ``latcomp train`` for a text family (errors as one ``latcomp: error:`` line)."""
    from latcomp.text.training import train_text
    from latcomp.train import TrainingError

    if resume and force:
        raise click.UsageError("--resume and --force exclude each other")
    try:
        cfg = text_config(ctx, out, resume, options)
        state = train_text(cfg, out, resume=resume, force=force, reporter=EchoReporter())
    except (TrainingError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"done: {state.epoch * cfg.eval_every} steps, best valid {state.best_valid:.3f} bits/word at step "
               f"{state.best_epoch * cfg.eval_every}; model in {out}")


# ----------------------------------------------------------------------------- encode / decode (no torch)


def encode_file(blobs: list[tuple[str, bytes]], loaded: Any, lossless: bool, seed: int | None) -> bytes:
    """``latcomp encode`` with a text model: one UTF-8 text file (any text) → a container."""
    from latcomp.errors import InputError
    from latcomp.text.codec import compress

    if len(blobs) != 1:
        raise InputError(f"a text model encodes one text file at a time, got {len(blobs)} inputs")
    source, data = blobs[0]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source} is not UTF-8 text (byte {exc.start})") from None
    return compress(text, loaded, lossless=lossless, seed=seed)


def decode_file(data: bytes, out: str, model: Path | None, force: bool) -> None:
    """``latcomp decode`` of a text file: the text (lossless: the input byte for byte) to ``out`` or stdout,
    with ``model`` or else the shipped text model."""
    from latcomp.fileio import atomic_write_bytes, check_output, write_stdout
    from latcomp.modelfile import DEFAULT_TEXT_MODEL
    from latcomp.text.codec import decompress

    model = model or DEFAULT_TEXT_MODEL
    if out != "-":
        check_output(out, force)
    text = decompress(data, model).encode("utf-8")
    if out == "-":
        write_stdout(text)
    else:
        atomic_write_bytes(out, text, overwrite=force)
