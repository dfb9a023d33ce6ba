"""Shared fixtures: small synthetic binary data and the location of the real data."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# The test models are tiny: one thread is faster than two fighting over the cores,
# and subprocesses inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def real_data_dir() -> Path:
    """``$LATCOMP_DATA`` if set, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("LATCOMP_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real datasets; skips the test when they are absent."""
    path = real_data_dir()
    if not (path / "binarized_mnist" / "test.npz").exists():
        pytest.skip(f"real data not found in {path} (set LATCOMP_DATA)")
    return path


def synthetic_binary(n: int, seed: int = 0) -> np.ndarray:
    """Binary 'digits': a few random stroke templates with pixel noise, uint8 (n, 784)."""
    rng = np.random.default_rng(seed)
    templates = rng.random((4, 784)) < 0.15
    labels = rng.integers(0, 4, n)
    flips = rng.random((n, 784)) < 0.03
    return (templates[labels] ^ flips).astype(np.uint8)


@pytest.fixture
def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_binary(300, seed=1), synthetic_binary(100, seed=2)


def run_cli(capsys, *args) -> tuple[int, str]:
    """``latcomp ARGS`` in this process (no interpreter start-up): (exit status, what it wrote to stderr)."""
    from latcomp.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err
