"""Products of lattice blocks: the latent's lattice Λ = s_1·Λ_1 ⊕ s_2·Λ_2 ⊕ … (one learned scale per block).

A **lattice spec** names the blocks: terms joined by ``+``, each ``name`` (one block) or
``name*count``, e.g. ``e8*2``, ``leech+e8*2`` or ``z*40``. A spec of one bare name
(``e8``) tiles the whole latent with that block. The canonical form (stored in
model configs and container headers) always has explicit counts.

The scale s_b of block b plays the part of the rectangular lattice's Δ_i: for a
``z`` block it *is* Δ_i, so ``z*m`` is the paper's rectangular lattice.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np

from latcomp.lattices.barnes_wall import BarnesWall
from latcomp.lattices.base import Lattice
from latcomp.lattices.checkerboard import Checkerboard
from latcomp.lattices.cubic import Cubic
from latcomp.lattices.gosset import Gosset
from latcomp.lattices.hexagonal import Hexagonal
from latcomp.lattices.leech import Leech

#: Registered unit lattices by name: adding a lattice family is one entry here.
LATTICES: dict[str, type[Lattice] | tuple[type[Lattice], int]] = {
    "z": Cubic, "a2": Hexagonal, "d4": (Checkerboard, 4), "e8": Gosset, "bw16": BarnesWall, "leech": Leech}


@lru_cache(maxsize=None)
def unit_lattice(name: str) -> Lattice:
    """The (shared, cached) unit lattice registered as ``name``."""
    if name not in LATTICES:
        raise ValueError(f"unknown lattice {name!r}; known: {', '.join(LATTICES)}")
    entry = LATTICES[name]
    return entry[0](*entry[1:]) if isinstance(entry, tuple) else entry()


def parse_spec(spec: str, dim: int | None = None) -> list[str]:
    """Block names of a lattice spec, in order; ``dim`` is needed for a bare name and checked otherwise."""
    if dim is not None and dim < 1:
        raise ValueError(f"the latent dimension must be positive, got {dim}")
    terms = [t.strip() for t in str(spec).lower().split("+")]
    if len(terms) == 1 and "*" not in terms[0]:
        block = unit_lattice(terms[0])
        if dim is None:
            return [terms[0]]
        if dim % block.dim:
            raise ValueError(f"lattice {terms[0]} has dimension {block.dim}, which does not divide the latent {dim}")
        return [terms[0]] * (dim // block.dim)
    names: list[str] = []
    for term in terms:
        name, star, count = term.partition("*")
        count = count if star else "1"
        if not count.strip().isdigit() or int(count) < 1 or int(count) > 4096:
            raise ValueError(f"bad lattice spec term {term!r} (expected NAME or NAME*COUNT)")
        unit_lattice(name.strip())
        names += [name.strip()] * int(count)
    total = sum(unit_lattice(n).dim for n in names)
    if dim is not None and total != dim:
        raise ValueError(f"lattice spec {spec!r} has dimension {total}, not the latent's {dim}")
    return names


def canonical_spec(names: list[str]) -> str:
    """``["leech", "e8", "e8"]`` → ``"leech*1+e8*2"`` (runs of equal blocks)."""
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return "+".join(f"{n}*{c}" for n, c in runs)


class ProductLattice:
    """Unit blocks side by side (scales are applied by the latent codec, not here).

    Works on numpy arrays (N, dim); blocks of the same kind are decoded together.
    """

    def __init__(self, spec: str, dim: int | None = None):
        self.names = parse_spec(spec, dim)
        self.blocks = [unit_lattice(n) for n in self.names]
        self.spec = canonical_spec(self.names)
        sizes = [b.dim for b in self.blocks]
        self.dim = sum(sizes)
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        #: Block index of every coordinate.
        self.block_of = np.repeat(np.arange(len(sizes)), sizes)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @cached_property
    def groups(self) -> list[tuple[Lattice, np.ndarray]]:
        """(lattice, columns (blocks, n)) for each kind of block."""
        out = []
        for name in dict.fromkeys(self.names):
            starts = [s for s, n in zip(self.starts, self.names, strict=True) if n == name]
            lat = unit_lattice(name)
            out.append((lat, np.array([np.arange(s, s + lat.dim) for s in starts])))
        return out

    @cached_property
    def steps(self) -> np.ndarray:
        """Per-coordinate 1-D steps (diagonals of the block bases), float64 (dim,)."""
        return np.concatenate([b.steps for b in self.blocks])

    @cached_property
    def levels(self) -> np.ndarray:
        """Coding level of each coordinate: 0 for the last coordinate of each block, 1 for the one before, …"""
        return np.concatenate([np.arange(b.dim - 1, -1, -1) for b in self.blocks])

    @cached_property
    def log_volume(self) -> float:
        """log of the unit cell volume Π_b V(Λ_b)."""
        return float(sum(np.log(b.volume) for b in self.blocks))

    def _blockwise(self, fn_name: str, x: np.ndarray, out_dtype: type) -> np.ndarray:
        x = np.asarray(x)
        out = np.empty(x.shape, out_dtype)
        for lat, cols in self.groups:
            part = x[..., cols]                      # (..., blocks, n)
            out[..., cols] = getattr(lat, fn_name)(part.reshape(-1, lat.dim)).reshape(part.shape)
        return out

    def quantize(self, y: np.ndarray) -> np.ndarray:
        """Integer coordinates k (int64) of the nearest point of the unit product lattice to ``y``."""
        return self._blockwise("quantize", np.asarray(y, np.float64), np.int64)

    def point(self, k: np.ndarray) -> np.ndarray:
        """Unit lattice points k·B, blockwise (float64)."""
        return self._blockwise("point", k, np.float64)

    def cell_uniform(self, v: np.ndarray) -> np.ndarray:
        """Uniforms on [0, 1)^dim → dither uniform on the unit product's Voronoi cell (blockwise)."""
        return self._blockwise("cell_uniform", np.asarray(v, np.float64), np.float64)

    def known_part(self, k: np.ndarray, level: int, cols: np.ndarray | None = None) -> np.ndarray:
        """For the coordinates at ``level``: Σ_{j>i} k_j·B[j, i] (unit scale), given k of the lower levels.

        These are the coordinates coded at step ``level`` of the sequential code; the
        sum uses only coordinates of earlier levels. Exact (dyadic bases, |k| < 2^40).
        ``cols`` restricts the result to some of the level's coordinates (in that order);
        each column is the same whether or not the others are computed.
        """
        cols = np.flatnonzero(self.levels == level) if cols is None else np.asarray(cols, np.int64)
        if np.any(self.levels[cols] != level):
            raise ValueError(f"known_part: columns not at level {level}")
        k = np.asarray(k)  # each column it reads is converted to float64 on its own: no float64 copy of k
        out = np.zeros(k.shape[:-1] + (len(cols),))
        for pos, i in enumerate(cols):
            b = self.block_of[i]
            start, lat = self.starts[b], self.blocks[b]
            local = i - start
            for j in range(local + 1, lat.dim):   # fixed order: exact anyway
                coef = lat.basis[j, local]
                if coef != 0.0:
                    out[..., pos] += k[..., start + j].astype(np.float64) * coef
        return out
