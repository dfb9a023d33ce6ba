"""Dithered SGD (Section 3.2): training loop, checkpoints, resume, per-epoch log.

The loop follows the paper's MNIST protocol: batch 100, Adam (lr 5e-4), one
fresh dither per example per step, keep the model with the best validation
loss, stop when ``patience`` epochs pass without improvement.

Reproducibility: the model is initialised from ``seed`` and epoch e draws its
shuffle and dithers from a generator seeded with (seed, e), so a run resumed
from the checkpoint at the end of epoch e−1 computes exactly what an
uninterrupted run would have. The checkpoint is one safetensors file (model +
Adam state, with the run state and the epoch log as JSON metadata) replaced
atomically after every epoch; ``train-log.jsonl`` is rewritten from it.

Nothing is lost by mistake: a new run refuses a non-empty directory unless told
to start over (``force``), resuming needs a checkpoint, impossible settings fail
before any work, and a non-finite loss stops the run before it is saved
(:class:`TrainingError`), so the files on disk stay those of the last good epoch.

Several processes (``torchrun``, :mod:`latcomp.distributed`): every process draws the
same epoch generator, builds the same global batch of ``batch_size`` examples and the
same dithers for all of it, and takes its contiguous share; DistributedDataParallel
averages the gradients, so a step is the single-process step on the global batch (up to
the order of float sums). Rank 0 alone reads and writes ``out`` and validates.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latcomp.families import family, load_object
from latcomp.nn.registry import MODELS, build_model

from .data import dynamic_mnist_images, load_dataset
from .distributed import SINGLE, World, current_world, unwrap
from .fileio import atomic_write, atomic_write_text
from .image_folder import center_crops, crop_batches, load_image_folder
from .modelfile import CONFIG, WEIGHTS, save_model
from .progress import Progress, TrainProgress

CHECKPOINT = "checkpoint.safetensors"
LOG = "train-log.jsonl"
#: The files of a run: what ``force`` removes before starting over (anything else in the directory stays).
RUN_FILES = (WEIGHTS, CONFIG, CHECKPOINT, LOG)
#: Settings a resumed run may change: the stopping rule, not what the epochs compute.
RESUMABLE = ("max_epochs", "patience")
NATS_PER_BIT = math.log(2.0)
#: Photo validation: centre crops of this side from (at most) this many evenly spaced validation images.
VALID_CROP, VALID_IMAGES = 256, 24


#: Training data: an (N, 784) tensor (MNIST) or a list of (H, W, 3) uint8 photos.
TrainData = Any


class TrainingError(Exception):
    """A run cannot start or go on: impossible settings, an unreadable checkpoint, or a diverging loss."""


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored with the model)."""

    architecture: str = "lattice-vae"
    dataset: str = "binarized-mnist"
    hidden: int = 300
    latent: int = 40
    lam: float = 1.0
    batch_size: int = 100
    lr: float = 5e-4
    patience: int = 50
    max_epochs: int | None = None
    seed: int = 0
    data_dir: str | None = None
    levels: int = 4  # M, words per quantizer of the straight-through baselines (st-*)
    commitment: float = 0.0  # their commitment loss β (0: the paper's version; latcomp.nn.quantizers)
    ema: float = 0.0  # their EMA decay γ of the words (0: words learned by gradient, the paper's version)
    lattice: str = "z"  # lattice spec of the lattice VAE (latcomp.lattices.product)
    channels: int = 64  # N, hidden channels of the photo model
    crop: int = 128  # side of the random training crops (photos)
    downscale: int = 1  # photos: each training image's sides divided by this before cropping (box filter)
    steps_per_epoch: int = 250  # photos: an epoch is this many batches of random crops
    clip: float = 0.0  # gradient-norm clipping (0: none)
    init: str | None = None  # start from this model directory's weights (fine-tuning), not from random ones
    lr_drop: int | None = None  # from this epoch on the learning rate is lr · LR_DROP_FACTOR (None: constant)

    def hparams(self) -> dict[str, Any]:
        """The hyper-parameters of the family's spec: these settings' fields of those names, else the spec's
        defaults (e.g. ``data_dim`` 784)."""
        return {p.name: getattr(self, p.name, p.default) for p in family(self.architecture).hparams}


