"""compress/decompress: round trips, agreement with torch, determinism, escapes, sizes, hardening."""

from __future__ import annotations

import constriction
import numpy as np
import pytest
import torch
from codec_fixtures import REPO, digits, huge_model, other_model, sharp_model, small_model, synthetic_binary  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latcomp import codec
from latcomp.codec import compress, decompress, load_model, read_header
from latcomp.container import FIXED_BYTES, pack, unpack
from latcomp.entropy.lattice_code import MAX_COORD, LatticeCode, support_radius
from latcomp.errors import CodecError, FormatError, InputError, ModelMismatchError
from latcomp.latent_codecs import LatticeLatentCodec
from latcomp.lattices import ProductLattice
from latcomp.modelfile import load_model as load_torch_model

# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("layout", ["batch", "flat", "single"])
@pytest.mark.parametrize("dtype", [np.uint8, bool, np.float32])
def test_lossless_round_trip_is_exact(small_model, digits, layout, dtype):
    x = {"batch": digits[:9], "flat": digits[:9].reshape(9, 784), "single": digits[0]}[layout].astype(dtype)
    data = compress(x, small_model, lossless=True, seed=11)
    y = decompress(data, small_model)
    assert y.dtype == np.uint8 and y.shape == x.shape
    assert np.array_equal(y, x.astype(np.uint8))
    assert read_header(data).layout == layout


def test_lossless_with_extreme_probabilities(sharp_model, digits):
    data = compress(digits, sharp_model, lossless=True, seed=1)
    assert np.array_equal(decompress(data, sharp_model), digits)


def test_lossy_decodes_to_the_torch_decoder_mean_of_z_minus_u(small_model, digits):
    """The reconstruction is the decoder's mean image at Z − U, as computed by the torch model."""
    seed = 5
    data = compress(digits, small_model, seed=seed)
    y = decompress(data, small_model)
    assert y.dtype == np.float64 and y.shape == digits.shape
    model = load_torch_model(small_model).double()
    u = load_model(small_model).latent.seeded_dither(seed, len(digits))
    with torch.no_grad():
        k, w = model.quantize(torch.from_numpy(digits.reshape(64, -1)).double(), torch.from_numpy(u))
        mean = torch.sigmoid(model.decoder(w)).numpy().reshape(digits.shape)
    np.testing.assert_allclose(y, mean, rtol=0, atol=1e-5)
    assert np.array_equal(codec.to_uint8(y), np.rint(mean * 255).astype(np.uint8)) or \
        np.abs(codec.to_uint8(y).astype(int) - np.rint(mean * 255)).max() <= 1


def test_grayscale_lossy_input(small_model):
    x = np.random.default_rng(0).random((5, 28, 28))
    y = decompress(compress(x, small_model, seed=3), small_model)
    assert y.shape == x.shape and np.all((y > 0) & (y < 1))


# --------------------------------------------------------------------------- determinism


def test_same_input_and_seed_give_the_same_bytes(small_model, digits):
    for lossless in (False, True):
        a = compress(digits, small_model, lossless=lossless, seed=42)
        assert compress(digits, small_model, lossless=lossless, seed=42) == a
        assert compress(digits, small_model, lossless=lossless, seed=43) != a
    assert read_header(compress(digits, small_model)).seed != read_header(compress(digits, small_model)).seed


@pytest.mark.parametrize("lossless", [False, True])
def test_a_digit_alone_decodes_like_the_same_digit_in_a_batch(small_model, digits, lossless):
    batch = decompress(compress(digits, small_model, lossless=lossless, seed=9), small_model)
    alone = decompress(compress(digits[:1], small_model, lossless=lossless, seed=9), small_model)
    assert np.array_equal(alone[0], batch[0])  # bit for bit, not just close


GOLDEN_SCRIPT = """
import hashlib, sys, numpy as np
from latcomp.codec import compress, decompress
x = np.load(sys.argv[2])
h = hashlib.sha256()
for lossless in (False, True):
    data = compress(x, sys.argv[1], lossless=lossless, seed=123)
    h.update(data)
    h.update(np.ascontiguousarray(decompress(data, sys.argv[1])).tobytes())
assert 'torch' not in sys.modules
print(h.hexdigest())
"""


def test_same_bytes_across_thread_counts_and_processes(tmp_path, small_model):
    import os
    import subprocess
    import sys

    np.save(tmp_path / "x.npy", synthetic_binary(40, seed=3).reshape(40, 28, 28))
    digests = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads, "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", GOLDEN_SCRIPT, str(small_model), str(tmp_path / "x.npy")],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip())
    assert len(digests) == 1


# --------------------------------------------------------------------------- escapes


