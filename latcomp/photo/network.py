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
"""

from __future__ import annotations

from collections.abc import Iterator
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


#: Bound on the elements of one im2col or tap block (float32): larger layers work in bands of rows.
BLOCK_ELEMENTS = 1 << 24


def _bands(rows: int, per_row: int) -> list[tuple[int, int]]:
    """Row ranges covering ``rows`` with at most :data:`BLOCK_ELEMENTS` elements (``per_row`` each) per band."""
    return spans(rows, BLOCK_ELEMENTS // max(1, per_row))


def conv_down(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv2d(k=5, stride=2, padding=2): (C_in, H, W) → (C_out, ⌈H/2⌉, ⌈W/2⌉); weight (C_out, C_in, 5, 5).

    One matrix product per band of output rows with the band's 5×5 patches (im2col).
    """
    c_in, h, w = x.shape
    ho, wo = (h + 1) // 2, (w + 1) // 2
    padded = np.pad(np.asarray(x, np.float32), ((0, 0), (PAD, PAD + 1), (PAD, PAD + 1)))
    kernel = weight.reshape(weight.shape[0], c_in * KERNEL * KERNEL)
    out = np.empty((weight.shape[0], ho, wo), np.float32)
    sc, sh, sw = padded.strides
    for start, stop in _bands(ho, wo * c_in * KERNEL * KERNEL):
        patches = np.lib.stride_tricks.as_strided(
            padded[:, 2 * start:], (c_in, KERNEL, KERNEL, stop - start, wo), (sc, sh, sw, 2 * sh, 2 * sw))
        cols = patches.reshape(c_in * KERNEL * KERNEL, (stop - start) * wo)
        out[:, start:stop] = (kernel @ cols).reshape(-1, stop - start, wo)
    return out + bias[:, None, None]


def conv_up(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """ConvTranspose2d(k=5, stride=2, padding=2, output_padding=1): (C_in, H, W) → (C_out, 2H, 2W).

    ``weight`` (C_in, C_out, 5, 5): output pixel (2i + ky − 2, 2j + kx − 2) receives
    Σ_c x[c, i, j]·weight[c, :, ky, kx]. Two equivalent evaluations, whichever moves less
    memory: few output channels (the last layer) compute the 25 taps in one product and add
    them into the output with stride 2; otherwise each of the four phases (parities of the
    output coordinates) is an ordinary convolution with the taps of that parity.
    """
    out = (_conv_up_scatter if weight.shape[1] < x.shape[0] else _conv_up_phases)(np.asarray(x, np.float32), weight)
    return out + bias[:, None, None]


def _conv_up_scatter(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    c_in, h, w = x.shape
    c_out = weight.shape[1]
    taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0)).reshape(KERNEL * KERNEL * c_out, c_in)
    buffer = np.zeros((c_out, 2 * h + KERNEL, 2 * w + KERNEL - 1), np.float32)
    for start, stop in _bands(h, w * KERNEL * KERNEL * c_out):
        band = (taps @ x[:, start:stop].reshape(c_in, -1)).reshape(KERNEL, KERNEL, c_out, stop - start, w)
        for ky in range(KERNEL):
            for kx in range(KERNEL):
                buffer[:, 2 * start + ky:2 * stop + ky:2, kx:kx + 2 * w:2] += band[ky, kx]
    return buffer[:, PAD:PAD + 2 * h, PAD:PAD + 2 * w]


def _phase_taps(parity: int) -> list[tuple[int, int]]:
    """(kernel tap k, input offset) of the outputs 2m + ``parity``: they come from input m + offset."""
    return [(k, (2 + parity - k) // 2) for k in range(parity, KERNEL, 2)]


def _conv_up_phases(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    c_in, h, w = x.shape
    c_out = weight.shape[1]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.empty((c_out, 2 * h, 2 * w), np.float32)
    for pa in (0, 1):
        for pb in (0, 1):
            taps = [(ky, dy, kx, dx) for ky, dy in _phase_taps(pa) for kx, dx in _phase_taps(pb)]
            kernel = np.concatenate([weight[:, :, ky, kx].T for ky, _, kx, _ in taps], axis=1)
            for start, stop in _bands(h, w * c_in * len(taps)):
                cols = np.concatenate([padded[:, 1 + start + dy:1 + stop + dy, 1 + dx:1 + w + dx]
                                       for _, dy, _, dx in taps]).reshape(len(taps) * c_in, -1)
                out[:, 2 * start + pa:2 * stop:2, pb::2] = (kernel @ cols).reshape(c_out, stop - start, w)
    return out


def gdn(x: np.ndarray, beta_root: np.ndarray, gamma_root: np.ndarray, inverse: bool) -> np.ndarray:
    """GDN / IGDN of :class:`latcomp.nn.layers.GDN` on (C, H, W)."""
    c, h, w = x.shape
    flat = x.reshape(c, h * w)
    norm = np.square(gamma_root) @ np.square(flat) + (np.square(beta_root) + np.float32(1e-6))[:, None]
    out = flat * np.sqrt(norm) if inverse else flat / np.sqrt(norm)
    return out.reshape(c, h, w)


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
        x = np.asarray(image, np.float32)
        for weight, bias, *norm in self.analysis:
            x = conv_down(x, weight, bias)
            if norm:
                x = gdn(x, *norm, inverse=False)
        return x.reshape(x.shape[0], -1).T.astype(np.float64)

    def decode(self, rows: np.ndarray, height: int, width: int) -> np.ndarray:
        """x̂ = g_s(w) for the rows (h·w, M) of one image of latent size (``height``, ``width``): (3, 16h, 16w)."""
        x = np.ascontiguousarray(np.asarray(rows, np.float32).T).reshape(-1, height, width)
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
