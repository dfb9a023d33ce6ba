"""Encoder effort for photos: each image's latents refined by gradient steps on the model's own objective.

The torch-free encoder codes y = g_a(x) (and, with a hyperprior, z = h_a(|y|)): an amortized guess, made
by one network for every image. With effort K (``latcomp encode --effort K``,
:func:`latcomp.photo.codec.compress` ``effort=K``) the latents of each image are refined by K Adam steps
on that image's objective, the one the model was trained on (:func:`latcomp.nn.photo.rd_objective`):

    L = λ·255²·MSE(x, clip(g_s(η))) + (rate of every level at its η)/(H·W),   rates in bits,

over the image's own H×W pixels (not the padding; a gray image as its R = G = B), through the model's
**fixed** synthesis g_s and entropy model (for the hyperprior: h_s and both levels' rates, η = (η_y, η_z)),
with λ from the model's config, starting from the encoder's output. The normal coder then codes the
refined latents with the file's dither, so the file decodes with the ordinary decoder, torch-free.

Two choices of η (:class:`Effort` ``method``), both with the gradient of η with respect to y equal to 1:

* ``"dithered"`` (the default): η = y − U' with a fresh dither U' at every step, the model's training
  objective for this image (Theorem 1). By the Crypto-Lemma Z − U has the law of y − U', so L's mean over
  U' is the mean real cost of the file over its dither: this minimizes the expected cost.
* ``"straight-through"``: η = K_Λ(y + U) − U with the file's own dither U (drawn from the seed, which the
  encoder knows), exactly what the decoder will see, so L is the real cost of this file (its rates the
  code lengths of Z given U); the gradient passes straight through K_Λ.

On Kodak the dithered steps gained much more (docs/results/photo-effort.md: the straight-through
steps mostly move latents across cell boundaries together and raise the real cost). Whichever the method,
the real cost L at η = Z − U is evaluated for the start and the end (and, for the straight-through method,
at every step, where it is the loss) and the best latents are kept, the encoder's own output (exactly,
in float64) included: the real objective of a file never increases with effort (for the hyperprior up to
the float h_s's rare index differences from the exact integer one, :mod:`latcomp.photo.hyper_network`).

The variables are the changes of the latents in units of each coordinate's lattice scale, so one learning
rate (decayed linearly to zero over the steps) suits every channel and model. The fresh dithers come from
a generator seeded per image, so equal inputs, seeds and efforts give equal files (with the same torch
build and thread count; the file decodes the same everywhere). Images of more than
:data:`MAX_EFFORT_PIXELS` pixels are refused: the torch synthesis and its gradient hold the whole image.
This module needs torch; the coding path does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latcomp.errors import CodecError, InputError, LimitError
from latcomp.latent_codecs import LatentCodec
from latcomp.photo.codec import padded

#: Largest image (H·W) that effort refines (1920 × 1080 fits). The torch synthesis and its gradient take
#: about 750 bytes a pixel beyond the encoder's own memory (docs/photos.md: 1.8 GB at 1920 × 1080).
MAX_EFFORT_PIXELS = 1 << 21
#: Most steps per image.
MAX_EFFORT = 10_000
#: Adam's learning rate at the first step, in units of each coordinate's lattice scale (then linear to zero).
LEARNING_RATE = 0.02
METHODS = ("dithered", "straight-through")
#: ``progress(stage, done, total)``.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Effort:
    """How the encoder refines: ``steps`` per image, the ``method`` of :data:`METHODS` and Adam's first
    ``learning_rate`` (module docstring). False when there are no steps."""

    steps: int
    method: str = METHODS[0]
    learning_rate: float = LEARNING_RATE

    def __bool__(self) -> bool:
        return self.steps > 0


def as_effort(effort: int | Effort) -> Effort:
    """``effort`` (a number of steps or an :class:`Effort`) checked: 0 … :data:`MAX_EFFORT` steps, a known method,
    a positive learning rate (InputError otherwise)."""
    steps = effort.steps if isinstance(effort, Effort) else effort
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 0 <= steps <= MAX_EFFORT:
        raise InputError(f"effort must be a whole number of steps from 0 to {MAX_EFFORT}, got {steps!r}")
    if not isinstance(effort, Effort):
        return Effort(int(steps))
    if effort.method not in METHODS or not effort.learning_rate > 0:
        raise InputError(f"unknown effort method {effort.method!r} or learning rate {effort.learning_rate!r}")
    return effort


def check(photos: Sequence[np.ndarray], effort: int | Effort) -> Effort:
    """:func:`as_effort`, and LimitError for an image of more than :data:`MAX_EFFORT_PIXELS` pixels (the codecs
    call this before any work)."""
    for im in photos:
        if im.shape[0] * im.shape[1] > MAX_EFFORT_PIXELS:
            raise LimitError(f"encoder effort takes images of at most {MAX_EFFORT_PIXELS} pixels (a "
                             f"{im.shape[1]}×{im.shape[0]} image is larger); encode it without effort")
    return as_effort(effort)


@dataclass(frozen=True)
class Level:
    """One latent of a call's images as the coder codes it: the rows of every image (float64 (rows, dim)),
    the file's dithers of those rows, the numpy codec, and each image's (rows, columns) of positions."""

    rows: np.ndarray
    dither: np.ndarray
    codec: LatentCodec
    shapes: Sequence[tuple[int, int]]


def refine(model: Any, photos: Sequence[np.ndarray], levels: Sequence[Level], effort: int | Effort,
           progress: Progress | None = None) -> list[np.ndarray]:
    """The rows of every level, each image's refined by ``effort`` (module docstring); the codecs call this.

    ``model``: the :class:`latcomp.runtime.model.LoadedModel` whose torch module the steps go through;
    ``photos``: the images of the call (uint8 (H, W) or (H, W, 3)), whose latents ``levels`` hold in order;
    ``progress("effort", done, total)`` after every step. Raises InputError for a bad ``effort``,
    LimitError for an image above :data:`MAX_EFFORT_PIXELS` and CodecError without torch.
    """
    effort = check(photos, effort)
    out = [level.rows.copy() for level in levels]
    if not effort:
        return out
    net = _torch_model(model)
    starts = [0] * len(levels)
    for i, im in enumerate(photos):
        counts = [int(np.prod(level.shapes[i])) for level in levels]
        pieces = [_Piece(level.rows[a:a + n], level.dither[a:a + n], level.codec, tuple(level.shapes[i]))
                  for level, a, n in zip(levels, starts, counts, strict=True)]

        def report(done: int, i: int = i) -> None:
            if progress:
                progress("effort", i * effort.steps + done, len(photos) * effort.steps)

        for j, (rows, a, n) in enumerate(zip(_refine_image(net, im, pieces, effort, report), starts, counts,
                                             strict=True)):
            out[j][a:a + n] = rows
        starts = [a + n for a, n in zip(starts, counts, strict=True)]
    return out


@dataclass(frozen=True)
class _Piece:
    """One image's part of a :class:`Level`."""

    rows: np.ndarray
    dither: np.ndarray
    codec: LatentCodec
    shape: tuple[int, int]


