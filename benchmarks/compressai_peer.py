"""Photo benchmark, the same-budget CompressAI peers: bmshj2018-factorized and -hyperprior trained like latcomp's.

CompressAI's ``FactorizedPrior(N=64, M=128)`` (Ballé et al. 2018, factorized prior: the same
g_a/g_s as latcomp's ``photo-factorized``, uniform noise + EntropyBottleneck instead of the
dithered lattice with a Laplace prior) is trained on exactly the crops latcomp's run sees, with
latcomp's batch, steps per epoch, learning rate (and its drop), clipping, seed and λ, and evaluated
on the 24 Kodak images with real bitstreams. ``train --peer hyperprior`` trains CompressAI's
``ScaleHyperprior(N=64, M=128)`` instead (Ballé et al. 2018, scale hyperprior, "bmshj2018-hyperprior"),
the peer of latcomp's ``photo-hyperprior``: the same g_a/g_s, h_a/h_s of the same shapes (h_a on
|y|; CompressAI's h_s ends in a ReLU and gives Gaussian scales, latcomp's gives Laplace scale indices),
the hyper-latent z with CompressAI's EntropyBottleneck, y with a GaussianConditional, where latcomp
has a dithered lattice at both levels. Three subcommands, run from the repository root with the
peer's own virtual environment (never the main one)::

    OMP_NUM_THREADS=1 $VENV/bin/python -m benchmarks.compressai_peer train [--resume]
    OMP_NUM_THREADS=1 $VENV/bin/python -m benchmarks.compressai_peer eval
    OMP_NUM_THREADS=1 python -m benchmarks.compressai_peer check-crops   # either environment

**train** (into ``models/compressai-peer-q4/``): the settings are those of the latcomp run
``--latcomp-run`` (default ``models/photo-q4``, its ``config.json`` ``training.config``): batch 8,
128² crops, 250 steps an epoch, Adam lr 3e-4, gradient-norm clip 1.0, seed 0, λ = 0.025. Loss
CompressAI's ``RateDistortionLoss``: λ·255²·MSE + bpp (MSE on [0, 1], bpp of the noisy
latent's likelihoods). The EntropyBottleneck quantiles have CompressAI's aux loss with their own
Adam (lr 1e-3), stepped after the main one, exactly as CompressAI's ``examples/train.py``
(``configure_optimizers`` and ``train_one_epoch``: main optimizer on every parameter except
``*.quantiles``, clip of ``model.parameters()`` before its step, then ``aux_loss().backward()``
and the aux step).

The crops are latcomp's own: epoch e draws from ``latcomp.train.epoch_generator(seed, e)``
through ``latcomp.train._epoch_batches`` (``crop_batches``: random image, top, left, flip per
crop), and after each batch this script draws and discards the dither uniforms latcomp's loop
draws from the same generator (``torch.rand(model.noise_shape(batch))``, latcomp's
``_forward_share``), so every later batch is the one latcomp trains on. ``check-crops`` runs
latcomp's real ``_train_epoch`` on a recording model and compares (module ``check_crops``).
CompressAI's own noise comes from torch's global generator, seeded per epoch from (seed, epoch,
1), so a resumed run computes what an uninterrupted one would have.

One atomically replaced ``checkpoint.safetensors`` per epoch (model, both Adam states; the
run state and config as JSON metadata), ``config.json`` (the settings) and
``train-log.jsonl`` (one record per epoch, with a validation on the same 24 centre crops of
256² as latcomp's, CompressAI's eval-mode forward: rounded latent, likelihood bpp). ``train``
refuses a directory with a run unless ``--resume`` (or ``--force``); ``--max-epochs N`` stops at
N epochs (N·250 steps), e.g. the epoch count of latcomp's run. ``--init CHECKPOINT`` fine-tunes as
latcomp's ``--init`` does (the checkpoint's weights, fresh optimizers); with ``--latcomp-run`` set to
the latcomp fine-tune it mirrors, the peer gets that run's λ and its epochs' crops. The other rate
points of the comparison are made so, e.g. for latcomp's ``photo-z-q1`` (λ 0.0035, 4 epochs from
its base)::

    $VENV/bin/python -m benchmarks.compressai_peer train --latcomp-run models/photo-z-q1 \
        --init models/compressai-peer-q4/checkpoint.safetensors --out models/compressai-peer-ft-q1 --max-epochs 4

The latcomp run's ``lr_drop`` (its ``--lr-drop E``) is applied as there: from epoch E on Adam's
learning rate is a tenth (``latcomp.train.epoch_lr``; each epoch's ``lr`` is in the log). The
factorized runs above mirrored latcomp runs without one.

``--peer`` (``factorized``, the default, or ``hyperprior``; without it a fine-tune takes its
``--init`` checkpoint's) is recorded in ``config.json`` and the checkpoint's settings, from which
``--resume`` and ``eval`` rebuild the class (a run recorded without it is factorized). An ``--init``
checkpoint of the other class is a warm start: every top-level module whose tensors all match in
name and shape is copied, the others keep their fresh initialization, and the run prints and
records (``init.copied``, ``init.fresh``) which: a FactorizedPrior into a ScaleHyperprior copies g_a
and g_s (the two classes share them in CompressAI 1.2.8) and leaves h_a, h_s, entropy_bottleneck (y's
in the factorized, M channels; z's here, N channels) and gaussian_conditional fresh, where latcomp's
``photo-hyperprior`` warm start from its factorized ``photo-q3`` also sets h_s's last bias to the
factorized prior's scales and scales up h_a's last layer (``latcomp.nn.hyperprior.warm_start``); the
peer keeps CompressAI's own initialization of those. The recorded steps of an
``--init`` count the whole chain before it. ScaleHyperprior's ``aux_loss()`` is its
EntropyBottleneck's (of z), handled as the factorized one's. The hyperprior chain mirrors latcomp's
(``models/photo-hyper-*``): the base from the factorized peer at λ 0.0067 (the counterpart of
``photo-q3``), then the rate points from it, each ``--max-epochs`` that of its latcomp run (a
stage whose directory already holds a run continues with ``--resume``)::

    T="$VENV/bin/python -m benchmarks.compressai_peer train --peer hyperprior"
    P=models/compressai-hyper-peer C=checkpoint.safetensors
    $T --latcomp-run models/photo-hyper-base --init models/compressai-peer-ft-q2/$C --out $P-base --max-epochs 39
    $T --latcomp-run models/photo-hyper-q3 --init $P-base/$C --out $P-q3 --max-epochs 6
    $T --latcomp-run models/photo-hyper-q4 --init $P-base/$C --out $P-q4 --max-epochs 10
    $T --latcomp-run models/photo-hyper-q2 --init $P-q3/$C --out $P-q2 --max-epochs 10
    $T --latcomp-run models/photo-hyper-q5 --init $P-q4/$C --out $P-q5 --max-epochs 10
    $T --latcomp-run models/photo-hyper-q1 --init $P-q2/$C --out $P-q1 --max-epochs 10

**eval**: ``model.update(force=True)`` (the CDFs; the hyperprior's GaussianConditional gets
CompressAI's default scale table, ``get_scale_table()``, as ``update(scale_table=None)``); per
Kodak image, padded (zeros, centred) to a multiple of 64 as CompressAI's ``eval_model`` does
(Kodak's 768×512 needs none) and cropped back; the factorized file is a 4-byte header (image height
and width, two big-endian uint16, from which the decoder derives the latent shape) followed by
``model.compress(x)["strings"]`` (one string), so bpp = 8·(4 + len(string))/(H·W); the hyperprior
file is the same header, the 4-byte length of z's string (big-endian uint32), z's string
(``strings[1][0]``) and y's (``strings[0][0]``), so bpp = 8·(8 + len(z) + len(y))/(H·W); the file
is parsed and decoded by ``model.decompress`` (the latent shape it takes: y's at 1/16 of the padded
image, resp. z's at 1/64) to uint8 (round(255·clamp(x̂, 0, 1))) and PSNR-RGB and MS-SSIM are
latcomp.measure.photo_metrics' against the original PNG; encode (pad, g_a, entropy coding, header)
and decode (parse, entropy decoding, g_s, crop, to uint8) seconds on one thread. Every
``--checkpoint`` (repeatable) is one point of the peer's curve; ``--against REPORT`` (repeatable)
adds the BD-rates of every curve of a photo report JSON (``latcomp bench --photo --json``) against
it. The checkpoints of one ``eval`` are of one peer. Writes ``docs/results/NAME.json``/``.md``,
``--name`` NAME (default ``compressai-peer``; the hyperprior's: ``compressai-peer-hyperprior``)::

    $VENV/bin/python -m benchmarks.compressai_peer eval --name compressai-peer-hyperprior \\
        --checkpoint $P-q1/$C --checkpoint $P-q2/$C ... --checkpoint $P-q5/$C --against REPORT

**Environment** (what worked here, x86_64, Python 3.11.7, November 2026)::

    VENV=../compressai-venv   # anywhere outside the repository; TMP: any scratch folder
    python -m venv $VENV
    $VENV/bin/pip install torch==2.14.1 torchvision==0.29.1   # CUDA build, ~5.5 GB, runs on CPU
    $VENV/bin/pip download compressai==1.2.8 --no-deps -d $TMP
    $VENV/bin/pip install --no-deps $TMP/compressai-1.2.8-cp311-*.whl
    $VENV/bin/pip install "numpy<2" scipy einops pytorch-msssim tqdm requests torch-geometric \\
        "pandas<3" matplotlib constriction safetensors pillow click rich bjontegaard==1.3.0

``import compressai.models`` imports the whole package (datasets, registry), hence tqdm, requests,
torch-geometric, torchvision and pandas. torch 2.13.0+cpu with torchvision 0.28.0 or 0.29.x fails
(``RuntimeError: operator torchvision::nms does not exist``: PyPI's torchvision is built against
the CUDA torch), so the venv holds torch 2.14.1 (CUDA build, used on CPU) and torchvision 0.29.1;
latcomp's training runs torch 2.13.0+cpu in the main environment. latcomp itself is imported from
the working tree (run from the repository root), not installed in the venv.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import fields, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from latcomp.fileio import atomic_write, atomic_write_text  # noqa: E402
from latcomp.measure.peers import package_versions  # noqa: E402
from latcomp.measure.results import RESULTS_DIR, machine_info, timed  # noqa: E402
from latcomp.train import TrainConfig, default_config, epoch_generator, epoch_lr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAME = "compressai-peer"
OUT = REPO / "models" / "compressai-peer-q4"
LATCOMP_RUN = REPO / "models" / "photo-q4"
CHECKPOINT, CONFIG, LOG = "checkpoint.safetensors", "config.json", "train-log.jsonl"
N_CHANNELS, M_CHANNELS = 64, 128
AUX_LR = 1e-3
PAD_MULTIPLE = 64  # CompressAI's eval_model: compute_padding(h, w, min_div=2**6)
HEADER = struct.Struct(">HH")  # image height, width
LENGTH = struct.Struct(">I")  # byte length of the hyper-latent's string, before it
THREADS = 1
VERSION_DISTS = ("compressai", "torch", "torchvision", "numpy", "pytorch-msssim", "safetensors", "constriction",
                 "pillow")


class Peer(NamedTuple):
    """A CompressAI model the peer can be: its class in compressai.models, its zoo name, the latents of its
    ``compress`` strings (in their order)."""

    cls: str
    zoo: str
    latents: tuple[str, ...]


PEERS = {"factorized": Peer("FactorizedPrior", "bmshj2018-factorized", ("y",)),
         "hyperprior": Peer("ScaleHyperprior", "bmshj2018-hyperprior", ("y", "z"))}
DEFAULT_PEER = "factorized"  # what a run without "peer" in its settings is (those made before --peer)


def _threads() -> None:
    torch.set_num_threads(THREADS)


def versions() -> dict[str, str]:
    return {"python": sys.version.split()[0], **package_versions(VERSION_DISTS)}


# --------------------------------------------------------------------------- settings and data


def latcomp_settings(run_dir: str | os.PathLike, data_dir: str | None = None) -> TrainConfig:
    """The TrainConfig of latcomp's photo run ``run_dir`` (its config.json), ``data_dir`` overriding.

    Without the file: latcomp's photo defaults with λ = 0.025 and BSDS500.
    """
    path = Path(run_dir) / "config.json"
    if path.is_file():
        saved = json.loads(path.read_text())["training"]["config"]
        known = {f.name for f in fields(TrainConfig)}
        cfg = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    else:
        cfg = default_config("photo-factorized", lam=0.025, data_dir="../shared/data/photos_train/bsds500")
    if data_dir:
        cfg = replace(cfg, data_dir=data_dir)
    return cfg


def load_data(cfg: TrainConfig) -> tuple[list[np.ndarray], torch.Tensor]:
    """latcomp's training images and validation crops for ``cfg`` (its own loader, same order and filter)."""
    from latcomp.train import _load_data

    data_dir = cfg.data_dir
    if data_dir and not Path(data_dir).is_absolute() and not Path(data_dir).is_dir():
        data_dir = str(REPO / data_dir)  # relative to the repository root, as latcomp's run was started
    return _load_data(replace(cfg, data_dir=data_dir), None)


