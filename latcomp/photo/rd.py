"""Rate–distortion comparison of photo codecs on the Kodak images: curves, BD-rates, reports.

The machinery behind ``latcomp bench --photo`` (:mod:`latcomp.photo.bench`) and
``python -m benchmarks.photo_peers``; it needs no torch, and matplotlib only to plot.

* **Data**: :func:`load_kodak` reads ``kodim*.png`` from ``--data-dir`` (the Kodak folder or
  a data root holding ``kodak/``), else ``$LATCOMP_DATA``, else ``../shared/data``. A folder's
  ``SHA256SUMS`` file, if it has one, is checked (a mismatch is an error), and every image's
  decoded pixels are compared with the Kodak originals' (:data:`KODAK_PIXELS_SHA256`, the same
  for every lossless copy): other images are measured, but the report says that they are not
  the Kodak set.
* **Peer codecs** (:data:`CODECS`): JPEG (baseline and optimized Huffman), WebP, AVIF via
  Pillow, JPEG XL via imagecodecs, each on one thread, swept over its quality setting.
* **Measuring** (:func:`measure_curve`): per image and setting the codec's file (the whole
  file, headers included) gives bpp = 8·bytes/(H·W); the file is decoded and PSNR-RGB and
  MS-SSIM (:mod:`latcomp.photo_metrics`) are taken against the original, with the median
  encode and decode seconds of ``repeats`` runs. A :class:`Point` averages bpp, PSNR and
  MS-SSIM over the images, as in the literature.
* **BD-rates** (:func:`bd_table`): from those mean curves, every curve against an anchor
  (JPEG) and chosen curves against every other one, PSNR and MS-SSIM dB, cubic and Akima.
* **Reports**: :func:`write_report` writes any of the JSON, the Markdown and the RD plot;
  :func:`load_curves` reads the curves of such a JSON back (and of the CompressAI peer's).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import io
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.data import DataError
from latcomp.fileio import atomic_write, atomic_write_text
from latcomp.photo_metrics import bd_rate, ms_ssim, ms_ssim_db, psnr_rgb
from latcomp.results import machine_info, pyplot, timed, write_json

ANCHOR = "JPEG"
THREADS = 1
QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
JXL_DISTANCES = (15, 12, 8, 6, 4, 3, 2, 1.5, 1, 0.75, 0.5)
BD_METHODS = ("cubic", "akima")
METRICS = {"psnr": "PSNR-RGB (dB)", "ms_ssim_db": "MS-SSIM (dB)"}  # Point attribute -> axis label
# One colour per curve in every figure; curves not listed (e.g. a latcomp model) take _OTHER_COLOURS in turn.
CURVE_COLOURS = {"JPEG": "tab:gray", "JPEG (optimize)": "tab:purple", "WebP": "tab:green", "AVIF": "tab:blue",
                 "JPEG XL": "tab:orange"}
_OTHER_COLOURS = ("tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
#: Python packages whose versions a peer report names (each curve also names its C library).
PEER_PACKAGES = ("pillow", "imagecodecs", "bjontegaard", "numpy")
TITLE = "Photo codecs on Kodak: classical peers"

Encoder = Callable[[np.ndarray, Any], bytes]
Decoder = Callable[[bytes], np.ndarray]
#: ``progress(stage, done, total)`` as in :mod:`latcomp.bench`.
Progress = Callable[[str, int, int], None]
Log = Callable[[str], None]


# --------------------------------------------------------------------------- data

#: The checkout's ``../shared/data`` (meaningful when latcomp runs from a source checkout).
_CHECKOUT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: SHA-256 of the decoded pixels (8-bit RGB, row by row) of the 24 Kodak images (PCD0992): the same for
#: every lossless copy, whatever its PNG chunks.
KODAK_PIXELS_SHA256 = {
    "kodim01": "a00210743353594464ac67e680a41710f484444ca5f9dfddeb570de25c428273",
    "kodim02": "ae5a495df4ec40e0941265440ccf98973915b4190ab803e37a23ca93dd43a07e",
    "kodim03": "234e61f585503f2a44400f5561131e8a512ef2c15328cd83d5cdbf10e2616cf2",
    "kodim04": "e88e788fca00e6c723bb66ff45edb8cb56091ee284dcb73e3909834f2c96eeb6",
    "kodim05": "ed3d1ee770909d3b27903b52ce19ee59a9bf24621a7bf1fb57b90677da880cb6",
    "kodim06": "7f45158999fa297d1cfbd292b3e2f3f5b27770701c3473155c211c3f512cc97f",
    "kodim07": "4e3664bf6fe865b49f15f7b554efa7dbecaf73ae0e8699f2e307bf07849f1264",
    "kodim08": "889c3740e4ed54ca53d11ae735a44d15fa24fe312b3bd1609a80618a4092c208",
    "kodim09": "f8453140e63a42301a6dbebb849a3cc40d34e4e59580eb1f372f7f5460df0dbe",
    "kodim10": "fabe11b5c4f028394e093a5b5907e5fabc8072da0d5334fb3a38547a7e1be842",
    "kodim11": "ab4dd9bf8431e717d33892b3ba03c63bfea3c7fa72c2610010de7df3c194c075",
    "kodim12": "f412db2168e599949aac26bd3264f111b23a684f30a21cfd320e9e95bc69bbae",
    "kodim13": "875703d56fb9396f478b5d7d3b18e2b77c17147a685c6dc2567e1c574aaf01e3",
    "kodim14": "2bd5029ee75ac1697542e5b05624e8afe186e3250abd7513d6a806b52084c2f0",
    "kodim15": "b5353e7511277009922ecbdebfc6418fec53aa1b2a08d44fc957a7540825697b",
    "kodim16": "ed21745fd32fce95cc2c6af7fc52b1b15e590c7a14ab18ab34bd65ecaf955ac7",
    "kodim17": "566bc866664e9b06dc86e2654051b454844efe17322dbf7e24156d8243f1943e",
    "kodim18": "3475af71066f3ca8206eb12cfc989ebe9c6e44820a96604e88ae018606e1f7bd",
    "kodim19": "7956408ef24222d37ac53f579bd24d5b2c3557b16c657e8b71c1b6ae9f18de1b",
    "kodim20": "666ce8f2db5566a123bb081e70618f6f4c4253df960f3b41bb9dcc3dd134f3cf",
    "kodim21": "2d6902daf7c4486b7c8c04d834091841a2b38c8f0c81cd7a963a6510b34a2a6a",
    "kodim22": "f430842120c108b67725ada96b8b7b2a914f6a0915eacd5595064c6c1a5d70a0",
    "kodim23": "81992a83592267e69125666f3e3e04c1819529b4c4c1e55fde0a6a741bac4219",
    "kodim24": "e3e3ccc3e795b82a3da66934409dfe98ce0f5aadc6d7767543c506453599bb98",
}


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where the Kodak folder is looked for: ``data_dir``; else ``$LATCOMP_DATA``; else ``../shared/data``
    (beside the source checkout, and relative to the working directory)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    if os.environ.get("LATCOMP_DATA"):
        return [Path(os.environ["LATCOMP_DATA"]).expanduser()]
    return list(dict.fromkeys([_CHECKOUT_DATA, Path("..", "shared", "data")]))


def kodak_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder with ``kodim*.png``: ``ROOT/kodak`` or ``ROOT`` itself for each root of :func:`data_roots`.

    Raises :class:`latcomp.data.DataError` with one line saying where it looked.
    """
    roots = data_roots(data_dir)
    for root in roots:
        for folder in (root / "kodak", root):
            if any(folder.glob("kodim*.png")):
                return folder
    where = " or ".join(f"{r / 'kodak'} or {r}" for r in roots)
    raise DataError(f"Kodak images (kodim01.png … kodim24.png) not found in {where}; "
                    "set LATCOMP_DATA to the data root or pass --data-dir")


