"""Training speed of the text autoencoder against the machine's matmul rate.

Run ``python -m benchmarks.text_throughput --data-dir ../shared/data``. For each network size of
``latcomp train --text-size`` and each thread count it times training steps on real corpus
batches (the same code as ``latcomp train --arch text-lattice``), counts their matmul FLOP from
the architecture and the batches' token counts, and compares the achieved rate with torch's
float32 matmul rate at 2048² and at the output layer's shape (the largest product), measured with
the same threads. Writes ``docs/results/text-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import torch

from benchmarks.training_throughput import matmul_gflops
from latcomp.measure.results import machine_info, write_results
from latcomp.text.cli import SIZES
from latcomp.text.model import Batch, LatticeTextAE
from latcomp.text.training import TextData, TextTrainConfig, lam_at, step_batch


def gru_flop(inputs: int, hidden: int) -> int:
    """Matmul FLOP of one GRU step of one direction: three gates on the input and on the state."""
    return 2 * 3 * hidden * (inputs + hidden)


def step_flop(model: LatticeTextAE, batch: Batch) -> float:
    """Matmul FLOP of a training step (forward + backward ≈ 3× forward) on ``batch``."""
    hp = model.hparams
    embed, hidden, layers, latent, vocab = (hp[k] for k in ("embed", "hidden", "layers", "latent", "vocab"))
    tokens, predicted = int(batch.lengths.sum()), int(batch.lengths.sum()) + len(batch)
    decoder_steps = len(batch) * (batch.ids.shape[1] + 1)    # the decoder runs over the padded length
    encoder = tokens * 2 * sum(gru_flop(embed if i == 0 else 2 * hidden, hidden) for i in range(layers))
    decoder = decoder_steps * sum(gru_flop(embed if i == 0 else 2 * hidden, 2 * hidden) for i in range(layers))
    latent_maps = len(batch) * 2 * (2 * hidden * latent + latent * layers * 2 * hidden)
    output = predicted * 2 * (2 * hidden * embed + embed * vocab)
    return 3.0 * (encoder + decoder + latent_maps + output)


def time_steps(size: str, threads: int, data: TextData, steps: int, warmup: int = 3) -> dict[str, Any]:
    """Seconds per training step (median over ``steps``) and achieved GFLOP/s of one size and thread count."""
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    embed, hidden, layers = SIZES[size]
    cfg = TextTrainConfig(lattice="e8", embed=embed, hidden=hidden, layers=layers,
                          latent=504 if size == "paper" else 96)
    torch.manual_seed(0)
    model = LatticeTextAE(**cfg.hparams(len(data.vocab)))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen, cache, times, flops, predicted = torch.Generator().manual_seed(0), {}, [], [], []
    for step in range(warmup + steps):
        batch = step_batch(cfg, data.train, step, cache)
        start = time.perf_counter()
        out = model(batch, generator=gen, lam=lam_at(cfg, step + 1))
        loss = out.loss.sum() / out.tokens.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
            flops.append(step_flop(model, batch))
            predicted.append(int(batch.lengths.sum()) + len(batch))
    seconds = statistics.median(times)
    achieved = statistics.mean(f / t for f, t in zip(flops, times, strict=True)) / 1e9
    square = matmul_gflops(2048, 2048, 2048)
    output_shape = matmul_gflops(int(statistics.mean(predicted)), embed, len(data.vocab))
    return {"size": size, "threads": threads, "embed": embed, "hidden": hidden, "layers": layers,
            "latent": cfg.latent, "parameters": sum(p.numel() for p in model.parameters()),
            "batch": cfg.batch_size, "steps_timed": steps, "median_seconds_per_step": seconds,
            "steps_seconds": times, "achieved_gflops": achieved, "matmul_gflops_2048": square,
            "matmul_gflops_output_shape": output_shape, "fraction_of_2048": achieved / square,
            "fraction_of_output_shape": achieved / output_shape,
            "load_average_1min": [load_before, os.getloadavg()[0]]}


def to_markdown(rows: list[dict[str, Any]], command: str, machine: dict[str, Any]) -> str:
    lines = "\n".join(
        f"| {r['size']} ({r['embed']}/{r['hidden']}×2/{r['layers']} layers, latent {r['latent']}, "
        f"{r['parameters'] / 1e6:.1f}M) | {r['threads']} | {r['median_seconds_per_step']:.3f} | "
        f"{r['achieved_gflops']:.1f} | {r['matmul_gflops_2048']:.1f} | {r['fraction_of_2048']:.0%} | "
        f"{r['matmul_gflops_output_shape']:.1f} | {r['fraction_of_output_shape']:.0%} | "
        f"{r['load_average_1min'][0]:.1f}–{r['load_average_1min'][1]:.1f} |" for r in rows)
    return f"""# Text autoencoder training speed

Command: `{command}` ({machine['cpu']}, {machine['cpu_count']} cores, shared with other work: the
last column is the machine's 1-minute load average before and after each row; with a load above
the core count, two threads compete with other processes and are no faster than one).
Batch 64 sentences of the training corpus (about 12 words each), lattice E8, one step = forward,
backward, gradient clipping and Adam. FLOP are the matrix products counted from the architecture
(GRUs over the batch's tokens, the decoder over the padded length, the output layer over the
predicted tokens), ×3 for the backward pass.

| size | threads | s/step | GFLOP/s | matmul 2048² | share | matmul at the output layer's shape | share | load |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{lines}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=10, help="steps timed per configuration (median reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.text_throughput", *(sys.argv[1:] if argv is None else argv)])
    data = TextData.prepare(TextTrainConfig(data_dir=args.data_dir))
    rows = [time_steps(size, threads, data, args.steps) for size in args.sizes for threads in args.threads]
    machine = machine_info()
    markdown = to_markdown(rows, command, machine)
    write_results("text-throughput", {"rows": rows, "machine": machine}, markdown, command)
    print(markdown)


if __name__ == "__main__":
    main()
