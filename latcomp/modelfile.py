"""Model files: weights in safetensors, everything else in a JSON config.

A model directory holds ``model.safetensors`` (float32 tensors, by parameter
name, plus the frozen entropy-model parameters under ``codec.``) and
``config.json``::

    {"format": "latcomp-model", "format_version": 1,
     "architecture": "lattice-vae", "hparams": {...}, "training": {...}}

Loading never executes code (no pickle): the architecture is looked up by name
in :data:`latcomp.registry.MODELS` and the tensors are read with safetensors. The
numpy loader (:func:`load_weights_numpy`) lets the codec run without torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write, atomic_write_text

FORMAT = "latcomp-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
#: Prefix of the frozen entropy-model tensors (``model.codec_tensors()``) in the weights file.
CODEC_PREFIX = "codec."

#: The shipped default model, used by ``encode``/``decode``/``bench`` when none is named.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "mnist-lattice-vae"


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
    """Read and validate a model directory's config.json."""
    path = Path(directory) / CONFIG
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model config (is {directory} a latcomp model directory?)") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: unreadable model config ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a latcomp model config")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {config.get('format_version')!r} "
                             f"is not supported (this latcomp reads version {FORMAT_VERSION})")
    return config


def load_model(directory: str | Path = DEFAULT_MODEL) -> Any:
    """Build the torch model named by the config and load its weights (no code execution)."""
    from safetensors.torch import load_file

    from latcomp.nn.registry import build_model

    config = read_config(directory)
    model = build_model(config["architecture"], **config["hparams"])
    tensors = _read_tensors(directory, load_file)
    try:
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith(CODEC_PREFIX)})
    except RuntimeError as exc:
        raise ModelFileError(f"{_weights_path(directory)}: weights do not match the config "
                             f"({str(exc).splitlines()[0]})") from None
    return model.eval()


def load_weights_numpy(directory: str | Path = DEFAULT_MODEL) -> tuple[dict[str, np.ndarray], str]:
    """The model's tensors as numpy arrays and the SHA-256 of the weights file, without torch.

    The digest is the model identity stored in compressed files; both come from
    one read of the file.
    """
    from safetensors.numpy import load

    path = _weights_path(directory)
    raw = path.read_bytes()
    return _read_tensors(directory, lambda _: load(raw)), hashlib.sha256(raw).hexdigest()


def _read_tensors(directory: str | Path, load_file: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Read the weights with a safetensors loader, reporting a damaged file as ModelFileError."""
    path = _weights_path(directory)
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from None


def _weights_path(directory: str | Path) -> Path:
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise ModelFileError(f"{path}: model weights are missing")
    return path
