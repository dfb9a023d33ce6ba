"""`latcomp train --arch text-*` from the command line: the options become the text trainer's settings."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from test_text_training import SENTENCES, tiny_config

import latcomp.text.training as training
from latcomp.cli import cli
from latcomp.text.training import train_text
from latcomp.train import RunState


@pytest.fixture
def seen(monkeypatch):
    calls = []

    def fake(cfg, out, **kw):
        calls.append((cfg, kw))
        return RunState(epoch=cfg.rounds)
    monkeypatch.setattr(training, "train_text", fake)
    return calls


def test_text_options_map_onto_the_text_settings(tmp_path, seen):
    result = CliRunner().invoke(cli, ["train", "--arch", "text-lattice", "--lattice", "leech", "--latent", "48",
                                      "--lam", "0.3", "--steps-per-epoch", "100", "--max-epochs", "5",
                                      "--text-size", "paper", "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    cfg, kw = seen[0]
    assert (cfg.architecture, cfg.lattice, cfg.latent, cfg.lam) == ("text-lattice", "leech", 48, 0.3)
    assert (cfg.eval_every, cfg.max_steps, cfg.anneal_half) == (100, 500, 100)     # λ/2 after a fifth
    assert (cfg.embed, cfg.hidden, cfg.layers) == (500, 250, 2)                       # the paper's size
    assert cfg.batch_size == 64 and cfg.lr == 1e-3 and not kw["resume"]               # text defaults, not MNIST's


def test_a_text_run_resumes_without_naming_its_architecture(tmp_path, seen):
    train_text(tiny_config(architecture="text-gaussian", rounds=1), tmp_path / "m", sentences=SENTENCES)
    result = CliRunner().invoke(cli, ["train", "-o", str(tmp_path / "m"), "--resume", "--max-epochs", "3"])
    assert result.exit_code == 0, result.output
    cfg, kw = seen[0]
    assert kw["resume"] and cfg.architecture == "text-gaussian" and cfg.rounds == 3


@pytest.mark.parametrize("args,message", [(["--lattice", "e8", "--latent", "20"], "invalid settings: hparams.lattice"),
                                          ([], "text corpus file train.raw.txt is missing")])
def test_bad_text_settings_and_missing_data_are_one_error_line(tmp_path, args, message):
    env = {**os.environ, "LATCOMP_DATA": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "latcomp", "train", "--arch", "text-lattice", *args,
                          "-o", str(tmp_path / "m"), "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0 and run.stderr.startswith("latcomp: error: ") and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
