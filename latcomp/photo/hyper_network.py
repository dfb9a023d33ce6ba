"""The hyper-synthesis h_s of :mod:`latcomp.nn.hyperprior` in exact integer arithmetic (numpy, no torch).

The Laplace scales of the hyperprior's main latent are entropy-model parameters: encoder and decoder
must compute them bit for bit alike, whatever the machine, BLAS, thread count or band of rows
(Ballé et al., "Integer networks for data compression", 2019). So h_s runs on integers:

* **Input**: W_z = Z_z − U_z (float64 from the file's fixed recipe) in fixed point,
  a = clip(rint(W_z·2^F), ±A) with F = :data:`FRACTION_BITS`, A = 2^:data:`ACT_BITS` − 1.
* **Weights**, at load: every output channel c of a layer is stored as integers
  W_int = rint(W·2^{s_c}) with the power-of-two scale 2^{s_c} that makes |W_int| ≤ 2^{B}
  (B from the layer's fan-in, :func:`weight_bits`); its bias as rint(b·2^{s_c + F}).
  Only frexp, ldexp and rint, which are exact.
* **Products**: a layer is one or four matrix products (a 3×3 convolution; the four phases of a
  5×5 transposed convolution of stride 2, each an ordinary convolution with the taps of that
  parity). Every term is an integer and fan-in·2^B·A ≤ 2^53, so every partial sum is an integer
  that float64 holds exactly: any BLAS, in any order, returns the same exact sums.
* **Activations**: acc + bias is an exact int64 in scale 2^{−(F + s_c)}; the next activation is
  (acc + bias + 2^{s_c − 1}) >> s_c (rounding half up), then ReLU and saturation at A.
* **Output**: the last layer's t = (acc + bias)·2^{−(F + s_c)} gives the table index
  j = clip(⌊t + ½⌋, 0, SIZE − 1) = clip((acc + bias + 2^{F + s_c − 1}) >> (F + s_c)), exactly.

Rows are computed in bands of output rows; each band reads the rows it needs from the layer
below (zero outside the image, as the padding of the float network), so the indices do not
depend on the band size. A batch of hyper-latents of one size (N, C, h, w) goes through each
product at once (a stacked product, one BLAS call per image); the sums are exact, so an image's
indices do not depend on the batch either. The float network of training sees the same input at
float precision; its index round(t) differs from the exact one only where t lies within about
2^−F of a rounding boundary (measured on real latents in the model card).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latcomp.entropy.scales import SIZE
from latcomp.families import ModelShapeError

#: Fraction bits of the fixed-point activations (a represents a·2^−F).
FRACTION_BITS = 12
#: Activations saturate at ±(2^ACT_BITS − 1).
ACT_BITS = 24
#: Fewest weight bits a layer may have (a larger fan-in is refused).
MIN_WEIGHT_BITS = 8
#: Bound on the elements of one band's patch matrix (float64): bands of rows keep memory flat.
BLOCK_ELEMENTS = 1 << 22
_ACT_MAX = (1 << ACT_BITS) - 1


def weight_bits(fan_in: int) -> int:
    """B with fan_in·2^B·(2^ACT_BITS − 1) < 2^53: integer products summed exactly in float64."""
    bits = 53 - ACT_BITS - max(fan_in - 1, 0).bit_length()
    if bits < MIN_WEIGHT_BITS:
        raise ModelShapeError(f"fan-in {fan_in} is too large for exact integer products")
    return bits


def to_fixed(x: np.ndarray) -> np.ndarray:
    """Float64 values → int64 fixed point rint(x·2^F), saturated at ±(2^ACT_BITS − 1) (NaN → 0)."""
    scaled = np.ldexp(np.nan_to_num(np.asarray(x, np.float64), nan=0.0), FRACTION_BITS)
    return np.clip(np.rint(np.clip(scaled, -_ACT_MAX, _ACT_MAX)), -_ACT_MAX, _ACT_MAX).astype(np.int64)


@dataclass(frozen=True)
class _Phase:
    """Outputs (factor·m + row_parity, factor·n + col_parity) from inputs (m + dy, n + dx) over ``taps``."""

    row_parity: int
    col_parity: int
    offsets: tuple[tuple[int, int], ...]  # (dy, dx) of every tap, in the kernel's column order
    kernel: np.ndarray  # (C_out, taps·C_in) integer-valued float64


def _parity_taps(parity: int) -> list[tuple[int, int]]:
    """(kernel tap k, input offset) of the outputs 2m + ``parity`` of a 5×5 stride-2 transposed convolution with
    padding 2: output 2i + k − 2 receives input i, so the outputs 2m + parity read inputs m + (2 + parity − k)/2."""
    return [(k, (2 + parity - k) // 2) for k in range(parity, 5, 2)]


class IntegerLayer:
    """One convolution of h_s on int64 fixed-point activations (module docstring).

    ``weight``: torch's layout, (C_out, C_in, 3, 3) for the 3×3 convolution of stride 1 (``factor`` 1)
    or (C_in, C_out, 5, 5) for the 5×5 transposed convolution of stride 2 (``factor`` 2); ``last``:
    the output layer (indices instead of activations).
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, factor: int, last: bool):
        weight = np.asarray(weight, np.float64)
        self.factor, self.last = factor, last
        if factor == 1:
            per_tap = {(ky, kx): weight[:, :, ky, kx] for ky in range(3) for kx in range(3)}
            groups = [(0, 0, [((ky - 1, kx - 1), per_tap[ky, kx]) for ky in range(3) for kx in range(3)])]
        else:
            groups = [(pa, pb, [((dy, dx), weight[:, :, ky, kx].T) for ky, dy in _parity_taps(pa)
                                for kx, dx in _parity_taps(pb)]) for pa in (0, 1) for pb in (0, 1)]
        self.c_out, self.c_in = groups[0][2][0][1].shape
        fan_in = max(len(taps) for _, _, taps in groups) * self.c_in
        amax = np.max(np.abs(weight), axis=(0, 2, 3) if factor == 2 else (1, 2, 3))
        #: s_c: output channel c's weights are stored as integers in scale 2^−s_c.
        self.shift = (weight_bits(fan_in) - np.frexp(amax)[1]).astype(np.int64)
        if self.shift.min() < 1:
            raise ModelShapeError("hyper-synthesis weights too large for the integer network")
        self.phases = [_Phase(pa, pb, tuple(o for o, _ in taps),
                              np.rint(np.ldexp(np.concatenate([w for _, w in taps], axis=1),
                                                       self.shift[:, None].astype(np.int32))))
                       for pa, pb, taps in groups]
        #: The bias in the accumulator's scale 2^−(F + s_c), int64.
        self.bias = np.rint(np.ldexp(np.asarray(bias, np.float64),
                                     (self.shift + FRACTION_BITS).astype(np.int32))).astype(np.int64)

    def input_rows(self, start: int, stop: int, height: int) -> tuple[int, int]:
        """The input rows [a, b) (within 0 … height) that output rows [start, stop) read."""
        if self.factor == 1:
            return max(start - 1, 0), min(stop + 1, height)
        return max(start // 2 - 1, 0), min((stop - 1) // 2 + 2, height)

    def __call__(self, x: np.ndarray, first: int, height: int, start: int, stop: int) -> np.ndarray:
        """Output rows [start, stop) from input rows ``first`` … of ``x`` (int64 (N, C_in, rows, W)) of images
        of ``height`` input rows: int64 activations (N, C_out, stop − start, factor·W), or indices if ``last``."""
        n, width = x.shape[0], x.shape[3]
        lo, hi = (start - 1, stop + 1) if self.factor == 1 else (start // 2 - 1, (stop - 1) // 2 + 2)
        window = np.zeros((n, self.c_in, hi - lo, width + 2), np.float64)  # rows lo … hi − 1, a zero column each side
        a, b = max(lo, 0), min(hi, height)
        window[:, :, a - lo:b - lo, 1:width + 1] = x[:, :, a - first:b - first]
        out = np.empty((n, self.c_out, stop - start, self.factor * width), np.int64)
        for phase in self.phases:
            m0 = -(-(start - phase.row_parity) // self.factor)
            m1 = -(-(stop - phase.row_parity) // self.factor)
            if m1 <= m0:
                continue
            cols = np.concatenate([window[:, :, m0 + dy - lo:m1 + dy - lo, 1 + dx:1 + dx + width]
                                   for dy, dx in phase.offsets], axis=1).reshape(n, len(phase.offsets) * self.c_in, -1)
            acc = (phase.kernel @ cols).astype(np.int64).reshape(n, self.c_out, m1 - m0, width)
            rows = slice(self.factor * m0 + phase.row_parity - start, self.factor * (m1 - 1) + phase.row_parity
                         - start + 1, self.factor)
            out[:, :, rows, phase.col_parity::self.factor] = self._activation(acc)
        return out

    def _activation(self, acc: np.ndarray) -> np.ndarray:
        """Exact requantization of acc + bias: the next layer's ReLU activations, or the table indices."""
        total = acc + self.bias[:, None, None]
        if self.last:
            shift = (self.shift + FRACTION_BITS)[:, None, None]
            return np.clip((total + (np.int64(1) << (shift - 1))) >> shift, 0, SIZE - 1)
        shift = self.shift[:, None, None]
        return np.clip((total + (np.int64(1) << (shift - 1))) >> shift, 0, _ACT_MAX)


class ExactHyperSynthesis:
    """h_s as integer layers: W_z = Z_z − U_z → the scale-table index of every main-latent position and channel.

    ``weights``: the model file's tensors (``hyper_synthesis.{0,2,4}.weight`` / ``.bias``, float32).
    """

    PREFIX = "hyper_synthesis"

    def __init__(self, weights: dict[str, np.ndarray]):
        get = lambda i, part: weights[f"{self.PREFIX}.{i}.{part}"]  # noqa: E731
        self.layers = [IntegerLayer(get(0, "weight"), get(0, "bias"), 2, False),
                       IntegerLayer(get(2, "weight"), get(2, "bias"), 2, False),
                       IntegerLayer(get(4, "weight"), get(4, "bias"), 1, True)]

    def indices(self, w_z: np.ndarray, rows: int, cols: int, band_rows: int | None = None) -> np.ndarray:
        """Table indices j (int64 (N, M, rows, cols)) of N main latents of ``rows`` × ``cols`` positions from
        their hyper-latents W_z = Z_z − U_z (float64 (N, C, ⌈rows/4⌉, ⌈cols/4⌉)), in bands of ``band_rows`` rows
        and as many images at once as keep a band's patches within :data:`BLOCK_ELEMENTS` (one image is a batch
        of one: its indices are the same in any batch, band or block)."""
        x = to_fixed(w_z)
        heights = [x.shape[2], 2 * x.shape[2], 4 * x.shape[2]]
        per_row = 9 * self.layers[2].c_in * 4 * x.shape[3]
        if band_rows is None:
            band_rows = max(1, BLOCK_ELEMENTS // per_row)
        step = max(1, BLOCK_ELEMENTS // (per_row * min(band_rows, rows)))
        out = np.empty((len(x), self.layers[2].c_out, rows, cols), np.int64)
        for first in range(0, len(x), step):
            images = slice(first, first + step)
            for start in range(0, rows, band_rows):
                stop = min(start + band_rows, rows)
                out[images, :, start:stop] = self._band(x[images], heights, start, stop)[..., :cols]
        return out

    def _band(self, x: np.ndarray, heights: list[int], start: int, stop: int) -> np.ndarray:
        """Output rows [start, stop) of the last layer, each layer below computing just the rows needed."""
        spans = [(start, stop)]
        for layer, height in zip(self.layers[:0:-1], heights[:0:-1], strict=True):
            spans.insert(0, layer.input_rows(*spans[0], height))
        first = 0
        for layer, height, (a, b) in zip(self.layers, heights, spans, strict=True):
            x, first = layer(x, first, height, a, b), a
        return x
