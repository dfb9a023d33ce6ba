"""Hostile files of every container version against genuine ones: what each costs to decode in a fresh process.

The hostile-file bombs (:func:`bombs`): photo files (version 3) of many 1×1 images, with random payloads or
a genuine stream whose content CRC is wrong; a photo header of 2^24 sizes whose CRC is wrong; Λ24 digit files
(version 2) of random payloads at the least size their claim allows; text files (version 4) likewise. The
genuine files (:func:`genuine_files`): a Kodak photo with each kind of shipped photo model, the MNIST test
digits with the Z and Λ24 models, sentences of the text corpus with the E8 text model; their cost per byte
is the yardstick of the rule "a hostile file costs at most what a genuine file of its size costs".

Each file is decoded by :func:`decode_process`: a fresh interpreter (``PYTHONPATH`` = the code measured, so
the same files can be decoded by the code before a change) that calls the library's ``decompress``; its wall
time, maximum resident set size (VmHWM) and outcome are recorded.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.hostile import random_payload
from latcomp.container import MAX_PHOTO_ROWS, pack, unpack

#: Decodes FILE with the model directory MODEL by the modality's ``decompress`` (``unpack`` for ``container``)
#: and prints the outcome and VmHWM (kB): run by :func:`decode_process` in a fresh interpreter.
_DECODE = """
import sys
kind, model, path = sys.argv[1:4]
data = open(path, 'rb').read()
try:
    if kind == 'container':
        from latcomp.container import unpack
        unpack(data)
    else:
        import importlib
        names = {'photo': ['latcomp.photo.codec'], 'digits': ['latcomp.codec', 'latcomp.digits.codec'],
                 'text': ['latcomp.text.codec']}[kind]
        for name in names:  # the digits codec of older code is latcomp.digits.codec
            try:
                module = importlib.import_module(name)
                break
            except ImportError:
                continue
        module.decompress(data, model)
    outcome = 'ok'
except Exception as exc:
    outcome = type(exc).__name__ + ': ' + str(exc)[:160]
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
print('OUTCOME', outcome)
print('CPU', usage.ru_utime + usage.ru_stime)
print('MAXRSS', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])
"""


def decode_process(kind: str, model: str, path: Path, code: Path, timeout: float) -> dict[str, Any]:
    """Decode ``path`` (a ``kind`` of file: photo, digits, text, container) with the code at ``code`` in a fresh
    interpreter: its outcome, wall and CPU seconds (CPU: what a loaded machine changes least) and maximum RSS
    (MiB); ``timed out`` after ``timeout`` seconds."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _DECODE, kind, model, str(path)], capture_output=True,
                              text=True, env=env, cwd=code, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"outcome": f"timed out (stopped after {timeout:.0f} s)", "process_seconds": timeout}
    seconds = time.perf_counter() - start
    found = re.search(r"^OUTCOME (.*)\nCPU (.*)\nMAXRSS (\d+)$", proc.stdout, re.MULTILINE)
    if not found:
        return {"outcome": f"crashed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}",
                "process_seconds": seconds}
    return {"outcome": found.group(1), "process_seconds": seconds, "process_cpu_seconds": float(found.group(2)),
            "process_max_rss_mib": int(found.group(3)) / 1024}


def _tiny_photos(data: bytes, count: int, payload: bytes) -> bytes:
    """The photo file ``data`` re-packed (every CRC valid) claiming ``count`` images of 1×1 with ``payload``."""
    header, _ = unpack(data)
    return pack(dataclasses.replace(header, count=count, layout="batch", sizes=((1, 1),) * count), payload)


def _least_payload(count: int, bits_per_item: float) -> int:
    """The fewest payload bytes whose claim check lets ``count`` items of ``bits_per_item`` bits pass."""
    return max(int(np.ceil((count * bits_per_item - 64) / 8)), 1)


