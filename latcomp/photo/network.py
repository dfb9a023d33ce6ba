"""The photo model's transforms in numpy (no torch): g_a and g_s of :mod:`latcomp.nn.photo`.

Each 5×5 convolution of stride 2 is one matrix product with the input's 5×5 patches
(im2col); a transposed convolution is four such products, one per parity of the output
coordinates (the sub-pixel decomposition), or for few output channels one product for
all 25 taps added into the output with stride 2. Both work in bands of rows so that no temporary exceeds
:data:`BLOCK_ELEMENTS` floats. Arithmetic is float32, as in training. Unlike the
MNIST networks (:mod:`latcomp.exact.networks`) these transforms need not be bit-exact
across machines: only the entropy model must be (it is built from the file's float32
parameters alone), the lattice coordinates are checked by the content CRC, and a last-bit
difference in g_s changes a decoded pixel by at most one level in rare cases.

Every layer takes a batch (N, C, H, W) of images of one size (one image is a batch of one) and computes
the images' matrix products as one stacked product ``kernel @ cols`` with ``cols`` (N, K, P): numpy calls
BLAS once per image with the shapes of the one-image call, so an image's output is bit for bit the same
in any batch (tests/test_photo.py checks it), and a file of many small images pays numpy's per-call
overhead once per batch (:func:`image_batches`), not once per image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from latcomp.families import ModelShapeError
from latcomp.families.photo import DOWNSAMPLING
from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.steps import spans

#: Kernel size, stride and padding of every layer.
KERNEL, STRIDE, PAD = 5, 2, 2


#: Latent rows of context a band of rows needs on either side for the banded transforms to compute
#: what the whole image gives: latent row L of g_a reads pixel rows 16L − 30 … 16L + 30 (four 5×5
#: stride-2 layers), and the pixel rows 16a … 16b − 1 of g_s read latent rows a − 1 … b.
HALO = 2
#: Pixels of one band of :meth:`NumpyPhotoFactorized.encode_pixels` / :meth:`~NumpyPhotoFactorized.decode_bands`:
#: bounds the float32 activations (about 500 bytes per pixel to encode, 350 to decode) whatever the image size.
BAND_PIXELS = 1 << 19


def latent_bands(rows: int, cols: int, band_pixels: int = BAND_PIXELS) -> list[tuple[int, int]]:
    """Latent row ranges [a, b) of at most ``band_pixels`` image pixels each (at least one row), covering ``rows``."""
    return spans(rows, band_pixels // (DOWNSAMPLING * DOWNSAMPLING * cols))


#: Image pixels of one batch of :func:`image_batches`, which g_s and h_s compute together: 64 images of
#: 16×16 pay numpy's per-call overhead once. Larger batches were hardly faster with the shipped models
#: (2,000 images of 1×1 decoded in 0.74 s at 2^14 pixels, 0.71 s at 2^15, 1.05 s at 2^19, one band's)
#: and hold more activations (a batch of 2^19 pixels: 154 MB of g_s, 96 MB of h_s).
BATCH_PIXELS = 1 << 14


def image_windows(shapes: Sequence[tuple[int, int]], window_pixels: int = BAND_PIXELS) -> list[tuple[int, int]]:
    """Runs [first, last) of consecutive images (latent ``shapes`` (rows, columns)) of at most ``window_pixels``
    image pixels in all, or of one larger image: a decoder computes Z − U a window at a time and batches each
    window's images (:func:`image_batches`)."""
    windows: list[tuple[int, int]] = []
    first, pixels = 0, 0
    for i, (rows, cols) in enumerate(shapes):
        size = DOWNSAMPLING * DOWNSAMPLING * rows * cols
        if i > first and pixels + size > window_pixels:
            windows.append((first, i))
            first, pixels = i, 0
        pixels += size
    if shapes:
        windows.append((first, len(shapes)))
    return windows


