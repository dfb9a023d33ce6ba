"""Photos of any size through the lattice latent: :func:`compress` and :func:`decompress`.

Pipeline (the MNIST codec's, Sections 3.2–3.3 of the paper, on a convolutional latent)::

    encode:  x = the image, sides padded to a multiple of 16 (edge pixels repeated),
                 grayscale repeated on R, G, B
             y = g_a(x)            one latent vector of M channels per 16×16 block
             U = dither(seed)       for the rows of all images in order
             k = coords K_Λ(y + U)  and push k with P(Ẑ|U), the sequential box code
    decode:  U = dither(seed); pop k; x̂ = g_s(Z − U); crop; round to 8 bits
             (grayscale: the luma of x̂).

All images of a call share one ANS stream. The file is a container of format version 3
(:mod:`latcomp.container`): the size of every image and its channel count are recorded,
so decoding restores them. Only the lattice coordinates are entropy coded and checked
by the content CRC; the transforms run in float32 (:mod:`latcomp.photo.network`).
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import numpy as np

from latcomp.container import MAX_PHOTO_ROWS, PHOTO_VERSION, Header, content_crc, pack, unpack
from latcomp.entropy.lattice_code import DitherRows
from latcomp.errors import CodecError, FormatError, InputError, LimitError, ModelMismatchError
from latcomp.families.photo import DOWNSAMPLING, latent_size
from latcomp.modelfile import (
    DEFAULT_PHOTO_QUALITY,
    PHOTO_MODEL_NAMES,
    PHOTO_QUALITIES,
    shipped_model,
    shipped_photo_models,
)
from latcomp.photo.network import NumpyPhotoFactorized, image_batches, image_windows
from latcomp.runtime import coding
from latcomp.runtime.model import LoadedModel, ModelLike, check_model, load_model

#: Largest image (H·W) the photo codec takes: 2^25 pixels (33.5 megapixels: 8192 × 4096, 8K UHD's 7680 × 4320, a
#: 24-megapixel camera's 6000 × 4000), the pixels of a file's MAX_PHOTO_ROWS latent rows. The transforms work
#: in bands (:data:`latcomp.photo.network.BAND_PIXELS`), so what grows with the image is its buffers and the
#: latent (docs/results/photo-sizes.md); a file that lies is refused within 500 MB (docs/results/hostile.md).
MAX_PHOTO_PIXELS = MAX_PHOTO_ROWS * 256
#: ITU-R 601-2 luma weights (Pillow's RGB → L).
LUMA = np.array([0.299, 0.587, 0.114])


def photo_model(quality: int = DEFAULT_PHOTO_QUALITY) -> Any:
    """The directory of the shipped photo model of ``quality`` (one of :data:`latcomp.modelfile.PHOTO_QUALITIES`)."""
    if quality not in PHOTO_QUALITIES:
        raise InputError(f"quality must be one of {', '.join(map(str, PHOTO_QUALITIES))}, got {quality}")
    return shipped_model(PHOTO_MODEL_NAMES[0].format(quality))


def as_photos(images: Any) -> tuple[list[np.ndarray], str, int]:
    """Validate images: one (H, W) or (H, W, 3) uint8 array or a list of them, all gray or all RGB.

    Returns the images, the layout ("single" or "batch") and the channel count (1 or 3).
    """
    single = isinstance(images, np.ndarray)
    photos = [np.asarray(images)] if single else [np.asarray(im) for im in images]
    if not photos:
        raise InputError("no images to compress")
    channels = {1 if im.ndim == 2 else im.shape[-1] if im.ndim == 3 else 0 for im in photos}
    if len(channels) != 1 or channels.pop() not in (1, 3):
        raise InputError("photos must be all (H, W) grayscale or all (H, W, 3) RGB arrays")
    for im in photos:
        if im.dtype != np.uint8:
            raise InputError(f"photos must be uint8 arrays (8-bit pixels), got {im.dtype}")
    check_sizes([im.shape[:2] for im in photos])
    return photos, "single" if single else "batch", 1 if photos[0].ndim == 2 else 3


def check_sizes(sizes: Any) -> list[tuple[int, int]]:
    """The latent sizes (rows, columns) of images of ``sizes`` (height, width), or LimitError for an image outside
    1 … :data:`MAX_PHOTO_PIXELS` pixels or more than :data:`~latcomp.container.MAX_PHOTO_ROWS` latent rows in all.

    The work and memory of coding grow with the latent rows, one per 16×16 block of an image whose sides are
    rounded up, so the limit counts them (a 1×1 image costs a whole row); the encoder and the decoder (before
    it computes or allocates anything for the rows) apply the same limit.
    """
    for height, width in sizes:
        if height * width > MAX_PHOTO_PIXELS or min(height, width) < 1:
            raise LimitError(f"a {width}×{height} image is outside the photo codec's limits (1 to {MAX_PHOTO_PIXELS} "
                             "pixels per image)")
    shapes = [latent_size(h, w) for h, w in sizes]
    rows = sum(lh * lw for lh, lw in shapes)
    if rows > MAX_PHOTO_ROWS:
        raise LimitError(f"{len(shapes)} images of {rows} latent rows of 16×16 pixels (sides rounded up) exceed the "
                         f"photo codec's limits: a file holds {MAX_PHOTO_ROWS} rows (one 8192×4096 image); split them "
                         "into several files")
    return shapes


def padded(image: np.ndarray) -> np.ndarray:
    """(H, W[, 3]) uint8 → (H', W', 3) uint8 RGB with H', W' multiples of 16 (edge pixels repeated)."""
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
    h, w = rgb.shape[:2]
    ph, pw = (DOWNSAMPLING * n for n in latent_size(h, w))
    return np.pad(rgb, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")


def to_pixels(x_hat: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """g_s output (3, H', W') → the (height, width[, 3]) uint8 image (cropped, clipped, rounded; gray = luma)."""
    rgb = np.clip(x_hat[:, :height, :width].transpose(1, 2, 0).astype(np.float64), 0.0, 1.0)
    values = rgb @ LUMA if channels == 1 else rgb
    return np.rint(values * 255.0).astype(np.uint8)


def synthesize(net: NumpyPhotoFactorized, w: np.ndarray, sizes: Sequence[tuple[int, int]],
               channels: Sequence[int]) -> list[np.ndarray]:
    """The (height, width[, 3]) uint8 images of a batch of :func:`~latcomp.photo.network.image_batches` (``sizes``
    of one latent size, ``channels`` 1 or 3 each) from their rows ``w`` of Z − U, image after image: one image
    band by band, several through one batched g_s, each bit for bit as alone (call it under
    :func:`one_blas_thread`)."""
    shape = latent_size(*sizes[0])
    if len(sizes) > 1:
        return [to_pixels(x_hat, height, width, c)
                for x_hat, (height, width), c in zip(net.decode_batch(w, *shape), sizes, channels, strict=True)]
    (height, width), (c,) = sizes[0], channels
    out = np.empty((height, width) if c == 1 else (height, width, 3), np.uint8)
    for top, x_hat in net.decode_bands(w, *shape):  # every band starts in the image
        out[top:top + x_hat.shape[1]] = to_pixels(x_hat, height - top, width, c)
    return [out]


def one_blas_thread() -> Any:
    """A context in which the float32 synthesis runs on one BLAS thread, whatever ``OMP_NUM_THREADS`` says: a
    multi-threaded BLAS may split its sums differently and move a few pixels by one level, so this pins the
    summation order and the decoded pixels are the same for every thread count and run on a machine
    (docs/format.md says what may still differ across machines). Entered once per file: it reads the process's
    libraries, about a millisecond, which per image would cost a file of many tiny images more than their pixels."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def synthesize_images(net: NumpyPhotoFactorized, k: np.ndarray, u: DitherRows, header: Header,
                      progress: coding.Progress | None) -> Any:
    """The images of a decoded file: each image's rows of Z − U (coordinates ``k``, dithers ``u``) through g_s,
    in the layout the header records (``progress`` called after each image); an image the header marks gray
    (``header.gray``, in a file of gray and colour images) decodes as gray, exactly as in a gray file.
    Small images of one size are decoded in batches (:func:`~latcomp.photo.network.image_batches` of each
    :func:`~latcomp.photo.network.image_windows`), to the pixels each gives alone."""
    images: list[Any] = [None] * header.count
    channels = [1 if gray else 3 for gray in header.gray] if header.gray else [header.channels] * header.count
    shapes = [latent_size(height, width) for height, width in header.sizes]
    start, done = 0, 0
    with one_blas_thread():
        for first, last in image_windows(shapes):
            offsets = [0, *accumulate(rows * cols for rows, cols in shapes[first:last])]
            alone = last - first == 1   # perhaps a large image: its bands read their own rows of Z − U only
            w = LatentRows(net, k, u, start, offsets[-1])
            w = w if alone else w[:]      # small images: the window's rows at once
            for batch in image_batches(shapes[first:last]):
                rows = w if alone else np.concatenate([w[offsets[i]:offsets[i + 1]] for i in batch])
                decoded = synthesize(net, rows, [header.sizes[first + i] for i in batch],
                                     [channels[first + i] for i in batch])
                for i, image in zip(batch, decoded, strict=True):
                    images[first + i] = image
                    done += 1
                    if progress:
                        progress("decode", done, header.count)
            start += offsets[-1]
    return images[0] if header.layout == "single" else images


