"""Encoder effort on Kodak: BD-rate of effort K against effort 0, and seconds per image.

Run ``OMP_NUM_THREADS=1 python -m benchmarks.photo_effort --data-dir ../shared/data``. For every effort K of
``--efforts`` (default 0, 25, 100) and every method of ``--methods`` (default the library's, dithered) the
photo models (default: the shipped hyperprior models ``models/photo-hyper-q1`` … ``q5``) code the images with
:func:`latcomp.photo.codec.compress` ``effort=K`` (the dither seed of each image as ``latcomp bench --photo``),
the files are decoded by the ordinary decoder, and each K gives one RD curve
(:func:`latcomp.measure.photo_bench.latcomp_curves`: bpp of the whole files, PSNR-RGB, MS-SSIM, encode and
decode seconds per image, one run each). BD-rates (:mod:`latcomp.measure.rd`) are against the effort-0 curve.

A step runs the synthesis and its gradient on the whole image (over a second of one core on a Kodak image),
so the default measures a fixed subset,
every ``--every``-th image (6: kodim01, 07, 13, 19); ``--crop N`` measures N×N centre crops instead (quick
comparisons, e.g. of the methods). Writes ``docs/results/NAME.{json,md,png}`` (``--name``, default
``photo-effort``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch  # noqa: F401  (imported here, so that the first timed encode with effort does not count it)

from latcomp.measure.kodak import load_kodak
from latcomp.measure.peers import package_versions
from latcomp.measure.photo_bench import default_models, latcomp_curves
from latcomp.measure.rd import BD_METHODS, METRICS, Curve, bd_table, now, percent, write_report
from latcomp.measure.results import RESULTS_DIR, git_commit, machine_info
from latcomp.photo.effort import LEARNING_RATE, METHODS, Effort

TITLE = "Encoder effort of the photo models on Kodak"


def crops(images: list[tuple[str, np.ndarray]], size: int) -> list[tuple[str, np.ndarray]]:
    """The ``size``×``size`` centre crop of every image (the whole image where it is smaller)."""
    out = []
    for name, img in images:
        top, left = max(0, (img.shape[0] - size) // 2), max(0, (img.shape[1] - size) // 2)
        out.append((name, np.ascontiguousarray(img[top:top + size, left:left + size])))
    return out


def curve_label(effort: Effort) -> str:
    """The name of an effort's curve: ``effort K``, with the method and learning rate where not the default."""
    label = f"effort {effort.steps}"
    if effort.steps and (effort.method, effort.learning_rate) != (METHODS[0], LEARNING_RATE):
        label += f" ({effort.method}, lr {effort.learning_rate:g})"
    return label


def measure(models: list[Path], images: list[tuple[str, np.ndarray]], efforts: list[Effort]) -> list[Curve]:
    """One curve per effort (the first is the anchor); a line per model and effort on stdout."""
    curves = []
    for effort in efforts:
        (curve,) = latcomp_curves(models, images, repeats=1, cold_runs=0, log=print, effort=effort)
        curve.name = curve_label(effort)
        curves.append(curve)
    return curves


def summary(curves: list[Curve]) -> list[str]:
    """Markdown: per effort, the BD-rates against the first curve and the mean seconds per image."""
    rows = {r["curve"]: r for r in bd_table(curves, curves[0].name)}
    lines = ["## Summary", "",
             f"BD-rates against `{curves[0].name}` (negative: fewer bits at equal quality), and seconds per image "
             "(mean over the models and images of one encode, effort included; decode as always).", "",
             "| curve | " + " | ".join(f"BD {METRICS[m]} {i}" for m in METRICS for i in BD_METHODS)
             + " | encode s/image | decode s/image |", "|---|" + "---:|" * (len(METRICS) * len(BD_METHODS) + 2)]
    for c in curves:
        r = rows.get(c.name, {})
        bd = " | ".join(percent(r.get(f"{m}_{i}")) if r else "anchor" for m in METRICS for i in BD_METHODS)
        lines.append(f"| {c.name} | {bd} | {np.mean([p.enc_s for p in c.points]):.2f} | "
                     f"{np.mean([p.dec_s for p in c.points]):.2f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="photo model directories (default: the shipped ones)")
    parser.add_argument("--data-dir", default=None, help="the Kodak folder or a data root holding kodak/")
    parser.add_argument("--efforts", default="0,25,100", help="comma-separated steps K; the first is the anchor")
    parser.add_argument("--methods", default=METHODS[0], help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--every", type=int, default=6, help="every N-th Kodak image, from the first")
    parser.add_argument("--crop", type=int, default=None, help="N×N centre crops instead of whole images")
    parser.add_argument("--name", default="photo-effort", help="results name under docs/results/")
    args = parser.parse_args(argv)
    steps = [int(k) for k in args.efforts.split(",")]
    efforts = [Effort(steps[0])] + [Effort(k, method, args.learning_rate) for method in args.methods.split(",")
                                    for k in steps[1:]]
    images, data = load_kodak(args.data_dir)
    images = images[::args.every]
    images = crops(images, args.crop) if args.crop else images
    data.update(images=len(images), pixels=int(sum(img.shape[0] * img.shape[1] for _, img in images)),
                subset=f"every {args.every}th image: {', '.join(name for name, _ in images)}"
                       + (f"; {args.crop}×{args.crop} centre crops" if args.crop else ""))
    start = time.perf_counter()
    curves = measure(list(args.models or default_models()), images, efforts)
    command = shlex.join(["python", "-m", "benchmarks.photo_effort", *(argv if argv is not None else sys.argv[1:])])
    meta: dict[str, Any] = {
        "date": now(), "wall_s": time.perf_counter() - start, "repeats": 1, "commit": git_commit(),
        "machine": machine_info(), "versions": package_versions(("latcomp", "constriction", "torch")),
        "data": data, "efforts": [str(e) for e in efforts],
        "note": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, commit {git_commit()}"}
    notes = [f"Images: {data['subset']} (a fixed subset, to bound the CPU time: every step runs the synthesis and "
             "its gradient on the whole image). Each curve is one effort K of "
             "`latcomp.photo.codec.compress(image, model, seed, effort=K)` over the models; every file is decoded "
             "by the ordinary decoder. Encode seconds include the effort's steps (one thread for numpy and torch).",
             "", *summary(curves)]
    base = RESULTS_DIR / args.name
    for path in write_report(curves, meta, command, base.with_suffix(".json"), base.with_suffix(".md"),
                             base.with_suffix(".png"), anchor=curves[0].name, title=TITLE, notes=notes):
        print(path)


if __name__ == "__main__":
    main()
