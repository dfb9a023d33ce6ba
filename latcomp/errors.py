"""Exceptions of the codec (``latcomp encode``/``decode`` and :mod:`latcomp.codec`)."""

from __future__ import annotations


class CodecError(Exception):
    """Any failure to compress or decompress that is caused by the input, reported in one line."""


class FormatError(CodecError):
    """The bytes are not a valid latcomp container: wrong magic or version, corrupt, truncated…"""


class ModelMismatchError(CodecError):
    """A container was written with another model (or another image shape) than the one given."""


class InputError(CodecError):
    """An input is unusable: an image or array to compress that is unreadable, of the wrong size or
    mode, or out of range, or an input that is not a regular file (a FIFO, a device) or too large."""


class OutputError(CodecError):
    """An output cannot be written safely: it exists (without ``--force``), it is a symbolic link or a
    special file (never followed or replaced), or the operating system refused the write."""


class LimitError(CodecError):
    """A file or array is larger than a documented limit of this implementation (``docs/format.md``)."""
