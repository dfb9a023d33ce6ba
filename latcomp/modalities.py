"""The modalities, peers over the runtime core: what kind of data a model codes, and which files hold it.

Every model family names its modality (:attr:`latcomp.families.Family.modality`); every container
version belongs to one modality. This table is the one place that dispatches between them: the CLI
asks it which codec writes a model's files (:func:`of_model`) and which reads a file
(:func:`of_header`). A new modality is a package (its codec, its input reading, its header layout)
and one line here (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from latcomp.container import FIELDS_VERSION, Header
from latcomp.errors import FormatError


@dataclass(frozen=True)
class Modality:
    """A kind of data: its name, its container versions and the module of its files."""

    name: str
    #: Container versions (:data:`latcomp.container.VERSIONS`) of this modality's files.
    versions: tuple[int, ...]
    #: The module of its ``compress`` and ``decompress``.
    codec: str


MODALITIES: dict[str, Modality] = {
    "digits": Modality("digits", (1, 2), "latcomp.digits.codec"),
    "photo": Modality("photo", (3,), "latcomp.photo.codec"),
    "text": Modality("text", (FIELDS_VERSION,), "latcomp.text.codec"),
}


def of_model(model: Any) -> Modality:
    """The modality of a loaded model (:class:`latcomp.runtime.model.LoadedModel`)."""
    return MODALITIES[model.modality]


def of_header(header: Header) -> Modality:
    """The modality of a file, from its container version (FormatError for a version no modality has)."""
    for modality in MODALITIES.values():
        if header.version in modality.versions:
            return modality
    raise FormatError(f"no modality reads container version {header.version}")