def latcomp_noise_model(cfg: TrainConfig) -> torch.nn.Module:
    """latcomp's model for ``cfg`` (only its ``noise_shape`` is used: the dither draw of each step)."""
    from latcomp.nn.registry import build_model

    return build_model(cfg.architecture, **cfg.hparams())


def epoch_crops(cfg: TrainConfig, images: list[np.ndarray], epoch: int,
                noise_model: torch.nn.Module) -> Iterator[torch.Tensor]:
    """The batches latcomp's epoch ``epoch`` trains on, drawn and consumed from the generator exactly as its loop.

    After each batch the uniforms latcomp draws for its dither (``noise_shape(batch)``, float32) are
    drawn and discarded, so that the next batch's crops come from the same generator state.
    """
    from latcomp.train import _epoch_batches

    gen = epoch_generator(cfg.seed, epoch)
    _, batches = _epoch_batches(cfg, images, gen)
    for batch in batches:
        torch.rand(noise_model.noise_shape(batch), generator=gen, dtype=batch.dtype)
        yield batch


def global_noise_seed(seed: int, epoch: int) -> int:
    """The seed of torch's global generator (CompressAI's training noise) for epoch ``epoch``."""
    return int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1, np.uint64)[0] >> np.uint64(1))


# --------------------------------------------------------------------------- model, optimizers, checkpoint


