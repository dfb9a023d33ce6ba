"""Photo files (container version 3) of many tiny images: work bounded by the latent rows, before any large work.

Each image costs at least one latent row (a 16×16 block) and its share of a pass through g_s, so the limits count
rows (``MAX_PHOTO_ROWS``); a header's count beyond them is refused before its sizes are decoded, the dither
is computed a row block at a time as the stream reaches it (a stream that ends early costs the rows it
reached), and the synthesis's one-thread BLAS context is entered once per file, not once per image. The
assertions are on deterministic proxies (rows of dither computed, traced memory, calls), not on time.
"""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest
from codec_fixtures import make_photo_model
from hyper_fixtures import lively_model

from latcomp.container import MAX_PHOTO_ROWS, pack, unpack
from latcomp.errors import FormatError, LimitError
from latcomp.modelfile import save_model
from latcomp.photo import codec as photo

MB = 1 << 20


@pytest.fixture(scope="module", params=["factorized z", "factorized e8", "hyperprior e8"])
def model_dir(request, tmp_path_factory):
    """A small photo model of each architecture and lattice (random weights)."""
    directory = tmp_path_factory.mktemp(request.param.replace(" ", "-"))
    if request.param.startswith("hyperprior"):
        save_model(lively_model(1), directory)
        return directory
    return make_photo_model(directory, lattice=request.param.split()[1], seed=3)


def _tiny(data: bytes, count: int, payload: bytes) -> bytes:
    """``data`` re-packed (every CRC valid) claiming ``count`` photos of 1×1 with ``payload``."""
    header, _ = unpack(data)
    return pack(dataclasses.replace(header, count=count, layout="batch", sizes=((1, 1),) * count), payload)


def _random(size: int) -> bytes:
    payload = bytearray(np.random.default_rng(0).bytes(size))
    payload[-1] |= 1
    return bytes(payload)


def test_a_count_beyond_the_latent_rows_is_refused_before_the_sizes_are_decoded(model_dir):
    """2^20 photos of 1×1 (a bomb that once cost 88 s and 2.26 GB): a LimitError from the header alone,
    with less traced memory than the 2^20 sizes would take as Python tuples (~70 MB)."""
    data = _tiny(photo.compress(np.zeros((1, 1, 3), np.uint8), model_dir, seed=1), MAX_PHOTO_ROWS + 1, b"\x01")
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match=f"at most {MAX_PHOTO_ROWS} latent rows"):
            photo.decompress(data, model_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB


def test_the_encoder_and_the_decoder_count_latent_rows_alike(model_dir, monkeypatch):
    """A 1×1 image costs a whole latent row; more rows than a file holds are refused on both sides."""
    assert photo.check_sizes([(4096, 8192)]) == [(256, 512)]  # one image at the pixel limit: the most rows
    with pytest.raises(LimitError, match="latent rows"):
        photo.check_sizes([(4096, 8192), (1, 1)])
    monkeypatch.setattr(photo, "MAX_PHOTO_ROWS", 4)
    images = [np.zeros((1, 1, 3), np.uint8)] * 5
    with pytest.raises(LimitError, match="5 images of 5 latent rows"):
        photo.compress(images, model_dir, seed=1)
    data = photo.compress(images[:4], model_dir, seed=1)
    with pytest.raises(LimitError, match="latent rows"):
        photo.decompress(_tiny(data, 5, unpack(data)[1]), model_dir)


def test_many_tiny_photos_cost_memory_in_proportion_to_their_latent_rows(model_dir):
    """2^10 photos of 1×1 and the fewest random payload bytes their claim allows: the claim passes, decoding
    fails with one error, and its traced peak is a few float64 arrays of the latent rows (coordinates, dither,
    priors, Z − U: 6 of them per coordinate of both levels, and 1 MB), nothing per image beyond its row."""
    net = photo.load_model(model_dir).net
    hyper_dim = net.hyper.dim if hasattr(net, "hyper") else 0
    bits = net.latent.min_bits_per_item() + (net.hyper.min_bits_per_item() if hyper_dim else 0.0)
    rows = 1 << 10
    least = int(rows * bits / 8) + 1  # the fewest bytes the claim check lets through
    data = _tiny(photo.compress(np.zeros((1, 1, 3), np.uint8), model_dir, seed=1), rows, _random(least))
    tracemalloc.start()
    try:
        with pytest.raises(FormatError):
            photo.decompress(data, model_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < rows * 8 * 6 * (net.latent.dim + hyper_dim) + MB, peak


def test_the_one_thread_blas_context_is_entered_once_per_file(model_dir, monkeypatch):
    """Entering threadpoolctl's context reads the process's libraries (about a millisecond): once per file,
    not once per image, so a file of many tiny images costs their pixels and not that."""
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (1 + i % 3, 2, 3), dtype=np.uint8) for i in range(12)]
    data = photo.compress(images, model_dir, seed=2)
    entered = []
    one_blas_thread = photo.one_blas_thread
    monkeypatch.setattr(photo, "one_blas_thread", lambda: entered.append(1) or one_blas_thread())
    out = photo.decompress(data, model_dir)
    assert len(entered) == 1
    assert all(np.array_equal(a.shape, b.shape) for a, b in zip(out, images, strict=True))


def test_a_large_image_is_synthesized_from_its_bands_rows_not_the_whole_latent(model_dir, monkeypatch):
    """Decoding holds Z − U and the dithers of one band of a large image at a time (what keeps a file at the row
    limit within 500 MB), never all of its rows."""
    from latcomp.latent_codecs.base import LatentCodec
    from latcomp.photo.network import BAND_PIXELS, HALO

    image = np.random.default_rng(4).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)   # 64 × 64 latent rows
    data = photo.compress(image, model_dir, seed=2)
    calls = []
    for name in ("reconstruct", "seeded_dither"):
        original = getattr(LatentCodec, name)
        monkeypatch.setattr(LatentCodec, name, lambda self, *a, original=original, name=name:
                            calls.append((name, len(a[0]) if name == "reconstruct" else a[1])) or original(self, *a))
    assert photo.decompress(data, model_dir).shape == image.shape
    band_rows = (BAND_PIXELS // (256 * 64) + 2 * HALO) * 64
    synthesis = [n for name, n in calls if name == "reconstruct"]
    assert len(synthesis) >= 2 and max(synthesis) <= band_rows < 64 * 64
    assert max(n for name, n in calls if name == "seeded_dither") <= band_rows
