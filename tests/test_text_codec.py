"""Coding text (latcomp.text.codec, latcomp.text.network): exact lossless round trips, the two-part code's
length, and bit-identical decoder probabilities across thread counts and batchings."""

import dataclasses
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from test_text_tokenizer import AWKWARD
from test_text_training import SENTENCES

from latcomp.errors import FormatError
from latcomp.text import network
from latcomp.text.codec import Recorder, SideModels, code_side, decode_text, encode_text, token_symbols
from latcomp.text.model import Batch, LatticeTextAE
from latcomp.text.network import NumpyTextModel, frequencies
from latcomp.text.tokenizer import lex, tokenize
from latcomp.text.vocabulary import EOS, Vocabulary


@pytest.fixture(scope="module")
def trained():
    """A tiny text-lattice model with a random but fixed state, its vocabulary (with the side statistics of its
    training sentences) and its numpy twin."""
    vocab = Vocabulary.build([tokenize(s) for s in SENTENCES[0]], 17).with_side(SENTENCES[0])
    torch.manual_seed(0)
    model = LatticeTextAE(vocab=len(vocab), embed=8, hidden=8, layers=2, latent=16, lattice="e8")
    with torch.no_grad():
        model.log_delta.sub_(1.0)       # finer cells: a point that says something
        model.output.bias.normal_()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    weights.update({f"codec.{k}": v.numpy() for k, v in model.codec_tensors().items()})
    return model, vocab, weights, NumpyTextModel(weights, model.hparams)


#: The tokenizer's awkward texts, the longest shortened (every token of a line is a decoder step).
TEXTS = [t[:2_000] for t in AWKWARD] + ["\n".join(SENTENCES[1]) + "\n"]


@pytest.mark.parametrize("statistics", [True, False], ids=["statistics", "adaptive-only"])
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_lossless_round_trip_of_awkward_text(trained, text, statistics):
    _, vocab, _, numpy_model = trained
    vocab = vocab if statistics else Vocabulary(vocab.words)
    assert (vocab.side is not None) == statistics
    payload = encode_text(numpy_model, vocab, text, seed=7, lossless=True)
    assert decode_text(numpy_model, vocab, payload) == text


def test_lossy_decoding_gives_the_decoders_sentences(trained):
    _, vocab, _, numpy_model = trained
    text = "\n".join(SENTENCES[1][:5])
    lossy = encode_text(numpy_model, vocab, text, seed=3)
    lossless = encode_text(numpy_model, vocab, text, seed=3, lossless=True)
    assert len(lossy.words) < len(lossless.words)
    out = decode_text(numpy_model, vocab, lossy)
    assert len(out.split("\n")) == 5 and out == decode_text(numpy_model, vocab, lossy)
    assert all(vocab.known(t) for t in tokenize(out))


def test_the_numpy_networks_are_the_torch_model(trained):
    model, vocab, _, numpy_model = trained
    ids = [vocab.ids(tokenize(s)) for s in SENTENCES[1]]
    with torch.no_grad():
        x = model.encode(Batch.of(ids)).double().numpy()
        w = torch.from_numpy(x[:1]).float()
        logits = model.next_token_logits(w, Batch.of(ids[:1]).ids)[0].double().numpy()
    np.testing.assert_allclose(numpy_model.encode(ids), x, atol=2e-6)
    np.testing.assert_allclose(numpy_model.teacher_forced(x[0], ids[0]), logits, atol=2e-5)


def test_lossless_length_is_rate_plus_nll_plus_side_information(trained):
    """The payload is the two-part code: −log2 P(Z|U) + the decoder's NLL at Z − U (+ case/spacing)."""
    model, vocab, _, numpy_model = trained
    text = "\n".join(SENTENCES[1])
    payload = encode_text(numpy_model, vocab, text, seed=11, lossless=True)
    lines = text.split("\n")
    ids = [vocab.ids(tokenize(s)) for s in lines]
    latent = numpy_model.latent
    u = latent.seeded_dither(11, len(lines))
    k = latent.quantize(numpy_model.encode(ids), u)
    rate = -latent.code.log2_prob(k, u).sum()
    w = latent.reconstruct(k, u)
    symbols, freq = token_symbols(numpy_model, w, ids)
    nll = -np.log2(freq[np.arange(len(symbols)), symbols] / freq.sum(-1)).sum()
    with torch.no_grad():    # the torch model's NLL at the same Z − U agrees with the exact one
        torch_nll = model.token_nll(torch.from_numpy(w).float(), Batch.of(ids)).sum().item() / math.log(2)
    assert nll == pytest.approx(torch_nll, rel=1e-4)
    recorder, side = Recorder(), SideModels(vocab.side)
    for line, s in zip(lines, ids, strict=True):
        code_side(recorder.code, side, vocab, s, lex(line))
    restore = -sum(np.log2(p[symbol] / p.sum()) for symbol, p in recorder.items)
    assert 0 < restore < 0.5 * nll          # case, spacing and the unknown words' spellings
    ideal, bits = rate + nll + restore, 32 * len(payload.words)
    assert ideal < bits < 1.01 * ideal + 64