#: Step decay of the learning rate (TrainConfig.lr_drop): the final epochs anneal at a tenth of the rate.
LR_DROP_FACTOR = 0.1


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """Adam's learning rate in (1-based) ``epoch``: ``cfg.lr``, times :data:`LR_DROP_FACTOR` from ``cfg.lr_drop`` on."""
    return cfg.lr * LR_DROP_FACTOR if cfg.lr_drop is not None and epoch >= cfg.lr_drop else cfg.lr


def default_config(architecture: str = "lattice-vae", **settings: Any) -> TrainConfig:
    """A :class:`TrainConfig` for ``architecture`` with its family's training defaults
    (:attr:`latcomp.families.Family.training`), overridden by ``settings``."""
    return TrainConfig(architecture=architecture, **{**family(architecture).training, **settings})


@dataclass
class RunState:
    """What a checkpoint records besides tensors."""

    epoch: int = 0
    best_epoch: int = 0
    best_valid: float = math.inf
    seconds: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator for epoch ``epoch``'s shuffle and dithers, a function of (seed, epoch) only."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def evaluate(model: torch.nn.Module, data: torch.Tensor, seed: int = 12345,
             batch_size: int = 1000, dithers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Mean loss (the negative ELBO when λ = 1), rate (nats and bits) and distortion over ``data``.

    Each example is evaluated with ``dithers`` independent dithers drawn from ``seed``,
    so repeated calls give identical numbers (the validation criterion of training).
    ``progress(done, total)`` is called after every batch (rows evaluated so far).
    """
    gen = torch.Generator().manual_seed(seed)
    totals = np.zeros(3)
    model.eval()
    with torch.no_grad():
        for repeat in range(dithers):
            for start in range(0, len(data), batch_size):
                out = model(data[start:start + batch_size], generator=gen)
                totals += [out.loss.sum().item(), out.rate.sum().item(), out.distortion.sum().item()]
                if progress:
                    progress(repeat * len(data) + start + len(out.loss), len(data) * dithers)
    loss, rate, distortion = (float(t) for t in totals / (len(data) * dithers))
    return {"loss": loss, "rate_nats": rate, "rate_bits": rate / NATS_PER_BIT, "distortion": distortion,
            **photo_metrics(data, rate, distortion)}


def photo_metrics(data: torch.Tensor, rate_nats: float, mse: float) -> dict[str, float]:
    """For image batches (B, 3, H, W): bits per pixel and the PSNR of the mean MSE (0–255 scale); {} otherwise."""
    if data.ndim != 4:
        return {}
    return {"bpp": rate_nats / NATS_PER_BIT / (data.shape[2] * data.shape[3]),
            "psnr": 10.0 * math.log10(255.0**2 / mse) if mse > 0 else math.inf}


def read_train_log(directory: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run's ``train-log.jsonl`` ([] if there is none)."""
    path = Path(directory) / LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _epoch_batches(cfg: TrainConfig, train: TrainData, gen: torch.Generator
                   ) -> tuple[int, Iterator[torch.Tensor]]:
    """The number of steps of an epoch and its batches (the modality's, :data:`TRAINING_DATA`)."""
    return _training_data(cfg).batches(cfg, train, gen)


def _forward_share(model: torch.nn.Module, batch: torch.Tensor, gen: torch.Generator, world: World) -> Any:
    """This process's share of the global ``batch`` through ``model`` (maybe wrapped), dithers for all of it.

    Models with ``noise_shape`` get their uniforms v drawn here for the whole global batch (the draw
    their forward would make) and every process takes its examples' rows; the others (one process
    only, :func:`_check_world`) draw their own noise.
    """
    net = unwrap(model)
    if not hasattr(net, "noise_shape"):
        return model(batch, generator=gen)
    v = torch.rand(net.noise_shape(batch), generator=gen, dtype=batch.dtype)
    return model(world.shard(batch, len(batch)), v=world.shard(v, len(batch)))


