"""Structure-aware fuzzing of every container version (1–4) and lattice: mutants that reach the decoder.

A corpus of small genuine files of the shipped models (:func:`corpus`: digits of the Z, E8² and Λ24
models, lossy, lossless and with stored pixels; photos of the factorized Z and E8 and the hyperprior E8
models; lossy and lossless text of the E8 text model) is mutated by :func:`mutant`: payload bytes
flipped, set, inserted, deleted or cut; a header field replaced (count, sizes, channels, layout, mode,
lattice spec, seed, model id, the content CRC, a modality's fields); raw header bytes changed; each with
the header and payload CRCs recomputed, so that the entropy decoder and the checks after it see the
mutant; or bytes damaged without resealing, or random bytes after a prefix. :func:`run_fuzz` decodes
each mutant and sorts the outcome: the original output, a one-line library error (by class), an
**undetected change** (a decode that succeeds with another output) or a **bug** (any other exception).
"""

from __future__ import annotations

import dataclasses
import resource
import signal
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.container import pack, unpack
from latcomp.errors import CodecError

MIB = 1 << 20
#: Header fields a mutant may replace, and values to try (a function of the generator and the header).
_FIELDS: dict[str, Callable[[np.random.Generator, Any], Any]] = {
    "count": lambda rng, h: int(rng.choice([1, 2, 3, 7, 1000, 1 << 16, 1 << 20, 1 << 24])),
    "sizes": lambda rng, h: tuple((int(rng.integers(1, 80)), int(rng.integers(1, 80))) for _ in h.sizes),
    "image_shape": lambda rng, h: (0, 0, int(rng.choice([1, 3]))) if h.sizes else
    (int(rng.integers(1, 40)), int(rng.integers(1, 40)), int(rng.integers(1, 5))),
    "layout": lambda rng, h: str(rng.choice(["batch", "flat", "single"])),
    "lossless": lambda rng, h: not h.lossless,
    "stored": lambda rng, h: not h.stored,
    "lattice": lambda rng, h: str(rng.choice(["", "z", "z*8", "e8*1", "e8*2", "e8*16", "leech", "z*128", "d4*2"])),
    "seed": lambda rng, h: int(rng.integers(0, 2**63)),
    "model_id": lambda rng, h: rng.bytes(8),
    "content_crc": lambda rng, h: int(rng.integers(0, 2**32)),
    "fields": lambda rng, h: None if h.fields is None else bytes(_mutated(rng, h.fields)),
}


