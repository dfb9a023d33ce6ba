"""The straight-through quantizers (latcomp.nn.quantizers) of the MNIST and text baselines, both versions."""

import json
from dataclasses import replace

import constriction
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import synthetic_binary
from safetensors.torch import load_file
from test_text_training import SENTENCES, tiny_config

import latcomp.text.training as text_training
import latcomp.train as train_module
from latcomp.cli import cli
from latcomp.modelfile import CONFIG, load_model, read_config, save_model
from latcomp.nn.quantizers import EMA_EPSILON, commitment_loss, ema_update
from latcomp.nn.registry import build_model
from latcomp.text.model import Batch, ScalarQuantizerTextAE, VectorQuantizerTextAE
from latcomp.text.training import train_text
from latcomp.train import CHECKPOINT

TINY = {"hidden": 16, "latent": 4}
TEXT = {"vocab": 30, "embed": 6, "hidden": 5, "layers": 1, "latent": 8}
VQ = {"commitment": 0.25, "ema": 0.9}


def digits(n=32, seed=0):
    return torch.from_numpy(synthetic_binary(n, seed=seed).astype(np.float32))


def sentences(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch.of([torch.randint(4, 30, (int(length),), generator=g).tolist()
                     for length in torch.randint(1, 7, (n,), generator=g)])


def test_ema_update_is_the_vq_vae_formula_on_a_hand_made_batch():
    # one quantizer, M = 3 words in 2-D; four vectors, two on word 0, two on word 2, none on word 1
    count = torch.tensor([[2.0, 1.0, 1.0]])
    total = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]])
    x = torch.tensor([[[1.0, 1.0]], [[3.0, -1.0]], [[-2.0, 0.0]], [[0.0, -4.0]]])
    index = torch.tensor([[0], [0], [2], [2]])
    new_count, new_total, words = ema_update(count, total, x, index, decay=0.5)
    n = torch.tensor([0.5 * 2 + 0.5 * 2, 0.5 * 1 + 0.5 * 0, 0.5 * 1 + 0.5 * 2])        # γN + (1 − γ)n
    m = torch.tensor([[0.5 * 2 + 0.5 * 4, 0.5 * 0 + 0.5 * 0], [0.0, 0.5], [0.5 * -1 + 0.5 * -2, 0.5 * -1 + 0.5 * -4]])
    size = n.sum()
    smoothed = (n + EMA_EPSILON) / (size + 3 * EMA_EPSILON) * size                    # Laplace smoothing
    torch.testing.assert_close(new_count[0], n, rtol=0, atol=0)
    torch.testing.assert_close(new_total[0], m, rtol=0, atol=0)
    torch.testing.assert_close(words[0], m / smoothed.unsqueeze(-1), rtol=1e-7, atol=0)
    assert words[0, 0].tolist() == pytest.approx([1.5, 0.0], rel=1e-4)                 # the mean of its vectors
    assert words[0, 1].tolist() == pytest.approx([0.0, 1.0], rel=1e-4)                 # unused: (nearly) unchanged


@pytest.mark.parametrize("arch", ["st-scalar", "st-vector"])
def test_the_commitment_term_is_beta_times_the_squared_distance_to_the_chosen_words(arch):
    torch.manual_seed(0)
    m = build_model(arch, **TINY, lam=0.7, levels=3, commitment=0.4).double().eval()   # float64: no cancellation
    d = digits().double()
    out = m(d)
    x = m.encoder(d).unflatten(-1, (-1, m.word_dim))
    q = m.codebook[torch.arange(m.codebook.shape[0]), m.quantize(d)]
    expected = 0.4 * (x - q).square().sum((-1, -2))
    torch.testing.assert_close(out.loss - out.distortion - 0.7 * out.rate, expected, rtol=1e-9, atol=1e-9)
    assert expected.min() > 0
    # the term pulls the encoder towards the words, never the words (sg(q))
    m.zero_grad()
    commitment_loss(x, q).sum().backward()
    assert m.codebook.grad is None or (m.codebook.grad == 0).all()
    assert m.encoder[0].h.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [ScalarQuantizerTextAE, VectorQuantizerTextAE])
@pytest.mark.parametrize("vq", [{}, VQ])
def test_text_words_are_the_nearest_and_the_rate_is_their_code_length(cls, vq):
    torch.manual_seed(0)
    m = cls(**TEXT, lam=0.5, levels=4, **vq).eval()
    with torch.no_grad():
        m.code_logits.copy_(torch.randn(m.code_logits.shape))
    seen = []
    m.decoder.register_forward_pre_hook(lambda _, args, kwargs: seen.append(args[1]), with_kwargs=True)
    batch = sentences()
    out = m(batch)
    x = m.encode(batch).detach().unflatten(-1, (-1, cls.word_dim))                      # (N, Q, k)
    dist = (x.unsqueeze(-2) - m.codebook.detach()).square().sum(-1)                    # brute force (N, Q, M)
    index = dist.argmin(-1)
    words = m.codebook[torch.arange(m.codebook.shape[0]), index].flatten(-2)
    torch.testing.assert_close(seen[0], m.initial_state(words), rtol=0, atol=0)          # W = the nearest words
    log_p = torch.log_softmax(m.code_logits, -1)
    torch.testing.assert_close(out.rate, -log_p[torch.arange(m.codebook.shape[0]), index].sum(-1))
    commitment = vq.get("commitment", 0.0) * (m.encode(batch) - words).square().sum(-1)
    torch.testing.assert_close(out.loss - out.distortion - 0.5 * out.rate, commitment, rtol=1e-4, atol=1e-4)
    # the rate is a real code length: an entropy coder writes the chosen words in about rate bits
    encoder = constriction.stream.stack.AnsCoder()
    probs = log_p.exp().detach().double().numpy()
    for row in reversed(index.numpy()):
        for q in reversed(range(len(row))):
            encoder.encode_reverse(np.int32(row[q]), constriction.stream.model.Categorical(probs[q], perfect=False))
    bits = encoder.num_bits()
    ideal = out.rate.sum().item() / np.log(2)
    assert ideal - 1e-6 <= bits <= ideal + 64


