"""Model cards are rendered from the config, the log and a real evaluation."""

import torch

from latcomp.measure.results import machine_info
from latcomp.modelcard import render_card
from latcomp.modelfile import load_model
from latcomp.train import TrainConfig, evaluate, train


def test_card_reports_the_evaluation_and_why_training_stopped(tmp_path, tiny_data):
    train(TrainConfig(max_epochs=2, hidden=16, latent=4, lam=2.0), tmp_path, data=tiny_data)
    model = load_model(tmp_path)
    valid = evaluate(model, torch.from_numpy(tiny_data[1].astype("float32")))
    evaluation = {"dithers": 1, "valid": valid, "test": valid, "machine": machine_info()}
    card = render_card(tmp_path, evaluation, "python -m latcomp.modelcard X")
    assert "2 epochs run" in card and "stopped at the budget of 2 epochs" in card
    assert "λ = 2.0" in card
    # the card's negative ELBO is distortion + rate (λ-free), not the λ-weighted loss
    assert f"| test | {valid['distortion'] + valid['rate_nats']:.3f} | {valid['rate_bits']:.3f} |" in card
    assert f"{valid['loss']:.3f}" not in card.split("## Evaluation")[1]


def test_photo_card_reports_budget_and_kodak_numbers(tmp_path):
    """A photo model's card: settings, steps of the budget, where it started, and the evaluation's numbers."""
    import numpy as np

    from latcomp.modelcard import render_photo_card

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(2)]
    cfg = TrainConfig(architecture="photo-factorized", dataset="image-folder", channels=8, latent=8, lam=0.05,
                      batch_size=2, crop=32, steps_per_epoch=2, max_epochs=2, data_dir="photos")
    train(cfg, tmp_path, data=(images, images))
    evaluation = {"bpp": 0.8125, "psnr": 27.5, "ms_ssim": 0.9, "encode_s": 0.5, "decode_s": 0.25,
                  "cold_decode_s": 1.25, "machine": machine_info()}
    card = render_photo_card(tmp_path, evaluation, "python -m latcomp.modelcard X")
    assert "λ = 0.05" in card and "2 epochs of 2 steps (4 steps)" in card
    assert "trained from random initial weights" in card and "no GPU" in card
    assert "| 0.8125 | 27.50 | 0.9000 | 0.50 | 0.25 | 1.25 |" in card


def test_photo_card_of_a_fine_tune_chain_counts_every_run_up_to_its_best_model(tmp_path):
    """q2 ← q3 ← base: the card counts the steps of each run up to the best epoch the next one started from."""
    import numpy as np

    from latcomp.modelcard import lineage_budget, render_photo_card
    from latcomp.train import read_train_log

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(2)]
    small = dict(architecture="photo-factorized", dataset="image-folder", channels=8, latent=8, batch_size=2,
                 crop=32, steps_per_epoch=2, data_dir="photos")
    train(TrainConfig(lam=0.05, max_epochs=3, **small), tmp_path / "base", data=(images, images))
    train(TrainConfig(lam=0.02, max_epochs=2, init=str(tmp_path / "base"), **small), tmp_path / "q3",
          data=(images, images))
    train(TrainConfig(lam=0.01, max_epochs=2, lr_drop=2, init=str(tmp_path / "q3"), **small), tmp_path / "q2",
          data=(images, images))

    def best(run):
        log = read_train_log(tmp_path / run)
        epoch = min(log, key=lambda r: r["valid_loss"])["epoch"]
        return 2 * epoch, sum(r["seconds"] for r in log[:epoch])

    steps, seconds = (sum(x) for x in zip(best("base"), best("q3"), strict=True))
    assert lineage_budget(tmp_path / "q3") == (steps, seconds)
    evaluation = {"bpp": 0.5, "psnr": 25.0, "ms_ssim": 0.9, "encode_s": 0.5, "decode_s": 0.25,
                  "cold_decode_s": None, "machine": machine_info()}
    card = render_photo_card(tmp_path / "q2", evaluation, "python -m latcomp.modelcard X")
    assert f"whose best model had {steps:,} steps" in card
    assert "Adam lr 0.0005 (a tenth of it from epoch 2 on)" in card


def test_photo_card_from_a_bench_report_takes_its_point_and_its_machine(tmp_path):
    """--bench-json: the model's point of the report, and the machine that measured it (not this one)."""
    import json

    from latcomp.modelcard import evaluate_photo_model

    def point(model, bpp):
        return {"setting": 3, "bpp": bpp, "psnr": 30.0, "ms_ssim": 0.95, "enc_s": 0.4, "dec_s": 0.3,
                "info": {"model_dir": str(model), "cold_decode_s": 0.6}}

    report = tmp_path / "kodak.json"
    machine = {"platform": "elsewhere", "cpu": "Some Other CPU", "cpu_count": 64}
    report.write_text(json.dumps({"machine": machine, "curves": [
        {"name": "latcomp", "setting_name": "q", "info": {},
         "points": [point(tmp_path / "q2", 0.25), point(tmp_path / "q3", 0.5)]}]}))
    ev = evaluate_photo_model(tmp_path / "q3", bench_json=str(report))
    assert (ev["bpp"], ev["cold_decode_s"], ev["machine"]) == (0.5, 0.6, machine)


def test_lineage_budget_stops_at_a_model_without_a_training_log(tmp_path, tiny_data):
    """An --init chain ends at a model without its training log (a copied model file): it counts nothing."""
    import shutil

    from latcomp.modelcard import lineage_budget
    from latcomp.train import LOG, RUN_FILES

    train(TrainConfig(max_epochs=2, hidden=16, latent=4, lam=2.0), tmp_path / "base", data=tiny_data)
    (tmp_path / "copied").mkdir()
    for name in RUN_FILES:
        if name != LOG:
            shutil.copy(tmp_path / "base" / name, tmp_path / "copied" / name)
    assert lineage_budget(tmp_path / "copied") == (0, 0.0)
    assert lineage_budget(tmp_path / "base")[0] > 0
