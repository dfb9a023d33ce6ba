"""One conformance suite for every registered lattice: the codec contract holds for all of them.

For a small random lattice VAE on each lattice (and a mixed product): lossy and lossless
round trips, the reconstruction equals Z − U through the decoder (numpy) and agrees with
the torch model, equal seeds give equal bytes, the header records the lattice (format
version 2; version 1 for the rectangular lattice), every sampled single-bit flip is
detected, and the payload is within 0.1% (plus one flush) of the ideal code length.
"""

from __future__ import annotations

import constriction
import numpy as np
import pytest
import torch
from codec_fixtures import make_model, synthetic_binary

from latcomp.codec import code_lengths, compress, decompress, load_model, read_header
from latcomp.errors import CodecError, ModelMismatchError
from latcomp.modelfile import load_model as load_torch_model

#: (lattice spec, latent size) of every registered lattice, and a mixed product.
LATTICES = [("z", 8), ("a2", 8), ("d4", 8), ("e8", 8), ("bw16", 16), ("leech", 24), ("leech+e8+z*8", 40)]


@pytest.fixture(scope="module", params=LATTICES, ids=[spec for spec, _ in LATTICES])
def lattice_model(request, tmp_path_factory):
    spec, latent = request.param
    rng = np.random.default_rng(latent)
    directory = make_model(tmp_path_factory.mktemp(spec.replace("*", "x").replace("+", "_")), seed=3,
                           latent=latent, lattice=spec, log_b=rng.uniform(-1.0, 1.0, latent))
    return spec, directory


@pytest.fixture(scope="module")
def images():
    return synthetic_binary(48, seed=11).reshape(48, 28, 28)


def test_lossy_round_trip_is_the_decoder_at_z_minus_u(lattice_model, images):
    spec, model = lattice_model
    data = compress(images, model, seed=5)
    m = load_model(model)
    u = m.latent.seeded_dither(5, len(images))
    k = m.latent.quantize(m.net.encode(images), u)
    expected = m.net.decode_probs(m.latent.reconstruct(k, u)).reshape(images.shape)
    assert np.array_equal(decompress(data, model), expected)
    # the torch model's inference path gives the same lattice point and (to float error) the same input
    torch_model = load_torch_model(model).double()
    kt, wt = torch_model.quantize(torch.from_numpy(images.reshape(len(images), -1)).double(), torch.from_numpy(u))
    x = m.net.encode(images)
    agree = np.all(kt.numpy() == k, axis=1)
    assert agree.mean() >= 0.95  # a point may differ where encoders differ by ~1e-7 near a cell boundary
    # (the codec uses the frozen float32 scales, the torch model exp(log Δ): they differ by ~1e-7)
    np.testing.assert_allclose(wt.numpy()[agree], m.latent.reconstruct(k, u)[agree], rtol=0, atol=1e-6)
    assert np.all(np.abs(m.latent.reconstruct(k, u) - x) < 50 * np.exp(np.asarray(m.latent.delta)).max())


def test_lossless_round_trip_and_determinism(lattice_model, images):
    spec, model = lattice_model
    data = compress(images, model, lossless=True, seed=9)
    assert np.array_equal(decompress(data, model), images)
    assert data == compress(images, model, lossless=True, seed=9)
    assert data != compress(images, model, lossless=True, seed=10)


def test_header_records_the_lattice(lattice_model, images):
    spec, model = lattice_model
    header = read_header(compress(images[:3], model, seed=1))
    lattice = load_model(model).latent.lattice
    if set(lattice.names) == {"z"}:
        assert header.version == 1 and header.lattice == ""
    else:
        assert header.version == 2 and header.lattice == lattice.spec


def test_every_sampled_bit_flip_is_detected(lattice_model, images):
    spec, model = lattice_model
    data = compress(images[:4], model, lossless=True, seed=2)
    rng = np.random.default_rng(0)
    for bit in rng.choice(8 * len(data), size=40, replace=False):
        bad = bytearray(data)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CodecError):
            decompress(bytes(bad), model)


def test_payload_is_within_a_tenth_of_a_percent_of_the_ideal(lattice_model):
    spec, model = lattice_model
    batch = synthetic_binary(400, seed=12)
    for lossless in (False, True):
        data = compress(batch, model, lossless=lossless, seed=0)
        ideal = sum(code_lengths(batch, model, lossless=lossless, seed=0).values())
        payload_bits = 8 * read_header(data).payload_bytes
        assert ideal <= payload_bits + 1e-6 * ideal or payload_bits >= 0.999 * ideal
        assert payload_bits <= 1.001 * ideal + 64


def test_a_file_of_another_lattice_is_refused(tmp_path, images):
    e8 = make_model(tmp_path / "e8", seed=3, latent=8, lattice="e8")
    d4 = make_model(tmp_path / "d4", seed=3, latent=8, lattice="d4")
    with pytest.raises(ModelMismatchError):
        decompress(compress(images[:2], e8, seed=1), d4)


def test_escapes_round_trip_on_a_non_rectangular_lattice(tmp_path, images):
    """Tiny scales push every coordinate far outside its support: the level-by-level escapes."""
    model = make_model(tmp_path / "e8tiny", seed=4, latent=8, lattice="e8", log_delta=np.array([-14.0]),
                       log_b=np.full(8, -12.0))
    m = load_model(model)
    u = m.latent.seeded_dither(3, 6)
    k = m.latent.quantize(m.net.encode(images[:6]), u)
    assert np.any(np.abs(k) > m.latent.code.radius)
    coder = constriction.stream.stack.AnsCoder()
    m.latent.code.push(coder, k, u)
    decoder = constriction.stream.stack.AnsCoder(coder.get_compressed())
    assert np.array_equal(m.latent.code.pop(decoder, u), k) and decoder.is_empty()
    assert np.array_equal(decompress(compress(images[:6], model, lossless=True, seed=3), model), images[:6])