class LatentRows:
    """Rows ``start`` … ``start + count`` − 1 of a file's Z − U (coordinates ``k``, dithers ``u``), computed when
    sliced: the bands of a large image hold their own rows only, not the image's."""

    def __init__(self, net: NumpyPhotoFactorized, k: np.ndarray, u: DitherRows, start: int, count: int):
        self.net, self.k, self.u, self.start, self.count = net, k, u, start, count

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, _ = rows.indices(self.count)
        a, b = self.start + a, self.start + max(a, b)
        return self.net.latent.reconstruct(self.k[a:b], self.u[a:b])


def checked_effort(photos: list[np.ndarray], effort: Any) -> Any:
    """The encoder ``effort`` for ``photos``, checked before any work (:func:`latcomp.photo.effort.check`: the
    steps, the size limit); 0 when none is asked for, which needs no torch."""
    if not effort:
        return 0
    from latcomp.photo.effort import check

    return check(photos, effort)


def _photo_model(model: ModelLike) -> LoadedModel:
    m = load_model(model)
    if m.modality != "photo":
        raise ModelMismatchError(f"{m.directory} is not a photo model (it is a {m.modality} model)")
    return m


def compress(images: Any, model: ModelLike | None = None, quality: int = DEFAULT_PHOTO_QUALITY,
             seed: int | None = None, progress: coding.Progress | None = None, effort: int = 0) -> bytes:
    """Compress photos into one container (format version 3, one ANS stream for all of them).

    ``images``: one (H, W) grayscale or (H, W, 3) RGB uint8 array, or a list of them (all
    gray or all RGB, any sizes); :func:`decompress` returns the same. ``model``: a photo
    model directory (default: the shipped model of ``quality``; a family with a codec of its own,
    :attr:`latcomp.families.Family.codec`, codes with that). ``seed`` fixes the dither
    (default: random); equal inputs and seeds give equal bytes. ``progress(stage, done, total)`` is
    called after each image's transform. ``effort`` K > 0 refines each image's latent by K gradient
    steps before coding (:mod:`latcomp.photo.effort`; needs torch; the file decodes as any other).
    """
    m = _photo_model(model if model is not None else photo_model(quality))
    if m.family.codec:
        return importlib.import_module(m.family.codec).compress(images, m, seed=seed, progress=progress,
                                                                effort=effort)
    photos, layout, channels = as_photos(images)
    effort = checked_effort(photos, effort)
    seed = coding.file_seed(seed)
    rows = []
    for i, im in enumerate(photos):
        rows.append(m.net.encode_pixels(padded(im)))
        if progress:
            progress("encode", i + 1, len(photos))
    y = rows[0] if len(rows) == 1 else np.concatenate(rows)
    del rows  # the latents are y's now: no second copy for the rest of the call
    u = m.latent.seeded_dither(seed, len(y))
    if effort:
        from latcomp.photo.effort import Level, refine

        (y,) = refine(m, photos, [Level(y, u, m.latent, [latent_size(*im.shape[:2]) for im in photos])], effort,
                      progress)
    k = m.latent.quantize(y, u)
    coder = coding.new_coder()
    coding.push_coordinates(coder, m.latent, k, u)
    header = Header(lossless=False, layout=layout, model_id=m.model_id, seed=seed, payload_crc=0,
                    content_crc=photo_crc(k, channels, [im.shape[:2] for im in photos]),
                    count=len(photos), image_shape=(0, 0, channels),
                    payload_bytes=0, lattice=m.latent.lattice.spec, sizes=tuple(im.shape[:2] for im in photos))
    return pack(header, coding.payload(coder))