def _train_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, data: TrainData,
                 cfg: TrainConfig, epoch: int, progress: Progress | None = None,
                 world: World = SINGLE) -> dict[str, Any]:
    """One epoch of dithered SGD; ``progress`` is told the running means every 10 steps and after the last.
    Returns the epoch's mean loss, rate (nats) and distortion, its steps and its last progress ``means``."""
    gen = epoch_generator(cfg.seed, epoch)
    steps, batches = _epoch_batches(cfg, data, gen)
    for group in opt.param_groups:
        group["lr"] = epoch_lr(cfg, epoch)
    totals = np.zeros(3)
    model.train()
    for step, batch in enumerate(batches):
        out = _forward_share(model, batch, gen, world)
        loss = out.loss.mean()
        stats = world.mean(torch.stack([loss.detach(), out.rate.mean().detach(), out.distortion.mean().detach()]))
        stats = stats.tolist()  # global-batch means: loss, rate, distortion
        _require_finite(stats[0], f"training loss at epoch {epoch}, step {step + 1}", epoch, world)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # with several processes: the gradients are averaged over them here
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        totals += stats
        if progress and (step % 10 == 0 or step == steps - 1):
            progress(TrainProgress(epoch, step + 1, steps, _running_means(totals / (step + 1), batch)))
    loss, rate, distortion = (float(t) for t in totals / steps)
    return {"loss": loss, "rate_nats": rate, "distortion": distortion, "steps": steps,
            "means": _running_means(totals / steps, batch)}


def _running_means(mean: np.ndarray, batch: torch.Tensor) -> dict[str, float]:
    """The progress metrics of mean (loss, rate in nats, distortion) over an epoch's steps so far."""
    return {"loss": float(mean[0]), "rate_bits": float(mean[1] / NATS_PER_BIT), "distortion": float(mean[2]),
            **photo_metrics(batch, mean[1], mean[2])}


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    cfg: TrainConfig, state: RunState) -> None:
    """Model and optimizer tensors plus JSON run state in one atomically replaced file."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for idx, slots in opt_state["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).contiguous()
    meta = {"config": json.dumps(asdict(cfg)), "state": json.dumps(asdict(state)),
            "param_groups": json.dumps(opt_state["param_groups"])}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _require_finite(value: float, what: str, epoch: int, world: World = SINGLE) -> None:
    """Stop the run (TrainingError) before a NaN or infinite loss can be saved (``value``: the same everywhere)."""
    if not math.isfinite(value):
        raise world.alike(TrainingError(f"the {what} is {value}: training diverged and was stopped before "
                                        f"saving anything of epoch {epoch} (try a smaller learning rate)"))


def read_checkpoint_config(out: str | Path) -> TrainConfig:
    """The settings recorded in the checkpoint of run directory ``out`` (FileNotFoundError if there is none)."""
    return load_checkpoint(Path(out) / CHECKPOINT, tensors=False)[0]


def load_checkpoint(path: Path, tensors: bool = True, config_type: type = TrainConfig, state_type: type = RunState
                    ) -> tuple[Any, Any, dict[str, torch.Tensor], dict[str, Any]]:
    """Inverse of :func:`save_checkpoint`: config, run state, model state dict, optimizer state dict.

    ``tensors=False`` reads only the metadata (the state dicts come back empty). A missing
    checkpoint is FileNotFoundError; a damaged one is TrainingError. The config and state are
    ``config_type`` and ``state_type`` (dataclasses; other trainers than this one, e.g. latcomp.text's).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent}: no checkpoint to resume ({path.name} is missing); "
                                f"leave out --resume to start a new run")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            loaded = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
        config, state = config_type(**json.loads(meta["config"])), state_type(**json.loads(meta["state"]))
        param_groups = json.loads(meta["param_groups"])
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0]})") from None
    model_sd = {k[6:]: v for k, v in loaded.items() if k.startswith("model.")}
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in loaded.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    return config, state, model_sd, {"state": opt_state, "param_groups": param_groups}


