"""The names of a container's images (``docs/format.md``, "Image names"): the bytes of the optional
header field that records them, the rules every name read from a file must meet, and the PNG names a
decoder writes for them.

A name is the path of an image file relative to the directory given to ``latcomp encode`` (``a.jpg``,
``2024/b.png``; a file given by itself: its base name), in UTF-8 with ``/`` between its components.
Names come from untrusted files, so :func:`check_name` accepts only relative paths that stay inside the
output directory: no empty, ``.`` or ``..`` component, no leading ``/``, no backslash, NUL or other
control character (C0, DEL or C1: a name is printed by ``latcomp info``). :func:`png_names` then maps
them to distinct outputs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

from .errors import FormatError

#: Most bytes of one name, and of one of its components (the usual file-system limits), and most components.
MAX_NAME_BYTES, MAX_COMPONENT_BYTES, MAX_DEPTH = 4096, 255, 32
#: Most bytes of the whole field (the names and their separators).
MAX_NAMES_BYTES = 1 << 26
#: Ends every name in the field (no file name holds it).
SEPARATOR = b"\x00"
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]")  # C0, DEL, C1, \\, surrogates


def check_name(name: str) -> str:
    """``name`` if it is a safe relative path (module docstring), else :class:`FormatError` saying why."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_NAME_BYTES:
        raise FormatError(f"image name of {size} bytes (1 to {MAX_NAME_BYTES})")
    if _FORBIDDEN.search(name):
        raise FormatError(f"image name {name!r} holds a control character, a backslash or an unpaired surrogate")
    parts = name.split("/")
    if len(parts) > MAX_DEPTH or any(part in ("", ".", "..") or len(part.encode()) > MAX_COMPONENT_BYTES
                                     for part in parts):
        raise FormatError(f"image name {name!r} is not a relative path inside the output directory "
                          f"(an empty, '.', '..' or over-long component, a leading '/', or more than "
                          f"{MAX_DEPTH} components)")
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
    """The file a decoder writes for the image ``name``: its suffix replaced by ``.png`` (``a.jpg`` → ``a.png``,
    ``b`` → ``b.png``; the suffix as :attr:`pathlib.PurePath.suffix` defines it)."""
    head, slash, last = name.rpartition("/")
    dot = last.rfind(".")
    return head + slash + (last[:dot] if 0 < dot < len(last) - 1 else last) + ".png"


def png_names(names: Sequence[str]) -> list[str]:
    """The PNG names of ``names`` (:func:`png_name`); FormatError if a name is not safe (:func:`check_name`), or
    if two outputs are the same or one would be a directory of another (``a.png`` and ``a.png/b.png``).
    Linear in the bytes of the names, but for a sort."""
    outputs = [png_name(check_name(name)) for name in names]
    seen: dict[str, str] = {}
    for name, output in zip(names, outputs, strict=True):
        if output in seen:
            raise FormatError(f"the images {seen[output]} and {name} would both be written as {output}")
        seen[output] = name
    keys = sorted(output.replace("/", "\x00") for output in outputs)  # a directory's files sort right after it
    for key, after in pairwise(keys):
        if after.startswith(key + "\x00"):
            directory, inside = key.replace("\x00", "/"), after.replace("\x00", "/")
            raise FormatError(f"the image {seen[directory]} would be written as {directory}, a directory of "
                              f"another image ({inside})")
    return outputs


def directories(outputs: Sequence[str]) -> set[str]:
    """Every directory that the relative paths ``outputs`` lie in (``a/b/c.png``: ``a`` and ``a/b``)."""
    found = set()
    for output in outputs:
        slash = output.find("/")
        while slash != -1:
            found.add(output[:slash])
            slash = output.find("/", slash + 1)
    return found
