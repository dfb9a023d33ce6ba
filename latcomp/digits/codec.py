"""Real bitstreams from a trained lattice model: :func:`compress` and :func:`decompress`.

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
decoder holds the coordinates k and the output, never all the dithers (they are
recomputed from the seed a few rows at a time) nor a float64 copy of the output
when 8-bit pixels are asked for (``decompress(..., dtype=np.uint8)``).

Everything the decoder recomputes (dither, entropy parameters, network outputs) is bit-identical
on every machine, thread count and batch size; a CRC32 of the decoded content
turns any residual mismatch into an error instead of a wrong image.

The model-specific parts live in a :class:`LoadedModel`: the numpy network
adapter (:mod:`latcomp.exact.networks`, by the config's architecture) and its latent
codec (:class:`latcomp.latent_codecs.LatticeLatentCodec`: lattice, dither, prior and
the code of lattice points).
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import constriction
import numpy as np

from latcomp.entropy.bernoulli import BernoulliPixelModel
from latcomp.entropy.lattice_code import SYMBOL_CHUNK, DitherRows
from latcomp.exact.networks import CHUNK, CodecModel, ModelShapeError, build_numpy_model
from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.steps import spans

from .container import MAX_COUNT, MODEL_ID_BYTES, Header, content_crc, pack, payload_to_words, unpack, words_to_payload
from .errors import CodecError, FormatError, InputError, LimitError, ModelMismatchError
from .modelfile import DEFAULT_MODEL, WEIGHTS, ModelFileError, load_weights_numpy, read_config

__all__ = ["compress", "decompress", "read_header", "load_model", "code_lengths", "LoadedModel", "to_uint8",
           "image_layout", "MAX_PIXELS", "CodecError", "FormatError", "InputError", "LimitError",
           "ModelMismatchError"]

#: Largest number of pixels N·H·W·C of one file in this implementation (docs/format.md, "Limits"):
#: 342,392 MNIST digits, 2 GiB as decoded float64 means. ``compress`` refuses more images and
#: ``decompress`` refuses such a header before it decodes anything.
MAX_PIXELS = 1 << 28
#: Fewest bits one coded pixel can take: constriction's 24-bit Bernoulli model leaves at least
#: 2^-24 of the probability to each of the two values.
PIXEL_MIN_BITS = -math.log2(1.0 - 2.0**-24)
#: ``progress(stage, done, total)`` is called while coding large batches.
Progress = Callable[[str, int, int], None]
ModelLike = Union[str, os.PathLike, "LoadedModel"]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for coding: numpy networks, lattice, entropy models and identity."""

    directory: Path
    #: SHA-256 (hex) of the weights file; its first 8 bytes are stored in every file.
    digest: str
    net: CodecModel
    latent: LatticeLatentCodec
    pixels: BernoulliPixelModel

    @property
    def model_id(self) -> bytes:
        return bytes.fromhex(self.digest)[:MODEL_ID_BYTES]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.net.image_shape

    @property
    def header_lattice(self) -> str:
        """The lattice spec a file of this model records: "" (format version 1) for the rectangular lattice."""
        lattice = self.latent.lattice
        return "" if set(lattice.names) == {"z"} else lattice.spec


_CACHE: dict[tuple, LoadedModel] = {}


def load_model(model: ModelLike = DEFAULT_MODEL) -> LoadedModel:
    """Load a model directory for coding, without torch (cached while the files are unchanged).

    The weights file is read once: its SHA-256 is the model identity and the
    tensors come from the same bytes (safetensors, no code execution).
    """
    if isinstance(model, LoadedModel):
        return model
    directory = Path(model)
    path = directory / WEIGHTS
    config = read_config(directory)
    try:
        st = path.stat()
    except OSError:
        raise ModelFileError(f"{path}: model weights are missing") from None
    key = (str(directory.resolve()), st.st_ino, st.st_mtime_ns, st.st_size, repr(config))
    if key in _CACHE:
        return _CACHE[key]
    weights, digest = load_weights_numpy(directory)
    try:
        net = build_numpy_model(config.get("architecture"), weights, config.get("hparams") or {})
    except (ModelShapeError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{directory}: cannot use this model for coding ({exc})") from None
    loaded = LoadedModel(directory, digest, net, net.latent, BernoulliPixelModel())
    if len(_CACHE) >= 4:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = loaded
    return loaded


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
                     f"expected {accepted}")


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


