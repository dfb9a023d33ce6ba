"""Lattices for the latent: unit blocks (Z, A2, D4, E8, Λ16, Λ24), their products and the dither.

``ProductLattice("leech+e8*2")`` is the 40-d lattice Λ24 ⊕ E8 ⊕ E8; ``unit_lattice("e8")``
one block. Each block has an exact nearest-point decoder and a lower-triangular basis
(:mod:`latcomp.lattices.base`).
"""

from latcomp.lattices.base import Lattice
from latcomp.lattices.product import LATTICES, ProductLattice, canonical_spec, parse_spec, unit_lattice

__all__ = ["Lattice", "LATTICES", "ProductLattice", "canonical_spec", "parse_spec", "unit_lattice"]
