"""The classical peer codecs of the photo benchmark: JPEG, WebP, AVIF (Pillow) and JPEG XL (imagecodecs).

Each :class:`Codec` is run on one thread and swept over its quality setting (:data:`QUALITIES`,
JPEG XL over the butteraugli distance); :func:`measure_peers` measures the available ones with
:func:`latcomp.measure.rd.measure_curve` (whole files, headers included).
"""

from __future__ import annotations

import importlib.metadata
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latcomp.measure.rd import Curve, Decoder, Encoder, Log, Progress, measure_curve, now
from latcomp.measure.results import machine_info

THREADS = 1
QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
JXL_DISTANCES = (15, 12, 8, 6, 4, 3, 2, 1.5, 1, 0.75, 0.5)
#: Python packages whose versions a peer report names (each curve also names its C library).
PEER_PACKAGES = ("pillow", "imagecodecs", "bjontegaard", "numpy")



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
