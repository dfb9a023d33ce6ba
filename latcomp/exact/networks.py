"""Exact numpy arithmetic of gated MLPs, bit-reproducible on every machine (no torch).

The codec runs the encoder e_c and the decoder of a trained model with numpy, from
the float32 tensors of the model file, so that ``latcomp encode``/``decode`` start
fast. Two passes are provided:

* :func:`mlp_forward_float` — plain float64 numpy (matmul, ``1/(1+exp(−x))``).
  Reference for tests; agrees with the torch model to ~1e-6.
* :class:`ExactMLP` — the pass the codec uses. Lossless decoding feeds the
  decoder's Bernoulli probabilities Q(·|Z−U) (Section 3.3) to the entropy coder,
  and the coder needs *bit-identical* probabilities on both sides. BLAS sums in
  an order that depends on the CPU kernel, the thread count and the batch size,
  so a plain float pass is not reproducible. Here every matrix product is exact:
  activations and weights are rounded to integers with per-row power-of-two
  scales small enough that every partial sum is an integer below 2^53, so any
  float64 BLAS (any summation order, with or without FMA) returns the same exact
  result. The only nonlinearity, the sigmoid, is a linear interpolation in a table
  built from correctly rounded constants by IEEE multiplications and divisions.
  Everything else is elementwise IEEE arithmetic (correctly rounded, hence the
  same on every platform). The result is identical across machines, thread
  counts, batch sizes and chunkings, and within ~1e-6 of the float pass.

The runtime of the MNIST lattice VAE (:class:`latcomp.digits.network.NumpyLatticeVAE`) is built
from these layers.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import cached_property

import numpy as np

from latcomp.families import ModelShapeError

#: Logits are clipped to ±SIGMOID_LIMIT before the table sigmoid (σ(32) = 1 − 1.3e-14).
SIGMOID_LIMIT = 32
#: The sigmoid table has a step of 2^-SIGMOID_STEP_LOG2 (interpolation error < 2e-7).
SIGMOID_STEP_LOG2 = 8
#: Rows are processed in chunks of this many examples to bound memory (results do not depend on it).
CHUNK = 2048


# ----------------------------------------------------------------------------- exact arithmetic


def quantize_rows(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Round each row of ``x`` to integers below 2^bits in magnitude with a power-of-two scale.

    Returns ``(q, shift)`` with ``q`` integer-valued float64 and ``x ≈ q·2^−shift`` row
    by row; ``|q| ≤ 2^bits``. Only exact operations (frexp, ldexp, rint) are used.
    """
    amax = np.max(np.abs(x), axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1])
    _, exponent = np.frexp(amax)  # amax < 2^exponent (exponent 0 for amax 0)
    shift = np.clip(bits - exponent.astype(np.int64), -1000, 1000)
    return np.rint(np.ldexp(x, shift[..., None])), shift


def _budget(fan_in: int) -> tuple[int, int]:
    """Bits (weights, activations) so that fan_in · 2^w · 2^a ≤ 2^53 (exact float64 sums)."""
    total = 53 - max(fan_in - 1, 0).bit_length()
    if total < 16:
        raise ModelShapeError(f"fan-in {fan_in} is too large for exact products")
    return total // 2, total - total // 2


class ExactLinear:
    """y = W x + b with an exact integer product (see the module docstring).

    ``weight`` is (out, in) as in torch. Each output row r of W is stored as
    integers W_int[r] with scale 2^−s_r; the input rows as integers with scale 2^−e_n.
    Then y[n, r] = (x_int[n] · W_int[r]) · 2^−(e_n + s_r) + b[r], where the dot product
    is an exact integer below 2^53 whatever the summation order.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight = np.asarray(weight, np.float64)
        self.out_features, self.in_features = self.weight.shape
        self.weight_bits, self.act_bits = _budget(self.in_features)
        self.bias = np.asarray(bias, np.float64).reshape(self.out_features)

    @cached_property
    def _integer_weight(self) -> tuple[np.ndarray, np.ndarray]:
        """(W_int transposed, row shifts s_r), computed on first use: a lossy encode never needs the decoder's."""
        w_int, shift = quantize_rows(self.weight, self.weight_bits)
        return np.ascontiguousarray(w_int.T), shift

    def __call__(self, x: np.ndarray) -> np.ndarray:
        weight_t, weight_shift = self._integer_weight
        x_int, x_shift = quantize_rows(x, self.act_bits)
        total = x_int @ weight_t  # exact integers, |·| ≤ 2^53
        return np.ldexp(total, -(x_shift[:, None] + weight_shift[None, :])) + self.bias