def _mutated(rng: np.random.Generator, data: bytes) -> bytearray:
    """``data`` with 1 to 3 random edits: a bit flipped, a byte set, bytes inserted or deleted, the tail cut."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind, pos = int(rng.integers(0, 5)), int(rng.integers(0, max(len(out), 1)))
        if kind == 0 and out:
            out[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1 and out:
            out[pos] = int(rng.integers(0, 256))
        elif kind == 2:
            out[pos:pos] = rng.bytes(int(rng.integers(1, 9)))
        elif kind == 3:
            del out[pos:pos + int(rng.integers(1, 9))]
        else:
            del out[pos:]
    return out


def _resealed(data: bytearray, header_bytes: int) -> bytes:
    """``data`` with its payload CRC and its header CRC (at the original header's end) recomputed in place."""
    if len(data) >= header_bytes:
        data[22:26] = struct.pack("<I", zlib.crc32(bytes(data[header_bytes:])))
        data[header_bytes - 4:header_bytes] = struct.pack("<I", zlib.crc32(bytes(data[:header_bytes - 4])))
    return bytes(data)


def mutant(rng: np.random.Generator, data: bytes) -> tuple[str, bytes]:
    """One mutation of the genuine container ``data``: (its kind, the mutant). Resealed kinds recompute every
    CRC but the content CRC (what is left to catch a changed content); a mutation that ``pack`` refuses
    (an impossible header) falls back to a raw, resealed change of the header bytes."""
    header, payload = unpack(data)
    choice = int(rng.integers(0, 10))
    try:
        if choice < 4:
            return "payload, resealed", pack(header, bytes(_mutated(rng, payload)))
        if choice < 7:
            name = list(_FIELDS)[int(rng.integers(0, len(_FIELDS)))]
            value = _FIELDS[name](rng, header)
            extra = {"sizes": ((1, 1),) * value} if name == "count" and header.sizes and value <= 1 << 16 else {}
            return f"header field {name}, resealed", pack(dataclasses.replace(header, **{name: value}, **extra),
                                                          payload)
    except CodecError:
        pass
    if choice < 9:
        raw = bytearray(data)
        for _ in range(int(rng.integers(1, 3))):
            pos = int(rng.integers(4, header.header_bytes - 4))
            raw[pos] = int(rng.integers(0, 256)) if rng.random() < 0.5 else raw[pos] ^ (1 << int(rng.integers(0, 8)))
        return "header bytes, resealed", _resealed(raw, header.header_bytes)
    return "damage, not resealed", bytes(_mutated(rng, data))


def flat(output: Any) -> bytes:
    """A decoded output as bytes to compare: a text's UTF-8, or the raveled values of an array or list of arrays."""
    if isinstance(output, str):
        return output.encode("utf-8")
    parts = output if isinstance(output, list) else [output]
    return b"".join(np.ascontiguousarray(np.ravel(p)).tobytes() for p in parts)


#: How many turns of the fuzz rotation each kind of file gets: a lossless text decode (a GRU over the tokens and
#: the side models of their spelling) costs 10 to 40 times a small photo's or digit's, so text files get one turn
#: in :data:`TEXT_TURNS` of the others'.
TEXT_TURNS = 12


def corpus(repo: Path) -> list[tuple[str, bytes, Callable[[bytes], Any]]]:
    """Small genuine files of every container version and every shipped lattice family: (label, bytes, decode)."""
    from latcomp import codec as digits
    from latcomp.photo import codec as photo
    from latcomp.runtime.model import load_model
    from latcomp.text import codec as text

    def model(name: str) -> Any:
        return load_model(repo / "models" / name)

    rng = np.random.default_rng(2)
    x = (rng.random((3, 28, 28)) < 0.2).astype(np.uint8)
    noise = (rng.random((2, 28, 28)) < 0.5).astype(np.uint8)
    z, e8, leech = model("mnist-lattice-vae"), model("mnist-lattice-vae-e8x2"), model("mnist-lattice-vae-leech24")
    files = [("v1 digits Z lossy", digits.compress(x, z, seed=4), z),
             ("v1 digits Z lossless", digits.compress(x[:1], z, lossless=True, seed=4), z),
             ("v2 digits E8x2 lossless", digits.compress(x[:2], e8, lossless=True, seed=4), e8),
             ("v2 digits E8x2 stored", digits.compress(noise, e8, lossless=True, seed=4), e8),
             ("v2 digits Leech lossy", digits.compress(x[:2], leech, seed=4), leech)]
    out = [(label, data, lambda d, m=m: digits.decompress(d, m)) for label, data, m in files]
    images = [rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)]
    for name, label in (("photo-hyper-q3", "hyperprior E8"), ("photo-q3", "factorized E8"),
                        ("photo-z-q3", "factorized Z")):
        m = model(name)
        out.append((f"v3 photos {label}", photo.compress(images, m, seed=4), lambda d, m=m: photo.decompress(d, m)))
    t = model("text-e8")
    _load_text_model_once(text)
    sentence = "The cat sat.\nTwo, with Caps and 42!\n"
    for lossless in (False, True):
        out.append((f"v4 text E8 {'lossless' if lossless else 'lossy'}", text.compress(sentence, t, lossless, seed=4),
                    lambda d, t=t: text.decompress(d, t)))
    return out


def _load_text_model_once(text: Any) -> None:
    """Make ``latcomp.text.codec`` load a text model's vocabulary once per model, as a long-running decoder would:
    loading it (its statistics, about half a second) at every decode would be most of a text mutant's cost, and
    it depends on the model only, never on the file."""
    loaded: dict[int, Any] = {}
    text_model = text.text_model

    def once(model: Any) -> Any:
        if id(model) not in loaded:
            loaded[id(model)] = text_model(model)
        return loaded[id(model)]

    text.text_model = once


def run_fuzz(files: list[tuple[str, bytes, Callable[[bytes], Any]]], cases: int, seed: int = 12345,
             log: Callable[[str], None] = print, trace: bool = True) -> dict[str, Any]:
    """Decode ``cases`` mutants of ``files`` (in turn) under tracemalloc: outcomes by file and kind of mutation,
    the worst seconds and traced peak of one decode, and the mutants that were undetected changes or bugs (hex)."""
    rng = np.random.default_rng(seed)
    expected = {label: flat(decode(data)) for label, data, decode in files}
    text = [f for f in files if f[0].startswith("v4")]
    rotation = [f for f in files if f not in text] * TEXT_TURNS + text
    by_file: dict[str, dict[str, int]] = {label: {} for label, _, _ in files}
    by_kind: dict[str, dict[str, int]] = {}
    worst = {"seconds": 0.0, "peak_mib": 0.0}
    failures: list[dict[str, str]] = []
    start, cpu = time.perf_counter(), time.process_time()
    if trace:
        tracemalloc.start()
    try:
        for case in range(cases):
            label, data, decode = rotation[case % len(rotation)]
            kind, bad = mutant(rng, data)
            if trace:
                tracemalloc.reset_peak()
            begin = time.perf_counter()
            result = _outcome(decode, bad, expected[label])
            worst["seconds"] = max(worst["seconds"], time.perf_counter() - begin)
            if trace:
                worst["peak_mib"] = max(worst["peak_mib"], tracemalloc.get_traced_memory()[1] / MIB)
            for table, key in ((by_file, label), (by_kind, kind)):
                counts = table.setdefault(key, {})
                counts[result] = counts.get(result, 0) + 1
            if result.startswith(("UNDETECTED", "BUG", "STOPPED")):
                failures.append({"file": label, "kind": kind, "outcome": result, "hex": bad.hex()[:4000]})
            if (case + 1) % 10_000 == 0:
                log(f"fuzz: {case + 1} of {cases} cases, {time.perf_counter() - start:.0f} s")
    finally:
        tracemalloc.stop()
    totals: dict[str, int] = {}
    for counts in by_file.values():
        for result, n in counts.items():
            totals[result] = totals.get(result, 0) + n
    return {"cases": cases, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "outcomes": totals, "by_file": by_file,
            "by_kind": by_kind, "max_seconds": worst["seconds"], "max_peak_mib": worst["peak_mib"] if trace else None,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "failures": failures[:20], "files": {label: len(data) for label, data, _ in files}}


