"""The public codec API: :func:`compress` and :func:`decompress` of fixed-size images (digits), the
header of any file, and models loaded for coding, all without torch.

The implementation lives in the modality-free runtime (:mod:`latcomp.runtime`: model loading,
the checked coder) and in the digits modality (:mod:`latcomp.digits.codec`); photos have
:mod:`latcomp.photo.codec`. docs/codec.md is the guide, docs/format.md the file format.
"""

from __future__ import annotations

from latcomp.container import Header, unpack
from latcomp.digits.codec import code_lengths, compress, decompress, image_layout, to_uint8
from latcomp.errors import CodecError, FormatError, InputError, LimitError, ModelMismatchError
from latcomp.runtime.coding import MAX_PIXELS
from latcomp.runtime.model import LoadedModel, load_model

__all__ = ["compress", "decompress", "read_header", "load_model", "code_lengths", "LoadedModel", "to_uint8",
           "image_layout", "MAX_PIXELS", "CodecError", "FormatError", "InputError", "LimitError",
           "ModelMismatchError"]


def read_header(data: bytes) -> Header:
    """Parse and verify a container's header and checksums (no model needed)."""
    return unpack(data)[0]
