"""The lattice blocks of :mod:`latcomp.lattices` (Section 3.1, Eq. 4, Lemma 1).

What is tested, lattice by lattice (Z, A2, D4, E8, Λ16, Λ24):

* codes: the Golay code and RM(1,4) have the right size and weight distribution;
* bases: lower-triangular, positive diagonal, size-reduced, |det| = the known volume,
  every row a lattice point by an independent membership test (so the basis spans
  exactly the lattice); ``triangular_basis`` keeps the lattice of random generators;
* nearest point: ``nearest(x)`` is a lattice point at least as close as every lattice
  point found by an exact sphere enumeration on the triangular basis (random, far-away
  and tie inputs); for Λ16 and Λ24 also no minimal vector leads closer (the 4320 and
  196560 minimal vectors are built from the codes and counted);
* the fast coset decoder equals its brute-force reference bit for bit;
* ``coords``/``point``/``quantize`` round-trip bit for bit;
* the dither ``cell_uniform``: Monte-Carlo NSM against the known values, samples in the
  Voronoi cell, uniform there (KS against rejection sampling; E8 moments), the
  Crypto-Lemma, and bit-exactness (row order, batching, exact rational products);
* :class:`ProductLattice`: specs, levels, ``known_part``, blockwise agreement.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest
from scipy import stats

from latcomp.lattices import ProductLattice, canonical_spec, parse_spec, unit_lattice
from latcomp.lattices.base import DITHER_BITS, triangular_basis
from latcomp.lattices.codes import golay_code, reed_muller_1_4
from latcomp.lattices.leech import is_leech_point

NAMES = ["z", "a2", "d4", "e8", "bw16", "leech"]
#: Lattices decoded by a CosetDecoder (fast path + brute-force reference).
CODED = ["e8", "bw16", "leech"]
KNOWN_VOLUME = {"z": 1.0, "a2": math.sqrt(3) / 2, "d4": 2.0, "e8": 1.0, "bw16": 2.0**12, "leech": 8.0**12}
KNOWN_NSM = {"z": 1 / 12, "a2": 0.0801875, "d4": 0.0766032, "e8": 0.0716821, "bw16": 0.06829, "leech": 0.06577}
#: Minimal norm (squared length of the shortest non-zero vector) and kissing number.
MIN_NORM = {"z": 1.0, "a2": 1.0, "d4": 2.0, "e8": 2.0, "bw16": 8.0, "leech": 32.0}
KISSING = {"z": 2, "a2": 6, "d4": 24, "e8": 240, "bw16": 4320, "leech": 196560}
#: Distances are compared with this slack (float error of far-away inputs is far below it).
TOL = 1e-9


# --------------------------------------------------------------------------- helpers


def cut_to_dither_bits(v: np.ndarray) -> np.ndarray:
    """The uniforms as ``cell_uniform`` uses them: cut to DITHER_BITS bits."""
    scale = float(1 << DITHER_BITS)
    return np.floor(v * scale) / scale


def sq_norm(x: np.ndarray) -> np.ndarray:
    return np.sum(np.asarray(x) ** 2, axis=-1)


def assert_bitwise_equal(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.ascontiguousarray(a, np.float64), np.ascontiguousarray(b, np.float64)
    assert a.shape == b.shape
    differ = a.view(np.uint64) != b.view(np.uint64)
    assert not differ.any(), f"{differ.sum()} entries differ, e.g. {a[differ][:3]} vs {b[differ][:3]}"


def is_member(name: str, x: np.ndarray) -> np.ndarray:
    """Lattice membership of each row by the defining congruences (independent of the decoders)."""
    x = np.asarray(x, np.float64)
    integral = np.all(x == np.rint(x), axis=-1)
    if name == "z":
        return integral
    if name == "a2":  # k1·(√3/2) in the second coordinate, k1/2 + integer in the first
        k1 = np.rint(x[..., 1] / (math.sqrt(3) / 2))
        k0 = x[..., 0] - k1 / 2
        return (np.abs(x[..., 1] - k1 * math.sqrt(3) / 2) < 1e-9) & (np.abs(k0 - np.rint(k0)) < 1e-9)
    if name == "d4":
        return integral & (np.remainder(x.sum(-1), 2) == 0)
    if name == "e8":  # D8 ∪ (D8 + ½)
        half = np.all(x - 0.5 == np.rint(x - 0.5), axis=-1)
        return (integral | half) & (np.remainder(x.sum(-1), 2) == 0)
    if name == "bw16":  # x mod 2 ∈ RM(1,4) and Σx ≡ 0 (mod 4)
        words = {w.tobytes() for w in reed_muller_1_4()}
        xi = np.rint(x).astype(np.int64)
        in_code = np.array([(r % 2).astype(np.uint8).tobytes() in words for r in xi.reshape(-1, 16)])
        return integral & in_code.reshape(x.shape[:-1]) & (xi.sum(-1) % 4 == 0)
    if name == "leech":
        return is_leech_point(x)
    raise ValueError(name)


def points_within(basis: np.ndarray, x: np.ndarray, r2: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Every lattice point k·B within squared distance r2 of each row of x: (owner row, points).

    Exact sphere enumeration (Fincke–Pohst) on the lower-triangular basis: coordinate i of
    k·B depends on k_i, …, k_{n−1} only, so k is chosen from the last coordinate to the
    first, each k_i over all integers that keep the partial distance within r2. This is
    the exhaustive search of the nearest-point tests, independent of the decoders.
    """
    x = np.atleast_2d(np.asarray(x, np.float64))
    r2 = np.broadcast_to(np.asarray(r2, np.float64), len(x))
    n = basis.shape[0]
    owner, k, dist = np.arange(len(x)), np.zeros((len(x), n)), np.zeros(len(x))
    for i in range(n - 1, -1, -1):
        step = basis[i, i]
        target = x[owner, i] - k[:, i + 1:] @ basis[i + 1:, i]
        reach = np.sqrt(np.maximum(r2[owner] - dist, 0.0)) / step
        lo, hi = np.ceil(target / step - reach), np.floor(target / step + reach)
        count = np.maximum(hi - lo + 1, 0).astype(np.int64)
        parent = np.repeat(np.arange(len(k)), count)
        ki = lo[parent] + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
        k, owner = k[parent], owner[parent]
        k[:, i] = ki
        dist = dist[parent] + (target[parent] - ki * step) ** 2
        keep = dist <= r2[owner]
        k, owner, dist = k[keep], owner[keep], dist[keep]
    return owner, k @ basis


