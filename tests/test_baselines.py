"""Baselines: Gaussian (lattice) VAEs and straight-through quantizers (Appendix A.2)."""

import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import synthetic_binary

import latcomp.train as train_module
from latcomp.cli import ARCHITECTURES, cli
from latcomp.families import of_modality
from latcomp.modelfile import load_model, read_config, save_model
from latcomp.nn.baselines import (
    GaussianLatticeVAE,
    GaussianVAE,
    ScalarQuantizerAE,
    VectorQuantizerAE,
    gaussian_kl,
)
from latcomp.nn.models import bernoulli_nll
from latcomp.nn.quantizers import nearest_codeword
from latcomp.nn.registry import MODELS, build_model
from latcomp.train import TrainConfig, evaluate

TINY = {"hidden": 16, "latent": 4}
#: The MNIST architectures (the photo and text models have their own tests: tests/test_photo.py, test_text*.py).
MNIST_MODELS = sorted(of_modality("digits"))
ST = [ScalarQuantizerAE, VectorQuantizerAE]


def batch(n=32, seed=0):
    return torch.from_numpy(synthetic_binary(n, seed=seed).astype(np.float32))


def tiny(arch, **kw):
    torch.manual_seed(0)
    return build_model(arch, **TINY, **kw)


def test_registry_and_cli_names_agree_without_torch():
    assert ARCHITECTURES == tuple(sorted(MODELS))
    code = "import sys, latcomp.cli; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_levels_only_for_straight_through():
    assert "levels" not in TrainConfig(architecture="gaussian").hparams()
    assert TrainConfig(architecture="st-vector", levels=8).hparams()["levels"] == 8


def test_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    sigma = torch.tensor([0.5, 1.7, 1.0], dtype=torch.float64)
    w = mu + sigma * torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    log_q = torch.distributions.Normal(mu, sigma).log_prob(w).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(w).sum(-1)
    samples = log_q - log_p
    err = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - gaussian_kl(mu, sigma)) < 4 * err


@pytest.mark.parametrize("cls", [GaussianLatticeVAE, GaussianVAE])
def test_gaussian_objective(cls):
    m = tiny(cls.architecture, lam=0.7)
    d = batch()
    out = m(d, generator=torch.Generator().manual_seed(3))
    mu, sigma = m.posterior(d)
    assert mu.shape == sigma.shape == (32, 4)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    distortion = bernoulli_nll(m.decoder(mu + sigma * eps), d)
    assert torch.allclose(out.rate, gaussian_kl(mu, sigma))
    assert torch.allclose(out.distortion, distortion)
    assert torch.allclose(out.loss, distortion + 0.7 * out.rate)


def test_gaussian_lattice_sigma_is_not_data_dependent_and_vae_sigma_is():
    d = batch()
    _, sigma = tiny("gaussian-lattice").posterior(d)
    assert torch.equal(sigma, torch.ones(32, 4))  # log σ initialised at 0
    _, sigma = tiny("gaussian").posterior(d)
    assert not torch.allclose(sigma[0], sigma[1])


@pytest.mark.parametrize("arch", MNIST_MODELS)
def test_training_lowers_the_loss(arch):
    m = tiny(arch)
    d = batch(100)
    before = evaluate(m, d)["loss"]
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    m.train()
    for _ in range(40):
        loss = m(d, generator=g).loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert evaluate(m, d)["loss"] < before - 20


def test_nearest_codeword_is_brute_force_argmin():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, 2, generator=g)
    codebook = torch.randn(3, 5, 2, generator=g)
    index, words = nearest_codeword(x, codebook)
    for n in range(50):
        for q in range(3):
            dist = [float(((x[n, q] - c) ** 2).sum()) for c in codebook[q]]
            assert index[n, q] == int(np.argmin(dist))
            assert torch.equal(words[n, q], codebook[q, index[n, q]])