def test_every_token_has_a_nonzero_integer_frequency():
    f = frequencies(np.array([[0.0, -1e9, 50.0, np.float64(-40)]]))
    assert np.all(f >= 1) and np.all(f == np.floor(f)) and f[0, 2] == 2.0**network.FREQ_BITS + 1


SCRIPT = """
import sys, numpy as np
from latcomp.text import network
from latcomp.text.codec import encode_text
from latcomp.text.vocabulary import Vocabulary
network.CELLS = int(sys.argv[2])
data = np.load(sys.argv[1] + "/w.npz")
vocab = Vocabulary.from_json(open(sys.argv[1] + "/v.json").read())
model = network.NumpyTextModel(dict(data), {"layers": 2, "lattice": "e8", "latent": 16})
text = open(sys.argv[1] + "/t.txt", encoding="utf-8").read()
sys.stdout.write(encode_text(model, vocab, text, seed=5, lossless=True).words.tobytes().hex())
"""


def test_files_are_identical_across_thread_counts_and_batchings(trained, tmp_path):
    _, vocab, weights, _ = trained
    np.savez(tmp_path / "w.npz", **weights)
    (tmp_path / "v.json").write_text(vocab.to_json())
    (tmp_path / "t.txt").write_text("\n".join(SENTENCES[1]) + "\nExtra LINE, zzz!\n", encoding="utf-8")
    outputs = set()
    for threads, cells in ((1, 1 << 14), (2, 1 << 14), (2, 7)):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads)}
        run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(cells)], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)
        outputs.add(run.stdout)
    assert len(outputs) == 1 and len(outputs.pop()) > 100


def test_eos_ends_every_line_and_lines_run_in_lockstep(trained):
    _, vocab, _, numpy_model = trained
    w = np.random.default_rng(0).normal(size=(3, 16))
    symbols, freq = token_symbols(numpy_model, w, [[5, 6], [7], []])
    assert symbols.tolist() == [5, 7, EOS, 6, EOS, EOS] and freq.shape == (6, len(vocab))
    for n, ids in enumerate([[5, 6], [7], []]):   # each line's frequencies are its own, whatever runs beside it
        alone = token_symbols(numpy_model, w[n:n + 1], [ids])[1]
        np.testing.assert_array_equal(alone, freq[[[0, 3, 5], [1, 4], [2]][n]])


