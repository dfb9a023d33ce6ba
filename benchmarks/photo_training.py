"""Photo-model training speed against the machine's measured convolution throughput.

Run ``python -m benchmarks.photo_training``. It counts the multiply–adds of one training
step of the photo model (``photo-factorized``: batch of crops through g_a and g_s, forward
and backward ≈ 3× forward) from the architecture. It times real steps (the model's own
forward, backward, clipping and Adam), and it measures the machine's float32 convolution
rate with torch on the model's largest layer shape. Both run at 1 and 2 threads, side by
side. It profiles one step by operator and writes ``docs/results/photo-training.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import torch
from torch.nn import functional as F

from latcomp.measure.results import machine_info, write_results
from latcomp.nn.photo import PhotoFactorized


def conv_macs(model: PhotoFactorized, crop: int) -> int:
    """Multiply–adds of one forward pass of a crop² image (every convolution and GDN's 1×1 product)."""
    macs, side = 0, crop
    for layer in model.analysis:
        if isinstance(layer, torch.nn.Conv2d):
            side //= 2
            macs += layer.weight.numel() * side * side
        else:
            macs += layer.gamma_root.numel() * side * side
    for layer in model.synthesis:
        if isinstance(layer, torch.nn.ConvTranspose2d):
            macs += layer.weight.numel() * side * side  # every input pixel meets every tap once
            side *= 2
        else:
            macs += layer.gamma_root.numel() * side * side
    return macs


def step_seconds(model: PhotoFactorized, batch: int, crop: int, steps: int) -> float:
    """Median seconds of a training step (forward, backward, clipping, Adam) on random crops."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, crop, crop, generator=gen)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = model(x, generator=gen).loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def conv_gflops(channels: int, batch: int, side: int, seconds: float = 2.0) -> float:
    """Sustained float32 GFLOP/s of torch's 5×5 stride-2 convolution, channels → channels, forward."""
    x = torch.randn(batch, channels, side, side)
    w = torch.randn(channels, channels, 5, 5)
    F.conv2d(x, w, stride=2, padding=2)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        F.conv2d(x, w, stride=2, padding=2)
        count += 1
    macs = channels * channels * 25 * (side // 2) ** 2 * batch
    return 2 * macs * count / (time.perf_counter() - start) / 1e9


def profile_step(model: PhotoFactorized, batch: int, crop: int) -> list[dict[str, Any]]:
    """The eight operators with the most self CPU time in three training steps."""
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, crop, crop)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            loss = model(x).loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in events)
    return [{"op": k, "fraction": t / total} for k, t in sorted(events, key=lambda e: -e[1])[:8]]


def run_benchmark(channels: int, latent: int, batch: int, crop: int, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = PhotoFactorized(channels=channels, latent=latent)
    flop = 2 * 3 * conv_macs(model, crop) * batch
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        seconds = step_seconds(model, batch, crop, steps)
        peak = conv_gflops(channels, batch, crop // 2)
        rows.append({"threads": threads, "step_seconds": seconds, "step_gflops": flop / seconds / 1e9,
                     "conv_gflops": peak, "fraction": flop / seconds / 1e9 / peak})
    torch.set_num_threads(2)
    return {"model": {"channels": channels, "latent": latent, "batch": batch, "crop": crop},
            "flop_per_step": flop, "steps_timed": steps, "rows": rows,
            "profile": profile_step(model, batch, crop), "machine": machine_info()}


def to_markdown(res: dict[str, Any], command: str) -> str:
    m = res["model"]
    lines = ["# Photo-model training speed", "",
             f"Command: `{command}`. Machine: {res['machine'].get('cpu', '?')}, shared with other jobs "
             f"(load average {', '.join(f'{x:.2f}' for x in res['machine']['load_average'])} at the end), so read "
             f"ratios measured side by side, not absolutes.", "",
             f"Model N = {m['channels']}, M = {m['latent']}; batch {m['batch']} of {m['crop']}² crops; "
             f"{res['flop_per_step'] / 1e9:.1f} GFLOP per step (forward + backward ≈ 3× the forward "
             f"multiply–adds of every convolution and GDN), median of {res['steps_timed']} steps.", "",
             "| threads | s/step | GFLOP/s in training | conv GFLOP/s (5×5/2, N→N, torch) | fraction |",
             "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['threads']} | {r['step_seconds']:.3f} | {r['step_gflops']:.1f} | {r['conv_gflops']:.1f} | "
              f"{100 * r['fraction']:.0f}% |" for r in res["rows"]]
    lines += ["", "Where one step's time goes (self CPU time, torch.profiler):", "",
              "| operator | share |", "|---|---:|"]
    lines += [f"| `{p['op']}` | {100 * p['fraction']:.1f}% |" for p in res["profile"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--latent", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    res = run_benchmark(args.channels, args.latent, args.batch, args.crop, args.steps)
    command = "python -m benchmarks.photo_training " + " ".join(sys.argv[1:] if argv is None else argv)
    for path in write_results("photo-training", res, to_markdown(res, command.strip()), command.strip()):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
