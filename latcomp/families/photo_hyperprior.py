"""The photo family with a scale hyperprior on the lattice latent (:mod:`latcomp.nn.hyperprior`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latcomp.families import Family, Shapes
from latcomp.families.photo import PHOTO_HPARAMS, PHOTO_TRAINING, photo_transforms
from latcomp.families.shapes import CODEC_PREFIX


def _hyper_networks(n: int, latent: int) -> Shapes:
    """h_a and h_s: 3×3 and 5×5 convolutions, ReLU between."""
    layers = {"hyper_analysis.0": ((n, latent, 3, 3), n), "hyper_analysis.2": ((n, n, 5, 5), n),
              "hyper_analysis.4": ((n, n, 5, 5), n), "hyper_synthesis.0": ((n, n, 5, 5), n),
              "hyper_synthesis.2": ((n, n, 5, 5), n), "hyper_synthesis.4": ((latent, n, 3, 3), latent)}
    shapes: Shapes = {}
    for name, (weight, out) in layers.items():
        shapes.update({f"{name}.weight": weight, f"{name}.bias": (out,)})
    return shapes


def _tensors(hp: Mapping[str, Any]) -> Shapes:
    """The transforms, h_a and h_s, the main latent's block scales and the hyper-latent's steps and Laplace scales."""
    from latcomp.lattices.product import parse_spec

    blocks, n = len(parse_spec(hp["lattice"], hp["latent"])), hp["channels"]
    return {**photo_transforms(hp), **_hyper_networks(n, hp["latent"]), "log_delta": (blocks,),
            "hyper_log_delta": (n,), "hyper_log_b": (n,), CODEC_PREFIX + "lattice.delta": (blocks,),
            CODEC_PREFIX + "hyper.delta": (n,), CODEC_PREFIX + "hyper.b": (n,)}


FAMILIES = (
    Family("photo-hyperprior", "photo", PHOTO_HPARAMS, _tensors, "latcomp.nn.hyperprior:PhotoHyperprior",
           examples=({"channels": 4, "latent": 16, "lam": 0.01, "lattice": "e8"},
                     {"channels": 3, "latent": 5, "lam": 0.5, "lattice": "z"}),
           runtime="latcomp.photo.hyper_codec:NumpyPhotoHyperprior", codec="latcomp.photo.hyper_codec",
           training=PHOTO_TRAINING, fine_tune="latcomp.nn.hyperprior:fine_tune_start", init_from=("photo-factorized",),
           description="Ballé et al.'s scale-hyperprior transforms around the paper's dithered lattice latent on "
                       "`{lattice}`: the Laplace scale of every latent position and channel comes from a "
                       "hyper-latent on the rectangular lattice (docs/photos.md).",
           colour="tab:olive"),
)
