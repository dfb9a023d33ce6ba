"""The photo codec: numpy transforms = torch, any size and mode round-trips, format version 3, corruption.

Small random photo models (8 hidden channels, 8 latent channels) stand in for trained ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import make_photo_model, small_model  # noqa: F401
from conftest import REPO

from latcomp.container import pack, relabeled, unpack
from latcomp.errors import FormatError, InputError, LimitError, ModelMismatchError
from latcomp.photo import codec as photo
from latcomp.photo import network
from latcomp.photo.network import NumpyPhotoFactorized, conv_down, conv_up, gdn


@pytest.fixture(scope="module", params=["z", "e8"])
def photo_model(request, tmp_path_factory) -> Path:
    return make_photo_model(tmp_path_factory.mktemp(f"photo-{request.param}"), lattice=request.param)


def _image(rng: np.random.Generator, height: int, width: int, gray: bool = False) -> np.ndarray:
    """A smooth image with noise (random pixels alone would be no photo at all)."""
    yy, xx = np.mgrid[:height, :width]
    base = 128 + 80 * np.sin(yy / 7.0)[..., None] * np.cos(xx / 11.0)[..., None] * np.array([1.0, 0.6, -0.4])
    img = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    return img[..., 0] if gray else img


@pytest.mark.parametrize("shape", [(3, 17, 9), (8, 32, 31)])  # 6 output channels: both ways of conv_up
def test_numpy_convolutions_match_torch(shape):
    import torch
    from torch.nn import functional as F

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *shape)).astype(np.float32)
    w_down = rng.normal(size=(5, shape[0], 5, 5)).astype(np.float32)
    w_up = rng.normal(size=(shape[0], 6, 5, 5)).astype(np.float32)
    b5, b6 = rng.normal(size=5).astype(np.float32), rng.normal(size=6).astype(np.float32)
    want_down = F.conv2d(torch.from_numpy(x), torch.from_numpy(w_down), torch.from_numpy(b5), 2, 2)
    want_up = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w_up), torch.from_numpy(b6), 2, 2,
                                 output_padding=1)
    np.testing.assert_allclose(conv_down(x, w_down, b5), want_down.numpy(), atol=2e-4)
    np.testing.assert_allclose(conv_up(x, w_up, b6), want_up.numpy(), atol=2e-4)
    assert conv_up(x, w_up, b6).shape == (2, 6, 2 * shape[1], 2 * shape[2])


@pytest.mark.parametrize("size", [(1, 1), (1, 3), (2, 2), (3, 5)])
@pytest.mark.parametrize("block", [network.BLOCK_ELEMENTS, 1200, 400])
def test_every_layer_gives_each_image_of_a_batch_what_it_gives_alone(size, block, monkeypatch):
    """A layer computes a batch (N, C, H, W) with stacked products, one BLAS call per image with the shapes of its
    one-image call: each image's output is bit for bit its output alone (one column per product included, where
    numpy calls gemv), also when the layer works in blocks of images and bands of rows (smaller ``block``)."""
    monkeypatch.setattr(network, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(sum(size))
    x = rng.normal(size=(5, 8, *size)).astype(np.float32)
    w_down, w_phases, w_scatter = (rng.normal(size=s).astype(np.float32) for s in ((6, 8, 5, 5), (8, 8, 5, 5),
                                                                                   (8, 3, 5, 5)))
    bias = rng.normal(size=8).astype(np.float32)
    beta, gamma = rng.uniform(0.5, 1, 8).astype(np.float32), rng.uniform(0, 0.2, (8, 8)).astype(np.float32)
    layers = [lambda v: conv_down(v, w_down, bias[:6]), lambda v: conv_up(v, w_phases, bias),
              lambda v: conv_up(v, w_scatter, bias[:3]), lambda v: gdn(v, beta, gamma, inverse=True),
              lambda v: gdn(v, beta, gamma, inverse=False)]
    for layer in layers:
        batch = layer(x)
        for i in range(len(x)):
            assert np.array_equal(batch[i], layer(x[i:i + 1])[0])


def test_images_are_batched_by_latent_size_within_windows_of_consecutive_images():
    shapes = [(1, 1), (2, 1), (1, 1), (1, 1), (2, 1), (1, 1), (5, 1), (1, 2), (1, 1)]
    assert network.image_windows(shapes, window_pixels=4 * 256) == [(0, 3), (3, 6), (6, 7), (7, 9)]
    assert network.image_windows(shapes) == [(0, 9)] and network.image_windows([]) == []
    assert network.image_batches(shapes, batch_pixels=3 * 256) == [[0, 2, 3], [5, 8], [1], [4], [6], [7]]
    assert network.image_batches(shapes) == [[0, 2, 3, 5, 8], [1, 4], [6], [7]]


def test_numpy_transforms_match_the_torch_model(photo_model):
    import torch

    from latcomp.modelfile import load_model, load_weights_numpy, read_config
    from latcomp.nn.photo import to_rows

    model = load_model(photo_model)
    net = NumpyPhotoFactorized(load_weights_numpy(photo_model)[0], read_config(photo_model)["hparams"])
    x = torch.rand(1, 3, 48, 80)
    with torch.no_grad():
        y = model.analysis(x)
        x_hat = model.synthesis(y)
    rows = net.encode(x[0].numpy())
    np.testing.assert_allclose(rows, to_rows(y).double().numpy(), atol=1e-4 * float(y.abs().max()))
    np.testing.assert_allclose(net.decode(rows, 3, 5), x_hat[0].numpy(), atol=1e-4)


@pytest.mark.parametrize("rows_per_band", [1, 2])
def test_banded_transforms_compute_what_the_whole_image_gives(photo_model, rows_per_band):
    """encode_pixels / decode_bands work in bands of latent rows with HALO rows of context: same result."""
    net = photo._photo_model(photo_model).net
    pixels = photo.padded(_image(np.random.default_rng(7), 70, 45))  # 80 × 48: 5 × 3 latent positions
    band = rows_per_band * 16 * 16 * 3
    y = net.encode(pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0))
    np.testing.assert_allclose(net.encode_pixels(pixels, band), y, rtol=1e-5, atol=1e-5 * np.abs(y).max())
    x_hat = net.decode(y, 5, 3)
    bands = list(net.decode_bands(y, 5, 3, band))
    assert [top for top, _ in bands] == list(range(0, 80, 16 * rows_per_band))
    np.testing.assert_allclose(np.concatenate([b for _, b in bands], axis=1), x_hat, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (16, 16), (17, 33), (40, 23)])
def test_any_size_round_trips_with_its_size_and_mode(photo_model, size):
    rng = np.random.default_rng(sum(size))
    for gray in (False, True):
        image = _image(rng, *size, gray=gray)
        data = photo.compress(image, photo_model, seed=3)
        header = unpack(data)[0]
        assert header.version == 3 and header.sizes == (size,) and header.channels == (1 if gray else 3)
        out = photo.decompress(data, photo_model)
        assert out.shape == image.shape and out.dtype == np.uint8


def test_a_batch_of_mixed_sizes_decodes_to_what_each_image_alone_gives(photo_model):
    rng = np.random.default_rng(1)
    images = [_image(rng, 20, 30), _image(rng, 33, 17), _image(rng, 16, 48)]
    batch = photo.decompress(photo.compress(images, photo_model, seed=5), photo_model)
    assert [b.shape for b in batch] == [im.shape for im in images]
    # the decoder applies g_s to Z − U of each image: recompute it from the coordinates
    m = photo._photo_model(photo_model)
    header = unpack(photo.compress(images, photo_model, seed=5))[0]
    u = m.latent.seeded_dither(header.seed, sum(a * b for a, b in (photo.latent_size(*s) for s in header.sizes)))
    y = np.concatenate([m.net.encode_pixels(photo.padded(im)) for im in images])
    k = m.latent.quantize(y, u)
    lh, lw = photo.latent_size(20, 30)
    first = photo.to_pixels(m.net.decode(m.latent.reconstruct(k[:lh * lw], u[:lh * lw]), lh, lw), 20, 30, 3)
    np.testing.assert_array_equal(batch[0], first)


@pytest.mark.parametrize("name", ["photo-q5", "photo-hyper-q5"])
def test_a_file_of_many_small_images_decodes_to_the_pixels_each_image_gives_alone(name, monkeypatch):
    """Small images of one latent size are decoded in batches (g_s, and h_s of the hyperprior): the pixels are
    bit for bit those of decoding the same file one image at a time (gray and colour images, several sizes
    interleaved, images of one latent size but different pixel sizes in one batch)."""
    from latcomp.photo import hyper_codec

    model = REPO / "models" / name
    if not (model / "config.json").is_file():
        pytest.skip(f"no shipped model {name} in this checkout")
    rng = np.random.default_rng(11)
    sizes = [(1, 1), (1, 1), (5, 7), (16, 16), (17, 3), (17, 3), (1, 1), (20, 40), (20, 40), (33, 17), (2, 2)] * 3
    gray = [i % 3 == 1 for i in range(len(sizes))]
    images = [np.repeat(_image(rng, *size, gray=True)[..., None], 3, axis=-1) if g else _image(rng, *size)
              for size, g in zip(sizes, gray, strict=True)]
    data = relabeled(photo.compress(images, model, seed=9), gray=tuple(gray))
    batched = photo.decompress(data, model)
    assert max(map(len, network.image_batches([photo.latent_size(*size) for size in sizes]))) >= 8
    for module in (photo, hyper_codec):  # each image in a window and a batch of its own
        monkeypatch.setattr(module, "image_windows", lambda shapes: [(i, i + 1) for i in range(len(shapes))])
        monkeypatch.setattr(module, "image_batches", lambda shapes: [[i] for i in range(len(shapes))])
    alone = photo.decompress(data, model)
    assert [im.shape for im in batched] == [size if g else (*size, 3) for size, g in zip(sizes, gray, strict=True)]
    for a, b in zip(batched, alone, strict=True):
        assert a.dtype == np.uint8 and np.array_equal(a, b)


def test_reconstruction_improves_on_a_constant_guess_with_a_fine_lattice(tmp_path):
    """A sanity check of the whole chain: the decoded image is a function of the coded latent, not noise."""
    model = make_photo_model(tmp_path / "m", seed=2)
    rng = np.random.default_rng(2)
    image = _image(rng, 32, 32)
    a = photo.decompress(photo.compress(image, model, seed=1), model)
    b = photo.decompress(photo.compress(image, model, seed=1), model)
    np.testing.assert_array_equal(a, b)


def test_same_seed_same_bytes_and_seeds_change_them(photo_model):
    image = _image(np.random.default_rng(4), 24, 40)
    assert photo.compress(image, photo_model, seed=9) == photo.compress(image, photo_model, seed=9)
    assert photo.compress(image, photo_model, seed=9) != photo.compress(image, photo_model, seed=10)


def test_file_size_is_the_ideal_code_length(photo_model):
    """The payload is within a few bytes of Σ −log2 P(Ẑ|U) of the coordinates (real bitstreams)."""
    image = _image(np.random.default_rng(5), 64, 96)
    data = photo.compress(image, photo_model, seed=2)
    header, payload = unpack(data)
    m = photo._photo_model(photo_model)
    y = m.net.encode_pixels(photo.padded(image))
    u = m.latent.seeded_dither(2, len(y))
    ideal = m.latent.code.ideal_bits(m.latent.quantize(y, u), u)
    assert ideal > 100
    assert abs(8 * len(payload) - ideal) <= 0.01 * ideal + 64


def test_every_single_bit_flip_is_detected_or_refused(photo_model):
    data = photo.compress(_image(np.random.default_rng(6), 20, 20), photo_model, seed=1)
    for bit in range(0, 8 * len(data), 7):
        corrupt = bytearray(data)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((FormatError, ModelMismatchError)):
            photo.decompress(bytes(corrupt), photo_model)


def test_lies_in_a_resealed_header_are_refused(photo_model):
    data = photo.compress(_image(np.random.default_rng(7), 20, 20), photo_model, seed=1)
    header, payload = unpack(data)
    for lie in ({"sizes": ((2048, 2048),)}, {"sizes": ((20, 20), (20, 20)), "count": 2},
                {"image_shape": (0, 0, 1)}):
        with pytest.raises(FormatError):
            photo.decompress(pack(dataclasses.replace(header, **lie), payload), photo_model)
    with pytest.raises(LimitError, match="limits"):  # beyond the documented maximum: refused before decoding
        too_big = ((8192, photo.MAX_PHOTO_PIXELS // 8192 + 1),)
        photo.decompress(pack(dataclasses.replace(header, sizes=too_big), payload), photo_model)


def test_wrong_inputs_and_models_are_one_line_errors(photo_model, small_model):
    rng = np.random.default_rng(8)
    with pytest.raises(InputError, match="uint8"):
        photo.compress(_image(rng, 8, 8).astype(np.float32), photo_model)
    with pytest.raises(InputError, match="all"):
        photo.compress([_image(rng, 8, 8), _image(rng, 8, 8, gray=True)], photo_model)
    with pytest.raises(ModelMismatchError, match="not a photo model"):
        photo.compress(_image(rng, 8, 8), small_model)
    data = photo.compress(_image(rng, 8, 8), photo_model, seed=1)
    other = make_photo_model(Path(str(photo_model) + "-other"), seed=7)
    with pytest.raises(ModelMismatchError, match="same model"):
        photo.decompress(data, other)



def test_relattice_keeps_the_function_and_the_cell_volume():
    """Regrouping channels into E8 blocks permutes the latent: g_s(g_a(x)) and log V are unchanged."""
    import torch

    from latcomp.nn.photo import PhotoFactorized, channel_order, relattice

    torch.manual_seed(0)
    source = PhotoFactorized(channels=8, latent=16, lattice="z")
    with torch.no_grad():
        source.log_b.copy_(torch.randn(16))
        source.log_delta.copy_(0.3 * torch.randn(16))
    x = torch.rand(2, 3, 32, 32)
    for lattice in ("z", "e8"):
        model = relattice(source, lattice, lam=source.lam)
        with torch.no_grad():
            assert torch.allclose(model.synthesis(model.analysis(x)), source.synthesis(source.analysis(x)), atol=1e-6)
        assert float(model.latent_codec().log_volume().detach()) == pytest.approx(
            float(source.latent_codec().log_volume().detach()), abs=1e-5)
        # a quarter of λ: the same transforms, every lattice scale doubled (rate_step_factor)
        coarser = relattice(source, lattice, lam=source.lam / 4)
        assert coarser.lam == source.lam / 4
        assert torch.allclose(coarser.latent_codec().width, 2 * model.latent_codec().width, rtol=1e-6)
        assert torch.equal(coarser.analysis[-1].weight, model.analysis[-1].weight)
    order = channel_order(source)
    e8 = relattice(source, "e8")
    assert torch.equal(e8.log_b, source.log_b[order])
    activity = (source.log_b - source.log_delta).detach()[order]
    assert torch.all(activity[:-1] >= activity[1:])  # blocks of 8 consecutive channels of like activity


def test_the_rate_step_factor_is_where_the_dithered_quantizer_is_best():
    """Monte Carlo: the step Δ* minimizing λ·Δ²/12 + E[−log2 P(box at X − U)] (subtractive dither, X ~ Laplace,
    the training objective of one latent dimension) moves by rate_step_factor when λ changes, at high rate."""
    from latcomp.entropy.laplace import laplace_log_mass
    from latcomp.nn.photo import rate_step_factor

    rng = np.random.default_rng(0)
    x, v = rng.laplace(0.0, 1.0, 100_000), rng.random(100_000)
    steps = np.exp(np.linspace(np.log(0.02), np.log(2.0), 800))

    def best_step(lam):
        cost = [lam * d * d / 12 - np.mean(laplace_log_mass(x - (v - 0.5) * d, d, 1.0)) / np.log(2) for d in steps]
        return steps[int(np.argmin(cost))]

    for lam in (1000.0, 250.0):
        assert best_step(lam / 4) / best_step(lam) == pytest.approx(rate_step_factor(lam, lam / 4), rel=0.03)
    assert rate_step_factor(0.025, 0.00625) == pytest.approx(2.0)


def test_fine_tuning_starts_from_the_given_model(tmp_path):
    """--init: the first epoch starts from the source's function (regrouped for E8), not from random weights."""
    import torch

    from latcomp.modelfile import load_model
    from latcomp.nn.photo import relattice
    from latcomp.train import TrainConfig, initial_weights

    source_dir = make_photo_model(tmp_path / "src", seed=3)
    cfg = TrainConfig(architecture="photo-factorized", dataset="image-folder", channels=8, latent=8, lam=0.2,
                      lattice="e8", init=str(source_dir))
    weights = initial_weights(cfg)
    want = relattice(load_model(source_dir), "e8", lam=0.2).state_dict()
    assert all(torch.equal(weights[k], want[k]) for k in want)
    with pytest.raises(Exception, match="other sizes"):
        initial_weights(TrainConfig(architecture="photo-factorized", channels=16, latent=8, init=str(source_dir)))


