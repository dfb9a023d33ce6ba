"""Lattice interface: quantizer, dither cell, moments, Crypto-Lemma (Section 3.1, Lemma 1)."""

import numpy as np
import pytest
import torch
from scipy import stats

from latcomp.lattices.base import Lattice, RectangularLattice

RNG = np.random.default_rng(1)
DELTA = np.array([0.5, 1.0, 2.0, 0.05])


def test_nearest_is_the_closest_lattice_point():
    lat = RectangularLattice(DELTA)
    x = RNG.normal(scale=3.0, size=(2000, 4))
    z = lat.nearest(x)
    k = lat.coords(x)
    assert np.array_equal(k, np.round(k)) and np.allclose(z, k * DELTA)
    # no neighbouring lattice point (±1 step in any coordinate) is closer
    for i in range(4):
        for step in (-1, 1):
            other = z.copy()
            other[:, i] += step * DELTA[i]
            assert np.all(np.linalg.norm(x - z, axis=1) <= np.linalg.norm(x - other, axis=1) + 1e-12)


def test_works_on_torch_tensors_with_gradients():
    delta = torch.tensor(DELTA, requires_grad=True)
    lat = RectangularLattice(delta)
    u = lat.cell_uniform(torch.rand(10, 4, dtype=torch.float64))
    u.sum().backward()
    assert delta.grad is not None and torch.all(delta.grad != 0)
    assert lat.nsm().item() == pytest.approx(float(RectangularLattice(DELTA).nsm()))


def test_nsm_of_cubic_lattice_is_one_twelfth_by_monte_carlo():
    lat = RectangularLattice(np.full(3, 0.7))
    u = lat.cell_uniform(RNG.random((400_000, 3)))
    sigma2 = np.mean(np.sum(u**2, axis=1)) / 3
    nsm_mc = sigma2 / lat.volume() ** (2 / 3)
    assert lat.nsm() == pytest.approx(1 / 12, rel=1e-12)
    assert nsm_mc == pytest.approx(1 / 12, rel=5e-3)


def test_second_moment_matches_monte_carlo_for_unequal_steps():
    lat = RectangularLattice(DELTA)
    u = lat.cell_uniform(RNG.random((400_000, 4)))
    assert np.mean(np.sum(u**2, axis=1)) / 4 == pytest.approx(lat.second_moment(), rel=5e-3)
    assert lat.volume() == pytest.approx(np.prod(DELTA))
    assert lat.nsm() > 1 / 12  # unequal steps are worse than the cube


@pytest.mark.parametrize("generic", [False, True])
def test_dither_is_uniform_over_the_voronoi_cell(generic):
    lat = RectangularLattice(DELTA)
    v = RNG.random((50_000, 4))
    u = Lattice.cell_uniform(lat, v) if generic else lat.cell_uniform(v)
    assert np.all(np.abs(u) <= DELTA / 2 + 1e-12)
    assert np.array_equal(lat.nearest(u), np.zeros_like(u))  # inside P0: nearest point is 0
    for i in range(4):
        assert stats.kstest(u[:, i] / DELTA[i], stats.uniform(-0.5, 1).cdf).pvalue > 1e-3
    corr = np.corrcoef(u.T) - np.eye(4)
    assert np.abs(corr).max() < 0.03


@pytest.mark.parametrize("x", [np.array([0.3, -1.7, 5.01, 0.0]), np.array([1e3, -2.5, 0.25, 0.024])])
def test_crypto_lemma(x):
    """K(x+U) − U has the law of x − U (Lemma 1), tested per dimension by two-sample KS."""
    lat = RectangularLattice(DELTA)
    n = 40_000
    u1 = lat.cell_uniform(RNG.random((n, 4)))
    u2 = lat.cell_uniform(RNG.random((n, 4)))
    quantized = lat.nearest(x + u1) - u1
    dithered = x - u2
    for i in range(4):
        assert stats.ks_2samp(quantized[:, i], dithered[:, i]).pvalue > 1e-3
    # and quantization alone (without subtracting the dither) does NOT have that law
    assert stats.ks_2samp(lat.nearest(x + u1)[:, 0], dithered[:, 0]).pvalue < 1e-6
