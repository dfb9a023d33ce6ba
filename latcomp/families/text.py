"""The text families: the paper's GRU sentence autoencoder (Appendix A.2.1) on a lattice or with Gaussian dithering.

Trained by :mod:`latcomp.text.training` (its own settings, :class:`latcomp.text.training.TextTrainConfig`);
a model directory also holds ``vocabulary.json`` (:mod:`latcomp.text.vocabulary`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latcomp.families import Family, HParam, Shapes, straight_through
from latcomp.families.shapes import lattice_latent

_NETWORK = (HParam("vocab", "int", low=5, high=1 << 20), HParam("embed", "int", high=4096),
            HParam("hidden", "int", high=4096), HParam("layers", "int", high=8), HParam("latent", "int", high=4096),
            HParam("lam", "positive"))
_EXAMPLES = ({"vocab": 40, "embed": 8, "hidden": 8, "layers": 2, "latent": 24, "lam": 1.0},
             {"vocab": 9, "embed": 3, "hidden": 5, "layers": 1, "latent": 8, "lam": 0.5})


def gru(prefix: str, inputs: int, hidden: int, layers: int, bidirectional: bool) -> Shapes:
    """Tensor shapes of ``torch.nn.GRU(inputs, hidden, layers, bidirectional=…)`` (three gates per layer)."""
    shapes: Shapes = {}
    directions = ("", "_reverse") if bidirectional else ("",)
    for layer in range(layers):
        width = inputs if layer == 0 else hidden * len(directions)
        for d in directions:
            shapes.update({f"{prefix}.weight_ih_l{layer}{d}": (3 * hidden, width),
                           f"{prefix}.weight_hh_l{layer}{d}": (3 * hidden, hidden),
                           f"{prefix}.bias_ih_l{layer}{d}": (3 * hidden,),
                           f"{prefix}.bias_hh_l{layer}{d}": (3 * hidden,)})
    return shapes


def _network(hp: Mapping[str, Any]) -> Shapes:
    """Embedding, bidirectional encoder, the maps to and from the latent, decoder GRU, output bottleneck."""
    vocab, embed, hidden, layers, latent = (hp[k] for k in ("vocab", "embed", "hidden", "layers", "latent"))
    return {"embedding.weight": (vocab, embed), **gru("encoder", embed, hidden, layers, True),
            "to_latent.weight": (latent, 2 * hidden), "to_latent.bias": (latent,),
            "from_latent.weight": (layers * 2 * hidden, latent), "from_latent.bias": (layers * 2 * hidden,),
            **gru("decoder", embed, 2 * hidden, layers, False), "project.weight": (embed, 2 * hidden),
            "output.weight": (vocab, embed), "output.bias": (vocab,)}


def _straight_through(name: str, word_dim: int, module: str, kind: str) -> Family:
    """The text family ``name`` of straight-through k = ``word_dim`` dimensional quantizers."""
    return Family(name, "text", (*_NETWORK, *straight_through.HPARAMS),
                  lambda hp: {**_network(hp), **straight_through.quantizer_tensors(hp, word_dim)},
                  f"latcomp.text.model:{module}", files=("vocabulary.json",),
                  check=straight_through.latent_check(name, word_dim),
                  examples=({**_EXAMPLES[0], "levels": 3, "commitment": 0.0, "ema": 0.0},
                            {**_EXAMPLES[1], "levels": 4, "commitment": 0.25, "ema": 0.99}),
                  description=f"the paper's sentence autoencoder with straight-through {kind} quantizers "
                              "(Appendix A.2.1): learned words and codes, rate the code length of the chosen "
                              "words; commitment β and EMA words γ (VQ-VAE) when set.",
                  colour="tab:red" if word_dim == 1 else "tab:purple")


FAMILIES = (
    Family("text-lattice", "text", (*_NETWORK, HParam("lattice", "lattice")),
           lambda hp: {**_network(hp), **lattice_latent(hp["lattice"], hp["latent"])},
           "latcomp.text.model:LatticeTextAE", runtime="latcomp.text.network:NumpyTextModel",
           files=("vocabulary.json",),
           examples=tuple({**e, "lattice": lat} for e, lat in zip(_EXAMPLES, ("leech", "e8"), strict=True)),
           description="the paper's sentence autoencoder (Appendix A.2.1: bidirectional GRU encoder, GRU decoder "
                       "without attention) with its representation on the dithered lattice `{lattice}`: learned block "
                       "scales, Laplace prior, the Theorem 1 rate (the real code length of the point).",
           colour="tab:blue"),
    Family("text-gaussian", "text", _NETWORK, lambda hp: {**_network(hp), "log_sigma": (hp["latent"],)},
           "latcomp.text.model:GaussianTextAE", examples=_EXAMPLES, files=("vocabulary.json",),
           description="the paper's sentence autoencoder with Gaussian dithering (learned diagonal σ, rate "
                       "KL to N(0, I)): the stand-in for a good high-dimensional lattice (Appendix A.2.1).",
           colour="tab:orange"),
    _straight_through("text-st-scalar", 1, "ScalarQuantizerTextAE", "scalar"),
    _straight_through("text-st-vector", 2, "VectorQuantizerTextAE", "2-D vector"),
)