def _check_sums(folder: Path, paths: Sequence[Path]) -> bool:
    """Check ``paths`` against ``folder/SHA256SUMS`` when it exists; True if checked, DataError on a mismatch."""
    sums_file = folder / "SHA256SUMS"
    if not sums_file.exists():
        return False
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, file_name = line.split(maxsplit=1)
            sums[file_name.lstrip("*")] = digest
    for p in paths:
        want = sums.get(p.name)
        if want is not None and hashlib.sha256(p.read_bytes()).hexdigest() != want:
            raise DataError(f"{p} does not match its sha256 in {sums_file}")
    return True


def pixels_sha256(img: np.ndarray) -> str:
    """SHA-256 (hex) of an image's pixels, row by row (as :data:`KODAK_PIXELS_SHA256` holds them)."""
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when that is short, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path.absolute())
    return rel if rel.count("..") <= 2 else str(path.absolute())


def load_kodak(data_dir: str | os.PathLike | None = None, limit: int | None = None
               ) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    """The Kodak images as (name, uint8 HxWx3) pairs in name order (the first ``limit``), and a description
    of the data: folder, count, pixels, whether SHA256SUMS was checked, and which images are not the
    Kodak originals (``not_kodak``, empty for the real set)."""
    from PIL import Image

    folder = kodak_dir(data_dir)
    paths = sorted(folder.glob("kodim*.png"))[:limit]
    checked = _check_sums(folder, paths)
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append((p.stem, np.asarray(im.convert("RGB"))))
    not_kodak = [name for name, img in images if KODAK_PIXELS_SHA256.get(name) != pixels_sha256(img)]
    return images, {"folder": _shown_path(folder), "images": len(images), "sha256_checked": checked,
                    "pixels": int(sum(img.shape[0] * img.shape[1] for _, img in images)), "not_kodak": not_kodak}


