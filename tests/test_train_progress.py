"""Training progress from the Python API : ``train(cfg, out, progress=callback)`` reports the
steps and epochs, a call without it prints nothing, and every line names its units (a photo loss is no nats)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from conftest import run_cli

from latcomp.progress import PHOTO_LOSS_UNIT, TrainProgress, epoch_line, print_epochs
from latcomp.train import TrainConfig, train


def test_train_reports_to_its_callback_and_prints_nothing_without_it(tmp_path, capsys, tiny_data):
    cfg = TrainConfig(hidden=16, latent=4, batch_size=50, max_epochs=2, patience=5)
    events: list[TrainProgress] = []
    state = train(cfg, tmp_path / "with", data=tiny_data, progress=events.append)
    ends = [e for e in events if e.record is not None]
    assert [e.record for e in ends] == state.log and [e.epoch for e in ends] == [1, 2]
    first = [e for e in events if e.record is None and e.epoch == 1]
    assert [e.step for e in first] == [1, 6] and {e.steps for e in first} == {6}  # 300 images, batches of 50
    assert set(first[0].metrics) == {"loss", "rate_bits", "distortion"} and ends[0].step == ends[0].steps == 6
    capsys.readouterr()
    train(replace(cfg, max_epochs=1), tmp_path / "without", data=tiny_data)
    assert capsys.readouterr() == ("", "")
    print_epochs(ends[1])
    assert capsys.readouterr().err == epoch_line(state.log[1]) + "\n"


def test_photo_training_reports_bpp_and_psnr_with_the_loss_unit(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    cfg = TrainConfig(architecture="photo-factorized", dataset="image-folder", channels=8, latent=8, lam=0.01,
                      crop=16, batch_size=2, steps_per_epoch=2, max_epochs=1)
    events: list[TrainProgress] = []
    valid = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)]  # validation takes 256² centre crops
    train(cfg, tmp_path / "photo", data=(images, valid), progress=events.append)
    assert {"bpp", "psnr"} <= set(events[0].metrics)
    line = epoch_line(events[-1].record)
    assert line.count(PHOTO_LOSS_UNIT) == 2 and "nats" not in line and "bpp" in line and "dB" in line


def test_digit_lines_name_nats_and_bits():
    record = {"epoch": 3, "train_loss": 101.5, "valid_loss": 99.25, "valid_rate_bits": 37.2,
              "valid_distortion": 73.1, "seconds": 4.0, "best": True}
    assert epoch_line(record) == ("epoch    3  train 101.500 nats  valid 99.250 nats  rate 37.20 bits  "
                                  "distortion 73.10 nats  4.0s  *best*")


def test_the_cli_prints_the_units_of_a_photo_run(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "photos"
    rng = np.random.default_rng(1)
    for name in ("train/0.png", "train/1.png", "val/2.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / name)
    code, err = run_cli(capsys, "train", "--arch", "photo-factorized", "--dataset", "image-folder", "--data-dir",
                        folder, "-o", tmp_path / "run", "--channels", "8", "--latent", "8", "--crop", "16",
                        "--batch-size", "2", "--steps-per-epoch", "2", "--max-epochs", "1")
    assert code == 0, err
    done = [line for line in err.splitlines() if line.startswith("done:")]
    assert len(done) == 1 and PHOTO_LOSS_UNIT in done[0] and "nats" not in err, err
