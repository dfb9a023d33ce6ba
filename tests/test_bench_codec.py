"""The codec benchmark runs end to end on a small model and a few digits."""

from __future__ import annotations

import json

from codec_fixtures import small_model, synthetic_binary  # noqa: F401

from benchmarks.codec import run_benchmark, to_markdown
from latcomp.measure.results import write_results


def test_benchmark_writes_json_and_markdown(tmp_path, small_model):
    x = synthetic_binary(40, seed=8)
    res = run_benchmark(small_model, digits=x, cli_repeats=0, fresh_dithers=2, log=lambda s: None)
    js, md = write_results("codec", res, to_markdown(res, "python -m benchmarks.codec --test"),
                           "python -m benchmarks.codec --test", tmp_path)
    data = json.loads(js.read_text())
    assert data["images"] == 40 and data["command"].startswith("python -m benchmarks.codec")
    assert 0.99 < data["lossless"]["payload_over_ideal"] < 1.1
    assert data["single_image_files"]["lossy"]["header_bytes"] == 39
    assert {"gzip -9 (packed bits)", "bz2 -9 (packed bits)", "xz -9e (packed bits)",
            "PNG optimize, one file per image", "WebP lossless, one mosaic image"} <= set(data["generic"])
    text = md.read_text()
    assert "bits/pixel" in text and "Machine:" in text and "Command:" in text
