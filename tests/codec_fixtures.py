"""Fixtures of the codec tests: small random models saved to disk (no trained model needed).

Import the fixtures a test module uses by name (``from codec_fixtures import small_model``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, synthetic_binary

__all__ = ["cli", "make_photo_model", "small_model", "sharp_model", "huge_model", "other_model", "digits",
           "make_model", "run_latcomp", "REPO", "synthetic_binary"]


def make_model(directory: Path, seed: int = 0, hidden: int = 32, latent: int = 8,
               log_delta: np.ndarray | None = None, log_b: np.ndarray | None = None,
               decoder_gain: float = 1.0, lattice: str = "z") -> Path:
    """Save a random LatticeVAE (torch, only here) to ``directory`` and return it."""
    import torch

    from latcomp.modelfile import save_model
    from latcomp.nn.models import LatticeVAE

    torch.manual_seed(seed)
    model = LatticeVAE(hidden=hidden, latent=latent, lattice=lattice)
    with torch.no_grad():
        if log_delta is not None:
            model.log_delta.copy_(torch.as_tensor(log_delta, dtype=torch.float32))
        if log_b is not None:
            model.log_b.copy_(torch.as_tensor(log_b, dtype=torch.float32))
        model.decoder[-1].weight.mul_(decoder_gain)
        model.decoder[-1].bias.mul_(decoder_gain)
    save_model(model, directory)
    return directory


def make_photo_model(directory: Path, lattice: str = "z", seed: int = 0, channels: int = 8,
                     latent: int = 8) -> Path:
    """Save a random photo model whose latent is large enough to carry a few bits per position."""
    import torch

    from latcomp.modelfile import save_model
    from latcomp.nn.photo import PhotoFactorized

    torch.manual_seed(seed)
    model = PhotoFactorized(channels=channels, latent=latent, lattice=lattice)
    with torch.no_grad():
        model.analysis[-1].weight.mul_(20.0)  # latents of a few units: several lattice points per channel
        model.log_b.fill_(0.5)
    save_model(model, directory)
    return directory


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """hidden 32, latent 8; Δ from 0.05 to 2 and b from 0.02 to 3 (peaked and wide dimensions)."""
    return make_model(tmp_path_factory.mktemp("small"), log_delta=np.linspace(-3, 0.7, 8),
                      log_b=np.linspace(1.1, -4, 8))


@pytest.fixture(scope="session")
def sharp_model(tmp_path_factory) -> Path:
    """Decoder logits scaled by 40: probabilities near 0 and 1 (and beyond the ±32 clip)."""
    return make_model(tmp_path_factory.mktemp("sharp"), seed=1, decoder_gain=40.0)


@pytest.fixture(scope="session")
def huge_model(tmp_path_factory) -> Path:
    """Tiny Δ in some dimensions: coordinates from ~1e5 to beyond the 2^62 clamp, outside the supports."""
    log_delta = np.array([-28.0, -20.0, -12.0, -6.0, 0.0, -100.0, 2.0, -25.0])
    return make_model(tmp_path_factory.mktemp("huge"), seed=2, log_delta=log_delta,
                      log_b=np.array([-30.0, -22.0, 0.0, -6.0, 0.0, -100.0, 2.0, -29.0]))


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("other"), seed=7)


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """Synthetic binary 28×28 'digits', uint8 (64, 28, 28)."""
    return synthetic_binary(64, seed=3).reshape(64, 28, 28)


def cli(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in-process; return (exit status, stderr)."""
    from latcomp.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def run_latcomp(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                check_torch: bool = True) -> subprocess.CompletedProcess:
    """Run the ``latcomp`` CLI in a fresh interpreter; with ``check_torch``, fail if it imported torch."""
    code = ("import sys\nfrom latcomp.cli import main\nsys.argv[0] = 'latcomp'\n"
            "try:\n    main(sys.argv[1:])\nfinally:\n"
            "    if 'torch' in sys.modules:\n        print('TORCH-IMPORTED', file=sys.stderr)\n")
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)
    if check_torch:
        assert "TORCH-IMPORTED" not in proc.stderr, "the CLI imported torch"
    return proc
