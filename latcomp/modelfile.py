"""Model files: weights in safetensors, everything else in a JSON config.

A model directory holds ``model.safetensors`` (float32 tensors, by parameter
name, plus the frozen entropy-model parameters under ``codec.``) and
``config.json``::

    {"format": "latcomp-model", "format_version": 1,
     "architecture": "lattice-vae", "hparams": {...}, "training": {...}}

Loading never executes code (no pickle): the architecture is looked up by name
among the model families (:mod:`latcomp.families`) and the tensors are read with safetensors. The
numpy loader (:func:`load_weights_numpy`) lets the codec run without torch.

Both loaders read the files the same way: only regular files of bounded size (a
``config.json`` that is a FIFO or a link to ``/dev/zero`` fails at once), checked
against :mod:`latcomp.schema` (config types and ranges, every tensor float32, finite
and of the shape the architecture implies). Every problem is one
:class:`ModelFileError` line naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import site
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import schema
from .families.shapes import CODEC_PREFIX
from .fileio import atomic_write, atomic_write_text
from .schema import FORMAT, FORMAT_VERSION, SchemaError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"

def shipped_model(name: str) -> Path:
    """Where the shipped model ``name`` lies: the checkout's ``models/`` (source or editable install),
    else the data files a wheel installs under ``<prefix>/share/latcomp/`` (pyproject.toml)."""
    relative = Path("models") / name
    checkout = Path(__file__).resolve().parents[1] / relative
    for candidate in (checkout, Path(sys.prefix) / "share" / "latcomp" / relative,
                      Path(site.getuserbase()) / "share" / "latcomp" / relative):
        if (candidate / CONFIG).is_file():
            return candidate
    return checkout


#: The shipped MNIST model, used by ``encode``/``decode``/``bench`` for 28×28 digits when none is named.
DEFAULT_MODEL = shipped_model("mnist-lattice-vae")
#: The shipped text model (E8, 8,000 steps), used by ``encode``/``decode`` for text (``.txt``) when none is named.
DEFAULT_TEXT_MODEL = shipped_model("text-e8")
#: Quality levels of the shipped photo models, low to high rate, and the one ``latcomp encode`` uses
#: unless ``-q`` says otherwise.
PHOTO_QUALITIES = (1, 2, 3, 4, 5)
DEFAULT_PHOTO_QUALITY = 3
#: The shipped photo models of a quality level, by name pattern: the hyperprior models trained on 256² crops
#: (``models/photo-hyper2-q1`` …), which ``latcomp encode -q N`` writes, then the models of earlier releases,
#: kept so that their files keep decoding: the hyperprior models trained on 128² crops (``models/photo-hyper-q1``
#: …) and the factorized-prior models (``models/photo-q1`` …).
PHOTO_MODEL_NAMES = ("photo-hyper2-q{}", "photo-hyper-q{}", "photo-q{}")


def shipped_photo_models() -> list[Path]:
    """The directories of the shipped photo models, the default (:data:`PHOTO_MODEL_NAMES`) first."""
    return [shipped_model(name.format(quality)) for name in PHOTO_MODEL_NAMES for quality in PHOTO_QUALITIES]


def shipped_directory(model_id: bytes) -> Path | None:
    """The shipped model whose id ``model_id`` is (the first bytes of SHA-256 of its weights file), or None;
    reads every shipped weights file (about 50 MB) once per process and version of the file: for messages and
    ``latcomp info``, not for coding, so that a stream of files naming other models costs a stat per model."""
    for directory in shipped_models():
        try:
            info = (directory / WEIGHTS).stat()
            digest = _weights_digest(directory / WEIGHTS, info.st_mtime_ns, info.st_size)
        except OSError:
            continue
        if model_id and digest[:len(model_id)] == model_id:
            return directory
    return None


@functools.lru_cache(maxsize=256)
def _weights_digest(path: Path, mtime_ns: int, size: int) -> bytes:
    """SHA-256 of the weights file ``path`` as it is at (``mtime_ns``, ``size``), the key of the cache."""
    return hashlib.sha256(path.read_bytes()).digest()


def shipped_label(directory: Path) -> str:
    """How a message names a shipped model: ``models/NAME``, and a photo model's quality level (``-q``), of an
    earlier release unless it is the one ``-q`` writes now."""
    levels = [(q, i) for q in PHOTO_QUALITIES for i, name in enumerate(PHOTO_MODEL_NAMES)
              if directory.name == name.format(q)]
    if not levels:
        return f"models/{directory.name}"
    quality, release = levels[0]
    return f"models/{directory.name}, photo quality {quality}" + (" of an earlier release" if release else "")


def shipped_models() -> list[Path]:
    """The directories of the shipped models: the MNIST default, then the photo models."""
    return [DEFAULT_MODEL, *shipped_photo_models()]


class ModelFileError(Exception):
    """A model directory is missing, incomplete or of an unknown format."""


def save_model(model: Any, directory: str | Path, training: dict[str, Any] | None = None) -> None:
    """Write ``model`` (a latcomp torch model) as safetensors + config.json, atomically each."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tensors.update({CODEC_PREFIX + k: v.contiguous() for k, v in model.codec_tensors().items()})
    atomic_write(directory / WEIGHTS, lambda tmp: save_file(tensors, str(tmp)))
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "architecture": model.architecture, "hparams": model.hparams,
              "training": training or {}}
    atomic_write_text(directory / CONFIG, json.dumps(config, indent=2) + "\n")


