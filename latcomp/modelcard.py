"""Model cards: evaluate a trained model and write ``MODEL_CARD.md`` beside it.

Run ``python -m latcomp.modelcard MODEL_DIR``. For a photo model the card reports the data,
settings and training budget and the Kodak numbers from real files (:func:`evaluate_photo_model`).
For an MNIST model it reports the data and
settings (from ``config.json``), the epochs run and wall time (from
``train-log.jsonl``), and the test-set negative ELBO, rate and distortion
measured now with :func:`latcomp.train.evaluate` (several seeded dithers per
digit), plus the machine it was measured on. The numbers also go to
``MODEL_DIR/evaluation.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import load_dataset
from .families import family
from .fileio import atomic_write_text
from .measure.results import machine_info
from .modelfile import load_model, read_config
from .train import LOG, evaluate, read_train_log


def evaluate_model(directory: str | Path, data_dir: str | None = None, dithers: int = 10) -> dict[str, Any]:
    """Test and validation loss, rate and distortion of the model in ``directory``."""
    config = read_config(directory)
    dataset = config["training"]["config"]["dataset"]
    model = load_model(directory)
    result: dict[str, Any] = {"dataset": dataset, "dithers": dithers}
    for split in ("valid", "test"):
        data = torch.from_numpy(load_dataset(dataset, split, data_dir).astype(np.float32))
        result[split] = evaluate(model, data, dithers=dithers)
    result["machine"] = machine_info()
    return result


def _row(split: str, ev: dict[str, float]) -> str:
    """One evaluation row; the negative ELBO is distortion + rate whatever λ was."""
    return (f"| {split} | {ev['distortion'] + ev['rate_nats']:.3f} | {ev['rate_bits']:.3f} | "
            f"{ev['rate_nats']:.3f} | {ev['distortion']:.3f} |")


def _stop_reason(cfg: dict[str, Any], epochs: int, best_epoch: int) -> str:
    if epochs - best_epoch >= cfg["patience"]:
        return f"stopped after {cfg['patience']} epochs without improvement (the paper's rule)"
    if cfg["max_epochs"] is not None and epochs >= cfg["max_epochs"]:
        return f"stopped at the budget of {cfg['max_epochs']} epochs, before the early-stopping rule fired"
    return "not finished: the run can be continued with `latcomp train --resume`"


def render_card(directory: str | Path, evaluation: dict[str, Any], command: str) -> str:
    """The model card's Markdown from the config, the training log and an evaluation."""
    directory = Path(directory)
    config = read_config(directory)
    cfg = config["training"]["config"]
    log = read_train_log(directory)
    best = min(log, key=lambda r: r["valid_loss"])
    hours = sum(r["seconds"] for r in log) / 3600
    test, valid, m = evaluation["test"], evaluation["valid"], evaluation["machine"]
    lattice = (config.get("hparams") or {}).get("lattice") or f"z*{cfg['latent']}"
    description = family(config["architecture"]).description.format(lattice=lattice)
    return f"""# Model card: {directory.name}

**Architecture:** `{config['architecture']}` — {description} Encoder
784→{cfg['hidden']}→{cfg['hidden']}→{cfg['latent']} (two gated linear layers h·σ(g), then linear), decoder
mirrored with a sigmoid-Bernoulli output (Section 4).

**Data:** `{cfg['dataset']}` (static binarized MNIST, Larochelle & Murray: 50k train / 10k valid / 10k test).

**Settings:** batch {cfg['batch_size']}, Adam lr {cfg['lr']}, λ = {cfg['lam']}, seed {cfg['seed']},
patience {cfg['patience']} epochs, max epochs {cfg['max_epochs']}; fresh noise per example per step.

**Training:** {len(log)} epochs run; best validation loss {best['valid_loss']:.3f} nats at epoch
{best['epoch']} (this is the model kept); {_stop_reason(cfg, len(log), best['epoch'])}. Wall time {hours:.2f} h
on {m['cpu']} ({m['cpu_count']} cores, shared with other jobs at times: per-epoch seconds are in `{LOG}`).

## Evaluation ({evaluation["dithers"]} seeded noise draws (dithers) per digit)

| split | negative ELBO (nats/image) | rate (bits/image) | rate (nats) | distortion −log Q (nats) |
|---|---|---|---|---|
{_row("valid", valid)}
{_row("test", test)}

With λ = 1 the negative ELBO is the expected length of the two-part code "lattice point, then the
pixels given Z − U" (Section 3.3); real file sizes are in `docs/results/codec.md`.

Measured with: `{command}`
"""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def evaluate_photo_model(directory: str | Path, data_dir: str | None = None,
                         bench_json: str | None = None) -> dict[str, Any]:
    """Kodak bits per pixel (real files), PSNR-RGB, MS-SSIM and seconds of a photo model: measured now
    (latcomp.measure.photo_bench), or the model's point in the report ``bench_json`` of ``latcomp bench --photo``."""
    from .measure.kodak import load_kodak
    from .measure.photo_bench import latcomp_curves
    from .measure.rd import load_curves

    if bench_json:
        points = [p for c in load_curves(bench_json) for p in c.points
                  if Path(p.info.get("model_dir", "")).resolve() == Path(directory).resolve()]
        if not points:
            raise SystemExit(f"{bench_json} has no point of {directory}")
        point, data = points[0], {"report": bench_json}
        machine = json.loads(Path(bench_json).read_text())["machine"]  # the report's, not this one's
    else:
        images, data = load_kodak(data_dir)
        point = latcomp_curves([directory], images, repeats=1, cold_runs=3, log=None)[0].points[0]
        machine = machine_info()
    return {"dataset": "kodak", "data": data, "bpp": point.bpp, "psnr": point.psnr, "ms_ssim": point.ms_ssim,
            "encode_s": point.enc_s, "decode_s": point.dec_s, "cold_decode_s": point.info.get("cold_decode_s"),
            "machine": machine}


