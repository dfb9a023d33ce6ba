"""``latcomp bench --photo``: latcomp's photo models against the classical codecs on Kodak.

Each model directory is one rate–distortion point. Per Kodak image the model encodes with
:func:`latcomp.photo.codec.compress` (dither seed fixed per image: the first 8 bytes, little
endian, of the SHA-256 of its pixels), the container's whole size, header included, gives
bpp = 8·bytes/(H·W), :func:`latcomp.photo.codec.decompress` decodes it, and PSNR-RGB, MS-SSIM
and the median encode and decode seconds of ``repeats`` runs are taken as for the peers
(:mod:`latcomp.measure.rd`; the model is loaded before timing, numpy uses the threads
``OMP_NUM_THREADS`` allows). Models are grouped into curves by architecture and lattice
(``config.json`` ``hparams.lattice`` without its block counts: ``latcomp (z)``, ``latcomp (e8)``,
``latcomp hyperprior (e8)``, …); a point's setting is the directory name and λ.

The **cold-start decode** of a model is the wall time of a fresh
``python -m latcomp decode FILE -o out.png --model DIR`` process on the first image (process
start, imports, model loading, decoding, writing the PNG), the median of ``cold_runs``
runs; the target is ≤ :data:`COLD_START_TARGET_S` s on 2 cores. The decoded PNG must equal
the in-process decode.

The peers are measured in the same run (``peers="run"``), taken from an earlier report's
JSON (``docs/results/photo-peers.json``; the report says so), or left out; further curves
(``extra``: any report JSON of :func:`latcomp.measure.rd.load_curves`) join the tables and
the plot. BD-rates: every curve against JPEG, and every latcomp curve against every other curve.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.data import DataError
from latcomp.errors import ModelMismatchError
from latcomp.measure.peers import CODECS, PEER_PACKAGES, measure_peers, package_versions
from latcomp.measure.rd import (
    ANCHOR,
    BD_METHODS,
    METRICS,
    Curve,
    Log,
    Progress,
    bd_table,
    load_curves,
    measure_curve,
    now,
    percent,
    write_report,
)
from latcomp.measure.results import machine_info
from latcomp.modelfile import CONFIG, read_config

COLD_START_TARGET_S = 2.0
TITLE = "Photo codecs on Kodak: latcomp against the classical peers"


@dataclass
class PhotoBench:
    """The result of :func:`run_photo_bench`: the curves (latcomp's first), the metadata of the run and the
    names of the latcomp curves (the BD-rate subjects)."""

    curves: list[Curve]
    meta: dict[str, Any]
    subjects: list[str]

    def bd(self) -> list[dict[str, Any]]:
        return bd_table(self.curves, ANCHOR, self.subjects)


# --------------------------------------------------------------------------- models


def default_models() -> list[Path]:
    """The default shipped photo models (``models/photo-hyper2-q1`` …, :data:`latcomp.modelfile.PHOTO_MODEL_NAMES`)
    that exist here, low to high rate."""
    from latcomp.modelfile import PHOTO_QUALITIES
    from latcomp.photo.codec import photo_model

    return [d for d in map(photo_model, PHOTO_QUALITIES) if (Path(d) / CONFIG).is_file()]


def lattice_family(spec: str) -> str:
    """A lattice spec without its block counts: ``z*128`` → ``z``, ``leech+e8*2`` → ``leech+e8``."""
    return re.sub(r"\*\d+", "", spec) or "z"


def model_info(directory: str | os.PathLike) -> dict[str, Any]:
    """What the report says of a photo model: directory, name, λ, lattice, epochs; ModelMismatchError for a
    model that is not a photo model (ModelFileError for an unreadable one)."""
    from latcomp.codec import load_model

    directory = Path(directory)
    config = read_config(directory)
    loaded = load_model(directory)
    if loaded.modality != "photo":
        raise ModelMismatchError(f"{directory} is not a photo model (it is a {loaded.modality} model); "
                                 "latcomp bench --photo measures photo models")
    hp, training = config.get("hparams") or {}, config.get("training") or {}
    lattice = str(hp.get("lattice") or "z")
    return {"model_dir": str(directory), "name": directory.name, "architecture": config.get("architecture"),
            "lam": hp.get("lam"), "lattice": lattice, "family": lattice_family(lattice),
            "model_id": loaded.model_id.hex(), "epochs": training.get("epochs_run")}


def image_seed(img: np.ndarray) -> int:
    """The dither seed of an image: the first 8 bytes (little endian) of the SHA-256 of its pixels."""
    return int.from_bytes(hashlib.sha256(np.ascontiguousarray(img).tobytes()).digest()[:8], "little")


def curve_name(info: dict[str, Any]) -> str:
    """The name of the curve a model's point joins: ``latcomp (FAMILY)`` for the factorized prior (the
    name earlier reports use), ``latcomp hyperprior (FAMILY)`` for ``photo-hyperprior`` models."""
    kind = str(info.get("architecture") or "photo-factorized").removeprefix("photo-")
    return f"latcomp ({info['family']})" if kind == "factorized" else f"latcomp {kind} ({info['family']})"


def setting_label(info: dict[str, Any]) -> str:
    """A latcomp point's setting: the model directory's name and λ."""
    return f"{info['name']} (λ {info['lam']:g})" if info.get("lam") is not None else info["name"]


# --------------------------------------------------------------------------- measuring


def cold_start_decode(model_dir: str | os.PathLike, data: bytes, expected: np.ndarray, runs: int = 3
                      ) -> dict[str, Any]:
    """Wall seconds of ``runs`` fresh ``python -m latcomp decode FILE -o out.png --model DIR`` processes on
    ``data`` (one image's file) and their median; the PNG must equal ``expected`` (the in-process decode).

    The process runs this interpreter and this process's latcomp package (on PYTHONPATH), in a temporary
    directory; its threads are as ``OMP_NUM_THREADS`` says.
    """
    from PIL import Image

    import latcomp

    env = dict(os.environ)
    package_root = str(Path(latcomp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    times = []
    with tempfile.TemporaryDirectory(prefix="latcomp-cold-") as tmp:
        src, out = Path(tmp) / "image.lat", Path(tmp) / "out.png"
        src.write_bytes(data)
        command = [sys.executable, "-m", "latcomp", "decode", str(src), "-o", str(out),
                   "--model", str(Path(model_dir).resolve()), "--force", "--quiet"]
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise RuntimeError(f"cold-start decode failed ({' '.join(command)}): "
                                   f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}")
        with Image.open(out) as im:
            if not np.array_equal(np.asarray(im.convert("RGB")), expected):
                raise RuntimeError("the cold-start decode's PNG differs from latcomp.photo.codec.decompress")
    return {"cold_decode_s": statistics.median(times), "cold_decode_runs_s": times}


def latcomp_curves(model_dirs: Sequence[str | os.PathLike], images: Sequence[tuple[str, np.ndarray]],
                   repeats: int = 3, cold_runs: int = 3, progress: Progress | None = None,
                   log: Log | None = None, effort: Any = 0) -> list[Curve]:
    """The curves of latcomp photo models on ``images`` (one point a model, a curve a lattice family, points
    by increasing bpp), with the cold-start decode time of the first image per model (``cold_runs`` = 0:
    not measured). Every model is checked before any measuring. ``effort``: the encoder's
    (:func:`latcomp.photo.codec.compress`; recorded in the curves' options when not 0)."""
    from latcomp import __version__
    from latcomp.codec import load_model
    from latcomp.photo.codec import compress, decompress

    infos = [model_info(d) for d in model_dirs]
    seeds = {id(img): image_seed(img) for _, img in images}  # computed before timing
    curves = []
    for name in dict.fromkeys(map(curve_name, infos)):
        members: dict[str, dict[str, Any]] = {}
        for i in (i for i in infos if curve_name(i) == name):
            label = setting_label(i)
            members[label if label not in members else setting_label({**i, "name": i["model_dir"]})] = i
        models = {label: load_model(i["model_dir"]) for label, i in members.items()}

        def encode(img: np.ndarray, label: str, models: dict[str, Any] = models) -> bytes:
            return compress(img, models[label], seed=seeds.get(id(img)) or image_seed(img), effort=effort)

        def decode(data: bytes, models: dict[str, Any] = models) -> np.ndarray:
            return decompress(data, _model_of(data, models))

        family = next(iter(members.values()))["family"]
        curve = measure_curve(name, encode, decode, list(members), images, repeats, "model (λ)",
                              {"library": f"latcomp {__version__}", "kind": "latcomp",
                               "options": {"lattice": family, "seed": "sha256(pixels)[:8]",
                                           **({"effort": str(effort)} if effort else {})}},
                              log, progress)
        for done, point in enumerate(curve.points, 1):
            point.info.update(members[point.setting])
            if cold_runs and images:
                image_name, img = images[0]
                data = encode(img, point.setting)
                point.info.update(cold_start_decode(point.info["model_dir"], data, decode(data), cold_runs),
                                  cold_decode_image=image_name)
                if progress:
                    progress(f"{name}: cold start", done, len(curve.points))
        curve.points.sort(key=lambda p: p.bpp)
        curves.append(curve)
    return curves


def _model_of(data: bytes, models: dict[str, Any]) -> Any:
    """The model of ``models`` whose id the file records (files of one curve come from several models)."""
    from latcomp.codec import read_header

    model_id = read_header(data).model_id
    return next(m for m in models.values() if m.model_id == model_id)


# --------------------------------------------------------------------------- other curves


def _report_meta(path: Path) -> dict[str, Any]:
    """Date, command, machine and data of a report JSON (for saying where reused curves come from)."""
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: res[k] for k in ("date", "command", "data", "machine", "repeats") if k in res}


def peer_curves_from(path: str | os.PathLike, names: Sequence[str] | None = None) -> tuple[list[Curve], dict]:
    """The peer curves (those named, else all of :data:`latcomp.measure.peers.CODECS`) of an earlier report, and
    where they come from; DataError if the file has none of them."""
    path = Path(path)
    wanted = list(names or CODECS)
    curves = [c for c in load_curves(path) if c.name in wanted]
    if not curves:
        raise DataError(f"{path}: no curves of {', '.join(wanted)} in this report")
    return curves, {"source": str(path), **_report_meta(path)}


def extra_curves_from(paths: Sequence[str | os.PathLike], taken: Sequence[str]) -> list[Curve]:
    """The curves of report files, each marked with its file. A peer codec's curve (:data:`CODECS`) that is
    already in ``taken`` is left out (the report has its own); any other name already in ``taken`` (or in an
    earlier file) gets the file's name in brackets."""
    taken, out = set(taken), []
    for path in map(Path, paths):
        for c in load_curves(path):
            if c.name in CODECS and c.name in taken:
                continue
            if c.name in taken:
                c.name = f"{c.name} [{path.name}]"
            c.info = {**c.info, "source": str(path)}
            taken.add(c.name)
            out.append(c)
    return out


# --------------------------------------------------------------------------- the run


def run_photo_bench(model_dirs: Sequence[str | os.PathLike], images: Sequence[tuple[str, np.ndarray]],
                    data: dict[str, Any], peers: str | os.PathLike = "run", peer_codecs: Sequence[str] | None = None,
                    extra: Sequence[str | os.PathLike] = (), repeats: int = 3, cold_runs: int = 3,
                    progress: Progress | None = None, log: Log | None = None) -> PhotoBench:
    """Measure ``model_dirs`` on ``images`` (``data``: their description, as from
    :func:`latcomp.measure.kodak.load_kodak`), with the peers ``"run"`` here, read from a report JSON
    (a path), or ``"none"``; ``extra`` report files add their curves. Files and models are checked
    before any measuring."""
    start = time.perf_counter()
    run = str(peers) == "run"
    names = [curve_name(model_info(d)) for d in model_dirs]
    reused: dict[str, Any] | None = None
    peer_list: list[Curve] = []
    if str(peers) not in ("run", "none"):
        peer_list, reused = peer_curves_from(peers, peer_codecs)
    names += list(peer_codecs or CODECS) if run else [c.name for c in peer_list]
    extra_curves = extra_curves_from(extra, names)
    ours = latcomp_curves(model_dirs, images, repeats, cold_runs, progress, log)
    skipped: dict[str, str] = {}
    if run:
        peer_list, peer_meta = measure_peers(images, peer_codecs, repeats, log, progress)
        skipped = peer_meta["skipped"]
    meta = {"date": now(), "wall_s": time.perf_counter() - start, "repeats": repeats, "threads": {
        "peers": 1, "latcomp": os.environ.get("OMP_NUM_THREADS") or "numpy default"},
        "skipped": skipped, "versions": package_versions(("latcomp", "constriction", *PEER_PACKAGES)),
        "machine": machine_info(), "data": data,
        "peers": {"source": "measured in this run"} if run else reused or {"source": "none"},
        "extra_curves": [str(p) for p in extra],
        "cold_start": {"runs": cold_runs, "target_s": COLD_START_TARGET_S,
                       "command": "python -m latcomp decode FILE -o out.png --model DIR"}}
    return PhotoBench([*ours, *peer_list, *extra_curves], meta, [c.name for c in ours])


# --------------------------------------------------------------------------- report


def notes(bench: PhotoBench) -> list[str]:
    """The Markdown paragraphs of the photo report beyond the peers' method: latcomp, cold start, sources."""
    meta = bench.meta
    cold = meta["cold_start"]
    lines = [
        "latcomp: each model directory is one point (setting: its name and λ); the models are grouped into "
        "curves by architecture and lattice. Encode: `latcomp.photo.codec.compress(image, model, seed)`, the seed "
        "fixed per image (the first 8 bytes of the SHA-256 of its pixels); bpp from the whole container, header "
        "included; decode: "
        "`latcomp.photo.codec.decompress`. The model is loaded before timing; numpy's threads: "
        f"OMP_NUM_THREADS={meta['threads']['latcomp']}.", ""]
    ours = [p for c in bench.curves if c.name in bench.subjects for p in c.points]
    if cold["runs"] and ours:
        lines += [f"## Cold-start decode (target ≤ {cold['target_s']:g} s, cold start included)", "",
                  f"Wall time of a fresh `{cold['command']}` process for one image (process start, imports, "
                  f"model loading, decoding, writing the PNG), median of {cold['runs']} run(s); the PNG equals the "
                  "in-process decode.", "",
                  "| model | image | median s | runs (s) | ≤ target |", "|---|---|---:|---|---|"]
        for p in ours:
            s = p.info["cold_decode_s"]
            lines.append(f"| {p.setting} | {p.info['cold_decode_image']} | {s:.2f} | "
                         f"{', '.join(f'{t:.2f}' for t in p.info['cold_decode_runs_s'])} | "
                         f"{'yes' if s <= cold['target_s'] else '**no**'} |")
        lines.append("")
    peers = meta["peers"]
    if peers.get("command"):
        lines += [f"Peer curves: **not measured in this run**, taken from `{peers['source']}` (measured "
                  f"{peers.get('date', 'at an unknown date')} with `{peers['command']}`"
                  + (f", {peers['data']['images']} images" if peers.get("data") else "")
                  + (f", seconds the median of {peers['repeats']} run(s)" if peers.get("repeats") else "") + ")."]
        if peers.get("data") and peers["data"].get("images") != meta["data"]["images"]:
            lines[-1] += (f" **They were measured on {peers['data']['images']} images, latcomp here on "
                          f"{meta['data']['images']}: the BD-rates against them are not like for like.**")
        lines.append("")
    elif peers["source"] == "none":
        lines += ["Peer curves: none (`--peers none`).", ""]
    if meta.get("extra_curves"):
        lines += ["Further curves from " + ", ".join(f"`{p}`" for p in meta["extra_curves"]) + ".", ""]
    return lines


def write_photo_report(bench: PhotoBench, command: str, json_path: str | os.PathLike | None = None,
                       markdown_path: str | os.PathLike | None = None,
                       plot_path: str | os.PathLike | None = None) -> list[Path]:
    """Write any of the JSON, the Markdown and the RD plot of a photo bench; the paths written."""
    return write_report(bench.curves, bench.meta, command, json_path, markdown_path, plot_path, ANCHOR,
                        bench.subjects, TITLE, notes(bench))


def point_rows(bench: PhotoBench) -> list[list[str]]:
    """Rows of the latcomp points for a terminal table: curve, model (λ), bpp, PSNR, MS-SSIM dB, enc s, dec s,
    cold-start decode s."""
    rows = []
    for c in bench.curves:
        if c.name in bench.subjects:
            for p in c.points:
                cold = p.info.get("cold_decode_s")
                rows.append([c.name, str(p.setting), f"{p.bpp:.4f}", f"{p.psnr:.2f}", f"{p.ms_ssim_db:.2f}",
                             f"{p.enc_s:.3f}", f"{p.dec_s:.3f}", "" if cold is None else f"{cold:.2f}"])
    return rows


def bd_rows(bench: PhotoBench) -> list[list[str]]:
    """Rows of the BD-rates (cubic and Akima, PSNR and MS-SSIM dB) for a terminal table: curve, anchor, values."""
    return [[r["curve"], r["anchor"], *(percent(r[f"{m}_{i}"]) for m in METRICS for i in BD_METHODS)]
            for r in bench.bd()]