def run_fuzz_sharded(files: list[tuple[str, bytes, Callable[[bytes], Any]]], cases: int, shards: int,
                     log: Callable[[str], None] = print, trace: bool = True) -> dict[str, Any]:
    """:func:`run_fuzz` in ``shards`` forked processes (seeds 12345 + shard, the models loaded once before the fork),
    the cases split between them; their counts added, their worst cases and CPU seconds combined."""
    import multiprocessing

    if shards <= 1:
        return run_fuzz(files, cases, log=log, trace=trace)
    sizes = [cases // shards + (i < cases % shards) for i in range(shards)]
    start = time.perf_counter()
    _FORKED.append(files)  # the forked processes find the files (decoders of loaded models) here
    try:
        with multiprocessing.get_context("fork").Pool(shards) as pool:
            parts = pool.starmap(_shard, [(n, 12345 + i, trace) for i, n in enumerate(sizes)])
    finally:
        _FORKED.clear()
    out = {"cases": cases, "shards": shards, "seconds": time.perf_counter() - start,
           "cpu_seconds": sum(p["cpu_seconds"] for p in parts), "max_seconds": max(p["max_seconds"] for p in parts),
           "max_peak_mib": parts[0]["max_peak_mib"] and max(p["max_peak_mib"] for p in parts),
           "max_rss_mib": max(p["max_rss_mib"] for p in parts), "files": parts[0]["files"],
           "failures": [f for p in parts for f in p["failures"]][:20]}
    for key in ("outcomes", "by_file", "by_kind"):
        out[key] = _added([p[key] for p in parts])
    return out


#: The corpus of the fuzz run in progress, read by its forked processes (:func:`run_fuzz_sharded`).
_FORKED: list[list[tuple[str, bytes, Callable[[bytes], Any]]]] = []


def _shard(cases: int, seed: int, trace: bool) -> dict[str, Any]:
    """One forked process's share of :func:`run_fuzz_sharded`."""
    return run_fuzz(_FORKED[0], cases, seed, log=lambda line: print(f"[seed {seed}] {line}", flush=True), trace=trace)


def _added(tables: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts (nested dicts of ints) added key by key."""
    out: dict[str, Any] = {}
    for table in tables:
        for key, value in table.items():
            out[key] = _added([out.get(key, {}), value]) if isinstance(value, dict) else out.get(key, 0) + value
    return out


#: Wall seconds after which a mutant's decode is stopped and reported (``STOPPED``), so one slow case cannot stall
#: the run.
CASE_LIMIT = 30


class _Stopped(Exception):
    """Raised by the alarm of :func:`_outcome`."""


#: Set by the alarm: the decoder may turn the exception into one of its own errors (the entropy decoder's guard
#: makes any exception a FormatError), so the alarm itself is what tells a stopped case.
_ALARMS: list[int] = []


def _stop(*_: Any) -> None:
    _ALARMS.append(1)
    raise _Stopped


def _outcome(decode: Callable[[bytes], Any], data: bytes, expected: bytes) -> str:
    """What decoding ``data`` gave: ``same output``, ``refused (ErrorClass)``, ``UNDETECTED CHANGE``, ``BUG …``, or
    ``STOPPED`` after :data:`CASE_LIMIT` seconds."""
    previous = signal.signal(signal.SIGALRM, _stop)
    signal.alarm(CASE_LIMIT)
    _ALARMS.clear()
    try:
        output = decode(data)
        result = "same output" if flat(output) == expected else "UNDETECTED CHANGE"
    except _Stopped:
        result = ""
    except CodecError as exc:
        result = f"refused ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - a bug, reported
        result = f"BUG {type(exc).__name__}: {str(exc)[:80]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return f"STOPPED (over {CASE_LIMIT} s)" if _ALARMS else result