def test_corrupt_payloads_fail_with_one_error_instead_of_looping(trained):
    _, vocab, _, numpy_model = trained
    text = "\n".join(SENTENCES[1]) + "\n"
    payload = encode_text(numpy_model, vocab, text, seed=2, lossless=True)
    rng = np.random.default_rng(0)
    for bad in (dataclasses.replace(payload, size=3),                    # claims less text than it holds
                dataclasses.replace(payload, words=rng.integers(1, 2**32, len(payload.words), dtype=np.uint32)),
                dataclasses.replace(payload, words=payload.words[len(payload.words) // 2:])):
        with pytest.raises(FormatError):
            decode_text(numpy_model, vocab, bad)


def test_a_claimed_size_does_not_buy_more_symbols_than_the_payload_holds(trained, monkeypatch):
    """A few stream words claiming a gigabyte of text: the decoder pops at most payload_symbol_bound symbols (an
    ANS stream never runs dry, so the claim alone would keep it decoding), and the encoder refuses a text that
    needs more symbols per bit than that bound."""
    from latcomp.errors import LimitError
    from latcomp.text import codec

    _, vocab, _, numpy_model = trained
    payload = encode_text(numpy_model, vocab, "\n".join(SENTENCES[1]) + "\n", seed=2, lossless=True)
    popped, tokens = [], []
    code_rows, pop_tokens = codec.Reader.code_rows, codec.Reader.pop_tokens
    monkeypatch.setattr(codec.Reader, "code_rows", lambda self, p: popped.append(len(p)) or code_rows(self, p))
    monkeypatch.setattr(codec.Reader, "pop_tokens", lambda self, p: tokens.append(len(p)) or pop_tokens(self, p))
    for words in (payload.words[:3], np.random.default_rng(1).integers(1, 2**32, 3, dtype=np.uint32)):
        popped.clear()
        tokens.clear()
        with pytest.raises(FormatError):
            decode_text(numpy_model, vocab, dataclasses.replace(payload, size=1 << 30, words=words))
        assert sum(popped) <= codec.payload_symbol_bound(3) and sum(tokens) <= codec.payload_token_bound(3)
    monkeypatch.setattr(codec, "SYMBOL_ALLOWANCE", 0)
    with pytest.raises(LimitError, match="too repetitive"):
        encode_text(numpy_model, vocab, " " * 40_000, seed=2, lossless=True)


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    """The tiny model saved as a model directory (weights, config, vocabulary)."""
    from latcomp.modelfile import save_model

    model, vocab, _, _ = trained
    directory = tmp_path_factory.mktemp("text-model")
    save_model(model, directory)
    vocab.save(directory)
    return directory


@pytest.mark.parametrize("lossless", [True, False])
def test_text_files_round_trip_through_the_container(model_dir, lossless):
    from latcomp.container import unpack
    from latcomp.text.codec import compress, decompress

    text = "\n".join(SENTENCES[1][:6]) + "\r\nÜnïcode\ttabs  \n"
    data = compress(text, model_dir, lossless=lossless, seed=9)
    assert data == compress(text, model_dir, lossless=lossless, seed=9)
    header, _ = unpack(data)
    assert header.version == 4 and header.count == 7 and header.lossless == lossless
    out = decompress(data, model_dir)
    if lossless:
        assert out == text
    else:
        assert len(out.split("\n")) == 8 and out.endswith("\n") and out == decompress(data, model_dir)


def test_text_files_refuse_corruption_and_other_vocabularies(model_dir, tmp_path):
    import shutil

    from latcomp.errors import ModelMismatchError
    from latcomp.text.codec import compress, decompress

    data = bytearray(compress("The cat saw a fish.\n", model_dir, lossless=True, seed=1))
    data[-3] ^= 0x10
    with pytest.raises(FormatError):
        decompress(bytes(data), model_dir)
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    words = list(Vocabulary.load(other).words)
    words[4], words[5] = words[5], words[4]
    Vocabulary(words).save(other)                         # the same weights, another vocabulary: another model
    with pytest.raises(ModelMismatchError):
        decompress(compress("The cat saw a fish.\n", model_dir, seed=1), other)


def test_lossy_decoding_in_groups_is_the_decoder_on_all_lines_at_once(trained):
    """Lossy decoding runs LOSSY_ROWS lines at a time (bounded logits) with the dither computed lazily: the
    sentences are those of the greedy decoder run on every line's Z − U at once."""
    from latcomp.text.codec import LOSSY_ROWS, greedy_tokens, render_lossy

    _, vocab, _, numpy_model = trained
    lines = [SENTENCES[1][i % len(SENTENCES[1])] for i in range(LOSSY_ROWS + 40)]
    payload = encode_text(numpy_model, vocab, "\n".join(lines), seed=4)
    u = numpy_model.latent.seeded_dither(4, len(lines))
    at_once = [render_lossy([vocab.words[t] for t in tokens[:np.argmax(tokens == EOS)] if vocab.known(vocab.words[t])])
               for tokens in greedy_tokens(numpy_model, numpy_model.latent.reconstruct(payload.coordinates, u))]
    assert decode_text(numpy_model, vocab, payload).split("\n") == at_once


def test_a_file_claiming_more_lines_than_a_text_file_holds_is_refused_before_decoding(model_dir, monkeypatch):
    import dataclasses

    from latcomp.container import pack, unpack
    from latcomp.errors import LimitError
    from latcomp.latent_codecs.base import LatentCodec
    from latcomp.text.codec import MAX_LINES, compress, decompress

    header, payload = unpack(compress("The cat saw a fish.\n", model_dir, seed=1))
    data = pack(dataclasses.replace(header, count=MAX_LINES + 1), payload + bytes(1 << 16))
    monkeypatch.setattr(LatentCodec, "seeded_dither", lambda *a, **k: pytest.fail("dithers computed"))
    with pytest.raises(LimitError, match="lines"):
        decompress(data, model_dir)
