"""Training throughput against the machine's floating-point limit.

Run ``python -m benchmarks.training_throughput``. It counts the FLOP of one training epoch of
the paper's MNIST lattice VAE from the architecture, times real epochs (the same
code as ``latcomp train``), measures the machine's float32 matmul throughput with
torch, both at a large square size and at the training's own layer shapes, and
writes ``docs/results/training-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

from latcomp.measure.results import machine_info, timed, write_results
from latcomp.nn.models import LatticeVAE
from latcomp.train import TrainConfig, _train_epoch, evaluate


def linear_shapes(model: LatticeVAE) -> list[tuple[int, int]]:
    """(in, out) of every nn.Linear in the model (gated layers have two)."""
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]


def epoch_flop(model: LatticeVAE, n_train: int, n_valid: int) -> dict[str, float]:
    """Matmul FLOP of one epoch: 2·in·out per example per layer forward, 3× that with backward."""
    forward = sum(2 * i * o for i, o in linear_shapes(model))
    return {"forward_per_example": forward, "train": 3 * forward * n_train, "valid": forward * n_valid,
            "total": 3 * forward * n_train + forward * n_valid}


def matmul_gflops(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """Sustained float32 GFLOP/s of (m×k)·(k×n) products with torch's current thread count."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - start) / 1e9


MATMUL_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear")


def profile_step_breakdown(model: LatticeVAE, opt: torch.optim.Optimizer, data: torch.Tensor,
                           steps: int = 50, batch: int = 100) -> dict[str, Any]:
    """Self CPU time of ``steps`` training steps by operator (torch.profiler): where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    gen = torch.Generator().manual_seed(0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(steps):
            loss = model(data[step * batch:(step + 1) * batch], generator=gen).loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in events)
    matmul = sum(t for k, t in events if k in MATMUL_OPS)
    top = sorted(events, key=lambda e: -e[1])[:8]
    return {"steps": steps, "matmul_fraction": matmul / total, "ops_profiled": len(events),
            "top_ops": [{"op": k, "fraction": t / total} for k, t in top]}


def run_benchmark(epochs: int = 3, n_train: int = 50_000, n_valid: int = 10_000) -> dict[str, Any]:
    """Time ``epochs`` training epochs on random binary data of MNIST size and compare with matmul peak."""
    torch.manual_seed(0)
    model = LatticeVAE()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    rng = np.random.default_rng(0)
    train = torch.from_numpy((rng.random((n_train, 784)) < 0.13).astype(np.float32))
    valid = train[:n_valid].clone()
    cfg = TrainConfig()
    times = []
    for epoch in range(1, epochs + 1):
        _, seconds = timed(lambda epoch=epoch: (_train_epoch(model, opt, train, cfg, epoch),
                                                evaluate(model, valid)))
        times.append(seconds)
    flop = epoch_flop(model, n_train, n_valid)
    batch = cfg.batch_size
    peak_square = matmul_gflops(2048, 2048, 2048)
    peak_layers = statistics.mean(matmul_gflops(batch, i, o, 0.5) for i, o in linear_shapes(model))
    median = statistics.median(times)
    breakdown = profile_step_breakdown(model, opt, train)
    achieved = flop["total"] / median / 1e9
    return {"threads": torch.get_num_threads(), "epochs_timed": epochs, "epoch_seconds": times,
            "median_epoch_seconds": median, "flop_per_epoch": flop, "achieved_gflops": achieved,
            "matmul_gflops_2048": peak_square, "matmul_gflops_training_shapes": peak_layers,
            "fraction_of_2048_peak": achieved / peak_square,
            "fraction_of_training_shape_peak": achieved / peak_layers, "profile": breakdown,
            "machine": machine_info()}


def to_markdown(res: dict[str, Any], command: str) -> str:
    f = res["flop_per_epoch"]
    epochs = ", ".join(f"{t:.2f}" for t in res["epoch_seconds"])
    p = res["profile"]
    top = "\n".join(f"| `{o['op']}` | {o['fraction']:.1%} |" for o in p["top_ops"])
    return f"""# Training throughput

Command: `{command}` ({res['machine']['cpu']}, {res['machine']['cpu_count']} cores, torch threads {res['threads']}).

| quantity | value |
|---|---|
| FLOP per epoch (50k train fwd+bwd, 10k valid fwd) | {f['total']:.3e} |
| median seconds per epoch ({res['epochs_timed']} epochs: {epochs}) | {res['median_epoch_seconds']:.2f} |
| achieved GFLOP/s | {res['achieved_gflops']:.1f} |
| float32 matmul GFLOP/s, 2048×2048×2048 | {res['matmul_gflops_2048']:.1f} |
| float32 matmul GFLOP/s, the training's layer shapes at batch 100 (mean) | {res['matmul_gflops_training_shapes']:.1f} |
| fraction of the 2048² matmul peak | {res['fraction_of_2048_peak']:.1%} |
| fraction of the layer-shape matmul rate | {res['fraction_of_training_shape_peak']:.1%} |

## Why not closer to the limit

A profile of {p['steps']} training steps (torch.profiler, self CPU time) puts
{p['matmul_fraction']:.0%} of the time in the matrix products; the rest is spread
over {p['ops_profiled']} other operator kinds. The largest:

| operator | share of step time |
|---|---:|
{top}

At batch 100 every layer is a small GEMM (100×784×300 and smaller) that reaches
{res['matmul_gflops_training_shapes']:.0f} GFLOP/s, below the large-matrix rate. Around each product sit
element-wise kernels that are memory-bound and nearly free of FLOP — the gates'
sigmoids and products, the 784-pixel Bernoulli likelihood, the prior's
log/expm1, their backward passes — plus Adam's update of all 1.1 M parameters
at every one of the 500 steps and the per-operator dispatch cost of eager
autograd. None of these count in the matmul FLOP above, so the achieved rate is
a fraction of the machine's matmul throughput.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training_throughput",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time (median reported)")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.training_throughput", *(sys.argv[1:] if argv is None else argv)])
    res = run_benchmark(args.epochs)
    markdown = to_markdown(res, command)
    write_results("training-throughput", res, markdown, command)
    print(markdown)


if __name__ == "__main__":
    main()
