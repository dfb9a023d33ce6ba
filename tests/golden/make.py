"""Write the golden files: every shipped model that writes files, its bytes and its decoded output.

Run once, before a change that must leave files unchanged (``python tests/golden/make.py``);
``tests/test_golden.py`` then checks that every model still encodes the committed inputs to the
committed bytes and decodes every committed file to the committed output. Inputs are stored
too (``inputs.npz``), so the check needs no random generator to stay stable.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from latcomp import codec  # noqa: E402
from latcomp.modelfile import read_config  # noqa: E402
from latcomp.photo import codec as photo_codec  # noqa: E402

#: The fixed dither seed of every golden file.
SEED = 0x5EED_1A7C_0123_4567


def digest(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(array)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def output_digest(decoded) -> str:
    return digest(decoded) if isinstance(decoded, np.ndarray) else \
        hashlib.sha256("".join(digest(a) for a in decoded).encode()).hexdigest()


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261202)
    templates = rng.random((3, 784)) < 0.15
    digits = (templates[rng.integers(0, 3, 6)] ^ (rng.random((6, 784)) < 0.03)).astype(np.uint8)
    y, x = np.mgrid[:40, :56]
    smooth = np.dstack([3 * x + 20, 5 * y + 10, 220 - 2 * x - y])
    rgb_a = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
    rgb_b = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    gray = np.clip(4 * x[:33, :29] + 3 * y[:33, :29] + rng.normal(0, 4, (33, 29)), 0, 255).astype(np.uint8)
    return {"digits": digits.reshape(6, 28, 28), "rgb_a": rgb_a, "rgb_b": rgb_b, "gray": gray}


def shipped_models() -> list[tuple[str, str]]:
    """(model directory relative to the repository, kind) of every committed model the codecs load."""
    found = []
    for config in sorted((REPO / "models").rglob("config.json")):
        directory = config.parent
        if not (directory / "model.safetensors").exists():
            continue
        architecture = read_config(directory).get("architecture")
        kind = {"lattice-vae": "digits", "photo-factorized": "photo", "photo-hyperprior": "photo"}.get(architecture)
        if kind:
            found.append((str(directory.relative_to(REPO)), kind))
    return found


def cases(data: dict[str, np.ndarray]) -> list[dict]:
    """Every golden file: its name, model, kind and coding options."""
    out = []
    for model, kind in shipped_models():
        stem = model.removeprefix("models/").replace("/", "--")
        if kind == "digits":
            out += [{"file": f"{stem}.lossy.lat", "model": model, "kind": kind, "lossless": False},
                    {"file": f"{stem}.lossless.lat", "model": model, "kind": kind, "lossless": True}]
        else:
            out += [{"file": f"{stem}.rgb.lat", "model": model, "kind": kind, "images": ["rgb_a", "rgb_b"]},
                    {"file": f"{stem}.gray.lat", "model": model, "kind": kind, "images": ["gray"]}]
    return out


def encode(case: dict, data: dict[str, np.ndarray], repo: Path = REPO) -> bytes:
    model = repo / case["model"]
    if case["kind"] == "digits":
        return codec.compress(data["digits"], model, lossless=case["lossless"], seed=SEED)
    images = [data[name] for name in case["images"]]
    return photo_codec.compress(images if len(images) > 1 else images[0], model, seed=SEED)


def decode(case: dict, blob: bytes, repo: Path = REPO):
    model = repo / case["model"]
    if case["kind"] == "digits":
        return codec.decompress(blob, model)
    return photo_codec.decompress(blob, model)


def main() -> None:
    data = inputs()
    np.savez_compressed(HERE / "inputs.npz", **data)
    data = dict(np.load(HERE / "inputs.npz"))
    manifest = []
    for case in cases(data):
        blob = encode(case, data)
        (HERE / case["file"]).write_bytes(blob)
        manifest.append({**case, "sha256": hashlib.sha256(blob).hexdigest(),
                         "decoded_sha256": output_digest(decode(case, blob))})
        print(case["file"], len(blob))
    (HERE / "manifest.json").write_text(json.dumps({"seed": SEED, "files": manifest}, indent=1) + "\n")


if __name__ == "__main__":
    main()
