"""Photos through the scale hyperprior (photo-hyperprior): the torch-free runtime and its two-level code.

Pipeline (:mod:`latcomp.nn.hyperprior` at coding time)::

    encode:  y = g_a(x) per image (float32 numpy, banded as the factorized model's)
             z = h_a(|y|)                      float32 numpy, only the encoder runs it
             U_z, U = dithers(seed)            one uniform stream: the rows of y, then those of z
             k_z = K(z + U_z);  W_z = Z_z − U_z
             j = h_s(W_z) in exact integer arithmetic (:mod:`latcomp.photo.hyper_network`)
             k = K(y + U);  push k under the conditional code with b = SCALE_TABLE[j], then push k_z
             under the hyper-latent's static code (so the decoder pops k_z first)
    decode:  pop k_z; W_z; j = h_s(W_z) (the same integers); pop k; x̂ = g_s(Z − U)

Only the lattice coordinates are entropy coded; both levels are covered by the content CRC. The
entropy parameters of y are table indices computed exactly from k_z and the seed, so the decoder
rebuilds them bit for bit on any machine, BLAS, thread count or band size.
"""

from __future__ import annotations

import math
import zlib
from itertools import accumulate
from typing import Any, ClassVar

import numpy as np

from latcomp.container import PHOTO_VERSION, Header, pack, unpack
from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.errors import FormatError, ModelMismatchError
from latcomp.families import ModelShapeError
from latcomp.families.photo import latent_size
from latcomp.latent_codecs import ConditionalLatticeCodec, LatticeLatentCodec
from latcomp.lattices.product import ProductLattice
from latcomp.photo.codec import as_photos, check_sizes, checked_effort, padded, photo_crc, synthesize_images
from latcomp.photo.hyper_network import ExactHyperSynthesis
from latcomp.photo.network import NumpyPhotoFactorized, _layers, conv_down, image_batches, image_windows
from latcomp.runtime.coding import (
    Progress,
    SeededDither,
    check_payload_claim,
    entropy_decoding,
    file_seed,
    lazy_dither,
    new_coder,
    payload,
    pop_coordinates,
    push_coordinates,
    require_content,
)
from latcomp.runtime.model import LoadedModel, ModelLike, check_model, load_model
from latcomp.steps import spans

#: h_a halves the latent's sides twice.
HYPER_DOWNSAMPLING = 4
#: Hyper-latent rows of context of a band of h_a (z row r reads latent rows 4r − 7 … 4r + 7).
HYPER_HALO = 2
#: Bound on the elements of one im2col block of h_a's 3×3 convolution (float32).
BLOCK_ELEMENTS = 1 << 22


