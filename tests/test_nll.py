"""Importance-sampled NLL: checked against the exact likelihood by quadrature on 1-D latents."""

import math

import numpy as np
import pytest
import torch
from conftest import synthetic_binary

from latcomp.entropy.laplace import laplace_log_density
from latcomp.nll import importance_sampled_nll, supports_nll
from latcomp.nn.baselines import GaussianVAE
from latcomp.nn.models import LatticeVAE
from latcomp.nn.registry import build_model
from latcomp.train import evaluate

DATA_DIM = 12  # few pixels: the posterior is broad, so IS converges quickly and quadrature is easy


def _data(n=6, seed=5):
    return torch.from_numpy(synthetic_binary(n, seed=seed)[:, :DATA_DIM].astype(np.float64))


def _log_q(model, d, w):
    """log Q(d|w) on a grid w (G,) for one image d (D,): (G,)."""
    logits = model.decoder(w.unsqueeze(-1))
    return -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, d.expand_as(logits), reduction="none").sum(-1)


def _log_integral(log_f, lo, hi, points=40001):
    """log ∫_lo^hi exp(log_f(w)) dw by the midpoint rule in log space."""
    step = (hi - lo) / points
    w = lo + step * (torch.arange(points, dtype=torch.float64) + 0.5)
    return (torch.logsumexp(log_f(w), 0) + math.log(step)).item()


@pytest.fixture
def lattice_model():
    torch.manual_seed(0)
    model = LatticeVAE(data_dim=DATA_DIM, hidden=16, latent=1).double().eval()
    with torch.no_grad():  # Δ ≠ 1 and b ≠ 1, so a wrong log q or prior would show
        model.log_delta.fill_(math.log(2.5))
        model.log_b.fill_(math.log(0.7))
        model.decoder[-1].weight.mul_(4.0)  # make Q(d|w) depend on w noticeably
    return model


@pytest.fixture
def gaussian_model():
    torch.manual_seed(1)
    model = GaussianVAE(data_dim=DATA_DIM, hidden=16, latent=1).double().eval()
    with torch.no_grad():
        model.decoder[-1].weight.mul_(4.0)
    return model


def test_lattice_vae_matches_quadrature(lattice_model):
    """IS with the box proposal converges to −log ∫_box f_{X̂−U}(w) Q(d|w) dw, a bound on −log p(d)."""
    m, data = lattice_model, _data()
    res = importance_sampled_nll(m, data, samples=20000, batch_size=20000, seed=1)
    with torch.no_grad():
        x = m.encoder(data)[:, 0]
        delta, b = m.delta, m.b
        for i, d in enumerate(data):
            def log_f(w, d=d):
                return laplace_log_density(w.unsqueeze(-1), delta, b).sum(-1) + _log_q(m, d, w)
            box = -_log_integral(log_f, (x[i] - delta / 2).item(), (x[i] + delta / 2).item())
            exact = -_log_integral(log_f, -40.0, 40.0, points=200001)
            assert res["nll"][i] == pytest.approx(box, abs=0.01)
            assert box >= exact - 1e-6  # the box proposal misses mass: an upper bound on the true NLL
    assert np.isfinite(res["stderr"]) and res["count"] == len(data) and res["samples"] == 20000


def test_defensive_proposal_converges_to_the_exact_likelihood(lattice_model):
    """The defensive proposal covers R: its estimate tends to −log ∫ f(w) Q(d|w) dw, below the box estimate."""
    m, data = lattice_model, _data()
    res = importance_sampled_nll(m, data, samples=20000, batch_size=20000, seed=3, proposal="defensive")
    box = importance_sampled_nll(m, data, samples=20000, batch_size=20000, seed=3)
    with torch.no_grad():
        for i, d in enumerate(data):
            def log_f(w, d=d):
                return laplace_log_density(w.unsqueeze(-1), m.delta, m.b).sum(-1) + _log_q(m, d, w)
            exact = -_log_integral(log_f, -40.0, 40.0, points=200001)
            assert res["nll"][i] == pytest.approx(exact, abs=0.02)
    assert np.all(res["nll"] <= box["nll"] + 0.02)


def test_defensive_proposal_on_e8_is_a_consistent_estimate():
    """On an E8 latent, K = 1 of the defensive proposal is unbiased for the ELBO-type bound and
    more samples lower the estimate; both proposals agree where the posterior is inside the cell."""
    torch.manual_seed(2)
    model = LatticeVAE(data_dim=DATA_DIM, hidden=16, latent=8, lattice="e8").double().eval()
    data = _data(20)
    cell = importance_sampled_nll(model, data, samples=2000, batch_size=2000, seed=1)["mean"]
    defensive = [importance_sampled_nll(model, data, samples=k, batch_size=k, seed=k, proposal="defensive")["mean"]
                 for k in (10, 2000)]
    assert defensive[1] < defensive[0]
    assert defensive[1] <= cell + 0.05


