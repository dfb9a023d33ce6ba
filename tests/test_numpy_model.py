"""The numpy forward pass of the codec: agrees with torch, and is exact/reproducible."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pytest
import torch
from codec_fixtures import small_model  # noqa: F401

from latcomp.digits.network import NumpyLatticeVAE
from latcomp.exact import networks as numpy_model
from latcomp.exact.networks import ExactLinear, exact_sigmoid, quantize_rows
from latcomp.modelfile import load_model, load_weights_numpy
from latcomp.runtime.model import build_numpy_model


def _adapter(directory):
    from latcomp.modelfile import read_config

    return build_numpy_model("lattice-vae", load_weights_numpy(directory)[0], read_config(directory)["hparams"])


@pytest.mark.parametrize("exact", [True, False])
def test_numpy_encoder_and_decoder_match_torch(small_model, exact):
    torch_model = load_model(small_model)
    net = _adapter(small_model)
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.random((40, 784)) < 0.3, rng.random((40, 784))]).astype(np.float32)
    w = (rng.standard_normal((80, 8)) * 3).astype(np.float32)
    with torch.no_grad():
        x_torch = torch_model.encoder(torch.from_numpy(d)).numpy()
        logits_torch = torch_model.decoder(torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(net.encode(d, exact=exact), x_torch, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.decode_logits(w, exact=exact), logits_torch, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.decode_probs(w, exact=exact), torch.sigmoid(torch.from_numpy(logits_torch)),
                               rtol=0, atol=1e-5)


def test_default_size_network_matches_torch():
    """The paper's sizes (784-300-300-40), random weights: still within 1e-5."""
    torch.manual_seed(3)
    from latcomp.nn.models import LatticeVAE

    model = LatticeVAE()
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    weights.update({"codec." + k: v.numpy() for k, v in model.codec_tensors().items()})
    net = NumpyLatticeVAE(weights, model.hparams)
    d = (np.random.default_rng(1).random((64, 784)) < 0.2).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((64, 40)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(net.encode(d), model.encoder(torch.from_numpy(d)).numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(net.decode_probs(w), torch.sigmoid(model.decoder(torch.from_numpy(w))).numpy(),
                                   atol=1e-5)


def test_exact_pass_does_not_depend_on_batch_or_chunking(small_model, monkeypatch):
    net = _adapter(small_model)
    rng = np.random.default_rng(4)
    d = rng.random((50, 784))
    w = rng.standard_normal((50, 8)) * 5
    x_all, p_all = net.encode(d), net.decode_probs(w)
    for i in (0, 17, 49):
        assert np.array_equal(net.encode(d[i:i + 1]), x_all[i:i + 1])
        assert np.array_equal(net.decode_probs(w[i:i + 1]), p_all[i:i + 1])
    assert np.array_equal(net.encode(d[::-1])[::-1], x_all)
    monkeypatch.setattr(numpy_model, "CHUNK", 7)
    assert np.array_equal(net.encode(d), x_all)
    assert np.array_equal(net.decode_probs(w), p_all)


def test_exact_linear_equals_exact_rational_arithmetic():
    """The float64 product of the rounded integers is the exact integer dot product."""
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((6, 784)) * np.logspace(-3, 2, 784)
    layer = ExactLinear(weight, np.zeros(6))
    x = rng.standard_normal((3, 784)) * 50
    x_int, x_shift = quantize_rows(x, layer.act_bits)
    weight_t, _ = layer._integer_weight
    assert np.all(np.abs(x_int) <= 2.0**layer.act_bits)
    assert np.all(np.abs(weight_t) <= 2.0**layer.weight_bits)
    got = x_int @ weight_t
    for n in range(3):
        for r in range(6):
            exact = sum(int(a) * int(b) for a, b in zip(x_int[n], weight_t[:, r], strict=True))
            assert Fraction(got[n, r]) == exact
    # reversed summation order gives the same bits
    assert np.array_equal(x_int[:, ::-1] @ weight_t[::-1], got)
    np.testing.assert_allclose(layer(x), x @ weight.T, rtol=0, atol=1e-5 * np.abs(x @ weight.T).max())


def test_exact_sigmoid_is_accurate_and_bounded():
    z = np.linspace(-31.9, 31.9, 200001)
    ref = 1.0 / (1.0 + np.exp(-z))
    got = exact_sigmoid(z)
    assert np.abs(got - ref).max() < 2e-7
    low = z < 0  # relative accuracy in the lower tail (near 1, float64 itself limits 1 − p)
    assert np.all(np.abs(got - ref)[low] <= 3e-6 * ref[low])
    assert np.all(np.diff(got) >= 0)
    extreme = exact_sigmoid(np.array([-np.inf, -1e300, 1e300, np.inf, np.nan]))
    assert np.all((extreme > 0) & (extreme < 1))


def test_sigmoid_table_is_bit_identical_to_the_reference():
    """Golden hash: the table must be the same on every platform (IEEE ops + decimal constants)."""
    digest = hashlib.sha256(numpy_model._TABLE.astype("<f8").tobytes()).hexdigest()
    assert digest == GOLDEN_TABLE_SHA256


GOLDEN_TABLE_SHA256 = "5f2a72ce53ce6835fee06cafd75906fe3c7357ab495886955337e8683844d8ad"
