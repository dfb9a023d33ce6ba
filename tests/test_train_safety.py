"""No data loss in training, and every failure of the CLI is one line (bugs keep their traceback)."""

import errno
import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import run_cli, synthetic_binary

import latcomp.train as train_module
from latcomp.cli import main
from latcomp.modelfile import WEIGHTS, load_weights_numpy
from latcomp.train import CHECKPOINT, LOG, TrainConfig, TrainingError, load_checkpoint, train

TINY = dict(hidden=8, latent=4, batch_size=50, lr=1e-3)


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latcomp: error: "), err
    return lines[0][len("latcomp: error: "):]


@pytest.fixture
def finished_run(tmp_path, tiny_data):
    """A one-epoch run whose settings differ from the CLI defaults (latent 4, hidden 8, batch 50, lr 1e-3)."""
    out = tmp_path / "run"
    train(TrainConfig(max_epochs=1, data_dir="recorded/data", **TINY), out, data=tiny_data)
    return out


@pytest.fixture
def captured_training(monkeypatch):
    """Replace the training itself: record what the CLI asks for."""
    calls = []

    def fake(cfg, out, **kw):
        calls.append((cfg, kw))
        return train_module.RunState(epoch=1, best_epoch=1, best_valid=1.0)

    monkeypatch.setattr(train_module, "train", fake)
    return calls


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# --------------------------------------------------------------------------- directories


