"""What a model directory may contain, checked in one place for every loader.

A model's ``config.json`` and ``model.safetensors`` come from outside (a download,
another user, a damaged disk). Both loaders, the torch one
(:func:`latcomp.modelfile.load_model`) and the codec's numpy one
(:func:`latcomp.codec.load_model`, through :func:`latcomp.modelfile.load_weights_numpy`),
validate them here before anything is built from them:

* the JSON is at most :data:`MAX_CONFIG_BYTES` and :data:`MAX_JSON_DEPTH` levels deep
  (checked before parsing, so deep nesting cannot exhaust the stack);
* the architecture is a known name and ``hparams`` has exactly its keys, with the right
  types and bounded values (:data:`INT_LIMITS`; λ finite and positive; a valid lattice spec);
* the weights file holds exactly the tensors the architecture implies
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

from latcomp.lattices.product import parse_spec

FORMAT = "latcomp-model"
FORMAT_VERSION = 1
#: Prefix of the frozen entropy-model tensors (``model.codec_tensors()``) in the weights file.
CODEC_PREFIX = "codec."

MAX_CONFIG_BYTES = 1 << 20
MAX_JSON_DEPTH = 16
#: Room for the safetensors header (names, shapes, offsets) on top of the tensor bytes.
MAX_HEADER_BYTES = 1 << 20
#: Inclusive upper bounds of the integer hyper-parameters (all must be ≥ 1).
INT_LIMITS = {"data_dim": 1 << 20, "hidden": 1 << 16, "latent": 4096, "levels": 1 << 16, "channels": 4096}
MAX_LATTICE_SPEC = 1000

_MNIST = ("data_dim", "hidden", "latent", "lam")
#: Architecture → (required hparams, optional hparams). A lattice-vae file without
#: "lattice" predates lattices other than Z and means the rectangular lattice.
ARCHITECTURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gaussian": (_MNIST, ()),
    "gaussian-lattice": (_MNIST, ()),
    "lattice-vae": (_MNIST, ("lattice",)),
    "st-scalar": ((*_MNIST, "levels"), ()),
    "st-vector": ((*_MNIST, "levels"), ()),
    "photo-factorized": (("channels", "latent", "lam", "lattice"), ()),
    "photo-hyperprior": (("channels", "latent", "lam", "lattice"), ()),
}
#: Architectures whose latent is a dithered lattice with the hparam "lattice".
LATTICE_ARCHITECTURES = ("lattice-vae", "photo-factorized", "photo-hyperprior")
#: Dimension k of one quantizer word of the straight-through models (latent must be a multiple).
WORD_DIM = {"st-scalar": 1, "st-vector": 2}
_TOP_LEVEL = {"format", "format_version", "architecture", "hparams", "training"}


class SchemaError(Exception):
    """A model config or weights file breaks the schema; the message names the problem, not the file."""


def _show(value: Any, limit: int = 40) -> str:
    """A short one-line repr of a value from a file (which may be huge or contain newlines)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


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
        raise SchemaError(f"model format version {_show(config.get('format_version'))} is not supported "
                          f"(this latcomp reads version {FORMAT_VERSION})")
    unknown = sorted(set(config) - _TOP_LEVEL)
    if unknown:
        raise SchemaError(f"unexpected keys {_show(unknown, 80)}")
    check_hparams(config.get("architecture"), config.get("hparams"))
    if not isinstance(config.get("training", {}), dict):
        raise SchemaError("training must be an object")
    return config


def check_hparams(architecture: Any, hparams: Any) -> None:
    """Check an architecture name and its hyper-parameters (keys, types, ranges, lattice spec)."""
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise SchemaError(f"unknown architecture {_show(architecture)}; known: {', '.join(ARCHITECTURES)}")
    if not isinstance(hparams, dict):
        raise SchemaError("hparams must be an object")
    required, optional = ARCHITECTURES[architecture]
    missing = [k for k in required if k not in hparams]
    unexpected = [k for k in hparams if k not in required + optional]
    if missing or unexpected:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
            ([f"unexpected {_show(unexpected, 80)}"] if unexpected else [])
        raise SchemaError(f"hparams of {architecture}: {'; '.join(problems)}")
    for key, limit in INT_LIMITS.items():
        value = hparams.get(key, 1)
        if type(value) is not int or not 1 <= value <= limit:
            raise SchemaError(f"hparams.{key} must be an integer from 1 to {limit}, got {_show(value)}")
    lam = hparams["lam"]
    if type(lam) not in (int, float) or not (math.isfinite(lam) and lam > 0):
        raise SchemaError(f"hparams.lam must be a finite positive number, got {_show(lam)}")
    if hparams["latent"] % WORD_DIM.get(architecture, 1):
        raise SchemaError(f"hparams.latent of {architecture} must be a multiple of {WORD_DIM[architecture]}")
    if architecture in LATTICE_ARCHITECTURES:
        lattice = hparams.get("lattice", "z")
        if not isinstance(lattice, str) or len(lattice) > MAX_LATTICE_SPEC:
            raise SchemaError(f"hparams.lattice must be a lattice spec string, got {_show(lattice)}")
        try:
            parse_spec(lattice, hparams["latent"])
        except ValueError as exc:
            raise SchemaError(f"hparams.lattice: {exc}") from None


