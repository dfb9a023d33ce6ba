"""The shared-seed dither recipe must be stable and uniform."""

import numpy as np
import pytest

from latcomp.latent_codecs import LatticeLatentCodec
from latcomp.lattices import ProductLattice
from latcomp.lattices.dither import seeded_uniforms


def test_recipe_is_pcg64_top_53_bits():
    words = np.random.PCG64(42).random_raw(6)
    expected = [(int(w) >> 11) / 2.0**53 for w in words]
    assert seeded_uniforms(42, (2, 3)).ravel().tolist() == expected


def test_pinned_values_do_not_change_between_versions():
    # PCG64(0) as specified by numpy's bit-generator contract (numpy >= 1.17).
    assert seeded_uniforms(0, (3,)).tolist() == [0.6369616873214543, 0.2697867137638703, 0.04097352393619469]


def test_uniforms_are_in_unit_interval_and_seeds_differ():
    a = seeded_uniforms(7, (100_000,))
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.005
    assert not np.array_equal(a[:10], seeded_uniforms(8, (10,)))


def test_dither_shape_and_cell():
    delta = np.array([0.5, 2.0])
    u = LatticeLatentCodec(ProductLattice("z", 2), delta, np.ones(2)).seeded_dither(3, 1000)
    assert u.shape == (1000, 2) and u.dtype == np.float64
    assert np.all(np.abs(u) <= delta / 2)


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seed_range(seed):
    with pytest.raises(ValueError):
        seeded_uniforms(seed, (1,))