def _sigmoid_table() -> tuple[np.ndarray, np.ndarray]:
    """σ on the grid j·2^−8, j = −32·2^8 … 32·2^8, and its forward differences.

    exp(−j·h) is the product of the correctly rounded constants exp(−2^i·h) over the
    set bits i of j (fixed order); the constants come from :mod:`decimal` (a software
    implementation, the same everywhere). Only IEEE ×, +, ÷ follow, so the table is
    bit-identical on every platform.
    """
    n = SIGMOID_LIMIT << SIGMOID_STEP_LOG2
    j = np.arange(n + 1, dtype=np.int64)
    e = np.ones(n + 1)
    with localcontext() as ctx:
        ctx.prec = 40
        for i in range(n.bit_length()):
            c = float((Decimal(-(2**i)) / Decimal(2**SIGMOID_STEP_LOG2)).exp())
            e = np.where((j >> i) & 1 == 1, e * c, e)
    pos = 1.0 / (1.0 + e)  # σ(+j h)
    neg = e / (1.0 + e)  # σ(−j h)
    table = np.concatenate([neg[:0:-1], pos])
    return table, np.diff(table)


_TABLE, _DIFF = _sigmoid_table()


def exact_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) by linear interpolation in the reproducible table (|error| < 2e-7, in (0, 1)).

    Arguments are clipped to ±32; NaN is treated as 0.
    """
    x = np.where(np.isnan(x), 0.0, x)
    t = np.ldexp(np.clip(x, -SIGMOID_LIMIT, SIGMOID_LIMIT) + SIGMOID_LIMIT, SIGMOID_STEP_LOG2)
    idx = np.minimum(np.floor(t), len(_DIFF) - 1)
    frac = t - idx  # exact
    idx = idx.astype(np.intp)
    return _TABLE[idx] + _DIFF[idx] * frac


def float_sigmoid(x: np.ndarray) -> np.ndarray:
    """Plain float64 σ (reference, not reproducible across platforms)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ----------------------------------------------------------------------------- gated MLPs


def mlp_layers(weights: dict[str, np.ndarray], prefix: str) -> list[tuple[str, tuple[np.ndarray, ...]]]:
    """The layers of a :func:`latcomp.layers.gated_mlp` stored under ``prefix``.

    Returns ``[("gated", (Wh, bh, Wg, bg)), …, ("linear", (W, b))]`` (float64), read from
    ``{prefix}.{i}.h.weight`` … and the final ``{prefix}.{i}.weight``.
    """
    layers: list[tuple[str, tuple[np.ndarray, ...]]] = []
    i = 0
    while True:
        key = f"{prefix}.{i}"
        if f"{key}.h.weight" in weights:
            names = (f"{key}.h.weight", f"{key}.h.bias", f"{key}.g.weight", f"{key}.g.bias")
            layers.append(("gated", tuple(tensor(weights, n) for n in names)))
        elif f"{key}.weight" in weights:
            layers.append(("linear", (tensor(weights, f"{key}.weight"), tensor(weights, f"{key}.bias"))))
            break
        else:
            raise ModelShapeError(f"missing tensor {key}.weight (or {key}.h.weight)")
        i += 1
    prev = None
    for _, tensors in layers:
        w = tensors[0]
        if w.ndim != 2 or (prev is not None and w.shape[1] != prev):
            raise ModelShapeError(f"{prefix}: inconsistent layer shapes")
        for t in tensors[1:]:
            if t.ndim == 2 and t.shape != w.shape or t.ndim == 1 and t.shape[0] != w.shape[0]:
                raise ModelShapeError(f"{prefix}: inconsistent layer shapes")
        prev = w.shape[0]
    return layers


def tensor(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The float64 copy of weight ``name`` (ModelShapeError if it is missing or not finite)."""
    if name not in weights:
        raise ModelShapeError(f"missing tensor {name}")
    t = np.asarray(weights[name], np.float64)
    if not np.all(np.isfinite(t)):
        raise ModelShapeError(f"tensor {name} has non-finite values")
    return t


def mlp_forward_float(layers: list[tuple[str, tuple[np.ndarray, ...]]], x: np.ndarray) -> np.ndarray:
    """Reference float64 forward of a gated MLP: h(x)·σ(g(x)) layers, then a linear layer."""
    x = np.asarray(x, np.float64)
    for kind, t in layers:
        if kind == "gated":
            wh, bh, wg, bg = t
            x = (x @ wh.T + bh) * float_sigmoid(x @ wg.T + bg)
        else:
            x = x @ t[0].T + t[1]
    return x


class ExactMLP:
    """A gated MLP with exact products and the table sigmoid (reproducible bit for bit)."""

    def __init__(self, layers: list[tuple[str, tuple[np.ndarray, ...]]]):
        self.layers: list[tuple[str, ExactLinear]] = []
        for kind, t in layers:
            if kind == "gated":  # h and g share one product: rows [h; g]
                wh, bh, wg, bg = t
                self.layers.append((kind, ExactLinear(np.concatenate([wh, wg]), np.concatenate([bh, bg]))))
            else:
                self.layers.append((kind, ExactLinear(*t)))
        self.in_features = self.layers[0][1].in_features
        self.out_features = self.layers[-1][1].out_features

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.shape[0] > CHUNK:
            return np.concatenate([self(x[i:i + CHUNK]) for i in range(0, x.shape[0], CHUNK)])
        for kind, layer in self.layers:
            y = layer(x)
            if kind == "gated":
                half = y.shape[1] // 2
                y = y[:, :half] * exact_sigmoid(y[:, half:])
            x = y
        return x
