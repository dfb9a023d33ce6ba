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
file format is in :mod:`latcomp.container` and ``docs/format.md``. Everything the
decoder recomputes (dither, entropy parameters, network outputs) is bit-identical
on every machine, thread count and batch size; a CRC32 of the decoded content
turns any residual mismatch into an error instead of a wrong image.

The model-specific parts live in a :class:`LoadedModel`: the numpy network
adapter (:mod:`latcomp.exact.networks`, by the config's architecture) and its latent
codec (:class:`latcomp.latent_codecs.LatticeLatentCodec`: lattice, dither, prior and
the code of lattice points).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import constriction
import numpy as np

from .container import MAX_COUNT, MODEL_ID_BYTES, Header, content_crc, pack, payload_to_words, unpack, words_to_payload
from latcomp.entropy.bernoulli import BernoulliPixelModel
from latcomp.latent_codecs.lattice import LatticeLatentCodec
from .errors import CodecError, FormatError, InputError, ModelMismatchError
from .modelfile import CODEC_PREFIX, DEFAULT_MODEL, WEIGHTS, ModelFileError, load_weights_numpy, read_config
from latcomp.exact.networks import CHUNK, CodecModel, ModelShapeError, build_numpy_model

__all__ = ["compress", "decompress", "read_header", "load_model", "code_lengths", "LoadedModel", "to_uint8",
           "CodecError", "FormatError", "InputError", "ModelMismatchError"]

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


def _layout_of(shape: tuple[int, ...], image_shape: tuple[int, int, int]) -> str:
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
    layout = _layout_of(arr.shape, image_shape)
    count = 1 if layout == "single" else arr.shape[0]
    if not 1 <= count <= MAX_COUNT:
        raise InputError(f"need between 1 and {MAX_COUNT} images, got {count}")
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


def to_uint8(mean: np.ndarray) -> np.ndarray:
    """Decoder means in [0, 1] (or 0/1 pixels) → 8-bit intensities round(255·x)."""
    return np.rint(np.asarray(mean, np.float64) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- compress / decompress


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


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
    coder = constriction.stream.stack.AnsCoder()
    pixels = None
    if lossless:
        pixels = x.astype(np.uint8)
        for part in reversed(_chunks(n)):  # a stack: the last chunk is pushed first
            probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
            m.pixels.push(coder, pixels[part], probs)
            if progress:
                progress("pixels", n - part.start, n)
    m.latent.code.push(coder, k, u)
    payload = words_to_payload(coder.get_compressed())
    header = Header(lossless=lossless, layout=layout, model_id=m.model_id, seed=seed, payload_crc=0,
                    content_crc=content_crc(k, pixels), count=n, image_shape=m.image_shape,
                    payload_bytes=len(payload), lattice=m.header_lattice)
    return pack(header, payload)


def read_header(data: bytes) -> Header:
    """Parse and verify a container's header and checksums (no model needed)."""
    return unpack(data)[0]


def decompress(data: bytes, model: ModelLike = DEFAULT_MODEL, progress: Progress | None = None) -> np.ndarray:
    """Decode a container made by :func:`compress` with the same model.

    Returns the images in the layout given to :func:`compress`: for a lossless file
    the exact binary pixels (uint8 0/1); for a lossy file the decoder's mean image
    Q(D=1 | Z − U) as float64 in [0, 1] (:func:`to_uint8` gives 8-bit pixels).
    Raises :class:`FormatError` for malformed or corrupt data and
    :class:`ModelMismatchError` for a file written with another model; never
    returns wrong images silently.
    """
    header, payload = unpack(data)
    m = load_model(model)
    if header.model_id != m.model_id:
        raise ModelMismatchError(f"the file was encoded with model {header.model_id.hex()}, but "
                                 f"{m.directory} is model {m.model_id.hex()}; decode with the same model")
    if header.lattice != m.header_lattice:
        raise ModelMismatchError(f"the file was coded on lattice {header.lattice or 'z (rectangular)'}, but "
                                 f"{m.directory} uses {m.latent.lattice.spec}")
    if header.image_shape != m.image_shape:
        raise ModelMismatchError(f"the file holds {'×'.join(map(str, header.image_shape))} images but "
                                 f"the model takes {'×'.join(map(str, m.image_shape))}")
    n = header.count
    # An ANS stream of P bytes holds at most about 8·P + 64 bits: refuse impossible counts at once.
    if 0.5 * n * m.latent.code.min_bits_per_item() > 8 * len(payload) + 64:
        raise FormatError(f"corrupt header ({n} images cannot fit in {len(payload)} payload bytes)")
    u = m.latent.seeded_dither(header.seed, n)
    try:
        coder = constriction.stream.stack.AnsCoder(payload_to_words(payload))
        k = m.latent.code.pop(coder, u)
        pixels = None
        if header.lossless:
            pixels = np.empty((n, int(np.prod(m.image_shape))), np.uint8)
            for part in _chunks(n):
                probs = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
                pixels[part] = m.pixels.pop(coder, probs)
                if progress:
                    progress("pixels", part.stop, n)
        empty = coder.is_empty()
    except CodecError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # constriction raises ValueError, AssertionError or PanicException
        raise FormatError(f"corrupt payload (entropy decoder: {type(exc).__name__})") from None
    if not empty or content_crc(k, pixels) != header.content_crc:
        raise FormatError("decoded content does not match its checksum: the file is corrupt "
                          "(or was written by an incompatible latcomp)")
    if header.lossless:
        out = pixels
    else:
        out = np.empty((n, int(np.prod(m.image_shape))), np.float64)
        for part in _chunks(n):
            out[part] = m.net.decode_probs(m.latent.reconstruct(k[part], u[part]))
            if progress:
                progress("decode", part.stop, n)
    return _restore_layout(out, header.layout, m.image_shape)


def code_lengths(images: Any, model: ModelLike = DEFAULT_MODEL, lossless: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """Ideal code lengths in bits of what :func:`compress` codes with this seed.

    ``latent``: Σ −log2 P(Ẑ|U) of the lattice coordinates; ``pixels`` (lossless):
    Σ −log2 Q(D | Z − U). The real payload is within a fraction of a percent plus
    one stream flush (~32 bits) of their sum.
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
    return out
