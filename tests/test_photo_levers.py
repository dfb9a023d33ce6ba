"""benchmarks.photo_levers: steps are counted from the origin model along the chain of --init models."""

import pytest
from conftest import REPO

from benchmarks.photo_levers import run_summary, steps_before


def test_steps_count_every_logged_epoch_of_the_chain_from_the_origin(monkeypatch):
    monkeypatch.chdir(REPO)   # the configs name their --init models relative to the repository
    origin = REPO / "models" / "photo-q3"
    # photo-hyper2-q1 ← photo-hyper2-q2 ← photo-hyper2-q3 ← photo-hyper-base (39 epochs) ← photo-q3
    assert steps_before(REPO / "models" / "photo-hyper-base", origin) == 0
    assert steps_before(REPO / "models" / "photo-hyper2-q3", origin) == 39 * 250
    assert steps_before(REPO / "models" / "photo-hyper2-q1", origin) == (39 + 6 + 10) * 250
    summary = run_summary(REPO / "models" / "photo-hyper2-q3", origin)
    assert (summary["start_step"], summary["end_step"]) == (9750, 11250)
    assert summary["curve"][0][0] == 10000 and summary["recipe"]["crop"] == 256
    with pytest.raises(ValueError, match="does not start from"):
        steps_before(REPO / "models" / "photo-hyper2-q3", REPO / "models" / "photo-z-q1")
