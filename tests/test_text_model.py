"""The text autoencoder (latcomp.text.model): shapes, gradients, padding, and Theorem 1 for its latent."""

import math

import constriction
import numpy as np
import pytest
import torch

from latcomp.latent_codecs.lattice import LatticeLatentCodec
from latcomp.text.model import Batch, GaussianTextAE, LatticeTextAE
from latcomp.text.vocabulary import EOS

SENTENCES = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14], [4, 4, 4, 4], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]]


def tiny(cls=LatticeTextAE, **kw):
    torch.manual_seed(0)
    return cls(vocab=40, embed=8, hidden=8, layers=2, latent=24, **kw)


@pytest.mark.parametrize("make", [lambda: tiny(lattice="e8"), lambda: tiny(lattice="leech"),
                                  lambda: tiny(lattice="z"), lambda: tiny(GaussianTextAE)])
def test_forward_backward_shapes_and_gradients(make):
    model = make()
    out = model(Batch.of(SENTENCES), generator=torch.Generator().manual_seed(1), lam=0.5)
    for term in (out.loss, out.rate, out.distortion):
        assert term.shape == (len(SENTENCES),) and torch.isfinite(term).all()
    assert out.tokens.tolist() == [len(s) + 1 for s in SENTENCES]
    torch.testing.assert_close(out.loss, out.distortion + 0.5 * out.rate)
    assert (out.distortion > 0).all() and (out.rate > 0).all()
    out.loss.sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_a_sentence_does_not_depend_on_its_batch_or_padding():
    model = tiny(lattice="e8")
    model.eval()
    v = torch.rand(len(SENTENCES), 24, generator=torch.Generator().manual_seed(2))
    together = model(Batch.of(SENTENCES), v=v)
    for i, s in enumerate(SENTENCES):
        alone = model(Batch.of([s]), v=v[i:i + 1])
        torch.testing.assert_close(alone.loss, together.loss[i:i + 1], rtol=1e-5, atol=1e-5)


def test_token_nll_is_the_next_token_distribution_of_the_decoder():
    model = tiny(GaussianTextAE)
    batch = Batch.of(SENTENCES[1:2])
    w = model.encode(batch)
    logp = torch.log_softmax(model.next_token_logits(w, batch.ids), -1)[0]
    targets = SENTENCES[1] + [EOS]
    direct = -sum(logp[t, tok] for t, tok in enumerate(targets))
    torch.testing.assert_close(model.token_nll(w, batch), direct.reshape(1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lattice,n", [("z", 4000), ("e8", 4000), ("leech", 600)])
def test_theorem_1_training_rate_is_the_code_length_of_the_text_latent(lattice, n):
    """E over dithers of −log P(K_Λ(X+U) | U) (the real point's code, numpy) = E of the training rate (torch)."""
    model = tiny(lattice=lattice)
    with torch.no_grad():
        model.log_delta.add_(0.7)          # coarser cells than at initialisation: a few bits per sentence
        x = model.encode(Batch.of(SENTENCES))
    xs = x.repeat_interleave(n, 0)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        _, training = model.represent(xs, model.draw_noise(xs.shape, gen))
    tensors = model.codec_tensors()
    codec = LatticeLatentCodec(model.product, tensors["lattice.delta"].double().numpy(),
                               tensors["prior.b"].double().numpy())
    u = codec.dither(np.random.default_rng(4).random(xs.shape))
    k = codec.quantize(xs.double().numpy(), u)
    real = -codec.code.log2_prob(k, u).sum(-1) * math.log(2)
    for i in range(len(SENTENCES)):
        a, b = training[i * n:(i + 1) * n].double().numpy(), real[i * n:(i + 1) * n]
        se = math.sqrt(a.var() / n + b.var() / n)
        assert abs(a.mean() - b.mean()) < 4 * se, (i, a.mean(), b.mean(), se)
    assert training.mean() > 2.0           # not a trivial zero-rate latent
    # the test can tell: the code length at Z (not Z − U) is another number
    wrong = codec.rate_nats(codec.reconstruct(k, u) + u)
    assert abs(wrong.mean() - real.mean()) > 10 * math.sqrt(real.var() / len(real))
    coder = constriction.stream.stack.AnsCoder()
    codec.code.push(coder, k, u)
    payload_bits = 32 * len(coder.get_compressed())
    assert real.sum() / math.log(2) <= payload_bits <= 1.01 * real.sum() / math.log(2) + 64
    np.testing.assert_array_equal(codec.code.pop(constriction.stream.stack.AnsCoder(coder.get_compressed()), u), k)


def test_gaussian_rate_is_the_kl_to_the_standard_normal():
    model = tiny(GaussianTextAE)
    with torch.no_grad():
        model.log_sigma.fill_(math.log(0.5))
        x = torch.zeros(1, 24)
        _, rate = model.represent(x, torch.zeros(1, 24))
    # KL(N(0, 0.25) ‖ N(0, 1)) = ½(0.25 − 1 − log 0.25) per dimension
    assert rate.item() == pytest.approx(24 * 0.5 * (0.25 - 1 - math.log(0.25)), rel=1e-6)