def lattice_inputs(lat, rng: np.random.Generator, per_kind: int) -> dict[str, np.ndarray]:
    """Test inputs of several kinds: Gaussian at several scales, far away, dither-like and ties."""
    n, scale = lat.dim, lat.volume ** (1 / lat.dim)

    def normal(s: float) -> np.ndarray:
        return rng.normal(scale=s * scale, size=(per_kind, n))

    lattice_pts = lat.point(rng.integers(-20, 21, (per_kind, n)))
    other = lat.point(rng.integers(-1, 2, (per_kind, n)))  # a nearby lattice point (often a short vector away)
    return {
        "gaussian": np.concatenate([normal(s) for s in (0.3, 1.0, 4.0)]),
        "far": normal(1e3),
        "dither": cut_to_dither_bits(rng.random((per_kind, n))) @ lat.basis + lattice_pts,
        "half": np.rint(normal(3.0) * 2) / 2,
        "quarter": np.rint(normal(3.0) * 4) / 4,
        "integer": np.rint(normal(3.0)),
        "midpoint": lattice_pts + other / 2,   # equidistant from two lattice points
        "far_half": 1000.0 + np.rint(normal(3.0) * 2) / 2,
    }


def golay_octads() -> np.ndarray:
    code = golay_code()
    return code[code.sum(1) == 8]


