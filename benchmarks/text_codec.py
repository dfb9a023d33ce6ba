"""Text coding with a text-lattice model against general-purpose compressors.

Run ``python -m benchmarks.text_codec MODEL_DIR --data-dir ../shared/data``. On the validation
sentences as written (``valid.raw.txt``) it measures

* **lossless**: the whole file of :func:`latcomp.text.codec.compress` (checked to decode to the
  input byte for byte), split into the lattice points' code length, the decoder's token NLL and
  the side information (unknown words' spellings, cases, gaps; also with adaptive models alone);
  bits per whitespace-separated word and per byte; sentences per second encoding and decoding;
* **lossy**: the file of the lattice points alone; the decoder's sentences against the input's
  tokens (exact match rate, word error rate);
* the **peers** ``xz -9e``, ``bzip2 -9``, ``zstd --ultra -22``, ``brotli -q 11`` and PPMd order 6
  (``pyppmd``), each alone and given the training text first (the size of train + valid minus the
  size of train).

Writes ``docs/results/text-codec.{json,md}`` (``--name`` changes the name).
"""

from __future__ import annotations

import argparse
import bz2
import lzma
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import numpy as np
import pyppmd
import zstandard

from latcomp.measure.results import git_commit, machine_info, write_results
from latcomp.measure.text_bench import word_errors
from latcomp.runtime.model import load_model
from latcomp.text.codec import Recorder, compress, decompress, groups, token_symbols
from latcomp.text.corpus import corpus_file
from latcomp.text.side import SideModels, code_cases, code_gaps, code_words
from latcomp.text.tokenizer import lex, split_lines, tokenize
from latcomp.text.vocabulary import Vocabulary

PEERS = {
    "xz -9e": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
    "bzip2 -9": lambda b: bz2.compress(b, 9),
    "zstd --ultra -22": lambda b: zstandard.ZstdCompressor(level=22).compress(b),
    "brotli -q 11": lambda b: brotli.compress(b, quality=11, lgwin=24),
    "PPMd order 6": lambda b: pyppmd.compress(b, max_order=6, mem_size=256 << 20),
}


def breakdown(net: Any, vocab: Vocabulary, text: str, seed: int) -> dict[str, float]:
    """Ideal bits of the lossless code's parts: lattice points, tokens (the decoder's NLL), and the side
    information's spellings, cases and gaps, with the vocabulary's side statistics and with adaptive models only."""
    lines = [lex(row) for row in split_lines(text)[0]]
    ids = [vocab.ids(line.tokens) for line in lines]
    u = net.latent.seeded_dither(seed, len(lines))
    k = net.latent.quantize(net.encode(ids), u)
    w = net.latent.reconstruct(k, u)
    nll = 0.0
    for group in groups(len(lines)):
        symbols, freq = token_symbols(net, w[group], ids[group])
        nll -= float(np.log2(freq[np.arange(len(symbols)), symbols] / freq.sum(-1)).sum())
    parts = {"points": float(-net.latent.code.log2_prob(k, u).sum()), "tokens": nll}
    for name, stats in (("", vocab.side), ("adaptive only: ", None)):
        recorders, side = {part: Recorder() for part in ("spellings", "cases", "gaps")}, SideModels(stats)
        for line, s in zip(lines, ids, strict=True):
            tokens = code_words(recorders["spellings"].code, side, vocab, s, line)
            code_cases(recorders["cases"].code, side, line, tokens)
            code_gaps(recorders["gaps"].code, side, line, tokens)
        parts.update({name + part: -sum(float(np.log2(p[symbol] / p.sum())) for symbol, p in rec.items)
                      for part, rec in recorders.items()})
    return parts


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return work(), time.perf_counter() - start


