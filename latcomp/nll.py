"""Importance-sampled negative log-likelihood (Burda et al., 2016) of models with a continuous latent.

For a generative model W ~ p(w), D ~ Q(·|w) and an approximate posterior q(w|d),

    log p(d) ≈ logsumexp_k [log p(w_k) + log Q(d|w_k) − log q(w_k|d)] − log K,   w_k ~ q(·|d),

a lower bound of log p(d) in expectation that tightens as K grows; K = 1 is the ELBO.
The models' generative model and proposal (Section 3.3):

* ``lattice-vae``: W ~ g, the box prior of :mod:`latcomp.latent_codecs.lattice` (for the
  rectangular lattice f_{X̂−U}, the Laplace prior convolved with the cell's uniform, per
  dimension); proposal w = e_c(d) − u with u uniform on the Voronoi cell, q(w|d) = 1/V.
  With one sample, −log weight is exactly the training loss at λ = 1 (rate + distortion)
  for the same dither.
* ``gaussian-lattice`` and ``gaussian``: prior N(0, I), proposal N(μ(d), diag σ²).

The lattice VAE's proposal is supported on the box only, so as K → ∞ its estimate tends
to −log ∫_box f_{X̂−U}(w) Q(d|w) dw, not to −log p(d): it stays an upper bound on the
NLL (tight when the true posterior puts nearly all its mass in the box), as in the paper's
Table 1. The Gaussian proposals cover R^m and the estimate converges to −log p(d).

The straight-through quantizers (``st-*``) have a discrete latent and no density to
sample from; :func:`importance_sampled_nll` refuses them (their −ELBO, distortion plus
code length, is already a code length and an upper bound on −log p).

The estimate streams: each pass puts the samples of a few examples through the
decoder at once (at most ``batch_size`` decoder rows) and accumulates a running
logsumexp per example in float64, so memory does not grow with K or the data size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latcomp.families import families, load_object

#: ``progress(stage, done, total)``, as in :mod:`latcomp.codec`.
Progress = Callable[[str, int, int], None]
#: ``log_weights(model, d, samples, generator)`` → (N, samples) tensor of log p(w) + log Q(d|w) − log q(w|d).
LogWeights = Callable[[nn.Module, torch.Tensor, int, torch.Generator], torch.Tensor]

_LOG_2PI = math.log(2.0 * math.pi)


def _log_likelihood(model: nn.Module, w: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """log Q(d|w) for w (N, S, m) and d (N, D): the decoder's Bernoulli likelihood, (N, S).

    Σ_j d_j·l_j − softplus(l_j), the same value as ``−bernoulli_nll`` (to rounding) at a
    third of its cost, which matters here: with K = 1000 this is most of the work after
    the decoder itself.
    """
    logits = model.decoder(w)
    return torch.einsum("nsj,nj->ns", logits, d) - F.softplus(logits).sum(-1)


def _std_normal_log_pdf(z: torch.Tensor) -> torch.Tensor:
    """Σ log N(z; 0, 1) over the last dimension."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * _LOG_2PI)


def lattice_log_weights(model: nn.Module, d: torch.Tensor, samples: int,
                        generator: torch.Generator) -> torch.Tensor:
    """Lattice VAE: box prior g (:mod:`latcomp.latent_codecs.lattice`), proposal uniform on the
    Voronoi cell centred on e_c(d): w = e_c(d) − u, q(w|d) = 1/V.

    The ``samples`` cell draws u are shared by the examples of one pass (they are drawn
    independently of d, so each example still gets K i.i.d. proposals; only the IS noise
    of different examples is correlated): this keeps the nearest-point decoding of Λ16
    and Λ24 at K decodes per pass instead of K per example.
    """
    x = model.encoder(d)
    latent = model.latent_codec()
    v = torch.rand((1, samples, x.shape[1]), generator=generator, dtype=x.dtype)
    w = x.unsqueeze(1) - latent.dither(v)                       # w = e_c(d) − u
    return latent.log_prior(w) + _log_likelihood(model, w, d) + latent.log_volume()


#: A block is "active" (gets the defensive mixture) when some b_i/w_i reaches this; the
#: rectangular MNIST model's dead dimensions have b_i/Δ_i ≈ 0.003, its active ones ≈ 0.3–3.
ACTIVE_RATIO = 0.05


def _block_sizes(lattice: Any) -> torch.Tensor:
    return torch.tensor([float(block.dim) for block in lattice.blocks], dtype=torch.float64)