def sign_patterns(m: int) -> np.ndarray:
    """All 2^m vectors of ±1 (rows)."""
    return 1 - 2 * ((np.arange(1 << m)[:, None] >> np.arange(m)) & 1)


def pairs_of_twos(n: int, value: float) -> np.ndarray:
    """All vectors (±value, ±value, 0^(n−2)) in any two positions."""
    out = []
    for i, j in itertools.combinations(range(n), 2):
        for si, sj in itertools.product((1, -1), repeat=2):
            v = np.zeros(n)
            v[i], v[j] = si * value, sj * value
            out.append(v)
    return np.array(out)


def signed_words(words: np.ndarray) -> np.ndarray:
    """Every word with its support signed in all 2^8 ways (words of weight 8)."""
    signs = sign_patterns(8)
    out = np.zeros((len(words), len(signs), words.shape[1]))
    for w, word in enumerate(words):
        out[w][:, np.flatnonzero(word)] = signs
    return out.reshape(-1, words.shape[1])


def barnes_wall_minimal_vectors() -> np.ndarray:
    """The 4320 vectors of norm 8: (±2,±2,0^14) and the admissible sign choices of (±1^8) on RM words."""
    lat = unit_lattice("bw16")
    rm = reed_muller_1_4()
    candidates = signed_words(rm[rm.sum(1) == 8])
    odd = candidates[np.all(lat.nearest(candidates) == candidates, axis=1)]
    assert len(odd) == 30 * 256 // 2
    return np.concatenate([pairs_of_twos(16, 2.0), odd])


def leech_minimal_vectors() -> np.ndarray:
    """The 196560 vectors of norm 32 (√8 scaling), filtered from candidates by ``is_leech_point``.

    (±4,±4,0^22); (±2^8) on the octads, all 2^8 signs tried; and (∓3, ±1^23) with the ±1
    following a Golay word (+1 on it, −1 off it) and both signs tried for the 3.
    """
    octad_candidates = 2.0 * signed_words(golay_octads())
    octad_type = octad_candidates[is_leech_point(octad_candidates)]
    assert len(octad_type) == 759 * 2**7                            # an even number of minus signs
    code = golay_code().astype(np.float64)
    ones = np.repeat(2 * code - 1, 24, axis=0)                      # (4096·24, 24): +1 on the word, −1 off it
    position = np.tile(np.arange(24), len(code))
    three_candidates = np.concatenate([ones, ones])
    three_candidates[np.arange(len(three_candidates)), np.tile(position, 2)] = np.repeat([3.0, -3.0], len(ones))
    three_type = three_candidates[is_leech_point(three_candidates)]
    assert len(three_type) == 4096 * 24
    return np.concatenate([pairs_of_twos(24, 4.0), octad_type, three_type])


def exact_det(rows: list[list[int | Fraction]]) -> Fraction:
    """Determinant by Gaussian elimination over the rationals."""
    a = [[Fraction(v) for v in r] for r in rows]
    n, det = len(a), Fraction(1)
    for c in range(n):
        pivot = next((r for r in range(c, n) if a[r][c] != 0), None)
        if pivot is None:
            return Fraction(0)
        if pivot != c:
            a[c], a[pivot], det = a[pivot], a[c], -det
        det *= a[c][c]
        for r in range(c + 1, n):
            f = a[r][c] / a[c][c]
            a[r] = [x - f * y for x, y in zip(a[r], a[c], strict=True)]
    return det


def solve_lower_triangular(basis: list[list[Fraction]], p: list[Fraction]) -> list[Fraction]:
    """k with k·B = p (B lower-triangular, rows basis vectors), exactly."""
    n = len(basis)
    k = [Fraction(0)] * n
    for i in range(n - 1, -1, -1):
        k[i] = (p[i] - sum(k[j] * basis[j][i] for j in range(i + 1, n))) / basis[i][i]
    return k


# --------------------------------------------------------------------------- codes


def weight_distribution(words: np.ndarray) -> dict[int, int]:
    weights, counts = np.unique(words.sum(1), return_counts=True)
    return dict(zip(weights.tolist(), counts.tolist(), strict=True))


