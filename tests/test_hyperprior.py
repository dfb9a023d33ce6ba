"""The photo hyperprior (latcomp.nn.hyperprior): shapes, the training rate as the real code length
(Theorem 1 at both levels, by Monte Carlo), the table scales, the warm start from a factorized model."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hyper_fixtures import lively_model

from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.entropy.scales import scale_index
from latcomp.latent_codecs import ConditionalLatticeCodec, LatticeLatentCodec
from latcomp.nn.hyperprior import HYPER_GAIN, PhotoHyperprior, warm_start
from latcomp.nn.photo import PhotoFactorized, from_rows, relattice, to_rows


def _model(seed: int = 0, **kw) -> PhotoHyperprior:
    torch.manual_seed(seed)
    return PhotoHyperprior(channels=8, latent=16, lam=0.01, lattice=kw.pop("lattice", "e8"), **kw)


@pytest.mark.parametrize("side", [(64, 64), (48, 80)])
def test_shapes_and_gradients_reach_every_parameter(side):
    model = _model()
    x = torch.rand(2, 3, *side, generator=torch.Generator().manual_seed(1))
    (h, w), (hz, wz) = model.sizes(x)
    assert model.noise_shape(x) == (2, h * w * 16 + hz * wz * 8)
    out = model(x, generator=torch.Generator().manual_seed(2))
    assert out.logits.shape == x.shape and out.loss.shape == (2,)
    assert torch.isfinite(out.loss).all() and (out.rate > 0).all()
    out.loss.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@torch.no_grad()
def _monte_carlo(model: PhotoHyperprior, x: torch.Tensor, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws for image ``x`` (1, 3, H, W) of the training rate (nats) and, with independent dithers, of the
    real two-level code length: Z_z = K(z + U_z) under its static code, the table scales
    b = SCALE_TABLE[round(t)] from h_s(Z_z − U_z), then Z = K(y + U) under the sequential code with those scales."""
    xs = x.expand(n, -1, -1, -1)
    gen = torch.Generator().manual_seed(seed)
    terms = model.terms(xs, torch.rand(model.noise_shape(xs), generator=gen, dtype=x.dtype))
    train = (terms.rate_y + terms.rate_z).double().numpy()

    y = model.analysis(xs)
    z = model.hyper_analysis(y.abs())
    v_y, v_z = model._split_noise(xs, torch.rand(model.noise_shape(xs), generator=gen, dtype=x.dtype))
    hyper = LatticeLatentCodec(model.hyper_product, model.hyper_log_delta.exp().double().numpy(),
                               model.hyper_log_b.exp().double().numpy())
    u_z = hyper.dither(v_z.double().numpy())
    k_z = hyper.quantize(to_rows(z).double().numpy(), u_z)
    bits_z = -hyper.code.log2_prob(k_z, u_z).reshape(n, -1).sum(-1)
    w_z = from_rows(torch.from_numpy(hyper.reconstruct(k_z, u_z)).to(x.dtype), tuple(z.shape))
    j = scale_index(model.scale_indices(w_z, tuple(y.shape)))
    main = ConditionalLatticeCodec(model.product, model.log_delta.exp().double().numpy())
    u = main.dither(v_y.double().numpy())
    k = main.quantize(to_rows(y).double().numpy(), u)
    bits_y = -main.code.log2_prob(k, u, LaplaceRows.from_indices(to_rows(j).numpy())).reshape(n, -1).sum(-1)
    assert len(set(j.flatten().tolist())) > 5 and bits_z.mean() > 1 and bits_y.mean() > 10
    return train, (bits_y + bits_z) * math.log(2.0)


def _assert_equal_means(a: np.ndarray, b: np.ndarray) -> None:
    se = math.sqrt(a.var() / len(a) + b.var() / len(b))
    assert abs(a.mean() - b.mean()) < 3.5 * se


