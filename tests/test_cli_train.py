"""`latcomp train` from the command line: bad input is one clear line, real data trains."""

import json
import subprocess
import sys

import pytest


def latcomp(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "latcomp", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_help_lists_the_commands():
    out = latcomp("--help")
    assert out.returncode == 0 and "train" in out.stdout


@pytest.mark.parametrize("args,message", [
    (["train"], "Missing option '-o'"),
    (["train", "-o", "x", "--lam", "-1"], "--lam"),
    (["train", "-o", "x", "--dataset", "cifar"], "--dataset"),
    (["train", "-o", "x", "--max-epochs", "zero"], "--max-epochs"),
    (["nonsense"], "No such command"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    out = latcomp(*args, cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latcomp: error:") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x").exists()


def test_existing_run_without_resume_is_one_line(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"")
    out = latcomp("train", "-o", tmp_path, "--data-dir", tmp_path)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        f"latcomp: error: {tmp_path} already holds a training run; pass --resume to continue it"]


def test_one_epoch_on_real_data(tmp_path, shared_data):
    out = latcomp("train", "-o", tmp_path / "m", "--max-epochs", "1", "--data-dir", shared_data)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "m" / "train-log.jsonl").read_text())
    assert record["epoch"] == 1 and 100 < record["valid_loss"] < 300
    assert "epoch    1" in out.stderr and "done: 1 epochs" in out.stderr
