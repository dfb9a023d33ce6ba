"""``latcomp info`` and model-mismatch errors name a shipped model and a photo model's quality level (a
mismatch used to name model ids only, and info did not show the quality level)."""

from __future__ import annotations

from conftest import REPO, run_cli

from latcomp.modelfile import shipped_label, shipped_model

GOLDEN = REPO / "tests" / "golden"


def test_info_names_the_shipped_model_and_its_quality(capsys):
    from latcomp.cli import main

    for name, label in (("photo-hyper2-q1.rgb.lat", "(models/photo-hyper2-q1, photo quality 1)"),
                        ("photo-hyper-q1.rgb.lat", "(models/photo-hyper-q1, photo quality 1 of an earlier release)"),
                        ("photo-q1.rgb.lat", "(models/photo-q1, photo quality 1 of an earlier release)"),
                        ("photo-hyper-base.rgb.lat", None)):
        capsys.readouterr()
        main(["info", str(GOLDEN / name)])
        line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("model id:"))
        assert line.endswith(label) if label else "quality" not in line, line


def test_a_mismatch_names_the_model_and_quality_the_file_needs(tmp_path, capsys):
    code, err = run_cli(capsys, "decode", GOLDEN / "photo-hyper-q1.rgb.lat", "-o", f"{tmp_path}/out/", "--model",
                        shipped_model("photo-hyper-q2"))
    assert code == 1 and "(models/photo-hyper-q1, photo quality 1 of an earlier release), but " in err, err
    assert shipped_label(shipped_model("mnist-lattice-vae")) == "models/mnist-lattice-vae"