def _gated_mlp(prefix: str, sizes: list[int]) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of :func:`latcomp.nn.layers.gated_mlp` (gated layers h, g, then a linear layer)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1], strict=True)):
        for gate in "hg":
            shapes.update({f"{prefix}.{i}.{gate}.weight": (n_out, n_in), f"{prefix}.{i}.{gate}.bias": (n_out,)})
    last = len(sizes) - 2
    shapes.update({f"{prefix}.{last}.weight": (sizes[-1], sizes[-2]), f"{prefix}.{last}.bias": (sizes[-1],)})
    return shapes


def _strided_stack(prefix: str, sizes: list[int], transposed: bool) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of :func:`latcomp.nn.layers.analysis_transform` / ``synthesis_transform``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        weight = (n_in, n_out, 5, 5) if transposed else (n_out, n_in, 5, 5)
        shapes.update({f"{prefix}.{2 * i}.weight": weight, f"{prefix}.{2 * i}.bias": (n_out,)})
        if i < len(sizes) - 2:
            shapes.update({f"{prefix}.{2 * i + 1}.beta_root": (n_out,),
                           f"{prefix}.{2 * i + 1}.gamma_root": (n_out, n_out)})
    return shapes


def _hyper_networks(n: int, latent: int) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of h_a and h_s (:mod:`latcomp.nn.hyperprior`): 3×3 and 5×5 convolutions, ReLU between."""
    layers = {"hyper_analysis.0": ((n, latent, 3, 3), n), "hyper_analysis.2": ((n, n, 5, 5), n),
              "hyper_analysis.4": ((n, n, 5, 5), n), "hyper_synthesis.0": ((n, n, 5, 5), n),
              "hyper_synthesis.2": ((n, n, 5, 5), n), "hyper_synthesis.4": ((latent, n, 3, 3), latent)}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, (weight, out) in layers.items():
        shapes.update({f"{name}.weight": weight, f"{name}.bias": (out,)})
    return shapes


def _network_tensors(architecture: str, hparams: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shapes of the encoder and decoder networks' tensors."""
    latent = hparams["latent"]
    if architecture in ("photo-factorized", "photo-hyperprior"):
        n = hparams["channels"]
        hyper = _hyper_networks(n, latent) if architecture == "photo-hyperprior" else {}
        return {**_strided_stack("analysis", [3, n, n, n, latent], transposed=False),
                **_strided_stack("synthesis", [latent, n, n, n, 3], transposed=True), **hyper}
    data_dim, hidden = hparams["data_dim"], hparams["hidden"]
    encoder_out = 2 * latent if architecture == "gaussian" else latent  # (μ, log σ²)
    return {**_gated_mlp("encoder", [data_dim, hidden, hidden, encoder_out]),
            **_gated_mlp("decoder", [latent, hidden, hidden, data_dim])}


def expected_tensors(architecture: str, hparams: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor in the weights file of a model with valid (checked) hparams."""
    latent = hparams["latent"]
    shapes = _network_tensors(architecture, hparams)
    if architecture == "photo-hyperprior":
        blocks, n = len(parse_spec(hparams["lattice"], latent)), hparams["channels"]
        shapes.update({"log_delta": (blocks,), "hyper_log_delta": (n,), "hyper_log_b": (n,),
                       CODEC_PREFIX + "lattice.delta": (blocks,), CODEC_PREFIX + "hyper.delta": (n,),
                       CODEC_PREFIX + "hyper.b": (n,)})
    elif architecture in LATTICE_ARCHITECTURES:
        blocks = len(parse_spec(hparams.get("lattice", "z"), latent))
        shapes.update({"log_delta": (blocks,), "log_b": (latent,),
                       CODEC_PREFIX + "lattice.delta": (blocks,), CODEC_PREFIX + "prior.b": (latent,)})
    elif architecture == "gaussian-lattice":
        shapes["log_sigma"] = (latent,)
    elif architecture in WORD_DIM:
        quantizers, word, levels = latent // WORD_DIM[architecture], WORD_DIM[architecture], hparams["levels"]
        shapes.update(codebook=(quantizers, levels, word), code_logits=(quantizers, levels))
    return shapes


def max_weights_bytes(shapes: dict[str, tuple[int, ...]]) -> int:
    """The largest weights file these tensors can make: float32 data plus a header allowance."""
    return 4 * sum(math.prod(shape) for shape in shapes.values()) + MAX_HEADER_BYTES


def check_tensors(shapes: dict[str, tuple[int, ...]], tensors: dict[str, np.ndarray]) -> None:
    """Exactly the tensors of ``shapes``, each float32, of that shape and finite."""
    missing = [name for name in shapes if name not in tensors]
    unexpected = [name for name in tensors if name not in shapes]
    if missing or unexpected:
        problems = ([f"missing {_show(missing, 80)}"] if missing else []) + \
            ([f"unexpected {_show(unexpected, 80)}"] if unexpected else [])
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
