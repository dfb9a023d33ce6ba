"""Photo training levers at equal steps: each run's validation curve and its point on Kodak.

Run ``python -m benchmarks.photo_levers RUN_DIR ... --origin models/photo-q3 --data-dir ../shared/data``.
Every RUN_DIR is a photo model trained by ``latcomp train`` (its ``config.json`` and ``train-log.jsonl``).
For each run the report gives its recipe (architecture, λ, crop, batch, ``--downscale``, the model it
started from), its steps counted from ``--origin`` along the chain of ``--init`` models (so runs that
start from the same model at the same point are compared at equal total steps), its best validation loss
(bpp + λ·255²·MSE on the 256² centre crops of its validation images), and its Kodak point: mean bpp of the
real files, mean PSNR-RGB and MS-SSIM, and the mean over the images of bpp + λ·255²·MSE (the training loss,
measured on the 24 Kodak images; lower is better at equal λ). The plot shows every run's validation loss
against those steps. Writes ``docs/results/NAME.{json,md,png}`` (``--name``, default ``photo-levers``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from latcomp.measure.kodak import data_line, load_kodak
from latcomp.measure.photo_bench import latcomp_curves
from latcomp.measure.results import RESULTS_DIR, machine_info, pyplot, write_results
from latcomp.modelfile import read_config
from latcomp.train import TrainConfig, read_train_log

#: The recipe fields a run reports (``training.config`` of its ``config.json``), in this order.
RECIPE = ("architecture", "lam", "crop", "batch_size", "downscale", "lr", "lr_drop", "init")


def steps_before(run: Path, origin: Path) -> int:
    """Training steps from ``origin`` to the start of ``run``: the logged epochs of every ``--init`` model
    between them (each logged epoch is ``steps_per_epoch`` steps)."""
    steps, here = 0, read_config(run)["training"]["config"].get("init")
    while here is not None and Path(here).resolve() != origin.resolve():
        cfg = read_config(here)["training"]["config"]
        steps += len(read_train_log(here)) * cfg["steps_per_epoch"]
        here = cfg.get("init")
    if here is None:
        raise ValueError(f"{run} does not start from {origin} (its chain of --init models ends without it)")
    return steps


def run_summary(run: Path, origin: Path) -> dict[str, Any]:
    cfg = read_config(run)["training"]["config"]
    log = read_train_log(run)
    start = steps_before(run, origin)
    best = min(log, key=lambda r: r["valid_loss"])
    return {"run": str(run), "recipe": {k: cfg.get(k, getattr(TrainConfig, k)) for k in RECIPE},
            "start_step": start, "end_step": start + len(log) * cfg["steps_per_epoch"],
            "best_valid_loss": best["valid_loss"], "best_epoch": best["epoch"],
            "curve": [[start + r["epoch"] * cfg["steps_per_epoch"], r["valid_loss"]] for r in log]}


def kodak_points(runs: list[Path], data_dir: str | None) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Each run's Kodak point (bpp, PSNR, MS-SSIM, the loss at its λ), by run directory."""
    images, data = load_kodak(data_dir)
    points = {}
    for curve in latcomp_curves([str(r) for r in runs], images, repeats=1, cold_runs=0):
        for p in curve.points:
            lam = p.info["lam"]
            loss = sum(i["bpp"] + lam * 255.0**2 * 10.0 ** (-i["psnr"] / 10.0) for i in p.per_image) / len(p.per_image)
            points[str(Path(p.info["model_dir"]))] = {"bpp": p.bpp, "psnr": p.psnr, "ms_ssim": p.ms_ssim,
                                                      "loss": loss}
    return points, data


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in rows:
        steps, loss = zip(*r["curve"], strict=True)
        ax.plot(steps, loss, marker=".", label=Path(r["run"]).name)
    ax.set_xlabel("training steps from the origin model")
    ax.set_ylabel("validation loss (bpp + λ·255²·MSE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def to_markdown(rows: list[dict[str, Any]], origin: str, command: str, data: dict[str, Any],
                machine: dict[str, Any], plot_name: str) -> str:
    lines = ["# Photo training levers at equal steps", "", f"Command: `{command}`  ",
             f"Machine: {machine['cpu']}, {machine['cpu_count']} CPUs, load average {machine['load_average']}  ",
             data_line(data), "",
             __doc__.split("\n\n")[1].replace("\n", " "), "", f"Origin: `{origin}`.", "",
             "| run | architecture | λ | crop × batch | downscale | lr drop | from | steps | best valid (epoch) | "
             "Kodak bpp | PSNR | MS-SSIM | Kodak loss |",
             "|---|---|---:|---|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        c, k = r["recipe"], r["kodak"]
        lines.append(f"| {Path(r['run']).name} | {c['architecture']} | {c['lam']:g} | {c['crop']}² × {c['batch_size']} "
                     f"| {c['downscale']} | {c['lr_drop'] or '—'} | {Path(c['init']).name if c['init'] else '—'} "
                     f"| {r['start_step']:,}–{r['end_step']:,} | {r['best_valid_loss']:.4f} ({r['best_epoch']}) "
                     f"| {k['bpp']:.4f} | {k['psnr']:.3f} | {k['ms_ssim']:.5f} | {k['loss']:.4f} |")
    return "\n".join(lines + ["", f"![validation curves]({plot_name})", ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_levers", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="photo model directories (trained runs with their logs)")
    parser.add_argument("--origin", required=True, help="the model every run's chain of --init models starts from")
    parser.add_argument("--data-dir", default=None, help="the Kodak folder or a data root holding kodak/")
    parser.add_argument("--name", default="photo-levers", help="results file name under docs/results/")
    args = parser.parse_args(argv)
    runs, origin = [Path(r) for r in args.runs], Path(args.origin)
    rows = [run_summary(r, origin) for r in runs]
    points, data = kodak_points(runs, args.data_dir)
    for r in rows:
        r["kodak"] = points[str(Path(r["run"]))]
    command = shlex.join(["python", "-m", "benchmarks.photo_levers", *(argv if argv is not None else sys.argv[1:])])
    machine = machine_info()
    plot(rows, RESULTS_DIR / f"{args.name}.png")
    write_results(args.name, {"origin": args.origin, "rows": rows, "data": data, "machine": machine},
                  to_markdown(rows, args.origin, command, data, machine, f"{args.name}.png"), command)


if __name__ == "__main__":
    main()