def read_config(directory: str | Path) -> dict[str, Any]:
    """Read and validate a model directory's config.json (:func:`latcomp.schema.parse_config`)."""
    path = Path(directory) / CONFIG
    raw = _read_regular_file(path, schema.MAX_CONFIG_BYTES,
                             missing=f"no such model config (is {directory} a latcomp model directory?)")
    try:
        return schema.parse_config(raw)
    except SchemaError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def load_model(directory: str | Path = DEFAULT_MODEL) -> Any:
    """Build the torch model named by the config and load its validated weights (no code execution)."""
    import torch

    from latcomp.nn.registry import build_model

    config = read_config(directory)
    tensors, _ = _read_weights(directory, config)
    model = build_model(config["architecture"], **config["hparams"])
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()
                           if not k.startswith(CODEC_PREFIX)})
    return model.eval()


def load_weights_numpy(directory: str | Path = DEFAULT_MODEL) -> tuple[dict[str, np.ndarray], str]:
    """The model's validated tensors as numpy arrays and the SHA-256 of the weights file, without torch.

    The digest is the model identity stored in compressed files; both come from
    one read of the file.
    """
    return _read_weights(directory, read_config(directory))


def _read_weights(directory: str | Path, config: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
    """Read the weights file once, check it against the (validated) config, return tensors and digest."""
    from safetensors.numpy import load

    path = Path(directory) / WEIGHTS
    shapes = schema.expected_tensors(config["architecture"], config["hparams"])
    raw = _read_regular_file(path, schema.max_weights_bytes(shapes), missing="model weights are missing")
    try:
        tensors = load(raw)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelFileError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    try:
        schema.check_tensors(shapes, tensors)
    except SchemaError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return tensors, hashlib.sha256(raw).hexdigest()


def read_model_file(directory: str | Path, name: str) -> bytes:
    """The bytes of a further file ``name`` of a model directory (a regular file of at most
    :data:`latcomp.schema.MAX_CONFIG_BYTES`; ModelFileError otherwise)."""
    return _read_regular_file(Path(directory) / name, schema.MAX_CONFIG_BYTES, missing="missing from the model")


def _read_regular_file(path: Path, limit: int, missing: str) -> bytes:
    """The bytes of ``path``, a regular file (symbolic links followed) of at most ``limit`` bytes.

    Opened non-blocking so that a FIFO cannot hang the open; devices, FIFOs and
    directories are refused before anything is read.
    """
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ModelFileError(f"{path}: not a regular file")
            if info.st_size > limit:
                raise ModelFileError(f"{path}: {info.st_size} bytes, more than the limit of {limit}")
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: {missing}") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > limit:  # the file grew after fstat
        raise ModelFileError(f"{path}: more than the limit of {limit} bytes")
    return data
