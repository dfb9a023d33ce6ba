"""Training the text autoencoder (latcomp.text.training): λ annealing, resumable runs, evaluation."""

import json
import random

import pytest
import torch
from safetensors.torch import load_file

from latcomp.text.model import LatticeTextAE
from latcomp.text.tokenizer import tokenize
from latcomp.text.training import TextData, TextTrainConfig, evaluate, lam_at, load_text_model, train_text
from latcomp.text.vocabulary import Vocabulary
from latcomp.train import CHECKPOINT, TrainingError


def synthetic_sentences(n: int, seed: int) -> list[str]:
    """Sentences as written from a tiny grammar (capitals, marks, unknown words)."""
    rng = random.Random(seed)
    subjects, verbs, objects = ["The cat", "A dog", "my friend", "John"], ["saw", "likes", "ate"], ["a fish",
                                                                                                 "the moon", "it"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(['.', '!', ' , too.'])}"
            + (f" zq{rng.randrange(1000)}" if rng.random() < 0.2 else "") for _ in range(n)]


SENTENCES = (synthetic_sentences(96, 0), synthetic_sentences(20, 1))


def tiny_config(**kw) -> TextTrainConfig:
    base = dict(lattice="e8", vocab_size=17, embed=8, hidden=8, layers=1, latent=16, batch_size=16, lr=3e-3,
                rounds=3, eval_every=2, anneal_half=4)
    return TextTrainConfig(**{**base, **kw})


def test_lambda_is_annealed_from_near_zero_to_its_final_value():
    cfg = TextTrainConfig(lam=0.8, anneal_half=100)
    assert lam_at(cfg, 1) == pytest.approx(0.8 / 101)
    assert lam_at(cfg, 100) == pytest.approx(0.4)
    assert lam_at(cfg, 10**7) == pytest.approx(0.8, rel=1e-4)
    assert all(lam_at(cfg, s) < lam_at(cfg, s + 1) for s in range(1, 500))
    assert lam_at(TextTrainConfig(lam=0.3, anneal_half=0), 1) == 0.3


def test_data_vocabulary_and_ids():
    data = TextData.prepare(tiny_config(), sentences=SENTENCES)
    assert len(data.train) == 96 and len(data.valid) == 20
    assert len(data.vocab) == 4 + 17
    assert data.vocab.words == Vocabulary.build(list(map(tokenize, SENTENCES[0])), 17).words
    assert "zq" not in " ".join(data.vocab.words)          # rare words are unknown
    assert all(1 <= len(s) for s in data.train)


def test_a_resumed_run_computes_what_an_uninterrupted_one_does(tmp_path):
    whole = train_text(tiny_config(), tmp_path / "whole", sentences=SENTENCES)
    train_text(tiny_config(rounds=1), tmp_path / "part", sentences=SENTENCES)
    with pytest.raises(TrainingError, match="--resume"):
        train_text(tiny_config(), tmp_path / "part", sentences=SENTENCES)
    resumed = train_text(tiny_config(rounds=3), tmp_path / "part", resume=True, sentences=SENTENCES)
    assert resumed.epoch == whole.epoch == 3 and len(resumed.log) == 3
    a, b = load_file(str(tmp_path / "whole" / CHECKPOINT)), load_file(str(tmp_path / "part" / CHECKPOINT))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert [r["valid_bits_per_word"] for r in resumed.log] == [r["valid_bits_per_word"] for r in whole.log]
    log = [json.loads(line) for line in (tmp_path / "part" / "train-log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]


def test_the_best_model_is_saved_with_its_vocabulary_and_evaluates_as_logged(tmp_path):
    state = train_text(tiny_config(rounds=2), tmp_path / "m", sentences=SENTENCES)
    model, vocab = load_text_model(tmp_path / "m")
    assert isinstance(model, LatticeTextAE) and len(vocab) == 21
    data = TextData.prepare(tiny_config(), vocab, SENTENCES)
    best = state.log[state.best_epoch - 1]
    again = evaluate(model, data.valid)
    assert again["bits_per_word"] == pytest.approx(best["valid_bits_per_word"], rel=1e-6)
    assert again["words"] == sum(len(s) for s in data.valid)
    # the codec's path (Z = K(X + U), real code length) is measured next to the training one
    assert again["real_rate_bits_per_word"] > 0 and again["real_nll_bits_per_word"] > 0


def test_training_lowers_the_validation_loss(tmp_path):
    state = train_text(tiny_config(rounds=2, eval_every=20, lam=0.05), tmp_path / "m", sentences=SENTENCES)
    first, last = state.log[0]["valid_nll_bits_per_word"], state.log[-1]["valid_nll_bits_per_word"]
    assert last < first - 0.3
