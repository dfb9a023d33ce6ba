"""Subtractive dither from a shared seed (common randomness, Section 3.3).

The encoder and decoder must draw the *same* U ~ Uniform(P0) bit for bit, on any
machine and any numpy version. The recipe is therefore spelled out instead of
using a sampler whose algorithm may change: PCG64 seeded with the 64-bit seed,
``random_raw`` 64-bit words, the top 53 bits scaled by 2^-53 to float64 in [0, 1),
mapped into the Voronoi cell by the lattice
(:meth:`latcomp.latent_codecs.LatticeLatentCodec.seeded_dither`).
"""

from __future__ import annotations

import numpy as np

_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0


def seeded_uniforms(seed: int, shape: tuple[int, ...], start: int = 0) -> np.ndarray:
    """Float64 uniforms on [0, 1) of ``shape`` from PCG64(seed), by the fixed 53-bit recipe.

    ``start`` skips that many words of the stream first (``PCG64.advance``), so a long
    stream can be computed part by part: the parts are the slices of the whole.
    """
    if not 0 <= seed < 2**64:
        raise ValueError(f"dither seed must be in [0, 2**64), got {seed}")
    if start < 0:
        raise ValueError(f"dither start must be non-negative, got {start}")
    n = int(np.prod(shape, dtype=np.int64))
    generator = np.random.PCG64(seed)
    if start:
        generator.advance(start)
    words = generator.random_raw(n).astype(np.uint64)
    return ((words >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53).reshape(shape)
