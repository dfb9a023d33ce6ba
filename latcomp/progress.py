"""Progress of a training run: what :func:`latcomp.train.train` tells its optional ``progress`` callback, and
the lines that show it with their units (used by ``latcomp train`` and :func:`print_epochs`).

The units differ by modality: a digit model's loss is λ·rate + distortion in nats per image (the negative
ELBO when λ = 1, Eq. 3); a photo model's is bpp + λ·255²·MSE per pixel (``latcomp.nn.photo``), shown with
its bits per pixel and PSNR. No torch is needed here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The unit of a photo model's loss (``latcomp.nn.photo``: MSE on [0, 1]).
PHOTO_LOSS_UNIT = "bpp + λ·255²·MSE"


@dataclass(frozen=True)
class TrainProgress:
    """One report of a training run: during an epoch (every few steps and after its last; ``record`` None),
    then once at its end (``record``: the epoch's line of ``train-log.jsonl``, validation included)."""

    epoch: int
    #: Steps of this epoch done, of ``steps``.
    step: int
    steps: int
    #: Running means over the epoch's steps so far: loss, rate_bits, distortion (photo models: bpp, psnr too).
    metrics: dict[str, float]
    record: dict[str, Any] | None = None


#: The callback :func:`latcomp.train.train` takes.
Progress = Callable[[TrainProgress], None]


def loss_text(loss: float, photo: bool) -> str:
    """A loss with its unit (module docstring)."""
    return f"{loss:.4f} ({PHOTO_LOSS_UNIT})" if photo else f"{loss:.3f} nats"


def step_line(metrics: dict[str, float]) -> str:
    """The running means of an epoch: loss, rate and distortion, or for a photo model loss, bpp and PSNR."""
    if "bpp" in metrics:
        return f"loss {metrics['loss']:.3f}  {metrics['bpp']:.3f} bpp  {metrics['psnr']:.2f} dB"
    return f"loss {metrics['loss']:.2f}  rate {metrics['rate_bits']:.2f} bits  distortion {metrics['distortion']:.2f}"


def epoch_line(record: dict[str, Any]) -> str:
    """One line for an epoch of ``train-log.jsonl``: its training and validation losses with their units."""
    photo = "valid_bpp" in record
    if photo:
        scores = f"{record['valid_bpp']:.3f} bpp  {record['valid_psnr']:.2f} dB"
    else:
        scores = f"rate {record['valid_rate_bits']:.2f} bits  distortion {record['valid_distortion']:.2f} nats"
    return (f"epoch {record['epoch']:4d}  train {loss_text(record['train_loss'], photo)}  "
            f"valid {loss_text(record['valid_loss'], photo)}  {scores}  {record['seconds']:.1f}s"
            f"{'  *best*' if record['best'] else ''}")


def print_epochs(progress: TrainProgress) -> None:
    """A ``progress`` callback for Python use: one :func:`epoch_line` per epoch on standard error."""
    if progress.record is not None:
        print(epoch_line(progress.record), file=sys.stderr, flush=True)
