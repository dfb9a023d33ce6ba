"""Latent codecs: a lattice, a prior and the entropy model of its points, as one object.

:class:`~latcomp.latent_codecs.lattice.LatticeLatentCodec` is used by training (torch:
dither, X − U, the rate) and by the codec (numpy: seeded dither, quantize, push/pop,
ideal bits) alike, in the spirit of tensorflow-compression's universal entropy models.
"""

from latcomp.latent_codecs.lattice import LatticeLatentCodec

__all__ = ["LatticeLatentCodec"]
