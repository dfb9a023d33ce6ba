"""``latcomp bench``: what each model costs in bits and what it loses in likelihood.

For every model directory, on one split of its dataset:

* **rate** in bits/image. For ``lattice-vae`` it is *measured*: the whole split is
  compressed into one lossy container (:func:`latcomp.codec.compress`, seed 0) and the
  file's size, header and payload, is divided by the number of images
  (``rate_source: "bitstream"``). Models without a codec report their rate estimate
  (``"estimate"``): the KL of the Gaussian VAEs, the code length of the
  straight-through quantizers.
* the **entropy estimate** (the training rate term, :func:`latcomp.train.evaluate`)
  and the gap bitstream − estimate;
* **distortion** −log Q(D|·) and the **negative ELBO** distortion + rate (nats), whatever λ;
* the **importance-sampled NLL** ± standard error (:mod:`latcomp.nll`) for models with a
  continuous latent; the ``st-*`` models report their −ELBO, a code length and hence an
  upper bound on −log p, instead (``nll_source: "elbo-bound"``).

Plots (matplotlib, Agg): rate vs NLL, rate vs distortion (the paper's Figure 4), and the
validation curves of the training logs (Figure 3). Each model kind (architecture) has
one colour in every figure (:data:`KIND_COLOURS`); variants of a kind differ by marker
or line style.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.errors import ModelMismatchError
from latcomp.families import families, family
from latcomp.fileio import atomic_write_text
from latcomp.measure.results import machine_info, pyplot, write_json, write_results
from latcomp.modelfile import read_config

#: ``progress(stage, done, total)``; ``stage`` names the model and the step.
Progress = Callable[[str, int, int], None]

NATS_PER_BIT = math.log(2.0)
DEFAULT_DATASET = "binarized-mnist"
#: File names written by :func:`write_plots`.
PLOTS = {"rate_vs_nll": "rate-vs-nll.png", "rate_vs_distortion": "rate-vs-distortion.png",
         "validation_curves": "validation-curves.png"}


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def model_label(entry: dict[str, Any]) -> str:
    """Architecture, with the words per quantizer M for the straight-through models."""
    levels, lattice = entry.get("levels"), entry.get("lattice")
    if levels:
        return f"{entry['architecture']} (M={levels})"
    return f"{entry['architecture']} ({lattice})" if lattice else entry["architecture"]


def _dataset_of(config: dict[str, Any]) -> str:
    return ((config.get("training") or {}).get("config") or {}).get("dataset") or DEFAULT_DATASET


def bench_model(model_dir: str | Path, data: np.ndarray, is_samples: int = 1000, dithers: int = 1,
                bitstream: bool = True, progress: Progress | None = None, defensive: bool = False) -> dict[str, Any]:
    """The bench numbers of one model on ``data`` (uint8 0/1, (N, data_dim)); see the module docstring."""
    import torch

    from latcomp.modelfile import load_model
    from latcomp.nll import importance_sampled_nll, supports_nll
    from latcomp.train import evaluate

    model_dir = Path(model_dir)
    config = read_config(model_dir)
    model = load_model(model_dir)
    hp = config.get("hparams") or {}
    name = model_dir.name
    n = len(data)
    entry: dict[str, Any] = {
        "name": name, "model_dir": str(model_dir), "architecture": config["architecture"],
        "levels": hp.get("levels"), "lattice": getattr(model, "product", None) and model.product.spec,
        "lam": hp.get("lam"), "latent": hp.get("latent"), "hidden": hp.get("hidden"),
        "count": n, "seconds": {}}

    def report(stage: str) -> Callable[[str, int, int], None] | None:
        if progress is None:
            return None
        return lambda _inner, done, total: progress(f"{name}: {stage}", done, total)

    tensor = torch.from_numpy(np.asarray(data, dtype=np.float32))
    on_eval = report("evaluate")
    start = time.perf_counter()
    ev = evaluate(model, tensor, dithers=dithers, progress=(lambda done, total: on_eval("", done, total))
                  if on_eval else None)
    entry["seconds"]["evaluate"] = time.perf_counter() - start
    entry.update(rate_estimate_bits=ev["rate_bits"], rate_estimate_nats=ev["rate_nats"],
                 distortion=ev["distortion"], neg_elbo=ev["distortion"] + ev["rate_nats"], dithers=dithers)

    entry.update(rate_bits=ev["rate_bits"], rate_source="estimate", rate_gap_bits=None, rate_gap_percent=None)
    spec = family(config["architecture"])
    if bitstream and spec.runtime and spec.modality == "digits":
        from latcomp.codec import compress, read_header

        start = time.perf_counter()
        blob = compress(np.asarray(data, dtype=np.uint8), model_dir, seed=0, progress=report("coding"))
        entry["seconds"]["coding"] = time.perf_counter() - start
        header = read_header(blob)
        rate = len(blob) * 8 / n
        gap = rate - ev["rate_bits"]
        entry.update(rate_bits=rate, rate_source="bitstream", bitstream_bytes=len(blob),
                     header_bytes=header.header_bytes, payload_bytes=header.payload_bytes,
                     rate_gap_bits=gap, rate_gap_percent=100.0 * gap / ev["rate_bits"] if ev["rate_bits"] else None)

    entry.update(nll=None, nll_stderr=None, nll_source="elbo-bound", is_samples=0)
    if is_samples > 0 and supports_nll(model):
        start = time.perf_counter()
        res = importance_sampled_nll(model, tensor, samples=is_samples, progress=report("importance sampling"))
        entry["seconds"]["importance_sampling"] = time.perf_counter() - start
        entry.update(nll=res["mean"], nll_stderr=_finite(res["stderr"]), nll_source="importance-sampling",
                     is_samples=is_samples)
    entry.update(nll_defensive=None, nll_defensive_stderr=None, nll_paired_difference=None)
    if defensive and is_samples > 0 and "defensive" in spec.proposals:
        start = time.perf_counter()
        dres = importance_sampled_nll(model, tensor, samples=is_samples, proposal="defensive",
                                      progress=report("importance sampling (defensive)"))
        entry["seconds"]["importance_sampling_defensive"] = time.perf_counter() - start
        diff = res["nll"] - dres["nll"]
        entry.update(nll_defensive=dres["mean"], nll_defensive_stderr=_finite(dres["stderr"]),
                     nll_paired_difference=[float(diff.mean()), _finite(float(diff.std(ddof=1) / math.sqrt(n)))])
    return entry


def spaced_subset(data: np.ndarray, count: int) -> np.ndarray:
    """``count`` evenly spaced rows of ``data`` (all of it if it has fewer).

    The static binarized MNIST test split is sorted by class, so a prefix would hold
    only zeros and ones; evenly spaced rows keep every class in proportion.
    """
    if count < 1:
        raise ValueError(f"images must be at least 1, got {count}")
    if count >= len(data):
        return data
    return data[np.linspace(0, len(data) - 1, count).round().astype(np.int64)]


def run_bench(model_dirs: Sequence[str | Path], split: str = "test", is_samples: int = 1000,
              data_dir: str | Path | None = None, dithers: int = 1, progress: Progress | None = None,
              bitstream: bool = True, data: np.ndarray | None = None, defensive: bool = False,
              images: int | None = None) -> dict[str, Any]:
    """Bench every model on ``split`` of its dataset (or on ``data``, binary (N, data_dim), if given).

    All model directories are checked before any work starts (:class:`ModelFileError`; a model of another
    modality than digits is a :class:`ModelMismatchError`).
    ``bitstream=False`` skips the codec and reports the lattice VAE's estimate too.
    ``defensive`` adds the lattice VAE's NLL with the defensive proposal (:mod:`latcomp.nll`).
    ``images`` keeps that many evenly spaced images of the split (:func:`spaced_subset`).
    """
    from latcomp.data import load_dataset

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    if is_samples < 0 or dithers < 1:
        raise ValueError("is_samples must be ≥ 0 and dithers ≥ 1")
    configs = [read_config(d) for d in model_dirs]  # fail fast on a bad directory
    for model_dir, config in zip(model_dirs, configs, strict=True):
        modality = family(config["architecture"]).modality
        if modality != "digits":
            hint = {"photo": "latcomp bench --photo", "text": "latcomp bench with text models only, "
                    "latcomp.measure.text_bench"}.get(modality, f"the {modality} benchmarks in benchmarks/")
            raise ModelMismatchError(f"{model_dir} is a {modality} model: latcomp bench measures digit models "
                                     f"(for it: {hint})")
    datasets: dict[str, np.ndarray] = {}
    models = []
    for model_dir, config in zip(model_dirs, configs, strict=True):
        if data is not None:
            split_data, dataset = np.asarray(data), "given"
        else:
            dataset = _dataset_of(config)
            seed = ((config.get("training") or {}).get("config") or {}).get("seed", 0)
            key = f"{dataset}/{seed}"
            if key not in datasets:
                datasets[key] = load_dataset(dataset, split, data_dir, seed=seed)
            split_data = datasets[key]
        if images is not None:
            split_data = spaced_subset(split_data, images)
        entry = bench_model(model_dir, split_data, is_samples, dithers, bitstream, progress, defensive)
        entry["dataset"] = dataset
        models.append(entry)
    return {"split": split, "is_samples": is_samples, "dithers": dithers, "bitstream": bitstream,
            "defensive": defensive, "images": images, "models": models, "machine": machine_info()}


# --------------------------------------------------------------------------- tables and files


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def nll_text(entry: dict[str, Any], key: str = "nll") -> str:
    """"95.05 ± 0.25" for an IS estimate, "≤ 99.00 (−ELBO)" for a bound, "—" if not measured."""
    if entry.get(key) is not None:
        return f"{entry[key]:.2f} ± {_fmt(entry[f'{key}_stderr'])}"
    return f"≤ {entry['neg_elbo']:.2f} (−ELBO)" if key == "nll" else "—"


TABLE_COLUMNS = ("model", "architecture", "λ", "rate (bits/image)", "source", "estimate (bits)", "gap",
                 "distortion (nats)", "−ELBO (nats)", "NLL (nats)", "NLL, defensive (nats)")
#: Columns of :func:`compact_table_rows`, for terminals too narrow for the full table (80 columns).
COMPACT_COLUMNS = ("model", "bits", "distortion", "−ELBO", "NLL")
#: What the compact columns mean (shown under the compact table).
COMPACT_CAPTION = ("bits: rate per image (bitstream: real file size; estimate: the rate term). "
                   "Distortion, −ELBO and NLL in nats per image.")


def table_rows(res: dict[str, Any]) -> list[list[str]]:
    """The bench table as strings, one row per model, in :data:`TABLE_COLUMNS` order."""
    rows = []
    for e in res["models"]:
        gap = ("—" if e["rate_gap_bits"] is None
               else f"{e['rate_gap_bits']:+.2f} ({_fmt(e['rate_gap_percent'], '+.1f')}%)")
        rows.append([e["name"], model_label(e), _fmt(e["lam"], "g"), f"{e['rate_bits']:.2f}", e["rate_source"],
                     f"{e['rate_estimate_bits']:.2f}", gap, f"{e['distortion']:.2f}", f"{e['neg_elbo']:.2f}",
                     nll_text(e), nll_text(e, "nll_defensive")])
    return rows


def compact_table_rows(res: dict[str, Any]) -> list[list[str]]:
    """The bench table in :data:`COMPACT_COLUMNS` order: two-line cells instead of extra columns.

    Model name over architecture and λ; rate over its source; the defensive NLL, if
    measured, under the NLL. Estimates and gaps are left to the full table and the files.
    """
    rows = []
    for e in res["models"]:
        nll = nll_text(e)
        if e.get("nll_defensive") is not None:
            nll += f"\ndef. {nll_text(e, 'nll_defensive')}"
        rows.append([f"{e['name']}\n{model_label(e)}, λ={_fmt(e['lam'], 'g')}",
                     f"{e['rate_bits']:.2f}\n{e['rate_source']}", f"{e['distortion']:.2f}", f"{e['neg_elbo']:.2f}",
                     nll])
    return rows


def bench_table_markdown(res: dict[str, Any]) -> str:
    """A Markdown table of the results with a note on what the columns mean."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(res)]
    count = res["models"][0]["count"] if res["models"] else 0
    k = res["is_samples"]
    sampling = (f"NLL by importance sampling with K = {k} (± standard error over images)" if k
                else "no importance sampling (K = 0)")
    lines += ["", (f"Split `{res['split']}`, {count} images; {res['dithers']} dither(s) per image for the "
                   f"estimates; {sampling}."),
              ("Rate source `bitstream`: the size of a real lossy container of the whole split (header and "
               "payload) per image; `estimate`: the model's rate term. Gap = bitstream − estimate. "
               "`≤ x (−ELBO)`: no continuous latent (or K = 0), the negative ELBO bounds the NLL.")]
    return "\n".join(lines) + "\n"


