"""``latcomp bench`` on text models: the paper's Figure 4 on sentences (Appendix A.2.1).

For every text model directory, on the validation sentences only (``valid.raw.txt`` of
:mod:`latcomp.text.corpus`; settings are never chosen on the test split):

* **word NLL**, bits per word, by the training's own evaluation (:func:`latcomp.text.training.evaluate`):
  a word is a canonical token, ``<eos>`` is predicted but not counted, the dithers are the fixed
  validation ones. For a lattice model the NLL of the table and plot is the decoder's at Z − U with
  Z = K_Λ(X + U), as the codec runs it; the training path's NLL at X − U is kept beside it.
* **rate per word**, by what the model can write (``rate_source``, :func:`rate_source`):

  - ``file`` (a family with a runtime: ``text-lattice``): the whole validation text is compressed into
    one lossy container (:func:`latcomp.text.codec.compress`, seed :data:`SEED`) and the rate is its
    payload in bits per word; the header (a few dozen bytes a file) is reported apart, and so is the
    ideal code length −log₂ P(Z | U) of the points the file holds (popped back from it);
  - ``code-length`` (a family with a learned discrete code, the ``levels`` hyper-parameter: the
    straight-through quantizers): the evaluation's rate, the exact code length −log₂ p(word) of the
    chosen code words, which an entropy coder reaches within a few bits per file;
  - ``kl-estimate`` (any other, Gaussian dithering): the evaluation's rate KL(N(X, σ²) ‖ N(0, I)), an
    estimate of what a good high-dimensional lattice would cost, not a code.

* **lossy decoding** of ``sentences`` evenly spaced validation sentences: the decoder's greedy sentence
  from the point alone against the sentence's tokens (exact-match rate; word error rate, the Levenshtein
  distance over the reference's tokens; unknown words count as errors, the decoder never writes them).
  Lattice models decode a real lossy file of those sentences (:func:`latcomp.text.codec.decompress`); the
  others run the greedy decoder in torch from their representation W (Gaussian: X + σε, one noise draw;
  straight-through: the chosen code words).
* **speed** of the lossy path (lattice models, one BLAS thread): sentences per second encoding the whole
  validation text, and decoding the subset's file (decoding runs its lines in lockstep, so its speed
  depends on how many lines a file has: the subset size is reported with it).

The **comparison at equal rate** (:func:`equal_rate_difference`) of two methods is the mean difference of
their NLL over the rate interval both curves cover, with NLL interpolated piecewise linearly in the rate
per word (not log-rate): a BD-PSNR-like number in bits per word, negative where the first method needs fewer
bits for the words at equal rate. A method is the family and what its config says of the quantizer
(:func:`method_of`); its curve is its models sorted by rate.
"""

from __future__ import annotations

import datetime
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.errors import ModelMismatchError
from latcomp.families import family
from latcomp.measure.bench import _MARKERS, _variant_styles, finish_plot, kind_colour, spaced_subset
from latcomp.measure.results import git_commit, machine_info, pyplot, timed, write_report_files
from latcomp.modelfile import load_weights_numpy, read_config

#: ``progress(stage, done, total)``, as in :mod:`latcomp.measure.bench`.
Progress = Callable[[str, int, int], None]
#: The dither seed of the bench's files.
SEED = 0
#: Evenly spaced validation sentences decoded for the lossy quality, by default.
DEFAULT_SENTENCES = 500
#: The method every other one is compared with first (the scalar lattice).
ANCHOR = "text-lattice (z)"
#: Quantizer settings a config may record (hyper-parameters or training settings) that make a method.
METHOD_KEYS = ("commitment", "ema")
#: Line style of a curve in the plot, by its rate source.
RATE_STYLES = {"file": "-", "code-length": "--", "kl-estimate": ":"}
RATE_SOURCES = {"file": "real file (payload)", "code-length": "code length", "kl-estimate": "KL estimate"}