def test_ema_words_are_buffers_and_move_only_in_training():
    torch.manual_seed(0)
    m = ScalarQuantizerTextAE(**TEXT, lam=0.5, levels=3, **VQ)
    names = {n for n, _ in m.named_parameters()}
    assert "codebook" not in names and "code_logits" in names
    assert {"codebook", "ema_count", "ema_sum"} <= set(m.state_dict())
    before = m.codebook.clone()
    m.eval()
    m(sentences())
    assert torch.equal(m.codebook, before)
    m.train()
    out = m(sentences())
    assert not torch.equal(m.codebook, before)
    out.loss.sum().backward()                      # the replaced buffer does not break the backward pass
    assert m.encoder.weight_ih_l0.grad.abs().sum() > 0


def test_a_resumed_ema_run_computes_what_an_uninterrupted_one_does(tmp_path):
    cfg = tiny_config(architecture="text-st-vector", levels=4, lam=0.3, **VQ)
    train_text(cfg, tmp_path / "whole", sentences=SENTENCES)
    train_text(replace(cfg, rounds=1), tmp_path / "part", sentences=SENTENCES)
    train_text(cfg, tmp_path / "part", resume=True, sentences=SENTENCES)
    a, b = load_file(str(tmp_path / "whole" / CHECKPOINT)), load_file(str(tmp_path / "part" / CHECKPOINT))
    assert a.keys() == b.keys() and {"model.ema_count", "model.ema_sum", "model.codebook"} <= a.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    start = VectorQuantizerTextAE(**TEXT, lam=0.3, levels=4, **VQ).codebook
    assert not torch.equal(a["model.codebook"], start)                                  # the EMA moved the words
    assert read_config(tmp_path / "whole")["hparams"]["ema"] == 0.9


@pytest.mark.parametrize("arch,extra", [("text-st-scalar", []), ("text-st-vector", ["--commitment", "0.25",
                                                                                  "--ema", "0.99"])])
def test_text_st_models_train_from_the_command_line(tmp_path, monkeypatch, arch, extra):
    real = text_training.train_text

    def small(cfg, out, **kw):
        return real(replace(cfg, vocab_size=17, embed=8, hidden=8, batch_size=16), out, sentences=SENTENCES, **kw)

    monkeypatch.setattr(text_training, "train_text", small)
    result = CliRunner().invoke(cli, ["train", "--arch", arch, "--levels", "2", "--lam", "0.2", "--latent", "8",
                                      "--steps-per-epoch", "3", "--max-epochs", "1", *extra, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = read_config(tmp_path)
    assert config["architecture"] == arch and config["hparams"]["levels"] == 2
    assert (config["hparams"]["commitment"], config["hparams"]["ema"]) == ((0.25, 0.99) if extra else (0.0, 0.0))
    record = json.loads((tmp_path / "train-log.jsonl").read_text())
    assert record["step"] == 3 and record["valid_rate_bits_per_word"] > 0


def test_mnist_st_trains_with_commitment_and_ema_from_the_command_line(tmp_path, monkeypatch, tiny_data):
    real = train_module.train
    monkeypatch.setattr(train_module, "train", lambda cfg, out, **kw: real(replace(cfg, hidden=16), out,
                                                                           data=tiny_data, **kw))
    result = CliRunner().invoke(cli, ["train", "--arch", "st-scalar", "--levels", "3", "--latent", "4",
                                      "--commitment", "0.25", "--ema", "0.99", "--max-epochs", "1", "-o",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    hp = read_config(tmp_path)["hparams"]
    assert (hp["commitment"], hp["ema"], hp["levels"]) == (0.25, 0.99, 3)
    m = load_model(tmp_path)
    assert m.ema == 0.99 and not torch.equal(m.codebook, build_model("st-scalar", **TINY, levels=3).codebook)
    status = CliRunner().invoke(cli, ["train", "--arch", "st-scalar", "--ema", "1", "-o", str(tmp_path / "x")])
    assert status.exit_code != 0 and "--ema" in status.output


def test_st_models_saved_before_commitment_and_ema_keep_loading(tmp_path):
    torch.manual_seed(0)
    m = build_model("st-vector", **TINY, levels=3)
    save_model(m, tmp_path)
    config = json.loads((tmp_path / CONFIG).read_text())
    del config["hparams"]["commitment"], config["hparams"]["ema"]            # an older model's config
    (tmp_path / CONFIG).write_text(json.dumps(config))
    loaded = load_model(tmp_path)
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(m.state_dict())
    assert (loaded.commitment, loaded.ema) == (0.0, 0.0)
    d = digits(8)
    assert torch.equal(loaded(d).loss, m.eval()(d).loss)
