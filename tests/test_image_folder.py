"""Training photos from a folder: the split, the minimum sides and the downscaling of the training images."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latcomp.image_folder import load_image_folder
from latcomp.train import PhotoData, TrainConfig


def _folder(root: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """train/ with a 41×34 and a 20×20 image, test/ with a 33×34 one (odd sides: the downscale drops an edge)."""
    images = {"train/a.png": rng.integers(0, 256, (41, 34, 3), np.uint8),
              "train/b.png": rng.integers(0, 256, (20, 20, 3), np.uint8),
              "test/c.png": rng.integers(0, 256, (33, 34, 3), np.uint8)}
    for name, pixels in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / name)
    return images


def test_downscaling_averages_boxes_of_the_training_images_only(tmp_path):
    images = _folder(tmp_path, np.random.default_rng(0))
    folder = load_image_folder(tmp_path, min_side=10, downscale=2, valid_min_side=32)
    a = images["train/a.png"][:40].astype(np.float64)
    boxes = a.reshape(20, 2, 17, 2, 3).mean(axis=(1, 3))
    assert [im.shape for im in folder.train] == [(20, 17, 3), (10, 10, 3)]
    assert np.abs(folder.train[0] - boxes).max() <= 0.5 + 1e-9          # the box mean, rounded
    np.testing.assert_array_equal(folder.valid[0], images["test/c.png"])  # validation as it is


def test_minimum_sides_apply_after_downscaling_and_to_validation_separately(tmp_path):
    _folder(tmp_path, np.random.default_rng(1))
    assert len(load_image_folder(tmp_path, min_side=11, downscale=2, valid_min_side=32).train) == 1
    assert len(load_image_folder(tmp_path, min_side=20).train) == 2
    with pytest.raises(ValueError, match="after downscaling by 4"):
        load_image_folder(tmp_path, min_side=9, downscale=4, valid_min_side=32)
    with pytest.raises(ValueError, match="validation images of at least 40"):
        load_image_folder(tmp_path, min_side=8, valid_min_side=40)


def test_a_photo_run_trains_on_the_downscaled_images(tmp_path):
    _folder(tmp_path, np.random.default_rng(2))
    cfg = TrainConfig(architecture="photo-factorized", dataset="image-folder", data_dir=str(tmp_path), crop=16,
                      downscale=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("latcomp.train.VALID_CROP", 32)
        train, valid = PhotoData.load(cfg, None)
    assert [im.shape[:2] for im in train] == [(20, 17)]   # b.png is 10×10 after downscaling: below the crop
    assert valid.shape == (1, 3, 32, 32)