def test_gaussian_vae_matches_quadrature(gaussian_model):
    """The Gaussian proposal covers R: IS converges to the exact −log p(d) = −log ∫ N(w) Q(d|w) dw."""
    m, data = gaussian_model, _data()
    res = importance_sampled_nll(m, data, samples=20000, batch_size=20000, seed=2)
    with torch.no_grad():
        for i, d in enumerate(data):
            def log_f(w, d=d):
                return -0.5 * (w.square() + math.log(2 * math.pi)) + _log_q(m, d, w)
            exact = -_log_integral(log_f, -12.0, 12.0)
            assert res["nll"][i] == pytest.approx(exact, abs=0.01)


def test_one_sample_lattice_is_the_training_loss(lattice_model):
    """K = 1 with the same dithers is the λ = 1 loss of evaluate(), example by example.

    (One example per pass: the IS draws of a pass are shared by its examples.)
    """
    data = _data(50)
    res = importance_sampled_nll(lattice_model, data, samples=1, batch_size=1, seed=7)
    loss = evaluate(lattice_model, data, seed=7, batch_size=1)["loss"]
    assert res["mean"] == pytest.approx(loss, rel=1e-9)
    assert res["neg_elbo"] == pytest.approx(loss, rel=1e-9)


def test_one_sample_gaussian_is_the_negative_elbo_in_expectation(gaussian_model):
    data = _data(40)
    neg_elbo = evaluate(gaussian_model, data, dithers=400)["loss"]
    runs = [importance_sampled_nll(gaussian_model, data, samples=1, seed=s)["mean"] for s in range(400)]
    assert np.mean(runs) == pytest.approx(neg_elbo, abs=4 * np.std(runs) / math.sqrt(len(runs)) + 0.01)


@pytest.mark.parametrize("architecture", ["lattice-vae", "gaussian-lattice", "gaussian"])
def test_nll_does_not_increase_with_k(architecture):
    torch.manual_seed(0)
    model = build_model(architecture, data_dim=784, hidden=16, latent=4, lam=1.0)
    with torch.no_grad():
        model.decoder[-1].weight.mul_(4.0)  # an untrained decoder barely depends on w otherwise
    data = synthetic_binary(100, seed=4)
    # one example per pass, so that every example gets its own draws
    means = [importance_sampled_nll(model, data, samples=k, seed=k, batch_size=k)["mean"] for k in (1, 10, 100)]
    assert means[0] > means[1] > means[2]


def test_chunking_does_not_change_the_estimator():
    """Chunks of samples and of examples combine exactly (a running logsumexp)."""
    torch.manual_seed(0)
    model = LatticeVAE(data_dim=784, hidden=16, latent=4).double()
    data = synthetic_binary(7, seed=4)
    one = importance_sampled_nll(model, data, samples=64, batch_size=64, seed=3)   # one example per pass
    split = importance_sampled_nll(model, data, samples=64, batch_size=16, seed=3)  # 4 chunks of 16 samples
    np.testing.assert_allclose(one["nll"], split["nll"], rtol=1e-12)


def test_progress_and_standard_error():
    torch.manual_seed(0)
    model = LatticeVAE(data_dim=784, hidden=16, latent=4)
    calls = []
    res = importance_sampled_nll(model, synthetic_binary(30), samples=10, batch_size=50,
                                 progress=lambda *a: calls.append(a))
    assert calls[-1] == ("importance sampling", 30, 30) and len(calls) == 6
    assert res["stderr"] == pytest.approx(res["nll"].std(ddof=1) / math.sqrt(30))


@pytest.mark.parametrize("architecture", ["st-scalar", "st-vector"])
def test_discrete_latents_are_refused(architecture):
    model = build_model(architecture, data_dim=784, hidden=16, latent=4, lam=1.0, levels=3)
    assert not supports_nll(model)
    with pytest.raises(ValueError, match="continuous latent"):
        importance_sampled_nll(model, synthetic_binary(2), samples=2)


def test_bad_sample_count_is_refused(lattice_model):
    with pytest.raises(ValueError, match="samples"):
        importance_sampled_nll(lattice_model, _data(), samples=0)