def test_training_rate_of_both_levels_is_the_real_code_length_by_monte_carlo():
    """E[rate_y(y − U) + rate_z(z − U_z)] = E[real two-level code length] (Theorem 1 at both levels), small model."""
    model = lively_model(3).double()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    _assert_equal_means(*_monte_carlo(model, x, 300, 5))


MODEL = Path(__file__).resolve().parents[1] / "models" / "photo-hyper-base"
KODAK = Path(os.environ.get("LATCOMP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "kodak"


@pytest.mark.skipif(not (MODEL / "model.safetensors").is_file() or not (KODAK / "kodim23.png").is_file(),
                    reason="needs models/photo-hyper-base and the Kodak images")
def test_theorem_1_on_the_trained_model():
    """The same on the trained model and a 64×64 crop of a Kodak photo."""
    from PIL import Image

    from latcomp.modelfile import load_model

    model = load_model(MODEL)
    pixels = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))[200:264, 300:364]
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    _assert_equal_means(*_monte_carlo(model, x, 64, 6))


def test_the_rate_uses_the_table_scale_moving_t_within_its_rounding_bin_changes_nothing():
    model = lively_model(6).double()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    v = torch.rand(model.noise_shape(x), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    t = model.scale_indices(*_hyper_input(model, x, v))
    margin = (0.5 - (t - t.round()).abs()).min().item()
    assert margin > 1e-9
    before = model.terms(x, v).rate_y
    before.sum().backward()  # the straight-through gradient of the continuous scale reaches t
    assert model.hyper_synthesis[-1].bias.grad.abs().min() > 0
    with torch.no_grad():
        model.hyper_synthesis[-1].bias.add_(0.5 * margin)
        assert torch.equal(model.terms(x, v).rate_y, before)
        model.hyper_synthesis[-1].bias.add_(0.5)  # every index moves up one table entry
        assert not torch.equal(model.terms(x, v).rate_y, before)


@torch.no_grad()
def _hyper_input(model: PhotoHyperprior, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    """(Z_z − U_z as the training sees it, the main latent's shape) for images ``x`` and uniforms ``v``."""
    y = model.analysis(x)
    z = model.hyper_analysis(y.abs())
    rows = to_rows(z) - model.hyper_codec().dither(model._split_noise(x, v)[1])
    return rows.reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2), tuple(y.shape)


@pytest.mark.parametrize("lattice", ["z", "e8"])
def test_warm_start_copies_the_factorized_transforms(lattice):
    torch.manual_seed(9)
    source = PhotoFactorized(channels=8, latent=16, lam=0.02, lattice="z")
    with torch.no_grad():
        source.log_b.copy_(torch.linspace(-2.0, 1.0, 16))
        source.log_delta.copy_(torch.linspace(-1.0, 0.5, 16))
    model = _model(10, lattice=lattice)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    warm_start(model, source)
    start = relattice(source, lattice, lam=model.lam)
    reference = source if lattice == "z" else start  # the same lattice: no channel regrouping
    for name, value in model.state_dict().items():
        if name.startswith(("analysis.", "synthesis.")):
            assert torch.equal(value, reference.state_dict()[name]), name
        elif name == "log_delta":
            assert torch.equal(value, start.log_delta)
        elif name == "hyper_synthesis.4.bias":
            assert torch.allclose(torch.exp2((value - 48) / 8), start.log_b.exp(), rtol=1e-5)
        elif name.startswith("hyper_analysis.4."):
            assert torch.equal(value, HYPER_GAIN * fresh[name]), name
        else:
            assert torch.equal(value, fresh[name]), name


def test_a_saved_model_loads_back_through_the_schema(tmp_path):
    from latcomp.modelfile import load_model, save_model

    model = lively_model(11)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, PhotoHyperprior) and loaded.hparams == model.hparams
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(12))
    v = torch.rand(model.noise_shape(x), generator=torch.Generator().manual_seed(13))
    assert torch.equal(loaded.terms(x, v).rate_y, model.eval().terms(x, v).rate_y)