def test_fuzzed_photo_files_give_codec_errors_or_the_original_images(photo_model):
    """Structure-aware fuzz with every CRC recomputed: sizes, count, channels, seed and payload bytes mutated.

    Only the library's one-line errors may come out (no foreign exception), and whatever decodes must be
    exactly what the original file decodes to.
    """
    from latcomp.errors import CodecError

    rng = np.random.default_rng(11)
    images = [_image(rng, 20, 36), _image(rng, 17, 16)]
    data = photo.compress(images, photo_model, seed=4)
    want = photo.decompress(data, photo_model)
    header, payload = unpack(data)
    same = 0
    for case in range(150):
        fields = {}
        kind = case % 5
        if kind == 0:
            fields["sizes"] = tuple((int(rng.integers(1, 80)), int(rng.integers(1, 80))) for _ in header.sizes)
        elif kind == 1:
            fields["count"] = 1
            fields["sizes"] = header.sizes[:1]
        elif kind == 2:
            fields["image_shape"] = (0, 0, 1)
        elif kind == 3:
            fields["seed"] = int(rng.integers(0, 2**63))
        mutated = bytearray(payload)
        if kind == 4 and mutated:
            pos = int(rng.integers(len(mutated)))
            mutated[pos] = int(rng.integers(256))
            if mutated[-1] == 0:
                mutated[-1] = 1
        try:
            out = photo.decompress(pack(dataclasses.replace(header, **fields), bytes(mutated)), photo_model)
        except CodecError:
            continue
        assert len(out) == len(want) and all(np.array_equal(a, b) for a, b in zip(out, want, strict=True))
        same += 1
    assert same < 150  # the mutations did reach the decoder's checks


