"""The photo family: Ballé et al.'s factorized-prior transforms around the dithered lattice latent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latcomp.families import Family, HParam, Shapes
from latcomp.families.shapes import lattice_latent, strided_stack

#: g_a halves the sides four times (the photo families' geometry, shared by the torch modules and the runtimes):
#: images are padded to a multiple of this.
DOWNSAMPLING = 16


def latent_size(height: int, width: int) -> tuple[int, int]:
    """The latent's (rows, columns) of an image: its sides divided by 16, rounded up."""
    return -(-height // DOWNSAMPLING), -(-width // DOWNSAMPLING)


def photo_transforms(hp: Mapping[str, Any]) -> Shapes:
    """g_a: 3 → N → N → N → M and g_s: M → N → N → N → 3 (5×5 stride-2 convolutions, GDN / IGDN between)."""
    n, latent = hp["channels"], hp["latent"]
    return {**strided_stack("analysis", [3, n, n, n, latent], transposed=False),
            **strided_stack("synthesis", [latent, n, n, n, 3], transposed=True)}


#: Settings of a photo run where they differ from :class:`latcomp.train.TrainConfig`'s MNIST ones.
PHOTO_TRAINING: dict[str, Any] = dict(dataset="image-folder", latent=128, lam=0.013, batch_size=8, lr=3e-4, clip=1.0,
                                      patience=20)

#: N hidden channels, M latent channels, λ and the lattice of one latent position.
PHOTO_HPARAMS = (HParam("channels", "int", high=4096), HParam("latent", "int", high=4096), HParam("lam", "positive"),
                 HParam("lattice", "lattice"))

FAMILIES = (
    Family("photo-factorized", "photo", PHOTO_HPARAMS,
           lambda hp: {**photo_transforms(hp), **lattice_latent(hp["lattice"], hp["latent"])},
           "latcomp.nn.photo:PhotoFactorized", runtime="latcomp.photo.network:NumpyPhotoFactorized",
           examples=({"channels": 4, "latent": 16, "lam": 0.01, "lattice": "e8"},
                     {"channels": 3, "latent": 5, "lam": 0.5, "lattice": "z"}),
           training=PHOTO_TRAINING, fine_tune="latcomp.nn.photo:fine_tune_start",
           description="Ballé et al.'s factorized-prior transforms (four 5×5 stride-2 convolutions with GDN, "
                       "mirrored with IGDN) around the paper's dithered lattice latent on `{lattice}` per latent "
                       "position, a Laplace prior with one learned scale per channel, trained by dithered SGD on "
                       "λ·255²·MSE + bits per pixel (docs/photos.md): the training rate is the real code length.",
           colour="tab:cyan"),
)
