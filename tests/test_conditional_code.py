"""The conditional lattice code (per-row Laplace scales and means), checked with a synthetic conditional model.

* it is a distribution: Σ_k P(k | u) = 1 by enumeration (Z, E8), the box reaching beyond the coded support;
* Theorem 1 by Monte Carlo: the torch training rate's mean equals the mean real code length, and the real
  payload of constriction is within a small overhead of the ideal;
* round trips (Z, E8, a mixed product; random table indices and exact means per row; escapes), in calls of at
  most SYMBOL_CHUNK symbols that never decode from an empty stream;
* a decoder given one changed scale index does not silently agree;
* scale_index and the straight-through table scale;
* the latent-codec interface: forward / compress / decompress on both implementations.
"""

from __future__ import annotations

import itertools
import math

import constriction
import numpy as np
import pytest
import torch

from latcomp.entropy import lattice_code
from latcomp.entropy.conditional_code import LaplaceRows, TableScales
from latcomp.entropy.lattice_code import SYMBOL_CHUNK
from latcomp.entropy.scales import OFFSET, SCALE_TABLE, SIZE, STEPS, scale_index, straight_through_scale, table_scale
from latcomp.errors import FormatError
from latcomp.latent_codecs import ConditionalLatticeCodec, LatentCodec, LatticeLatentCodec
from latcomp.lattices import ProductLattice


class Rows:
    """Dithers computed when a slice of rows is read (a DitherRows, as the decoder's), counting the rows read."""

    def __init__(self, u: np.ndarray):
        self.u, self.read = u, 0

    def __len__(self) -> int:
        return len(self.u)

    def __getitem__(self, rows: slice) -> np.ndarray:
        part = self.u[rows].copy()
        self.read += len(part)
        return part


class CheckedCoder:
    """The runtime's rule (codec._CheckedCoder): symbol calls of at most SYMBOL_CHUNK, never from an empty stream."""

    def __init__(self, coder: constriction.stream.stack.AnsCoder):
        self.coder, self.calls = coder, 0

    def decode(self, model, *params):
        if params and np.ndim(params[0]):
            assert len(params[0]) <= SYMBOL_CHUNK
            if self.coder.is_empty():
                raise FormatError("the stream ends before the lattice coordinates")
            self.calls += 1
        return self.coder.decode(model, *params)

    def encode_reverse(self, symbols, model, *params):
        assert not params or len(symbols) <= SYMBOL_CHUNK
        self.coder.encode_reverse(symbols, model, *params)


def _codec(spec: str, delta) -> ConditionalLatticeCodec:
    return ConditionalLatticeCodec(ProductLattice(spec), np.asarray(delta, np.float64))


def _random_prior(rng: np.random.Generator, n: int, dim: int, low: int = 0, high: int = SIZE,
                  mean_scale: float = 3.0) -> tuple[np.ndarray, LaplaceRows]:
    index = rng.integers(low, high, (n, dim))
    mean = np.round(rng.normal(0, mean_scale, (n, dim)) * 16) / 16  # exact multiples of 2^-4
    return index, LaplaceRows.from_indices(index, mean)


def _round_trip(codec: ConditionalLatticeCodec, k: np.ndarray, u: np.ndarray, prior: LaplaceRows
                ) -> tuple[np.ndarray, np.ndarray]:
    coder = constriction.stream.stack.AnsCoder()
    codec.push(CheckedCoder(coder), k, u, prior)
    words = coder.get_compressed()
    back = codec.pop(CheckedCoder(constriction.stream.stack.AnsCoder(words)), Rows(u), prior)
    return back, words


# --------------------------------------------------------------------------- a distribution


def _sum_of_probabilities(codec: ConditionalLatticeCodec, k: np.ndarray, index: list[int], mean_scale: float
                          ) -> tuple[float, np.ndarray]:
    """Σ P(k | u) over the points ``k`` for one dither and one row's prior (random exact means), and each P."""
    rng = np.random.default_rng(0)
    u = codec.dither(rng.random((1, codec.dim)))
    mean = np.round(rng.normal(0, mean_scale, (1, codec.dim)) * 16) / 16
    prior = LaplaceRows(np.broadcast_to(table_scale(np.array([index])), k.shape), np.broadcast_to(mean, k.shape))
    p = np.exp2(codec.code.log2_prob(k, np.broadcast_to(u, k.shape), prior).sum(-1))
    return float(p.sum()), p


@pytest.mark.parametrize("delta,index,radius,peaked", [
    ([0.8, 0.5], [44, 60], 150, False),            # b/w 0.9 and 5.7: R = 64 and 256
    ([1.0, 1.0], [30, 26], 40, True)])             # peaked: R = 16, the box reaches 24 beyond the support
