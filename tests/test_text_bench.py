"""``latcomp bench`` on text models (latcomp.measure.text_bench): real-file rates, the training evaluation's NLL,
the lossy decoding quality, the comparison at equal rate, the report files and the CLI."""

import json

import pytest
import torch
from conftest import run_cli
from test_text_training import SENTENCES

from latcomp.measure import text_bench
from latcomp.measure.text_bench import ValidText, equal_rate_difference, lossy_quality, method_of, word_errors
from latcomp.modelfile import save_model
from latcomp.text.model import GaussianTextAE, LatticeTextAE, ScalarQuantizerTextAE
from latcomp.text.tokenizer import tokenize
from latcomp.text.vocabulary import Vocabulary

#: The validation sentences of these tests (a tiny grammar, unknown words included).
CORPUS = ValidText.of("\n".join(SENTENCES[1]) + "\n")
#: Tiny models: (directory name, class, settings beyond the network's, seed of the weights).
MODELS = [("z-lam0.5", LatticeTextAE, {"lattice": "z", "lam": 0.5}, 0),
          ("z-lam2", LatticeTextAE, {"lattice": "z", "lam": 2.0}, 1),
          ("e8-lam1", LatticeTextAE, {"lattice": "e8", "lam": 1.0}, 2),
          ("gauss-lam1", GaussianTextAE, {"lam": 1.0}, 3),
          ("st-lam1", ScalarQuantizerTextAE, {"lam": 1.0, "levels": 3, "commitment": 0.25, "ema": 0.99}, 4)]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """The tiny text models of :data:`MODELS`, saved (weights, config with a training budget, vocabulary)."""
    vocab = Vocabulary.build([tokenize(s) for s in SENTENCES[0]], 17)
    root, dirs = tmp_path_factory.mktemp("text-models"), []
    for name, cls, settings, seed in MODELS:
        torch.manual_seed(seed)
        model = cls(vocab=len(vocab), embed=8, hidden=8, layers=1, latent=16, **settings)
        if isinstance(model, LatticeTextAE):
            with torch.no_grad():
                model.log_delta.sub_(1.0)   # finer cells: a point that says something
        save_model(model, root / name, training={"config": {"rounds": 4, "eval_every": 200, "max_tokens": 64},
                                                 "best_step": 600})
        vocab.save(root / name)
        last = 400 if name.startswith("st") else 800     # the last run has not finished its budget
        (root / name / "train-log.jsonl").write_text("".join(json.dumps({"step": s}) + "\n"
                                                             for s in range(200, last + 1, 200)))
        dirs.append(root / name)
    return dirs


@pytest.fixture(scope="module")
def result(model_dirs):
    return text_bench.run_text_bench(model_dirs, sentences=7, corpus=CORPUS)


def test_the_file_rate_is_the_payload_of_a_real_file(model_dirs, result):
    from latcomp.container import unpack
    from latcomp.text.codec import compress, decompress

    entry = result["models"][2]
    blob = compress(CORPUS.text, model_dirs[2], seed=text_bench.SEED)
    header, body = unpack(blob)
    assert entry["rate_source"] == "file" and entry["file_bytes"] == len(blob)
    assert entry["payload_bytes"] == len(body) and entry["header_bytes"] == header.header_bytes
    assert entry["rate_bits_per_word"] == 8 * len(body) / CORPUS.words
    # the ANS payload holds the points in their ideal code length, up to its 32-bit words
    ideal_bits = entry["ideal_rate_bits_per_word"] * CORPUS.words
    assert ideal_bits <= 8 * len(body) <= ideal_bits + 64
    assert len(decompress(blob, model_dirs[2]).split("\n")) == len(CORPUS.lines) + 1


def test_the_nll_and_estimated_rates_are_the_training_evaluations(model_dirs, result):
    from latcomp.text.training import TextData, TextTrainConfig, evaluate, load_text_model

    for directory, entry in zip(model_dirs, result["models"], strict=True):
        model, vocab = load_text_model(directory)
        ev = evaluate(model, TextData.prepare(TextTrainConfig(), vocab, ([], CORPUS.lines)).valid)
        assert entry["evaluation"] == ev and ev["words"] == CORPUS.words
        assert entry["train_nll_bits_per_word"] == ev["nll_bits_per_word"]
        if isinstance(model, LatticeTextAE):          # the codec's path: the decoder at Z − U
            assert entry["nll_bits_per_word"] == ev["real_nll_bits_per_word"]
        else:
            assert entry["nll_bits_per_word"] == ev["nll_bits_per_word"]
            assert entry["rate_bits_per_word"] == ev["rate_bits_per_word"]
        assert entry["bits_per_word"] == entry["nll_bits_per_word"] + entry["rate_bits_per_word"]
    assert [e["rate_source"] for e in result["models"]] == ["file"] * 3 + ["kl-estimate", "code-length"]


def test_methods_come_from_the_configs(result):
    assert [e["method"] for e in result["models"]] == [
        "text-lattice (z)", "text-lattice (z)", "text-lattice (e8)", "text-gaussian",
        "text-st-scalar (M=3, commitment=0.25, ema=0.99)"]
    paper = {"architecture": "text-st-vector", "hparams": {"levels": 4, "commitment": 0.0, "ema": 0.0}}
    assert method_of(paper) == "text-st-vector (M=4)"
    assert [e["steps"] for e in result["models"]] == [800] * 5
    assert [e["trained_steps"] for e in result["models"]] == [800, 800, 800, 800, 400]   # logs of the fixture