@dataclass
class ValidText:
    """The validation sentences as written: the whole text, its lines and their canonical tokens."""

    text: str
    lines: list[str]
    tokens: list[list[str]]

    @property
    def words(self) -> int:
        return sum(map(len, self.tokens))

    @classmethod
    def of(cls, text: str) -> ValidText:
        """The sentences of ``text``, one a line."""
        from latcomp.text.tokenizer import split_lines, tokenize

        lines = split_lines(text)[0]
        return cls(text, lines, [tokenize(line) for line in lines])

    @classmethod
    def load(cls, data_dir: str | Path | None = None) -> ValidText:
        """``valid.raw.txt`` of the corpus (checksum-verified; DataError if absent)."""
        from latcomp.text.corpus import corpus_file

        return cls.of(corpus_file("valid.raw.txt", data_dir).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- one model


def lattice_name(spec: str) -> str:
    """``e8`` for a product of one lattice (``e8*12``), else the spec as it is."""
    from latcomp.lattices.product import parse_spec

    names = set(parse_spec(spec))
    return names.pop() if len(names) == 1 else spec


def method_of(config: dict[str, Any]) -> str:
    """The method of a model config: its family, then its lattice, levels M and :data:`METHOD_KEYS` if set."""
    hp = config.get("hparams") or {}
    training = (config.get("training") or {}).get("config") or {}
    parts = [lattice_name(hp["lattice"])] if hp.get("lattice") else []
    parts += [f"M={hp['levels']}"] if hp.get("levels") else []
    for key in METHOD_KEYS:
        value = hp.get(key, training.get(key))
        if value:
            parts.append(key if value is True else f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return f"{config['architecture']} ({', '.join(parts)})" if parts else config["architecture"]


def rate_source(config: dict[str, Any]) -> str:
    """Where a model's rate comes from (module docstring): ``file``, ``code-length`` or ``kl-estimate``."""
    if family(config["architecture"]).runtime is not None:
        return "file"
    return "code-length" if (config.get("hparams") or {}).get("levels") else "kl-estimate"


def step_budget(config: dict[str, Any]) -> int | None:
    """The training steps of a text run (rounds × steps per round), None where the config does not say."""
    training = (config.get("training") or {}).get("config") or {}
    rounds, every = training.get("rounds"), training.get("eval_every")
    return rounds * every if isinstance(rounds, int) and isinstance(every, int) else None


def trained_steps(model_dir: str | Path) -> int | None:
    """The last step the run's training log records (None without a readable log); below the budget while a
    run is still going."""
    from latcomp.train import read_train_log

    try:
        steps = [r["step"] for r in read_train_log(model_dir) if isinstance(r.get("step"), int)]
    except (OSError, ValueError, AttributeError):
        return None
    return max(steps, default=None)


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between token lists (substitutions, insertions, deletions)."""
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def lossy_quality(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Exact-match rate and word error rate (errors over the references' tokens) of decoded token lists."""
    pairs = list(zip(references, hypotheses, strict=True))
    tokens = sum(len(r) for r in references)
    return {"sentences": len(pairs), "exact_match": float(np.mean([list(r) == list(h) for r, h in pairs])),
            "word_error_rate": sum(word_errors(r, h) for r, h in pairs) / max(tokens, 1)}


def file_rate(model: Any, corpus: ValidText, seed: int = SEED) -> dict[str, Any]:
    """The lossy file of the whole validation text (``model``: a loaded text model): sizes, rates per word,
    the ideal −log₂ P(Z | U) of its points, and the encoding speed on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    from latcomp.container import unpack
    from latcomp.runtime.coding import entropy_decoding, pop_coordinates
    from latcomp.text.codec import compress

    with threadpool_limits(1):
        blob, seconds = timed(lambda: compress(corpus.text, model, seed=seed))
    header, body = unpack(blob)
    latent = model.net.latent
    u = latent.seeded_dither(header.seed, header.count)
    with entropy_decoding(body) as coder:
        k = pop_coordinates(coder, latent, u)
    words = corpus.words
    return {"rate_bits_per_word": 8 * len(body) / words, "file_bytes": len(blob), "payload_bytes": len(body),
            "header_bytes": len(blob) - len(body), "file_bits_per_word": 8 * len(blob) / words,
            "ideal_rate_bits_per_word": float(-latent.code.log2_prob(k, u).sum()) / words,
            "encode_seconds": seconds, "encode_sentences_per_second": len(corpus.lines) / seconds}


def file_decoding(model: Any, corpus: ValidText, rows: np.ndarray, seed: int = SEED) -> dict[str, Any]:
    """Lossy quality and decoding speed (one BLAS thread) of a real file of the validation lines ``rows``."""
    from threadpoolctl import threadpool_limits

    from latcomp.text.codec import compress, decompress
    from latcomp.text.tokenizer import join_lines, split_lines, tokenize

    blob = compress(join_lines([corpus.lines[i] for i in rows], True), model, seed=seed)
    with threadpool_limits(1):
        text, seconds = timed(lambda: decompress(blob, model))
    hypotheses = [tokenize(line) for line in split_lines(text)[0]]
    return {**lossy_quality([corpus.tokens[i] for i in rows], hypotheses), "source": "file",
            "decode_seconds": seconds, "decode_sentences_per_second": len(rows) / seconds}


def greedy_ids(model: Any, sentences: list[list[int]], seed: int = SEED, batch_size: int = 256) -> list[list[int]]:
    """The torch model's greedy sentences (token ids, ``<unk>`` included) from its representation of
    ``sentences``: W from :meth:`represent` with one noise draw (a generator seeded with ``seed``)."""
    import torch

    from latcomp.text.codec import MAX_LOSSY_TOKENS
    from latcomp.text.model import Batch
    from latcomp.text.vocabulary import BOS, EOS

    gen, out = torch.Generator().manual_seed(seed), []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = Batch.of(sentences[start:start + batch_size])
            w, _ = model.represent(model.encode(batch), model.draw_noise(model.noise_shape(batch), gen))
            state, token = model.initial_state(w), torch.full((len(batch),), BOS)
            rows, done = [], torch.zeros(len(batch), dtype=torch.bool)
            for _ in range(MAX_LOSSY_TOKENS):
                top, state = model.decoder(model.embedding(token)[:, None], state)
                token = torch.where(done, EOS, model.logits(top[:, 0]).argmax(-1))
                rows.append(token)
                done |= token == EOS
                if done.all():
                    break
            for row in torch.stack(rows, 1).tolist():
                out.append(list(itertools.takewhile(lambda t: t != EOS, row)))
    return out


def torch_decoding(model: Any, vocab: Any, corpus: ValidText, rows: np.ndarray) -> dict[str, Any]:
    """Lossy quality of the torch model's greedy sentences (:func:`greedy_ids`) of the validation lines ``rows``."""
    from latcomp.text.vocabulary import UNK

    hypotheses = [[vocab.words[t] for t in ids if t != UNK]
                  for ids in greedy_ids(model, [vocab.ids(corpus.tokens[i]) for i in rows])]
    return {**lossy_quality([corpus.tokens[i] for i in rows], hypotheses), "source": "torch"}


def bench_text_model(model_dir: str | Path, corpus: ValidText, sentences: int = DEFAULT_SENTENCES,
                     progress: Progress | None = None) -> dict[str, Any]:
    """The bench numbers of one text model on the validation sentences (module docstring)."""
    from latcomp.text.codec import text_model
    from latcomp.text.training import TextData, TextTrainConfig, evaluate, load_text_model

    model_dir = Path(model_dir)
    config = read_config(model_dir)
    hp, training = config.get("hparams") or {}, config.get("training") or {}
    name, stages = model_dir.name, 3 if family(config["architecture"]).runtime else 2

    def report(done: int, stage: str) -> None:
        if progress is not None:
            progress(f"{name}: {stage}", done, stages)

    entry: dict[str, Any] = {
        "name": name, "model_dir": str(model_dir), "architecture": config["architecture"],
        "method": method_of(config), "lam": hp.get("lam"), "lattice": hp.get("lattice"), "levels": hp.get("levels"),
        "steps": step_budget(config), "best_step": training.get("best_step"), "trained_steps": trained_steps(model_dir),
        "rate_source": rate_source(config)}
    report(0, "evaluation")
    model, vocab = load_text_model(model_dir)
    max_tokens = ((training.get("config") or {}).get("max_tokens")) or TextTrainConfig.max_tokens
    data = TextData.prepare(TextTrainConfig(max_tokens=max_tokens), vocab, ([], corpus.lines))
    start = time.perf_counter()
    ev = evaluate(model, data.valid)
    entry.update(evaluation=ev, evaluation_seconds=time.perf_counter() - start,
                 nll_bits_per_word=ev.get("real_nll_bits_per_word", ev["nll_bits_per_word"]),
                 train_nll_bits_per_word=ev["nll_bits_per_word"])
    rows = spaced_subset(np.arange(len(corpus.lines)), sentences)
    if entry["rate_source"] == "file":
        report(1, "lossy file of valid")
        loaded, _ = text_model(model_dir)
        entry.update(file_rate(loaded, corpus))
        report(2, f"decoding {len(rows)} sentences")
        entry["lossy"] = file_decoding(loaded, corpus, rows)
    else:
        entry["rate_bits_per_word"] = ev["rate_bits_per_word"]
        report(1, f"decoding {len(rows)} sentences")
        entry["lossy"] = torch_decoding(model, vocab, corpus, rows)
    entry["bits_per_word"] = entry["nll_bits_per_word"] + entry["rate_bits_per_word"]
    report(stages, "done")
    return entry


# --------------------------------------------------------------------------- the run


def text_models(model_dirs: Sequence[str | Path]) -> bool:
    """Whether ``model_dirs`` are text models (True) or none is (False); ModelMismatchError for a mix.

    Reads each config (a bad directory is a ModelFileError before any work).
    """
    text = [family(read_config(d)["architecture"]).modality == "text" for d in model_dirs]
    if any(text) and not all(text):
        mixed = ", ".join(str(d) for d, t in zip(model_dirs, text, strict=True) if not t)
        raise ModelMismatchError(f"latcomp bench measures text models apart from the others; not text: {mixed}")
    return bool(text) and all(text)


def run_text_bench(model_dirs: Sequence[str | Path], data_dir: str | Path | None = None,
                   sentences: int = DEFAULT_SENTENCES, progress: Progress | None = None,
                   corpus: ValidText | None = None) -> dict[str, Any]:
    """Bench every text model on the validation sentences, compare the methods at equal rate (module docstring).

    Every directory is checked to be a whole text model (config, weights) before any work; ``sentences``
    (≥ 1) is the size of the evenly spaced subset decoded for the lossy quality; ``corpus`` replaces the
    validation sentences.
    """
    if sentences < 1:
        raise ValueError(f"sentences must be at least 1, got {sentences}")
    if not text_models(model_dirs):
        raise ModelMismatchError("these are not text models")
    for directory in model_dirs:   # the weights against their schema (a run not finished yet, say) before any work
        load_weights_numpy(directory)
    start = time.perf_counter()
    corpus = corpus or ValidText.load(data_dir)
    models = [bench_text_model(d, corpus, sentences, progress) for d in model_dirs]
    return {"split": "valid", "sentences": len(corpus.lines), "words": corpus.words,
            "decoded_sentences": min(sentences, len(corpus.lines)), "seed": SEED, "anchor": ANCHOR,
            "models": models, "comparisons": comparisons(models), "wall_s": time.perf_counter() - start,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(), "machine": machine_info()}


# --------------------------------------------------------------------------- equal rate


def curves(models: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(rate, NLL) points of each method, sorted by rate; methods in the order they first appear."""
    out: dict[str, list[tuple[float, float]]] = {}
    for e in models:
        out.setdefault(e["method"], []).append((e["rate_bits_per_word"], e["nll_bits_per_word"]))
    return {m: sorted(points) for m, points in out.items()}


def equal_rate_difference(a: Sequence[tuple[float, float]],
                          b: Sequence[tuple[float, float]]) -> tuple[float | None, float, float]:
    """(mean NLL of ``a`` − NLL of ``b`` at equal rate, low, high) over the rates both cover (module docstring).

    Each curve is (rate, NLL) points, interpolated piecewise linearly in the rate; the mean is the exact
    integral of the difference over [low, high] divided by its length. None where the interval is empty
    or a point (a curve of one point, or curves that do not overlap).
    """
    ra, na = (np.array(v, dtype=np.float64) for v in zip(*sorted(a), strict=True))
    rb, nb = (np.array(v, dtype=np.float64) for v in zip(*sorted(b), strict=True))
    low, high = max(ra[0], rb[0]), min(ra[-1], rb[-1])
    if not high > low:
        return None, float(low), float(high)
    knots = np.unique(np.concatenate([[low, high], ra, rb]))
    knots = knots[(knots >= low) & (knots <= high)]
    diff = np.interp(knots, ra, na) - np.interp(knots, rb, nb)   # piecewise linear between the knots
    integral = float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(knots)))
    return integral / (high - low), float(low), float(high)


def comparisons(models: Sequence[dict[str, Any]], anchor: str = ANCHOR) -> list[dict[str, Any]]:
    """Every pair of methods at equal rate: each against ``anchor`` first, then the others pairwise."""
    by_method = curves(models)
    names = list(by_method)
    pairs = [(m, anchor) for m in names if anchor in by_method and m != anchor]
    pairs += [(a, b) for a, b in itertools.combinations([m for m in names if m != anchor], 2)]
    rows = []
    for a, b in pairs:
        delta, low, high = equal_rate_difference(by_method[a], by_method[b])
        rows.append({"method": a, "against": b, "nll_difference": delta, "rate_range": [low, high],
                     "points": [len(by_method[a]), len(by_method[b])]})
    return rows


# --------------------------------------------------------------------------- tables, plot, files


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


TABLE_COLUMNS = ("model", "method", "λ", "steps", "rate (bits/word)", "source", "ideal rate", "NLL (bits/word)",
                 "NLL + rate", "NLL at X−U", "exact match", "WER", "enc sent/s", "dec sent/s")


def table_rows(res: dict[str, Any]) -> list[list[str]]:
    """One row of strings per model, in :data:`TABLE_COLUMNS` order."""
    rows = []
    for e in res["models"]:
        lossy = e["lossy"]
        steps = _fmt(e["steps"], "d") + (f" ({e['best_step']})" if e.get("best_step") else "") + (
            f", unfinished: {e['trained_steps']}" if _unfinished(e) else "")
        rows.append([e["name"], e["method"], _fmt(e["lam"], "g"), steps, f"{e['rate_bits_per_word']:.3f}",
                     e["rate_source"], _fmt(e.get("ideal_rate_bits_per_word"), ".3f"),
                     f"{e['nll_bits_per_word']:.3f}", f"{e['bits_per_word']:.3f}",
                     f"{e['train_nll_bits_per_word']:.3f}", f"{lossy['exact_match']:.1%}",
                     f"{lossy['word_error_rate']:.1%}", _fmt(e.get("encode_sentences_per_second"), ".0f"),
                     _fmt(lossy.get("decode_sentences_per_second"), ".0f")])
    return rows


COMPARISON_COLUMNS = ("method", "against", "ΔNLL (bits/word)", "over rates (bits/word)", "points")


def comparison_rows(res: dict[str, Any]) -> list[list[str]]:
    """One row of strings per compared pair, in :data:`COMPARISON_COLUMNS` order."""
    return [[r["method"], r["against"], _fmt(r["nll_difference"], "+.3f"),
             "{:.2f}–{:.2f}".format(*r["rate_range"]) if r["nll_difference"] is not None else "no overlap",
             "{} / {}".format(*r["points"])] for r in res["comparisons"]]


def terminal_tables(res: dict[str, Any]) -> list[tuple[str, Sequence[str], list[list[str]]]]:
    """(title, columns, rows) of the models and of the equal-rate comparison for an 80-column terminal: names
    over methods in two-line cells, the other columns of the files left to them."""
    models = [[f"{e['name']}\n{e['method']}, λ={_fmt(e['lam'], 'g')}", f"{e['rate_bits_per_word']:.3f}",
               e["rate_source"], f"{e['nll_bits_per_word']:.3f}", f"{e['lossy']['exact_match']:.1%}",
               f"{e['lossy']['word_error_rate']:.1%}"] for e in res["models"]]
    pairs = [[f"{row[0]}\n− {row[1]}", *row[2:]] for row in comparison_rows(res)]
    return [(f"Text models on {res['sentences']:,} validation sentences ({res['words']:,} words; bits per word; "
             f"lossy decoding of {res['decoded_sentences']:,})", ("model", "rate", "source", "NLL", "exact", "WER"),
             models),
            ("NLL difference at equal rate (bits per word; negative: the method is better)",
             ("method", "ΔNLL", "over rates", "points"), pairs)]


def _markdown_table(columns: Sequence[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table of ``rows`` (strings) under ``columns``."""
    return ["| " + " | ".join(row) + " |" for row in ([list(columns), ["---"] * len(columns)] + rows)]


def _unfinished(entry: dict[str, Any]) -> bool:
    """Whether the training log of a model stops before its step budget (a run still going, or stopped)."""
    return None not in (entry["steps"], entry["trained_steps"]) and entry["trained_steps"] < entry["steps"]


def budget_line(models: Sequence[dict[str, Any]]) -> str:
    """Whether every model had the same training budget, and which; the runs that did not finish it."""
    budgets = sorted({e["steps"] for e in models}, key=lambda s: (s is None, s or 0))
    line = (f"Training budget: {_fmt(budgets[0], ',')} steps for every model (best step in parentheses)."
            if len(budgets) == 1 else "**Training budgets differ** (" + ", ".join(_fmt(b, ",") for b in budgets)
            + " steps): compare methods only at equal budgets.")
    unfinished = [e["name"] for e in models if _unfinished(e)]
    return line + (f" **Unfinished runs** (their logs stop before the budget): {', '.join(unfinished)}."
                   if unfinished else "")


def to_markdown(res: dict[str, Any], command: str, plot: str | None = None, raw: str | None = None) -> str:
    """The report: how it was measured, the models' table, the equal-rate comparison, the plot."""
    mach = res["machine"]
    load = ", ".join(f"{v:.2f}" for v in mach["load_average"] or [])
    lines = [
        "# Figure 4 on text: rate per word against word NLL", "",
        f"Command: `{command}`  ",
        f"Date: {res['date']}; commit {res['commit'] or 'unknown'}; whole run {res['wall_s'] / 60:.1f} min  ",
        f"Machine: {mach['cpu']}, {mach['cpu_count']} CPUs, {mach['platform']}, load average {load}  ",
        f"Data: `valid.raw.txt`, {res['sentences']:,} sentences, {res['words']:,} words (canonical tokens; the "
        f"denominator of every number per word); the lossy decoding on {res['decoded_sentences']:,} evenly "
        "spaced sentences.", "",
        "- **NLL**: the training's evaluation (`latcomp.text.training.evaluate`, fixed validation dithers); for "
        "lattice models the decoder at Z − U, Z = K_Λ(X + U), as the codec runs it (*NLL at X−U*: the training "
        "path).",
        "- **Rate** by *source*: `file`: the payload of one real lossy file of all validation sentences "
        f"(`latcomp.text.codec.compress`, seed {res['seed']}), per word; *ideal rate*: −log₂ P(Z|U) of the "
        "points in that file. `code-length`: −log₂ p(word) of the straight-through code (entropy-codable, no "
        "file written). `kl-estimate`: the Gaussian KL, an estimate, not a code.",
        "- **Exact match / WER**: the greedy sentence decoded from the point alone (lattice: a real file; others: "
        "torch, from W) against the sentence's tokens; unknown words count as errors.",
        "- **enc / dec sent/s**: the lossy path on one BLAS thread: encoding all validation sentences, decoding "
        "the subset's file.",
        "", budget_line(res["models"]), "", "## Models", "",
        *_markdown_table(TABLE_COLUMNS, table_rows(res)), "",
        "## NLL at equal rate", "",
        "ΔNLL = the mean over the rates both curves cover of NLL(method) − NLL(against), each curve's NLL "
        "interpolated piecewise linearly in the rate per word (a BD-PSNR-like mean, linear in rate); negative: "
        "the method needs fewer bits for the words at equal rate. *points*: models per curve.", "",
        *_markdown_table(COMPARISON_COLUMNS, comparison_rows(res)), ""]
    if plot:
        lines += [f"![rate per word against word NLL]({plot})", ""]
    if raw:
        lines += [f"Raw numbers: `{raw}`.", ""]
    return "\n".join(lines)


def plot_text_figure4(res: dict[str, Any], path: str | Path) -> Path:
    """Rate per word (x) against word NLL (y), one curve per method, points labelled by λ (the paper's Figure 4).

    Colour: the family; marker: the variant within it; line style: the rate source (solid: real files).
    """
    plt = pyplot()
    by_method: dict[str, list[dict[str, Any]]] = {}
    for e in res["models"]:
        by_method.setdefault(e["method"], []).append(e)
    markers = _variant_styles([(es[0]["architecture"], m) for m, es in by_method.items()], _MARKERS)
    fig, ax = plt.subplots(figsize=(7, 5))
    for method, entries in by_method.items():
        entries = sorted(entries, key=lambda e: e["rate_bits_per_word"])
        arch, source = entries[0]["architecture"], entries[0]["rate_source"]
        colour = kind_colour(arch)
        ax.plot([e["rate_bits_per_word"] for e in entries], [e["nll_bits_per_word"] for e in entries],
                RATE_STYLES.get(source, "-"), marker=markers[arch, method], color=colour,
                label=f"{method} — {RATE_SOURCES.get(source, source)}")
        for e in entries:
            ax.annotate(f"λ={_fmt(e['lam'], 'g')}", (e["rate_bits_per_word"], e["nll_bits_per_word"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
    return finish_plot(fig, ax, path, "rate (bits per word)", "word NLL (bits per word)",
                       f"Sentences: rate against NLL ({res['sentences']:,} validation sentences)", legend_size=7)


def write_text_bench(res: dict[str, Any], command: str, json_path: str | Path | None = None,
                     markdown_path: str | Path | None = None, plot_path: str | Path | None = None) -> list[Path]:
    """Write any of the JSON (results + command), the Markdown report (linking the plot and the JSON by
    relative paths) and the PNG plot; return the paths written."""
    return write_report_files(res, command, json_path, markdown_path, plot_path,
                              lambda p: plot_text_figure4(res, p),
                              lambda plot, raw: to_markdown(res, command, plot=plot, raw=raw))
