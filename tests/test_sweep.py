"""Sweeps: a JSON list of resumable `latcomp train` runs."""

import json
import sys

import pytest

from benchmarks.sweep import LOG, main, run_sweep, train_command


def test_run_options_override_defaults(tmp_path):
    out = str(tmp_path / "a")
    cmd = train_command({"out": out, "model": "st-scalar", "levels": 2, "lam": 0.5},
                        {"max_epochs": 20, "lam": 1.0, "data_dir": None})
    assert cmd[:4] == [sys.executable, "-m", "latcomp", "train"]
    args = cmd[4:]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs == {"--max-epochs": "20", "--lam": "0.5", "--out": out, "--arch": "st-scalar", "--levels": "2"}


@pytest.mark.parametrize("files,flag", [((), None), ((LOG,), "--force"), ((LOG, "checkpoint.safetensors"), "--resume"),
                                        ((LOG, "model.safetensors"), None)])
def test_resume_only_with_a_checkpoint_and_force_only_over_the_sweeps_log(tmp_path, files, flag):
    for name in files:
        (tmp_path / name).write_bytes(b"")
    cmd = train_command({"out": str(tmp_path)}, {})
    assert [a for a in cmd if a in ("--resume", "--force")] == ([flag] if flag else [])


def test_a_failing_run_is_reported_with_its_exit_code_and_last_line(tmp_path, capsys):
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"defaults": {}, "runs": [{"out": str(tmp_path / "a"), "lam": -1}]}))
    assert run_sweep(spec, jobs=1) == [2]
    assert "--lam" in (tmp_path / "a" / LOG).read_text()
    with pytest.raises(SystemExit) as info:
        main([str(spec)])
    out = capsys.readouterr().out.splitlines()
    assert info.value.code == 1 and out[0] == "0 of 1 runs finished; 1 failed:"
    assert out[1].startswith(f"  {tmp_path / 'a'}: exit code 2: latcomp: error: ") and "--lam" in out[1]


def test_runs_complete_and_resume(tmp_path, shared_data, jobs=2):
    runs = [{"out": str(tmp_path / name), "lam": lam, "latent": 2, "max_epochs": 1}
            for name, lam in [("a", 1), ("b", 2)]]
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"defaults": {"data_dir": str(shared_data)}, "runs": runs}))
    assert run_sweep(spec, jobs=jobs) == [0, 0]
    log = (tmp_path / "a" / "train-log.jsonl").read_text()
    assert run_sweep(spec, jobs=jobs) == [0, 0]  # finished runs are skipped, nothing retrained
    assert (tmp_path / "a" / "train-log.jsonl").read_text() == log