def data_line(data: dict[str, Any]) -> str:
    """One sentence on the data of a report (with a warning when the images are not the Kodak originals)."""
    line = (f"Data: {data['images']} images from `{data['folder']}` ({data['pixels']} pixels"
            + (", sha256 checked" if data.get("sha256_checked") else "") + ").")
    if data.get("not_kodak"):
        line += (f" **Not the Kodak originals**: the pixels of {', '.join(data['not_kodak'])} differ from them, "
                 "so these numbers are not comparable with published Kodak results.")
    return line


# --------------------------------------------------------------------------- codecs


@dataclass(frozen=True)
class Codec:
    """A classical codec as this benchmark runs it: the sweep, the fixed options, encode and decode."""

    name: str
    library: str
    setting_name: str
    settings: tuple[float, ...]
    options: dict[str, Any]
    encode: Encoder
    decode: Decoder


class CodecUnavailable(RuntimeError):
    """The library a codec needs is missing here (the message says why)."""


def _pillow_encoder(fmt: str, setting_name: str, **options: Any) -> Encoder:
    """``encode(img, setting)`` saving with Pillow in ``fmt``, the setting passed as ``setting_name``."""
    from PIL import Image

    def encode(img: np.ndarray, setting: Any) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, **{setting_name: setting}, **options)
        return buf.getvalue()

    return encode


def pillow_decode(data: bytes) -> np.ndarray:
    """Decode a file with Pillow to uint8 RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _pillow(feature: str) -> str:
    """'Pillow X (library Y)' for a Pillow codec; CodecUnavailable if Pillow was built without it."""
    from PIL import __version__, features

    if not features.check(feature):
        raise CodecUnavailable(f"Pillow {__version__} was built without {feature}")
    return f"Pillow {__version__} ({_pillow_library(feature)})"


def _pillow_library(feature: str) -> str:
    """The name and version of the C library behind a Pillow codec."""
    from PIL import features

    if feature == "jpg":
        api = f"libjpeg API {features.version('jpg')}"
        if features.check_feature("libjpeg_turbo"):
            return f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}, {api}"
        return api
    if feature == "avif":
        from PIL import _avif

        return f"libavif {features.version('avif')}; {_avif.codec_versions()}"
    return f"lib{feature} {features.version(feature)}"


def jpeg(optimize: bool = False) -> Codec:
    """Baseline JPEG via Pillow, 4:2:0, Pillow's default quantization tables; optionally optimized Huffman."""
    options = {"subsampling": "4:2:0", "optimize": optimize}
    return Codec("JPEG (optimize)" if optimize else "JPEG", _pillow("jpg"), "quality", QUALITIES, options,
                 _pillow_encoder("JPEG", "quality", **options), pillow_decode)


