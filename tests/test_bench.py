"""`latcomp bench`: end to end on tiny saved models, JSON fields, real bitstream rates, plots, CLI errors."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, synthetic_binary

from latcomp.measure.bench import (
    bench_table_markdown,
    plot_rate_vs_distortion,
    plot_rate_vs_nll,
    plot_validation_curves,
    run_bench,
    write_bench,
    write_plots,
)
from latcomp.modelfile import ModelFileError, save_model
from latcomp.nn.registry import build_model

PNG = b"\x89PNG\r\n\x1a\n"
FIELDS = {"name", "architecture", "levels", "lam", "count", "rate_bits", "rate_source", "rate_estimate_bits",
          "rate_gap_bits", "rate_gap_percent", "distortion", "neg_elbo", "nll", "nll_stderr", "nll_source",
          "is_samples"}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    specs = [("lattice-vae", 1.0, {}), ("lattice-vae", 0.5, {}), ("gaussian", 1.0, {}),
             ("st-scalar", 1.0, {"levels": 3})]
    dirs = []
    for i, (arch, lam, extra) in enumerate(specs):
        torch.manual_seed(i)
        model = build_model(arch, data_dim=784, hidden=16, latent=40, lam=lam, **extra)
        directory = root / f"{arch}-{lam}"
        save_model(model, directory)
        log = [{"epoch": e, "valid_loss": 600.0 - e, "valid_rate_nats": 40.0, "valid_distortion": 560.0 - e}
               for e in (1, 2, 3)]
        (directory / "train-log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        dirs.append(directory)
    return dirs


@pytest.fixture(scope="module")
def result(model_dirs):
    return run_bench(model_dirs, is_samples=20, data=synthetic_binary(200, seed=3))


def test_fields_and_sources(result):
    assert [m["architecture"] for m in result["models"]] == ["lattice-vae", "lattice-vae", "gaussian", "st-scalar"]
    for m in result["models"]:
        assert FIELDS <= set(m), FIELDS - set(m)
        assert m["neg_elbo"] == pytest.approx(m["distortion"] + m["rate_estimate_bits"] * 0.6931471805599453)
    lattice, _, gaussian, scalar = result["models"]
    assert lattice["rate_source"] == "bitstream" and gaussian["rate_source"] == "estimate"
    assert gaussian["rate_gap_bits"] is None and gaussian["rate_bits"] == gaussian["rate_estimate_bits"]
    assert lattice["nll_source"] == gaussian["nll_source"] == "importance-sampling"
    assert lattice["nll"] <= lattice["neg_elbo"] + 3 * lattice["nll_stderr"]
    assert scalar["nll"] is None and scalar["nll_source"] == "elbo-bound" and scalar["levels"] == 3
    json.dumps(result)  # plain JSON types throughout


def test_lattice_rate_is_a_real_bitstream_close_to_the_estimate(result):
    from latcomp.codec import compress

    lattice = result["models"][0]
    data = synthetic_binary(200, seed=3)
    assert lattice["rate_bits"] == len(compress(data, lattice["model_dir"], seed=0)) * 8 / 200
    assert lattice["bitstream_bytes"] == lattice["header_bytes"] + lattice["payload_bytes"]
    assert abs(lattice["rate_gap_percent"]) < 4.0
    assert lattice["rate_gap_bits"] == pytest.approx(lattice["rate_bits"] - lattice["rate_estimate_bits"])


def test_no_bitstream_and_no_is(model_dirs):
    res = run_bench(model_dirs[:1], is_samples=0, bitstream=False, data=synthetic_binary(20))
    m = res["models"][0]
    assert m["rate_source"] == "estimate" and m["nll"] is None and m["nll_source"] == "elbo-bound"
    assert "≤" in bench_table_markdown(res)


def test_bad_model_dir_fails_before_any_work(model_dirs, tmp_path):
    calls = []
    with pytest.raises(ModelFileError, match="config"):
        run_bench([model_dirs[0], tmp_path / "nope"], data=synthetic_binary(5), progress=lambda *a: calls.append(a))
    assert calls == []


def test_progress_covers_every_step(model_dirs):
    stages = set()
    run_bench(model_dirs[:1], is_samples=2, data=synthetic_binary(20), progress=lambda s, d, t: stages.add(s))
    name = model_dirs[0].name
    assert {f"{name}: evaluate", f"{name}: coding", f"{name}: importance sampling"} <= stages


def test_markdown_and_json_files(result, tmp_path):
    table = bench_table_markdown(result)
    assert table.count("\n|") >= 5 and "bitstream" in table and "±" in table
    paths = write_bench(result, "latcomp bench x", tmp_path / "bench.json", tmp_path / "bench.md")
    assert json.loads(paths[0].read_text())["command"] == "latcomp bench x"
    assert "latcomp bench x" in paths[1].read_text()
    (other,) = write_bench(result, "c", json_path=tmp_path / "sub.json")
    assert json.loads(other.read_text())["models"][0]["rate_source"] == "bitstream"


def test_plots_are_pngs(result, model_dirs, tmp_path):
    for path in (plot_rate_vs_nll(result, tmp_path / "a.png"), plot_rate_vs_distortion(result, tmp_path / "b.png"),
                 plot_validation_curves(model_dirs, tmp_path / "c.png")):
        assert path.read_bytes()[:8] == PNG
    assert len(write_plots(result, model_dirs, tmp_path / "all")) == 3
    assert plot_validation_curves([tmp_path], tmp_path / "none.png") is None


def _latcomp(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "latcomp", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_bad_model_dir_is_one_line(tmp_path):
    out = _latcomp("bench", tmp_path / "missing", "--is-samples", "5", cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latcomp: error:") and "missing" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_cli_help_lists_options():
    out = _latcomp("bench", "--help")
    assert out.returncode == 0
    for option in ("--split", "--is-samples", "--dithers", "--data-dir", "--json", "--markdown", "--plot",
                   "--no-bitstream"):
        assert option in out.stdout


def test_cli_help_says_how_long_the_default_k_takes():
    out = _latcomp("bench", "--help")
    assert "K = 1000 takes about 7 minutes per model" in " ".join(out.stdout.split())


def test_the_table_stays_readable_at_80_columns(result):
    from io import StringIO

    from rich.console import Console

    from latcomp.cli import print_bench_table

    for width, compact in ((80, True), (250, False)):
        text = StringIO()
        print_bench_table(Console(file=text, width=width), result)
        lines = text.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width and "…" not in text.getvalue()
        assert ("estimate (bits)" in text.getvalue()) is not compact
        assert all(m["name"] in text.getvalue() for m in result["models"])


def test_plot_colours_are_fixed_per_model_kind(result, model_dirs, monkeypatch):
    import matplotlib.colors as mcolors

    from latcomp.measure import bench

    figures = []
    monkeypatch.setattr(bench, "_save", lambda fig, path: figures.append(fig) or path)
    reordered = {**result, "models": result["models"][::-1]}
    for res in (result, reordered):
        plot_rate_vs_nll(res, "x.png")
        plot_rate_vs_distortion(res, "x.png")
    plot_validation_curves(model_dirs[::-1], "x.png")
    colours = {}
    for fig in figures:
        for line in fig.axes[0].get_lines():
            label = line.get_label()
            arch = next((a for a in bench.KIND_COLOURS if f"({a}" in label or label.startswith(a)), None)
            if arch:
                colours.setdefault(arch, set()).add(mcolors.to_hex(line.get_color()))
    assert set(colours) == {"lattice-vae", "gaussian", "st-scalar"}
    assert all(c == {mcolors.to_hex(bench.KIND_COLOURS[a])} for a, c in colours.items()), colours


def test_bench_refuses_a_model_of_another_modality_in_one_line(capsys):
    from latcomp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(REPO / "models" / "photo-q1"), "--is-samples", "0"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code != 0 and lines == [
        f"latcomp: error: {REPO / 'models' / 'photo-q1'} is a photo model: latcomp bench measures digit models "
        "(for it: latcomp bench --photo)"]
