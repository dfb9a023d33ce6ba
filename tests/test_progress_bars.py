"""Progress on a terminal : every encode/decode job that runs over a second shows a bar on a
terminal, work that never reports (text) a pulsing one with the time elapsed; nothing off a terminal or with
--quiet, and nothing for quicker jobs."""

from __future__ import annotations

import sys
import time

from latcomp import cli


def test_a_job_over_the_threshold_shows_a_bar_on_a_terminal_only(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_PROGRESS_AFTER", 0.05)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli._run_with_progress("decode", False, lambda report: time.sleep(0.5) or 7) == 7
    assert "decode" in capsys.readouterr().err
    for quiet, work in ((True, lambda report: time.sleep(0.2)), (False, lambda report: None)):  # --quiet; quick
        cli._run_with_progress("decode", quiet, work)
        assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    cli._run_with_progress("decode", False, lambda report: time.sleep(0.2))
    assert capsys.readouterr().err == ""


def test_text_jobs_run_under_the_bar(monkeypatch, tmp_path, capsys):
    """Text encode and decode go through the same bar (they report no steps: it pulses)."""
    labels = []
    monkeypatch.setattr(cli, "_run_with_progress", lambda label, quiet, work: labels.append(label) or work(None))
    monkeypatch.setattr("latcomp.text.cli.decode_file", lambda *args: None)
    cli._decode_text(b"", None, "text", str(tmp_path / "x.txt"), None, False, False)
    assert labels == ["decode"]