def test_huge_latents_use_the_escape_and_round_trip(huge_model, digits):
    m = load_model(huge_model)
    u = m.latent.seeded_dither(8, len(digits))
    k = m.latent.quantize(m.net.encode(digits), u)
    assert np.any(np.abs(k) > m.latent.code.radius) and np.abs(k).max() == MAX_COORD  # escapes and the clamp
    for lossless in (False, True):
        data = compress(digits, huge_model, lossless=lossless, seed=8)
        y = decompress(data, huge_model)
        if lossless:
            assert np.array_equal(y, digits)
        else:
            expected = m.net.decode_probs(m.latent.reconstruct(k, u)).reshape(digits.shape)
            assert np.array_equal(y, expected)


def test_escape_codes_any_coordinate_up_to_the_limit():
    rng = np.random.default_rng(0)
    delta = np.array([1.0, 0.5, 2e-3, 1.0], np.float32)
    b = np.array([1.0, 3.0, 1e-6, 1e4], np.float32)
    latent = LatticeCode(ProductLattice("z", 4), delta, b)
    special = np.array([0, 1, -1, 7, 8, 9, 2**16, 2**16 + 8, 2**32 + 9, 2**48 + 9, MAX_COORD, -MAX_COORD,
                        MAX_COORD - 1, -(2**40)], np.int64)
    k = rng.choice(special, size=(50, 4))
    u = LatticeLatentCodec(ProductLattice("z", 4), delta.astype(np.float64), b).seeded_dither(1, 50)
    coder = constriction.stream.stack.AnsCoder()
    latent.push(coder, k, u)
    decoder = constriction.stream.stack.AnsCoder(coder.get_compressed())
    assert np.array_equal(latent.pop(decoder, u), k)
    assert decoder.is_empty()


def test_clamping_of_coordinates_beyond_the_limit():
    latent = LatticeCode(ProductLattice("z", 2), np.ones(2), np.ones(2))
    assert np.array_equal(latent.clamp(np.array([[1e30, -np.inf], [np.nan, 3.0]])), [[MAX_COORD, -MAX_COORD], [0, 3]])


def test_support_radius_is_exact_powers_of_two():
    s = np.array([0.0001, 0.004, 0.25, 0.2500001, 1.0, 3.2, 1e3, 1e9])
    r = support_radius(s)
    assert list(r) == [16, 16, 16, 32, 64, 128, 32768, 1 << 22]
    assert np.all(r >= np.minimum(32 * s + 8, 1 << 22))


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("lossless", [False, True])
def test_payload_is_the_ideal_code_length(small_model, lossless):
    x = synthetic_binary(400, seed=5).reshape(400, 28, 28)
    data = compress(x, small_model, lossless=lossless, seed=2)
    ideal = codec.code_lengths(x, small_model, lossless=lossless, seed=2)
    ideal_bits = ideal["latent"] + ideal["pixels"]
    real_bits = 8 * read_header(data).payload_bytes
    assert ideal_bits - 64 <= real_bits <= 1.001 * ideal_bits + 64


def test_single_image_files_are_small(small_model, digits):
    lossy = compress(digits[0], small_model, seed=1)
    header = read_header(lossy)
    assert header.header_bytes == 39
    assert len(lossy) == 39 + header.payload_bytes < 39 + 32


# --------------------------------------------------------------------------- errors


def test_decoding_with_another_model_names_both(small_model, other_model, digits):
    data = compress(digits[:2], small_model, seed=1)
    ids = [load_model(m).model_id.hex() for m in (small_model, other_model)]
    with pytest.raises(ModelMismatchError) as info:
        decompress(data, other_model)
    assert ids[0] in str(info.value) and ids[1] in str(info.value)


@pytest.mark.parametrize("images, match", [
    (np.zeros((3, 27, 28)), "do not fit"),
    (np.zeros((0, 28, 28)), "between 1 and"),
    (np.full((2, 28, 28), 1.5), r"\[0, 1\]"),
    (np.full((2, 28, 28), np.nan), "finite"),
    (np.full((2, 28, 28), 255, np.uint8), "0/1"),
    (np.array([["a"] * 28] * 28), "numeric"),
])
def test_invalid_images_are_input_errors(small_model, images, match):
    with pytest.raises(InputError, match=match):
        compress(images, small_model)


def test_lossless_needs_binary_pixels(small_model):
    with pytest.raises(InputError, match="binary"):
        compress(np.full((2, 28, 28), 0.5), small_model, lossless=True)


@pytest.fixture(scope="module")
def small_files(small_model, digits):
    return {"lossy": compress(digits[:3], small_model, seed=4),
            "lossless": compress(digits[:2], small_model, lossless=True, seed=4)}