def _torch_model(model: Any) -> Any:
    """The torch module of a loaded model, frozen (CodecError in one line when torch is missing)."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise CodecError("encoder effort needs torch, which is not installed (pip install torch); "
                         "encoding without effort needs no torch") from None
    from latcomp.modelfile import load_model

    return load_model(model.directory).requires_grad_(False)


def _refine_image(net: Any, image: np.ndarray, pieces: Sequence[_Piece], effort: Effort,
                  report: Callable[[int], None]) -> list[np.ndarray]:
    """The refined rows of one image's pieces (module docstring)."""
    import torch

    from latcomp.nn.photo import from_rows, rd_objective

    height, width = image.shape[:2]
    x = torch.from_numpy(padded(image)[:height, :width].transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
    scales = [np.asarray(p.codec.scale, np.float64) for p in pieces]
    moves = [torch.zeros(p.rows.shape, requires_grad=True) for p in pieces]
    generator = np.random.default_rng(0)

    def rows() -> list[np.ndarray]:
        return [p.rows + m.detach().double().numpy() * s for p, m, s in zip(pieces, moves, scales, strict=True)]

    def decoder_input(p: _Piece, move: torch.Tensor, scale: np.ndarray, y: np.ndarray, coded: bool) -> torch.Tensor:
        """η of the rows y (the coded Z − U, or y − U' with a fresh dither), its gradient that of y."""
        eta = p.codec.reconstruct(p.codec.quantize(y, p.dither), p.dither) if coded else \
            y - p.codec.dither(generator.random(y.shape))
        eta = torch.from_numpy(eta.astype(np.float32)) + (move - move.detach()) * torch.from_numpy(
            scale.astype(np.float32))
        return from_rows(eta, (1, eta.shape[1], *p.shape))

    def cost(coded: bool) -> torch.Tensor:
        etas = [decoder_input(*args, coded) for args in zip(pieces, moves, scales, rows(), strict=True)]
        rate, x_hat = net.latent_terms(etas)
        return rd_objective(net.lam, x, rate, x_hat[..., :height, :width].clamp(0.0, 1.0)).loss.sum()

    coded = effort.method == "straight-through"
    best = _Best()
    optimizer = torch.optim.Adam(moves, lr=effort.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / effort.steps)
    if not coded:
        with torch.no_grad():
            best.offer(float(cost(True)), rows())
    for step in range(effort.steps):
        optimizer.zero_grad()
        loss = cost(coded)
        if coded:
            best.offer(float(loss.detach()), rows())
        loss.backward()
        optimizer.step()
        schedule.step()
        report(step + 1)
    with torch.no_grad():
        best.offer(float(cost(True)), rows())
    return best.rows


class _Best:
    """The rows of the lowest real cost offered so far."""

    def __init__(self) -> None:
        self.cost, self.rows = float("inf"), []

    def offer(self, cost: float, rows: list[np.ndarray]) -> None:
        if cost < self.cost:
            self.cost, self.rows = cost, rows