def webp() -> Codec:
    """Lossy WebP via Pillow (libwebp), method 6 (slowest, best)."""
    options = {"method": 6}
    return Codec("WebP", _pillow("webp"), "quality", QUALITIES, options,
                 _pillow_encoder("WEBP", "quality", **options), pillow_decode)


def avif(speed: int = 6) -> Codec:
    """AVIF via Pillow's AVIF plugin (libavif), 8-bit 4:2:0, one encoder and one decoder thread."""
    library = _pillow("avif")
    from PIL import AvifImagePlugin

    AvifImagePlugin.DEFAULT_MAX_THREADS = THREADS  # the decoder's thread count (a module setting)
    options = {"speed": speed, "subsampling": "4:2:0", "max_threads": THREADS}
    return Codec("AVIF", library, "quality", QUALITIES, options,
                 _pillow_encoder("AVIF", "quality", **options), pillow_decode)


def jpeg_xl(effort: int = 7) -> Codec:
    """JPEG XL (libjxl, VarDCT) via imagecodecs, swept over the butteraugli distance, one thread."""
    try:
        import imagecodecs
    except ImportError as e:
        raise CodecUnavailable("imagecodecs is not installed (pip install 'latcomp[bench]')") from e
    if not imagecodecs.JPEGXL.available:
        raise CodecUnavailable(f"imagecodecs {imagecodecs.__version__} was built without JPEG XL")

    def encode(img: np.ndarray, distance: float) -> bytes:
        return bytes(imagecodecs.jpegxl_encode(img, effort=effort, distance=distance, numthreads=THREADS))

    def decode(data: bytes) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=THREADS)

    return Codec("JPEG XL", f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpegxl_version()})", "distance",
                 JXL_DISTANCES, {"effort": effort, "numthreads": THREADS, "container": False}, encode, decode)


# name -> factory (raises CodecUnavailable when its library is missing)
CODECS: dict[str, Callable[[], Codec]] = {
    "JPEG": jpeg,
    "JPEG (optimize)": lambda: jpeg(optimize=True),
    "WebP": webp,
    "AVIF": avif,
    "JPEG XL": jpeg_xl,
}
#: Short names of the codecs for command lines (the full names, any case, work too).
CODEC_KEYS = {"jpeg": "JPEG", "jpeg-opt": "JPEG (optimize)", "webp": "WebP", "avif": "AVIF", "jxl": "JPEG XL"}


def codec_names(spec: str) -> list[str]:
    """The codec names of a comma-separated list of short (``jpeg,webp``) or full names; ValueError if unknown."""
    lookup = {**CODEC_KEYS, **{name.lower(): name for name in CODECS}}
    names, unknown = [], []
    for word in (w.strip() for w in spec.split(",")):
        if word:
            (names if word.lower() in lookup else unknown).append(lookup.get(word.lower(), word))
    if unknown or not names:
        raise ValueError(f"unknown codec {', '.join(unknown) or repr(spec)}; choose from "
                         f"{', '.join(CODEC_KEYS)} (or {', '.join(CODECS)})")
    return list(dict.fromkeys(names))


def available_codecs(names: Sequence[str] | None = None) -> tuple[list[Codec], dict[str, str]]:
    """The codecs of :data:`CODECS` (or those named) that work here, and why the others are skipped."""
    codecs, skipped = [], {}
    for name in names or CODECS:
        try:
            codecs.append(CODECS[name]())
        except CodecUnavailable as e:
            skipped[name] = str(e)
    return codecs, skipped


def package_versions(dists: Iterable[str] = PEER_PACKAGES) -> dict[str, str]:
    """Versions of the Python packages measured with (those installed); each curve names its C library."""
    out = {}
    for dist in dists:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- measuring


@dataclass
class Point:
    """One setting of a codec: means over the images (bpp, PSNR dB, MS-SSIM, seconds per image).

    ``info`` holds what else is known of the setting (for a latcomp model: its directory, λ,
    lattice and cold-start decode time).
    """

    setting: Any
    bpp: float
    psnr: float
    ms_ssim: float
    enc_s: float | None = None
    dec_s: float | None = None
    per_image: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ms_ssim_db(self) -> float:
        """−10·log10(1 − mean MS-SSIM)."""
        return float(ms_ssim_db(self.ms_ssim))