@pytest.mark.parametrize("mode", ["lossy", "lossless"])
def test_every_bit_flip_truncation_and_extension_is_an_error(small_model, small_files, mode):
    data = small_files[mode]
    for i in range(len(data) * 8):
        corrupt = bytearray(data)
        corrupt[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            decompress(bytes(corrupt), small_model)
    for n in range(len(data)):
        with pytest.raises(FormatError):
            decompress(data[:n], small_model)
    with pytest.raises(FormatError):
        decompress(data + b"\x01", small_model)


def _reseal(data: bytes, payload: bytes) -> bytes:
    """Replace the payload and recompute every CRC except the content CRC: a crafted file."""
    header, _ = unpack(data)
    return pack(header, payload)


def test_crafted_payloads_with_valid_checksums_are_errors(small_model, small_files):
    for data in small_files.values():
        _, payload = unpack(data)
        for i in range(len(payload) * 8):
            corrupt = bytearray(payload)
            corrupt[i // 8] ^= 1 << (i % 8)
            if corrupt and corrupt[-1] == 0:
                continue
            with pytest.raises(FormatError):
                decompress(_reseal(data, bytes(corrupt)), small_model)


def test_an_absurd_image_count_with_a_valid_checksum_fails_fast(small_model, small_files):
    header, payload = unpack(small_files["lossy"])
    import dataclasses

    crafted = pack(dataclasses.replace(header, layout="batch", count=1 << 24), payload)
    with pytest.raises(FormatError, match="cannot fit"):  # refused from the header, before any decoding
        decompress(crafted, small_model)


# --------------------------------------------------------------------------- fuzzing


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, pos, value in ops:
        if not out and kind != 2:
            continue
        pos = pos % max(len(out), 1)
        if kind == 0:
            out[pos] ^= 1 << (value % 8)
        elif kind == 1:
            out[pos] = value % 256
        elif kind == 2:
            out[pos:pos] = bytes([value % 256])
        elif kind == 3:
            del out[pos]
        else:
            del out[pos:]
    return bytes(out)


_OPS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1,
                max_size=6)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.sampled_from(["lossy", "lossless"]), ops=_OPS, reseal=st.booleans())
def test_fuzz_corrupted_streams(small_model, small_files, which, ops, reseal):
    """Thousands of corrupted files: decompress raises the codec's own error, or (for a mutation
    that happens to leave the file intact) returns the right images; never anything else."""
    data = small_files[which]
    corrupt = _mutate(data, ops)
    if reseal and corrupt[:FIXED_BYTES] == data[:FIXED_BYTES]:
        # keep the header, re-seal a mutated payload so that the entropy decoder itself is fuzzed
        _, payload = unpack(data)
        corrupt = _reseal(data, _mutate(payload, ops).rstrip(b"\x00"))
    try:
        out = decompress(corrupt, small_model)
    except CodecError:
        pass
    else:
        assert corrupt == data or np.array_equal(out, decompress(data, small_model))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=st.binary(max_size=200), prefix=st.sampled_from([b"", b"LATC", b"LATC\x01", b"LATC\x01\x01"]))
def test_fuzz_random_bytes(small_model, blob, prefix):
    with pytest.raises(CodecError):
        decompress(prefix + blob, small_model)


def test_content_checksum_catches_a_different_entropy_model(small_model, digits, monkeypatch):
    """A decoder whose probabilities differ (e.g. another platform) fails loudly, never silently."""
    data = compress(digits[:4], small_model, lossless=True, seed=1)
    m = load_model(small_model)
    original = m.net.decode_probs
    monkeypatch.setattr(m.net, "decode_probs", lambda w: np.clip(original(w) * (1 + 1e-4), 0, 1))
    with pytest.raises(FormatError, match="checksum"):
        decompress(data, m)


def test_the_documented_header_size():
    """docs/format.md documents a fixed part of 30 bytes and a 39-byte header for one MNIST image."""
    text = (REPO / "docs" / "format.md").read_text()
    assert FIXED_BYTES == 30 and "39 bytes" in text


def test_a_file_of_another_shipped_model_names_it():
    """The mismatch error names the shipped model a file was written with (by its model id)."""
    from latcomp.photo.codec import compress as compress_photo
    from latcomp.photo.codec import decompress as decompress_photo
    from latcomp.photo.codec import photo_model

    blob = compress_photo(np.zeros((20, 30, 3), np.uint8), quality=3, seed=1)
    with pytest.raises(ModelMismatchError, match=r"encoded with model [0-9a-f]{16} \(models/photo-hyper2-q3, "
                                                 r"photo quality 3\), but"):
        decompress_photo(blob, photo_model(1))
