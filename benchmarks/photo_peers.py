"""Photo benchmark, classical peers: JPEG, WebP, AVIF and JPEG XL on the 24 Kodak images.

Run ``python -m benchmarks.photo_peers`` (``--help`` for options). For every codec of
:data:`CODECS` and every setting of its sweep it encodes each image, takes the real file
size (the whole file, headers included) as 8·bytes/(H·W) bits per pixel, decodes the file
with the same library and measures PSNR-RGB and MS-SSIM against the original, and the
median encode and decode seconds of ``--repeats`` runs; every codec runs on one thread.
Per setting, as in the literature, bpp, PSNR and MS-SSIM are averaged over the images.
BD-rates against JPEG use those mean curves. Writes ``docs/results/photo-peers.json``,
``.md`` and the RD plot ``.png``.

The pieces are reusable for other codecs (a latcomp photo model): :func:`measure_curve`
measures any ``encode(img, setting) -> bytes`` / ``decode(bytes) -> array`` pair,
:func:`load_curves` reads the peers' curves back from the JSON, and :func:`write_report`
writes the tables, BD-rates and plot of any list of :class:`Curve`.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import io
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.fileio import atomic_write
from latcomp.photo_metrics import bd_rate, ms_ssim, ms_ssim_db, psnr_rgb
from latcomp.results import RESULTS_DIR, machine_info, timed, write_results

REPO = Path(__file__).resolve().parents[1]
NAME = "photo-peers"
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

Encoder = Callable[[np.ndarray, Any], bytes]
Decoder = Callable[[bytes], np.ndarray]


# --------------------------------------------------------------------------- data


def kodak_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder with ``kodim*.png``: ``DIR/kodak`` or ``DIR`` itself, where DIR is ``data_dir``,
    else ``$LATCOMP_DATA``, else ``../shared/data`` beside the repository.

    Raises FileNotFoundError with one line saying where it looked.
    """
    root = Path(data_dir or os.environ.get("LATCOMP_DATA") or REPO.parent / "shared" / "data").expanduser()
    for folder in (root / "kodak", root):
        if any(folder.glob("kodim*.png")):
            return folder
    raise FileNotFoundError(f"Kodak images (kodim01.png … kodim24.png) not found in {root / 'kodak'} or {root}; "
                            "set LATCOMP_DATA to the data root or pass --data-dir")


def _check_sums(folder: Path, paths: Sequence[Path]) -> bool:
    """Check ``paths`` against ``folder/SHA256SUMS`` when it exists; True if checked, ValueError on a mismatch."""
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
            raise ValueError(f"{p} does not match its sha256 in {sums_file}")
    return True


