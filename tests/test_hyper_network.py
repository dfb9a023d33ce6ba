"""The exact integer hyper-synthesis (latcomp.photo.hyper_network): a pure-Python integer reference,
independence of band size and BLAS thread count, agreement with the float network of training."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import torch

from latcomp.entropy.scales import SIZE
from latcomp.nn.hyperprior import PhotoHyperprior
from latcomp.photo import hyper_network
from latcomp.photo.hyper_network import ACT_BITS, FRACTION_BITS, ExactHyperSynthesis, weight_bits


def _weights(n: int, m: int, seed: int) -> dict[str, np.ndarray]:
    """h_s weights of trained-like magnitudes (float32, torch layouts) whose indices spread over the table."""
    rng = np.random.default_rng(seed)
    layers = {0: ((n, n, 5, 5), 0.3, 0.1, 0.1), 2: ((n, n, 5, 5), 0.1, 0.1, 0.1), 4: ((m, n, 3, 3), 2.0, 40.0, 5.0)}
    w = {}
    for i, (shape, spread, centre, bias_spread) in layers.items():
        w[f"hyper_synthesis.{i}.weight"] = rng.normal(0, spread, shape)
        w[f"hyper_synthesis.{i}.bias"] = rng.normal(centre, bias_spread, shape[0] if i == 4 else n)
    return {k: v.astype(np.float32) for k, v in w.items()}


# ------------------------------------------------------------------ pure-Python integer reference

def _shift(values: list[float], fan_in: int) -> int:
    return weight_bits(fan_in) - math.frexp(max(abs(v) for v in values))[1]


def _requantize(total: int, shift: int, high: int) -> int:
    return min(max((total + (1 << (shift - 1))) >> shift, 0), high)


def _reference_up(x: list, weight: np.ndarray, bias: np.ndarray) -> list:
    """ConvTranspose2d(5, stride 2, padding 2, output_padding 1) + ReLU by its scatter definition, on Python ints."""
    c_in, c_out = weight.shape[:2]
    h, w = len(x[0]), len(x[0][0])
    out = []
    for o in range(c_out):
        s = _shift([float(v) for v in weight[:, o].flat], 9 * c_in)
        wq = [[[[round(float(weight[c, o, ky, kx]) * 2.0**s) for kx in range(5)] for ky in range(5)]
               for c in range(c_in)]]
        acc = [[round(float(bias[o]) * 2.0 ** (s + FRACTION_BITS)) for _ in range(2 * w)] for _ in range(2 * h)]
        for c in range(c_in):
            for i in range(h):
                for j in range(w):
                    for ky in range(5):
                        for kx in range(5):
                            r, q = 2 * i + ky - 2, 2 * j + kx - 2
                            if 0 <= r < 2 * h and 0 <= q < 2 * w:
                                acc[r][q] += wq[0][c][ky][kx] * x[c][i][j]
        out.append([[_requantize(v, s, (1 << ACT_BITS) - 1) for v in row] for row in acc])
    return out


def _reference_last(x: list, weight: np.ndarray, bias: np.ndarray) -> list:
    """Conv2d(3, padding 1) to the table index ⌊t + ½⌋ clipped, on Python ints."""
    c_out, c_in = weight.shape[:2]
    h, w = len(x[0]), len(x[0][0])
    out = []
    for o in range(c_out):
        s = _shift([float(v) for v in weight[o].flat], 9 * c_in)
        plane = []
        for r in range(h):
            row = []
            for q in range(w):
                total = round(float(bias[o]) * 2.0 ** (s + FRACTION_BITS))
                for c in range(c_in):
                    for ky in range(3):
                        for kx in range(3):
                            if 0 <= r + ky - 1 < h and 0 <= q + kx - 1 < w:
                                total += round(float(weight[o, c, ky, kx]) * 2.0**s) * x[c][r + ky - 1][q + kx - 1]
                row.append(_requantize(total, s + FRACTION_BITS, SIZE - 1))
            plane.append(row)
        out.append(plane)
    return out


def test_indices_equal_a_pure_python_integer_reference():
    n, m = 3, 4
    weights = _weights(n, m, 0)
    w_z = np.random.default_rng(1).normal(0, 1.5, (n, 2, 3))
    x = [[[round(float(v) * 2.0**FRACTION_BITS) for v in row] for row in plane] for plane in w_z]
    for i in (0, 2):
        x = _reference_up(x, weights[f"hyper_synthesis.{i}.weight"], weights[f"hyper_synthesis.{i}.bias"])
    expected = np.array(_reference_last(x, weights["hyper_synthesis.4.weight"], weights["hyper_synthesis.4.bias"]))
    got = ExactHyperSynthesis(weights).indices(w_z[None], 7, 10)[0]
    assert len(np.unique(expected)) > 10
    assert np.array_equal(got, expected[:, :7, :10])


def test_indices_do_not_depend_on_the_band_size():
    weights = _weights(8, 16, 2)
    w_z = np.random.default_rng(3).normal(0, 1.0, (8, 5, 7))
    net = ExactHyperSynthesis(weights)
    whole = net.indices(w_z[None], 18, 27)
    for band in (1, 2, 5, 7):
        assert np.array_equal(net.indices(w_z[None], 18, 27, band_rows=band), whole)


def test_the_indices_of_a_batch_are_those_of_each_image_alone(monkeypatch):
    """h_s runs a batch of hyper-latents of one size through stacked products, in blocks of images: each image's
    indices are those it gets alone, whatever the batch, block or band."""
    net = ExactHyperSynthesis(_weights(8, 16, 9))
    for rows, cols, count in ((1, 1, 37), (3, 5, 6), (7, 10, 4), (18, 27, 3)):
        w_z = np.random.default_rng(rows).normal(0, 1.0, (count, 8, -(-rows // 4), -(-cols // 4)))
        alone = np.stack([net.indices(w_z[i:i + 1], rows, cols)[0] for i in range(count)])
        assert len(np.unique(alone)) > 5
        assert np.array_equal(net.indices(w_z, rows, cols), alone)
        assert np.array_equal(net.indices(w_z, rows, cols, band_rows=2), alone)
    # blocks of two images of one band row each (the last block one image)
    monkeypatch.setattr(hyper_network, "BLOCK_ELEMENTS", 2 * 9 * net.layers[2].c_in * 4 * w_z.shape[3])
    assert np.array_equal(net.indices(w_z, rows, cols, band_rows=1), alone)


_THREADS_SCRIPT = """
import hashlib, sys
import numpy as np
from latcomp.photo.hyper_network import ExactHyperSynthesis
weights = dict(np.load(sys.argv[1]))
j = ExactHyperSynthesis(weights).indices(weights.pop("w_z").astype(np.float64)[None], 48, 64)
print(hashlib.sha256(j.tobytes()).hexdigest())
"""


def test_indices_do_not_depend_on_the_blas_thread_count(tmp_path):
    weights = _weights(64, 128, 4)
    w_z = np.random.default_rng(5).normal(0, 1.0, (64, 12, 16))
    np.savez(tmp_path / "w.npz", w_z=w_z, **weights)
    digests = {hashlib.sha256(ExactHyperSynthesis(weights).indices(w_z[None], 48, 64).tobytes()).hexdigest()}
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(tmp_path / "w.npz")], env=env,
                             capture_output=True, text=True, check=True)
        digests.add(run.stdout.strip())
    assert len(digests) == 1


@torch.no_grad()
def test_indices_agree_with_the_float_network_of_training():
    torch.manual_seed(6)
    model = PhotoHyperprior(channels=16, latent=32, lam=0.01, lattice="e8")
    for name, value in _weights(16, 32, 7).items():
        model.get_parameter(name).copy_(torch.from_numpy(value))
    w_z = np.random.default_rng(8).normal(0, 1.0, (16, 6, 6))
    t = model.hyper_synthesis(torch.from_numpy(w_z).float()[None])[0, :, :22, :21].double().numpy()
    net = ExactHyperSynthesis({k: v.detach().numpy() for k, v in model.state_dict().items()})
    j = net.indices(w_z[None], 22, 21)[0]
    inside = (t > 0.5) & (t < SIZE - 1.5)
    assert inside.mean() > 0.5
    differs = j != np.clip(np.rint(t), 0, SIZE - 1)
    assert differs[inside].mean() < 0.01
    # where they differ, t is within rounding distance of a bin boundary
    assert np.all(np.abs(np.abs(t - np.floor(t)) - 0.5)[differs] < 0.01)
