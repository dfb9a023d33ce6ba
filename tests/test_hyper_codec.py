"""Photos through the hyperprior (latcomp.photo.hyper_codec): round trips, the payload against the ideal
two-level code length, corruption and model mismatch, banded h_a."""

from __future__ import annotations

import numpy as np
import pytest
from hyper_fixtures import lively_model

from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.errors import CodecError, ModelMismatchError
from latcomp.families.photo import latent_size
from latcomp.modelfile import save_model
from latcomp.photo import hyper_codec
from latcomp.photo.codec import padded
from latcomp.runtime.model import load_model

RNG = np.random.default_rng(0)


def _save(directory, seed: int) -> None:
    save_model(lively_model(seed), directory)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hyper")
    _save(directory, 1)
    return directory


def _photos() -> list[np.ndarray]:
    return [RNG.integers(0, 256, (70, 90, 3), dtype=np.uint8), RNG.integers(0, 256, (33, 17, 3), dtype=np.uint8)]


def test_photos_round_trip_with_their_sizes_deterministically(model_dir):
    photos = _photos()
    calls = []
    data = hyper_codec.compress(photos, model_dir, seed=3, progress=lambda *a: calls.append(a))
    assert hyper_codec.compress(photos, model_dir, seed=3) == data
    decoded = hyper_codec.decompress(data, model_dir, progress=lambda *a: calls.append(a))
    assert calls == [("encode", 1, 2), ("encode", 2, 2), ("decode", 1, 2), ("decode", 2, 2)]
    assert [im.shape for im in decoded] == [im.shape for im in photos] and decoded[0].dtype == np.uint8
    gray = RNG.integers(0, 256, (40, 50), dtype=np.uint8)
    assert hyper_codec.decompress(hyper_codec.compress(gray, model_dir, seed=4), model_dir).shape == gray.shape


def test_the_payload_is_the_ideal_two_level_code_length(model_dir):
    """The file's payload is Σ −log2 P(k_z | u_z) + Σ −log2 P(k | u, table scales of h_s(Z_z − U_z)), to a few bytes."""
    net = load_model(model_dir).net
    photo = RNG.integers(0, 256, (160, 192, 3), dtype=np.uint8)
    seed = 5
    shape = latent_size(*photo.shape[:2])
    y = net.encode_pixels(padded(photo))
    z = net.hyper_encode(y, *shape)
    u_z = net.hyper.seeded_dither(seed, len(z), -(-len(y) * 16 // 8))
    k_z = net.hyper.quantize(z, u_z)
    u = net.latent.seeded_dither(seed, len(y))
    k = net.latent.quantize(y, u)
    prior = net.prior(net.hyper.reconstruct(k_z, u_z), *shape)
    bits_z, bits_y = net.hyper.ideal_bits(k_z, u_z), net.latent.ideal_bits(k, u, prior)
    assert bits_z > 50 and bits_y > 500 and len(np.unique(prior.scale)) > 5
    payload_bits = 8 * len(hyper_codec.unpack(hyper_codec.compress(photo, model_dir, seed=seed))[1])
    assert 0 <= payload_bits - (bits_y + bits_z) < 0.01 * (bits_y + bits_z) + 64


def test_priors_use_the_exact_indices_of_the_hyper_synthesis(model_dir):
    net = load_model(model_dir).net
    w_z = RNG.normal(0, 0.05, (2 * 3, 8))
    prior = net.prior(w_z, 7, 10)
    j = net.hyper_synthesis.indices(w_z.T.reshape(1, 8, 2, 3), 7, 10)[0]
    assert isinstance(prior, LaplaceRows) and prior.scale.shape == (70, 16)
    assert np.array_equal(prior.scale, LaplaceRows.from_indices(j.reshape(16, -1).T).scale)


def test_priors_of_a_batch_of_images_of_one_size_are_those_of_each_image_alone(model_dir):
    """priors() runs the hyper-latents of images of one size through h_s in batches, wherever the images lie
    in the file: the scales are those of each image's prior() alone, image after image."""
    net = load_model(model_dir).net
    shapes = [(1, 1)] * 6 + [(2, 3)] * 3 + [(1, 1)] * 2 + [(7, 10), (2, 3), (5, 9), (5, 9)]
    counts = [int(np.prod(hyper_codec.hyper_size(*shape))) for shape in shapes]
    w_z = RNG.normal(0, 0.05, (sum(counts), 8))
    starts = np.cumsum([0, *counts])
    alone = [net.prior(w_z[a:b], *shape).scale for a, b, shape in zip(starts[:-1], starts[1:], shapes, strict=True)]
    assert len(np.unique(np.concatenate(alone))) > 5
    assert np.array_equal(net.priors(w_z, shapes).scale, np.concatenate(alone))


def test_a_damaged_file_or_another_model_is_refused(model_dir, tmp_path):
    photo = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = bytearray(hyper_codec.compress(photo, model_dir, seed=6))
    data[-3] ^= 0x40
    with pytest.raises(CodecError):
        hyper_codec.decompress(bytes(data), model_dir)
    _save(tmp_path, 2)
    with pytest.raises(ModelMismatchError):
        hyper_codec.decompress(hyper_codec.compress(photo, model_dir, seed=6), tmp_path)


def test_banded_hyper_analysis_equals_the_whole(model_dir, monkeypatch):
    net = load_model(model_dir).net
    y = RNG.normal(0, 1, (13 * 11, 16))
    whole = net.hyper_encode(y, 13, 11)
    monkeypatch.setattr(hyper_codec, "BLOCK_ELEMENTS", 1)
    np.testing.assert_allclose(net.hyper_encode(y, 13, 11), whole, rtol=1e-5, atol=1e-5)
