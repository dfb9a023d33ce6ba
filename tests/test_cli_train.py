"""`latcomp train` from the command line: bad input is one clear line, real data trains."""

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import REPO

import latcomp.train as train_module
from latcomp.cli import cli


def latcomp(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "latcomp", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_help_lists_the_commands():
    out = latcomp("--help")
    assert out.returncode == 0 and "train" in out.stdout


@pytest.mark.parametrize("command", [[], ["train"], ["encode"], ["decode"], ["bench"]])
def test_help_texts_name_no_issues_and_only_files_that_exist(command):
    text = CliRunner().invoke(cli, [*command, "--help"], terminal_width=1000).output
    assert not re.search(r"\bissues?\s*#?\d", text, re.IGNORECASE), text
    for name in re.findall(r"[\w./-]+\.(?:md|json|py|txt|toml|png)\b", text):
        assert (REPO / name).exists() or name.startswith("."), name


def test_arch_names_the_architecture_and_model_is_a_deprecated_alias(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(train_module, "train",
                        lambda cfg, out, **kw: seen.append(cfg) or train_module.RunState())
    result = CliRunner().invoke(cli, ["train", "--arch", "gaussian", "-o", str(tmp_path / "a")])
    assert result.exit_code == 0 and "deprecated" not in result.output, result.output
    result = CliRunner().invoke(cli, ["train", "--model", "st-scalar", "-o", str(tmp_path / "b")])
    assert result.exit_code == 0 and "`latcomp train --model` is deprecated; use --arch" in result.output
    assert [cfg.architecture for cfg in seen] == ["gaussian", "st-scalar"]
    assert "--model" not in CliRunner().invoke(cli, ["train", "--help"]).output


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
        f"latcomp: error: {tmp_path} already holds a training run; pass --resume to continue it "
        f"or --force to start over"]


def test_one_epoch_on_real_data(tmp_path, shared_data):
    out = latcomp("train", "-o", tmp_path / "m", "--max-epochs", "1", "--data-dir", shared_data)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "m" / "train-log.jsonl").read_text())
    assert record["epoch"] == 1 and 100 < record["valid_loss"] < 300
    assert "epoch    1" in out.stderr and "done: 1 epochs" in out.stderr
