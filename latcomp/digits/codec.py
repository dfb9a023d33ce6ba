"""Digits: real bitstreams of fixed-size images from a trained lattice model (:func:`compress`, :func:`decompress`).

Pipeline (Sections 3.2-3.3 of the paper, Figure 2 left)::

    encode:  X = e_c(D)            numpy encoder (exact, reproducible; no torch)
             U = dither(seed)       PCG64 raw words -> uniforms -> Voronoi cell of Λ (exact)
             k = coords K_Λ(X + U)  integer coordinates of the lattice point Z = s·k·B
             push k with P(Ẑ|U)     Laplace prior, the sequential box code (QuantizedLaplace
                                    per coordinate, last coordinate of each block first), escapes
             [lossless] push D with Q(D | Z − U), the decoder's Bernoulli probabilities
    decode:  U = dither(seed); pop k; Z − U; decoder network;
             lossy: the mean image Q(D=1 | Z − U); lossless: pop D exactly.

All images of a call share one ANS stream (one flush for the whole batch). The
file format is in :mod:`latcomp.container` and ``docs/format.md``. A lossless file
whose coded pixels would take more room than the raw bits stores them raw instead.

Decoding a file costs what its content costs, whatever its header claims: claims
beyond what the payload can hold (at least ``min_bits_per_item`` per image) or
beyond :data:`MAX_PIXELS` are refused up front, the lattice coordinates are popped
in chunks that stop at an empty stream, and an empty stream ends the pixels. The
decoder holds the coordinates k and the output, not a float64 copy of the output
when 8-bit pixels are asked for (``decompress(..., dtype=np.uint8)``), and the dithers
only as far as they are read: they are recomputed from the seed a few rows at a time,
and a lattice of several levels (Leech, E8) keeps the rows it has read so that each is
computed once for the coordinates and for Z − U (at most N·dim float64).

Everything the decoder recomputes (dither, entropy parameters, network outputs) is bit-identical
on every machine, thread count and batch size; a CRC32 of the decoded content
turns any residual mismatch into an error instead of a wrong image.

What is not about images (model loading, the seed and its dither, the checked coder, claims
and CRCs) is the runtime core's (:mod:`latcomp.runtime`); the model's network is its family's
torch-free runtime (:class:`latcomp.digits.network.NumpyLatticeVAE`). The public names are
re-exported by :mod:`latcomp.codec`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from latcomp.container import MAX_COUNT, Header, content_crc, pack, unpack
from latcomp.entropy.bernoulli import BernoulliPixelModel
from latcomp.entropy.lattice_code import DitherRows
from latcomp.errors import FormatError, InputError, LimitError, ModelMismatchError
from latcomp.exact.networks import CHUNK
from latcomp.modelfile import DEFAULT_MODEL
from latcomp.runtime import coding
from latcomp.runtime.coding import MAX_PIXELS
from latcomp.runtime.model import LoadedModel, ModelLike, check_model, load_model
from latcomp.steps import spans

#: Fewest bits one coded pixel can take: constriction's 24-bit Bernoulli model leaves at least
#: 2^-24 of the probability to each of the two values.
PIXEL_MIN_BITS = -math.log2(1.0 - 2.0**-24)
#: The decoder's Bernoulli probabilities Q(D | Z − U) as an entropy model of the pixels (lossless mode).
PIXELS = BernoulliPixelModel()


# --------------------------------------------------------------------------- images in and out


def image_layout(shape: tuple[int, ...], image_shape: tuple[int, int, int]) -> str:
    """The layout ("batch", "flat" or "single") of an array of ``shape`` for the model's image shape.

    Raises :class:`InputError` if the array cannot hold the model's images; needs only the shape,
    so a file's arrays are checked from their headers before they are read.
    """
    h, w, c = image_shape
    if shape in ((h, w, c),) or (c == 1 and shape == (h, w)):
        return "single"
    if len(shape) == 2 and shape[1] == h * w * c:
        return "flat"
    if shape[1:] == (h, w, c) or (c == 1 and shape[1:] == (h, w)):
        return "batch"
    accepted = f"(N, {h}, {w}), (N, {h * w * c}) or ({h}, {w})" if c == 1 else \
        f"(N, {h}, {w}, {c}), (N, {h * w * c}) or ({h}, {w}, {c})"
    raise InputError(f"images of shape {shape} do not fit the model's {h}×{w}×{c} input; "
                     f"expected {accepted} (photos: latcomp.photo.codec.compress)")


def as_model_input(images: Any, image_shape: tuple[int, int, int], lossless: bool = False
                   ) -> tuple[np.ndarray, str]:
    """Validate images and flatten them to (N, H·W·C) float64 in [0, 1]; also return the layout.

    Accepted values: bool, integers 0/1, or floats in [0, 1] (intensities, e.g. ``img/255``).
    Lossless mode needs binary values (0/1).
    """
    arr = np.asarray(images)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"images must be a numeric array, got dtype {arr.dtype}")
    layout = image_layout(arr.shape, image_shape)
    count = 1 if layout == "single" else arr.shape[0]
    if not 1 <= count <= MAX_COUNT:
        raise InputError(f"need between 1 and {MAX_COUNT} images, got {count}")
    if arr.size > MAX_PIXELS:
        raise LimitError(f"{count} images of {arr.size // count} pixels exceed the limit of {MAX_PIXELS} "
                         f"pixels per file; split them into several files")
    flat = arr.reshape(count, -1)
    if arr.dtype.kind in "iu":
        if flat.min() < 0 or flat.max() > 1:
            raise InputError("integer images must hold 0/1 values; pass intensities as floats in [0, 1] "
                             "(e.g. img / 255)")
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(flat)) or flat.min() < 0 or flat.max() > 1:
            raise InputError("float images must hold finite intensities in [0, 1]")
    x = flat.astype(np.float64)
    if lossless and not np.all((x == 0) | (x == 1)):
        raise InputError("lossless mode needs binary images (every pixel 0 or 1); "
                         "binarize them first (CLI: --threshold T)")
    return x, layout


def _restore_layout(x: np.ndarray, layout: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = image_shape
    shape = (h, w) if c == 1 else (h, w, c)
    if layout == "flat":
        return x
    if layout == "single":
        return x.reshape(shape)
    return x.reshape((x.shape[0], *shape))


#: :func:`to_uint8` converts this many values at a time (a float64 copy of this size, not of a whole batch).
_UINT8_BLOCK = 1 << 20


def to_uint8(mean: np.ndarray) -> np.ndarray:
    """Decoder means in [0, 1] (or 0/1 pixels) → 8-bit intensities round(255·x), of the same shape."""
    flat = np.asarray(mean).reshape(-1)
    out = np.empty(flat.shape, np.uint8)
    for start in range(0, flat.size, _UINT8_BLOCK):
        part = slice(start, start + _UINT8_BLOCK)
        out[part] = np.rint(flat[part].astype(np.float64) * 255.0).astype(np.uint8)
    return out.reshape(np.shape(mean))


# --------------------------------------------------------------------------- compress / decompress


def _chunks(n: int) -> list[slice]:
    return [slice(a, b) for a, b in spans(n, CHUNK)]


def _ans_payload(m: LoadedModel, k: np.ndarray, u: np.ndarray, pixels: np.ndarray | None = None,
                 progress: coding.Progress | None = None) -> bytes:
    """The ANS stream of the lattice coordinates ``k`` (and, if given, then the pixels) as payload bytes."""
    n = len(k)
    coder = coding.new_coder()
    if pixels is not None:
        for part in reversed(_chunks(n)):  # a stack: the last chunk is pushed first
            probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
            PIXELS.push(coder, pixels[part], probs)
            if progress:
                progress("pixels", n - part.start, n)
    coding.push_coordinates(coder, m.latent, k, u)
    return coding.payload(coder)


def _digit_model(model: ModelLike) -> LoadedModel:
    """The model for coding, which must be a digits model (ModelMismatchError otherwise)."""
    m = load_model(model)
    if m.modality != "digits":
        raise ModelMismatchError(f"{m.directory} is a {m.modality} model, not a model of fixed-size images")
    return m


def compress(images: Any, model: ModelLike = DEFAULT_MODEL, lossless: bool = False,
             seed: int | None = None, progress: coding.Progress | None = None) -> bytes:
    """Compress a batch of images into one latcomp container (one entropy-coded stream).

    ``images``: (N, H, W[, C]) or (N, H·W·C) or a single (H, W[, C]) array of bool,
    0/1 integers or float intensities in [0, 1]; :func:`decompress` returns the same
    layout. Lossy mode codes only the lattice point; ``lossless`` (binary images only)
    adds every pixel coded with the decoder's Bernoulli probabilities. ``seed`` fixes
    the 64-bit dither seed (default: random per file); equal inputs and seeds give
    equal bytes on any machine. Raises :class:`InputError` for unusable images.
    """
    m = _digit_model(model)
    x, layout = as_model_input(images, m.net.image_shape, lossless)
    seed = coding.file_seed(seed)
    n = x.shape[0]
    u = m.latent.seeded_dither(seed, n)
    k = np.empty(u.shape, np.int64)
    for part in _chunks(n):
        k[part] = m.latent.quantize(m.net.encode(x[part]), u[part])
        if progress:
            progress("encode", part.stop, n)
    pixels = x.astype(np.uint8) if lossless else None
    header = Header(lossless=lossless, layout=layout, model_id=m.model_id, seed=seed, payload_crc=0,
                    content_crc=content_crc(k, pixels), count=n, image_shape=m.net.image_shape,
                    payload_bytes=0, lattice=m.header_lattice)
    coded = pack(header, _ans_payload(m, k, u, pixels, progress))
    if not lossless:
        return coded
    # Never much more than the raw bits: store the pixels raw (format version 2) if that is smaller.
    stored = pack(dataclasses.replace(header, stored=True, lattice=m.latent.lattice.spec),
                  np.packbits(pixels).tobytes() + _ans_payload(m, k, u))
    return stored if len(stored) < len(coded) else coded


def decompress(data: bytes, model: ModelLike = DEFAULT_MODEL, progress: coding.Progress | None = None,
               dtype: Any = None) -> np.ndarray:
    """Decode a container made by :func:`compress` with the same model.

    Returns the images in the layout given to :func:`compress`: for a lossless file
    the exact binary pixels (uint8 0/1); for a lossy file the decoder's mean image
    Q(D=1 | Z − U) as float64 in [0, 1] (:func:`to_uint8` gives 8-bit pixels).
    ``dtype=numpy.uint8`` asks for 8-bit pixels instead: a lossy file's means come as
    ``to_uint8`` of them, converted chunk by chunk (no N × H·W·C float64 array), and a
    lossless file's pixels as above.
    Raises :class:`FormatError` for malformed or corrupt data and
    :class:`ModelMismatchError` for a file written with another model; never
    returns wrong images silently.
    """
    if dtype is not None and np.dtype(dtype) != np.uint8:
        raise ValueError(f"decompress returns float64 means or uint8 pixels (dtype None or uint8), not {dtype}")
    header, data = unpack(data)
    m = _digit_model(model)
    _check_claims(header, m)
    n, size = header.count, int(np.prod(m.net.image_shape))
    # each dither row computed once for the coordinates and Z − U alike (kept as read for a multi-level lattice)
    u = coding.lazy_dither(m.latent, header.seed, n)
    with coding.entropy_decoding(data[header.stored_bytes:]) as coder:
        k = coding.pop_coordinates(coder, m.latent, u)
        parts, zeros = [], 0
        if header.stored:
            parts = [_stored_pixels(data[:header.stored_bytes], n, size)]
        elif header.lossless:
            parts, zeros = _pop_pixels(coder, m, k, u, progress)
        empty = coder.is_empty()
    crc = content_crc(k, parts if header.lossless else None, zeros * size)
    coding.require_content(empty and crc == header.content_crc)
    if header.lossless:
        out = _joined(parts, n, size)
    else:
        out = _mean_images(m, k, u, np.float64 if dtype is None else np.uint8, progress)
    return _restore_layout(out, header.layout, m.net.image_shape)


def _joined(parts: list[np.ndarray], n: int, size: int) -> np.ndarray:
    """The decoded pixel chunks as one (n, size) uint8 array; the rows after them are 0.

    The chunks are released as they are copied; a single chunk that holds every row is
    returned as it is.
    """
    if len(parts) == 1 and len(parts[0]) == n:
        return parts[0]
    out = np.zeros((n, size), np.uint8)
    row = 0
    while parts:
        part = parts.pop(0)
        out[row:row + len(part)] = part
        row += len(part)
    return out


def _mean_images(m: LoadedModel, k: np.ndarray, u: DitherRows, dtype: type, progress: coding.Progress | None
                 ) -> np.ndarray:
    """The lossy images Q(D=1 | Z − U), chunk by chunk: float64 means, or (``np.uint8``) their :func:`to_uint8`."""
    n = len(k)
    out = np.empty((n, int(np.prod(m.net.image_shape))), dtype)
    for part in _chunks(n):
        probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
        out[part] = probs if dtype is np.float64 else to_uint8(probs)
        if progress:
            progress("decode", part.stop, n)
    return out


def _check_claims(header: Header, m: LoadedModel) -> None:
    """Refuse, before decoding, a file of another model or one whose header claims the impossible.

    An ANS stream of P bytes holds at most 8·P + 64 bits, and each image needs at least
    ``min_bits_per_item`` bits for its lattice point plus :data:`PIXEL_MIN_BITS` per coded pixel,
    so a count the payload cannot hold is a :class:`FormatError`; a possible one beyond
    :data:`MAX_PIXELS` is a :class:`LimitError`.
    """
    check_model(header, m)
    image_shape = m.net.image_shape
    if header.image_shape != image_shape:
        raise ModelMismatchError(f"the file holds {'×'.join(map(str, header.image_shape))} images but "
                                 f"the model takes {'×'.join(map(str, image_shape))}")
    bits_per_image = m.latent.min_bits_per_item()
    if header.lossless and not header.stored:
        bits_per_image += int(np.prod(image_shape)) * PIXEL_MIN_BITS
    coding.check_payload_claim(f"{header.count} images", header.count, bits_per_image,
                        header.payload_bytes - header.stored_bytes)
    if header.pixel_count > MAX_PIXELS:
        raise LimitError(f"the file claims {header.count} images ({header.pixel_count} pixels), more than "
                         f"the limit of {MAX_PIXELS} pixels per file")


def _pop_pixels(coder: Any, m: LoadedModel, k: np.ndarray, u: DitherRows, progress: coding.Progress | None
                ) -> tuple[list[np.ndarray], int]:
    """Pop the coded pixels, chunk by chunk: the decoded chunks and the number of images left.

    An empty ANS stream decodes to pixel 0 for ever, so once the stream is empty the images
    left are all 0 and need neither the network nor memory: a header that claims more images
    than its payload holds costs little more than the images the payload holds.
    """
    n, parts = len(k), []
    for part in _chunks(n):
        if coder.is_empty():
            return parts, n - part.start
        probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
        parts.append(PIXELS.pop(coder, probs))
        if progress:
            progress("pixels", part.stop, n)
    return parts, 0


def _stored_pixels(raw: bytes, n: int, size: int) -> np.ndarray:
    """The raw pixels of a stored file, (n, size) uint8 0/1; the padding bits must be zero."""
    bits = np.unpackbits(np.frombuffer(raw, np.uint8))
    if bits[n * size:].any():
        raise FormatError("corrupt payload (stored pixels with nonzero padding bits)")
    return bits[:n * size].reshape(n, size)


def code_lengths(images: Any, model: ModelLike = DEFAULT_MODEL, lossless: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """Ideal code lengths in bits of what :func:`compress` codes with this seed.

    ``latent``: Σ −log2 P(Ẑ|U) of the lattice coordinates; ``pixels`` (lossless):
    Σ −log2 Q(D | Z − U), or N·H·W·C (the raw bits) where that is smaller, as
    :func:`compress` then stores the pixels raw. The real payload is within a fraction
    of a percent plus one stream flush (~32 bits) of their sum.
    """
    m = _digit_model(model)
    x, _ = as_model_input(images, m.net.image_shape, lossless)
    u = m.latent.seeded_dither(seed, x.shape[0])
    k = m.latent.quantize(m.net.encode(x), u)
    out = {"latent": m.latent.ideal_bits(k, u), "pixels": 0.0}
    if lossless:
        for part in _chunks(x.shape[0]):
            probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
            out["pixels"] += PIXELS.ideal_bits(x[part], probs)
        out["pixels"] = min(out["pixels"], float(x.size))
    return out