def test_unfinished_runs_are_named(result):
    md = text_bench.to_markdown(result, "c")
    assert "Unfinished runs** (their logs stop before the budget): st-lam1." in md
    assert "| 800 (600), unfinished: 400 |" in md


def test_lossy_quality_of_decoded_sentences(result):
    assert word_errors("a b c".split(), "a x c d".split()) == 2
    assert word_errors([], "a b".split()) == 2 and word_errors("a b".split(), []) == 2
    q = lossy_quality([["a", "b"], ["c"]], [["a", "b"], ["d", "e"]])
    assert q == {"sentences": 2, "exact_match": 0.5, "word_error_rate": 2 / 3}
    for entry in result["models"]:
        lossy = entry["lossy"]
        assert lossy["sentences"] == 7 and 0 <= lossy["exact_match"] <= 1 and lossy["word_error_rate"] >= 0
        assert lossy["source"] == ("file" if entry["rate_source"] == "file" else "torch")
    assert result["models"][0]["lossy"]["decode_sentences_per_second"] > 0


def test_nll_difference_at_equal_rate():
    a = [(1.0, 9.0), (2.0, 7.5), (4.0, 7.0), (6.0, 6.9)]
    assert equal_rate_difference(a, a) == (0.0, 1.0, 6.0)
    shifted = [(r, n + 0.3) for r, n in a]
    assert equal_rate_difference(shifted, a)[0] == pytest.approx(0.3)
    assert equal_rate_difference(a, shifted)[0] == pytest.approx(-0.3)
    # NLL = rate on [0, 2] against a constant 5 on [1, 3]: over [1, 2] the mean of R − 5 is −3.5
    assert equal_rate_difference([(2.0, 2.0), (0.0, 0.0)], [(1.0, 5.0), (3.0, 5.0)]) == (
        pytest.approx(-3.5), 1.0, 2.0)
    assert equal_rate_difference([(0.0, 1.0), (1.0, 1.0)], [(2.0, 1.0), (3.0, 1.0)])[0] is None
    assert equal_rate_difference([(1.0, 1.0)], a)[0] is None


def test_every_method_is_compared_with_z_first(result):
    rows = [(r["method"], r["against"]) for r in result["comparisons"]]
    assert rows[:3] == [("text-lattice (e8)", "text-lattice (z)"), ("text-gaussian", "text-lattice (z)"),
                        ("text-st-scalar (M=3, commitment=0.25, ema=0.99)", "text-lattice (z)")]
    assert len(rows) == 6     # and each pair of the other three once
    z = [e for e in result["models"] if e["method"] == "text-lattice (z)"]
    assert result["comparisons"][0]["rate_range"][0] >= min(e["rate_bits_per_word"] for e in z)


def test_report_files(result, tmp_path):
    written = text_bench.write_text_bench(result, "latcomp bench …", tmp_path / "t.json", tmp_path / "t.md",
                                          tmp_path / "t.png")
    assert [p.name for p in written] == ["t.json", "t.png", "t.md"]
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["command"] == "latcomp bench …" and len(saved["models"]) == 5
    md = (tmp_path / "t.md").read_text()
    assert "![rate per word against word NLL](t.png)" in md and "| text-lattice (e8) | text-lattice (z) |" in md
    assert "800 steps for every model" in md and (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bench_of_text_models(model_dirs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(text_bench.ValidText, "load", classmethod(lambda cls, data_dir=None: CORPUS))
    code, err = run_cli(capsys, "bench", *model_dirs[:2], "--sentences", "3", "--json", tmp_path / "r.json",
                        "--markdown", tmp_path / "r.md", "--plot", tmp_path / "r.png")
    assert code == 0, err
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["decoded_sentences"] == 3 and [e["name"] for e in res["models"]] == ["z-lam0.5", "z-lam2"]
    assert (tmp_path / "r.png").is_file() and "Command: `latcomp bench" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--is-samples", "5"], "--is-samples do not apply to text models"),
    (["--images", "5"], "--images do not apply to text models"),
    (["digit"], "not text: "),
    (["unfinished"], "model.safetensors"),
])
def test_cli_text_bench_errors_are_one_line(model_dirs, tmp_path, capsys, extra, message):
    import shutil

    from conftest import REPO

    unfinished = tmp_path / "unfinished"        # a run that has its config but no weights yet
    unfinished.mkdir()
    shutil.copy(model_dirs[1] / "config.json", unfinished)
    extra = [str(REPO / "models" / "mnist-lattice-vae") if a == "digit" else str(unfinished) if a == "unfinished"
             else a for a in extra]
    code, err = run_cli(capsys, "bench", model_dirs[0], *extra, "--json", tmp_path / "r.json")
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("latcomp: error:") and message in lines[0], err
    assert not (tmp_path / "r.json").exists()


def test_cli_sentences_apply_only_to_text_models(capsys, tmp_path):
    from conftest import REPO

    code, err = run_cli(capsys, "bench", REPO / "models" / "mnist-lattice-vae", "--sentences", "5")
    assert code != 0 and "--sentences apply only to text models" in err