def write_bench(res: dict[str, Any], command: str, json_path: str | Path | None = None,
                markdown_path: str | Path | None = None) -> list[Path]:
    """Write the JSON (results + command) and/or the Markdown table; return the paths written.

    A pair ``NAME.json`` / ``NAME.md`` in one directory goes through
    :func:`latcomp.measure.results.write_results`; other paths are written alike, one by one.
    """
    markdown = bench_table_markdown(res) + f"\nMeasured with: `{command}`\n"
    js = Path(json_path) if json_path else None
    md = Path(markdown_path) if markdown_path else None
    if js and md and js.suffix == ".json" and md.suffix == ".md" and js.with_suffix("") == md.with_suffix(""):
        return list(write_results(js.stem, res, markdown, command, js.parent))
    written = []
    if js:
        written.append(write_json(js, res, command))
    if md:
        atomic_write_text(md, markdown)
        written.append(md)
    return written


# --------------------------------------------------------------------------- plots


#: One colour per model kind, the same in every figure (matplotlib's tab10 names; the families' own).
KIND_COLOURS = {name: spec.colour for name, spec in families().items()}
_OTHER_KIND = "tab:gray"
_MARKERS = ("o", "s", "^", "D", "v", "P")
_LINESTYLES = ("-", "--", ":", "-.")