def test_probabilities_sum_to_one_on_z(delta, index, radius, peaked):
    grid = np.array(list(itertools.product(range(-radius, radius + 1), repeat=2)), np.int64)
    total, p = _sum_of_probabilities(_codec("z*2", delta), grid, index, 0.3)
    assert total == pytest.approx(1.0, abs=1e-10)  # the tails beyond the box: < 3e-12
    if peaked:  # points beyond the coded support ±16 (escapes) carry their (small) probability
        assert 0 < p[np.abs(grid).max(-1) > 16].sum() < 1e-5


def test_probabilities_sum_to_one_on_e8():
    """All points of E8 (scaled by 0.9) with |z_i| ≤ 1.8: D8 ∩ [−2, 2]^8 and D8 + ½ ∩ [−1.5, 1.5]^8."""
    whole = np.array(list(itertools.product(range(-2, 3), repeat=8)), np.float64)
    half = np.array(list(itertools.product(np.arange(-1.5, 2.0), repeat=8)))
    points = np.concatenate([whole[whole.sum(-1) % 2 == 0], half[(half - 0.5).sum(-1) % 2 == 0]])
    codec = _codec("e8", [0.9])
    k = codec.lattice.blocks[0].coords(points)
    assert np.array_equal(codec.lattice.point(k), points)
    total, _ = _sum_of_probabilities(codec, k, [16, 20, 14, 22, 18, 15, 21, 17], 0.05)  # b from 0.06 to 0.11
    assert total == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- Theorem 1


def test_theorem_1_by_monte_carlo_and_the_real_payload():
    """E[−log2 P(K(X+U) | U)] = E[training rate at X − U'] (Crypto-Lemma) per row's prior, and constriction's
    stream is within a small overhead of Σ −log2 P."""
    rng = np.random.default_rng(1)
    codec = _codec("e8+z*4", [0.7, 0.5, 0.9, 0.4, 1.2])
    n = 30_000
    index, prior = _random_prior(rng, n, codec.dim, 32, 72, mean_scale=2.0)
    x = prior.mean + rng.laplace(0, 1, (n, codec.dim)) * prior.scale * rng.uniform(0.5, 1.5, (n, codec.dim))
    u = codec.seeded_dither(7, n)
    k = codec.quantize(x, u)
    real = -codec.code.log2_prob(k, u, prior).sum(-1)
    # the training rate (torch, straight-through table scales) at X − U' with an independent dither
    t = torch.tensor(index, dtype=torch.float64) + torch.from_numpy(rng.uniform(-0.4, 0.4, (n, codec.dim)))
    train = LaplaceRows(straight_through_scale(t), torch.from_numpy(prior.mean))
    torch_codec = ConditionalLatticeCodec(codec.lattice, torch.from_numpy(codec.delta))
    _, rate = torch_codec.forward(torch.from_numpy(x), torch.from_numpy(rng.random((n, codec.dim))), train)
    rate = rate.numpy() / math.log(2)
    se = math.sqrt(real.var() / n + rate.var() / n)
    assert abs(real.mean() - rate.mean()) < 3 * se, (real.mean(), rate.mean(), se)
    # at the same η = Z − U the training rate is the code length of the real point
    eta = codec.reconstruct(k, u)
    same = torch_codec.rate_nats(torch.from_numpy(eta), train).numpy() / math.log(2)
    np.testing.assert_allclose(same, real, rtol=1e-12)
    # without the dither the code length is another number
    wrong = torch_codec.rate_nats(torch.from_numpy(eta + u), train).numpy() / math.log(2) - real
    assert abs(wrong.mean()) > 10 * wrong.std() / math.sqrt(n)
    back, words = _round_trip(codec, k, u, prior)
    assert np.array_equal(back, k)
    payload, ideal = 32 * len(words), real.sum()
    assert ideal < payload < 1.002 * ideal + 64, (payload, ideal)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("spec,delta", [("z*6", np.linspace(0.3, 2.0, 6)), ("e8*2", [0.6, 1.4]),
                                        ("e8+z*3+d4", [0.8, 0.4, 1.0, 2.5, 0.5])])
def test_round_trip_with_per_row_indices_and_means(monkeypatch, spec, delta):
    rng = np.random.default_rng(2)
    codec = _codec(spec, delta)
    n = 700
    _, prior = _random_prior(rng, n, codec.dim, mean_scale=20.0)
    x = prior.mean + rng.laplace(0, 1, (n, codec.dim)) * prior.scale
    u = codec.seeded_dither(3, n)
    k = codec.quantize(x, u)
    streams = []
    for chunk in (SYMBOL_CHUNK, 50):  # the row blocks shrink: other calls, the same symbols
        monkeypatch.setattr(lattice_code, "SYMBOL_CHUNK", chunk)
        back, words = _round_trip(codec, k, u, prior)
        assert np.array_equal(back, k)
        streams.append(words)
    assert np.abs(k).max() > 100 and len(streams[0]) > 0