class _SeededDither:
    """The dithers of a file's ``count`` images, computed from the seed when a slice of rows is read.

    Reading ``u[a:b]`` gives ``seeded_dither(seed, count)[a:b]`` bit for bit, without the
    N × dim float64 array (:class:`latcomp.entropy.lattice_code.DitherRows`).
    """

    def __init__(self, latent: LatticeLatentCodec, seed: int, count: int):
        self.latent, self.seed, self.count = latent, seed, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.count)
        if step != 1:
            raise IndexError("dithers are read by contiguous slices of rows")
        return self.latent.seeded_dither(self.seed, max(stop - start, 0), start)


class _CheckedCoder:
    """An ANS coder that codes the lattice coordinates in chunks and never decodes them from an empty stream.

    constriction decodes "for free" from an empty stream (the first symbol of every model, for
    ever), so a header that claims more images than its payload holds would make the decoder
    work through all of them. :meth:`decode` pops the coordinate symbols (the calls with
    parameter arrays) at most :data:`SYMBOL_CHUNK` at a time and raises ``error`` if the stream
    is empty before a chunk (the lattice code makes one call per chunk of a group's symbols).
    :meth:`encode_reverse` pushes the same chunks (the bytes are those of one call) and raises
    in the mirror position, so the encoder never writes a stream the decoder refuses (only
    coordinates of exactly −R at the end of the stream could make one: docs/format.md, "Empty
    stream"). Escapes and everything else go to the wrapped coder.
    """

    def __init__(self, coder: Any, error: CodecError):
        self.coder, self.error = coder, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.coder, name)

    def _check(self) -> None:
        if self.coder.is_empty():
            # a new exception each time: raising ``self.error`` itself would give it a traceback through this
            # frame, a reference cycle that kept the decoder's arrays alive until the next full collection
            raise type(self.error)(*self.error.args)

    def decode(self, model: Any, *params: Any) -> np.ndarray:
        n = 0 if not params or np.ndim(params[0]) == 0 else len(params[0])  # not decode(model, count)
        if n == 0:
            return self.coder.decode(model, *params)
        out = None
        for start in range(0, n, SYMBOL_CHUNK):
            self._check()
            part = self.coder.decode(model, *(p[start:start + SYMBOL_CHUNK] for p in params))
            if out is None:
                out = np.empty(n, part.dtype)
            out[start:start + len(part)] = part
        return out

    def encode_reverse(self, symbols: np.ndarray, model: Any, *params: Any) -> None:
        if not params:
            return self.coder.encode_reverse(symbols, model)
        for start in reversed(range(0, len(symbols), SYMBOL_CHUNK)):
            stop = start + SYMBOL_CHUNK
            self.coder.encode_reverse(symbols[start:stop], model, *(p[start:stop] for p in params))
            self._check()


def _ans_payload(m: LoadedModel, k: np.ndarray, u: np.ndarray, pixels: np.ndarray | None = None,
                 progress: Progress | None = None) -> bytes:
    """The ANS stream of the lattice coordinates ``k`` (and, if given, then the pixels) as payload bytes."""
    n = len(k)
    coder = constriction.stream.stack.AnsCoder()
    if pixels is not None:
        for part in reversed(_chunks(n)):  # a stack: the last chunk is pushed first
            probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
            m.pixels.push(coder, pixels[part], probs)
            if progress:
                progress("pixels", n - part.start, n)
    push_coordinates(coder, m.latent, k, u)
    return words_to_payload(coder.get_compressed())