@dataclass
class Curve:
    """A rate–distortion curve: a name, what the setting means, the points, and how it was made."""

    name: str
    points: list[Point]
    setting_name: str = "setting"
    info: dict[str, Any] = field(default_factory=dict)


def measure_image(encode: Encoder, decode: Decoder, img: np.ndarray, setting: Any, repeats: int) -> dict[str, Any]:
    """Encode ``img``, decode the file, compare: bytes, bpp, PSNR, MS-SSIM and median seconds."""
    data, enc_s = timed(lambda: encode(img, setting), repeats)
    out, dec_s = timed(lambda: decode(data), repeats)
    if out.shape != img.shape or out.dtype != np.uint8:
        raise ValueError(f"decoded {out.dtype} {out.shape}, expected uint8 {img.shape}")
    h, w = img.shape[:2]
    return {"bytes": len(data), "bpp": 8 * len(data) / (h * w), "psnr": psnr_rgb(img, out),
            "ms_ssim": ms_ssim(img, out), "enc_s": enc_s, "dec_s": dec_s}


def mean_point(setting: Any, per_image: list[dict[str, Any]]) -> Point:
    """A :class:`Point` averaging the per-image results (each dict as from :func:`measure_image`)."""
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in per_image]))

    return Point(setting, mean("bpp"), mean("psnr"), mean("ms_ssim"), mean("enc_s"), mean("dec_s"), per_image)


def measure_curve(name: str, encode: Encoder, decode: Decoder, settings: Sequence[Any],
                  images: Sequence[tuple[str, np.ndarray]], repeats: int = 3, setting_name: str = "setting",
                  info: dict[str, Any] | None = None, log: Log | None = print,
                  progress: Progress | None = None) -> Curve:
    """The curve of any codec given as ``encode(img, setting) -> bytes`` and ``decode(bytes) -> uint8 array``.

    ``log`` gets one line per setting; ``progress(name, done, total)`` is called after each image.
    """
    points, total = [], len(settings) * len(images)
    for setting in settings:
        per_image = []
        for image_name, img in images:
            per_image.append({"image": image_name, **measure_image(encode, decode, img, setting, repeats)})
            if progress:
                progress(name, len(points) * len(images) + len(per_image), total)
        points.append(mean_point(setting, per_image))
        p = points[-1]
        if log:
            log(f"{name} {setting_name} {setting}: {p.bpp:.3f} bpp, {p.psnr:.2f} dB, MS-SSIM {p.ms_ssim:.4f}, "
                f"enc {p.enc_s:.3f} s, dec {p.dec_s:.3f} s")
    return Curve(name, points, setting_name, info or {})


def codec_curve(codec: Codec, images: Sequence[tuple[str, np.ndarray]], repeats: int = 3, log: Log | None = print,
                progress: Progress | None = None) -> Curve:
    """:func:`measure_curve` of a registered codec over its sweep."""
    info = {"library": codec.library, "options": codec.options}
    return measure_curve(codec.name, codec.encode, codec.decode, codec.settings, images, repeats,
                         codec.setting_name, info, log, progress)


def measure_peers(images: Sequence[tuple[str, np.ndarray]], codec_names: Sequence[str] | None = None,
                  repeats: int = 3, log: Log | None = print, progress: Progress | None = None
                  ) -> tuple[list[Curve], dict[str, Any]]:
    """Measure the available peer codecs (all, or those named) on ``images``: the curves, and the run's
    metadata (date, wall_s, repeats, threads, skipped, versions, machine)."""
    start = time.perf_counter()
    codecs, skipped = available_codecs(codec_names)
    for name, why in skipped.items():
        if log:
            log(f"skipping {name}: {why}")
    curves = [codec_curve(c, images, repeats, log, progress) for c in codecs]
    meta = {"date": now(), "wall_s": time.perf_counter() - start, "repeats": repeats, "threads": THREADS,
            "skipped": skipped, "versions": package_versions(), "machine": machine_info()}
    return curves, meta


def now() -> str:
    """The current UTC time, ISO 8601 to the second (the ``date`` of a report)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- BD-rate


def _quality(curve: Curve, metric: str) -> np.ndarray:
    """The curve's PSNR (``"psnr"``) or MS-SSIM in dB (``"ms_ssim_db"``) per point."""
    return np.array([getattr(p, metric) for p in curve.points])