def kind_colour(architecture: str) -> str:
    """The colour of a model kind in every figure (grey for a kind without one)."""
    return KIND_COLOURS.get(architecture, _OTHER_KIND)


def _variant_styles(keys: Sequence[tuple[str, str]], styles: Sequence[str]) -> dict[tuple[str, str], str]:
    """A style per (architecture, variant) key, cycling within each architecture in sorted order."""
    out: dict[tuple[str, str], str] = {}
    for key in sorted(set(keys)):
        out[key] = styles[sum(k[0] == key[0] for k in out) % len(styles)]
    return out


def finish_plot(fig: Any, ax: Any, path: str | Path, xlabel: str, ylabel: str, title: str,
                legend_size: int = 8) -> Path:
    """Label the axes, add a light grid and the legend, and save the figure (:func:`_save`)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


def plot_rate_vs_nll(res: dict[str, Any], path: str | Path) -> Path:
    """Rate (bits/image) against NLL (nats); hollow markers where only the −ELBO bound exists."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for e in res["models"]:
        is_nll = e["nll"] is not None
        y = e["nll"] if is_nll else e["neg_elbo"]
        marker = "o" if e["rate_source"] == "bitstream" else "s"
        colour = kind_colour(e["architecture"])
        ax.errorbar(e["rate_bits"], y, yerr=e["nll_stderr"] if is_nll else None, fmt=marker, capsize=3,
                    color=colour, mfc=None if is_nll else "none", label=f"{e['name']} ({model_label(e)})")
        ax.annotate(f"λ={e['lam']:g}" if e["lam"] is not None else "", (e["rate_bits"], y),
                    textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
    return finish_plot(fig, ax, path, "rate (bits/image; circles: real bitstream, squares: estimate)",
                       f"NLL (nats; IS K={res['is_samples']}; hollow: −ELBO bound)",
                       f"Rate vs NLL ({res['split']} split)", legend_size=7)


def plot_rate_vs_distortion(res: dict[str, Any], path: str | Path) -> Path:
    """Figure 4 analogue: rate (bits/image) vs distortion −log Q (nats), one line per architecture, λ order."""
    plt = pyplot()
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in res["models"]:
        series.setdefault((e["architecture"], model_label(e)), []).append(e)
    markers = _variant_styles(list(series), _MARKERS)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for (arch, label), entries in sorted(series.items()):
        entries = sorted(entries, key=lambda e: (e["lam"] is None, e["lam"] or 0.0))
        ax.plot([e["rate_bits"] for e in entries], [e["distortion"] for e in entries], "-",
                marker=markers[arch, label], color=kind_colour(arch), label=label)
    return finish_plot(fig, ax, path, "rate (bits/image)", "distortion −log Q(D|·) (nats/image)",
                       f"Rate vs distortion ({res['split']} split; points joined in λ order)")


def validation_neg_elbo(record: dict[str, Any]) -> float:
    """A log record's validation −ELBO: distortion + rate (nats), which is ``valid_loss`` when λ = 1."""
    return float(record["valid_distortion"] + record["valid_rate_nats"])


def plot_validation_curves(model_dirs: Sequence[str | Path], path: str | Path) -> Path | None:
    """Figure 3: validation negative ELBO (nats) vs epoch from each training log.

    The log's ``valid_loss`` is distortion + λ·rate; the curve is distortion + rate, the
    −ELBO for every λ (equal to ``valid_loss`` at λ = 1). It is an upper bound on the
    validation NLL, not an importance-sampled estimate.

    Models without a log are left out; returns None (and writes nothing) if none has one.
    """
    from latcomp.train import read_train_log

    logs = [(Path(d), read_train_log(d)) for d in model_dirs]
    logs = [(d, log) for d, log in logs if log]
    if not logs:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    runs = [(read_config(directory)["architecture"], str(directory), directory, log) for directory, log in logs]
    styles = _variant_styles([(arch, key) for arch, key, _, _ in runs], _LINESTYLES)
    for arch, key, directory, log in runs:
        ax.plot([r["epoch"] for r in log], [validation_neg_elbo(r) for r in log], styles[arch, key],
                color=kind_colour(arch), label=f"{directory.name} ({arch})")
    return finish_plot(fig, ax, path, "epoch", "validation negative ELBO (nats/image)",
                       "Validation negative ELBO during training")


def write_plots(res: dict[str, Any], model_dirs: Sequence[str | Path], out_dir: str | Path) -> list[Path]:
    """All three figures into ``out_dir`` (names in :data:`PLOTS`); the validation curves need training logs."""
    out_dir = Path(out_dir)
    written = [plot_rate_vs_nll(res, out_dir / PLOTS["rate_vs_nll"]),
               plot_rate_vs_distortion(res, out_dir / PLOTS["rate_vs_distortion"])]
    curves = plot_validation_curves(model_dirs, out_dir / PLOTS["validation_curves"])
    return written + ([curves] if curves else [])
