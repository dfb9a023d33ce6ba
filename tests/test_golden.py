"""Golden files: every shipped model encodes the committed inputs to the committed bytes, and every
committed file decodes to the committed output (``tests/golden``, written by ``tests/golden/make.py``
before the codec core was restructured). A change that alters a byte a user has fails here."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import numpy as np
import pytest
from conftest import REPO

GOLDEN = REPO / "tests" / "golden"
_spec = importlib.util.spec_from_file_location("golden_make", GOLDEN / "make.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
CASES = MANIFEST["files"]


@pytest.fixture(scope="module")
def data():
    return dict(np.load(GOLDEN / "inputs.npz"))


def test_every_shipped_model_has_golden_files():
    assert {(c["model"], c["kind"]) for c in CASES} == set(make.shipped_models())
    assert len(CASES) >= 2 * len(make.shipped_models()) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_encoding_gives_the_committed_bytes(case, data):
    blob = make.encode(case, data)
    assert hashlib.sha256(blob).hexdigest() == case["sha256"]
    assert blob == (GOLDEN / case["file"]).read_bytes()


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_committed_files_decode_to_the_committed_output(case):
    blob = (GOLDEN / case["file"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == case["sha256"]
    assert make.output_digest(make.decode(case, blob)) == case["decoded_sha256"]


def test_lossless_golden_files_return_the_input_exactly(data):
    for case in CASES:
        if case.get("lossless"):
            out = make.decode(case, (GOLDEN / case["file"]).read_bytes())
            assert np.array_equal(out, data["digits"]), case["file"]


def test_photo_pixels_are_the_same_for_every_thread_count():
    """The photo synthesis does not depend on the BLAS thread count (this file decoded to
    other pixels with OMP_NUM_THREADS=2 than with 1 before the synthesis was pinned to one thread)."""
    import os
    import subprocess
    import sys

    case = next(c for c in CASES if c["file"] == "photo-hyper-q4.rgb.lat")
    script = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('m', sys.argv[1]); "
              "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
              "print(m.output_digest(m.decode(m.json.loads(sys.argv[2]), open(sys.argv[3], 'rb').read())))")
    digests = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", script, str(GOLDEN / "make.py"), json.dumps(case),
                              str(GOLDEN / case["file"])], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert digests == {case["decoded_sha256"]}
