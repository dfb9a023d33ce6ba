"""Encoder effort for photos (latcomp.photo.effort): refined files decode with the ordinary decoder, the real
objective does not increase, effort 0 is today's encoder, one line without torch or above the size limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from codec_fixtures import make_photo_model
from conftest import run_cli
from hyper_fixtures import lively_model

from latcomp.errors import CodecError, InputError, LimitError
from latcomp.modelfile import read_config, save_model
from latcomp.photo import codec, effort

DIGIT = Path(__file__).resolve().parents[1] / "docs" / "examples" / "digit.png"
NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
from latcomp.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module", params=["factorized", "hyperprior"])
def model_dir(request, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp(f"effort-{request.param}")
    if request.param == "factorized":
        return make_photo_model(directory, lattice="e8")
    save_model(lively_model(3), directory)
    return directory


def _image(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """A smooth colour image with noise."""
    yy, xx = np.mgrid[:height, :width]
    base = 128 + 90 * np.sin(yy / 6.0)[..., None] * np.cos(xx / 9.0)[..., None] * np.array([1.0, 0.5, -0.6])
    return np.clip(base + np.random.default_rng(seed).normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _synthesized(model_dir: Path) -> np.ndarray:
    """A 48×64 image that the model's synthesis can make (its output for a random latent): the random encoder
    is far from the best latent, so refining it can gain much, as it would for a trained model's weak guess."""
    from latcomp.runtime.model import load_model

    net = load_model(model_dir).net
    y = np.random.default_rng(0).normal(0, 3, (12, net.latent.dim)) * np.asarray(net.latent.scale)
    return np.rint(np.clip(net.decode(y, 3, 4).transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def _real_objective(data: bytes, image: np.ndarray, model_dir: Path) -> float:
    """λ·MSE (0–255 scale) of the ordinary decoder's pixels + bits per pixel of the whole file: what a file costs
    under the model's objective, measured from the file alone."""
    decoded = codec.decompress(data, model_dir).astype(np.float64)
    lam = read_config(model_dir)["hparams"]["lam"]
    return lam * float(np.mean((decoded - image) ** 2)) + 8 * len(data) / (image.shape[0] * image.shape[1])


def test_effort_lowers_the_real_objective_and_the_file_decodes_as_any_other(model_dir):
    image = _synthesized(model_dir)
    plain = codec.compress(image, model_dir, seed=11)
    calls = []
    refined = codec.compress(image, model_dir, seed=11, effort=12, progress=lambda *a: calls.append(a))
    assert refined != plain and calls[-1] == ("effort", 12, 12)
    assert codec.decompress(refined, model_dir).shape == image.shape
    assert _real_objective(refined, image, model_dir) < _real_objective(plain, image, model_dir)
    assert codec.compress(image, model_dir, seed=11, effort=12) == refined  # deterministic


@pytest.mark.parametrize("method", effort.METHODS)
def test_each_method_gains_with_larger_steps(model_dir, method):
    image = _synthesized(model_dir)
    plain = _real_objective(codec.compress(image, model_dir, seed=11), image, model_dir)
    refined = codec.compress(image, model_dir, seed=11, effort=effort.Effort(12, method, learning_rate=0.3))
    assert _real_objective(refined, image, model_dir) < 0.97 * plain


def test_effort_zero_is_the_encoder_of_today(model_dir):
    """Effort 0 never takes torch's path: the bytes are those of the plain call."""
    image = _image(seed=1)
    assert codec.compress(image, model_dir, seed=5, effort=0) == codec.compress(image, model_dir, seed=5)


@pytest.mark.parametrize("name", ["photo-q3.rgb.lat", "photo-hyper-q3.gray.lat"])
def test_effort_zero_writes_the_committed_golden_files(name):
    """The shipped factorized and hyperprior models with effort 0 write the bytes committed before effort existed."""
    golden = DIGIT.parents[2] / "tests" / "golden"
    case = next(c for c in json.loads((golden / "manifest.json").read_text())["files"] if c["file"] == name)
    inputs = np.load(golden / "inputs.npz")
    images = [inputs[image] for image in case["images"]]
    seed = 0x5EED_1A7C_0123_4567  # tests/golden/make.py's SEED
    blob = codec.compress(images if len(images) > 1 else images[0], DIGIT.parents[2] / case["model"], seed=seed,
                          effort=0)
    assert blob == (golden / name).read_bytes()


def _levels(m, images: list[np.ndarray], seed: int) -> list[effort.Level]:
    """The levels the codec of ``m`` refines for ``images`` (the main latent; a hyperprior's hyper-latent too)."""
    from latcomp.families.photo import latent_size
    from latcomp.photo.codec import padded
    from latcomp.photo.hyper_codec import hyper_size

    shapes = [latent_size(*im.shape[:2]) for im in images]
    ys = [m.net.encode_pixels(padded(im)) for im in images]
    y = np.concatenate(ys)
    levels = [effort.Level(y, m.latent.seeded_dither(seed, len(y)), m.latent, shapes)]
    if hasattr(m.net, "hyper"):
        z = np.concatenate([m.net.hyper_encode(rows, *shape) for rows, shape in zip(ys, shapes, strict=True)])
        levels.append(effort.Level(z, m.net.hyper.seeded_dither(seed + 1, len(z)), m.net.hyper,
                                   [hyper_size(*shape) for shape in shapes]))
    return levels


def _part(level: effort.Level, image: int) -> effort.Level:
    """The rows of one image of ``level``."""
    counts = [int(np.prod(shape)) for shape in level.shapes]
    a = sum(counts[:image])
    rows = slice(a, a + counts[image])
    return effort.Level(level.rows[rows], level.dither[rows], level.codec, level.shapes[image:image + 1])


def test_a_batch_is_refined_image_by_image(model_dir):
    """The refinement of each image of a batch is that of the image alone, given the same dithers."""
    from latcomp.runtime.model import load_model

    m = load_model(model_dir)
    images = [_synthesized(model_dir), np.ascontiguousarray(_synthesized(model_dir)[::-1, 5:])]
    steps = effort.Effort(3, learning_rate=0.3)
    levels = _levels(m, images, seed=7)
    both = effort.refine(m, images, levels, steps)
    alone = [effort.refine(m, images[i:i + 1], [_part(level, i) for level in levels], steps) for i in (0, 1)]
    for j in range(len(levels)):
        np.testing.assert_array_equal(both[j], np.concatenate([alone[0][j], alone[1][j]]))
    assert not np.array_equal(both[0], levels[0].rows)
    assert all(np.array_equal(rows, level.rows) for rows, level in zip(effort.refine(m, images, levels, 0), levels,
                                                                         strict=True))


def test_bad_effort_and_large_images_are_refused(model_dir, monkeypatch):
    image = _image()
    calls = []  # refused before any work: no image is transformed
    for bad in (-1, 1.5, effort.MAX_EFFORT + 1, effort.Effort(2, "sideways"), effort.Effort(2, learning_rate=0)):
        with pytest.raises(InputError):
            codec.compress(image, model_dir, seed=1, effort=bad, progress=lambda *a: calls.append(a))
    monkeypatch.setattr(effort, "MAX_EFFORT_PIXELS", image.shape[0] * image.shape[1] - 1)
    with pytest.raises(LimitError, match="encoder effort takes images of at most"):
        codec.compress([image[:20], image], model_dir, seed=1, effort=1, progress=lambda *a: calls.append(a))
    assert calls == []


def test_without_torch_effort_is_one_error(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    with pytest.raises(CodecError, match="encoder effort needs torch"):
        codec.compress(_image(), model_dir, seed=1, effort=2)


def test_cli_effort(tmp_path, capsys, model_dir):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(_image()).save(src)
    out = tmp_path / "x.lat"
    code, err = run_cli(capsys, "encode", src, "-o", out, "--model", model_dir, "--effort", 3, "--seed", 4)
    assert code == 0, err
    assert out.read_bytes() == codec.compress(_image(), model_dir, seed=4, effort=3)
    code, err = run_cli(capsys, "decode", out, "-o", tmp_path / "x.png", "--model", model_dir)
    assert code == 0 and Image.open(tmp_path / "x.png").size == (56, 40)
    code, err = run_cli(capsys, "encode", DIGIT, "-o", tmp_path / "d.lat", "--effort", 3)
    assert code != 0 and err.startswith("latcomp: error: --effort applies to photos") and err.count("\n") == 1



def test_cli_without_torch_says_so_in_one_line_and_decodes_a_refined_file(tmp_path):
    """Fresh processes without torch: encode --effort is one line and no file; a refined file decodes."""
    from PIL import Image

    model = make_photo_model(tmp_path / "model", lattice="e8")
    Image.fromarray(_image()).save(tmp_path / "in.png")
    (tmp_path / "r.lat").write_bytes(codec.compress(_image(), model, seed=3, effort=2))
    runs = [["encode", "in.png", "-o", "x.lat", "--model", str(model), "--effort", "2"],
            ["decode", "r.lat", "-o", "r.png", "--model", str(model)]]
    encode, decode = (subprocess.run([sys.executable, "-c", NO_TORCH, *args], cwd=tmp_path, capture_output=True,
                                     text=True, timeout=120) for args in runs)
    assert encode.returncode != 0 and not (tmp_path / "x.lat").exists()
    assert encode.stderr.startswith("latcomp: error: encoder effort needs torch") and encode.stderr.count("\n") == 1
    assert decode.returncode == 0, decode.stderr
    expected = codec.decompress((tmp_path / "r.lat").read_bytes(), model)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r.png")), expected)