def measure(model_dir: str, data_dir: str | None, seed: int = 1) -> dict[str, Any]:
    loaded = load_model(model_dir)
    vocab = Vocabulary.load(model_dir)
    text = corpus_file("valid.raw.txt", data_dir).read_text(encoding="utf-8")
    train = corpus_file("train.raw.txt", data_dir).read_bytes()
    words, size, lines = len(text.split()), len(text.encode("utf-8")), len(split_lines(text)[0])
    data, encode_s = timed(lambda: compress(text, loaded, lossless=True, seed=seed))
    decoded, decode_s = timed(lambda: decompress(data, loaded))
    if decoded != text:
        raise AssertionError("the lossless round trip failed")
    parts = breakdown(loaded.net, vocab, text, seed)
    lossy = compress(text, loaded, seed=seed)
    sentences, lossy_decode_s = timed(lambda: split_lines(decompress(lossy, loaded))[0])
    reference = [tokenize(row) for row in split_lines(text)[0]]
    hypothesis = [tokenize(row) for row in sentences]
    errors = sum(word_errors(r, h) for r, h in zip(reference, hypothesis, strict=True))
    peers = {}
    for name, compress_peer in PEERS.items():
        alone = len(compress_peer(text.encode("utf-8")))
        primed = len(compress_peer(train + text.encode("utf-8"))) - len(compress_peer(train))
        peers[name] = {"bytes": alone, "bits_per_word": 8 * alone / words, "bits_per_byte": 8 * alone / size,
                       "primed_bytes": primed, "primed_bits_per_word": 8 * primed / words,
                       "primed_bits_per_byte": 8 * primed / size}
    tokens = sum(map(len, reference))
    return {"model": str(model_dir), "model_id": loaded.model_id.hex(), "lines": lines, "whitespace_words": words,
            "bytes": size, "tokens": tokens, "seed": seed,
            "lossless": {"file_bytes": len(data), "bits_per_word": 8 * len(data) / words,
                         "bits_per_byte": 8 * len(data) / size, "ideal_bits": parts,
                         "ideal_bits_per_word": {k: v / words for k, v in parts.items()},
                         "encode_seconds": encode_s, "decode_seconds": decode_s,
                         "encode_sentences_per_second": lines / encode_s,
                         "decode_sentences_per_second": lines / decode_s},
            "lossy": {"file_bytes": len(lossy), "bits_per_word": 8 * len(lossy) / words,
                      "exact_match": float(np.mean([r == h for r, h in zip(reference, hypothesis, strict=True)])),
                      "word_error_rate": errors / tokens, "decode_sentences_per_second": lines / lossy_decode_s},
            "peers": peers, "machine": machine_info(), "commit": git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def to_markdown(res: dict[str, Any], command: str) -> str:
    ll, lo = res["lossless"], res["lossy"]
    parts = ll["ideal_bits_per_word"]
    side = {name: sum(parts[name + p] for p in ("spellings", "cases", "gaps")) for name in ("", "adaptive only: ")}
    peers = "\n".join(f"| {name} | {p['bits_per_word']:.2f} | {p['bits_per_byte']:.3f} | "
                      f"{p['primed_bits_per_word']:.2f} | {p['primed_bits_per_byte']:.3f} |"
                      for name, p in res["peers"].items())
    return f"""# Text coding: {res['model']}

Command: `{command}` (model id {res['model_id'][:16]}…, seed {res['seed']}). Validation sentences as written
(`valid.raw.txt`): {res['lines']:,} lines, {res['whitespace_words']:,} whitespace-separated words,
{res['tokens']:,} tokens, {res['bytes']:,} bytes. Sizes are whole `.lat` files (container header included).
Measured {res['date']} at commit {res['commit']} on {res['machine']['cpu']} ({res['machine']['cpu_count']} cores,
load average {res['machine']['load_average'][0]:.1f}), OMP_NUM_THREADS={res['machine']['threads']['OMP_NUM_THREADS']}.

## Lossless (decodes to the input byte for byte)

| quantity | value |
|---|---:|
| file bits per word | {ll['bits_per_word']:.2f} |
| file bits per byte | {ll['bits_per_byte']:.3f} |
| of which lattice points (ideal), bits per word | {parts['points']:.2f} |
| of which tokens, the decoder's NLL (ideal), bits per word | {parts['tokens']:.2f} |
| of which side information (ideal), bits per word | {side['']:.2f} |
| … unknown words' spellings / cases / gaps | {parts['spellings']:.2f} / {parts['cases']:.2f} / {parts['gaps']:.2f} |
| side information with adaptive models only (no side statistics), bits per word | {side['adaptive only: ']:.2f} |
| … unknown words' spellings / cases / gaps | {parts['adaptive only: spellings']:.2f} / \
{parts['adaptive only: cases']:.2f} / {parts['adaptive only: gaps']:.2f} |
| encode, sentences per second | {ll['encode_sentences_per_second']:.0f} |
| decode, sentences per second | {ll['decode_sentences_per_second']:.0f} |

## Lossy (the lattice points alone)

| quantity | value |
|---|---:|
| file bits per word | {lo['bits_per_word']:.2f} |
| exact-match rate of the decoder's sentences (tokens) | {lo['exact_match']:.1%} |
| word error rate (tokens) | {lo['word_error_rate']:.1%} |
| decode, sentences per second | {lo['decode_sentences_per_second']:.0f} |

## General-purpose compressors

| compressor | bits per word | bits per byte | given the training text first: bits per word | bits per byte |
|---|---:|---:|---:|---:|
{peers}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_codec", description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--name", default="text-codec")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.text_codec", *(sys.argv[1:] if argv is None else argv)])
    res = measure(str(Path(args.model)), args.data_dir)
    markdown = to_markdown(res, command)
    print(markdown, flush=True)
    write_results(args.name, res, markdown, command)


if __name__ == "__main__":
    main()