def push_coordinates(coder: Any, latent: LatticeLatentCodec, k: np.ndarray, u: Any) -> None:
    """Push lattice coordinates with P(Ẑ|U) in checked chunks (:class:`_CheckedCoder`)."""
    latent.code.push(_CheckedCoder(coder, InputError(
        "these images cannot be coded: their last lattice coordinates lie exactly on the lower edge of the "
        "coded support, which would leave the stream empty (docs/format.md)")), k, u)


def pop_coordinates(coder: Any, latent: LatticeLatentCodec, u: Any) -> np.ndarray:
    """Pop lattice coordinates in checked chunks: a stream that ends before them is a :class:`FormatError`."""
    return latent.code.pop(_CheckedCoder(coder, FormatError(
        "corrupt payload (the stream ends before the lattice coordinates it claims)")), u)


def compress(images: Any, model: ModelLike = DEFAULT_MODEL, lossless: bool = False,
             seed: int | None = None, progress: Progress | None = None) -> bytes:
    """Compress a batch of images into one latcomp container (one entropy-coded stream).

    ``images``: (N, H, W[, C]) or (N, H·W·C) or a single (H, W[, C]) array of bool,
    0/1 integers or float intensities in [0, 1]; :func:`decompress` returns the same
    layout. Lossy mode codes only the lattice point; ``lossless`` (binary images only)
    adds every pixel coded with the decoder's Bernoulli probabilities. ``seed`` fixes
    the 64-bit dither seed (default: random per file); equal inputs and seeds give
    equal bytes on any machine. Raises :class:`InputError` for unusable images.
    """
    m = load_model(model)
    x, layout = as_model_input(images, m.image_shape, lossless)
    if seed is None:
        seed = secrets.randbits(64)
    elif not 0 <= int(seed) < 2**64:
        raise InputError(f"seed must be in [0, 2**64), got {seed}")
    seed = int(seed)
    n = x.shape[0]
    u = m.latent.seeded_dither(seed, n)
    k = np.empty(u.shape, np.int64)
    for part in _chunks(n):
        k[part] = m.latent.quantize(m.net.encode(x[part]), u[part])
        if progress:
            progress("encode", part.stop, n)
    pixels = x.astype(np.uint8) if lossless else None
    header = Header(lossless=lossless, layout=layout, model_id=m.model_id, seed=seed, payload_crc=0,
                    content_crc=content_crc(k, pixels), count=n, image_shape=m.image_shape,
                    payload_bytes=0, lattice=m.header_lattice)
    coded = pack(header, _ans_payload(m, k, u, pixels, progress))
    if not lossless:
        return coded
    # Never much more than the raw bits: store the pixels raw (format version 2) if that is smaller.
    stored = pack(dataclasses.replace(header, stored=True, lattice=m.latent.lattice.spec),
                  np.packbits(pixels).tobytes() + _ans_payload(m, k, u))
    return stored if len(stored) < len(coded) else coded


def read_header(data: bytes) -> Header:
    """Parse and verify a container's header and checksums (no model needed)."""
    return unpack(data)[0]


