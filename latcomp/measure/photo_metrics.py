"""Quality and rate metrics of photo codecs: PSNR, MS-SSIM and the Bjøntegaard delta rate.

Numpy only (no torch). :func:`ms_ssim` is the standard MS-SSIM of Wang, Simoncelli and
Bovik (2003) exactly as CompressAI computes it with ``pytorch_msssim``: five scales,
11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, 2×2 average pooling between
scales, per RGB channel, then averaged over the channels. :func:`bd_rate` wraps the
``bjontegaard`` package (``pip install 'latcomp[bench]'``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as float64 arrays of one shape, HxW or HxWxC."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 8-bit images over all pixels and channels: 10·log10(255²/MSE); inf if equal."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(DATA_RANGE**2 / mse))


def gaussian_window(size: int = WIN_SIZE, sigma: float = WIN_SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian of ``size`` taps centred on the middle one."""
    coords = np.arange(size) - size // 2
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _blur_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of the last two axes of ``x`` with the 1-D kernel ``g``."""
    n = len(g)
    h, w = x.shape[-2] - n + 1, x.shape[-1] - n + 1
    rows = sum(g[k] * x[..., k:k + h, :] for k in range(n))
    return sum(g[k] * rows[..., :, k:k + w] for k in range(n))


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel of (C, H, W) images: the mean SSIM and the mean contrast-structure term."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu_x, mu_y, xx, yy, xy = _blur_valid(np.stack([x, y, x * x, y * y, x * y]), g)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean(axis=(-2, -1)), cs_map.mean(axis=(-2, -1))


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    """2×2 mean pooling of (C, H, W), an odd side zero-padded by one on each side, zeros counted.

    This is ``torch.nn.functional.avg_pool2d(x, 2, padding=[h % 2, w % 2])`` as MS-SSIM uses it.
    """
    ph, pw = x.shape[-2] % 2, x.shape[-1] % 2
    x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return x[:, :2 * h, :2 * w].reshape(x.shape[0], h, 2, w, 2).mean(axis=(2, 4))


def ms_ssim(a: np.ndarray, b: np.ndarray, weights: Sequence[float] = MS_SSIM_WEIGHTS) -> float:
    """Multi-scale SSIM of two 8-bit images (HxW or HxWxC), averaged over the channels.

    The smaller side must exceed (11 − 1)·2⁴ = 160 pixels so that the window fits at the coarsest scale.
    """
    x, y = _pair(a, b)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    x, y = x.transpose(2, 0, 1), y.transpose(2, 0, 1)
    min_side = (WIN_SIZE - 1) * 2 ** (len(weights) - 1)
    if min(x.shape[1:]) <= min_side:
        raise ValueError(f"MS-SSIM needs both sides > {min_side} pixels, got {x.shape[1]}x{x.shape[2]}")
    g = gaussian_window()
    factors = []
    for level in range(len(weights)):
        ssim, cs = _ssim_and_cs(x, y, g)
        if level < len(weights) - 1:
            factors.append(np.maximum(cs, 0.0))
            x, y = _avg_pool2(x), _avg_pool2(y)
    factors.append(np.maximum(ssim, 0.0))
    per_channel = np.prod(np.stack(factors) ** np.asarray(weights, np.float64)[:, None], axis=0)
    return float(per_channel.mean())


def ms_ssim_db(value: float | np.ndarray) -> float | np.ndarray:
    """MS-SSIM on the decibel scale used in the literature's plots: −10·log10(1 − MS-SSIM)."""
    return -10.0 * np.log10(1.0 - np.asarray(value, np.float64))


def bd_rate(rate_a: Sequence[float], psnr_a: Sequence[float], rate_b: Sequence[float], psnr_b: Sequence[float],
            method: str = "cubic") -> float:
    """Bjøntegaard delta rate of curve B against anchor A in percent (negative: B needs fewer bits).

    The mean difference of log-rate at equal quality over the qualities both curves reach.
    ``method`` is the interpolation of log-rate as a function of quality, as in the
    ``bjontegaard`` package: ``"cubic"`` (Bjøntegaard's least-squares cubic polynomial),
    ``"pchip"`` (JVET common test conditions) or ``"akima"``. Points need not be sorted;
    the quality may be PSNR or any other metric that grows with quality. NaN when the
    quality ranges do not overlap.
    """
    try:
        import bjontegaard
    except ImportError as e:
        raise ModuleNotFoundError("bd_rate needs the bjontegaard package: pip install 'latcomp[bench]'",
                                  name="bjontegaard") from e
    curves = []
    for rate, quality in ((rate_a, psnr_a), (rate_b, psnr_b)):
        r, q = np.asarray(rate, np.float64), np.asarray(quality, np.float64)
        if r.shape != q.shape or r.ndim != 1 or len(r) < 2:
            raise ValueError("each curve needs matching 1-D rate and quality arrays of at least 2 points")
        if not (np.all(np.isfinite(q)) and np.all(r > 0) and np.all(np.isfinite(r))):
            raise ValueError("rates must be positive and finite, qualities finite")
        order = np.argsort(q)
        curves += [r[order], q[order]]
    return float(bjontegaard.bd_rate(*curves, method=method, require_matching_points=False, min_overlap=0))
