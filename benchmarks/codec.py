"""Codec benchmark: real file sizes against the ideal code length and generic compressors.

Run ``python -m benchmarks.codec`` (``--help`` for options). On the 10,000
static-binarized MNIST test digits with the default model it measures

* lossy batch: payload bits vs the ideal Σ −log2 P(Ẑ|U) of the coded lattice
  points, and that ideal vs the Theorem-1 rate term E[log f_U(U)/f_{X̂−U}(X−U)]
  (Eq. 7) evaluated with fresh dithers;
* lossless batch: bits per pixel of the real container vs the ideal two-part code
  (latent bits + −log2 Q(D | Z − U)), beside PNG (optimize), lossless WebP and
  gzip/bz2/xz/zstd of the packed bits of the same digits;
* mean bytes of single-image files (lossy, lossless), header included;
* batch encode/decode throughput and single-image CLI wall times (medians);

and writes ``docs/results/codec.json`` and ``docs/results/codec.md`` (with the
command and the machine). :func:`run_benchmark` is the same as a function.
"""

from __future__ import annotations

import argparse
import bz2
import datetime
import gzip
import io
import lzma
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from latcomp.codec import code_lengths, compress, decompress, load_model, read_header
from latcomp.data import load_dataset
from latcomp.digits.codec import PIXELS
from latcomp.measure.results import machine_info, timed, write_results
from latcomp.modelfile import DEFAULT_MODEL, read_config

LN2 = math.log(2.0)
REPO = Path(__file__).resolve().parents[1]


def generic_compressors(x: np.ndarray) -> dict[str, dict[str, float]]:
    """Sizes of the binary images ``x`` (N, H, W) uint8 0/1 under generic lossless compressors.

    gzip/bz2/xz/zstd compress the packed bits (8 pixels per byte, row-major). PNG
    (1-bit, optimize) and lossless WebP (method 6) are measured per image (one file
    each) and on one mosaic image of all digits (the batch comparison).
    """
    from PIL import Image

    n, h, w = x.shape
    pixels = x.size
    packed = np.packbits(x.reshape(-1)).tobytes()
    sizes: dict[str, int] = {
        "packed bits (no compression)": len(packed),
        "gzip -9 (packed bits)": len(gzip.compress(packed, 9, mtime=0)),
        "bz2 -9 (packed bits)": len(bz2.compress(packed, 9)),
        "xz -9e (packed bits)": len(lzma.compress(packed, preset=9 | lzma.PRESET_EXTREME)),
    }
    try:
        import zstandard

        sizes["zstd -22 (packed bits)"] = len(zstandard.ZstdCompressor(level=22).compress(packed))
    except ImportError:
        pass

    def png(img: Image.Image) -> int:
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        return buf.tell()

    def webp(img: Image.Image) -> int:
        buf = io.BytesIO()
        img.save(buf, format="WEBP", lossless=True, quality=100, method=6)
        return buf.tell()

    images = [Image.fromarray(d.astype(bool)) for d in x]
    sizes["PNG optimize, one file per image"] = sum(png(i) for i in images)
    sizes["WebP lossless, one file per image"] = sum(webp(i.convert("L")) for i in images)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    mosaic = np.zeros((rows * cols, h, w), np.uint8)
    mosaic[:n] = x
    mosaic = mosaic.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    sizes["PNG optimize, one mosaic image"] = png(Image.fromarray(mosaic.astype(bool)))
    sizes["WebP lossless, one mosaic image"] = webp(Image.fromarray(mosaic * 255))
    return {name: {"bytes": b, "bits_per_pixel": 8 * b / pixels} for name, b in sizes.items()}


def _theorem1_bits(m: Any, x_latent: np.ndarray, seeds: list[int]) -> np.ndarray:
    """Per image: mean over fresh dithers of Σ_i log f_U(U)/f_{X̂−U}(X−U) in bits (Eq. 7, 15)."""
    total = np.zeros(x_latent.shape[0])
    for s in seeds:
        u = m.latent.seeded_dither(s, x_latent.shape[0])
        total += m.latent.rate_nats(x_latent - u) / LN2
    return total / len(seeds)


