"""The names of a container's images (``docs/format.md``, "Image names"): the bytes of the optional
header field that records them, the rules every name read from a file must meet, and the PNG names a
decoder writes for them.

A name is the path of an image file relative to the directory given to ``latcomp encode`` (``a.jpg``,
``2024/b.png``; a file given by itself: its base name), in UTF-8 with ``/`` between its components.
Names come from untrusted files, so :func:`check_name` accepts only relative paths that stay inside the
output directory: no empty, ``.`` or ``..`` component, no leading ``/``, no backslash, NUL or other
control character. :func:`png_names` then maps them to distinct outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from .errors import FormatError

#: Most bytes of one name, and of one of its components (the usual file-system limits).
MAX_NAME_BYTES, MAX_COMPONENT_BYTES = 4096, 255
#: Most bytes of the whole field (the names and their separators).
MAX_NAMES_BYTES = 1 << 26
#: Ends every name in the field (no file name holds it).
SEPARATOR = b"\x00"
_FORBIDDEN = frozenset(chr(c) for c in (*range(0x20), 0x7F)) | {"\\"}


def check_name(name: str) -> str:
    """``name`` if it is a safe relative path (module docstring), else :class:`FormatError` saying why."""
    raw = name.encode("utf-8", "surrogatepass")
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        raise FormatError(f"image name of {len(raw)} bytes (1 to {MAX_NAME_BYTES})")
    if _FORBIDDEN & set(name) or any(0xD800 <= ord(c) < 0xE000 for c in name):
        raise FormatError(f"image name {name!r} holds a control character, a backslash or an unpaired surrogate")
    for part in name.split("/"):
        if part in ("", ".", "..") or len(part.encode()) > MAX_COMPONENT_BYTES:
            raise FormatError(f"image name {name!r} is not a relative path inside the output directory "
                              f"(an empty, '.', '..' or over-long component, or a leading '/')")
    return name


def pack_names(names: Sequence[str]) -> bytes:
    """The field's bytes: every name (checked) in UTF-8 followed by a NUL byte."""
    data = b"".join(check_name(name).encode() + SEPARATOR for name in names)
    if len(data) > MAX_NAMES_BYTES:
        raise FormatError(f"the image names take {len(data)} bytes, more than the limit of {MAX_NAMES_BYTES}")
    return data


def unpack_names(data: bytes, count: int) -> tuple[str, ...]:
    """The ``count`` names of the field ``data`` (FormatError unless it is exactly that many safe names whose
    PNG names are distinct: :func:`png_names`)."""
    if data.count(SEPARATOR) != count or not data.endswith(SEPARATOR):
        raise FormatError(f"corrupt header (the image names field does not hold {count} names)")
    try:
        names = tuple(raw.decode("utf-8") for raw in data.split(SEPARATOR)[:-1])
    except UnicodeDecodeError:
        raise FormatError("corrupt header (an image name is not UTF-8)") from None
    png_names(names)
    return names


def png_name(name: str) -> str:
    """The file a decoder writes for the image ``name``: its suffix replaced by ``.png`` (``a.jpg`` → ``a.png``)."""
    path = PurePosixPath(name)
    return str(path.with_name(path.stem + ".png")) if path.suffix else name + ".png"


def png_names(names: Sequence[str]) -> list[str]:
    """The PNG names of ``names`` (:func:`png_name`); FormatError if a name is not safe (:func:`check_name`), or
    if two outputs are the same or one would be a directory of another (``a.png`` and ``a.png/b.png``)."""
    outputs = [png_name(check_name(name)) for name in names]
    seen: dict[str, str] = {}
    for name, output in zip(names, outputs, strict=True):
        if output in seen:
            raise FormatError(f"the images {seen[output]} and {name} would both be written as {output}")
        seen[output] = name
    for output in outputs:
        for parent in PurePosixPath(output).parents:
            if str(parent) in seen:
                raise FormatError(f"the image {seen[str(parent)]} would be written as {parent}, a directory "
                                  f"of another image ({output})")
    return outputs