class DigitData:
    """Training data of the digit families: MNIST splits (or the arrays given), an epoch of shuffled batches."""

    #: Validation images per evaluation batch.
    valid_batch = 1000

    @staticmethod
    def load(cfg: TrainConfig, data: tuple[Any, Any] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(training, validation) images as float32 (N, 784): the splits of ``cfg.dataset``, or ``data``."""
        if data is None:
            return _load_split(cfg, "train"), _load_split(cfg, "valid")
        train_data, valid_data = (torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in data)
        return train_data, valid_data

    @staticmethod
    def batches(cfg: TrainConfig, train: torch.Tensor, gen: torch.Generator) -> tuple[int, Iterator[torch.Tensor]]:
        """Every image once in shuffled batches (dynamic binarization draws a fresh binary image set first)."""
        data = _epoch_data(cfg, train, gen)
        order = torch.randperm(len(data), generator=gen)
        steps = len(data) // cfg.batch_size
        return steps, (data[order[s * cfg.batch_size:(s + 1) * cfg.batch_size]] for s in range(steps))

    @staticmethod
    def check(cfg: TrainConfig, train: torch.Tensor) -> None:
        if cfg.batch_size > len(train):
            raise TrainingError(f"the batch size {cfg.batch_size} is larger than the {len(train)} training images")


class PhotoData:
    """Training data of the photo families: a folder of photos (or the lists given), an epoch of random crops."""

    valid_batch = 8

    @staticmethod
    def load(cfg: TrainConfig, data: tuple[Any, Any] | None) -> tuple[list[np.ndarray], torch.Tensor]:
        """(training photos, validation crops): ``data`` (or the folder ``cfg.data_dir``) gives lists of (H, W, 3)
        uint8 images; validation uses the centre crops of :data:`VALID_IMAGES` evenly spaced validation images."""
        if data is None:
            if not cfg.data_dir:
                raise TrainingError("photo models train on a folder of images: pass --data-dir DIR")
            try:
                folder = load_image_folder(cfg.data_dir, min_side=cfg.crop, downscale=cfg.downscale,
                                           valid_min_side=VALID_CROP)
            except (OSError, ValueError) as exc:
                raise TrainingError(str(exc)) from None
            data = (folder.train, folder.valid)
        train_images, valid_images = list(data[0]), list(data[1])
        step = max(1, len(valid_images) // VALID_IMAGES)
        return train_images, center_crops(valid_images[::step][:VALID_IMAGES], VALID_CROP)

    @staticmethod
    def batches(cfg: TrainConfig, train: list[np.ndarray], gen: torch.Generator
                ) -> tuple[int, Iterator[torch.Tensor]]:
        """``cfg.steps_per_epoch`` batches of random crops (with random flips)."""
        return cfg.steps_per_epoch, crop_batches(train, cfg.steps_per_epoch, cfg.batch_size, cfg.crop, gen)

    @staticmethod
    def check(cfg: TrainConfig, train: list[np.ndarray]) -> None:
        """Any number of photos gives crops."""


#: The training data of each modality (:attr:`latcomp.families.Family.modality`) this loop trains.
TRAINING_DATA: dict[str, Any] = {"digits": DigitData, "photo": PhotoData}


def _training_data(cfg: TrainConfig) -> Any:
    modality = family(cfg.architecture).modality
    if modality not in TRAINING_DATA:
        raise TrainingError(f"{cfg.architecture} ({modality}) has a trainer of its own, not latcomp.train")
    return TRAINING_DATA[modality]


def _load_data(cfg: TrainConfig, data: tuple[Any, Any] | None) -> tuple[TrainData, torch.Tensor]:
    """(training data, validation tensor) of the modality (:data:`TRAINING_DATA`): MNIST splits, a folder of
    photos, or ``data`` given by the caller."""
    return _training_data(cfg).load(cfg, data)


def _load_split(cfg: TrainConfig, split: str) -> torch.Tensor:
    """A split as float32 (N, 784); dynamic-mnist's train split as intensities in [0, 1]."""
    if cfg.dataset == "dynamic-mnist" and split == "train":
        return torch.from_numpy(dynamic_mnist_images("train", cfg.data_dir).astype(np.float32) / 255.0)
    return torch.from_numpy(load_dataset(cfg.dataset, split, cfg.data_dir, seed=cfg.seed).astype(np.float32))


def _epoch_data(cfg: TrainConfig, train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The training images of one epoch: dynamic binarization draws a fresh binary image set."""
    return torch.bernoulli(train, generator=gen) if cfg.dataset == "dynamic-mnist" else train


def train(cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: Progress | None = None,
          data: tuple[Any, Any] | None = None, force: bool = False) -> RunState:
    """Train (or resume) a model into directory ``out``; return the final run state.

    A new run needs ``out`` to be missing or empty (FileExistsError otherwise);
    ``force`` starts over in a non-empty directory, removing the files of a previous
    run (:data:`RUN_FILES`) once every check has passed. With ``resume`` the run
    continues from ``out``'s checkpoint (FileNotFoundError if there is none) with the
    checkpoint's settings; only ``data_dir`` and the stopping rule (:data:`RESUMABLE`) are taken
    from ``cfg``.
    ``data`` = (train, valid) replaces ``cfg.dataset``: binary arrays (N, 784), or for photo
    models lists of (H, W, 3) uint8 images (otherwise read from the folder ``cfg.data_dir``).
    A batch larger than the training set, no validation data or a non-finite loss is
    :class:`TrainingError`.

    ``out`` receives ``model.safetensors`` + ``config.json`` (the best model so
    far), ``checkpoint.safetensors`` (the last epoch) and ``train-log.jsonl``.

    Under torchrun (module docstring) ``cfg.batch_size`` is the global batch, divisible by the
    number of processes; every process must be given the same ``data`` (or data directory).
    Only rank 0 reads or writes ``out`` (it hands the checkpoint to the others) and reports.

    ``progress`` (optional) is called with a :class:`latcomp.progress.TrainProgress` every few steps and at the
    end of every epoch (:func:`latcomp.progress.print_epochs` prints a line per epoch); without it nothing is
    printed.
    """
    if resume and force:
        raise ValueError("resume and force exclude each other")
    world = current_world()
    progress = progress if world.main else None
    out = Path(out)
    cfg, state, model_sd, opt_sd = world.from_main(lambda: _open_run(cfg, out, resume, force, world.size))
    train_data, valid_data = world.together(lambda: _checked_data(cfg, data))
    world.from_main(lambda: _prepare_run_dir(out, force))
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.architecture, **cfg.hparams())
    if cfg.init and model_sd is None:
        model.load_state_dict(initial_weights(cfg))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if model_sd is not None:
        model.load_state_dict(model_sd)
        opt.load_state_dict(opt_sd)
    net = world.wrap(model)
    while not _finished(cfg, state):
        start = time.perf_counter()
        epoch = state.epoch + 1
        tr = _train_epoch(net, opt, train_data, cfg, epoch, progress, world)
        va = world.from_main(lambda: evaluate(model, valid_data, batch_size=_training_data(cfg).valid_batch))
        _require_finite(va["loss"], f"validation loss after epoch {epoch}", epoch, world)
        seconds = time.perf_counter() - start
        improved = bool(va["loss"] < state.best_valid)
        record = {"epoch": epoch, "train_loss": tr["loss"], "train_rate_nats": tr["rate_nats"],
                  "train_distortion": tr["distortion"], "valid_loss": va["loss"],
                  "valid_rate_nats": va["rate_nats"], "valid_rate_bits": va["rate_bits"],
                  "valid_distortion": va["distortion"], "seconds": seconds, "best": improved,
                  **{f"valid_{k}": va[k] for k in ("bpp", "psnr") if k in va}}
        state.epoch, state.seconds = epoch, state.seconds + seconds
        state.log.append(record)
        if improved:
            state.best_epoch, state.best_valid = epoch, va["loss"]
        world.from_main(partial(_save_epoch, out, model, opt, cfg, state, improved))
        if progress:
            progress(TrainProgress(epoch, tr["steps"], tr["steps"], tr["means"], record))
    return state


def _open_run(cfg: TrainConfig, out: Path, resume: bool, force: bool, processes: int
              ) -> tuple[TrainConfig, RunState, dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """The start of a run (rank 0): the checkpoint to resume, or a new run's directory checked; its settings
    checked for ``processes`` processes. Returns (settings, run state, model and optimizer state dicts)."""
    if resume:
        saved, state, model_sd, opt_sd = load_checkpoint(out / CHECKPOINT)
        cfg = replace(saved, data_dir=cfg.data_dir, **{name: getattr(cfg, name) for name in RESUMABLE})
    else:
        _check_new_run_dir(out, force)
        state, model_sd, opt_sd = RunState(), None, None
    _check_world(cfg, processes)
    return cfg, state, model_sd, opt_sd


def _check_world(cfg: TrainConfig, processes: int) -> None:
    """Several processes share the global batch equally and need a model whose dithers they can share."""
    if processes == 1:
        return
    if cfg.batch_size % processes:
        raise TrainingError(f"the batch size {cfg.batch_size} is the global batch of the {processes} processes "
                            f"and must be divisible by {processes}")
    if not hasattr(MODELS[cfg.architecture], "noise_shape"):
        raise TrainingError(f"{cfg.architecture} trains in one process only (several processes: "
                            f"{', '.join(a for a, m in MODELS.items() if hasattr(m, 'noise_shape'))})")


def _checked_data(cfg: TrainConfig, data: tuple[Any, Any] | None) -> tuple[TrainData, torch.Tensor]:
    """:func:`_load_data`, refusing a batch larger than the training set and an empty validation set."""
    train_data, valid_data = _load_data(cfg, data)
    _training_data(cfg).check(cfg, train_data)
    if len(valid_data) == 0:
        raise TrainingError("there are no validation images")
    return train_data, valid_data


def _prepare_run_dir(out: Path, force: bool) -> None:
    """Once every check has passed: with ``force`` remove a previous run's files; create ``out``."""
    if force:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _save_epoch(out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig,
                state: RunState, improved: bool) -> None:
    """An epoch's files: the model if it ``improved``, the checkpoint, the log (each replaced atomically)."""
    if improved:
        save_model(model, out, training=_training_summary(cfg, state))
    save_checkpoint(out / CHECKPOINT, model, opt, cfg, state)
    atomic_write_text(out / LOG, "".join(json.dumps(r) + "\n" for r in state.log))


def initial_weights(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights a fine-tuning run starts from: those of the model ``cfg.init`` with ``cfg``'s λ.

    The model must have the same architecture (or one of the family's ``init_from``) and sizes.
    A family with a ``fine_tune`` start (:class:`latcomp.families.Family`) builds it from the source,
    e.g. a photo model on another lattice, its latent channels regrouped by activity into the new
    blocks (:func:`latcomp.nn.photo.relattice`); the others keep the source's weights and lattice.
    """
    from latcomp.modelfile import ModelFileError, load_model, read_config

    spec = family(cfg.architecture)
    try:
        config = read_config(cfg.init)
        source = load_model(cfg.init)
    except ModelFileError as exc:
        raise TrainingError(f"--init: {exc}") from None
    hparams = cfg.hparams()
    differs = sorted(k for k in hparams if k not in ("lam", "lattice") and config["hparams"].get(k) != hparams[k])
    if config["architecture"] not in (cfg.architecture, *spec.init_from) or differs:
        raise TrainingError(f"--init {cfg.init}: a {config['architecture']} model with other sizes "
                            f"({', '.join(differs) or 'architecture'}); fine-tuning needs the same network")
    if spec.fine_tune is not None:
        try:
            return load_object(spec.fine_tune)(source, hparams).state_dict()
        except ValueError as exc:
            raise TrainingError(f"--init {cfg.init}: {exc}") from None
    if config["hparams"].get("lattice", "z") != hparams.get("lattice", "z"):
        raise TrainingError("--init: only photo models can change lattice when fine-tuning")
    return source.state_dict()


def _check_new_run_dir(out: Path, force: bool) -> None:
    """A new run goes into a missing or empty directory, or anywhere with ``force``."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    if force or not out.exists() or not any(out.iterdir()):
        return
    if (out / CHECKPOINT).exists():
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it "
                              f"or --force to start over")
    raise FileExistsError(f"{out} is not empty; pass --force to train into it anyway (files of a previous "
                          f"run are replaced, other files are kept)")


def _finished(cfg: TrainConfig, state: RunState) -> bool:
    if cfg.max_epochs is not None and state.epoch >= cfg.max_epochs:
        return True
    return state.epoch - state.best_epoch >= cfg.patience


def _training_summary(cfg: TrainConfig, state: RunState) -> dict[str, Any]:
    return {"config": asdict(cfg), "best_epoch": state.best_epoch, "best_valid_loss": state.best_valid,
            "epochs_run": state.epoch, "seconds": state.seconds}