def _cli_times(model: Path, digit: np.ndarray, repeats: int) -> dict[str, float]:
    """Median wall times (s) of one-image CLI calls, and the import baseline, in fresh processes."""
    from PIL import Image

    exe = shutil.which("latcomp")
    base = [exe] if exe else [sys.executable, "-c", "import sys; from latcomp.cli import main; main(sys.argv[1:])"]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        Image.fromarray(digit * 255).save(t / "d.png")
        runs = {
            "python -c 'import numpy, PIL.Image, constriction' (baseline)":
                [sys.executable, "-c", "import numpy, PIL.Image, constriction"],
            "latcomp encode (lossy)": [*base, "encode", str(t / "d.png"), "-o", str(t / "a.lat"), "--force", "-q",
                                       "--model", str(model)],
            "latcomp decode (lossy)": [*base, "decode", str(t / "a.lat"), "-o", str(t / "a.png"), "--force",
                                       "-q", "--model", str(model)],
            "latcomp encode --lossless": [*base, "encode", str(t / "d.png"), "-o", str(t / "b.lat"), "--lossless",
                                          "--force", "-q", "--model", str(model)],
            "latcomp decode (lossless)": [*base, "decode", str(t / "b.lat"), "-o", str(t / "b.png"), "--force",
                                          "-q", "--model", str(model)],
        }
        for name, cmd in runs.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times.append(time.perf_counter() - start)
            out[name] = statistics.median(times)
    return out