def test_a_new_run_refuses_a_non_empty_directory(tmp_path, tiny_data, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty; pass --force"):
        train(TrainConfig(max_epochs=1, **TINY), tmp_path, data=tiny_data)
    code, err = run_cli(capsys, "train", "-o", tmp_path)
    assert code == 1 and one_error_line(err).startswith(f"{tmp_path} is not empty")
    assert _snapshot(tmp_path) == {"notes.txt": b"mine"}


def test_a_finished_run_is_kept_unless_forced(finished_run, tiny_data, capsys):
    before = _snapshot(finished_run)
    code, err = run_cli(capsys, "train", "-o", finished_run)
    assert code == 1 and "already holds a training run; pass --resume" in one_error_line(err)
    assert _snapshot(finished_run) == before
    (finished_run / "notes.txt").write_text("mine")
    train(TrainConfig(max_epochs=1, seed=7, **TINY), finished_run, data=tiny_data, force=True)
    assert (finished_run / "notes.txt").read_text() == "mine"
    assert (finished_run / WEIGHTS).read_bytes() != before[WEIGHTS]
    assert len((finished_run / LOG).read_text().splitlines()) == 1


def test_resume_and_force_exclude_each_other(finished_run, capsys):
    code, err = run_cli(capsys, "train", "-o", finished_run, "--resume", "--force")
    assert code == 2 and "exclude each other" in one_error_line(err)


def test_resume_needs_a_checkpoint(tmp_path, tiny_data, capsys):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        train(TrainConfig(**TINY), tmp_path / "typo", resume=True, data=tiny_data)
    code, err = run_cli(capsys, "train", "-o", tmp_path / "typo", "--resume")
    assert code == 1 and "no checkpoint to resume" in one_error_line(err)
    assert not (tmp_path / "typo").exists()


# --------------------------------------------------------------------------- resume uses the recorded settings


def test_resume_uses_the_recorded_settings(finished_run, captured_training, capsys):
    code, err = run_cli(capsys, "train", "-o", finished_run, "--resume")
    assert code == 0, err
    (cfg, kw), = captured_training
    recorded = load_checkpoint(finished_run / CHECKPOINT)[0]
    assert cfg == recorded and cfg.data_dir == "recorded/data" and cfg.latent == 4 and kw["resume"]


def test_resume_accepts_agreeing_options_and_a_new_stopping_rule(finished_run, captured_training, capsys):
    code, err = run_cli(capsys, "train", "-o", finished_run, "--resume", "--latent", "4", "--arch", "lattice-vae",
                        "--data-dir", "recorded/data", "--max-epochs", "9", "--patience", "3")
    assert code == 0, err
    (cfg, _), = captured_training
    assert cfg == replace(load_checkpoint(finished_run / CHECKPOINT)[0], max_epochs=9, patience=3)


def test_resume_refuses_conflicting_options_naming_them(finished_run, captured_training, capsys):
    # --latent 40 is the CLI default, but given explicitly it conflicts with the run's 4
    code, err = run_cli(capsys, "train", "-o", finished_run, "--resume", "--lam", "2", "--latent", "40",
                        "--model", "gaussian")
    line = one_error_line(err.replace("latcomp: warning: `latcomp train --model` is deprecated; use --arch\n", ""))
    assert code == 2 and captured_training == []
    assert "--lam 2.0 (the run has 1.0)" in line and "--latent 40 (the run has 4)" in line
    assert "--arch gaussian (the run has lattice-vae)" in line and "--batch-size" not in line


# --------------------------------------------------------------------------- impossible settings, divergence


def test_a_batch_larger_than_the_data_fails_before_any_work(tmp_path, tiny_data):
    with pytest.raises(TrainingError, match="batch size 301 is larger than the 300 training images"):
        train(TrainConfig(**{**TINY, "batch_size": 301}), tmp_path / "m", data=tiny_data)
    assert not (tmp_path / "m").exists()


def test_a_nan_loss_stops_training_before_saving(tmp_path, tiny_data):
    bad = tiny_data[0].astype(np.float32)
    bad[3, 5] = np.nan
    with pytest.raises(TrainingError, match="training loss at epoch 1, step .* is nan"):
        train(TrainConfig(max_epochs=1, **TINY), tmp_path / "fresh", data=(bad, tiny_data[1]))
    assert list((tmp_path / "fresh").iterdir()) == []


def test_divergence_keeps_the_last_good_epoch(finished_run, tiny_data):
    before = _snapshot(finished_run)
    bad = tiny_data[0].astype(np.float32)
    bad[:] = np.inf
    with pytest.raises(TrainingError, match="epoch 2, step 1 is (nan|inf)"):
        train(TrainConfig(max_epochs=3, **TINY), finished_run, resume=True, data=(bad, tiny_data[1]))
    assert _snapshot(finished_run) == before
    weights, _ = load_weights_numpy(finished_run)
    assert all(np.isfinite(w).all() for w in weights.values())


def test_cli_reports_divergence_as_one_line(tmp_path, monkeypatch, capsys):
    real_train = train_module.train
    nan_data = (np.full((300, 784), np.nan, np.float32), synthetic_binary(100))
    monkeypatch.setattr(train_module, "train", lambda cfg, out, **kw: real_train(replace(cfg, hidden=8), out,
                                                                                 data=nan_data, **kw))
    code, err = run_cli(capsys, "train", "-o", tmp_path / "m", "--latent", "4")
    assert code == 1 and "training diverged" in one_error_line(err)


# --------------------------------------------------------------------------- every failure is one line


@pytest.mark.parametrize("number", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EDQUOT])
def test_os_errors_are_one_line_with_the_path(tmp_path, monkeypatch, capsys, number):
    path = tmp_path / "m" / "model.safetensors"

    def fail(*args, **kw):
        raise OSError(number, os.strerror(number), str(path))

    monkeypatch.setattr(train_module, "train", fail)
    code, err = run_cli(capsys, "train", "-o", tmp_path / "m")
    assert code == 1 and one_error_line(err) == f"{path}: {os.strerror(number)}"


def test_a_name_too_long_is_one_line(tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    code, err = run_cli(capsys, "train", "-o", out)
    assert code == 1 and one_error_line(err) == f"{out}: {os.strerror(errno.ENAMETOOLONG)}"


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys):
    def fail(*args, **kw):
        raise MemoryError

    monkeypatch.setattr(train_module, "train", fail)
    code, err = run_cli(capsys, "train", "-o", tmp_path / "m")
    assert code == 1 and one_error_line(err).startswith("out of memory")


@pytest.mark.parametrize("bug", [ValueError("a bug"), RuntimeError("a bug"), KeyError("a bug")])
def test_bugs_keep_their_traceback(tmp_path, monkeypatch, bug):
    def fail(*args, **kw):
        raise bug

    monkeypatch.setattr(train_module, "train", fail)
    with pytest.raises(type(bug)):
        main(["train", "-o", str(tmp_path / "m")])


def test_the_log_and_checkpoint_of_a_good_run_stay_consistent(finished_run):
    """Sanity: the fixture's run is complete, so the tests above start from a real run."""
    record = json.loads((finished_run / LOG).read_text())
    assert record["epoch"] == 1 and np.isfinite(record["valid_loss"])
    model_state = load_checkpoint(finished_run / CHECKPOINT)[2]
    assert all(torch.isfinite(v).all() for v in model_state.values())
