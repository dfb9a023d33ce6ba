"""The MNIST families: the paper's lattice VAE and its baselines (Table 1, Figure 4), gated MLPs on 28×28 digits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latcomp.families import Family, HParam, Shapes
from latcomp.families.shapes import gated_mlp, lattice_latent

_MLP = (HParam("data_dim", "int", high=1 << 20, default=784), HParam("hidden", "int", high=1 << 16),
        HParam("latent", "int", high=4096), HParam("lam", "positive"))
#: Words M per quantizer of the straight-through models.
_LEVELS = HParam("levels", "int", high=1 << 16)
#: A lattice-vae config without "lattice" predates lattices other than Z and means the rectangular lattice.
_LATTICE = HParam("lattice", "lattice", required=False, default="z")
_EXAMPLES = ({"data_dim": 20, "hidden": 6, "latent": 12, "lam": 2.0}, {"data_dim": 784, "hidden": 8, "latent": 4,
                                                                         "lam": 0.5})
_NLL = "latcomp.nll"


def _mlp(hp: Mapping[str, Any], encoder_out: int | None = None) -> Shapes:
    """The encoder data_dim → hidden → hidden → ``encoder_out`` (default: latent) and the mirrored decoder."""
    data_dim, hidden, latent = hp["data_dim"], hp["hidden"], hp["latent"]
    return {**gated_mlp("encoder", [data_dim, hidden, hidden, encoder_out or latent]),
            **gated_mlp("decoder", [latent, hidden, hidden, data_dim])}


def _lattice_vae(hp: Mapping[str, Any]) -> Shapes:
    return {**_mlp(hp), **lattice_latent(hp.get("lattice", "z"), hp["latent"])}


def _straight_through(word_dim: int) -> tuple[Any, Any]:
    """Tensor shapes and the latent check of latent/k quantizers of k = ``word_dim`` dimensions."""
    def tensors(hp: Mapping[str, Any]) -> Shapes:
        quantizers = hp["latent"] // word_dim
        return {**_mlp(hp), "codebook": (quantizers, hp["levels"], word_dim), "code_logits": (quantizers, hp["levels"])}

    def check(hp: Mapping[str, Any]) -> str | None:
        return f"latent of st-{'scalar' if word_dim == 1 else 'vector'} must be a multiple of {word_dim}" \
            if hp["latent"] % word_dim else None
    return tensors, check


_ST_SCALAR, _ST_VECTOR = _straight_through(1), _straight_through(2)

FAMILIES = (
    Family("lattice-vae", "digits", (*_MLP, _LATTICE), _lattice_vae, "latcomp.nn.models:LatticeVAE",
           runtime="latcomp.digits.network:NumpyLatticeVAE",
           examples=(*_EXAMPLES, {**_EXAMPLES[0], "lattice": "e8*1+z*4"}),
           proposals={"": f"{_NLL}:lattice_log_weights", "defensive": f"{_NLL}:defensive_lattice_log_weights"},
           description="the paper's MNIST lattice VAE on the latent lattice `{lattice}`: a learned scale per lattice "
                       "block (for `z` blocks the step Δ_i), Laplace prior with learned scales b_i, the sequential "
                       "box code of docs/lattices.md as rate (for `z` Eq. 15 with erratum 1 of docs/errata.md): the "
                       "training rate is the real code length.",
           colour="tab:blue"),
    Family("gaussian-lattice", "digits", _MLP, lambda hp: {**_mlp(hp), "log_sigma": (hp["latent"],)},
           "latcomp.nn.baselines:GaussianLatticeVAE", examples=_EXAMPLES,
           proposals={"": f"{_NLL}:gaussian_log_weights"},
           description="the paper's Gaussian lattice VAE: posterior N(μ(d), diag σ²) with σ learned per dimension "
                       "but not data dependent, prior N(0, I) — the stand-in for an ideal high-dimensional lattice.",
           colour="tab:orange"),
    Family("gaussian", "digits", _MLP, lambda hp: _mlp(hp, encoder_out=2 * hp["latent"]),  # (μ, log σ²)
           "latcomp.nn.baselines:GaussianVAE", examples=_EXAMPLES, proposals={"": f"{_NLL}:gaussian_log_weights"},
           description="a standard Gaussian VAE: posterior N(μ(d), diag σ(d)²), prior N(0, I).", colour="tab:green"),
    Family("st-scalar", "digits", (*_MLP, _LEVELS), _ST_SCALAR[0], "latcomp.nn.baselines:ScalarQuantizerAE",
           examples=tuple({**e, "levels": 3} for e in _EXAMPLES), check=_ST_SCALAR[1],
           description="straight-through scalar quantizers (Appendix A.2.1) with learned levels and codes.",
           colour="tab:red"),
    Family("st-vector", "digits", (*_MLP, _LEVELS), _ST_VECTOR[0], "latcomp.nn.baselines:VectorQuantizerAE",
           examples=tuple({**e, "levels": 3} for e in _EXAMPLES), check=_ST_VECTOR[1],
           description="straight-through 2-D vector quantizers (Appendix A.2.1) with learned code vectors and "
                       "codes.",
           colour="tab:purple"),
)