def run_benchmark(model: str | os.PathLike = DEFAULT_MODEL, data_dir: str | os.PathLike | None = None,
                  limit: int | None = None, cli_repeats: int = 5, fresh_dithers: int = 10, seed: int = 0,
                  log: Callable[[str], None] = print, digits: np.ndarray | None = None) -> dict[str, Any]:
    """Measure the codec on the binarized-MNIST test digits; returns the results as a dict.

    ``digits`` (uint8 0/1, (N, 784)) replaces the test set, e.g. for a quick check.
    """
    model = Path(model)
    m = load_model(model)
    x = load_dataset("binarized-mnist", "test", data_dir) if digits is None else np.asarray(digits, np.uint8)
    if limit:
        x = x[:limit]
    n, pixels = x.shape[0], x.size
    images = x.reshape(n, 28, 28)
    res: dict[str, Any] = {"images": n, "pixels_per_image": x.shape[1], "seed": seed,
                           "model": {"path": os.path.relpath(Path(model).resolve(), REPO), "digest": m.digest,
                                     "training": read_config(model).get("training", {})}}

    log(f"lossy batch of {n} digits")
    data, t_enc = timed(lambda: compress(x, m, seed=seed), 3)
    out, t_dec = timed(lambda: decompress(data, m), 3)
    header = read_header(data)
    u = m.latent.seeded_dither(seed, n)
    x_latent = m.net.encode(x)
    k = m.latent.quantize(x_latent, u)
    ideal_per_image = -m.latent.code.log2_prob(k, u).sum(-1)
    ideal = float(ideal_per_image.sum())
    thm1 = _theorem1_bits(m, x_latent, [seed + 1 + i for i in range(fresh_dithers)])
    diff = ideal_per_image - thm1
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    payload_bits = 8 * header.payload_bytes
    res["lossy"] = {
        "file_bytes": len(data), "header_bytes": header.header_bytes, "payload_bits": payload_bits,
        "ideal_bits": ideal, "payload_over_ideal": payload_bits / ideal,
        "bits_per_image": payload_bits / n, "ideal_bits_per_image": ideal / n,
        "theorem1_bits_per_image": float(thm1.mean()), "theorem1_fresh_dithers": fresh_dithers,
        "ideal_minus_theorem1_bits_per_image": float(diff.mean()), "ideal_minus_theorem1_se": se,
        "ideal_vs_theorem1_relative": float(diff.mean() / thm1.mean()),
        "encode_images_per_s": n / t_enc, "decode_images_per_s": n / t_dec,
    }
    lossy = res["lossy"]
    lossy["pass_payload_le_1.001_ideal"] = lossy["payload_over_ideal"] <= 1.001
    lossy["pass_ideal_vs_theorem1"] = bool(abs(lossy["ideal_vs_theorem1_relative"]) <= 0.005
                                           or abs(diff.mean()) <= 3 * se)
    assert out.shape == x.shape

    log("lossless batch")
    data, t_enc = timed(lambda: compress(x, m, lossless=True, seed=seed), 3)
    out, t_dec = timed(lambda: decompress(data, m), 3)
    if not np.array_equal(out, x):
        raise AssertionError("lossless round trip failed")
    header = read_header(data)
    ideal = code_lengths(x, m, lossless=True, seed=seed)
    ideal_bits = ideal["latent"] + ideal["pixels"]
    # the model's −ELBO with fresh dithers (Eq. 10/15 with λ = 1), for reference
    elbo_bits = 0.0
    for s in range(fresh_dithers):
        uf = m.latent.seeded_dither(seed + 1 + s, n)
        p = m.net.decode_probs(x_latent - uf)
        elbo_bits += PIXELS.ideal_bits(x, p)
    elbo_bits = elbo_bits / fresh_dithers + float(thm1.sum())
    res["lossless"] = {
        "file_bytes": len(data), "header_bytes": header.header_bytes, "payload_bits": 8 * header.payload_bytes,
        "ideal_latent_bits": ideal["latent"], "ideal_pixel_bits": ideal["pixels"], "ideal_bits": ideal_bits,
        "payload_over_ideal": 8 * header.payload_bytes / ideal_bits,
        "bits_per_pixel": 8 * len(data) / pixels, "ideal_bits_per_pixel": ideal_bits / pixels,
        "neg_elbo_bits_per_pixel": elbo_bits / pixels, "neg_elbo_nats_per_image": elbo_bits * LN2 / n,
        "encode_images_per_s": n / t_enc, "decode_images_per_s": n / t_dec,
    }
    log("generic compressors")
    generic = generic_compressors(images)
    res["generic"] = generic
    batch_generic = {k: v for k, v in generic.items() if "per image" not in k and "no compression" not in k}
    best_name = min(batch_generic, key=lambda k: batch_generic[k]["bits_per_pixel"])
    lossless = res["lossless"]
    lossless["best_generic"] = best_name
    lossless["best_generic_bits_per_pixel"] = batch_generic[best_name]["bits_per_pixel"]
    lossless["reduction_vs_best_generic"] = 1 - lossless["bits_per_pixel"] / lossless["best_generic_bits_per_pixel"]
    lossless["pass_payload_le_1.001_ideal"] = lossless["payload_over_ideal"] <= 1.001
    lossless["pass_le_0.185_bpp"] = lossless["bits_per_pixel"] <= 0.185
    lossless["pass_25pct_below_best_generic"] = lossless["reduction_vs_best_generic"] >= 0.25

    log("single-image files")
    singles: dict[str, Any] = {}
    for mode, lossless_flag in (("lossy", False), ("lossless", True)):
        sizes, start = [], time.perf_counter()
        for i in range(n):
            sizes.append(len(compress(images[i], m, lossless=lossless_flag, seed=seed + i)))
        elapsed = time.perf_counter() - start
        singles[mode] = {"mean_bytes": float(np.mean(sizes)), "min_bytes": int(min(sizes)),
                         "max_bytes": int(max(sizes)), "header_bytes": 39,
                         "mean_payload_bytes": float(np.mean(sizes)) - 39,
                         "api_encode_images_per_s": n / elapsed}
    singles["png_optimize_mean_bytes"] = generic["PNG optimize, one file per image"]["bytes"] / n
    singles["webp_lossless_mean_bytes"] = generic["WebP lossless, one file per image"]["bytes"] / n
    res["single_image_files"] = singles

    if cli_repeats > 0:
        log(f"CLI wall times (median of {cli_repeats})")
        res["cli_seconds"] = _cli_times(model, images[0], cli_repeats)
        base = res["cli_seconds"]["python -c 'import numpy, PIL.Image, constriction' (baseline)"]
        res["cli_over_baseline"] = {k: v / base for k, v in res["cli_seconds"].items() if k.startswith("latcomp")}
    res["machine"] = machine_info()
    res["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return res


def _fmt(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}f}"


