"""One schema for model files: every loader refuses a bad config or bad weights with one line naming the file."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, synthetic_binary
from safetensors.numpy import load_file, save_file

from latcomp import codec
from latcomp.cli import ARCHITECTURES as CLI_ARCHITECTURES
from latcomp.measure.bench import run_bench
from latcomp.modelfile import (
    CONFIG,
    DEFAULT_MODEL,
    WEIGHTS,
    ModelFileError,
    load_model,
    load_weights_numpy,
    read_config,
    save_model,
)
from latcomp.nn.registry import MODELS, build_model
from latcomp.schema import ARCHITECTURES, check_hparams, expected_tensors

SMALL = {"lattice-vae": {"lattice": "e8*1+z*4"}, "gaussian": {}, "gaussian-lattice": {}, "st-scalar": {"levels": 3},
         "st-vector": {"levels": 3}}


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    save_model(build_model("lattice-vae", data_dim=784, hidden=8, latent=4, lam=0.5), tmp_path)
    return tmp_path


def _loaders(directory):
    """Every way a model directory is loaded: torch, numpy, and the codec."""
    return [lambda: load_model(directory), lambda: load_weights_numpy(directory),
            lambda: codec.load_model(directory)]


def _refused_by_every_loader(directory, path, match):
    for load in _loaders(directory):
        with pytest.raises(ModelFileError, match=match) as info:
            load()
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, message


# --------------------------------------------------------------------------- the schema fits the models


def test_schema_knows_exactly_the_registered_architectures():
    assert set(ARCHITECTURES) == set(MODELS)
    assert CLI_ARCHITECTURES == tuple(sorted(MODELS))


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_expected_tensors_are_what_the_models_save(arch, tmp_path):
    model = build_model(arch, data_dim=20, hidden=6, latent=12, lam=2.0, **SMALL[arch])
    check_hparams(arch, model.hparams)
    saved = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved.update({"codec." + k: tuple(v.shape) for k, v in model.codec_tensors().items()})
    assert expected_tensors(arch, model.hparams) == saved
    save_model(model, tmp_path)
    assert type(load_model(tmp_path)) is MODELS[arch]


def test_the_shipped_models_pass():
    for directory in [DEFAULT_MODEL, *sorted((REPO / "models").glob("mnist-*"))]:
        if (directory / WEIGHTS).exists():
            load_weights_numpy(directory)
    read_config(REPO / "models" / "figure4" / "st-vector-M4-lam1.0")


# --------------------------------------------------------------------------- config.json


CONFIG_CASES = {
    "unknown architecture": (lambda c: {**c, "architecture": "transformer"}, "unknown architecture 'transformer'"),
    "architecture not a string": (lambda c: {**c, "architecture": ["lattice-vae"]}, "unknown architecture"),
    "hparams not an object": (lambda c: {**c, "hparams": [1, 2]}, "hparams must be an object"),
    "missing key": (lambda c: {**c, "hparams": {k: v for k, v in c["hparams"].items() if k != "hidden"}},
                    "missing hidden"),
    "extra key": (lambda c: {**c, "hparams": {**c["hparams"], "dropout": 0.1}}, "unexpected \\['dropout'\\]"),
    "float latent": (lambda c: {**c, "hparams": {**c["hparams"], "latent": 4.0}}, "hparams.latent must be an integer"),
    "bool hidden": (lambda c: {**c, "hparams": {**c["hparams"], "hidden": True}}, "hparams.hidden must be an integer"),
    "zero latent": (lambda c: {**c, "hparams": {**c["hparams"], "latent": 0}}, "hparams.latent"),
    "latent too large": (lambda c: {**c, "hparams": {**c["hparams"], "latent": 4097}}, "from 1 to 4096"),
    "hidden too large": (lambda c: {**c, "hparams": {**c["hparams"], "hidden": 65537}}, "from 1 to 65536"),
    "data_dim too large": (lambda c: {**c, "hparams": {**c["hparams"], "data_dim": 2**20 + 1}}, "hparams.data_dim"),
    "NaN lam": (lambda c: {**c, "hparams": {**c["hparams"], "lam": math.nan}}, "finite positive"),
    "negative lam": (lambda c: {**c, "hparams": {**c["hparams"], "lam": -1}}, "finite positive"),
    "string lam": (lambda c: {**c, "hparams": {**c["hparams"], "lam": "1"}}, "finite positive"),
    "unknown lattice": (lambda c: {**c, "hparams": {**c["hparams"], "lattice": "e9"}}, "hparams.lattice"),
    "lattice of another dimension": (lambda c: {**c, "hparams": {**c["hparams"], "lattice": "e8"}}, "divide"),
    "lattice not a string": (lambda c: {**c, "hparams": {**c["hparams"], "lattice": 8}}, "spec string"),
    "levels on a lattice VAE": (lambda c: {**c, "hparams": {**c["hparams"], "levels": 4}}, "unexpected"),
    "unknown version": (lambda c: {**c, "format_version": 2}, "version 2 is not supported"),
    "unknown top-level key": (lambda c: {**c, "exec": "rm -rf /"}, "unexpected keys"),
    "training not an object": (lambda c: {**c, "training": []}, "training must be an object"),
    "not a config": (lambda c: [c], "not a latcomp model config"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_is_one_line_naming_the_file(model_dir, case):
    edit, match = CONFIG_CASES[case]
    path = model_dir / CONFIG
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    _refused_by_every_loader(model_dir, path, match)


@pytest.mark.parametrize("text,match", [
    ('{"training": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than 16"),
    (" " * (1 << 20) + "{}", "more than the limit"),
    ("{\"format\": \"latcomp-model\", ", "not valid JSON"),
])
def test_deep_huge_or_broken_json_is_refused_without_parsing_it(model_dir, text, match):
    (model_dir / CONFIG).write_text(text)
    _refused_by_every_loader(model_dir, model_dir / CONFIG, match)


def test_config_that_is_not_utf8(model_dir):
    (model_dir / CONFIG).write_bytes(b"\xff\xfe{}")
    _refused_by_every_loader(model_dir, model_dir / CONFIG, "not UTF-8")


def _load_in_subprocess(directory):
    """Load in a fresh interpreter with a deadline, so that a hang fails the test instead of stalling it."""
    return subprocess.run([sys.executable, "-c", "import sys; from latcomp.modelfile import load_weights_numpy; "
                           "load_weights_numpy(sys.argv[1])", str(directory)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", [CONFIG, WEIGHTS])
@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory"])
def test_only_regular_files_are_read(model_dir, name, special):
    path = model_dir / name
    path.unlink()
    if special == "fifo":
        os.mkfifo(path)
    elif special == "directory":
        path.mkdir()
    else:
        path.symlink_to(special)
    proc = _load_in_subprocess(model_dir)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and last in (f"latcomp.modelfile.ModelFileError: {path}: {problem}"
                                             for problem in ("not a regular file", "Is a directory")), proc.stderr


def test_a_symlink_to_a_regular_file_is_fine(model_dir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "weights"
    (model_dir / WEIGHTS).rename(elsewhere)
    (model_dir / WEIGHTS).symlink_to(elsewhere)
    load_weights_numpy(model_dir)


# --------------------------------------------------------------------------- weights


def _nan(t):
    t = dict(t)
    t["decoder.0.h.weight"] = t["decoder.0.h.weight"].copy()
    t["decoder.0.h.weight"][1, 2] = np.nan
    return t


WEIGHT_CASES = {
    "NaN weight": (_nan, "decoder.0.h.weight has non-finite values"),
    "infinite codec scale": (lambda t: {**t, "codec.prior.b": np.full_like(t["codec.prior.b"], np.inf)},
                             "codec.prior.b has non-finite"),
    "float64 tensor": (lambda t: {**t, "log_b": t["log_b"].astype(np.float64)}, "log_b is float64, not float32"),
    "wrong shape": (lambda t: {**t, "encoder.2.bias": np.zeros(5, np.float32)}, "encoder.2.bias has shape"),
    "missing tensor": (lambda t: {k: v for k, v in t.items() if k != "log_delta"}, "missing \\['log_delta'\\]"),
    "extra tensor": (lambda t: {**t, "payload": np.zeros(3, np.float32)}, "unexpected \\['payload'\\]"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_CASES))
def test_bad_weights_are_one_line_naming_the_file(model_dir, case):
    edit, match = WEIGHT_CASES[case]
    path = model_dir / WEIGHTS
    save_file(edit(load_file(str(path))), str(path))
    _refused_by_every_loader(model_dir, path, match)


def test_weights_larger_than_the_config_allows(model_dir):
    path = model_dir / WEIGHTS
    with open(path, "ab") as f:
        f.truncate(path.stat().st_size + (2 << 20))
    _refused_by_every_loader(model_dir, path, "more than the limit")


def test_nan_model_is_refused_by_bench_and_codec(model_dir):
    path = model_dir / WEIGHTS
    save_file(_nan(load_file(str(path))), str(path))
    digits = synthetic_binary(4)
    with pytest.raises(ModelFileError, match="non-finite"):  # before any evaluation, not only when coding
        run_bench([model_dir], is_samples=2, data=digits, bitstream=False)
    with pytest.raises(ModelFileError, match="non-finite"):
        codec.compress(digits, model_dir)


# --------------------------------------------------------------------------- packaging and torch


def test_the_default_model_is_installed_with_the_package():
    """A source tree uses models/; a wheel installs the same files as data files (see .ci/run)."""
    tomllib = pytest.importorskip("tomllib")
    assert DEFAULT_MODEL == REPO / "models" / "mnist-lattice-vae"
    data_files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    installed = {REPO / path for path in data_files["share/latcomp/models/mnist-lattice-vae"]}
    assert installed == {DEFAULT_MODEL / CONFIG, DEFAULT_MODEL / WEIGHTS}


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
from latcomp.cli import main
main(sys.argv[1:])
"""


def test_encode_and_decode_need_no_torch(tmp_path):
    digit = REPO / "docs" / "examples" / "digit.png"
    for args in (["encode", str(digit), "-o", "d.lat", "--lossless"], ["decode", "d.lat", "-o", "d.png"]):
        proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d.png").read_bytes() and _png_pixels(tmp_path / "d.png") == _png_pixels(digit)


def test_train_without_torch_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, "train", "-o", "m"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.startswith("latcomp: error: this command needs torch") and proc.stderr.count("\n") == 1


def _png_pixels(path):
    from PIL import Image

    return np.asarray(Image.open(path)).tolist()
