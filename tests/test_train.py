"""Dithered-SGD training: reproducibility, resume after kill -9, early stopping, the log."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import synthetic_binary

from latcomp.modelfile import WEIGHTS, load_model, read_config
from latcomp.train import CHECKPOINT, LOG, LR_DROP_FACTOR, TrainConfig, evaluate, load_checkpoint, train

TINY = dict(hidden=16, latent=4, batch_size=50, lr=1e-3)


def test_same_seed_same_result(tmp_path, tiny_data):
    cfg = TrainConfig(max_epochs=3, seed=5, **TINY)
    train(cfg, tmp_path / "a", data=tiny_data)
    train(cfg, tmp_path / "b", data=tiny_data)
    assert (tmp_path / "a" / WEIGHTS).read_bytes() == (tmp_path / "b" / WEIGHTS).read_bytes()
    train(TrainConfig(max_epochs=3, seed=6, **TINY), tmp_path / "c", data=tiny_data)
    assert (tmp_path / "a" / WEIGHTS).read_bytes() != (tmp_path / "c" / WEIGHTS).read_bytes()


def test_log_checkpoint_and_best_model(tmp_path, tiny_data):
    state = train(TrainConfig(max_epochs=4, **TINY), tmp_path, data=tiny_data)
    records = [json.loads(line) for line in (tmp_path / LOG).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    for r in records:
        assert r["valid_rate_bits"] == pytest.approx(r["valid_rate_nats"] / np.log(2))
        assert r["valid_loss"] == pytest.approx(r["valid_distortion"] + r["valid_rate_nats"], rel=1e-6)
        assert r["seconds"] > 0
    best = min(records, key=lambda r: r["valid_loss"])
    assert state.best_epoch == best["epoch"] and state.best_valid == best["valid_loss"]
    config = read_config(tmp_path)
    assert config["training"]["best_epoch"] == best["epoch"]
    assert config["training"]["config"]["lam"] == 1.0
    _, ckpt_state, model_sd, opt_sd = load_checkpoint(tmp_path / CHECKPOINT)
    assert ckpt_state.epoch == 4 and len(ckpt_state.log) == 4 and opt_sd["state"]
    load_model(tmp_path)


def test_patience_stops_training(tmp_path, tiny_data):
    # with a tiny learning rate... a huge one makes validation stop improving quickly
    state = train(TrainConfig(patience=2, max_epochs=60, **{**TINY, "lr": 0.5}), tmp_path, data=tiny_data)
    assert state.epoch - state.best_epoch == 2 and state.epoch < 60
    # the stopping rule is not part of what the epochs compute: a resumed run may be more patient
    more = train(TrainConfig(patience=4, max_epochs=state.epoch + 2, **{**TINY, "lr": 0.5}), tmp_path,
                 data=tiny_data, resume=True)
    assert more.epoch == state.epoch + 2 and more.log[:state.epoch] == state.log


def test_lr_drop_anneals_from_its_epoch_and_resumes_across_it(tmp_path, tiny_data):
    constant = train(TrainConfig(max_epochs=3, **TINY), tmp_path / "constant", data=tiny_data)
    dropped = train(TrainConfig(max_epochs=3, lr_drop=3, **TINY), tmp_path / "dropped", data=tiny_data)
    # the same run up to the drop, then a different step size
    assert [r["train_loss"] for r in dropped.log[:2]] == [r["train_loss"] for r in constant.log[:2]]
    assert dropped.log[2]["train_loss"] != constant.log[2]["train_loss"]
    _, _, _, opt_sd = load_checkpoint(tmp_path / "dropped" / CHECKPOINT)
    assert opt_sd["param_groups"][0]["lr"] == pytest.approx(TINY["lr"] * LR_DROP_FACTOR)
    # stopped before the drop and resumed past it: what the uninterrupted run computed
    train(TrainConfig(max_epochs=2, lr_drop=3, **TINY), tmp_path / "resumed", data=tiny_data)
    train(TrainConfig(max_epochs=3, lr_drop=3, **TINY), tmp_path / "resumed", data=tiny_data, resume=True)
    _, _, resumed_sd, _ = load_checkpoint(tmp_path / "resumed" / CHECKPOINT)
    _, _, dropped_sd, _ = load_checkpoint(tmp_path / "dropped" / CHECKPOINT)
    assert all(torch.equal(resumed_sd[k], dropped_sd[k]) for k in dropped_sd)


def test_existing_run_needs_resume(tmp_path, tiny_data):
    train(TrainConfig(max_epochs=1, **TINY), tmp_path, data=tiny_data)
    with pytest.raises(FileExistsError, match="--resume"):
        train(TrainConfig(max_epochs=2, **TINY), tmp_path, data=tiny_data)


SCRIPT = """
import os, sys, numpy as np
from latcomp.train import CHECKPOINT, TrainConfig, train
data = np.load(sys.argv[1])
cfg = TrainConfig(max_epochs=int(sys.argv[3]), hidden=32, latent=6, batch_size=20, lr=1e-3)
resume = os.path.exists(os.path.join(sys.argv[2], CHECKPOINT))
train(cfg, sys.argv[2], resume=resume, data=(data["train"], data["valid"]))
"""


def _run(args):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *map(str, args)])


def test_resume_after_kill_9_loses_nothing(tmp_path):
    npz = tmp_path / "data.npz"
    np.savez(npz, train=synthetic_binary(2000, 3), valid=synthetic_binary(200, 4))
    epochs = 12
    reference = _run([npz, tmp_path / "ref", epochs])
    killed = _run([npz, tmp_path / "run", epochs])
    log = tmp_path / "run" / LOG
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert _run([npz, tmp_path / "run", epochs]).wait() == 0
    assert reference.wait() == 0
    ref_log = (tmp_path / "ref" / LOG).read_text().splitlines()
    run_log = (tmp_path / "run" / LOG).read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]  # noqa: E731
    assert strip(run_log) == strip(ref_log)
    assert (tmp_path / "run" / WEIGHTS).read_bytes() == (tmp_path / "ref" / WEIGHTS).read_bytes()
    assert not [p for p in os.listdir(tmp_path / "run") if p.endswith(".tmp")]


def test_evaluate_reports_progress_and_repeats_dithers(tiny_data):
    import torch

    from latcomp.nn.models import LatticeVAE

    model = LatticeVAE(hidden=8, latent=3)
    data = torch.from_numpy(tiny_data[1].astype(np.float32))
    calls = []
    res = evaluate(model, data, batch_size=30, dithers=2, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2 * len(data), 2 * len(data)) and len(calls) == 2 * 4
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert res == evaluate(model, data, batch_size=30, dithers=2)