def bombs(repo: Path, log: Callable[[str], None], want: Callable[[str], bool] = lambda name: True
          ) -> dict[str, tuple[str, str, bytes]]:
    """The hostile files: case name → (kind, model directory, file bytes). Made with the code
    imported here (``pack`` writes what any version of the reader parses); the costly ones only if ``want``
    their name."""
    from latcomp import codec as digits
    from latcomp.photo import codec as photo
    from latcomp.runtime.model import load_model
    from latcomp.text import codec as text

    out: dict[str, tuple[str, str, bytes]] = {}
    q5, q1 = str(repo / "models/photo-hyper-q5"), str(repo / "models/photo-hyper-q1")
    black = np.zeros((1, 1, 3), np.uint8)
    one = photo.compress(black, q5, seed=1)
    log("photo bombs")
    out["2^20 photos of 1×1, a random 5.8 MB payload (hyper q5)"] = (
        "photo", q5, _tiny_photos(one, 1 << 20, random_payload(5_800_000)))
    name = "2^24 photos of 1×1, a random payload, 92 MB (hyper q5)"
    if want(name):
        out[name] = ("photo", q5, _tiny_photos(one, 1 << 24, random_payload(92_000_000 - 2 * (1 << 24))))
    net = load_model(q1).net
    rows = MAX_PHOTO_ROWS
    least = _least_payload(rows, net.latent.min_bits_per_item() + net.hyper.min_bits_per_item())
    out[f"2^{rows.bit_length() - 1} photos of 1×1 (the most a file holds), the least random payload "
        f"({least:,} bytes, hyper q1)"] = (
        "photo", q1, _tiny_photos(photo.compress(black, q1, seed=1), rows, random_payload(least)))
    one_q1 = unpack(photo.compress(black, q1, seed=1))[0]
    for height, width in ((8192, 8192), (4096, 8192)):
        name = f"one {width}×{height} photo claimed, a random 1 MB payload (hyper q1)"
        out[name] = ("photo", q1, pack(dataclasses.replace(one_q1, sizes=((height, width),)),
                                       random_payload(1_000_000)))
    names = ("a genuine file of 20,000 photos of 1×1 (hyper q5)", "the same file, its content CRC wrong")
    if any(map(want, names)):
        log("20,000 photos of 1×1 (encoding them)")
        rng = np.random.default_rng(5)
        genuine = photo.compress([rng.integers(0, 256, (1, 1, 3), dtype=np.uint8) for _ in range(20_000)], q5,
                                 seed=1)
        header, payload = unpack(genuine)
        out[names[0]] = ("photo", q5, genuine)
        out[names[1]] = ("photo", q5, pack(dataclasses.replace(header, content_crc=header.content_crc ^ 1), payload))
    name = "a header of 2^24 photo sizes, its CRC wrong (unpack)"
    if want(name):
        sizes = _tiny_photos(one, 1 << 24, b"\x01")
        crc = len(sizes) - 2  # the last byte of the header CRC (before the one payload byte)
        out[name] = ("container", "", sizes[:crc] + bytes([sizes[crc] ^ 1]) + sizes[crc + 1:])
    log("digit and text bombs")
    leech = str(repo / "models/mnist-lattice-vae-leech24")
    leech_bits = load_model(leech).latent.min_bits_per_item()
    lossy = digits.compress(np.zeros((1, 28, 28), np.uint8), leech, seed=1)
    for count in (10_000, digits.MAX_PIXELS // 784):
        size = _least_payload(count, leech_bits)
        out[f"Λ24 digits: {count:,} claimed, the least random payload ({size:,} bytes)"] = (
            "digits", leech, pack(dataclasses.replace(unpack(lossy)[0], count=count, layout="batch"),
                                  random_payload(size)))
    t = str(repo / "models/text-e8")
    text_bits = load_model(t).latent.min_bits_per_item()
    small = text.compress("a line\n", t, seed=1)
    for count in (1 << 14, text.MAX_LINES):
        size = _least_payload(count, text_bits)
        out[f"text: {count:,} lines claimed, the least random payload ({size:,} bytes, E8)"] = (
            "text", t, pack(dataclasses.replace(unpack(small)[0], count=count), random_payload(size)))
    return {name: case for name, case in out.items() if want(name)}


def genuine_files(repo: Path, data_dir: Path, log: Callable[[str], None],
                  want: Callable[[str], bool] = lambda name: True) -> dict[str, tuple[str, str, bytes, int]]:
    """Genuine files of each kind of shipped model: name → (kind, model directory, bytes, latent rows or items),
    those whose name ``want`` s."""
    from PIL import Image

    from latcomp import codec as digits
    from latcomp.data import load_dataset
    from latcomp.families.photo import latent_size
    from latcomp.photo import codec as photo
    from latcomp.text import codec as text

    log("genuine files")
    out: dict[str, tuple[str, str, bytes, int]] = {}
    with Image.open(data_dir / "kodak" / "kodim01.png") as img:
        kodak = np.asarray(img.convert("RGB"))
    rows = int(np.prod(latent_size(*kodak.shape[:2])))
    for name in ("photo-hyper-q1", "photo-hyper-q5", "photo-q5", "photo-z-q5"):
        model = str(repo / "models" / name)
        if want(f"Kodak kodim01 ({name})"):
            out[f"Kodak kodim01 ({name})"] = ("photo", model, photo.compress(kodak, model, seed=1), rows)
    x = np.asarray(load_dataset("binarized-mnist", "test", data_dir)[:5000]).reshape(-1, 28, 28).astype(np.uint8)
    for name in ("mnist-lattice-vae", "mnist-lattice-vae-leech24"):
        model = str(repo / "models" / name)
        if want(f"5,000 MNIST test digits, lossy ({name})"):
            out[f"5,000 MNIST test digits, lossy ({name})"] = ("digits", model, digits.compress(x, model, seed=1),
                                                               len(x))
    lines = (data_dir / "text" / "valid.raw.txt").read_text(encoding="utf-8").splitlines()[:300]
    model = str(repo / "models/text-e8")
    if want("300 sentences of valid.raw.txt, lossy (text-e8)"):
        out["300 sentences of valid.raw.txt, lossy (text-e8)"] = (
            "text", model, text.compress("\n".join(lines) + "\n", model, seed=1), len(lines))
    return {name: case for name, case in out.items() if want(name)}
