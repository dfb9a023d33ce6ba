"""Model families: everything latcomp knows about an architecture, in one registered spec.

A model's ``config.json`` names its family (``"architecture": "lattice-vae"``); the
:class:`Family` of that name says

* its **hyper-parameters** with types and ranges (:class:`HParam`: the schema checks of
  :mod:`latcomp.schema`, the defaults ``latcomp train`` writes);
* its **tensors**, name → shape, as a torch-free function of the hyper-parameters (the schema
  checks a weights file against them before anything is built; ``tests/test_families.py``
  checks them against the torch module's ``state_dict`` for several ``examples``);
* its **torch module** (training, NLL, bench) and its **torch-free runtime** (encode/decode,
  none for models that cannot write files), both named as ``"package.module:Name"`` and
  imported only when asked for, so that reading the registry imports neither torch nor numpy
  networks;
* its **modality** (:mod:`latcomp.modalities`: digits, photo, …), its **training defaults**
  (settings of :class:`latcomp.train.TrainConfig` that differ from the MNIST ones) and what the
  measurements need (importance-sampling proposals, a model-card description, a plot colour).

Families register themselves: every module of this package defines ``FAMILIES``, a tuple of
:class:`Family`, and :func:`families` collects them (a new family is a new module here, plus
its torch module, its runtime and its test; docs/architecture.md).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

#: Tensor shapes of a model: name in the weights file → shape.
Shapes = dict[str, tuple[int, ...]]
#: Longest lattice spec a config may hold.
MAX_LATTICE_SPEC = 1000


class FamilyError(ValueError):
    """Hyper-parameters that break a family's spec, or a name no family has; the message names the problem."""


class ModelShapeError(ValueError):
    """The weights do not describe the architecture named in the config (raised by the torch-free runtimes)."""


@dataclass(frozen=True)
class HParam:
    """One hyper-parameter of a family: its ``kind`` and range, whether a config may leave it out.

    Kinds: ``"int"`` (an integer from ``low`` to ``high``), ``"positive"`` (a finite number > 0),
    ``"nonnegative"`` (a finite number ≥ 0), ``"fraction"`` (a number in [0, 1)),
    ``"lattice"`` (a lattice spec string, :mod:`latcomp.lattices.product`, that tiles the family's
    ``latent`` dimensions).
    ``default`` is what a config without it means (``required=False``) and what
    :meth:`latcomp.train.TrainConfig.hparams` writes when the training settings have no field of
    that name.
    """

    name: str
    kind: str
    low: int = 1
    high: int = 1 << 20
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Family:
    """One model family (module docstring)."""

    name: str
    modality: str
    hparams: tuple[HParam, ...]
    #: Tensor shapes of valid hyper-parameters (torch-free).
    tensors: Callable[[Mapping[str, Any]], Shapes]
    #: The torch module, ``"latcomp.nn.models:LatticeVAE"``.
    module: str
    #: The torch-free runtime of encode/decode (None: the family cannot write files).
    runtime: str | None = None
    #: The family's own codec module (``compress``/``decompress`` with the modality codec's signature) where its
    #: files differ from its modality's (a two-level stream, say); None: the modality's codec.
    codec: str | None = None
    #: Further files of a model directory its runtime reads (e.g. a vocabulary): the model id covers them too.
    files: tuple[str, ...] = ()
    #: Small hyper-parameters for tests (tensor shapes against the torch module), at least one.
    examples: tuple[Mapping[str, Any], ...] = ()
    #: Settings of :class:`latcomp.train.TrainConfig` that differ from its MNIST defaults.
    training: Mapping[str, Any] = field(default_factory=dict)
    #: The start of a fine-tuning run (``latcomp train --init``): ``"module:function"``, ``function(source, hparams)``
    #: → the torch module to train, from the loaded ``source`` model (ValueError if it cannot start one); None: the
    #: source's weights as they are (same hyper-parameters but λ).
    fine_tune: str | None = None
    #: Families a fine-tuning run of this one may start from besides itself.
    init_from: tuple[str, ...] = ()
    #: Importance-sampling log-weight functions by proposal ("" the default; none: no continuous latent).
    proposals: Mapping[str, str] = field(default_factory=dict)
    #: Further checks of valid-typed hyper-parameters: a message for what is wrong, or None.
    check: Callable[[Mapping[str, Any]], str | None] | None = None
    #: Model-card description; ``{lattice}`` is replaced by the model's lattice spec.
    description: str = ""
    #: Colour of the family in bench figures (a matplotlib colour name).
    colour: str = "tab:gray"

    @property
    def hparam_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.hparams)

    def torch_module(self) -> Any:
        """The torch module class (imports torch)."""
        return load_object(self.module)

    def runtime_class(self) -> Any:
        """The torch-free runtime class (FamilyError if the family has none)."""
        if self.runtime is None:
            raise FamilyError(f"architecture {self.name!r} has no numpy codec model; known: "
                              f"{', '.join(f.name for f in families().values() if f.runtime)}")
        return load_object(self.runtime)