def test_golay_code_has_4096_words_with_the_known_weights():
    code = golay_code()
    assert code.shape == (4096, 24) and set(np.unique(code)) <= {0, 1}
    assert len({w.tobytes() for w in code}) == 4096
    assert weight_distribution(code) == {0: 1, 8: 759, 12: 2576, 16: 759, 24: 1}


def test_reed_muller_1_4_has_32_words_with_the_known_weights():
    rm = reed_muller_1_4()
    assert rm.shape == (32, 16) and set(np.unique(rm)) <= {0, 1}
    assert len({w.tobytes() for w in rm}) == 32
    assert weight_distribution(rm) == {0: 1, 8: 30, 16: 1}


# --------------------------------------------------------------------------- bases


@pytest.mark.parametrize("name", NAMES)
def test_basis_is_lower_triangular_with_the_known_volume(name):
    lat = unit_lattice(name)
    b = lat.basis
    assert b.shape == (lat.dim, lat.dim) and b.dtype == np.float64
    assert np.all(np.triu(b, 1) == 0)
    assert np.all(np.diag(b) > 0) and np.array_equal(lat.steps, np.diag(b))
    # size-reduced: every off-diagonal entry within half the step of its column
    assert np.all(np.abs(np.tril(b, -1)) <= np.diag(b) / 2)
    assert lat.volume == pytest.approx(abs(np.linalg.det(b)), rel=1e-12)
    assert lat.volume == pytest.approx(KNOWN_VOLUME[name], rel=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_basis_rows_are_lattice_points(name):
    """Rows in Λ (independent congruences) and det B = V(Λ): the basis spans exactly Λ."""
    lat = unit_lattice(name)
    assert np.all(is_member(name, lat.basis))
    assert_bitwise_equal(lat.nearest(lat.basis), lat.basis)


@pytest.mark.parametrize("seed", range(8))
def test_triangular_basis_generates_the_same_lattice(seed):
    """Random integer generators (square for even seeds, two extra rows for odd ones)."""
    rng = np.random.default_rng(seed)
    n, extra = 2 + seed % 3, seed % 2 * 2
    gens = rng.integers(-6, 7, (n + extra, n))
    assert np.linalg.matrix_rank(gens) == n
    basis = triangular_basis(gens.tolist())
    assert len(basis) == n
    assert all(basis[j][i] == 0 for j in range(n) for i in range(j + 1, n))
    assert all(basis[i][i] > 0 for i in range(n))
    # every generator has integer coordinates in the new basis: L(gens) ⊆ L(basis) ...
    for g in gens.tolist():
        assert all(k.denominator == 1 for k in solve_lower_triangular(basis, [Fraction(v) for v in g]))
    # ... and the covolumes agree (for integer generators: the gcd of the maximal minors), so L(gens) = L(basis)
    minors = [int(exact_det(gens[list(rows)].tolist())) for rows in itertools.combinations(range(len(gens)), n)]
    assert math.prod(basis[i][i] for i in range(n)) == math.gcd(*minors)
    if not extra:  # vice versa, directly: each basis row has integer coordinates c = b·gens⁻¹ (Cramer's rule)
        det = exact_det(gens.tolist())
        for row in basis:
            coeffs = [exact_det([row if r == j else g for r, g in enumerate(gens.tolist())]) / det for j in range(n)]
            assert all(c.denominator == 1 for c in coeffs)


def test_triangular_basis_rejects_a_rank_deficient_generating_set():
    with pytest.raises(ValueError):
        triangular_basis([[1, 2, 3], [2, 4, 6], [0, 0, 0]])


# --------------------------------------------------------------------------- nearest point


def test_sphere_enumeration_finds_the_kissing_configurations():
    """The exhaustive search itself: the points of norm ≤ minimal norm around 0 are 0 and the minimal vectors."""
    for name in ["z", "a2", "d4", "e8", "bw16"]:
        lat = unit_lattice(name)
        _, pts = points_within(lat.basis, np.zeros(lat.dim), MIN_NORM[name] + 1e-9)
        assert len(pts) == 1 + KISSING[name], name
        assert np.all(is_member(name, pts))


@pytest.mark.parametrize("name", NAMES)
def test_nearest_is_the_closest_lattice_point(name):
    """Exhaustive: no lattice point within ‖x − K(x)‖ of x is nearer (sphere enumeration)."""
    lat = unit_lattice(name)
    rng = np.random.default_rng(100 + NAMES.index(name))
    per_kind = 16 if name == "leech" else 40
    for kind, x in lattice_inputs(lat, rng, per_kind).items():
        p = lat.nearest(x)
        assert p.shape == x.shape and np.all(is_member(name, p)), kind
        d2 = sq_norm(x - p)
        owner, pts = points_within(lat.basis, x, d2 + 1e-6)
        best = np.full(len(x), np.inf)
        np.minimum.at(best, owner, sq_norm(x[owner] - pts))
        assert np.all(np.sqrt(d2) <= np.sqrt(best) + TOL), kind
        assert np.all(np.isfinite(best)), kind   # the enumeration found K(x) itself at least


@lru_cache(maxsize=None)
def minimal_vectors(name: str) -> np.ndarray:
    """The minimal vectors of Λ16 or Λ24 (built once, shared by the tests: do not modify)."""
    return {"bw16": barnes_wall_minimal_vectors, "leech": leech_minimal_vectors}[name]()


@pytest.mark.parametrize("name", ["bw16", "leech"])
def test_minimal_vectors_are_counted_and_in_the_lattice(name):
    lat = unit_lattice(name)
    v = minimal_vectors(name)
    assert v.shape == (KISSING[name], lat.dim)
    assert len(np.unique(v, axis=0)) == KISSING[name]
    assert np.all(sq_norm(v) == MIN_NORM[name])
    assert np.all(is_member(name, v))
    assert_bitwise_equal(lat.point(lat.coords(v)), v)   # integer coordinates in the basis


@pytest.mark.slow
def test_leech_minimal_vectors_are_all_the_shortest_vectors():
    """The 196560 built vectors are exactly the non-zero points of norm ≤ 32 of the basis (sphere enumeration)."""
    lat = unit_lattice("leech")
    _, pts = points_within(lat.basis, np.zeros(24), 32.5)
    pts = pts[sq_norm(pts) > 0]
    built = minimal_vectors("leech")
    assert len(pts) == len(built) == KISSING["leech"]
    assert np.array_equal(np.unique(pts, axis=0), np.unique(built, axis=0))


@pytest.mark.parametrize("name", ["bw16", "leech"])
def test_no_minimal_vector_leads_to_a_nearer_point(name):
    """‖x − (p + v)‖ ≥ ‖x − p‖ for p = K(x) and every minimal vector v ⇔ 2⟨x − p, v⟩ ≤ ‖v‖²."""
    lat = unit_lattice(name)
    v = minimal_vectors(name)
    rng = np.random.default_rng(11)
    scale = lat.volume ** (1 / lat.dim)
    x = np.concatenate([rng.normal(scale=s * scale, size=(10, lat.dim)) for s in (0.5, 1, 3, 10, 1e3)]
                       + [np.rint(rng.normal(scale=3 * scale, size=(10, lat.dim)) * 2) / 2])
    d = x - lat.nearest(x)
    d_norm = np.sqrt(sq_norm(d))
    other = np.sqrt(np.maximum(sq_norm(d)[:, None] - 2 * d @ v.T + MIN_NORM[name], 0))
    assert np.all(d_norm[:, None] <= other + TOL)


# --------------------------------------------------------------------------- coset decoder


@pytest.mark.parametrize("name", CODED)
@pytest.mark.parametrize("kind", ["gaussian", "dither", "half", "integer"])
def test_fast_coset_decoder_equals_brute_force(name, kind):
    lat = unit_lattice(name)
    decoder = lat._decoder
    rng = np.random.default_rng(200 + CODED.index(name))
    per_kind = {"e8": 600, "bw16": 400, "leech": 32}[name]
    x = lattice_inputs(lat, rng, per_kind)[kind]
    reference = decoder.brute_force(x)
    assert np.all(is_member(name, reference))
    assert_bitwise_equal(decoder(x), reference)
    assert_bitwise_equal(decoder._fast(x), reference)   # E8's __call__ delegates to brute_force: test _fast too


# --------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize("name", NAMES)
def test_coords_and_point_round_trip_bit_for_bit(name):
    lat = unit_lattice(name)
    rng = np.random.default_rng(300)
    k = np.concatenate([rng.integers(-3, 4, (200, lat.dim)), rng.integers(-10**6, 10**6, (200, lat.dim)),
                        rng.integers(-2**30, 2**30, (50, lat.dim))])
    p = lat.point(k)
    assert np.all(is_member(name, p[:400]))
    kk = lat.coords(p)
    assert kk.dtype == np.int64 and np.array_equal(kk, k)
    assert_bitwise_equal(lat.point(kk), p)


@pytest.mark.parametrize("name", NAMES)
def test_quantize_gives_the_coordinates_of_the_nearest_point(name):
    lat = unit_lattice(name)
    rng = np.random.default_rng(301)
    x = np.concatenate(list(lattice_inputs(lat, rng, 8 if name == "leech" else 50).values()))
    k = lat.quantize(x)
    assert k.dtype == np.int64 and k.shape == x.shape
    assert np.array_equal(lat.point(k), lat.nearest(x))   # equal values (rint may give −0.0 where k·B gives 0.0)


# --------------------------------------------------------------------------- the dither


#: Monte-Carlo sample sizes: 0.5% of G is at least 4 standard errors (the relative spread of ‖u‖² falls with n).
NSM_SAMPLES = {"z": 600_000, "a2": 300_000, "d4": 120_000, "e8": 40_000, "bw16": 15_000, "leech": 7_000}


@pytest.mark.parametrize("name", NAMES)
def test_monte_carlo_nsm_matches_the_known_value(name):
    lat = unit_lattice(name)
    assert lat.known_nsm == pytest.approx(KNOWN_NSM[name], rel=1e-5)
    u = lat.cell_uniform(np.random.default_rng(400).random((NSM_SAMPLES[name], lat.dim)))
    g = sq_norm(u) / lat.dim / lat.volume ** (2 / lat.dim)
    nsm, stderr = g.mean(), g.std(ddof=1) / math.sqrt(len(g))
    assert 4 * stderr <= 0.005 * KNOWN_NSM[name]
    assert nsm == pytest.approx(KNOWN_NSM[name], rel=5e-3)


@pytest.mark.parametrize("name", NAMES)
def test_dither_lies_in_the_voronoi_cell(name):
    lat = unit_lattice(name)
    u = lat.cell_uniform(np.random.default_rng(401).random((1_500 if name == "leech" else 20_000, lat.dim)))
    assert np.all(lat.nearest(u) == 0)


#: Half-width of a box around the Voronoi cell (≥ the covering radius).
BOX = {"a2": 0.6, "d4": 1.0}


@pytest.mark.parametrize("name", ["a2", "d4"])
def test_dither_is_uniform_on_the_voronoi_cell(name):
    """cell_uniform against rejection sampling (uniform in a box, kept when K(x) = 0): two-sample KS."""
    lat = unit_lattice(name)
    rng = np.random.default_rng(402)
    u = lat.cell_uniform(rng.random((30_000, lat.dim)))
    assert np.all(np.abs(u) <= BOX[name])   # the box holds the cell
    box = rng.uniform(-BOX[name], BOX[name], (250_000, lat.dim))
    ref = box[np.all(lat.nearest(box) == 0, axis=1)]
    assert len(ref) > 25_000
    # the acceptance rate estimates V(Λ) / box volume
    assert len(ref) / len(box) == pytest.approx(lat.volume / (2 * BOX[name]) ** lat.dim, abs=0.005)
    for stat_u, stat_ref in [(sq_norm(u), sq_norm(ref))] + [(u[:, i], ref[:, i]) for i in range(lat.dim)]:
        assert stats.ks_2samp(stat_u, stat_ref).pvalue > 1e-3


def test_e8_dither_is_centred_and_isotropic():
    """Mean 0 and covariance G·V^(2/n)·I, entry by entry within 5 standard errors."""
    lat = unit_lattice("e8")
    u = lat.cell_uniform(np.random.default_rng(403).random((40_000, 8)))
    n_samples = len(u)
    mean_se = u.std(axis=0, ddof=1) / math.sqrt(n_samples)
    assert np.all(np.abs(u.mean(0)) <= 5 * mean_se)
    products = u[:, :, None] * u[:, None, :]
    cov, cov_se = products.mean(0), products.std(0, ddof=1) / math.sqrt(n_samples)
    sigma2 = KNOWN_NSM["e8"] * lat.volume ** (2 / 8)
    assert np.all(np.abs(cov - sigma2 * np.eye(8)) <= 5 * cov_se)


@pytest.mark.parametrize("spec", ["d4", "e8", "d4+e8"])
def test_crypto_lemma(spec):
    """Lemma 1: K(x + U) − U has the law of x − U' (U, U' uniform on P0); K(x + U) alone does not."""
    lat = ProductLattice(spec)
    rng = np.random.default_rng(404)
    x = rng.normal(scale=2.0, size=lat.dim)
    samples = 20_000
    u, u2 = (lat.cell_uniform(rng.random((samples, lat.dim))) for _ in range(2))
    quantized = lat.point(lat.quantize(x + u))
    lemma, target = quantized - u, x - u2
    for i in range(lat.dim):
        assert stats.ks_2samp(lemma[:, i], target[:, i]).pvalue > 1e-3
        assert stats.ks_2samp(quantized[:, i], target[:, i]).pvalue < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_dither_is_independent_of_row_order_and_batching(name):
    lat = unit_lattice(name)
    v = np.random.default_rng(405).random((1_500, lat.dim))   # > 1024 rows: several blocks of the fast decoder
    u = lat.cell_uniform(v)
    assert_bitwise_equal(lat.cell_uniform(v[::-1])[::-1], u)
    assert_bitwise_equal(np.concatenate([lat.cell_uniform(v[:701]), lat.cell_uniform(v[701:])]), u)
    assert_bitwise_equal(np.concatenate([lat.cell_uniform(v[i:i + 1]) for i in range(10)]), u[:10])
    assert_bitwise_equal(lat.cell_uniform(v[:10].reshape(2, 5, lat.dim)).reshape(10, lat.dim), u[:10])


@pytest.mark.parametrize("name", ["d4", "e8", "bw16", "leech"])
def test_dither_product_is_exact(name):
    """v·B with v cut to 32 bits is exact in float64 (compared with rational arithmetic), hence so is U."""
    lat = unit_lattice(name)
    v = cut_to_dither_bits(np.random.default_rng(406).random((8, lat.dim)))
    basis = [[Fraction(b) for b in row] for row in lat.basis]
    w = v @ lat.basis
    u = lat.cell_uniform(v)
    for r in range(len(v)):
        exact = [sum(Fraction(v[r, j]) * basis[j][i] for j in range(lat.dim)) for i in range(lat.dim)]
        assert [Fraction(c) for c in w[r]] == exact
        nearest = lat.nearest(w[r:r + 1])[0]
        assert [Fraction(c) for c in u[r]] == [e - Fraction(p) for e, p in zip(exact, nearest, strict=True)]


# --------------------------------------------------------------------------- product lattices


def test_parse_and_canonical_spec():
    assert parse_spec("e8", 16) == ["e8", "e8"]
    assert canonical_spec(parse_spec("e8", 16)) == "e8*2"
    assert parse_spec("leech+e8*2") == ["leech", "e8", "e8"]
    assert canonical_spec(parse_spec("leech+e8*2", 40)) == "leech*1+e8*2"
    assert parse_spec(" Z * 3 + A2 ") == ["z", "z", "z", "a2"]
    assert canonical_spec(["e8", "z", "e8"]) == "e8*1+z*1+e8*1"
    for spec in ["leech*1+e8*2", "z*40", "a2*2+d4*1+bw16*3"]:
        assert canonical_spec(parse_spec(spec)) == spec
    lat = ProductLattice("e8", 16)
    assert lat.spec == "e8*2" and lat.dim == 16 and lat.num_blocks == 2


@pytest.mark.parametrize("spec,dim", [
    ("e9", None), ("leech+foo*2", None), ("", None), ("e8+", None),           # unknown names
    ("e8*0", None), ("e8*-1", None), ("e8*x", None), ("e8*", None), ("e8*1.5", None), ("z*5000", None),  # counts
    ("e8*2", 24), ("leech+e8*2", 41),                                           # dimension mismatch
    ("leech", 40), ("e8", 12),                                                  # bare name not dividing
])
def test_parse_spec_errors(spec, dim):
    with pytest.raises(ValueError):
        parse_spec(spec, dim)


def test_levels_count_down_to_zero_in_every_block():
    lat = ProductLattice("a2+d4+z*2+e8")
    assert lat.levels.tolist() == [1, 0, 3, 2, 1, 0, 0, 0, 7, 6, 5, 4, 3, 2, 1, 0]
    ends = lat.starts + [b.dim - 1 for b in lat.blocks]
    assert np.all(lat.levels[ends] == 0) and np.all(lat.levels[lat.starts] == [b.dim - 1 for b in lat.blocks])


MIXED = "e8+z*2+a2+d4+e8+bw16+leech+d4"


def test_known_part_is_the_sum_over_later_coordinates():
    lat = ProductLattice(MIXED)
    rng = np.random.default_rng(500)
    k = rng.integers(-1000, 1001, (50, lat.dim))
    # brute force: Σ_{j>i} k_j B[j, i] = k·(B − diag B), block by block
    expected = np.concatenate([k[:, s:s + b.dim] @ (b.basis - np.diag(b.steps))
                               for s, b in zip(lat.starts, lat.blocks, strict=True)], axis=1)
    for level in range(lat.levels.max() + 1):
        part = lat.known_part(k, level)
        assert_bitwise_equal(part, expected[:, lat.levels == level])
        # it uses only coordinates of lower levels: changing the others changes nothing
        k2 = k.copy()
        k2[:, lat.levels >= level] = rng.integers(-1000, 1001, (50, int(np.sum(lat.levels >= level))))
        assert_bitwise_equal(lat.known_part(k2, level), part)


def test_product_agrees_blockwise_with_the_unit_lattices():
    lat = ProductLattice(MIXED)
    assert lat.dim == sum(b.dim for b in lat.blocks) == 68
    assert_bitwise_equal(lat.steps, np.concatenate([b.steps for b in lat.blocks]))
    assert lat.log_volume == pytest.approx(sum(math.log(KNOWN_VOLUME[n]) for n in lat.names), rel=1e-12)
    rng = np.random.default_rng(501)
    y = rng.normal(scale=3.0, size=(100, lat.dim))
    v = rng.random((100, lat.dim))
    k, p, u = lat.quantize(y), lat.point(lat.quantize(y)), lat.cell_uniform(v)
    assert k.dtype == np.int64
    for s, b in zip(lat.starts, lat.blocks, strict=True):
        cols = slice(s, s + b.dim)
        assert np.array_equal(k[:, cols], b.quantize(y[:, cols]))
        assert np.array_equal(p[:, cols], b.nearest(y[:, cols]))
        assert_bitwise_equal(u[:, cols], b.cell_uniform(v[:, cols]))
