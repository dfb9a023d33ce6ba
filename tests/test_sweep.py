"""Sweeps: a JSON list of resumable `latcomp train` runs."""

import json
import sys

from benchmarks.sweep import run_sweep, train_command


def test_run_options_override_defaults():
    cmd = train_command({"out": "m/a", "model": "st-scalar", "levels": 2, "lam": 0.5},
                        {"max_epochs": 20, "lam": 1.0, "data_dir": None})
    assert cmd[:5] == [sys.executable, "-m", "latcomp", "train", "--resume"]
    args = cmd[5:]
    pairs = dict(zip(args[::2], args[1::2]))
    assert pairs == {"--max-epochs": "20", "--lam": "0.5", "--out": "m/a", "--model": "st-scalar", "--levels": "2"}


def test_a_failing_run_is_reported(tmp_path):
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"defaults": {}, "runs": [{"out": str(tmp_path / "a"), "lam": -1}]}))
    assert run_sweep(spec, jobs=1) == [2]
    assert "--lam" in (tmp_path / "a" / "train-stderr.log").read_text()


def test_runs_complete_and_resume(tmp_path, shared_data, jobs=2):
    runs = [{"out": str(tmp_path / name), "lam": lam, "latent": 2, "max_epochs": 1}
            for name, lam in [("a", 1), ("b", 2)]]
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"defaults": {"data_dir": str(shared_data)}, "runs": runs}))
    assert run_sweep(spec, jobs=jobs) == [0, 0]
    log = (tmp_path / "a" / "train-log.jsonl").read_text()
    assert run_sweep(spec, jobs=jobs) == [0, 0]  # finished runs are skipped, nothing retrained
    assert (tmp_path / "a" / "train-log.jsonl").read_text() == log