def lineage_budget(directory: str | Path) -> tuple[int, float]:
    """Training steps and seconds that made a photo model's best model, its starting points' included
    (``--init`` chains: each run counts up to its best epoch, the one the next run started from)."""
    log = read_train_log(directory)
    if not log:  # a model without its training log (e.g. a copied model file): nothing to count
        return 0, 0.0
    cfg = read_config(directory)["training"]["config"]
    best = min(log, key=lambda r: r["valid_loss"])["epoch"]
    steps, seconds = best * cfg["steps_per_epoch"], sum(r["seconds"] for r in log if r["epoch"] <= best)
    if cfg.get("init"):
        before = lineage_budget(cfg["init"])
        steps, seconds = steps + before[0], seconds + before[1]
    return steps, seconds


def render_photo_card(directory: str | Path, evaluation: dict[str, Any], command: str) -> str:
    """A photo model's card: data, settings, budget (steps, hours, machine), Kodak numbers from real files."""
    directory = Path(directory)
    config = read_config(directory)
    cfg, hp = config["training"]["config"], config["hparams"]
    description = family(config["architecture"]).description.format(lattice=hp["lattice"])
    log = read_train_log(directory)
    best = min(log, key=lambda r: r["valid_loss"])
    hours = sum(r["seconds"] for r in log) / 3600
    m, ev = evaluation["machine"], evaluation
    start = "trained from random initial weights"
    if cfg.get("init"):
        start = (f"fine-tuned from `{cfg['init']}` (its weights; channels regrouped if the lattice changed, "
                 "lattice scales moved to the new λ)")
        steps, seconds = lineage_budget(cfg["init"])
        if steps:
            start += f", whose best model had {steps:,} steps ({seconds / 3600:.2f} h) in all"
    lr = f"Adam lr {cfg['lr']}" + (f" (a tenth of it from epoch {cfg['lr_drop']} on)" if cfg.get("lr_drop") else "")
    return f"""# Model card: {directory.name}

**Architecture:** `{config['architecture']}`: {description}
N = {hp['channels']} hidden channels, M = {hp['latent']} latent channels at 1/16 of the resolution.

**Data:** the images of `{cfg['data_dir']}`: BSDS500 train + val (300 photos) for training, its test
split (200) for validation (256×256 centre crops of 24 of them); evaluated on the 24 Kodak images only.

**Settings:** λ = {hp['lam']}, batch {cfg['batch_size']} random {cfg['crop']}×{cfg['crop']} crops with
random flips, {lr}, gradient clipping at norm {cfg['clip']}, seed {cfg['seed']}; {start}.

**Budget:** {len(log)} epochs of {cfg['steps_per_epoch']} steps ({len(log) * cfg['steps_per_epoch']:,} steps)
on the CPU of {m['cpu']} ({m['cpu_count']} cores, shared with other jobs), {hours:.2f} h; no GPU.
The best validation loss {best['valid_loss']:.4f} (λ·255²·MSE + bpp; {best.get('valid_bpp', 0):.3f} bpp,
{best.get('valid_psnr', 0):.2f} dB on the validation crops) was at epoch {best['epoch']}: this is the model
kept. {_sentence(_stop_reason(cfg, len(log), best['epoch']))} This budget is small for such models (published
ones train far longer, usually on GPUs): the numbers below are those of an early model.

## Kodak (24 images, real files with headers)

| bits per pixel | PSNR-RGB (dB) | MS-SSIM | encode s/image | decode s/image | cold-start decode s |
|---:|---:|---:|---:|---:|---:|
| {ev['bpp']:.4f} | {ev['psnr']:.2f} | {ev['ms_ssim']:.4f} | {ev['encode_s']:.2f} | {ev['decode_s']:.2f} | \
{ev['cold_decode_s'] or float('nan'):.2f} |

Measured with: `{command}`
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m latcomp.modelcard", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model directory")
    parser.add_argument("--data-dir", default=None, help="dataset directory (default: $LATCOMP_DATA or the cache)")
    parser.add_argument("--dithers", type=int, default=10, help="dithers per digit")
    parser.add_argument("--bench-json", default=None,
                        help="photo models: take the Kodak numbers from this `latcomp bench --photo --json` report")
    args = parser.parse_args(argv)
    command = " ".join(["python -m latcomp.modelcard", *(sys.argv[1:] if argv is None else argv)])
    photo = family(read_config(args.model)["architecture"]).modality == "photo"
    evaluation = evaluate_photo_model(args.model, args.data_dir, args.bench_json) if photo else \
        evaluate_model(args.model, args.data_dir, args.dithers)
    atomic_write_text(Path(args.model) / "evaluation.json", json.dumps({**evaluation, "command": command}, indent=2))
    card = (render_photo_card if photo else render_card)(args.model, evaluation, command)
    atomic_write_text(Path(args.model) / "MODEL_CARD.md", card)
    print(card)


if __name__ == "__main__":
    main()