def decompress(data: bytes, model: ModelLike | None = None, progress: coding.Progress | None = None) -> Any:
    """Decode a container of :func:`compress`: the uint8 images, sizes and channels restored.

    ``model`` defaults to the shipped photo model the file names (its model id);
    ``progress(stage, done, total)`` is called after each image's synthesis. Raises
    :class:`FormatError` for malformed or corrupt data and :class:`ModelMismatchError`
    for a file of another model.
    """
    header, body = unpack(data)
    if header.version != PHOTO_VERSION:
        raise ModelMismatchError("not a photo file (it holds fixed-size images: use latcomp.codec.decompress)")
    m = _photo_model(model if model is not None else _model_of(header))
    if m.family.codec:
        return importlib.import_module(m.family.codec).decompress(data, m, progress=progress)
    rows = _check_claims(header, m)
    k = _pop(body, m, coding.lazy_dither(m.latent, header.seed, rows))
    coding.require_content(photo_crc(k, header.channels, header.sizes) == header.content_crc)
    # the dithers again, each row once as the synthesis reaches it: the pops' copy of every row is freed
    return synthesize_images(m.net, k, coding.SeededDither(m.latent, header.seed, rows), header, progress)


def _model_of(header: Header) -> Any:
    """The shipped photo model whose id the file records (ModelMismatchError if none)."""
    for directory in shipped_photo_models():
        try:
            if load_model(directory).model_id == header.model_id:
                return directory
        except CodecError:
            continue
    raise ModelMismatchError(f"the file was encoded with model {header.model_id.hex()}, which is none of the "
                             f"shipped photo models; pass its model directory")


def _check_claims(header: Header, m: LoadedModel) -> int:
    """The number of latent rows of the file, after refusing another model or impossible claims."""
    check_model(header, m)
    rows = sum(lh * lw for lh, lw in check_sizes(header.sizes))
    coding.check_payload_claim(f"{header.count} images of {rows} latent vectors", rows, m.latent.min_bits_per_item(),
                        header.payload_bytes)
    return rows


def photo_crc(k: np.ndarray, channels: int, sizes: Any) -> int:
    """The content CRC of a photo file: the lattice coordinates, then the channel count and every
    (height, width) as u32 LE, so that a header whose CRCs were recomputed cannot change the output shape."""
    shape = np.array([channels, *(s for size in sizes for s in size)], "<u4").tobytes()
    return zlib.crc32(shape, content_crc(k))


def _pop(data: bytes, m: LoadedModel, u: DitherRows) -> np.ndarray:
    """The lattice coordinates of the stream; the stream must end with them."""
    with coding.entropy_decoding(data) as coder:
        k = coding.pop_coordinates(coder, m.latent, u)
        empty = coder.is_empty()
    if not empty:
        raise FormatError("corrupt payload (data after the lattice coordinates)")
    return k