@pytest.mark.parametrize("cls", ST)
def test_straight_through_forward_is_a_codeword_and_gradients_reach_everything(cls):
    m = tiny(cls.architecture, levels=3)
    with torch.no_grad():
        m.codebook.add_(0.1 * torch.randn(m.codebook.shape))
        m.code_logits.copy_(torch.randn(m.code_logits.shape))
    seen = []
    m.decoder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    d = batch()
    out = m(d)
    index = m.quantize(d)
    q = m.codebook.shape[0]
    assert m.codebook.shape == (4 // cls.word_dim, 3, cls.word_dim)
    assert torch.equal(seen[0], m.codebook[torch.arange(q), index].flatten(-2))  # bit-exact words
    log_p = torch.log_softmax(m.code_logits, -1)
    assert torch.allclose(out.rate, -log_p[torch.arange(q), index].sum(-1))  # −log p(chosen words)
    used = torch.zeros(q, 3, dtype=torch.bool)
    used[torch.arange(q), index] = True
    # the distortion reaches encoder, decoder and the chosen words only
    out.distortion.sum().backward(retain_graph=True)
    for name, p in m.named_parameters():
        if name.startswith(("encoder", "decoder")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert (m.codebook.grad.abs().sum(-1) > 0)[used].all()
    assert (m.codebook.grad[~used] == 0).all()
    # the rate (straight-through via the soft assignment) reaches the encoder and every word,
    # and gives the code logits exactly the gradient of the hard code length
    m.zero_grad()
    out.rate.sum().backward()
    assert m.encoder[0].h.weight.grad.abs().sum() > 0
    assert (m.codebook.grad.abs().sum(-1) > 0).all()
    logits = m.code_logits.detach().clone().requires_grad_(True)
    (-torch.log_softmax(logits, -1)[torch.arange(q), index]).sum().backward()
    assert torch.allclose(m.code_logits.grad, logits.grad)


def test_scalar_levels_initialised_on_a_grid():
    m = ScalarQuantizerAE(**TINY, levels=4)
    assert torch.equal(m.codebook[2, :, 0], torch.linspace(-1.5, 1.5, 4))
    assert m.codec_tensors() == {}


def test_vector_quantizer_needs_even_latent():
    with pytest.raises(ValueError, match="multiple of 2"):
        VectorQuantizerAE(hidden=16, latent=5)


@pytest.mark.parametrize("arch", MNIST_MODELS)
def test_save_load_round_trip(tmp_path, arch):
    kw = {"levels": 5} if arch.startswith("st-") else {}
    m = tiny(arch, lam=0.3, **kw)
    save_model(m, tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded) is type(m) and loaded.hparams == m.hparams and loaded.lam == 0.3
    d = batch(8)
    a = m(d, generator=torch.Generator().manual_seed(0))
    b = loaded(d, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.loss, b.loss)


@pytest.mark.parametrize("arch", MNIST_MODELS)
def test_cli_train_one_epoch(tmp_path, monkeypatch, tiny_data, arch):
    real_train = train_module.train

    def small(cfg, out, **kw):
        return real_train(replace(cfg, hidden=16), out, data=tiny_data, **kw)

    monkeypatch.setattr(train_module, "train", small)
    result = CliRunner().invoke(cli, ["train", "--model", arch, "--levels", "3", "--latent", "4",
                                      "--max-epochs", "1", "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    config = read_config(tmp_path / "m")
    assert config["architecture"] == arch
    assert config["hparams"].get("levels") == (3 if arch.startswith("st-") else None)
    record = json.loads((tmp_path / "m" / "train-log.jsonl").read_text())
    assert record["epoch"] == 1 and math.isfinite(record["valid_loss"])
    assert type(load_model(tmp_path / "m")) is MODELS[arch]


@pytest.mark.parametrize("arch", ["st-scalar", "st-vector"])
def test_lambda_changes_what_straight_through_models_learn(arch):
    """A larger λ must buy a lower rate (with hard code lengths alone, Adam made λ irrelevant)."""
    d = batch()
    rates = []
    for lam in (0.1, 10.0):
        torch.manual_seed(0)
        m = tiny(arch, lam=lam, levels=4)
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        for _ in range(60):
            loss = m(d).loss.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        rates.append(m(d).rate.mean().item())
    assert rates[1] < rates[0] - 0.2