def test_escapes_round_trip():
    """Coordinates far outside the coded support (and large means) come back exactly, on every level."""
    rng = np.random.default_rng(3)
    codec = _codec("e8+z*2", [0.5, 1.0, 0.25])
    n = 300
    _, prior = _random_prior(rng, n, codec.dim, 0, 40)
    prior = LaplaceRows(prior.scale, prior.mean + np.where(rng.random((n, codec.dim)) < 0.1, 1e6, 0.0))
    u = codec.seeded_dither(5, n)
    k = codec.quantize(prior.mean + rng.laplace(0, 1, (n, codec.dim)) * prior.scale, u)
    far = rng.random((n, codec.dim)) < 0.05
    k[far] = rng.choice([-1, 1], far.sum()) * rng.integers(1 << 10, 1 << 39, far.sum())
    k[0, 8:] = codec.code.max_coord[8:]  # the largest z coordinates, 2^62 − 1
    k[1, 8:] = -codec.code.max_coord[8:]
    back, _ = _round_trip(codec, k, u, prior)
    assert np.array_equal(back, k)
    with pytest.raises(ValueError, match="largest codable"):
        codec.push(constriction.stream.stack.AnsCoder(), np.full((1, codec.dim), 1 << 41), u[:1], prior.rows(slice(1)))


def test_a_stream_that_ends_early_is_refused_and_bad_priors_are_errors():
    rng = np.random.default_rng(4)
    codec = _codec("e8+z*8", [0.5] + [1.0] * 8)
    n = 20
    _, prior = _random_prior(rng, 4 * n, codec.dim)
    u = codec.seeded_dither(1, 4 * n)
    k = codec.quantize(prior.mean + prior.scale * rng.laplace(0, 1, prior.scale.shape), u)
    coder = constriction.stream.stack.AnsCoder()
    codec.push(coder, k[:n], u[:n], prior.rows(slice(n)))
    with pytest.raises(FormatError, match="ends"):  # a header claiming 4n rows for the stream of n
        codec.pop(CheckedCoder(constriction.stream.stack.AnsCoder(coder.get_compressed())), Rows(u), prior)
    scale = np.asarray(prior.scale)
    for bad in (LaplaceRows(scale.astype(np.float32)), LaplaceRows(scale[:-1]),
                LaplaceRows(np.where(np.arange(scale.size).reshape(scale.shape) == 7, 0.0, scale)),
                LaplaceRows(scale, np.full_like(scale, np.nan)),
                LaplaceRows(scale, np.full_like(scale, 2.0**51)), LaplaceRows(TableScales(np.zeros((3, 2), int)))):
        with pytest.raises(ValueError):
            codec.push(constriction.stream.stack.AnsCoder(), k, u, bad)
    with pytest.raises(ValueError, match="needs the rows' prior"):
        codec.push(constriction.stream.stack.AnsCoder(), k, u)