def load_kodak(data_dir: str | os.PathLike | None = None, limit: int | None = None
               ) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    """The Kodak images as (name, uint8 HxWx3) pairs in name order, and a description of the data."""
    from PIL import Image

    folder = kodak_dir(data_dir)
    paths = sorted(folder.glob("kodim*.png"))[:limit]
    checked = _check_sums(folder, paths)
    images = [(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in paths]
    return images, {"folder": os.path.relpath(folder, REPO), "images": len(images), "sha256_checked": checked,
                    "pixels": int(sum(img.shape[0] * img.shape[1] for _, img in images))}


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
    from PIL import AvifImagePlugin

    library = _pillow("avif")
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


def available_codecs(names: Sequence[str] | None = None) -> tuple[list[Codec], dict[str, str]]:
    """The codecs of :data:`CODECS` (or those named) that work here, and why the others are skipped."""
    codecs, skipped = [], {}
    for name in names or CODECS:
        try:
            codecs.append(CODECS[name]())
        except CodecUnavailable as e:
            skipped[name] = str(e)
    return codecs, skipped


def package_versions() -> dict[str, str]:
    """Versions of the Python packages measured with (those installed); each curve names its C library."""
    out = {}
    for dist in ("pillow", "imagecodecs", "bjontegaard", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- measuring


@dataclass
class Point:
    """One setting of a codec: means over the images (bpp, PSNR dB, MS-SSIM, seconds per image)."""

    setting: Any
    bpp: float
    psnr: float
    ms_ssim: float
    enc_s: float | None = None
    dec_s: float | None = None
    per_image: list[dict[str, Any]] = field(default_factory=list)

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
                  info: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> Curve:
    """The curve of any codec given as ``encode(img, setting) -> bytes`` and ``decode(bytes) -> uint8 array``."""
    points = []
    for setting in settings:
        per_image = [{"image": image_name, **measure_image(encode, decode, img, setting, repeats)}
                     for image_name, img in images]
        points.append(mean_point(setting, per_image))
        p = points[-1]
        log(f"{name} {setting_name} {setting}: {p.bpp:.3f} bpp, {p.psnr:.2f} dB, MS-SSIM {p.ms_ssim:.4f}, "
            f"enc {p.enc_s:.3f} s, dec {p.dec_s:.3f} s")
    return Curve(name, points, setting_name, info or {})


def codec_curve(codec: Codec, images: Sequence[tuple[str, np.ndarray]], repeats: int = 3,
                log: Callable[[str], None] = print) -> Curve:
    """:func:`measure_curve` of a registered codec over its sweep."""
    info = {"library": codec.library, "options": codec.options}
    return measure_curve(codec.name, codec.encode, codec.decode, codec.settings, images, repeats,
                         codec.setting_name, info, log)


# --------------------------------------------------------------------------- BD-rate


def _quality(curve: Curve, metric: str) -> np.ndarray:
    """The curve's PSNR (``"psnr"``) or MS-SSIM in dB (``"ms_ssim_db"``) per point."""
    return np.array([getattr(p, metric) for p in curve.points])


def bd_table(curves: Sequence[Curve], anchor: str = ANCHOR) -> list[dict[str, Any]]:
    """BD-rate (%) of every curve against ``anchor`` on PSNR and MS-SSIM dB, per interpolation of BD_METHODS.

    Each row also gives the quality interval both curves reach, over which the rates are compared.
    """
    ref = next((c for c in curves if c.name == anchor), None)
    if ref is None:
        return []
    rate_a = np.array([p.bpp for p in ref.points])
    rows = []
    for c in curves:
        if c is ref:
            continue
        row: dict[str, Any] = {"curve": c.name, "anchor": anchor}
        rate_b = np.array([p.bpp for p in c.points])
        for metric in METRICS:
            qa, qb = _quality(ref, metric), _quality(c, metric)
            row[f"{metric}_range"] = [float(max(qa.min(), qb.min())), float(min(qa.max(), qb.max()))]
            for method in BD_METHODS:
                row[f"{metric}_{method}"] = bd_rate(rate_a, qa, rate_b, qb, method=method)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- report


def curve_colours(names: Sequence[str]) -> dict[str, str]:
    """The colour of each curve: :data:`CURVE_COLOURS`, else the next of the spare colours."""
    spare = iter(_OTHER_COLOURS * (1 + len(names) // len(_OTHER_COLOURS)))
    return {n: CURVE_COLOURS.get(n) or next(spare) for n in names}


def plot_rd(curves: Sequence[Curve], path: str | os.PathLike, title: str = "Kodak") -> Path:
    """PSNR-RGB and MS-SSIM (dB) against bits per pixel, one line per curve, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = curve_colours([c.name for c in curves])
    fig, axes = plt.subplots(1, len(METRICS), figsize=(11, 4.5))
    for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
        for c in curves:
            ax.plot([p.bpp for p in c.points], _quality(c, metric), marker="o", ms=3, color=colours[c.name],
                    label=c.name)
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


def _bd_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The BD-rate table."""
    if not rows:
        return ["No BD-rates: the anchor curve was not measured.", ""]
    lines = [f"## BD-rate against {rows[0]['anchor']} (negative: fewer bits at equal quality)", "",
             "| codec | PSNR-RGB, cubic | PSNR-RGB, Akima | over PSNR (dB) | MS-SSIM dB, cubic | MS-SSIM dB, Akima "
             "| over MS-SSIM (dB) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r["curve"]]
        for metric in METRICS:
            cells += [f"{r[f'{metric}_{m}']:+.1f}%" for m in BD_METHODS]
            cells.append("{:.2f}–{:.2f}".format(*r[f"{metric}_range"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "BD-rate: the mean difference of log-rate at equal quality over the quality interval both curves "
              "reach, from the mean curves (mean bpp and mean quality over the images per setting). *cubic*: "
              "Bjøntegaard's least-squares cubic polynomial of log-rate in quality; *Akima*: Akima interpolation "
              "(both via the `bjontegaard` package). MS-SSIM dB is −10·log10(1 − mean MS-SSIM).", ""]
    return lines


def _curve_markdown(c: Curve) -> list[str]:
    """The table of one curve's points."""
    info = c.info
    head = f"### {c.name}"
    if info.get("library"):
        head += f" — {info['library']}"
    lines = [head, ""]
    if info.get("options"):
        lines += ["Options: " + ", ".join(f"`{k}={v}`" for k, v in info["options"].items()) + ".", ""]
    lines += [f"| {c.setting_name} | bpp | PSNR-RGB (dB) | MS-SSIM | MS-SSIM (dB) | enc s/image | dec s/image |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for p in c.points:
        lines.append(f"| {p.setting} | {p.bpp:.4f} | {p.psnr:.3f} | {p.ms_ssim:.5f} | {p.ms_ssim_db:.3f} | "
                     f"{_num(p.enc_s, 4)} | {_num(p.dec_s, 4)} |")
    return lines + [""]


def to_markdown(curves: Sequence[Curve], bd: list[dict[str, Any]], meta: dict[str, Any], command: str) -> str:
    """The report: how it was measured, the BD-rate table, one table per curve, the plot."""
    mach, data = meta["machine"], meta["data"]
    lines = [
        "# Photo codecs on Kodak: classical peers", "",
        f"Command: `{command}`  ",
        f"Date: {meta['date']}; whole run {meta['wall_s'] / 60:.1f} min  ",
        f"Machine: {mach['cpu']}, {mach['cpu_count']} CPUs, {mach['platform']}, load average "
        f"{', '.join(f'{v:.2f}' for v in mach['load_average'] or [])}"
        + (f"; {meta['note']}" if meta.get("note") else "") + "  ",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "  ",
        f"Data: {data['images']} images from `{data['folder']}` ({data['pixels']} pixels"
        + (", sha256 checked" if data.get("sha256_checked") else "") + ").", "",
        "Per image and setting: the encoded file (whole file, headers included) gives bpp = 8·bytes/(H·W); "
        "the file is decoded by the same library and PSNR-RGB (10·log10(255²/MSE) over all pixels and channels) "
        "and MS-SSIM (5 scales, 11×11 Gaussian σ = 1.5, per RGB channel then averaged, as CompressAI/"
        "pytorch_msssim) are taken against the original. Each row is the mean over the images of bpp, PSNR "
        f"and MS-SSIM; the seconds are the mean over the images of the median of {meta['repeats']} runs, "
        "one thread, in-process (Pillow or imagecodecs call, array in, bytes out and back).", "",
        *_bd_markdown(bd),
        f"![RD curves]({NAME}.png)", "",
        "## Rate–distortion points", "",
    ]
    for c in curves:
        lines += _curve_markdown(c)
    if meta.get("skipped"):
        lines += ["## Skipped", ""] + [f"* {k}: {v}" for k, v in meta["skipped"].items()] + [""]
    lines += [f"Raw numbers, per image too: `{NAME}.json` beside this file.", ""]
    return "\n".join(lines)


def write_report(curves: Sequence[Curve], meta: dict[str, Any], command: str,
                 out_dir: str | os.PathLike = RESULTS_DIR, anchor: str = ANCHOR, name: str = NAME
                 ) -> tuple[Path, Path, Path]:
    """Write ``name.json``, ``name.md`` and ``name.png`` for ``curves`` (BD-rates against ``anchor``).

    ``meta`` needs ``machine``, ``versions``, ``data``, ``date``, ``wall_s`` and ``repeats``
    (``note`` and ``skipped`` are optional); it is stored in the JSON as it is.
    """
    bd = bd_table(curves, anchor)
    res = {**meta, "anchor": anchor, "bd_rate": bd, "curves": [asdict(c) for c in curves]}
    js, md = write_results(name, res, to_markdown(curves, bd, meta, command), command, out_dir)
    png = plot_rd(curves, Path(out_dir) / f"{name}.png")
    return js, md, png


def load_curves(path: str | os.PathLike) -> list[Curve]:
    """The curves of a JSON written by :func:`write_report` (e.g. to add a new codec without re-measuring)."""
    import json

    res = json.loads(Path(path).read_text())
    return [Curve(c["name"], [Point(**p) for p in c["points"]], c["setting_name"], c["info"]) for c in res["curves"]]


# --------------------------------------------------------------------------- main


def run_benchmark(images: Sequence[tuple[str, np.ndarray]], codec_names: Sequence[str] | None = None,
                  repeats: int = 3, log: Callable[[str], None] = print) -> tuple[list[Curve], dict[str, Any]]:
    """Measure the available codecs on ``images``; the curves and the run's metadata (less ``data``)."""
    start = time.perf_counter()
    codecs, skipped = available_codecs(codec_names)
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    curves = [codec_curve(c, images, repeats, log) for c in codecs]
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": time.perf_counter() - start, "repeats": repeats, "threads": THREADS,
            "skipped": skipped, "versions": package_versions(), "machine": machine_info()}
    return curves, meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="data root with kodak/ (default: $LATCOMP_DATA, else ../shared/data)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--codecs", default=None, help=f"comma-separated subset of: {', '.join(CODECS)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image and setting (median)")
    parser.add_argument("--note", default="", help="a remark on the machine for the report (e.g. its other load)")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR), help=f"where {NAME}.{{json,md,png}} go")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.codecs.split(",")] if args.codecs else None
    unknown = [n for n in names or [] if n not in CODECS]
    if unknown:
        parser.error(f"unknown codec {', '.join(unknown)}; choose from {', '.join(CODECS)}")
    try:
        images, data = load_kodak(args.data_dir, args.limit)
    except (FileNotFoundError, ValueError) as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "benchmarks.photo_peers", *argv])
    curves, meta = run_benchmark(images, names, args.repeats, log=lambda s: print(s, file=sys.stderr))
    meta = {**meta, "data": data, "note": args.note}
    paths = write_report(curves, meta, command, args.out_dir)
    print(Path(paths[1]).read_text())
    print("wrote " + ", ".join(map(str, paths)), file=sys.stderr)


if __name__ == "__main__":
    main()
