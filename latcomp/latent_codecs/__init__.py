"""Latent codecs: a lattice, a prior and the entropy model of its points, as one object.

:class:`~latcomp.latent_codecs.base.LatentCodec` is the interface, used by training (torch:
dither, X − U, the rate) and by the codec (numpy: seeded dither, quantize, push/pop,
ideal bits) alike, in the spirit of CompressAI's forward / compress / decompress and
tensorflow-compression's universal entropy models. Implementations:
:class:`LatticeLatentCodec` (factorized prior, one scale per coordinate) and
:class:`ConditionalLatticeCodec` (scales and means per row, :class:`LaplaceRows`).
"""

from latcomp.entropy.conditional_code import LaplaceRows
from latcomp.latent_codecs.base import LatentCodec
from latcomp.latent_codecs.conditional import ConditionalLatticeCodec
from latcomp.latent_codecs.lattice import LatticeLatentCodec

__all__ = ["ConditionalLatticeCodec", "LaplaceRows", "LatentCodec", "LatticeLatentCodec"]
