"""``latcomp bench --photo`` (latcomp.measure.photo_bench) on tiny random photo models and two synthetic "Kodak" images:
real file sizes, the peers run or reused, BD-rate tables, reports, and one-line errors."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import make_photo_model
from PIL import Image
from test_photo_metrics import synthetic_photo

from latcomp.data import DataError
from latcomp.measure import kodak, peers, rd
from latcomp.measure import photo_bench as pb
from latcomp.measure.photo_metrics import psnr_rgb
from latcomp.photo.codec import compress, decompress

SIZES = [(176, 192), (184, 168)]  # both sides above MS-SSIM's 160


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("photo-bench-models")
    return {"z0": make_photo_model(root / "z0", lattice="z"), "z1": make_photo_model(root / "z1", seed=1),
            "e8": make_photo_model(root / "e8", lattice="e8", seed=2)}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A data root with kodak/kodim01.png, kodim02.png (synthetic, no SHA256SUMS)."""
    root = tmp_path_factory.mktemp("photo-bench-data")
    (root / "kodak").mkdir()
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(synthetic_photo(h, w, seed=i)).save(root / "kodak" / f"kodim{i + 1:02d}.png")
    return root


def bench(capsys, *args) -> tuple[int, str, str]:
    """Run ``latcomp bench`` in-process: (exit status, stdout, stderr)."""
    from latcomp.cli import main

    try:
        main(["bench", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_has_the_real_file_size_and_quality(capsys, models, data_root, tmp_path):
    code, out, err = bench(capsys, "--photo", models["z0"], "--data-dir", data_root, "--peers", "none",
                           "--repeats", "1", "--cold-runs", "1", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "latcomp (z)" in out and "z0" in out  # the rich table on stdout
    assert "not the Kodak originals" in err
    res = json.loads((tmp_path / "r.json").read_text())
    assert [c["name"] for c in res["curves"]] == ["latcomp (z)"] and res["bd_rate"] == []
    assert res["peers"] == {"source": "none"} and res["data"]["not_kodak"] == ["kodim01", "kodim02"]
    (point,) = res["curves"][0]["points"]
    assert point["setting"] == "z0 (λ 0.025)" and point["info"]["lattice"] == "z*8"
    for r, (h, w), seed in zip(point["per_image"], SIZES, range(2), strict=True):
        img = synthetic_photo(h, w, seed=seed)
        blob = compress(img, models["z0"], seed=pb.image_seed(img))
        assert r["bytes"] == len(blob) and r["bpp"] == 8 * len(blob) / (h * w)
        assert r["psnr"] == pytest.approx(psnr_rgb(img, decompress(blob, models["z0"])))
    assert point["bpp"] == pytest.approx(np.mean([r["bpp"] for r in point["per_image"]]))
    assert point["info"]["cold_decode_s"] > 0 and len(point["info"]["cold_decode_runs_s"]) == 1


def test_peers_run_and_extra_curves_give_bd_tables(capsys, models, data_root, tmp_path):
    # "JPEG ×0.8": the JPEG curve of these images with 0.8 times the rate, from another report
    images, data = kodak.load_kodak(data_root)
    cheaper = peers.codec_curve(peers.jpeg(), images, repeats=1, log=None)
    for p in cheaper.points:
        p.bpp *= 0.8
    cheaper.name = "JPEG ×0.8"
    meta = {"machine": {"cpu": "test", "cpu_count": 1, "platform": "test", "load_average": None}, "versions": {},
            "data": data, "date": "now", "wall_s": 1.0, "repeats": 1}
    jpeg = peers.codec_curve(peers.jpeg(), images, repeats=1, log=None)   # already measured here: left out
    rd.write_report([cheaper, jpeg], meta, "made by the test", tmp_path / "cheaper.json")

    code, out, err = bench(capsys, "--photo", models["z0"], models["e8"], models["z1"], "--data-dir",
                           data_root / "kodak", "--peers", "run", "--peer-codecs", "jpeg", "--extra-curve",
                           tmp_path / "cheaper.json", "--repeats", "1", "--cold-runs", "0", "--json",
                           tmp_path / "r.json", "--markdown", tmp_path / "r.md", "--plot", tmp_path / "r.png")
    assert code == 0, err
    res = json.loads((tmp_path / "r.json").read_text())
    assert [c["name"] for c in res["curves"]] == ["latcomp (z)", "latcomp (e8)", "JPEG", "JPEG ×0.8"]
    assert res["bd_subjects"] == ["latcomp (z)", "latcomp (e8)"] and res["peers"]["source"] == "measured in this run"
    z = res["curves"][0]
    assert sorted(p["setting"] for p in z["points"]) == ["z0 (λ 0.025)", "z1 (λ 0.025)"]
    assert [p["bpp"] for p in z["points"]] == sorted(p["bpp"] for p in z["points"])
    pairs = {(r["curve"], r["anchor"]): r for r in res["bd_rate"]}
    assert set(pairs) == {("latcomp (z)", "JPEG"), ("latcomp (e8)", "JPEG"), ("JPEG ×0.8", "JPEG"),
                          ("latcomp (z)", "latcomp (e8)"), ("latcomp (z)", "JPEG ×0.8"),
                          ("latcomp (e8)", "latcomp (z)"), ("latcomp (e8)", "JPEG ×0.8")}
    for metric in ("psnr", "ms_ssim_db"):
        for method in rd.BD_METHODS:
            assert pairs["JPEG ×0.8", "JPEG"][f"{metric}_{method}"] == pytest.approx(-20.0, abs=1e-6)
    assert pairs["latcomp (e8)", "JPEG"]["psnr_cubic"] is None  # one point: undefined, not an error
    md = (tmp_path / "r.md").read_text()
    for text in ("## BD-rate against JPEG", "## BD-rate of latcomp (z) against each curve",
                 "## BD-rate of latcomp (e8) against each curve", "| JPEG ×0.8 | -20.0% |", "![RD curves](r.png)",
                 "Further curves from", "### latcomp (e8)", "| z1 (λ 0.025) |"):
        assert text in md, text
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"

    # the same peers again from that report: not measured, and the report says where they come from
    code, out, err = bench(capsys, "--photo", models["z0"], "--data-dir", data_root, "--peers", tmp_path / "r.json",
                           "--repeats", "1", "--cold-runs", "0", "--markdown", tmp_path / "again.md")
    assert code == 0, err
    again = (tmp_path / "again.md").read_text()
    assert "not measured in this run" in again and "r.json" in again and "| latcomp (z) |" in again


@pytest.mark.parametrize("args, message", [
    (["--data-dir", "{tmp}/nowhere"], "Kodak images (kodim01.png … kodim24.png) not found"),
    (["--data-dir", "{data}", "--peers", "{tmp}/none.json"], "none.json: no such report file"),
    (["{tmp}/no-model", "--data-dir", "{data}"], "no-model"),
    (["--data-dir", "{data}", "--peer-codecs", "jpeg,bmp"], "unknown codec bmp"),
    (["--data-dir", "{data}", "--is-samples", "5"], "--is-samples do not apply with --photo"),
    (["--data-dir", "{data}", "--peers", "none", "--peer-codecs", "jpeg"], "--peers none leaves them out"),
])
def test_errors_are_one_line(capsys, models, data_root, tmp_path, monkeypatch, args, message):
    monkeypatch.delenv("LATCOMP_DATA", raising=False)
    args = [a.format(tmp=tmp_path, data=data_root) for a in args]
    if not any(a.startswith(str(tmp_path / "no-model")) for a in args):
        args = [str(models["z0"]), *args]
    code, out, err = bench(capsys, "--photo", *args, "--json", tmp_path / "r.json")
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("latcomp: error:"), err
    assert message in lines[0]
    assert not (tmp_path / "r.json").exists()


def test_mnist_mode_keeps_its_arguments(capsys, tmp_path):
    code, _, err = bench(capsys, "--is-samples", "5")
    assert code != 0 and "Missing argument 'MODEL_DIR...'" in err
    code, _, err = bench(capsys, tmp_path, "--peers", "none")
    assert code != 0 and "--peers apply only with --photo" in err


# --------------------------------------------------------------------------- pieces


def test_lattice_family_and_codec_names():
    assert [pb.lattice_family(s) for s in ("z*128", "e8*16", "leech+e8*2", "z")] == ["z", "e8", "leech+e8", "z"]
    assert peers.codec_names("jpeg, WebP,jxl,JPEG (optimize)") == ["JPEG", "WebP", "JPEG XL", "JPEG (optimize)"]
    with pytest.raises(ValueError, match="unknown codec png"):
        peers.codec_names("jpeg,png")


def test_the_committed_peer_report_still_loads():
    path = Path(__file__).resolve().parents[1] / "docs" / "results" / "photo-peers.json"
    if not path.exists():
        pytest.skip("no docs/results/photo-peers.json")
    curves, source = pb.peer_curves_from(path, ["JPEG", "WebP"])
    assert [c.name for c in curves] == ["JPEG", "WebP"] and source["command"].startswith("python -m benchmarks")
    assert len(curves[0].points) == len(peers.QUALITIES) and curves[0].points[0].info == {}
    rows = rd.bd_table(curves)
    assert rows[0]["curve"] == "WebP" and -40 < rows[0]["psnr_cubic"] < -30


def test_a_peer_result_is_a_curve_of_its_checkpoints(tmp_path):
    """The CompressAI peer's JSON (benchmarks/compressai_peer.py eval) joins as one curve, a point per checkpoint."""
    def point(lam, bpp, steps):
        per_image = [{"image": "kodim01", "bytes": 100, "bpp": bpp, "psnr": 30.0, "ms_ssim": 0.95}]
        return {"checkpoint": f"models/x{lam}", "lam": lam, "epochs": 4, "steps": steps, "per_image": per_image,
                "mean": {"bpp": bpp, "psnr": 30.0, "ms_ssim": 0.95, "enc_s": 0.1, "dec_s": 0.2}}

    res = {"name": "CompressAI bmshj2018-factorized (N=64, M=128), same budget as latcomp's",
           "points": [point(0.0035, 0.3, 9250), point(0.025, 0.9, 9250)]}
    (tmp_path / "c.json").write_text(json.dumps(res))
    (curve,) = rd.load_curves(tmp_path / "c.json")
    assert curve.name == "CompressAI bmshj2018-factorized"
    assert [p.setting for p in curve.points] == ["λ 0.0035", "λ 0.025"]
    assert [p.bpp for p in curve.points] == [0.3, 0.9] and curve.points[1].info["steps"] == 9250
    (tmp_path / "bad.json").write_text(json.dumps({"models": []}))
    with pytest.raises(DataError, match="not a report of RD curves"):
        rd.load_curves(tmp_path / "bad.json")


def test_kodak_checksums(data_root, tmp_path):
    images, data = kodak.load_kodak(data_root, limit=1)
    assert [n for n, _ in images] == ["kodim01"] and data["sha256_checked"] is False
    folder = tmp_path / "kodak"
    folder.mkdir()
    for p in (data_root / "kodak").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "SHA256SUMS").write_text("0" * 64 + "  kodim02.png\n")
    with pytest.raises(DataError, match="kodim02.png does not match its sha256"):
        kodak.load_kodak(tmp_path)
    assert kodak.load_kodak(tmp_path, limit=1)[1]["sha256_checked"] is True


def test_real_kodak_pixels_match_the_table():
    from conftest import real_data_dir

    if not (real_data_dir() / "kodak" / "kodim01.png").exists():
        pytest.skip("Kodak images not found (set LATCOMP_DATA)")
    images, data = kodak.load_kodak(real_data_dir(), limit=2)
    assert data["not_kodak"] == [] and data["sha256_checked"] and images[0][1].shape == (512, 768, 3)


def test_report_curves_round_trip(tmp_path):
    point = rd.Point("q (λ 1)", 0.5, 30.0, 0.95, 0.1, 0.2, [], {"cold_decode_s": 1.5})
    curve = rd.Curve("latcomp (z)", [point], "model (λ)", {"kind": "latcomp"})
    meta = {"machine": {"cpu": "t", "cpu_count": 1, "platform": "t", "load_average": None}, "versions": {},
            "data": {"folder": "x", "images": 1, "pixels": 1}, "date": "now", "wall_s": 0.0, "repeats": 1}
    rd.write_report([curve], meta, "c", tmp_path / "a.json", tmp_path / "a.md")
    assert [asdict(c) for c in rd.load_curves(tmp_path / "a.json")] == [asdict(curve)]
    row = "| q (λ 1) | 0.5000 | 30.000 | 0.95000 | 13.010 | 0.1000 | 0.2000 | 1.50 |"
    assert row in (tmp_path / "a.md").read_text()
