"""Lattice benchmark: real files of every lattice model, their ideal and training rates, the box-code gap.

Run ``python -m benchmarks.lattices MODEL_DIR... [--data-dir DIR]``. For each model, on the
10,000 static-binarized MNIST test digits (all models in one run, so timings are side by side):

* lossy batch: payload bits / ideal Σ −log2 P(Ẑ|U) of the coded points; the ideal against the
  training rate (the same closed form at X − U' with fresh, independent dithers), paired per
  digit with its standard error (Theorem 1 says they are equal in expectation);
* the gap between the sequential box code and the exact Voronoi-cell mass P(X̂ ∈ Z − U + P0),
  estimated by Monte Carlo with ``--cell-samples`` uniform points per cell, in bits per digit;
* lossless: bits per pixel of the real container (header included) and payload / ideal;
* encode and decode throughput of the lossy batch (images/s, median of 3) and the share of the
  encode time spent in nearest-point decoding K_Λ.

Writes ``docs/results/lattices.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.codec import _theorem1_bits
from latcomp.codec import code_lengths, compress, decompress, load_model, read_header
from latcomp.data import load_dataset
from latcomp.measure.bench import spaced_subset
from latcomp.measure.results import machine_info, timed, write_results
from latcomp.nll import ACTIVE_RATIO

LN2 = math.log(2.0)


def voronoi_gap_bits(m: Any, x_latent: np.ndarray, seed: int, cell_samples: int, rng: np.random.Generator
                     ) -> tuple[float, float]:
    """Mean over digits of (box-code bits − Voronoi-cell-mass bits) and its standard error.

    Prior and cell factorize over blocks, so log P_vor = Σ_b log P_b. For a ``z`` block the
    cell is the box (gap 0 exactly); for the others P_b(z | u) = ∫_{η_b + P0_b} f_X̂ =
    V_b·E_e[f_X̂(η_b + e)], e ~ Uniform(P0_b), η = z − u, estimated with ``cell_samples``
    cell points (shared by the digits), in log space.
    """
    latent = m.latent
    lattice = latent.lattice
    n = len(x_latent)
    u = latent.seeded_dither(seed, n)
    k = latent.quantize(x_latent, u)
    eta = latent.reconstruct(k, u)
    box_bits = -latent.code.log2_prob(k, u)                      # per coordinate
    e = latent.dither(rng.random((cell_samples, latent.dim)))
    b = np.asarray(latent.b, np.float64)
    log_v = np.asarray(latent.block_log_volumes(), np.float64)
    gap = np.zeros(n)
    for blk, (start, block) in enumerate(zip(lattice.starts, lattice.blocks, strict=True)):
        if block.name == "z":
            continue
        cols = slice(start, start + block.dim)
        for i in range(n):
            y = eta[i, cols] + e[:, cols]
            log_f = (-np.abs(y) / b[cols] - np.log(2 * b[cols])).sum(-1)
            top = log_f.max()
            vor_bits = -(log_v[blk] + top + math.log(np.exp(log_f - top).mean())) / LN2
            gap[i] += box_bits[i, cols].sum() - vor_bits
    return float(gap.mean()), float(gap.std(ddof=1) / math.sqrt(n))


def bench_lattice_model(model: Path, x: np.ndarray, seed: int, fresh_dithers: int, gap_digits: int,
                        cell_samples: int) -> dict[str, Any]:
    m = load_model(model)
    n, pixels = x.shape[0], x.size
    out: dict[str, Any] = {"model": str(model), "lattice": m.latent.lattice.spec, "latent": m.latent.dim,
                           "active_dims": int(np.sum(m.latent.code.coded_scale >= ACTIVE_RATIO))}

    data, t_enc = timed(lambda: compress(x, m, seed=seed), 3)
    _, t_dec = timed(lambda: decompress(data, m), 3)
    header = read_header(data)
    u = m.latent.seeded_dither(seed, n)
    x_latent = m.net.encode(x)
    start = time.perf_counter()
    k = m.latent.quantize(x_latent, u)
    t_quantize = time.perf_counter() - start
    ideal = -m.latent.code.log2_prob(k, u).sum(-1)
    train_rate = _theorem1_bits(m, x_latent, [seed + 1 + i for i in range(fresh_dithers)])
    diff = ideal - train_rate
    out["lossy"] = {
        "file_bytes": len(data), "bits_per_image": 8 * len(data) / n,
        "payload_over_ideal": 8 * header.payload_bytes / float(ideal.sum()),
        "ideal_bits_per_image": float(ideal.mean()), "training_rate_bits_per_image": float(train_rate.mean()),
        "ideal_minus_training_rate": float(diff.mean()),
        "ideal_minus_training_rate_se": float(diff.std(ddof=1) / math.sqrt(n)),
        "encode_images_per_s": n / t_enc, "decode_images_per_s": n / t_dec,
        "quantize_share_of_encode": t_quantize / t_enc,
    }
    lo = out["lossy"]
    lo["within_3_se"] = abs(lo["ideal_minus_training_rate"]) <= 3 * lo["ideal_minus_training_rate_se"]
    gap, gap_se = voronoi_gap_bits(m, spaced_subset(x_latent, gap_digits), seed, cell_samples,
                                   np.random.default_rng(seed))
    out["box_minus_voronoi_bits_per_image"] = gap
    out["box_minus_voronoi_se"] = gap_se
    out["gap_digits"], out["cell_samples"] = gap_digits, cell_samples

    data, t_enc = timed(lambda: compress(x, m, lossless=True, seed=seed), 1)
    back, t_dec = timed(lambda: decompress(data, m), 1)
    if not np.array_equal(back, x):
        raise AssertionError(f"{model}: lossless round trip failed")
    ideal_ll = sum(code_lengths(x, m, lossless=True, seed=seed).values())
    out["lossless"] = {"bits_per_pixel": 8 * len(data) / pixels,
                       "payload_over_ideal": 8 * read_header(data).payload_bytes / ideal_ll,
                       "encode_images_per_s": n / t_enc, "decode_images_per_s": n / t_dec}
    return out


def decoder_throughput(points: int = 20000, seed: int = 0) -> list[dict[str, Any]]:
    """Nearest-point decodes per second of every unit lattice (dither-like inputs), fast and brute force."""
    from latcomp.lattices import LATTICES, unit_lattice

    rng = np.random.default_rng(seed)
    rows = []
    for name in LATTICES:
        lat = unit_lattice(name)
        x = rng.random((points, lat.dim)) @ lat.basis
        lat.nearest(x[:8])  # build tables
        _, t = timed(lambda lat=lat, x=x: lat.nearest(x), 3)
        row = {"lattice": name, "dim": lat.dim, "points_per_s": points / t}
        decoder = getattr(lat, "_decoder", None)
        if decoder is not None:
            few = x[:max(points // 50, 100)]
            _, tb = timed(lambda decoder=decoder, few=few: decoder.brute_force(few), 1)
            row["brute_force_points_per_s"] = len(few) / tb
        rows.append(row)
    return rows


def to_markdown(res: dict[str, Any], command: str) -> str:
    lines = ["# Lattices: real files, ideal and training rates, box-code gap", "",
             f"Command: `{command}`  ",
             f"Machine: {res['machine']['cpu']}, {res['machine']['cpu_count']} cores; "
             f"{res['images']} static-binarized MNIST test digits; all models in one run.", "",
             "| model | lattice | active dims | lossy bits/digit (file) | payload / ideal "
             "| ideal − training rate (bits) | box − Voronoi (bits/digit) | lossless bits/pixel "
             "| encode img/s | decode img/s | K_Λ share of encode |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["models"]:
        lo, ll = r["lossy"], r["lossless"]
        lines.append(
            f"| {Path(r['model']).name} | {r['lattice']} | {r['active_dims']}/{r['latent']} "
            f"| {lo['bits_per_image']:.2f} | {lo['payload_over_ideal']:.5f} "
            f"| {lo['ideal_minus_training_rate']:+.3f} ± {lo['ideal_minus_training_rate_se']:.3f} "
            f"| {r['box_minus_voronoi_bits_per_image']:+.4f} ± {r['box_minus_voronoi_se']:.4f} "
            f"| {ll['bits_per_pixel']:.4f} | {lo['encode_images_per_s']:,.0f} | {lo['decode_images_per_s']:,.0f} "
            f"| {100 * lo['quantize_share_of_encode']:.0f}% |")
    lines += ["", f"Active dims: coordinates with b_i/w_i ≥ {ACTIVE_RATIO} (the others carry almost no information). "
              "Ideal − training rate: per digit, Σ −log2 P(Ẑ|U) of the coded point minus the training "
              "rate term at X − U' (mean of fresh dithers); ± is the standard error over digits (Theorem 1: "
              "zero in expectation). Box − Voronoi: what the closed-form sequential code costs over the exact "
              f"Voronoi-cell mass (Monte Carlo, {res['models'][0]['cell_samples'] if res['models'] else 0} "
              f"points per cell, {res['models'][0]['gap_digits'] if res['models'] else 0} evenly spaced digits; "
              "the estimate of −log of a cell mass is biased upwards, so the gap is biased downwards). "
              "Throughput: batch of all digits in one call, median of 3.", "",
              "## Nearest-point decoders", "",
              "| lattice | dim | points/s | brute-force union of cosets, points/s |", "|---|---|---|---|"]
    for r in res["decoders"]:
        brute = r.get("brute_force_points_per_s")
        lines.append(f"| {r['lattice']} | {r['dim']} | {r['points_per_s']:,.0f} | "
                     f"{'—' if brute is None else f'{brute:,.0f}'} |")
    lines += ["", "Dither-like inputs (v·B, v uniform), one process, median of 3."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lattices", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--images", type=int, default=None,
                        help="Use N evenly spaced test digits (the split is sorted by class).")
    parser.add_argument("--gap-digits", type=int, default=1000)
    parser.add_argument("--cell-samples", type=int, default=2048)
    parser.add_argument("--fresh-dithers", type=int, default=10)
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--name", default="lattices", help="Results file name (NAME.json, NAME.md).")
    args = parser.parse_args(argv)
    x = load_dataset("binarized-mnist", "test", args.data_dir)
    if args.images:
        x = spaced_subset(x, args.images)
    res = {"images": len(x), "models": [], "machine": machine_info()}
    for model in args.models:
        print(f"{model} ...", file=sys.stderr)
        res["models"].append(bench_lattice_model(model, x, 0, args.fresh_dithers, min(args.gap_digits, len(x)),
                                                 args.cell_samples))
    res["decoders"] = decoder_throughput()
    res["machine"] = machine_info()
    command = " ".join(["python -m benchmarks.lattices", *argv])
    kwargs = {"out_dir": args.out_dir} if args.out_dir else {}
    for path in write_results(args.name, res, to_markdown(res, command), command, **kwargs):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
