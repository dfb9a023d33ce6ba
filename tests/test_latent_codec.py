"""The latent codec's mathematics, checked numerically for non-rectangular lattices.

* the sequential box code is a probability distribution: Σ_k P(k | u) = 1;
* its code length depends on Z − U only, and the torch training rate equals it there;
* Theorem 1 by Monte Carlo on E8: E[−log P(Ẑ|U)] of real quantized points equals the
  training rate E[rate(X − U')] with an independent dither (Crypto-Lemma), within 3 SE;
* the box prior g of W = Z − U integrates to one (quadrature, 2-D).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from latcomp.latent_codecs import LatticeLatentCodec
from latcomp.lattices import ProductLattice

RNG = np.random.default_rng(5)


def _codec(spec: str, dim: int, delta: list[float], b: np.ndarray) -> LatticeLatentCodec:
    return LatticeLatentCodec(ProductLattice(spec, dim), np.asarray(delta, np.float64), np.asarray(b, np.float64))


@pytest.mark.parametrize("spec,dim,delta", [("a2", 2, [0.9]), ("d4", 4, [0.6]), ("a2+z", 3, [0.7, 0.4])])
def test_probabilities_of_all_points_sum_to_one(spec, dim, delta):
    codec = _codec(spec, dim, delta, np.linspace(0.1, 0.25, dim))  # tails beyond the grid < e^-20
    u = codec.dither(RNG.random((1, dim)))
    radius = 14 if dim <= 3 else 9
    grid = np.array(list(itertools.product(range(-radius, radius + 1), repeat=dim)), np.int64)
    log2p = codec.code.log2_prob(grid, np.broadcast_to(u, grid.shape)).sum(-1)
    assert np.exp2(log2p).sum() == pytest.approx(1.0, abs=1e-6)


def test_code_length_depends_on_z_minus_u_and_matches_the_training_rate():
    codec = _codec("e8*2", 16, [0.5, 1.3], RNG.uniform(0.2, 2.0, 16))
    x = RNG.normal(0, 2, (500, 16))
    u = codec.dither(RNG.random((500, 16)))
    k = codec.quantize(x, u)
    eta = codec.reconstruct(k, u)
    bits = -codec.code.log2_prob(k, u).sum(-1)
    nats = codec.rate_nats(eta)
    np.testing.assert_allclose(bits * math.log(2), nats, rtol=1e-12)
    torch_codec = LatticeLatentCodec(codec.lattice, torch.tensor(codec.delta), torch.tensor(codec.b))
    np.testing.assert_allclose(torch_codec.rate_nats(torch.from_numpy(eta)).numpy(), nats, rtol=1e-12)


@pytest.mark.slow
def test_theorem_1_on_e8_by_monte_carlo():
    """E[−log P(K(X+U) | U)] = E[rate(X − U')] (Theorem 1 with the box code, Crypto-Lemma)."""
    n = 200_000
    codec = _codec("e8", 8, [0.8], np.full(8, 0.7))
    x = RNG.normal(0.3, 1.2, (n, 8))
    u = codec.dither(RNG.random((n, 8)))
    k = codec.quantize(x, u)
    left = -codec.code.log2_prob(k, u).sum(-1) * math.log(2)
    x2 = RNG.normal(0.3, 1.2, (n, 8))
    right = codec.rate_nats(x2 - codec.dither(RNG.random((n, 8))))
    se = math.sqrt(left.var() / n + right.var() / n)
    assert abs(left.mean() - right.mean()) < 3 * se
    # and the dither matters: without subtracting U the rate is a different number
    wrong = codec.rate_nats(codec.reconstruct(k, u) + u)
    assert abs(wrong.mean() - right.mean()) > 10 * se


def test_box_prior_integrates_to_one():
    codec = _codec("a2", 2, [1.1], np.array([0.4, 0.9]))
    h = 0.02
    g = np.arange(-12, 12, h) + h / 2
    w = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    assert np.exp(codec.log_prior(w)).sum() * h * h == pytest.approx(1.0, abs=1e-4)


def test_log_volume_is_the_scaled_cell_volume():
    codec = _codec("leech+e8+z", 33, [0.3, 1.7, 0.9], np.ones(33))
    expected = 24 * math.log(0.3) + 12 * math.log(8) + 8 * math.log(1.7) + math.log(0.9)
    assert codec.log_volume() == pytest.approx(expected, rel=1e-12)
    assert float(LatticeLatentCodec(codec.lattice, torch.tensor(codec.delta), torch.ones(33)).log_volume()) == \
        pytest.approx(expected, rel=1e-12)
