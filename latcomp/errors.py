"""Exceptions of the codec (``latcomp encode``/``decode`` and :mod:`latcomp.codec`)."""

from __future__ import annotations


class CodecError(Exception):
    """Any failure to compress or decompress that is caused by the input, reported in one line."""


class FormatError(CodecError):
    """The bytes are not a valid latcomp container: wrong magic or version, corrupt, truncated…"""


class ModelMismatchError(CodecError):
    """A container was written with another model (or another image shape) than the one given."""


class InputError(CodecError):
    """An image or array to compress is unreadable, of the wrong size or mode, or out of range."""
