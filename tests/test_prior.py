"""The Laplacian prior of Section 4: closed form, stability, and Theorem 1 by Monte Carlo."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from latcomp.entropy.laplace import laplace_log_density, laplace_log_mass, rate_nats

B, DELTA = 0.7, 0.5


def paper_displayed_formula(eta, delta, b):
    """The two-case formula as printed in Section 4 (erratum 1 in docs/errata.md: it is Δ·density)."""
    inside = 1 - 0.5 * np.exp(-delta / (2 * b)) * (np.exp(-eta / b) + np.exp(eta / b))
    outside = 0.5 * np.exp(-np.abs(eta) / b) * (np.exp(delta / (2 * b)) - np.exp(-delta / (2 * b)))
    return np.where(np.abs(eta) < delta / 2, inside, outside)


def test_mass_is_difference_of_laplace_cdfs():
    eta = np.linspace(-6, 6, 1001)
    cdf = stats.laplace(scale=B).cdf
    assert np.allclose(laplace_log_mass(eta, DELTA, B), np.log(cdf(eta + DELTA / 2) - cdf(eta - DELTA / 2)),
                       rtol=1e-12, atol=1e-12)


def test_paper_formula_is_delta_times_the_density():
    eta = np.linspace(-4, 4, 801)
    assert np.allclose(paper_displayed_formula(eta, DELTA, B), DELTA * np.exp(laplace_log_density(eta, DELTA, B)))


@pytest.mark.parametrize("delta,b", [(0.5, 0.7), (3.0, 0.2), (0.01, 1.0)])
def test_density_integrates_to_one(delta, b):
    f = lambda e: np.exp(laplace_log_density(np.float64(e), delta, b))  # noqa: E731
    total, err = integrate.quad(f, -60 * b - delta, 60 * b + delta, points=[-delta / 2, delta / 2], limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


def test_density_matches_numerical_convolution():
    """f_{X̂−U} = Laplace(0,b) * Uniform(−Δ/2, Δ/2), convolved on a fine grid."""
    h = 1e-3
    grid = np.arange(-8, 8 + h / 2, h)
    laplace = stats.laplace(scale=B).pdf(grid)
    box = np.ones(int(round(DELTA / h)) + 1)
    box[[0, -1]] = 0.5  # trapezoid weights
    conv = np.convolve(laplace, box / DELTA * h, mode="same")
    inner = np.abs(grid) < 6
    assert np.allclose(conv[inner], np.exp(laplace_log_density(grid[inner], DELTA, B)), atol=2e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_values_and_gradients_over_the_whole_range(dtype):
    ratios = torch.logspace(-4, 3, 29, dtype=dtype)  # Δ/b from 1e-4 to 1e3
    eta_over_b = torch.cat([torch.zeros(1), torch.logspace(-6, 3, 40)]).to(dtype)
    eta_over_b = torch.cat([-eta_over_b, eta_over_b])
    for b in (1e-3, 1.0, 50.0):
        eta = (eta_over_b[:, None] * b).expand(-1, len(ratios)).clone().requires_grad_(True)
        delta = (ratios * b).clone().requires_grad_(True)
        bb = torch.tensor(b, dtype=dtype, requires_grad=True)
        value = laplace_log_mass(eta, delta, bb)
        value.sum().backward()
        assert value.dtype == dtype
        for t in (value, eta.grad, delta.grad, bb.grad):
            assert torch.isfinite(t).all()
        assert (value <= 0).all()


def test_float32_agrees_with_float64():
    eta = torch.linspace(-20, 20, 4001, dtype=torch.float64)
    for delta in (1e-4, 0.3, 5.0, 1e3):
        v64 = laplace_log_mass(eta, torch.tensor(delta, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
        v32 = laplace_log_mass(eta.float(), torch.tensor(delta), torch.tensor(1.0)).double()
        assert torch.allclose(v32, v64, rtol=1e-5, atol=1e-5)


def test_theorem_1_by_monte_carlo():
    """E[−log P(Ẑ|U)] at Z = K(X+U) equals E[log f_U(U)/f_{X̂−U}(X−U)] for non-Laplacian X (Eq. 7).

    P(Ẑ = z | U = u) = P(X̂ ∈ z − u + P0) is the Laplace mass of the cell around z − u.
    X ~ N(0.3, 1.2²); independent samples on each side; agreement within 3 standard errors.
    """
    rng = np.random.default_rng(2024)
    n = 1_000_000
    x = rng.normal(0.3, 1.2, size=(n, 1))
    u = (rng.random((n, 1)) - 0.5) * DELTA
    z = DELTA * np.rint((x + u) / DELTA)
    left = -laplace_log_mass(z - u, DELTA, B)[:, 0]
    x2 = rng.normal(0.3, 1.2, size=(n, 1))
    u2 = (rng.random((n, 1)) - 0.5) * DELTA
    right = rate_nats(x2 - u2, DELTA, B)[:, 0]
    se = np.sqrt(left.var() / n + right.var() / n)
    assert abs(left.mean() - right.mean()) < 3 * se
    # the code length is a genuine function of the lattice point: z − u is on the grid shifted by −u
    assert np.allclose(((z + 0.0) / DELTA) % 1.0, 0.0)


def test_rate_is_minus_log_mass():
    eta = np.linspace(-3, 3, 7)
    assert np.allclose(rate_nats(eta, DELTA, B), -laplace_log_mass(eta, DELTA, B))
