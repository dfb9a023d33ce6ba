"""Model files are safetensors + JSON, versioned, and never executed."""

import hashlib
import json

import pytest
import torch

from latcomp.modelfile import CONFIG, WEIGHTS, ModelFileError, load_model, load_weights_numpy, read_config, save_model
from latcomp.nn.models import LatticeVAE


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = LatticeVAE(hidden=8, latent=3, lam=0.5)
    save_model(model, tmp_path, training={"note": "test"})
    return model, tmp_path


def test_round_trip(saved):
    model, path = saved
    loaded = load_model(path)
    assert loaded.hparams == model.hparams
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    config = read_config(path)
    assert config["format_version"] == 1 and config["training"] == {"note": "test"}
    arrays, digest = load_weights_numpy(path)
    assert arrays["codec.lattice.delta"].dtype.name == "float32"
    assert digest == hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()


def test_the_weights_file_is_safetensors_not_pickle(saved):
    _, path = saved
    raw = (path / WEIGHTS).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    assert "log_delta" in header and header["log_delta"]["dtype"] == "F32"
    assert b"\x80\x04" not in raw[:2]  # no pickle protocol marker


def test_unknown_version_is_a_clear_error(saved):
    _, path = saved
    config = json.loads((path / CONFIG).read_text())
    config["format_version"] = 99
    (path / CONFIG).write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(path)


@pytest.mark.parametrize("damage", ["garbage", "pickle", "missing"])
def test_damaged_weights_are_a_clear_error(saved, damage):
    _, path = saved
    weights = path / WEIGHTS
    if damage == "missing":
        weights.unlink()
    elif damage == "pickle":
        torch.save({"log_delta": torch.zeros(3)}, weights)  # a pickle must be refused, not executed
    else:
        weights.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match=str(weights.name)):
        load_model(path)
    with pytest.raises(ModelFileError):
        load_weights_numpy(path)


def test_weights_that_do_not_fit_the_config(saved, tmp_path_factory):
    _, path = saved
    other = tmp_path_factory.mktemp("other")
    save_model(LatticeVAE(hidden=9, latent=3), other)
    (path / WEIGHTS).write_bytes((other / WEIGHTS).read_bytes())
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(path)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such model config"):
        read_config(tmp_path / "nope")
