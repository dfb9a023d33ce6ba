"""`latcomp train --arch text-*` from the command line: the options become the text trainer's settings."""

import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import run_cli
from test_text_codec import model_dir, trained  # noqa: F401 (fixtures)
from test_text_training import SENTENCES, tiny_config

import latcomp.text.training as training
from latcomp.cli import cli, main
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
def test_bad_text_settings_and_missing_data_are_one_error_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("LATCOMP_DATA", str(tmp_path))
    status, err = run_cli(capsys, "train", "--arch", "text-lattice", *args, "-o", tmp_path / "m",
                           "--data-dir", tmp_path)
    assert status != 0 and err.startswith("latcomp: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


@pytest.mark.parametrize("lossless", [True, False])
def test_cli_encode_decode_of_a_text_file(model_dir, tmp_path, capsys, lossless):
    text = ("\n".join(SENTENCES[1][:4]) + "\r\n  Ünïcode — tabs\there\n\nno final newline").encode("utf-8")
    (tmp_path / "in.txt").write_bytes(text)
    mode = ["--lossless"] if lossless else []
    status, err = run_cli(capsys, "encode", tmp_path / "in.txt", "-o", tmp_path / "t.lat", "--model", model_dir,
                           "--seed", "3", *mode)
    assert status == 0 and "7 lines" in err, err
    main(["info", str(tmp_path / "t.lat")])
    assert "modality:       text" in capsys.readouterr().out
    status, err = run_cli(capsys, "decode", tmp_path / "t.lat", "-o", tmp_path / "out.txt", "--model", model_dir)
    assert status == 0, err
    out = (tmp_path / "out.txt").read_bytes()
    assert out == text if lossless else out.count(b"\n") == 6
    if lossless:  # standard output, from a fresh process
        stdout = subprocess.run([sys.executable, "-m", "latcomp", "decode", str(tmp_path / "t.lat"), "-o", "-",
                                 "--model", str(model_dir)], capture_output=True, timeout=120)
        assert stdout.returncode == 0 and stdout.stdout == text


def test_cli_text_errors_are_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_bytes(b"caf\xe9 is latin-1\n")
    for args, message in [(["encode", tmp_path / "in.txt", "-o", tmp_path / "a.lat"], "not UTF-8 text"),
                          (["encode", tmp_path / "in.txt", "-o", tmp_path / "a.lat", "--model", model_dir],
                           "not UTF-8 text")]:
        status, err = run_cli(capsys, *args)
        assert status != 0 and message in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "ok.txt").write_text("The cat saw a fish.\n")
    assert run_cli(capsys, "encode", tmp_path / "ok.txt", "-o", tmp_path / "b.lat", "--model", model_dir)[0] == 0
    status, err = run_cli(capsys, "decode", tmp_path / "b.lat", "-o", tmp_path / "b.txt")   # the shipped model's?
    assert status != 0 and "decode with the same model" in err and not (tmp_path / "b.txt").exists()
    assert len(err.strip().splitlines()) == 1


def test_text_files_use_the_shipped_text_model_by_default(tmp_path, capsys):
    from latcomp.modelfile import DEFAULT_TEXT_MODEL
    from latcomp.text.codec import text_model

    assert text_model(DEFAULT_TEXT_MODEL)[1].side is not None        # it ships with its side statistics
    text = "The LORD said unto Moses, “Go!”\r\n\tcafé  McDonald's zyzzyva 1984\n\nno final newline".encode()
    (tmp_path / "notes.txt").write_bytes(text)
    status, err = run_cli(capsys, "encode", tmp_path / "notes.txt", "-o", tmp_path / "n.lat", "--lossless")
    assert status == 0 and "4 lines" in err, err
    assert run_cli(capsys, "decode", tmp_path / "n.lat", "-o", tmp_path / "n.txt")[0] == 0
    assert (tmp_path / "n.txt").read_bytes() == text