def test_a_decoder_with_one_changed_index_does_not_agree():
    rng = np.random.default_rng(5)
    codec = _codec("e8*2+z*4", [0.7, 1.1, 0.5, 0.5, 2.0, 2.0])
    n = 400
    index, prior = _random_prior(rng, n, codec.dim, 20, 90)
    u = codec.seeded_dither(9, n)
    k = codec.quantize(prior.mean + prior.scale * rng.laplace(0, 1, (n, codec.dim)), u)
    back, words = _round_trip(codec, k, u, prior)
    assert np.array_equal(back, k)  # the right indices: bit-exact
    for row, col in ((3, 5), (n // 2, 15), (n - 10, 0)):
        wrong = index.copy()
        wrong[row, col] += 1
        try:
            other = codec.pop(constriction.stream.stack.AnsCoder(words), u, LaplaceRows.from_indices(wrong, prior.mean))
        except FormatError:
            continue
        assert not np.array_equal(other, k)  # what the runtime's content CRC turns into an error


# --------------------------------------------------------------------------- scale table indices


def test_scale_index_rounds_and_clips_alike_in_numpy_and_torch():
    fixed = np.arange(-3 * 4096, 116 * 4096, 37)  # the fixed-point t = n/2^12 of an integer network: exact rule
    assert np.array_equal(scale_index(fixed / 4096.0), np.clip((fixed + 2048) >> 12, 0, SIZE - 1))
    t = np.array([-3.0, 0.0, 0.5, 1.5, 2.49, 47.5, 48.5, 111.6, 112.0, 500.0, -np.inf, np.inf])
    expected = [0, 0, 1, 2, 2, 48, 49, 112, 112, 112, 0, 112]  # halves up
    assert scale_index(t).tolist() == expected and scale_index(t).dtype == np.int64
    assert scale_index(torch.from_numpy(t)).tolist() == expected
    assert scale_index(torch.from_numpy(t).float()).dtype == torch.int64
    for bad in (np.array([1.0, np.nan]), torch.tensor([np.nan])):
        with pytest.raises(ValueError, match="NaN"):
            scale_index(bad)
    assert np.array_equal(table_scale(scale_index(t)), SCALE_TABLE[expected])
    with pytest.raises(ValueError):
        table_scale(np.array([SIZE]))
    with pytest.raises(ValueError):
        table_scale(np.array([1.0]))


def test_straight_through_scale_is_the_table_value_with_the_continuous_gradient():
    t = torch.tensor([-2.0, 10.3, 47.5, 48.0, 60.7, 130.0], dtype=torch.float64, requires_grad=True)
    b = straight_through_scale(t)
    assert torch.equal(b.detach(), torch.from_numpy(SCALE_TABLE[scale_index(t.detach().numpy())]))
    b.sum().backward()
    expected = torch.exp2((t.detach() - OFFSET) / STEPS) * math.log(2) / STEPS
    torch.testing.assert_close(t.grad, expected, rtol=1e-12, atol=0)
    single = straight_through_scale(torch.tensor([60.7], dtype=torch.float32))
    assert single.dtype == torch.float32 and float(single) == np.float32(SCALE_TABLE[61])


# --------------------------------------------------------------------------- the interface


def test_both_latent_codecs_keep_the_contract():
    rng = np.random.default_rng(6)
    lattice = ProductLattice("e8+z*2")
    delta, b = np.array([0.6, 1.0, 0.5]), rng.uniform(0.3, 3.0, lattice.dim)
    static, conditional = LatticeLatentCodec(lattice, delta, b), ConditionalLatticeCodec(lattice, delta)
    assert isinstance(static, LatentCodec) and isinstance(conditional, LatentCodec)
    n = 200
    x, u = rng.laplace(0, 1, (n, lattice.dim)) * b, static.seeded_dither(2, n)
    # the conditional code with every row's prior equal to the static one has the same code lengths
    same = LaplaceRows(np.broadcast_to(b, (n, lattice.dim)).copy())
    for codec, prior in ((static, None), (conditional, same)):
        coder = constriction.stream.stack.AnsCoder()
        k = codec.compress(coder, x, u, prior)
        assert np.array_equal(k, codec.quantize(x, u))
        back, w = codec.decompress(constriction.stream.stack.AnsCoder(coder.get_compressed()), Rows(u), prior)
        assert np.array_equal(back, k) and np.array_equal(w, codec.reconstruct(k, u))
        np.testing.assert_allclose(codec.ideal_bits(k, u, prior), static.ideal_bits(k, u), rtol=1e-12)
        assert 0 < codec.min_bits_per_item() <= static.code.min_bits_per_item()
    eta, rate = static.forward(x, rng.random((n, lattice.dim)))
    np.testing.assert_allclose(rate, conditional.rate_nats(eta, same), rtol=1e-12)
    np.testing.assert_allclose(static.log_prior(eta), conditional.log_prior(eta, same), rtol=1e-12)
    with pytest.raises(ValueError, match="no per-row prior"):
        static.rate_nats(eta, same)


def test_table_scales_hold_a_byte_a_coordinate_and_code_what_float_scales_code():
    """A decoder keeps a large image's priors as table indices (one byte each): the same scales slice by slice,
    the same bytes as the float64 scales, and indices outside the table are refused."""
    rng = np.random.default_rng(9)
    codec = _codec("e8*2", [0.7, 1.3])
    index, prior = _random_prior(rng, 300, codec.dim)
    assert isinstance(prior.scale, TableScales) and prior.scale.index.nbytes == index.size
    np.testing.assert_array_equal(prior.scale[40:90], table_scale(index[40:90]))
    u = codec.seeded_dither(2, 300)
    k = codec.quantize(prior.mean + np.asarray(prior.scale) * rng.laplace(0, 1, index.shape), u)
    words = []
    for scales in (prior.scale, table_scale(index)):
        coder = constriction.stream.stack.AnsCoder()
        codec.push(coder, k, u, LaplaceRows(scales, prior.mean))
        words.append(coder.get_compressed())
    np.testing.assert_array_equal(*words)
    np.testing.assert_array_equal(codec.pop(constriction.stream.stack.AnsCoder(words[0]), u, prior), k)
    for bad in (np.full((2, 2), SIZE), np.full((2, 2), -1), np.zeros(4, int), np.zeros((2, 2))):
        with pytest.raises(ValueError):
            TableScales(bad)