def hyper_size(rows: int, cols: int) -> tuple[int, int]:
    """The hyper-latent's (rows, columns) of a main latent of ``rows`` × ``cols`` positions."""
    return -(-rows // HYPER_DOWNSAMPLING), -(-cols // HYPER_DOWNSAMPLING)


def conv3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv2d(k=3, stride 1, padding 1): (N, C_in, H, W) → (N, C_out, H, W), one im2col product (float32)."""
    n, c_in, h, w = x.shape
    padded_x = np.pad(np.asarray(x, np.float32), ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([padded_x[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=2)
    kernel = np.asarray(weight, np.float32).reshape(weight.shape[0], c_in * 9)
    return (kernel @ cols.reshape(n, c_in * 9, h * w)).reshape(n, -1, h, w) + bias[:, None, None]


class NumpyPhotoHyperprior(NumpyPhotoFactorized):
    """Numpy runtime of :class:`latcomp.nn.hyperprior.PhotoHyperprior`: g_a, g_s, h_a (float32), h_s (exact),
    the main latent's conditional code (``latent``) and the hyper-latent's static code (``hyper``)."""

    architecture: ClassVar[str] = "photo-hyperprior"

    def __init__(self, weights: dict[str, np.ndarray], hparams: dict[str, Any]):
        try:
            self.analysis = _layers(weights, "analysis")
            self.synthesis = _layers(weights, "synthesis")
            self.hyper_analysis = [tuple(np.asarray(weights[f"hyper_analysis.{i}.{part}"], np.float32)
                                         for part in ("weight", "bias")) for i in (0, 2, 4)]
            self.hyper_synthesis = ExactHyperSynthesis(weights)
            latent, channels = int(hparams["latent"]), int(hparams["channels"])
            self.latent = ConditionalLatticeCodec(ProductLattice(hparams["lattice"], latent),
                                                  weights["codec.lattice.delta"])
            self.hyper = LatticeLatentCodec.from_spec("z", channels, weights["codec.hyper.delta"],
                                                      weights["codec.hyper.b"])
            _ = self.latent.code, self.hyper.code  # build the entropy models now: validates their parameters
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelShapeError(f"not a usable photo-hyperprior model ({exc})") from None

    def hyper_encode(self, y: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """z = h_a(|y|) of one image's latent rows y (rows·cols, M): rows (h_z·w_z, N) float64, in bands."""
        magnitude = np.abs(np.asarray(y, np.float32)).T.reshape(-1, rows, cols)
        hz, wz = hyper_size(rows, cols)
        per_row = 9 * magnitude.shape[0] * HYPER_DOWNSAMPLING * cols
        out = []
        for a, b in spans(hz, max(1, BLOCK_ELEMENTS // per_row)):
            top = HYPER_DOWNSAMPLING * max(0, a - HYPER_HALO)
            band = magnitude[:, top:HYPER_DOWNSAMPLING * (b + HYPER_HALO)]
            z = self._hyper_analysis(band[None])[0]
            out.append(z[:, a - top // HYPER_DOWNSAMPLING:b - top // HYPER_DOWNSAMPLING])
        z = np.concatenate(out, axis=1)
        return z.reshape(z.shape[0], -1).T.astype(np.float64)

    def _hyper_analysis(self, x: np.ndarray) -> np.ndarray:
        """h_a's layers (float32) on a batch |y| (N, M, H, W): z (N, C, ⌈H/4⌉, ⌈W/4⌉)."""
        (w0, b0), (w1, b1), (w2, b2) = self.hyper_analysis
        x = np.maximum(conv3(x, w0, b0), 0)
        x = np.maximum(conv_down(x, w1, b1), 0)
        return conv_down(x, w2, b2)

    def prior(self, w_z: np.ndarray, rows: int, cols: int) -> LaplaceRows:
        """The main latent's priors of one image from its hyper-latent rows W_z = Z_z − U_z (exact table indices)."""
        return self.priors(w_z, [(rows, cols)])

    def priors(self, w_z: np.ndarray, shapes: list[tuple[int, int]]) -> LaplaceRows:
        """:meth:`prior` of every image (its latent ``shapes``) from the hyper-latent rows of all of them, image
        after image; small images of one size go through h_s in batches (:func:`image_batches` of each
        :func:`image_windows`), to the same exact indices."""
        index = np.empty((sum(rows * cols for rows, cols in shapes), self.hyper_synthesis.layers[-1].c_out), np.uint8)
        start, start_z = 0, 0
        for first, last in image_windows(shapes):
            window = shapes[first:last]
            offsets = [0, *accumulate(rows * cols for rows, cols in window)]
            offsets_z = [0, *accumulate(math.prod(hyper_size(*shape)) for shape in window)]
            for batch in image_batches(window):
                (rows, cols), n = window[batch[0]], len(batch)
                hz, wz = hyper_size(rows, cols)
                w = np.concatenate([w_z[start_z + offsets_z[i]:start_z + offsets_z[i + 1]] for i in batch])
                j = self.hyper_synthesis.indices(w.reshape(n, hz * wz, -1).transpose(0, 2, 1).reshape(n, -1, hz, wz),
                                                 rows, cols)
                for i, image_index in zip(batch, j.reshape(n, j.shape[1], rows * cols).transpose(0, 2, 1), strict=True):
                    index[start + offsets[i]:start + offsets[i + 1]] = image_index
            start, start_z = start + offsets[-1], start_z + offsets_z[-1]
        return LaplaceRows.from_indices(index)


def hyper_start(net: NumpyPhotoHyperprior, rows: int) -> int:
    """The first dither row of the hyper-latent: its uniforms follow the main latent's in the file's stream."""
    return -(-rows * net.latent.dim // net.hyper.dim)


def _crc(k: np.ndarray, k_z: np.ndarray, channels: int, sizes: Any) -> int:
    """The content CRC: the main latent's coordinates, channels and sizes (as the factorized file's), then k_z."""
    return zlib.crc32(np.ascontiguousarray(k_z, "<i8").tobytes(), photo_crc(k, channels, sizes))


def _model(model: ModelLike) -> LoadedModel:
    m = load_model(model)
    if not isinstance(m.net, NumpyPhotoHyperprior):
        raise ModelMismatchError(f"{m.directory} is not a photo-hyperprior model")
    return m


def compress(images: Any, model: ModelLike, seed: int | None = None, progress: Progress | None = None,
             effort: int = 0) -> bytes:
    """Compress photos with a photo-hyperprior model into one container (format version 3, one ANS stream).

    ``images``, ``seed``, ``progress`` and ``effort`` as :func:`latcomp.photo.codec.compress` (effort refines
    both levels); :func:`decompress` returns the same images.
    """
    m = _model(model)
    net: NumpyPhotoHyperprior = m.net
    photos, layout, channels = as_photos(images)
    effort = checked_effort(photos, effort)
    seed = file_seed(seed)
    shapes = [latent_size(*im.shape[:2]) for im in photos]
    ys = []
    for im in photos:
        ys.append(net.encode_pixels(padded(im)))
        if progress:
            progress("encode", len(ys), len(photos))
    z = np.concatenate([net.hyper_encode(y, *shape) for y, shape in zip(ys, shapes, strict=True)])
    y = np.concatenate(ys)
    u_z = net.hyper.seeded_dither(seed, len(z), hyper_start(net, len(y)))
    k_z = net.hyper.quantize(z, u_z)
    u = net.latent.seeded_dither(seed, len(y))
    if effort:
        from latcomp.photo.effort import Level, refine

        y, z = refine(m, photos, [Level(y, u, net.latent, shapes),
                                  Level(z, u_z, net.hyper, [hyper_size(*shape) for shape in shapes])], effort, progress)
        k_z = net.hyper.quantize(z, u_z)
    k = net.latent.quantize(y, u)
    coder = new_coder()
    push_coordinates(coder, net.latent, k, u, net.priors(net.hyper.reconstruct(k_z, u_z), shapes))
    push_coordinates(coder, net.hyper, k_z, u_z)
    sizes = tuple(im.shape[:2] for im in photos)
    header = Header(lossless=False, layout=layout, model_id=m.model_id, seed=seed, payload_crc=0,
                    content_crc=_crc(k, k_z, channels, sizes), count=len(photos), image_shape=(0, 0, channels),
                    payload_bytes=0, lattice=net.latent.lattice.spec, sizes=sizes)
    return pack(header, payload(coder))


def decompress(data: bytes, model: ModelLike, progress: Progress | None = None) -> Any:
    """Decode a container of :func:`compress` with its model: the uint8 images, sizes and channels restored
    (``progress`` as :func:`latcomp.photo.codec.decompress`)."""
    header, stream = unpack(data)
    if header.version != PHOTO_VERSION:
        raise ModelMismatchError("not a photo file")
    m = _model(model)
    net: NumpyPhotoHyperprior = m.net
    shapes, rows, rows_z = _check_claims(header, m)
    u_z = lazy_dither(net.hyper, header.seed, rows_z, hyper_start(net, rows))
    with entropy_decoding(stream) as coder:
        k_z = pop_coordinates(coder, net.hyper, u_z)
        priors = net.priors(net.hyper.reconstruct(k_z, u_z[0:rows_z]), shapes)
        k = pop_coordinates(coder, net.latent, lazy_dither(net.latent, header.seed, rows), priors)
        empty = coder.is_empty()
    del priors
    if not empty:
        raise FormatError("corrupt payload (data after the lattice coordinates)")
    require_content(_crc(k, k_z, header.channels, header.sizes) == header.content_crc)
    # the dithers again, each row once as the synthesis reaches it: the pops' copy of every row is freed
    return synthesize_images(net, k, SeededDither(net.latent, header.seed, rows), header, progress)


def _check_claims(header: Header, m: LoadedModel) -> tuple[list[tuple[int, int]], int, int]:
    """The latent sizes of the file's images and its numbers of latent and hyper-latent rows, after refusing
    another model or impossible claims (the limits of :func:`latcomp.photo.codec.check_sizes`)."""
    check_model(header, m)
    shapes = check_sizes(header.sizes)
    rows = sum(h * w for h, w in shapes)
    rows_z = sum(int(np.prod(hyper_size(h, w))) for h, w in shapes)
    net = m.net
    check_payload_claim(f"{header.count} images of {rows} latent and {rows_z} hyper-latent vectors", 1,
                        rows * net.latent.min_bits_per_item() + rows_z * net.hyper.min_bits_per_item(),
                        header.payload_bytes)
    return shapes, rows, rows_z