def image_batches(shapes: Sequence[tuple[int, int]], batch_pixels: int = BATCH_PIXELS) -> list[list[int]]:
    """The images (indices into latent ``shapes``) grouped by latent size, wherever they lie, in batches of at
    most ``batch_pixels`` image pixels (an image of more alone), each batch in order: g_s and h_s compute a
    batch together. A batch of several images has only images of one band (:func:`latent_bands`), as
    ``batch_pixels`` ≤ :data:`BAND_PIXELS`."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, shape in enumerate(shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    batches = []
    for (rows, cols), images in by_shape.items():
        step = max(1, batch_pixels // (DOWNSAMPLING * DOWNSAMPLING * rows * cols))
        batches += [images[a:a + step] for a in range(0, len(images), step)]
    return batches


#: Bound on the elements of one im2col or tap block (float32): larger layers work in bands of rows.
BLOCK_ELEMENTS = 1 << 24


def _blocks(count: int, rows: int, per_row: int) -> Iterator[tuple[slice, int, int]]:
    """(images, start, stop) of the blocks of a layer on ``count`` images of ``rows`` rows: the row bands
    [start, stop) of one image (at most :data:`BLOCK_ELEMENTS` elements, ``per_row`` each per row), for as
    many images at once as keep a block within :data:`BLOCK_ELEMENTS` (at least one). The bands do not
    depend on ``count``: each image's products have the shapes of its one-image call."""
    bands = spans(rows, BLOCK_ELEMENTS // max(1, per_row))
    step = max(1, BLOCK_ELEMENTS // max(1, per_row * max((b - a for a, b in bands), default=1)))
    for first in range(0, count, step):
        for start, stop in bands:
            yield slice(first, first + step), start, stop


def conv_down(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv2d(k=5, stride=2, padding=2): (N, C_in, H, W) → (N, C_out, ⌈H/2⌉, ⌈W/2⌉); weight (C_out, C_in, 5, 5).

    One matrix product per block of output rows with the block's 5×5 patches (im2col).
    """
    n, c_in, h, w = x.shape
    ho, wo = (h + 1) // 2, (w + 1) // 2
    padded = np.pad(np.asarray(x, np.float32), ((0, 0), (0, 0), (PAD, PAD + 1), (PAD, PAD + 1)))
    kernel = weight.reshape(weight.shape[0], c_in * KERNEL * KERNEL)
    out = np.empty((n, weight.shape[0], ho, wo), np.float32)
    sn, sc, sh, sw = padded.strides
    for images, start, stop in _blocks(n, ho, wo * c_in * KERNEL * KERNEL):
        part = padded[images, :, 2 * start:]
        patches = np.lib.stride_tricks.as_strided(
            part, (len(part), c_in, KERNEL, KERNEL, stop - start, wo), (sn, sc, sh, sw, 2 * sh, 2 * sw))
        cols = patches.reshape(len(part), c_in * KERNEL * KERNEL, (stop - start) * wo)
        out[images, :, start:stop] = (kernel @ cols).reshape(len(part), -1, stop - start, wo)
    return out + bias[:, None, None]


def conv_up(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """ConvTranspose2d(k=5, stride=2, padding=2, output_padding=1): (N, C_in, H, W) → (N, C_out, 2H, 2W).

    ``weight`` (C_in, C_out, 5, 5): output pixel (2i + ky − 2, 2j + kx − 2) receives
    Σ_c x[c, i, j]·weight[c, :, ky, kx]. Two equivalent evaluations, whichever moves less
    memory: few output channels (the last layer) compute the 25 taps in one product and add
    them into the output with stride 2; otherwise each of the four phases (parities of the
    output coordinates) is an ordinary convolution with the taps of that parity.
    """
    out = (_conv_up_scatter if weight.shape[1] < x.shape[1] else _conv_up_phases)(np.asarray(x, np.float32), weight)
    return out + bias[:, None, None]


def _conv_up_scatter(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n, c_in, h, w = x.shape
    c_out = weight.shape[1]
    taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0)).reshape(KERNEL * KERNEL * c_out, c_in)
    buffer = np.zeros((n, c_out, 2 * h + KERNEL, 2 * w + KERNEL - 1), np.float32)
    for images, start, stop in _blocks(n, h, w * KERNEL * KERNEL * c_out):
        part = x[images, :, start:stop]
        band = (taps @ part.reshape(len(part), c_in, -1)).reshape(len(part), KERNEL, KERNEL, c_out, stop - start, w)
        for ky in range(KERNEL):
            for kx in range(KERNEL):
                buffer[images, :, 2 * start + ky:2 * stop + ky:2, kx:kx + 2 * w:2] += band[:, ky, kx]
    return buffer[:, :, PAD:PAD + 2 * h, PAD:PAD + 2 * w]


def _phase_taps(parity: int) -> list[tuple[int, int]]:
    """(kernel tap k, input offset) of the outputs 2m + ``parity``: they come from input m + offset."""
    return [(k, (2 + parity - k) // 2) for k in range(parity, KERNEL, 2)]


def _conv_up_phases(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n, c_in, h, w = x.shape
    c_out = weight.shape[1]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.empty((n, c_out, 2 * h, 2 * w), np.float32)
    for pa in (0, 1):
        for pb in (0, 1):
            taps = [(ky, dy, kx, dx) for ky, dy in _phase_taps(pa) for kx, dx in _phase_taps(pb)]
            kernel = np.concatenate([weight[:, :, ky, kx].T for ky, _, kx, _ in taps], axis=1)
            for images, start, stop in _blocks(n, h, w * c_in * len(taps)):
                cols = np.concatenate([padded[images, :, 1 + start + dy:1 + stop + dy, 1 + dx:1 + w + dx]
                                       for _, dy, _, dx in taps], axis=1)
                cols = cols.reshape(len(cols), len(taps) * c_in, -1)
                out[images, :, 2 * start + pa:2 * stop:2, pb::2] = \
                    (kernel @ cols).reshape(len(cols), c_out, stop - start, w)
    return out


def gdn(x: np.ndarray, beta_root: np.ndarray, gamma_root: np.ndarray, inverse: bool) -> np.ndarray:
    """GDN / IGDN of :class:`latcomp.nn.layers.GDN` on (N, C, H, W): x·√(β + γ·x²) (inverse) or x/√(β + γ·x²)
    per pixel, γ·x² a product over the channels."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    norm = np.square(gamma_root) @ np.square(flat) + (np.square(beta_root) + np.float32(1e-6))[:, None]
    out = flat * np.sqrt(norm) if inverse else flat / np.sqrt(norm)
    return out.reshape(n, c, h, w)


def _layers(weights: dict[str, np.ndarray], prefix: str) -> list[tuple[np.ndarray, ...]]:
    """(weight, bias, beta_root, gamma_root) per layer of a strided stack (the last layer has no GDN)."""
    layers = []
    for i in range(4):
        conv = (weights[f"{prefix}.{2 * i}.weight"], weights[f"{prefix}.{2 * i}.bias"])
        norm = (weights[f"{prefix}.{2 * i + 1}.beta_root"], weights[f"{prefix}.{2 * i + 1}.gamma_root"]) \
            if i < 3 else ()
        layers.append(tuple(np.asarray(t, np.float32) for t in conv + norm))
    return layers


class NumpyPhotoFactorized:
    """Numpy adapter of :class:`latcomp.nn.photo.PhotoFactorized`: g_a, g_s and the latent codec."""

    architecture: ClassVar[str] = "photo-factorized"

    def __init__(self, weights: dict[str, np.ndarray], hparams: dict[str, Any]):
        try:
            self.analysis = _layers(weights, "analysis")
            self.synthesis = _layers(weights, "synthesis")
            latent = int(hparams["latent"])
            self.latent = LatticeLatentCodec.from_spec(hparams.get("lattice", "z"), latent,
                                                       weights["codec.lattice.delta"], weights["codec.prior.b"])
            _ = self.latent.code  # builds the entropy model now: validates its parameters
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelShapeError(f"not a usable photo model ({exc})") from None

    def latent_dim(self) -> int:
        return self.latent.dim

    def encode(self, image: np.ndarray) -> np.ndarray:
        """y = g_a(x) for one padded image (3, H, W) float32 in [0, 1]: rows (H/16 · W/16, M) float64."""
        x = np.asarray(image, np.float32)[None]
        for weight, bias, *norm in self.analysis:
            x = conv_down(x, weight, bias)
            if norm:
                x = gdn(x, *norm, inverse=False)
        return x[0].reshape(x.shape[1], -1).T.astype(np.float64)

    def decode(self, rows: np.ndarray, height: int, width: int) -> np.ndarray:
        """x̂ = g_s(w) for the rows (h·w, M) of one image of latent size (``height``, ``width``): (3, 16h, 16w)."""
        return self.decode_batch(rows, height, width)[0]

    def decode_batch(self, rows: np.ndarray, height: int, width: int) -> np.ndarray:
        """:meth:`decode` of N images of latent size (``height``, ``width``) at once: their rows (N·h·w, M), image
        after image, → x̂ (N, 3, 16h, 16w); each image's x̂ is bit for bit its :meth:`decode` alone (module
        docstring). The activations grow with N: decode a batch of :func:`image_batches` at a time."""
        x = np.asarray(rows, np.float32)
        x = np.ascontiguousarray(x.reshape(-1, height * width, x.shape[-1]).transpose(0, 2, 1))
        x = x.reshape(len(x), -1, height, width)
        for weight, bias, *norm in self.synthesis:
            x = conv_up(x, weight, bias)
            if norm:
                x = gdn(x, *norm, inverse=True)
        return x

    def encode_pixels(self, pixels: np.ndarray, band_pixels: int = BAND_PIXELS) -> np.ndarray:
        """:meth:`encode` of a padded (H, W, 3) uint8 image (sides multiples of 16), band by band.

        Each band of latent rows is computed from its pixel rows with :data:`HALO` latent rows of
        context either side, so the memory is that of a band of ``band_pixels`` and the result
        that of the whole image.
        """
        lh, lw = pixels.shape[0] // DOWNSAMPLING, pixels.shape[1] // DOWNSAMPLING
        out = []
        for a, b in latent_bands(lh, lw, band_pixels):
            top, bottom = max(0, a - HALO), min(lh, b + HALO)
            band = pixels[DOWNSAMPLING * top:DOWNSAMPLING * bottom].transpose(2, 0, 1)
            rows = self.encode(band.astype(np.float32) / np.float32(255.0))
            out.append(rows[(a - top) * lw:(b - top) * lw])
        return np.concatenate(out)

    def decode_bands(self, rows: np.ndarray, height: int, width: int,
                     band_pixels: int = BAND_PIXELS) -> Iterator[tuple[int, np.ndarray]]:
        """:meth:`decode` band by band: (first pixel row, x̂ of the band's rows (3, n, 16·``width``)).

        Each band's latent rows get :data:`HALO` rows of context either side; together the bands
        are the whole image's x̂, with the memory of a band of ``band_pixels``.
        """
        for a, b in latent_bands(height, width, band_pixels):
            top, bottom = max(0, a - HALO), min(height, b + HALO)
            x_hat = self.decode(rows[top * width:bottom * width], bottom - top, width)
            yield DOWNSAMPLING * a, x_hat[:, DOWNSAMPLING * (a - top):DOWNSAMPLING * (b - top)]
