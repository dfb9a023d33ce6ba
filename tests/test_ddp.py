"""Training under torchrun: two CPU processes train what one process trains on the same global batch.

One torchrun launch (two processes, gloo) runs every distributed case of this file (its
start-up is most of the time): the MNIST lattice VAE through :func:`latcomp.train.train`,
the photo model through the real command line (one epoch, then ``--resume`` for a
second), and three refusals. The tests compare with single-process runs in this process.
"""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import synthetic_binary
from safetensors.torch import load_file

from latcomp.cli import main
from latcomp.modelfile import WEIGHTS
from latcomp.nn.models import LatticeVAE
from latcomp.nn.photo import PhotoFactorized
from latcomp.train import TrainConfig, train

MNIST = dict(hidden=16, latent=4, batch_size=8, lr=1e-3, max_epochs=2)
PHOTO = ["--arch", "photo-factorized", "--channels", "8", "--latent", "8", "--crop", "32", "--batch-size", "4",
         "--steps-per-epoch", "3"]
#: Float sums in another order (two halves, then the all-reduce) move the weights by ~1e-7 in these runs.
TOLERANCE = 1e-5

WORKER = """
import contextlib, io, json, os, sys
from pathlib import Path
import numpy as np
from latcomp.cli import main
from latcomp.train import TrainConfig, train

tmp, spec = Path(sys.argv[1]), json.loads(sys.argv[2])

def cli(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()

photo = [*spec["photo"], "--data-dir", tmp / "photos"]
report = {
    "odd_batch": cli("train", *photo, "--batch-size", "3", "-o", tmp / "odd"),
    "not_empty": cli("train", *photo, "-o", tmp / "full"),
    "one_process_only": cli("train", "--arch", "gaussian", "-o", tmp / "gaussian"),
}
digits = np.load(tmp / "digits.npz")
train(TrainConfig(**spec["mnist"]), tmp / "mnist", data=(digits["train"], digits["valid"]))
report["photo_epoch_1"] = cli("train", *photo, "--max-epochs", "1", "-o", tmp / "photo")
report["photo_resumed"] = cli("train", "--resume", "--max-epochs", "2", "-o", tmp / "photo")
(tmp / f"report-{os.environ['RANK']}.json").write_text(json.dumps(report))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_photos(root, seed=0):
    """Random 8-bit RGB images: three to train on and two to validate (256², the validation crop)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("train", 3), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (256, 256 + 16 * i, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i}.png")


@pytest.fixture(scope="module")
def torchrun(tmp_path_factory):
    """The directory of the two-process run: its outputs and each rank's report {case: (exit code, stderr)}."""
    tmp = tmp_path_factory.mktemp("ddp")
    np.savez(tmp / "digits.npz", train=synthetic_binary(64, 1), valid=synthetic_binary(32, 2))
    write_photos(tmp / "photos")
    (tmp / "full").mkdir()
    (tmp / "full" / "notes.txt").write_text("keep me")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    (tmp / "worker.py").write_text(WORKER)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                           tmp / "worker.py", tmp, json.dumps({"mnist": MNIST, "photo": PHOTO})],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, [json.loads((tmp / f"report-{rank}.json").read_text()) for rank in (0, 1)]


def run_cli(*args) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        main([str(a) for a in args])


def max_difference(a, b) -> float:
    wa, wb = load_file(str(a / WEIGHTS)), load_file(str(b / WEIGHTS))
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def test_mnist_two_processes_match_one(torchrun, tmp_path):
    run, _ = torchrun
    digits = np.load(run / "digits.npz")
    data = (digits["train"], digits["valid"])
    train(TrainConfig(**MNIST), tmp_path / "one", data=data)
    train(TrainConfig(**{**MNIST, "seed": 1}), tmp_path / "seed1", data=data)
    assert max_difference(run / "mnist", tmp_path / "one") < TOLERANCE
    assert max_difference(run / "mnist", tmp_path / "seed1") > 100 * TOLERANCE
    logs = [[json.loads(line) for line in (d / "train-log.jsonl").read_text().splitlines()]
            for d in (run / "mnist", tmp_path / "one")]
    for two, one in zip(*logs, strict=True):  # the logged metrics are the global batch's
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
        assert two["valid_loss"] == pytest.approx(one["valid_loss"], rel=1e-5)


def test_photo_two_processes_resumed_match_one(torchrun, tmp_path):
    run, reports = torchrun
    for report in reports:
        assert report["photo_epoch_1"][0] == 0 and report["photo_resumed"][0] == 0
    photos = ["--data-dir", run / "photos", "--max-epochs", "2"]
    run_cli("train", *PHOTO, *photos, "-o", tmp_path / "one")
    run_cli("train", *PHOTO, *photos, "--seed", "1", "-o", tmp_path / "seed1")
    assert max_difference(run / "photo", tmp_path / "one") < TOLERANCE
    assert max_difference(run / "photo", tmp_path / "seed1") > 100 * TOLERANCE
    assert len((run / "photo" / "train-log.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("case, message", [
    ("odd_batch", "the batch size 3 is the global batch of the 2 processes and must be divisible by 2"),
    ("not_empty", "is not empty; pass --force"),
    ("one_process_only", "gaussian trains in one process only"),
])
def test_refusals_are_one_line_from_rank_0(torchrun, case, message):
    run, reports = torchrun
    (code0, err0), (code1, err1) = (report[case] for report in reports)
    assert code0 == code1 == 1
    assert err1 == ""  # the other process exits without repeating it
    lines = err0.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latcomp: error: ") and message in lines[0], err0
    assert sorted(p.name for p in (run / "full").iterdir()) == ["notes.txt"]
    assert not (run / "odd").exists() and not (run / "gaussian").exists()


@pytest.mark.parametrize("model, x", [
    (LatticeVAE(hidden=8, latent=4), torch.rand(5, 784)),
    (PhotoFactorized(channels=8, latent=8), torch.rand(2, 3, 48, 32)),
])
def test_noise_shape_is_the_draw_of_forward(model, x):
    """The training loop draws v with noise_shape for the global batch: exactly what forward draws itself."""
    own = model(x, generator=torch.Generator().manual_seed(7))
    v = torch.rand(model.noise_shape(x), generator=torch.Generator().manual_seed(7), dtype=x.dtype)
    given = model(x, v=v)
    assert torch.equal(own.loss, given.loss)
