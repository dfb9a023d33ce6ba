"""Where a photo fine-tune starts: the validation loss of ``--init``'s starting point, lattice scales moved or not.

Run ``python -m benchmarks.fine_tune_start [--model DIR]``. For each target λ it builds the
starting point of ``latcomp train --init DIR --lam λ`` (:func:`latcomp.nn.photo.relattice`)
and evaluates it on the validation crops of the model's training folder (the criterion of
training: λ·255²·MSE + bpp, fixed dither seed), with every lattice scale multiplied by
(λ_source/λ)^p for p = 0 (the scales as they were), ¼, ½ (what ``relattice`` does: the
high-rate optimum) and ¾. Writes ``docs/results/fine-tune-start.{json,md}``.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from latcomp.measure.results import machine_info, write_results
from latcomp.modelfile import load_model, read_config
from latcomp.nn.photo import relattice
from latcomp.train import _load_data, default_config, evaluate

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = (0.013, 0.0067, 0.0035)
POWERS = (0.0, 0.25, 0.5, 0.75)


def starting_losses(model_dir: str, data_dir: str | None, lattice: str) -> list[dict[str, Any]]:
    """Validation loss, bpp and PSNR of the fine-tune start per target λ and scale power."""
    source = load_model(model_dir)
    train_cfg = read_config(model_dir)["training"]["config"]
    cfg = default_config("photo-factorized", data_dir=data_dir or train_cfg["data_dir"])
    _, valid = _load_data(cfg, None)
    rows = []
    for lam in LAMBDAS:
        for power in POWERS:
            model = relattice(source, lattice, lam=lam)  # scales × (λ_source/λ)^½ (rate_step_factor)
            with torch.no_grad():
                model.log_delta.add_((power - 0.5) * math.log(source.lam / lam))
            r = evaluate(model, valid, batch_size=8)
            rows.append({"lam": lam, "power": power, "loss": r["loss"], "bpp": r["bpp"], "psnr": r["psnr"]})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def to_markdown(res: dict[str, Any], command: str) -> str:
    lines = ["# Where a photo fine-tune starts", "", f"Command: `{command}`  ",
             f"Model: `{res['model']}` (λ = {res['source_lam']}, best model at {res['source_steps']} steps); "
             f"lattice of the fine-tune: {res['lattice']}; machine: {res['machine']['cpu']}.", "",
             "Validation loss (λ·255²·MSE + bpp on the 24 validation crops of 256², fixed dither seed) of the "
             "starting point of `latcomp train --init MODEL --lam λ`, its lattice scales multiplied by "
             "(λ_source/λ)^p. `--init` uses p = ½, the high-rate optimum.", "",
             "| λ | " + " | ".join(f"p = {p}" for p in POWERS) + " |", "|---:|" + "---:|" * len(POWERS)]
    for lam in LAMBDAS:
        cells = [r for r in res["rows"] if r["lam"] == lam]
        best = min(cells, key=lambda r: r["loss"])
        lines.append(f"| {lam} | " + " | ".join(
            (f"**{r['loss']:.4f}**" if r is best else f"{r['loss']:.4f}") + f" ({r['bpp']:.3f} bpp, {r['psnr']:.2f} dB)"
            for r in cells) + " |")
    return "\n".join(lines + ["", "Bold: the lowest loss of the row.", ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fine_tune_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "models" / "photo-base"), help="the model fine-tunes start from")
    parser.add_argument("--lattice", default="z", help="lattice of the fine-tunes")
    parser.add_argument("--data-dir", default=None, help="training folder (default: the model's)")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "results"))
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks.fine_tune_start", *(sys.argv[1:] if argv is None else argv)])
    torch.set_num_threads(1)
    training = read_config(args.model)["training"]
    res = {"model": os.path.relpath(Path(args.model).resolve(), REPO), "lattice": args.lattice,
           "source_lam": read_config(args.model)["hparams"]["lam"],
           "source_steps": training["best_epoch"] * training["config"]["steps_per_epoch"],
           "rows": starting_losses(args.model, args.data_dir, args.lattice), "machine": machine_info()}
    js, md = write_results("fine-tune-start", res, to_markdown(res, command), command, args.out_dir)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