def test_dithered_sgd_lowers_the_photo_loss_and_its_rate_is_the_file_size():
    """A few Adam steps on one batch lower λ·255²·MSE + bpp; the training rate of Theorem 1 is, on average over
    dithers, the code length of the real lattice point (the same model in numpy)."""
    import torch

    from latcomp.latent_codecs.lattice import LatticeLatentCodec
    from latcomp.nn.photo import PhotoFactorized, to_rows

    torch.manual_seed(0)
    model = PhotoFactorized(channels=8, latent=8, lam=0.05, lattice="e8")
    x = torch.from_numpy(np.stack([_image(np.random.default_rng(i), 32, 32) for i in range(4)])
                         ).permute(0, 3, 1, 2).float() / 255
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(30):
        loss = model(x, generator=gen).loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    with torch.no_grad():
        rows = to_rows(model.analysis(x)).double().numpy()
        codec = model.latent_codec()
        latent = LatticeLatentCodec(model.product, codec.delta.double().numpy(), codec.b.double().numpy())
        rates, bits = [], []
        for seed in range(200):
            u = latent.seeded_dither(seed, len(rows))
            bits.append(latent.code.ideal_bits(latent.quantize(rows, u), u))
            rates.append(float(latent.rate_nats(rows - u).sum()) / np.log(2))
    assert np.mean(bits) == pytest.approx(np.mean(rates), rel=0.02)


def test_photo_model_file_round_trip(tmp_path):
    """save_model/load_model keep the photo model's function and hyper-parameters (safetensors + JSON)."""
    import torch

    from latcomp.modelfile import load_model

    directory = make_photo_model(tmp_path / "m", lattice="e8")
    model = load_model(directory)
    again = load_model(directory)
    x = torch.rand(2, 3, 32, 48)
    a = model(x, generator=torch.Generator().manual_seed(0))
    b = again(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.loss, b.loss) and model.hparams == {"channels": 8, "latent": 8, "lam": 0.025,
                                                             "lattice": "e8*1"}