def model_name(peer: str) -> str:
    return f"compressai.models.{PEERS[peer].cls}(N={N_CHANNELS}, M={M_CHANNELS})"


def build_peer(peer: str = DEFAULT_PEER) -> Any:
    import compressai.models

    return getattr(compressai.models, PEERS[peer].cls)(N=N_CHANNELS, M=M_CHANNELS)


def peer_of(meta: dict[str, Any]) -> str:
    """The peer (key of :data:`PEERS`) of a checkpoint's metadata."""
    return meta["settings"].get("peer", DEFAULT_PEER)


def load_modules(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copies into ``model`` each of its top-level modules all of whose tensors are in ``state`` under the same
    names and with the same shapes, the others keep their initialization: the modules copied and those kept.

    A FactorizedPrior's state into a ScaleHyperprior copies g_a and g_s (the same transforms); its
    entropy_bottleneck (of y, M channels; the hyperprior's is of z, N channels) and the hyperprior's h_a,
    h_s and gaussian_conditional stay fresh.
    """
    own = model.state_dict()
    modules: dict[str, list[str]] = {}
    for key in own:
        modules.setdefault(key.split(".")[0], []).append(key)
    copied = sorted(m for m, keys in modules.items()
                    if all(k in state and state[k].shape == own[k].shape for k in keys))
    model.load_state_dict({**own, **{k: state[k] for m in copied for k in modules[m]}})
    return copied, sorted(set(modules) - set(copied))


def configure_optimizers(net: torch.nn.Module, lr: float, aux_lr: float = AUX_LR
                         ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """CompressAI's examples/train.py: Adam on all but ``*.quantiles``, a second Adam on the quantiles."""
    params = dict(net.named_parameters())
    main = sorted(n for n, p in params.items() if not n.endswith(".quantiles") and p.requires_grad)
    aux = sorted(n for n, p in params.items() if n.endswith(".quantiles") and p.requires_grad)
    return (torch.optim.Adam((params[n] for n in main), lr=lr),
            torch.optim.Adam((params[n] for n in aux), lr=aux_lr))


def save_checkpoint(path: Path, model: torch.nn.Module, opts: dict[str, torch.optim.Optimizer],
                    meta: dict[str, Any]) -> None:
    """Model + optimizer tensors and JSON metadata in one atomically replaced safetensors file."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    groups = {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for idx, slots in sd["state"].items():
            for slot, value in slots.items():
                tensors[f"{name}.{idx}.{slot}"] = torch.as_tensor(value).contiguous()
    metadata = {k: json.dumps(v) for k, v in {**meta, "param_groups": groups}.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]], dict[str, Any]]:
    """Inverse of :func:`save_checkpoint`: model state dict, optimizer state dicts by name, metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in f.metadata().items()}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    opts: dict[str, dict[str, Any]] = {}
    for name, groups in meta.pop("param_groups").items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(name + "."):
                _, idx, slot = key.split(".", 2)
                state.setdefault(int(idx), {})[slot] = value
        opts[name] = {"state": state, "param_groups": groups}
    return model_sd, opts, meta


def load_peer(path: Path) -> tuple[Any, dict[str, Any]]:
    """The model of checkpoint ``path`` (CompressAI's load_state_dict resizes the CDF buffers) and its metadata."""
    model_sd, _, meta = load_checkpoint(path)
    model = build_peer(peer_of(meta))
    model.load_state_dict(model_sd)
    return model, meta


# --------------------------------------------------------------------------- training


def validate(model: Any, crops: torch.Tensor, lam: float, batch: int = 8) -> dict[str, float]:
    """Eval-mode forward on the validation crops (rounded latent): loss, likelihood bpp, PSNR of the mean MSE."""
    from compressai.losses import RateDistortionLoss

    crit = RateDistortionLoss(lmbda=lam)
    model.eval()
    totals = np.zeros(3)
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            x = crops[start:start + batch]
            out = crit(model(x), x)
            totals += np.array([out["loss"].item(), out["bpp_loss"].item(), out["mse_loss"].item()]) * len(x)
    loss, bpp, mse = totals / len(crops)
    model.train()
    return {"valid_loss": loss, "valid_bpp": bpp, "valid_psnr": 10 * math.log10(1.0 / mse)}


def train(args: argparse.Namespace) -> None:
    from compressai.losses import RateDistortionLoss

    _threads()
    out = Path(args.out)
    ckpt = out / CHECKPOINT
    if ckpt.exists() and not (args.resume or args.force):
        raise SystemExit(f"{out} already holds a run: pass --resume to continue it or --force to start over")
    if args.resume and not ckpt.exists():
        raise SystemExit(f"{out}: no {CHECKPOINT} to resume")
    if args.resume:
        model_sd, opt_sds, meta = load_checkpoint(ckpt)
        cfg = TrainConfig(**meta["latcomp_config"])
        if args.data_dir:
            cfg = replace(cfg, data_dir=args.data_dir)
        state, log = meta["state"], read_log(out)[:meta["state"]["epoch"]]
        init_sd, init, peer = None, meta["settings"].get("init"), peer_of(meta)
        latcomp_run = meta["settings"]["latcomp_run"]
        if args.peer not in (None, peer):
            raise SystemExit(f"{out} holds a {peer} run, not a {args.peer} one")
    else:
        cfg = latcomp_settings(args.latcomp_run, args.data_dir)
        model_sd, opt_sds, state, log = None, None, {"epoch": 0, "seconds": 0.0}, []
        init_sd, init = fine_tune_start(args.init)
        peer = args.peer or (init["peer"] if init else DEFAULT_PEER)
        latcomp_run = os.path.relpath(Path(args.latcomp_run).resolve(), REPO)
    images, valid = load_data(cfg)
    noise_model = latcomp_noise_model(cfg)
    torch.manual_seed(cfg.seed)
    model = build_peer(peer)
    opt, aux_opt = configure_optimizers(model, cfg.lr)
    if model_sd is not None:
        model.load_state_dict(model_sd)
        opt.load_state_dict(opt_sds["optim"])
        aux_opt.load_state_dict(opt_sds["aux_optim"])
    elif init_sd is not None and init["peer"] == peer:  # a fine-tune, as latcomp's --init: weights, fresh optimizers
        model.load_state_dict(init_sd)
    elif init_sd is not None:  # a warm start from the other class: the modules both have, the others fresh
        init["copied"], init["fresh"] = load_modules(model, init_sd)
    if init and "copied" in init:
        print(f"--init {init['checkpoint']} ({init['peer']}): copied {', '.join(init['copied'])}; "
              f"fresh {', '.join(init['fresh'])}", flush=True)
    criterion = RateDistortionLoss(lmbda=cfg.lam)
    settings = {"peer": peer, "model": model_name(peer),
                "loss": "compressai.losses.RateDistortionLoss: lam*255^2*MSE + bpp", "lam": cfg.lam,
                "batch_size": cfg.batch_size, "crop": cfg.crop, "steps_per_epoch": cfg.steps_per_epoch,
                "lr": cfg.lr, "lr_drop": cfg.lr_drop, "aux_lr": AUX_LR, "clip": cfg.clip, "seed": cfg.seed,
                "data_dir": cfg.data_dir, "training_images": len(images),
                "validation": f"{len(valid)} centre crops of {valid.shape[-1]}^2",
                "crops": "latcomp's: epoch_generator(seed, epoch), _epoch_batches, dither draws discarded",
                "latcomp_run": latcomp_run, "init": init, "versions": versions()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, json.dumps(settings, indent=2) + "\n")
    model.train()
    print(f"{'resuming at' if args.resume else 'starting'} epoch {state['epoch'] + 1}: {len(images)} images, "
          f"{cfg.steps_per_epoch} steps of {cfg.batch_size}×{cfg.crop}², λ={cfg.lam}", flush=True)
    while args.max_epochs is None or state["epoch"] < args.max_epochs:
        epoch = state["epoch"] + 1
        start = time.perf_counter()
        torch.manual_seed(global_noise_seed(cfg.seed, epoch))
        for group in opt.param_groups:  # latcomp's step decay (--lr-drop), none for runs without it
            group["lr"] = epoch_lr(cfg, epoch)
        totals = np.zeros(4)
        for step, x in enumerate(epoch_crops(cfg, images, epoch, noise_model)):
            opt.zero_grad()
            aux_opt.zero_grad()
            out_crit = criterion(model(x), x)
            loss = out_crit["loss"]
            if not math.isfinite(loss.item()):
                raise SystemExit(f"non-finite loss at epoch {epoch}, step {step + 1}: stopped before saving")
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            aux_loss = model.aux_loss()
            aux_loss.backward()
            aux_opt.step()
            totals += [loss.item(), out_crit["bpp_loss"].item(), out_crit["mse_loss"].item(), aux_loss.item()]
            if (step + 1) % 50 == 0:
                m = totals / (step + 1)
                print(f"epoch {epoch} step {step + 1}: loss {m[0]:.3f} bpp {m[1]:.3f} "
                      f"psnr {10 * math.log10(1 / m[2]):.2f} aux {m[3]:.1f} "
                      f"({(time.perf_counter() - start) / (step + 1):.3f} s/step)", flush=True)
        train_s = time.perf_counter() - start
        steps = cfg.steps_per_epoch
        m = totals / steps
        va = validate(model, valid, cfg.lam)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "steps": epoch * steps, "lr": opt.param_groups[0]["lr"],
                  "train_loss": m[0], "train_bpp": m[1],
                  "train_mse": m[2], "train_psnr": 10 * math.log10(1 / m[2]), "aux_loss": m[3], **va,
                  "seconds": seconds, "seconds_per_step": train_s / steps}
        state = {"epoch": epoch, "seconds": state["seconds"] + seconds}
        log.append(record)
        meta = {"state": state, "latcomp_config": cfg.__dict__, "settings": settings}
        save_checkpoint(out / CHECKPOINT, model, {"optim": opt, "aux_optim": aux_opt}, meta)
        atomic_write_text(out / LOG, "".join(json.dumps(r) + "\n" for r in log))
        print(json.dumps(record), flush=True)


