"""Structure-aware fuzzing of container versions 2 and 3 on multi-level lattices (Λ24 digits, E8 photos of the
factorized and the hyperprior models), with the mutations of ``benchmarks.hostile_fuzz`` (every CRC but the
content CRC recomputed, so the mutants reach the entropy decoder and the checks after it).

Every outcome must be the original output or one of the library's errors: no other exception (a traceback on
the command line) and no undetected change (a decode that succeeds with another output). A modest number of
mutants keeps it fast; ``python -m benchmarks.hostile --parts fuzz`` runs 10^5 over versions 1–4.
"""

from __future__ import annotations

import numpy as np
import pytest
from codec_fixtures import make_model, make_photo_model
from hyper_fixtures import lively_model

from benchmarks.hostile_fuzz import flat, mutant
from latcomp import codec as digits
from latcomp.container import unpack
from latcomp.errors import CodecError
from latcomp.modelfile import save_model
from latcomp.photo import codec as photo


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[tuple[str, bytes, object]]:
    """Small genuine files: Λ24 digits (lossy, lossless; version 2), E8 photos factorized and hyperprior (version 3)."""
    leech = make_model(tmp_path_factory.mktemp("leech"), seed=6, latent=24, lattice="leech", log_b=np.full(24, 0.5))
    factorized = make_photo_model(tmp_path_factory.mktemp("e8"), lattice="e8", seed=3)
    hyper = tmp_path_factory.mktemp("hyper")
    save_model(lively_model(2), hyper)
    rng = np.random.default_rng(9)
    x = (rng.random((2, 28, 28)) < 0.2).astype(np.uint8)
    images = [rng.integers(0, 256, (20, 36, 3), dtype=np.uint8), rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)]
    files = [("Λ24 lossy", digits.compress(x, leech, seed=4), lambda d: digits.decompress(d, leech)),
             ("Λ24 lossless", digits.compress(x[:1], leech, lossless=True, seed=4),
              lambda d: digits.decompress(d, leech)),
             ("E8 photos", photo.compress(images, factorized, seed=4), lambda d: photo.decompress(d, factorized)),
             ("E8 hyperprior photos", photo.compress(images, hyper, seed=4), lambda d: photo.decompress(d, hyper))]
    assert [unpack(data)[0].version for _, data, _ in files] == [2, 2, 3, 3]
    return files


def test_mutants_of_multi_level_files_give_the_original_or_one_error(corpus):
    rng = np.random.default_rng(2024)
    outcomes: dict[str, int] = {}
    for case in range(240):
        label, data, decode = corpus[case % len(corpus)]
        kind, bad = mutant(rng, data)
        try:
            out = decode(bad)
        except CodecError:
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            continue
        assert flat(out) == flat(decode(data)), (label, kind, bad.hex())
        outcomes["same"] = outcomes.get("same", 0) + 1
    assert outcomes["refused"] > 120, outcomes  # the mutants reached the decoder's checks
