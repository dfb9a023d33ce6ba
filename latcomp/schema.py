"""What a model directory may contain, checked in one place for every loader.

A model's ``config.json`` and ``model.safetensors`` come from outside (a download,
another user, a damaged disk). Both loaders, the torch one
(:func:`latcomp.modelfile.load_model`) and the codec's numpy one
(:func:`latcomp.codec.load_model`, through :func:`latcomp.modelfile.load_weights_numpy`),
validate them here before anything is built from them:

* the JSON is at most :data:`MAX_CONFIG_BYTES` and :data:`MAX_JSON_DEPTH` levels deep
  (checked before parsing, so deep nesting cannot exhaust the stack);
* the architecture is a registered model family (:mod:`latcomp.families`) and ``hparams`` has
  exactly its keys, with the types and ranges of its spec (integers bounded, λ finite and positive,
  a valid lattice spec);
* the weights file holds exactly the tensors the family's spec implies
  (:func:`expected_tensors`), each float32, finite and of the implied shape, and is no
  larger than those tensors plus :data:`MAX_HEADER_BYTES`.

Every check raises :class:`SchemaError` with a one-line description of the problem;
:mod:`latcomp.modelfile` adds the file's name. No torch here: the codec runs without it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from latcomp.families import FamilyError, families, family, show_value
from latcomp.families import check_hparams as check_family_hparams

FORMAT = "latcomp-model"
FORMAT_VERSION = 1

MAX_CONFIG_BYTES = 1 << 20
MAX_JSON_DEPTH = 16
#: Room for the safetensors header (names, shapes, offsets) on top of the tensor bytes.
MAX_HEADER_BYTES = 1 << 20
#: The names of the registered model families (:mod:`latcomp.families`).
ARCHITECTURES = tuple(families())
_TOP_LEVEL = {"format", "format_version", "architecture", "hparams", "training"}


class SchemaError(Exception):
    """A model config or weights file breaks the schema; the message names the problem, not the file."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", re.sub(r'"(?:[^"\\]|\\.)*"', "", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_config(raw: bytes) -> dict[str, Any]:
    """Parse and check a ``config.json``: size, depth, format and version, architecture and hparams."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise SchemaError(f"{len(raw)} bytes, more than the {MAX_CONFIG_BYTES} a model config may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError("not UTF-8 text") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise SchemaError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise SchemaError("not a latcomp model config")
    if config.get("format_version") != FORMAT_VERSION:
        raise SchemaError(f"model format version {show_value(config.get('format_version'))} is not supported "
                          f"(this latcomp reads version {FORMAT_VERSION})")
    unknown = sorted(set(config) - _TOP_LEVEL)
    if unknown:
        raise SchemaError(f"unexpected keys {show_value(unknown, 80)}")
    check_hparams(config.get("architecture"), config.get("hparams"))
    if not isinstance(config.get("training", {}), dict):
        raise SchemaError("training must be an object")
    return config


def check_hparams(architecture: Any, hparams: Any) -> None:
    """Check an architecture name and its hyper-parameters against its family's spec (keys, types, ranges,
    lattice spec)."""
    try:
        check_family_hparams(family(architecture), hparams)
    except FamilyError as exc:
        raise SchemaError(str(exc)) from None


def expected_tensors(architecture: str, hparams: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor in the weights file of a model with valid (checked) hparams."""
    return family(architecture).tensors(hparams)


def max_weights_bytes(shapes: dict[str, tuple[int, ...]]) -> int:
    """The largest weights file these tensors can make: float32 data plus a header allowance."""
    return 4 * sum(math.prod(shape) for shape in shapes.values()) + MAX_HEADER_BYTES


def check_tensors(shapes: dict[str, tuple[int, ...]], tensors: dict[str, np.ndarray]) -> None:
    """Exactly the tensors of ``shapes``, each float32, of that shape and finite."""
    missing = [name for name in shapes if name not in tensors]
    unexpected = [name for name in tensors if name not in shapes]
    if missing or unexpected:
        problems = ([f"missing {show_value(missing, 80)}"] if missing else []) + \
            ([f"unexpected {show_value(unexpected, 80)}"] if unexpected else [])
        raise SchemaError(f"the weights do not match the config: {'; '.join(problems)}")
    for name, shape in shapes.items():
        tensor = tensors[name]
        if tensor.dtype != np.float32:
            raise SchemaError(f"tensor {name} is {tensor.dtype}, not float32")
        if tensor.shape != shape:
            raise SchemaError(f"tensor {name} has shape {tensor.shape}; the config implies {shape} "
                              f"(the weights do not match the config)")
        if not np.isfinite(tensor).all():
            raise SchemaError(f"tensor {name} has non-finite values (NaN or infinity)")