def _bd_value(rate_a: np.ndarray, qa: np.ndarray, rate_b: np.ndarray, qb: np.ndarray, method: str) -> float | None:
    """:func:`latcomp.photo_metrics.bd_rate`, or None where it is undefined (a curve of one point,
    quality ranges that do not overlap, qualities an interpolation cannot take)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the overlap warning (we return None) and polyfit's conditioning
        try:
            value = bd_rate(rate_a, qa, rate_b, qb, method=method)
        except (ValueError, np.linalg.LinAlgError):
            return None
    return value if math.isfinite(value) else None


def bd_row(curve: Curve, anchor: Curve) -> dict[str, Any]:
    """BD-rates (%) of ``curve`` against ``anchor`` on PSNR and MS-SSIM dB, per interpolation of BD_METHODS
    (None where undefined), and the quality interval both reach, over which the rates are compared."""
    row: dict[str, Any] = {"curve": curve.name, "anchor": anchor.name}
    rate_a, rate_b = np.array([p.bpp for p in anchor.points]), np.array([p.bpp for p in curve.points])
    for metric in METRICS:
        qa, qb = _quality(anchor, metric), _quality(curve, metric)
        row[f"{metric}_range"] = [float(max(qa.min(), qb.min())), float(min(qa.max(), qb.max()))]
        for method in BD_METHODS:
            row[f"{metric}_{method}"] = _bd_value(rate_a, qa, rate_b, qb, method)
    return row


def bd_table(curves: Sequence[Curve], anchor: str = ANCHOR, subjects: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of :func:`bd_row`: every curve against ``anchor`` (when it is among the curves), then each curve
    named in ``subjects`` against every other curve; each (curve, anchor) pair once."""
    by_name = {c.name: c for c in curves}
    pairs = [(c.name, anchor) for c in curves if anchor in by_name and c.name != anchor]
    pairs += [(s, c.name) for s in subjects if s in by_name for c in curves if c.name != s]
    return [bd_row(by_name[c], by_name[a]) for c, a in dict.fromkeys(pairs)]


# --------------------------------------------------------------------------- report


