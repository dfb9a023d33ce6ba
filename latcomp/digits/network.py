"""The torch-free runtime of the MNIST lattice VAE: its gated MLPs in exact arithmetic and its latent codec.

:class:`NumpyLatticeVAE` is the numpy twin of :class:`latcomp.nn.models.LatticeVAE`, built
from the float32 tensors of a model file (:mod:`latcomp.exact.networks` for why every product
is exact: lossless decoding needs bit-identical Bernoulli probabilities on both sides).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from latcomp.exact.networks import ExactMLP, exact_sigmoid, float_sigmoid, mlp_forward_float, mlp_layers, tensor
from latcomp.families import ModelShapeError
from latcomp.latent_codecs.lattice import LatticeLatentCodec


def image_shape(data_dim: int) -> tuple[int, int, int]:
    """The (H, W, C) of a model's images from its ``data_dim``: square gray images where it is a square."""
    side = int(round(data_dim**0.5))
    return (side, side, 1) if side * side == data_dim else (1, data_dim, 1)


class NumpyLatticeVAE:
    """The torch-free runtime of :class:`latcomp.nn.models.LatticeVAE` (images are flattened row-major)."""

    architecture: ClassVar[str] = "lattice-vae"

    def __init__(self, weights: dict[str, np.ndarray], hparams: dict[str, Any]):
        try:
            data_dim, latent = int(hparams["data_dim"]), int(hparams["latent"])
        except (KeyError, TypeError, ValueError):
            raise ModelShapeError("config hparams need integer data_dim and latent") from None
        self.image_shape = image_shape(data_dim)
        self.encoder_layers = mlp_layers(weights, "encoder")
        self.decoder_layers = mlp_layers(weights, "decoder")
        self.encoder = ExactMLP(self.encoder_layers)
        self.decoder = ExactMLP(self.decoder_layers)
        if (self.encoder.in_features, self.encoder.out_features) != (data_dim, latent) or \
                (self.decoder.in_features, self.decoder.out_features) != (latent, data_dim):
            raise ModelShapeError(f"network shapes do not match data_dim={data_dim}, latent={latent}")
        delta = tensor(weights, "codec.lattice.delta")
        b = tensor(weights, "codec.prior.b")
        try:
            self.latent = LatticeLatentCodec.from_spec(hparams.get("lattice", "z"), latent, delta, b)
            _ = self.latent.code  # builds the entropy model now: validates its parameters
        except ValueError as exc:
            raise ModelShapeError(str(exc)) from None

    def latent_dim(self) -> int:
        return self.encoder.out_features

    def encode(self, images: np.ndarray, exact: bool = True) -> np.ndarray:
        """X = e_c(D) for images (N, H, W, C) or (N, H·W·C) with values in [0, 1]; float64 (N, m)."""
        x = np.asarray(images, np.float64).reshape(len(images), -1)
        return self.encoder(x) if exact else mlp_forward_float(self.encoder_layers, x)

    def decode_logits(self, w: np.ndarray, exact: bool = True) -> np.ndarray:
        """Bernoulli logits (N, H·W·C) of Q(D | Z − U = w)."""
        return self.decoder(w) if exact else mlp_forward_float(self.decoder_layers, w)

    def decode_probs(self, w: np.ndarray, exact: bool = True) -> np.ndarray:
        """Q(D_j = 1 | Z − U = w), float64 (N, H·W·C); the lossy reconstruction is this mean."""
        logits = self.decode_logits(w, exact)
        return exact_sigmoid(logits) if exact else float_sigmoid(logits)


