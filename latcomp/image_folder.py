"""Training photos from any folder of images: loading, the train/validation split, crops.

``load_image_folder(DIR)`` reads every image file below DIR (PNG, JPEG, WebP, BMP, TIFF,
PPM; sorted by path) as 8-bit RGB. The split: images under a sub-folder named ``test``
(or, if there is none, ``val``/``valid``) validate and all others train — for BSDS500
(``train/``, ``val/``, ``test/``) that is train+val for training and test for validation;
a folder without such sub-folders validates on every 10th image. Training batches are
random crops with random horizontal flips; validation uses fixed centre crops. The training images
may be downscaled first (``downscale``: each side divided by that factor, box filter), which averages
away the artifacts of JPEG sources, as is usual for training learned codecs; validation images stay
as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .images import MAX_IMAGE_PIXELS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"}
VALIDATION_FOLDERS = ("test", "val", "valid")
#: Largest number of images a training folder may hold (all are kept in memory as uint8).
MAX_IMAGES = 100_000


@dataclass
class ImageFolder:
    """The decoded training and validation images of a folder (lists of (H, W, 3) uint8)."""

    train: list[np.ndarray]
    valid: list[np.ndarray]


def image_paths(root: Path) -> list[Path]:
    """Every image file below ``root``, sorted (hidden files and folders skipped)."""
    paths = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if len(paths) > MAX_IMAGES:
        raise ValueError(f"{root} holds {len(paths)} images, more than the {MAX_IMAGES} a run can load")
    return paths


def split_paths(root: Path, paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, valid) by the rule of the module docstring."""
    tops = {p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) > 1}
    for name in VALIDATION_FOLDERS:
        if name in tops:
            valid = [p for p in paths if p.relative_to(root).parts[0] == name]
            return [p for p in paths if p not in set(valid)], valid
    return [p for i, p in enumerate(paths) if i % 10 != 9], paths[9::10]


def load_rgb(path: Path, downscale: int = 1) -> np.ndarray:
    """A training image as (H, W, 3) uint8 RGB (grayscale replicated, alpha dropped), each side divided by
    ``downscale`` (Pillow's ``reduce``: the mean of each ``downscale``² box, edges that do not fill a box
    dropped)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.width * im.height > MAX_IMAGE_PIXELS:
            raise ValueError(f"{path}: {im.width}×{im.height} is larger than {MAX_IMAGE_PIXELS} pixels")
        rgb = im.convert("RGB")
        if downscale > 1:
            rgb = rgb.crop((0, 0, rgb.width - rgb.width % downscale, rgb.height - rgb.height % downscale))
            rgb = rgb.reduce(downscale)
        return np.asarray(rgb, dtype=np.uint8)


def load_image_folder(root: str | Path, min_side: int = 0, downscale: int = 1,
                      valid_min_side: int | None = None) -> ImageFolder:
    """Decode the images of ``root`` and split them; the training images are downscaled by ``downscale``
    (validation images are not), and images with a side below ``min_side`` (validation: ``valid_min_side``,
    by default ``min_side``) are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory of training images")
    if downscale < 1:
        raise ValueError(f"downscale must be a positive integer, got {downscale}")
    valid_side = min_side if valid_min_side is None else valid_min_side
    train, valid = split_paths(root, image_paths(root))

    def load(paths: list[Path], side: int, factor: int) -> list[np.ndarray]:
        return [im for im in (load_rgb(p, factor) for p in paths) if min(im.shape[:2]) >= side]

    folder = ImageFolder(load(train, min_side, downscale), load(valid, valid_side, 1))
    if not folder.train or not folder.valid:
        raise ValueError(f"{root}: needs training images of at least {min_side}×{min_side} pixels"
                         f"{f' after downscaling by {downscale}' if downscale > 1 else ''} and validation images "
                         f"of at least {valid_side}×{valid_side}, found {len(folder.train)} and "
                         f"{len(folder.valid)}")
    return folder


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 → (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def random_crops(images: list[np.ndarray], count: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` random ``size``² crops of random images, each flipped left–right with probability ½."""
    picks = torch.randint(len(images), (count,), generator=gen).tolist()
    crops = []
    for i in picks:
        h, w = images[i].shape[:2]
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = images[i][top:top + size, left:left + size]
        crops.append(crop[:, ::-1] if bool(torch.rand((), generator=gen) < 0.5) else crop)
    return to_tensor(np.stack(crops))


def center_crops(images: list[np.ndarray], size: int) -> torch.Tensor:
    """The centre ``size``² crop of every image (images smaller than that are skipped)."""
    crops = []
    for im in images:
        h, w = im.shape[:2]
        if min(h, w) >= size:
            top, left = (h - size) // 2, (w - size) // 2
            crops.append(im[top:top + size, left:left + size])
    return to_tensor(np.stack(crops))


def crop_batches(images: list[np.ndarray], steps: int, batch_size: int, size: int,
                 gen: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` batches of random crops (one epoch of photo training)."""
    for _ in range(steps):
        yield random_crops(images, batch_size, size, gen)