def defensive_lattice_log_weights(model: nn.Module, d: torch.Tensor, samples: int,
                                  generator: torch.Generator) -> torch.Tensor:
    """Lattice VAE, defensive proposal: w = e_c(d) − e, block by block

        e_b ~ ½·Uniform(cell_b) + ½·N(0, σ_b² I)   on active blocks,
        e_b ~ Uniform(cell_b)                       on dead ones,

    with σ_b = V_b^{1/n_b} the edge of a cube of the cell's volume (Δ_i for a ``z`` block).
    Unlike the cell proposal it covers all of R^m on the active blocks, so the estimate
    converges to −log p(d) as K grows; the cell component keeps the weights bounded where
    the posterior fills the cell.
    Draws are shared by the examples of a pass, as for :func:`lattice_log_weights`.
    """
    x = model.encoder(d)
    latent = model.latent_codec()
    lattice, dtype = latent.lattice, x.dtype
    block_of = torch.from_numpy(lattice.block_of)
    sigma = (latent.block_log_volumes() / _block_sizes(lattice)).exp().to(dtype)[block_of]
    ratio = (latent.b / latent.width).detach().numpy()
    active = torch.from_numpy(np.maximum.reduceat(ratio, lattice.starts) >= ACTIVE_RATIO)
    v = torch.rand((1, samples, x.shape[1]), generator=generator, dtype=dtype)
    cell = latent.dither(v).to(dtype)
    gauss = torch.randn((1, samples, x.shape[1]), generator=generator, dtype=dtype) * sigma
    pick_gauss = (torch.rand((1, samples, lattice.num_blocks), generator=generator) < 0.5) & active
    e = torch.where(pick_gauss[..., block_of], gauss, cell)
    inside = torch.from_numpy(latent.in_cell(e.numpy()))
    log_cell = -latent.block_log_volumes().to(dtype)
    log_gauss_coord = -0.5 * ((e / sigma).square() + _LOG_2PI) - sigma.log()
    log_gauss = torch.zeros(e.shape[:-1] + (lattice.num_blocks,), dtype=dtype).index_add_(-1, block_of,
                                                                                        log_gauss_coord)
    mixture = torch.logaddexp(torch.where(inside, log_cell, torch.tensor(-math.inf, dtype=dtype)), log_gauss)
    log_q = torch.where(active, mixture + math.log(0.5), log_cell.expand_as(mixture)).sum(-1)
    w = x.unsqueeze(1) - e
    return latent.log_prior(w) + _log_likelihood(model, w, d) - log_q


def gaussian_log_weights(model: nn.Module, d: torch.Tensor, samples: int,
                         generator: torch.Generator) -> torch.Tensor:
    """Gaussian VAEs: prior N(0, I), proposal N(μ(d), diag σ²) from ``model.posterior``."""
    mu, sigma = model.posterior(d)
    eps = torch.randn((mu.shape[0], samples, mu.shape[1]), generator=generator, dtype=mu.dtype)
    w = mu.unsqueeze(1) + sigma.unsqueeze(1) * eps
    log_q = _std_normal_log_pdf(eps) - sigma.log().sum(-1, keepdim=True)
    return _std_normal_log_pdf(w) + _log_likelihood(model, w, d) - log_q


def _proposals(model: nn.Module) -> dict[str, str]:
    """The importance-sampling proposals of ``model``'s family (:attr:`latcomp.families.Family.proposals`)."""
    spec = families().get(getattr(model, "architecture", None))
    return dict(spec.proposals) if spec else {}


def supports_nll(model: nn.Module) -> bool:
    """Whether :func:`importance_sampled_nll` can estimate this model's likelihood."""
    return "" in _proposals(model)


def log_weights_for(model: nn.Module, proposal: str | None = None) -> LogWeights:
    """The importance-weight function of ``model``'s family (and ``proposal``); ValueError if none."""
    architecture = getattr(model, "architecture", type(model).__name__)
    proposals = _proposals(model)
    if proposal is not None:
        if not proposal or proposal not in proposals:
            known = [f"{name}/{p}" for name, spec in families().items() for p in spec.proposals if p]
            raise ValueError(f"no proposal {proposal!r} for {architecture!r}; known: {', '.join(known)}")
        return load_object(proposals[proposal])
    if "" not in proposals:
        supported = [name for name, spec in families().items() if "" in spec.proposals]
        raise ValueError(f"importance-sampled NLL needs a continuous latent: {architecture!r} has a discrete "
                         f"one (its −ELBO, distortion + code length, is the bound to report); "
                         f"supported: {', '.join(supported)}")
    return load_object(proposals[""])


def importance_sampled_nll(model: nn.Module, data: Any, samples: int = 1000, batch_size: int = 8192,
                           seed: int = 0, progress: Progress | None = None,
                           proposal: str | None = None) -> dict[str, Any]:
    """−log p(d) per example in nats by importance sampling with ``samples`` = K proposals each.

    ``proposal`` names an alternative proposal (``"defensive"`` for the lattice VAE).

    ``data`` (N, data_dim) binary, a tensor or array. ``batch_size`` bounds the decoder rows
    (examples × samples) of one pass: K ≥ batch_size puts one example at a time through in
    chunks of samples, smaller K several examples at once. Draws come from a generator seeded
    with ``seed`` (results are reproducible for equal ``seed`` and ``batch_size``).

    Returns ``nll`` (float64 array, N), its ``mean`` and standard error ``stderr`` over
    examples (NaN for one example), ``neg_elbo`` (the mean of −log weight over all samples,
    an unbiased estimate of the negative ELBO), ``samples`` and ``count``.
    """
    weights = log_weights_for(model, proposal)
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dtype = next(model.parameters()).dtype
    data = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data).to(dtype)
    n = len(data)
    chunk = min(samples, batch_size)
    examples = max(1, batch_size // chunk)
    gen = torch.Generator().manual_seed(seed)
    nll = np.empty(n, np.float64)
    weight_sum = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, n, examples):
            d = data[start:start + examples]
            lse = torch.full((len(d),), -math.inf, dtype=torch.float64)
            for first in range(0, samples, chunk):
                lw = weights(model, d, min(chunk, samples - first), gen).double()
                lse = torch.logaddexp(lse, torch.logsumexp(lw, dim=1))
                weight_sum += lw.sum().item()
            nll[start:start + len(d)] = (math.log(samples) - lse).numpy()
            if progress:
                progress("importance sampling", start + len(d), n)
    stderr = float(nll.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"nll": nll, "mean": float(nll.mean()) if n else math.nan, "stderr": stderr,
            "neg_elbo": -weight_sum / (n * samples) if n else math.nan, "samples": samples, "count": n}