def decompress(data: bytes, model: ModelLike = DEFAULT_MODEL, progress: Progress | None = None,
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
    header, payload = unpack(data)
    m = load_model(model)
    _check_claims(header, m)
    n, size = header.count, int(np.prod(m.image_shape))
    u = _SeededDither(m.latent, header.seed, n)
    with entropy_decoding():
        coder = constriction.stream.stack.AnsCoder(payload_to_words(payload[header.stored_bytes:]))
        k = pop_coordinates(coder, m.latent, u)
        parts, zeros = [], 0
        if header.stored:
            parts = [_stored_pixels(payload[:header.stored_bytes], n, size)]
        elif header.lossless:
            parts, zeros = _pop_pixels(coder, m, k, u, progress)
        empty = coder.is_empty()
    if not empty or content_crc(k, parts if header.lossless else None, zeros * size) != header.content_crc:
        raise FormatError("decoded content does not match its checksum: the file is corrupt "
                          "(or was written by an incompatible latcomp)")
    if header.lossless:
        out = _joined(parts, n, size)
    else:
        out = _mean_images(m, k, u, np.float64 if dtype is None else np.uint8, progress)
    return _restore_layout(out, header.layout, m.image_shape)


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


def _mean_images(m: LoadedModel, k: np.ndarray, u: DitherRows, dtype: type, progress: Progress | None
                 ) -> np.ndarray:
    """The lossy images Q(D=1 | Z − U), chunk by chunk: float64 means, or (``np.uint8``) their :func:`to_uint8`."""
    n = len(k)
    out = np.empty((n, int(np.prod(m.image_shape))), dtype)
    for part in _chunks(n):
        probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
        out[part] = probs if dtype is np.float64 else to_uint8(probs)
        if progress:
            progress("decode", part.stop, n)
    return out


@contextmanager
def entropy_decoding() -> Iterator[None]:
    """Decoding a stream: an exception of the entropy coder itself becomes a one-line :class:`FormatError`.

    constriction raises ValueError, AssertionError or PanicException (a BaseException) for
    impossible streams; our own errors and interrupts pass unchanged.
    """
    try:
        yield
    except (CodecError, KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:
        raise FormatError(f"corrupt payload (entropy decoder: {type(exc).__name__})") from None


def check_model(header: Header, m: LoadedModel) -> None:
    """Refuse (ModelMismatchError) a file written with another model or on another lattice."""
    if header.model_id != m.model_id:
        raise ModelMismatchError(f"the file was encoded with model {header.model_id.hex()}, but "
                                 f"{m.directory} is model {m.model_id.hex()}; decode with the same model")
    if header.lattice not in (m.header_lattice, m.latent.lattice.spec):
        raise ModelMismatchError(f"the file was coded on lattice {header.lattice or 'z (rectangular)'}, but "
                                 f"{m.directory} uses {m.latent.lattice.spec}")


def _check_claims(header: Header, m: LoadedModel) -> None:
    """Refuse, before decoding, a file of another model or one whose header claims the impossible.

    An ANS stream of P bytes holds at most 8·P + 64 bits, and each image needs at least
    ``min_bits_per_item`` bits for its lattice point plus :data:`PIXEL_MIN_BITS` per coded pixel,
    so a count the payload cannot hold is a :class:`FormatError`; a possible one beyond
    :data:`MAX_PIXELS` is a :class:`LimitError`.
    """
    check_model(header, m)
    if header.image_shape != m.image_shape:
        raise ModelMismatchError(f"the file holds {'×'.join(map(str, header.image_shape))} images but "
                                 f"the model takes {'×'.join(map(str, m.image_shape))}")
    bits_per_image = m.latent.code.min_bits_per_item()
    if header.lossless and not header.stored:
        bits_per_image += int(np.prod(m.image_shape)) * PIXEL_MIN_BITS
    if header.count * bits_per_image > 8 * (header.payload_bytes - header.stored_bytes) + 64:
        raise FormatError(f"corrupt header ({header.count} images cannot fit in {header.payload_bytes} "
                          f"payload bytes)")
    if header.pixel_count > MAX_PIXELS:
        raise LimitError(f"the file claims {header.count} images ({header.pixel_count} pixels), more than "
                         f"the limit of {MAX_PIXELS} pixels per file")


def _pop_pixels(coder: Any, m: LoadedModel, k: np.ndarray, u: DitherRows, progress: Progress | None
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
        parts.append(m.pixels.pop(coder, probs))
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
    m = load_model(model)
    x, _ = as_model_input(images, m.image_shape, lossless)
    u = m.latent.seeded_dither(seed, x.shape[0])
    k = m.latent.quantize(m.net.encode(x), u)
    out = {"latent": m.latent.code.ideal_bits(k, u), "pixels": 0.0}
    if lossless:
        for part in _chunks(x.shape[0]):
            probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
            out["pixels"] += m.pixels.ideal_bits(x[part], probs)
        out["pixels"] = min(out["pixels"], float(x.size))
    return out
