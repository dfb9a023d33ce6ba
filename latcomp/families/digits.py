"""The MNIST families: the paper's lattice VAE and its baselines (Table 1, Figure 4), gated MLPs on 28×28 digits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latcomp.families import Family, HParam, Shapes, straight_through
from latcomp.families.shapes import gated_mlp, lattice_latent

_MLP = (HParam("data_dim", "int", high=1 << 20, default=784), HParam("hidden", "int", high=1 << 16),
        HParam("latent", "int", high=4096), HParam("lam", "positive"))
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


def _straight_through(name: str, word_dim: int) -> dict[str, Any]:
    """The spec fields of the straight-through family ``name`` of k = ``word_dim`` dimensional quantizers."""
    return dict(hparams=(*_MLP, *straight_through.HPARAMS), check=straight_through.latent_check(name, word_dim),
                tensors=lambda hp: {**_mlp(hp), **straight_through.quantizer_tensors(hp, word_dim)},
                examples=tuple({**e, "levels": 3} for e in _EXAMPLES) + ({**_EXAMPLES[0], "levels": 2,
                                                                           "commitment": 0.25, "ema": 0.99},))


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
    Family("st-scalar", "digits", module="latcomp.nn.baselines:ScalarQuantizerAE",
           description="straight-through scalar quantizers (Appendix A.2.1) with learned levels and codes; "
                       "commitment β and EMA words γ (VQ-VAE) when set.",
           colour="tab:red", **_straight_through("st-scalar", 1)),
    Family("st-vector", "digits", module="latcomp.nn.baselines:VectorQuantizerAE",
           description="straight-through 2-D vector quantizers (Appendix A.2.1) with learned code vectors and "
                       "codes; commitment β and EMA words γ (VQ-VAE) when set.",
           colour="tab:purple", **_straight_through("st-vector", 2)),
)