def fine_tune_start(checkpoint: str | None) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """The weights ``--init CHECKPOINT`` starts from and what the run records of them (the checkpoint, its
    peer and its steps, those of its own ``--init`` included); (None, None) for a model trained from random
    weights."""
    if not checkpoint:
        return None, None
    path = Path(checkpoint)
    model_sd, _, meta = load_checkpoint(path)
    before = meta["settings"].get("init")
    steps = meta["state"]["epoch"] * meta["settings"]["steps_per_epoch"] + (before["steps"] if before else 0)
    return model_sd, {"checkpoint": os.path.relpath(path.resolve(), REPO), "peer": peer_of(meta), "steps": steps}


def read_log(out: Path) -> list[dict[str, Any]]:
    path = out / LOG
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()] if path.is_file() else []


# --------------------------------------------------------------------------- crop identity check


def check_crops(args: argparse.Namespace) -> None:
    """Compare :func:`epoch_crops` with the batches and dithers latcomp's real ``_train_epoch`` feeds its model.

    Runs latcomp's loop (a fresh photo model, ``steps`` steps of epochs 1 and 2, backward and Adam
    included) with a forward hook recording its input batch and dither uniforms ``v``; the crops of
    :func:`epoch_crops` and the uniforms it discards must be equal to them, bit for bit. Prints the
    sha256 of the replayed batches, to compare across environments.
    """
    from latcomp import train as lt

    _threads()
    cfg = replace(latcomp_settings(args.latcomp_run, args.data_dir), steps_per_epoch=args.steps)
    images, _ = load_data(cfg)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    torch.manual_seed(cfg.seed)
    model = latcomp_noise_model(cfg)
    model.register_forward_pre_hook(lambda m, a, kw: seen.append((a[0].clone(), kw["v"].clone())), with_kwargs=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ok = True
    for epoch in (1, 2):
        seen.clear()
        lt._train_epoch(model, opt, images, cfg, epoch)
        digest = hashlib.sha256()
        for step, (batch, (x, _)) in enumerate(zip(epoch_crops(cfg, images, epoch, model), seen, strict=True)):
            crops_equal = torch.equal(batch, x)
            ok &= crops_equal
            digest.update(batch.numpy().tobytes())
            print(f"epoch {epoch} step {step + 1}: crops {tuple(batch.shape)} equal={crops_equal}")
        replay = _replay_noise(cfg, images, epoch_generator(cfg.seed, epoch), model)
        for step, ((_, v), u) in enumerate(zip(seen, replay, strict=True)):
            noise_equal = torch.equal(v, u)
            ok &= noise_equal
            print(f"epoch {epoch} step {step + 1}: dither uniforms {tuple(v.shape)} equal={noise_equal}")
        print(f"epoch {epoch}: sha256 of the first {args.steps} replayed batches {digest.hexdigest()}")
    print(f"torch {torch.__version__}, numpy {np.__version__}: " + ("IDENTICAL" if ok else "DIFFERENT"))
    if not ok:
        raise SystemExit(1)


def _replay_noise(cfg: TrainConfig, images: list[np.ndarray], gen: torch.Generator,
                  model: torch.nn.Module) -> Iterator[torch.Tensor]:
    """The uniforms :func:`epoch_crops` draws and discards, returned instead."""
    from latcomp.train import _epoch_batches

    _, batches = _epoch_batches(cfg, images, gen)
    for batch in batches:
        yield torch.rand(model.noise_shape(batch), generator=gen, dtype=batch.dtype)


# --------------------------------------------------------------------------- evaluation


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div(255.0).unsqueeze(0)


def bitstream(peer: str) -> str:
    """The file format of ``peer``'s files, in words."""
    if PEERS[peer].latents == ("y",):
        return (f"{HEADER.size}-byte header (height, width as big-endian uint16) + "
                "model.compress(x)['strings'][0][0]; bpp = 8*bytes/(H*W)")
    return (f"{HEADER.size}-byte header (height, width as big-endian uint16) + {LENGTH.size}-byte length of z's "
            "string (big-endian uint32) + z's string model.compress(x)['strings'][1][0] + y's string "
            "['strings'][0][0]; bpp = 8*bytes/(H*W), all of them")


def make_codec(model: Any, peer: str) -> tuple[Any, Any]:
    """``encode(img uint8 HxWx3) -> bytes`` and ``decode(bytes) -> uint8 HxWx3`` of an updated ``peer`` model.

    The file: :data:`HEADER`, then the strings of ``model.compress``, last latent first (the hyperprior's z,
    then y), each but the last (y's) preceded by its length (:data:`LENGTH`).
    """
    import torch.nn.functional as F
    from compressai.ops import compute_padding

    n_strings = len(PEERS[peer].latents)

    def encode(img: np.ndarray) -> bytes:
        h, w = img.shape[:2]
        pad, _ = compute_padding(h, w, min_div=PAD_MULTIPLE)
        with torch.no_grad():
            out = model.compress(F.pad(_to_tensor(img), pad, mode="constant", value=0))
        assert all(len(s) == 1 for s in out["strings"])
        *sides, last = [s[0] for s in reversed(out["strings"])]
        return HEADER.pack(h, w) + b"".join(LENGTH.pack(len(s)) + s for s in sides) + last

    def decode(data: bytes) -> np.ndarray:
        h, w = HEADER.unpack_from(data)
        pad, unpad = compute_padding(h, w, min_div=PAD_MULTIPLE)
        f = model.downsampling_factor  # decompress takes its last latent's shape: y at 1/16, the hyperprior's z at 1/64
        shape = ((h + pad[2] + pad[3]) // f, (w + pad[0] + pad[1]) // f)
        strings, pos = [], HEADER.size
        for _ in range(n_strings - 1):
            (n,) = LENGTH.unpack_from(data, pos)
            strings.append([data[pos + LENGTH.size:pos + LENGTH.size + n]])
            pos += LENGTH.size + n
        strings.append([data[pos:]])
        with torch.no_grad():
            x_hat = model.decompress(strings[::-1], shape)["x_hat"]
        x_hat = F.pad(x_hat, unpad).clamp(0, 1)[0]
        return (x_hat.permute(1, 2, 0).mul(255.0).round().to(torch.uint8).numpy())

    return encode, decode


def evaluate_checkpoint(ckpt: Path, images: list[tuple[str, np.ndarray]], repeats: int) -> dict[str, Any]:
    """One RD point: the Kodak ``images`` coded with the model of ``ckpt`` (real files), its training record."""
    from latcomp.measure.photo_metrics import ms_ssim, ms_ssim_db, psnr_rgb

    model, meta = load_peer(ckpt)
    model.eval()
    model.update(force=True)  # the CDFs; the hyperprior's GaussianConditional gets CompressAI's default scale table
    encode, decode = make_codec(model, peer_of(meta))
    per_image = []
    for name, img in images:
        blob, enc_s = timed(lambda img=img: encode(img), repeats)
        rec, dec_s = timed(lambda blob=blob: decode(blob), repeats)
        if rec.shape != img.shape:
            raise SystemExit(f"{name}: decoded {rec.shape}, expected {img.shape}")
        with torch.no_grad():  # the model's own estimate for comparison: −log2 likelihood of the rounded latents
            est = sum(lik.log2().sum().neg().item() for lik in model(_to_tensor(img))["likelihoods"].values())
        h, w = img.shape[:2]
        r = {"image": name, "bytes": len(blob), "bpp": 8 * len(blob) / (h * w), "bpp_likelihood": est / (h * w),
             "psnr": psnr_rgb(img, rec), "ms_ssim": ms_ssim(img, rec), "enc_s": enc_s, "dec_s": dec_s}
        per_image.append(r)
        print(f"{ckpt.parent.name} {name}: {r['bytes']} B, {r['bpp']:.4f} bpp, {r['psnr']:.2f} dB, "
              f"MS-SSIM {r['ms_ssim']:.4f}, enc {enc_s:.3f} s, dec {dec_s:.3f} s", file=sys.stderr, flush=True)
    mean = {k: float(np.mean([r[k] for r in per_image]))
            for k in ("bpp", "bpp_likelihood", "psnr", "ms_ssim", "enc_s", "dec_s")}
    mean["ms_ssim_db"] = float(ms_ssim_db(mean["ms_ssim"]))
    state, settings = meta["state"], meta["settings"]
    init = settings.get("init")
    steps = state["epoch"] * settings["steps_per_epoch"]
    log = read_log(ckpt.parent)[:state["epoch"]]
    return {"checkpoint": os.path.relpath(ckpt.resolve(), REPO), "peer": peer_of(meta), "lam": settings["lam"],
            "epochs": state["epoch"],
            "steps": steps + (init["steps"] if init else 0), "init": init, "training_seconds": state["seconds"],
            "settings": settings, "train_losses": [r["train_loss"] for r in log],
            "s_per_step": float(np.mean([r["seconds_per_step"] for r in log])) if log else None,
            "mean": mean, "per_image": per_image}


def evaluate(args: argparse.Namespace) -> None:
    """Kodak points of the checkpoints (one RD curve, of one peer) into ``--out-dir``/``--name``.{json,md}."""
    from latcomp.measure.kodak import load_kodak

    _threads()
    wall = time.perf_counter()
    images, data = load_kodak(args.data_dir, args.limit)
    points = sorted((evaluate_checkpoint(Path(c), images, args.repeats) for c in args.checkpoint or [OUT / CHECKPOINT]),
                    key=lambda p: p["lam"])
    peers = sorted({p["peer"] for p in points})
    if len(peers) > 1:
        raise SystemExit(f"the checkpoints are of several peers ({', '.join(peers)}): one eval per peer")
    peer = peers[0]
    argv = sys.argv[1:] if args.argv is None else args.argv
    res = {"name": f"CompressAI {PEERS[peer].zoo} (N={N_CHANNELS}, M={M_CHANNELS}), same budget as latcomp's",
           "peer": peer, "points": points, "data": data, "repeats": args.repeats, "threads": THREADS,
           "bitstream": bitstream(peer),
           "padding": f"zeros, centred, to a multiple of {PAD_MULTIPLE} (compressai.ops.compute_padding), "
                      "cropped back after decoding",
           "versions": versions(), "machine": machine_info(), "note": args.note,
           "environment": "venv $VENV (see the module docstring of benchmarks/compressai_peer.py)",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "wall_s": time.perf_counter() - wall,
           "command": "OMP_NUM_THREADS=1 $VENV/bin/python -m benchmarks.compressai_peer "
                      + shlex.join(argv)}
    res["bd_rates"] = bd_against(res, args.against or [])
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{args.name}.json", out_dir / f"{args.name}.md"
    atomic_write_text(js, json.dumps(res, indent=2, default=float) + "\n")
    atomic_write_text(md, to_markdown(res, js.name))
    print(md.read_text())
    print(f"wrote {js}, {md}", file=sys.stderr)


def bd_against(res: dict[str, Any], reports: list[str]) -> dict[str, Any]:
    """BD-rates of every curve of the photo reports ``reports`` (e.g. latcomp's models of the same budget)
    against this peer's curve."""
    from latcomp.measure.rd import bd_table, load_curves, peer_curve

    peer = peer_curve(res)
    theirs = [c for path in reports for c in load_curves(path) if c.name != peer.name]
    return {"reports": reports, "anchor": peer.name, "rows": bd_table([peer, *theirs], anchor=peer.name)}


def _bd_lines(bd: dict[str, Any]) -> list[str]:
    from latcomp.measure.rd import BD_EXPLAINED, bd_markdown

    if not bd["rows"]:
        return []
    sources = ", ".join(f"`{p}`" for p in bd["reports"])
    return [*bd_markdown(bd["rows"], f"BD-rate against {bd['anchor']}"),
            f"The other curves are those of {sources} (measured on the same Kodak images). {BD_EXPLAINED}", ""]


def to_markdown(res: dict[str, Any], json_name: str = f"{NAME}.json") -> str:
    mach, v, s = res["machine"], res["versions"], res["points"][0]["settings"]
    peer = res.get("peer", DEFAULT_PEER)
    lines = [
        "# Photo benchmark: the same-budget CompressAI peer on Kodak"
        + ("" if peer == DEFAULT_PEER else f" ({PEERS[peer].zoo})"), "",
        f"Command: `{res['command']}`  ",
        f"Date: {res['date']}; whole run {res['wall_s'] / 60:.1f} min  ",
        f"Machine: {mach['cpu']}, {mach['cpu_count']} CPUs" + (f" ({res['note']})" if res["note"] else "") + ", "
        f"{mach['platform']}, load average {', '.join(f'{x:.2f}' for x in mach['load_average'] or [])}  ",
        "Packages (venv $VENV, recipe in the docstring of `benchmarks/compressai_peer.py`): "
        + ", ".join(f"{k} {x}" for k, x in v.items()) + "  ",
        f"Data: {res['data']['images']} Kodak images from `{res['data']['folder']}`.", "",
        f"Model: `{s['model']}` trained by `benchmarks/compressai_peer.py train` on latcomp's crops "
        f"({s['crops']}) from `{s['data_dir']}` ({s['training_images']} images): batch {s['batch_size']} of "
        f"{s['crop']}² crops, {s['steps_per_epoch']} steps an epoch, Adam lr {s['lr']} (aux Adam lr {s['aux_lr']} "
        f"on the EntropyBottleneck quantiles), clip {s['clip']}, seed {s['seed']} ({s['loss']}). Each point "
        "mirrors one latcomp run (`latcomp run` below: its λ, epochs and crops); a fine-tune starts from the "
        "weights of the checkpoint it names, with fresh optimizers, as latcomp's `--init`.", "",
        *_start_lines(res["points"]),
        f"Bitstream: {res['bitstream']}. Padding: {res['padding']}. `model.update(force=True)` before coding. "
        "PSNR-RGB and MS-SSIM: `latcomp.measure.photo_metrics` on the decoded uint8 image against the PNG. Seconds: "
        f"median of {res['repeats']} run(s) per image, one thread, encode = pad + g_a + entropy coding + header, "
        "decode = parse + entropy decoding + g_s + crop + uint8; training seconds per step from the logs (one "
        "thread, on a machine shared with other runs).", "",
        "| checkpoint | λ | latcomp run | steps (total) | bpp (file) | bpp (likelihood) | PSNR-RGB (dB) | MS-SSIM "
        "| MS-SSIM (dB) | enc s/image | dec s/image | train s/step |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in res["points"]:
        m = p["mean"]
        start = f" = {p['init']['steps']} + {p['steps'] - p['init']['steps']}" if p["init"] else ""
        per_step = f"{p['s_per_step']:.3f}" if p["s_per_step"] else "–"
        lines.append(f"| `{p['checkpoint']}` | {p['lam']} | `{p['settings']['latcomp_run']}` | {p['steps']}{start} | "
                     f"{m['bpp']:.4f} | {m['bpp_likelihood']:.4f} | {m['psnr']:.3f} | {m['ms_ssim']:.5f} | "
                     f"{m['ms_ssim_db']:.3f} | {m['enc_s']:.3f} | {m['dec_s']:.3f} | {per_step} |")
    latents = " and ".join(PEERS[peer].latents)
    lines += ["", f"Means over the {res['data']['images']} images. *bpp (likelihood)*: the model's own estimate, "
              + ("−log2 of the rounded latent's likelihoods" if latents == "y" else
                 f"−log2 of the likelihoods of the rounded latents {latents}")
              + ", for comparison with the file.", "",
              *_progress_lines(res["points"]), *_bd_lines(res["bd_rates"]),
              f"Per-image numbers: `{json_name}` beside this file.", ""]
    return "\n".join(lines)


def _start_lines(points: list[dict[str, Any]]) -> list[str]:
    """How the points' runs started and annealed, where that differs from a plain fine-tune of a constant rate:
    warm starts from the other peer (the modules copied) and latcomp's learning-rate drops."""
    warm = [f"`{p['checkpoint']}` from `{p['init']['checkpoint']}` ({p['init']['peer']}: "
            f"{', '.join(p['init']['copied'])} copied, {', '.join(p['init']['fresh'])} fresh)"
            for p in points if p["init"] and "copied" in p["init"]]
    drops = [f"`{p['checkpoint']}` from epoch {p['settings']['lr_drop']}" for p in points
             if p["settings"].get("lr_drop") and p["settings"]["lr_drop"] <= p["epochs"]]
    lines = [f"Warm start from the other model class: {'; '.join(warm)}.", ""] if warm else []
    if drops:
        lines += [f"A tenth of the learning rate from an epoch on, as the latcomp run's `--lr-drop`: "
                  f"{'; '.join(drops)}.", ""]
    return lines


def _progress_lines(points: list[dict[str, Any]]) -> list[str]:
    """Which models were still improving when they stopped (training loss falling over the last epoch)."""
    falling = [f"`{p['checkpoint']}` ({p['train_losses'][-2]:.3f} → {p['train_losses'][-1]:.3f})" for p in points
               if len(p["train_losses"]) >= 2 and p["train_losses"][-1] < p["train_losses"][-2]]
    return [f"Training loss still falling over the last epoch: {', '.join(falling)}.", ""] if falling else []


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compressai_peer",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train (or --resume) the peer into --out")
    tr.add_argument("--out", default=str(OUT))
    tr.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    tr.add_argument("--force", action="store_true", help="start over in a directory that holds a run")
    tr.add_argument("--max-epochs", type=int, default=None, help="stop after this many epochs (default: never)")
    tr.add_argument("--init", default=None, help="fine-tune: start from this peer checkpoint's weights "
                    "(with --latcomp-run the latcomp fine-tune to mirror: its λ, epochs and crops)")
    tr.add_argument("--peer", choices=sorted(PEERS), default=None, help="the CompressAI model: FactorizedPrior "
                    f"or ScaleHyperprior (default: --init's, else {DEFAULT_PEER}; --resume: the run's)")
    ev = sub.add_parser("eval", help="Kodak points of checkpoints into docs/results/NAME.{json,md}")
    ev.add_argument("--checkpoint", action="append", help="a checkpoint to code (repeatable: the points of the "
                    "curve; default: the base run's)")
    ev.add_argument("--limit", type=int, default=None, help="only the first N Kodak images")
    ev.add_argument("--repeats", type=int, default=1, help="timed runs per image (median)")
    ev.add_argument("--note", default="", help="a remark on the machine's other load")
    ev.add_argument("--against", action="append", help="a photo report JSON whose curves get BD-rates against "
                    "this peer's (repeatable)")
    ev.add_argument("--out-dir", default=str(RESULTS_DIR))
    ev.add_argument("--name", default=NAME, help=f"the report's file name, without suffix (default {NAME})")
    ck = sub.add_parser("check-crops", help="compare the replayed crops with latcomp's training loop")
    ck.add_argument("--steps", type=int, default=4, help="steps of epochs 1 and 2 to compare")
    for p in (tr, ev, ck):
        p.add_argument("--latcomp-run", default=str(LATCOMP_RUN), help="latcomp's photo run (settings, log)")
        p.add_argument("--data-dir", default=None, help="training folder (train, check-crops) or data root "
                       "with kodak/ (eval); default: the latcomp run's, resp. ../shared/data")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command == "train" and args.resume and args.force:
        parser.error("--resume and --force exclude each other")
    {"train": train, "eval": evaluate, "check-crops": check_crops}[args.command](args)


if __name__ == "__main__":
    main()