def curve_colours(names: Sequence[str]) -> dict[str, str]:
    """The colour of each curve: :data:`CURVE_COLOURS`, else the next of the spare colours."""
    spare = iter(_OTHER_COLOURS * (1 + len(names) // len(_OTHER_COLOURS)))
    return {n: CURVE_COLOURS.get(n) or next(spare) for n in names}


def plot_rd(curves: Sequence[Curve], path: str | os.PathLike, title: str = "Kodak") -> Path:
    """PSNR-RGB and MS-SSIM (dB) against bits per pixel, one line per curve, written atomically as PNG.

    Curves of :data:`CURVE_COLOURS` (the peers) have small round markers, the others larger squares.
    """
    plt = pyplot()
    colours = curve_colours([c.name for c in curves])
    fig, axes = plt.subplots(1, len(METRICS), figsize=(11, 4.5))
    for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
        for c in curves:
            peer = c.name in CURVE_COLOURS
            ax.plot([p.bpp for p in c.points], _quality(c, metric), marker="o" if peer else "s", ms=3 if peer else 6,
                    color=colours[c.name], label=c.name)
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(label)
        ax.set_title(f"{title}: {label.split(' ')[0]}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def _num(v: float | None, digits: int) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def percent(v: float | None) -> str:
    """A BD-rate as ``+1.2%``, or ``n/a`` where undefined."""
    return "n/a" if v is None else f"{v:+.1f}%"


def bd_markdown(rows: Sequence[dict[str, Any]], title: str, label: str = "curve") -> list[str]:
    """A BD-rate table (``label``: the column naming each row, ``"curve"`` or ``"anchor"``)."""
    lines = [f"## {title} (negative: fewer bits at equal quality)", "",
             f"| {'codec' if label == 'curve' else 'against'} | PSNR-RGB, cubic | PSNR-RGB, Akima | over PSNR (dB) "
             "| MS-SSIM dB, cubic | MS-SSIM dB, Akima | over MS-SSIM (dB) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r[label]]
        for metric in METRICS:
            cells += [percent(r[f"{metric}_{m}"]) for m in BD_METHODS]
            lo, hi = r[f"{metric}_range"]
            cells.append(f"{lo:.2f}–{hi:.2f}" if lo <= hi else "no overlap")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


BD_EXPLAINED = ("BD-rate: the mean difference of log-rate at equal quality over the quality interval both curves "
                "reach, from the mean curves (mean bpp and mean quality over the images per setting). *cubic*: "
                "Bjøntegaard's least-squares cubic polynomial of log-rate in quality; *Akima*: Akima interpolation "
                "(both via the `bjontegaard` package). MS-SSIM dB is −10·log10(1 − mean MS-SSIM). *n/a*: undefined "
                "(a curve of one point, or quality intervals that do not overlap).")


def _bd_sections(rows: list[dict[str, Any]], anchor: str, subjects: Sequence[str]) -> list[str]:
    """The BD-rate tables: every curve against ``anchor``, then each subject against every other curve."""
    against = [r for r in rows if r["anchor"] == anchor]
    lines = bd_markdown(against, f"BD-rate against {anchor}") if against else [
        f"No BD-rates against {anchor}: that curve was not measured.", ""]
    for s in subjects:
        own = [r for r in rows if r["curve"] == s]
        if own:
            lines += bd_markdown(own, f"BD-rate of {s} against each curve", label="anchor")
    return lines + [BD_EXPLAINED, ""]


def _curve_markdown(c: Curve) -> list[str]:
    """The table of one curve's points (with the cold-start decode time where measured)."""
    info = c.info
    head = f"### {c.name}"
    if info.get("library"):
        head += f" — {info['library']}"
    lines = [head, ""]
    if info.get("source"):
        lines += [f"From `{info['source']}`.", ""]
    if info.get("options"):
        lines += ["Options: " + ", ".join(f"`{k}={v}`" for k, v in info["options"].items()) + ".", ""]
    cold = any(p.info.get("cold_decode_s") is not None for p in c.points)
    lines += [f"| {c.setting_name} | bpp | PSNR-RGB (dB) | MS-SSIM | MS-SSIM (dB) | enc s/image | dec s/image |"
              + " cold decode s |" * cold, "|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * cold]
    for p in c.points:
        lines.append(f"| {p.setting} | {p.bpp:.4f} | {p.psnr:.3f} | {p.ms_ssim:.5f} | {p.ms_ssim_db:.3f} | "
                     f"{_num(p.enc_s, 4)} | {_num(p.dec_s, 4)} |" + f" {_num(p.info.get('cold_decode_s'), 2)} |" * cold)
    return lines + [""]


def to_markdown(curves: Sequence[Curve], bd: list[dict[str, Any]], meta: dict[str, Any], command: str,
                title: str = TITLE, anchor: str = ANCHOR, subjects: Sequence[str] = (), notes: Sequence[str] = (),
                plot: str | None = None, raw: str | None = None) -> str:
    """The report: how it was measured (and ``notes``, Markdown lines), the BD-rate tables, the plot
    (``plot``: its link), one table per curve, the skipped codecs, where the raw numbers are (``raw``)."""
    mach = meta["machine"]
    lines = [
        f"# {title}", "",
        f"Command: `{command}`  ",
        f"Date: {meta['date']}; whole run {meta['wall_s'] / 60:.1f} min  ",
        f"Machine: {mach['cpu']}, {mach['cpu_count']} CPUs, {mach['platform']}, load average "
        f"{', '.join(f'{v:.2f}' for v in mach['load_average'] or [])}"
        + (f"; {meta['note']}" if meta.get("note") else "") + "  ",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "  ",
        data_line(meta["data"]), "",
        "Per image and setting: the encoded file (whole file, headers included) gives bpp = 8·bytes/(H·W); "
        "the file is decoded by the same library and PSNR-RGB (10·log10(255²/MSE) over all pixels and channels) "
        "and MS-SSIM (5 scales, 11×11 Gaussian σ = 1.5, per RGB channel then averaged, as CompressAI/"
        "pytorch_msssim) are taken against the original. Each row is the mean over the images of bpp, PSNR "
        f"and MS-SSIM; the seconds are the mean over the images of the median of {meta['repeats']} run(s), "
        "one thread, in-process (Pillow or imagecodecs call, array in, bytes out and back).", "",
        *notes,
        *_bd_sections(bd, anchor, subjects),
        *([f"![RD curves]({plot})", ""] if plot else []),
        "## Rate–distortion points", "",
    ]
    for c in curves:
        lines += _curve_markdown(c)
    if meta.get("skipped"):
        lines += ["## Skipped", ""] + [f"* {k}: {v}" for k, v in meta["skipped"].items()] + [""]
    if raw:
        lines += [f"Raw numbers, per image too: `{raw}`.", ""]
    return "\n".join(lines)


def report_data(curves: Sequence[Curve], meta: dict[str, Any], anchor: str = ANCHOR,
                subjects: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON content of a report: ``meta`` as it is, the anchor, the BD-rate rows and the curves."""
    extra = {"bd_subjects": list(subjects)} if subjects else {}
    return {**meta, "anchor": anchor, **extra, "bd_rate": bd_table(curves, anchor, subjects),
            "curves": [asdict(c) for c in curves]}


def write_report(curves: Sequence[Curve], meta: dict[str, Any], command: str,
                 json_path: str | os.PathLike | None = None, markdown_path: str | os.PathLike | None = None,
                 plot_path: str | os.PathLike | None = None, anchor: str = ANCHOR, subjects: Sequence[str] = (),
                 title: str = TITLE, notes: Sequence[str] = ()) -> list[Path]:
    """Write any of the JSON (:func:`report_data` and the command), the Markdown (:func:`to_markdown`, linking
    the plot and the JSON by relative paths) and the RD plot (:func:`plot_rd`) of ``curves``; the paths written.

    ``meta`` needs ``machine``, ``versions``, ``data`` (as from :func:`load_kodak`), ``date``, ``wall_s`` and
    ``repeats`` (``note`` and ``skipped`` are optional); it is stored in the JSON as it is.
    """
    res = report_data(curves, meta, anchor, subjects)
    written = []
    if json_path is not None:
        written.append(write_json(json_path, res, command))
    if plot_path is not None:
        written.append(plot_rd(curves, plot_path))
    if markdown_path is not None:
        md = Path(markdown_path)

        def link(p: str | os.PathLike | None) -> str | None:
            return None if p is None else Path(os.path.relpath(Path(p).absolute(), md.absolute().parent)).as_posix()

        atomic_write_text(md, to_markdown(curves, res["bd_rate"], meta, command, title, anchor, subjects, notes,
                                          plot=link(plot_path), raw=link(json_path)))
        written.append(md)
    return written


def load_curves(path: str | os.PathLike) -> list[Curve]:
    """The curves of a JSON written by :func:`write_report` (e.g. to add a new codec without re-measuring),
    or the curve of a ``benchmarks/compressai_peer.py eval`` result (its ``points``, one per checkpoint);
    DataError if it is neither."""
    path = Path(path)
    try:
        res = json.loads(path.read_text())
        if "curves" in res:
            return [Curve(c["name"], [Point(**p) for p in c["points"]], c["setting_name"], c["info"])
                    for c in res["curves"]]
        if "points" in res and "name" in res:
            return [peer_curve(res)]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a report of RD curves ({type(exc).__name__}: {exc})") from None
    raise DataError(f"{path}: not a report of RD curves (no 'curves', nor a peer's 'name' and 'points')")


def peer_curve(res: dict[str, Any]) -> Curve:
    """The curve of a peer model's checkpoints (``benchmarks/compressai_peer.py eval``), one point per λ."""
    name = res["name"]
    short = re.sub(r"\s*\(N=.*$", "", name.split(",")[0]) if name.startswith("CompressAI") else name
    points = [Point(f"λ {p['lam']}", p["mean"]["bpp"], p["mean"]["psnr"], p["mean"]["ms_ssim"], p["mean"].get("enc_s"),
                    p["mean"].get("dec_s"), p["per_image"],
                    {k: p[k] for k in ("checkpoint", "lam", "epochs", "steps") if k in p})
              for p in res["points"]]
    return Curve(short, points, "model", {"library": name})
