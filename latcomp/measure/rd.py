"""Rate–distortion comparison of photo codecs on the Kodak images: curves, BD-rates, reports.

The machinery behind ``latcomp bench --photo`` (:mod:`latcomp.measure.photo_bench`) and
``python -m benchmarks.photo_peers``; it needs no torch, and matplotlib only to plot. The
images come from :mod:`latcomp.measure.kodak`, the classical codecs from :mod:`latcomp.measure.peers`.

* **Measuring** (:func:`measure_curve`): per image and setting the codec's file (the whole
  file, headers included) gives bpp = 8·bytes/(H·W); the file is decoded and PSNR-RGB and
  MS-SSIM (:mod:`latcomp.measure.photo_metrics`) are taken against the original, with the median
  encode and decode seconds of ``repeats`` runs. A :class:`Point` averages bpp, PSNR and
  MS-SSIM over the images, as in the literature.
* **BD-rates** (:func:`bd_table`): from those mean curves, every curve against an anchor
  (JPEG) and chosen curves against every other one, PSNR and MS-SSIM dB, cubic and Akima.
* **Reports**: :func:`write_report` writes any of the JSON, the Markdown and the RD plot;
  :func:`load_curves` reads the curves of such a JSON back (and of the CompressAI peer's).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.data import DataError
from latcomp.fileio import atomic_write
from latcomp.measure.kodak import data_line
from latcomp.measure.photo_metrics import bd_rate, ms_ssim, ms_ssim_db, psnr_rgb
from latcomp.measure.results import pyplot, timed, write_report_files

ANCHOR = "JPEG"
BD_METHODS = ("cubic", "akima")
METRICS = {"psnr": "PSNR-RGB (dB)", "ms_ssim_db": "MS-SSIM (dB)"}  # Point attribute -> axis label
# One colour per curve in every figure; curves not listed (e.g. a latcomp model) take _OTHER_COLOURS in turn.
CURVE_COLOURS = {"JPEG": "tab:gray", "JPEG (optimize)": "tab:purple", "WebP": "tab:green", "AVIF": "tab:blue",
                 "JPEG XL": "tab:orange"}
_OTHER_COLOURS = ("tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
TITLE = "Photo codecs on Kodak: classical peers"

Encoder = Callable[[np.ndarray, Any], bytes]
Decoder = Callable[[bytes], np.ndarray]
#: ``progress(stage, done, total)`` as in :mod:`latcomp.measure.bench`.
Progress = Callable[[str, int, int], None]
Log = Callable[[str], None]


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


def now() -> str:
    """The current UTC time, ISO 8601 to the second (the ``date`` of a report)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- BD-rate


def _quality(curve: Curve, metric: str) -> np.ndarray:
    """The curve's PSNR (``"psnr"``) or MS-SSIM in dB (``"ms_ssim_db"``) per point."""
    return np.array([getattr(p, metric) for p in curve.points])


def _bd_value(rate_a: np.ndarray, qa: np.ndarray, rate_b: np.ndarray, qb: np.ndarray, method: str) -> float | None:
    """:func:`latcomp.measure.photo_metrics.bd_rate`, or None where it is undefined (a curve of one point,
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
    return write_report_files(res, command, json_path, markdown_path, plot_path, lambda p: plot_rd(curves, p),
                              lambda plot, raw: to_markdown(curves, res["bd_rate"], meta, command, title, anchor,
                                                            subjects, notes, plot=plot, raw=raw))


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