def load_object(path: str) -> Any:
    """The object ``"package.module:name"`` (imported now)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@cache
def families() -> dict[str, Family]:
    """Every registered family by name, from the ``FAMILIES`` of this package's modules (module docstring)."""
    found: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        for spec in getattr(importlib.import_module(f"{__name__}.{info.name}"), "FAMILIES", ()):
            if spec.name in found:
                raise RuntimeError(f"model family {spec.name!r} is registered twice")
            found[spec.name] = spec
    return found


def family(name: Any) -> Family:
    """The family called ``name`` (FamilyError naming the known ones otherwise)."""
    known = families()
    if not isinstance(name, str) or name not in known:
        raise FamilyError(f"unknown architecture {show_value(name)}; known: {', '.join(known)}")
    return known[name]


def of_modality(modality: str) -> tuple[str, ...]:
    """The names of the families of ``modality``."""
    return tuple(name for name, spec in families().items() if spec.modality == modality)


def show_value(value: Any, limit: int = 40) -> str:
    """A short one-line repr of a value from a file (which may be huge or contain newlines)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_hparams(spec: Family, hparams: Any) -> None:
    """Check ``hparams`` against the spec: exactly its keys, each of its kind and range (FamilyError)."""
    if not isinstance(hparams, dict):
        raise FamilyError("hparams must be an object")
    names = spec.hparam_names
    missing = [p.name for p in spec.hparams if p.required and p.name not in hparams]
    unexpected = [k for k in hparams if k not in names]
    if missing or unexpected:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
            ([f"unexpected {show_value(unexpected, 80)}"] if unexpected else [])
        raise FamilyError(f"hparams of {spec.name}: {'; '.join(problems)}")
    for p in spec.hparams:
        if p.kind != "lattice" and p.name in hparams:
            _check_value(p, hparams[p.name])
    for p in spec.hparams:
        if p.kind == "lattice":
            _check_lattice(p, hparams.get(p.name, p.default), hparams.get("latent"))
    problem = spec.check(hparams) if spec.check else None
    if problem:
        raise FamilyError(f"hparams.{problem}")


#: The number kinds of :class:`HParam`: what the message calls them, and the finite values they accept.
_NUMBER_KINDS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "positive": ("a finite positive number", lambda v: v > 0),
    "nonnegative": ("a finite number ≥ 0", lambda v: v >= 0),
    "fraction": ("a number from 0 to less than 1", lambda v: 0 <= v < 1)}


def _check_value(p: HParam, value: Any) -> None:
    if p.kind == "int":
        if type(value) is not int or not p.low <= value <= p.high:
            raise FamilyError(f"hparams.{p.name} must be an integer from {p.low} to {p.high}, got {show_value(value)}")
    elif p.kind in _NUMBER_KINDS:
        wanted, accepts = _NUMBER_KINDS[p.kind]
        if type(value) not in (int, float) or not (math.isfinite(value) and accepts(value)):
            raise FamilyError(f"hparams.{p.name} must be {wanted}, got {show_value(value)}")
    else:
        raise RuntimeError(f"unknown hparam kind {p.kind!r}")


def _check_lattice(p: HParam, value: Any, latent: Any) -> None:
    from latcomp.lattices.product import parse_spec

    if not isinstance(value, str) or len(value) > MAX_LATTICE_SPEC:
        raise FamilyError(f"hparams.{p.name} must be a lattice spec string, got {show_value(value)}")
    try:
        parse_spec(value, latent)
    except ValueError as exc:
        raise FamilyError(f"hparams.{p.name}: {exc}") from None


def int_limit(name: str) -> int:
    """The largest value any family allows for the integer hyper-parameter ``name`` (CLI option ranges)."""
    return max(p.high for spec in families().values() for p in spec.hparams if p.name == name and p.kind == "int")
