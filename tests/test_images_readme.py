"""The README's numbers against the results files they come from: a number changed in one place
and not the other fails here."""

from __future__ import annotations

import json
import re

from codec_fixtures import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
RESULTS = REPO / "docs" / "results"
#: The Kodak report of the default photo models (the hyperprior models trained on 256² crops).
DEFAULT_REPORT = "photo-kodak-hyper2.json"


def _bd_rate(curve: str, fit: str = "cubic", report: str = "photo-kodak.json") -> str:
    """The PSNR BD-rate of ``curve`` against JPEG on Kodak (``fit``: cubic or akima) in ``report``, as the docs
    print it."""
    rows = json.loads((RESULTS / report).read_text())["bd_rate"]
    value = next(row[f"psnr_{fit}"] for row in rows if row["curve"] == curve and row["anchor"] == "JPEG")
    return f"{-value:.1f}"


def test_the_photo_bd_rate_against_jpeg_is_the_same_everywhere():
    hyper = _bd_rate("latcomp hyperprior (e8)", report=DEFAULT_REPORT)
    intro = re.search(r"\[Photos\]\(#photos\): ([0-9.]+)% fewer bits than JPEG", README)
    assert intro and intro.group(1) == hyper, (intro and intro.group(1), hyper)
    assert f"**−{hyper}%** (Akima −{_bd_rate('latcomp hyperprior (e8)', 'akima', DEFAULT_REPORT)}%)" in README
    factorized = [_bd_rate(f"latcomp ({lattice})", report="photo-kodak-factorized.json") for lattice in ("e8", "z")]
    assert f"E8 −{factorized[0]}%, Z −{factorized[1]}%\nagainst JPEG" in README
    assert f"Against JPEG: E8 −{factorized[0]}%, Z −{factorized[1]}%" in \
        (REPO / "docs" / "photos.md").read_text(encoding="utf-8")


def test_the_photo_bench_times_are_the_measured_ones():
    peers = json.loads((RESULTS / "photo-peers.json").read_text())
    kodak = json.loads((RESULTS / "photo-kodak.json").read_text())
    assert peers["repeats"] == 3 and kodak["repeats"] == 1
    assert f"{peers['wall_s']:,.0f} s, docs/results/photo-peers.json" in README
    assert f"{kodak['wall_s']:,.0f} s ({kodak['wall_s'] / 60:.1f} minutes)" in README
    assert f"about\n{peers['wall_s'] / 60:.0f} minutes for them alone" in README
    assert f"(peers alone: {peers['wall_s'] / 60:.0f} min)" in README
