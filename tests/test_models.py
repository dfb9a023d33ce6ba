"""The paper's MNIST lattice VAE (Section 4) and its objective (Eq. 15)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from latcomp.entropy.laplace import laplace_log_mass
from latcomp.nn.layers import GatedLinear
from latcomp.nn.models import LatticeVAE
from latcomp.nn.registry import build_model


def test_architecture_is_the_papers():
    m = LatticeVAE()
    enc, dec = list(m.encoder), list(m.decoder)
    assert [type(layer) for layer in enc] == [GatedLinear, GatedLinear, nn.Linear]
    assert [type(layer) for layer in dec] == [GatedLinear, GatedLinear, nn.Linear]
    assert [(layer.h.in_features, layer.h.out_features) for layer in enc[:2]] == [(784, 300), (300, 300)]
    assert (enc[2].in_features, enc[2].out_features) == (300, 40)
    assert [(layer.h.in_features, layer.h.out_features) for layer in dec[:2]] == [(40, 300), (300, 300)]
    assert (dec[2].in_features, dec[2].out_features) == (300, 784)
    assert m.log_delta.shape == m.log_b.shape == (40,)
    n_params = sum(p.numel() for p in m.parameters())
    assert n_params == 2 * (784 * 300 + 300) + 2 * (300 * 300 + 300) + 300 * 40 + 40 \
        + 2 * (40 * 300 + 300) + 2 * (300 * 300 + 300) + 300 * 784 + 784 + 80


def test_gated_linear_is_h_times_sigmoid_g():
    layer = GatedLinear(3, 2)
    x = torch.randn(5, 3)
    assert torch.allclose(layer(x), layer.h(x) * torch.sigmoid(layer.g(x)))


def test_objective_is_eq_15():
    torch.manual_seed(0)
    m = LatticeVAE(hidden=16, latent=4, lam=0.5)
    with torch.no_grad():
        m.log_delta.copy_(torch.tensor([-1.0, 0.0, 0.5, 1.0]))
        m.log_b.copy_(torch.tensor([0.3, -0.2, 0.0, 1.0]))
    d = (torch.rand(8, 784) < 0.2).float()
    v = torch.rand(8, 4)
    out = m(d, v=v)
    x = m.encoder(d)
    u = m.delta * (v - 0.5)
    rate = -laplace_log_mass(x - u, m.delta, m.b).sum(-1)
    q = torch.sigmoid(m.decoder(x - u))
    distortion = -(d * q.log() + (1 - d) * (1 - q).log()).sum(-1)
    assert torch.allclose(out.rate, rate, atol=1e-4)
    assert torch.allclose(out.distortion, distortion, atol=1e-3)
    assert torch.allclose(out.loss, distortion + 0.5 * rate, atol=1e-3)


def test_gradients_reach_encoder_decoder_steps_and_scales():
    m = LatticeVAE(hidden=16, latent=4)
    out = m((torch.rand(8, 784) < 0.2).float(), generator=torch.Generator().manual_seed(0))
    out.loss.mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_quantize_gives_lattice_points_and_crypto_lemma_law():
    torch.manual_seed(0)
    m = LatticeVAE(hidden=16, latent=4)
    with torch.no_grad():
        m.log_delta.fill_(math.log(0.8))
    d = (torch.rand(1, 784) < 0.2).float().expand(20000, -1)
    u = m.latent_codec().dither(torch.rand(20000, 4)).detach()
    k, w = m.quantize(d, u)
    assert torch.equal(k, k.round())
    x = m.encoder(d[:1]).detach()
    # Z − U is within half a step of x and (Crypto-Lemma) uniform around it: mean x, var Δ²/12
    assert (w - x).abs().max() <= 0.4 + 1e-5
    assert torch.allclose(w.mean(0), x[0], atol=0.01)
    assert torch.allclose(w.var(0), torch.full((4,), 0.8**2 / 12), rtol=0.05)


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    m = LatticeVAE(hidden=32, latent=8)
    d = (torch.rand(200, 784) < 0.1).float()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    first = m(d, generator=g).loss.mean().item()
    for _ in range(30):
        loss = m(d, generator=g).loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_build_model_rejects_unknown_names():
    assert isinstance(build_model("lattice-vae", hidden=8, latent=2), LatticeVAE)
    with pytest.raises(ValueError, match="unknown model architecture"):
        build_model("nope")


def test_codec_tensors_are_float32_step_and_scale():
    m = LatticeVAE(hidden=8, latent=3)
    t = m.codec_tensors()
    assert t["lattice.delta"].dtype == torch.float32
    assert np.allclose(t["prior.b"].numpy(), np.exp(m.log_b.detach().numpy()))
