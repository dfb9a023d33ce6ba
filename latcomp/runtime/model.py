"""A model directory ready for coding, without torch: identity, the family's runtime, the latent codec.

:func:`load_model` reads the weights file once (its SHA-256 is the model identity, the first
8 bytes of which every file records) and builds the family's torch-free runtime
(:attr:`latcomp.families.Family.runtime`) from the same bytes; :func:`check_model` refuses a
file of another model or lattice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union

from latcomp.container import MODEL_ID_BYTES, Header
from latcomp.errors import ModelMismatchError
from latcomp.families import Family, FamilyError, ModelShapeError, family
from latcomp.latent_codecs import LatentCodec
from latcomp.modelfile import (
    DEFAULT_MODEL,
    WEIGHTS,
    ModelFileError,
    load_weights_numpy,
    read_config,
    read_model_file,
    shipped_directory,
    shipped_label,
)


class Runtime(Protocol):
    """What the core needs from a family's torch-free runtime (the modality's codec needs more)."""

    #: The latent codec (lattice, scales, prior, entropy model) from the frozen float32 tensors.
    latent: LatentCodec


ModelLike = Union[str, os.PathLike, "LoadedModel"]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for coding: its family's runtime, the latent codec and the model's identity."""

    directory: Path
    #: SHA-256 (hex) of the weights file (and of the family's further files); its first 8 bytes are stored in
    #: every file.
    digest: str
    family: Family
    net: Any
    latent: LatentCodec

    @property
    def model_id(self) -> bytes:
        return bytes.fromhex(self.digest)[:MODEL_ID_BYTES]

    @property
    def modality(self) -> str:
        return self.family.modality

    @property
    def header_lattice(self) -> str:
        """The lattice spec a file of this model records: "" (format version 1) for the rectangular lattice."""
        lattice = self.latent.lattice
        return "" if set(lattice.names) == {"z"} else lattice.spec


_CACHE: dict[tuple, LoadedModel] = {}


def build_numpy_model(architecture: str, weights: dict[str, Any], hparams: dict[str, Any]) -> Any:
    """The torch-free runtime of ``architecture`` built from a model's tensors (ModelShapeError if it has none)."""
    try:
        runtime = family(architecture).runtime_class()
    except FamilyError as exc:
        raise ModelShapeError(str(exc)) from None
    return runtime(weights, hparams)


def _stat(path: Path) -> tuple[int, ...]:
    try:
        st = path.stat()
    except OSError:
        return ()
    return st.st_ino, st.st_mtime_ns, st.st_size


def _identity(directory: Path, weights_digest: str, files: tuple[str, ...]) -> str:
    """The model's SHA-256: the weights file's, or for a family with further files (``Family.files``) the
    SHA-256 of the weights' digest and each file's, so that a changed vocabulary is another model."""
    if not files:
        return weights_digest
    identity = hashlib.sha256(bytes.fromhex(weights_digest))
    for name in files:
        identity.update(hashlib.sha256(read_model_file(directory, name)).digest())
    return identity.hexdigest()


def load_model(model: ModelLike = DEFAULT_MODEL) -> LoadedModel:
    """Load a model directory for coding, without torch (cached while the files are unchanged).

    The weights file is read once: its SHA-256 is the model identity and the
    tensors come from the same bytes (safetensors, no code execution).
    """
    if isinstance(model, LoadedModel):
        return model
    directory = Path(model)
    path = directory / WEIGHTS
    config = read_config(directory)
    try:
        st = path.stat()
    except OSError:
        raise ModelFileError(f"{path}: model weights are missing") from None
    key = (str(directory.resolve()), st.st_ino, st.st_mtime_ns, st.st_size, repr(config),
           tuple(_stat(directory / name) for name in family(config["architecture"]).files))
    if key in _CACHE:
        return _CACHE[key]
    weights, digest = load_weights_numpy(directory)
    digest = _identity(directory, digest, family(config["architecture"]).files)
    try:
        net = build_numpy_model(config.get("architecture"), weights, config.get("hparams") or {})
    except (ModelShapeError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{directory}: cannot use this model for coding ({exc})") from None
    loaded = LoadedModel(directory, digest, family(config["architecture"]), net, net.latent)
    if len(_CACHE) >= 4:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = loaded
    return loaded


def shipped_name(model_id: bytes) -> str:
    """`` (models/NAME[, photo quality N])`` if ``model_id`` is that of a shipped model (the MNIST default, a
    photo quality level), else "" (reads the shipped weights files: for error messages only)."""
    directory = shipped_directory(model_id)
    return f" ({shipped_label(directory)})" if directory else ""


def check_model(header: Header, m: LoadedModel) -> None:
    """Refuse (ModelMismatchError) a file written with another model or on another lattice; a file of a shipped
    model is named by its directory."""
    if header.model_id != m.model_id:
        raise ModelMismatchError(f"the file was encoded with model {header.model_id.hex()}"
                                 f"{shipped_name(header.model_id)}, but {m.directory} is model "
                                 f"{m.model_id.hex()}; decode with the same model")
    if header.lattice not in (m.header_lattice, m.latent.lattice.spec):
        raise ModelMismatchError(f"the file was coded on lattice {header.lattice or 'z (rectangular)'}, but "
                                 f"{m.directory} uses {m.latent.lattice.spec}")
