"""The family specs: one registry that every table of architectures reads, with shapes that match the torch modules."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from latcomp.families import FamilyError, check_hparams, families, family
from latcomp.families.shapes import CODEC_PREFIX
from latcomp.runtime.model import build_numpy_model

NAMES = sorted(families())
CASES = [(name, i) for name in NAMES for i in range(len(families()[name].examples))]


def _torch_model(name, hp):
    torch.manual_seed(0)
    return family(name).torch_module()(**hp)


def test_every_family_has_examples_and_a_known_modality():
    from latcomp.modalities import MODALITIES

    for name, spec in families().items():
        assert spec.name == name and spec.examples, name
        assert spec.modality in MODALITIES, name


@pytest.mark.parametrize("name,example", CASES)
def test_tensor_shapes_are_the_torch_modules(name, example):
    """The torch-free shapes of the spec are what the torch module saves, for several hyper-parameters."""
    hp = dict(families()[name].examples[example])
    check_hparams(family(name), hp)
    model = _torch_model(name, hp)
    check_hparams(family(name), model.hparams)  # what a trained model writes passes the schema
    saved = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved.update({CODEC_PREFIX + k: tuple(v.shape) for k, v in model.codec_tensors().items()})
    assert family(name).tensors(model.hparams) == saved


@pytest.mark.parametrize("name", [n for n in NAMES if families()[n].runtime])
def test_the_runtime_builds_from_the_torch_modules_tensors(name):
    hp = dict(families()[name].examples[0])
    model = _torch_model(name, hp)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    weights.update({CODEC_PREFIX + k: v.numpy() for k, v in model.codec_tensors().items()})
    net = build_numpy_model(name, weights, model.hparams)
    # the latent codec is built from the frozen codec tensors, on the model's lattice
    np.testing.assert_array_equal(np.asarray(net.latent.delta, np.float32), weights[CODEC_PREFIX + "lattice.delta"])
    assert net.latent.lattice.spec == model.hparams["lattice"]


def test_hparams_outside_the_spec_are_refused():
    spec = family("lattice-vae")
    good = dict(spec.examples[0])
    for bad, match in [({**good, "hidden": 0}, "hidden must be an integer from 1"),
                       ({**good, "lam": float("inf")}, "finite positive"),
                       ({k: v for k, v in good.items() if k != "latent"}, "missing latent"),
                       ({**good, "levels": 2}, "unexpected"), ({**good, "lattice": "e8"}, "hparams.lattice")]:
        with pytest.raises(FamilyError, match=match):
            check_hparams(spec, bad)
    with pytest.raises(FamilyError, match="multiple of 2"):
        check_hparams(family("st-vector"), {**good, "latent": 3, "levels": 2})
    with pytest.raises(FamilyError, match="unknown architecture 'transformer'"):
        family("transformer")


def test_reading_the_registry_imports_no_torch_and_no_network():
    code = ("import sys; from latcomp.families import families; families(); "
            "assert not {'torch', 'latcomp.nn.models', 'latcomp.digits.network'} & set(sys.modules), sys.modules")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_family_with_a_codec_of_its_own_is_coded_by_it_through_the_modality(tmp_path):
    """latcomp.photo.codec hands a photo-hyperprior model to its family's codec: the same bytes and images."""
    from hyper_fixtures import lively_model

    from latcomp.modelfile import save_model
    from latcomp.photo import codec as photo_codec
    from latcomp.photo import hyper_codec

    save_model(lively_model(1), tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    blob = photo_codec.compress(image, tmp_path, seed=7)
    assert blob == hyper_codec.compress(image, tmp_path, seed=7)
    assert np.array_equal(photo_codec.decompress(blob, tmp_path), hyper_codec.decompress(blob, tmp_path))


def test_the_model_id_covers_the_further_files_a_family_names(tmp_path, monkeypatch):
    """A family whose runtime reads more than the weights (a vocabulary) has them in its identity."""
    import dataclasses

    from latcomp.modelfile import ModelFileError, save_model
    from latcomp.runtime.model import load_model

    save_model(_torch_model("lattice-vae", dict(family("lattice-vae").examples[1])), tmp_path)
    weights_only = load_model(tmp_path).model_id
    monkeypatch.setitem(families(), "lattice-vae", dataclasses.replace(family("lattice-vae"), files=("words.json",)))
    with pytest.raises(ModelFileError, match="words.json"):
        load_model(tmp_path)
    (tmp_path / "words.json").write_text('["a", "b"]')
    first = load_model(tmp_path).model_id
    (tmp_path / "words.json").write_text('["a", "cd"]')  # another size: the load cache sees the change
    second = load_model(tmp_path).model_id
    assert len({weights_only, first, second}) == 3