def to_markdown(res: dict[str, Any], command: str) -> str:
    """A human-readable report of :func:`run_benchmark`'s results."""
    lo, ll, si = res["lossy"], res["lossless"], res["single_image_files"]
    n, mach = res["images"], res["machine"]
    tr = res["model"].get("training", {})
    lines = [
        "# Codec benchmark (`latcomp encode` / `decode`)", "",
        f"Command: `{command}`  ",
        f"Date: {res['date']}  ",
        f"Machine: {mach['cpu']}, {mach['cpu_count']} CPUs, {mach['platform']}, load average "
        f"{', '.join(f'{v:.2f}' for v in mach['load_average'] or [])}; "
        + ", ".join(f"{name} {version}" for name, version in mach["versions"].items()) + "  ",
        f"Model: `{res['model']['path']}` (weights sha256 {res['model']['digest'][:16]}…"
        + (f", best epoch {tr.get('best_epoch')}, valid loss {tr.get('best_valid_loss', float('nan')):.3f} nats"
           if tr else "") + ")  ",
        f"Data: {n} static-binarized MNIST test digits (28×28), dither seed {res['seed']}.", "",
        "## Lossy: the lattice point alone", "",
        "| quantity | value |", "|---|---|",
        f"| payload (one ANS stream for the batch) | {lo['payload_bits']} bits = {_fmt(lo['bits_per_image'], 3)} "
        f"bits/digit |",
        f"| ideal Σ −log2 P(Ẑ\\|U) of the coded points | {_fmt(lo['ideal_bits'], 1)} bits = "
        f"{_fmt(lo['ideal_bits_per_image'], 3)} bits/digit |",
        f"| payload / ideal (target ≤ 1.001) | {_fmt(lo['payload_over_ideal'], 6)} "
        f"{'✅' if lo['pass_payload_le_1.001_ideal'] else '❌'} |",
        f"| Theorem-1 rate E[log f_U(U)/f_X̂−U(X−U)], {lo['theorem1_fresh_dithers']} fresh dithers | "
        f"{_fmt(lo['theorem1_bits_per_image'], 3)} bits/digit |",
        f"| ideal − Theorem-1 (target within 0.5% or 3 SE) | {_fmt(lo['ideal_minus_theorem1_bits_per_image'], 3)} "
        f"± {_fmt(lo['ideal_minus_theorem1_se'], 3)} bits/digit ({100 * lo['ideal_vs_theorem1_relative']:+.3f}%) "
        f"{'✅' if lo['pass_ideal_vs_theorem1'] else '❌'} |",
        f"| container incl. header | {lo['file_bytes']} bytes (header {lo['header_bytes']}) |",
        f"| batch throughput, encode / decode | {lo['encode_images_per_s']:.0f} / {lo['decode_images_per_s']:.0f} "
        f"images/s |", "",
        "## Lossless: lattice point, then the pixels given Z − U", "",
        "| quantity | value |", "|---|---|",
        f"| container (one stream, header included) | {ll['file_bytes']} bytes = "
        f"**{_fmt(ll['bits_per_pixel'])} bits/pixel** "
        f"{'✅' if ll['pass_le_0.185_bpp'] else '❌'} (target ≤ 0.185) |",
        f"| ideal: latent + −log2 Q(D\\|Z−U) | {_fmt(ll['ideal_latent_bits'] / n, 2)} + "
        f"{_fmt(ll['ideal_pixel_bits'] / n, 2)} bits/digit = {_fmt(ll['ideal_bits_per_pixel'])} bits/pixel |",
        f"| payload / ideal (target ≤ 1.001) | {_fmt(ll['payload_over_ideal'], 6)} "
        f"{'✅' if ll['pass_payload_le_1.001_ideal'] else '❌'} |",
        f"| model −ELBO with fresh dithers (reference) | {_fmt(ll['neg_elbo_nats_per_image'], 2)} nats/digit = "
        f"{_fmt(ll['neg_elbo_bits_per_pixel'])} bits/pixel |",
        f"| best generic compressor ({ll['best_generic']}) | {_fmt(ll['best_generic_bits_per_pixel'])} bits/pixel; "
        f"latcomp is {100 * ll['reduction_vs_best_generic']:.1f}% smaller "
        f"{'✅' if ll['pass_25pct_below_best_generic'] else '❌'} (target ≥ 25%) |",
        f"| batch throughput, encode / decode | {ll['encode_images_per_s']:.0f} / {ll['decode_images_per_s']:.0f} "
        f"images/s |", "",
        "### The same digits with generic lossless compressors", "",
        "| compressor | bytes | bits/pixel |", "|---|---:|---:|",
        f"| **latcomp --lossless (one container)** | {ll['file_bytes']} | {_fmt(ll['bits_per_pixel'])} |",
    ]
    for name, v in sorted(res["generic"].items(), key=lambda kv: kv[1]["bits_per_pixel"]):
        lines.append(f"| {name} | {v['bytes']} | {_fmt(v['bits_per_pixel'])} |")
    lines += [
        "", "## Single-image files (one digit per .lat, header included)", "",
        "| mode | mean bytes | min–max | header | mean payload |", "|---|---:|---:|---:|---:|",
        f"| lossy | {si['lossy']['mean_bytes']:.2f} | {si['lossy']['min_bytes']}–{si['lossy']['max_bytes']} | 39 | "
        f"{si['lossy']['mean_payload_bytes']:.2f} |",
        f"| lossless | {si['lossless']['mean_bytes']:.2f} | {si['lossless']['min_bytes']}–"
        f"{si['lossless']['max_bytes']} | 39 | {si['lossless']['mean_payload_bytes']:.2f} |",
        f"| PNG optimize (1-bit) | {si['png_optimize_mean_bytes']:.2f} | | | |",
        f"| WebP lossless | {si['webp_lossless_mean_bytes']:.2f} | | | |",
    ]
    if "cli_seconds" in res:
        lines += ["", "## Single-image CLI wall times (fresh process, median)", "",
                  "| command | seconds | × baseline |", "|---|---:|---:|"]
        for name, sec in res["cli_seconds"].items():
            ratio = res["cli_over_baseline"].get(name)
            lines.append(f"| {name} | {sec:.3f} | {'' if ratio is None else f'{ratio:.2f}'} |")
    lines += ["", "Raw numbers: `codec.json` beside this file.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.codec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model directory (default: the shipped one)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (default: $LATCOMP_DATA or the cache)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N test digits")
    parser.add_argument("--cli-repeats", type=int, default=5, help="runs per CLI timing (0: skip)")
    parser.add_argument("--fresh-dithers", type=int, default=10, help="dithers for the Theorem-1 estimate")
    parser.add_argument("--seed", type=int, default=0, help="dither seed of the coded files")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "results"), help="where codec.{json,md} go")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.codec", *argv])
    res = run_benchmark(args.model, args.data_dir, args.limit, args.cli_repeats, args.fresh_dithers, args.seed,
                        log=lambda s: print(s, file=sys.stderr))
    markdown = to_markdown({**res, "command": command}, command)
    js, md = write_results("codec", res, markdown, command, args.out_dir)
    print(markdown)
    print(f"wrote {js} and {md}", file=sys.stderr)


if __name__ == "__main__":
    main()
