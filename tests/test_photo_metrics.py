"""PSNR, MS-SSIM and BD-rate (latcomp.measure.photo_metrics), the peer codecs and reports of latcomp.measure.rd and
the photo-peers benchmark script, on synthetic images."""

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from benchmarks import photo_peers
from latcomp.data import DataError
from latcomp.measure import kodak, peers, rd
from latcomp.measure.photo_metrics import bd_rate, gaussian_window, ms_ssim, ms_ssim_db, psnr_rgb


def synthetic_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour 'photo': a shared luminance pattern, gentle colour gradients, mild noise; uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    fx, fy = rng.uniform(1, 4, size=2)
    luma = 0.5 + 0.3 * np.sin(2 * np.pi * fx * x) * np.cos(2 * np.pi * fy * y)
    tint = rng.uniform(-0.1, 0.1, size=(2, 3))
    rgb = luma[..., None] + tint[0] * x[..., None] + tint[1] * y[..., None]
    return np.clip((rgb + rng.normal(0, 0.02, rgb.shape)) * 255, 0, 255).astype(np.uint8)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- PSNR


def test_psnr_known_values():
    a = np.full((8, 9, 3), 100, np.uint8)
    assert psnr_rgb(a, a) == math.inf
    assert psnr_rgb(a, a + 5) == pytest.approx(10 * math.log10(255**2 / 25))
    b = a.copy()
    b[0, 0, 0] = 0  # one error of 100 over all 216 samples
    assert psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 * 216 / 100**2))
    assert psnr_rgb(a[..., 0], a[..., 0] + 5) == pytest.approx(psnr_rgb(a, a + 5))
    with pytest.raises(ValueError, match="shape"):
        psnr_rgb(a, a[:, :8])


# --------------------------------------------------------------------------- MS-SSIM


def test_ms_ssim_properties():
    img = synthetic_photo(176, 200)
    assert ms_ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    worse = [ms_ssim(img, noisy(img, s)) for s in (2, 8, 30)]
    assert 1 > worse[0] > worse[1] > worse[2] > 0
    other = jpeg_roundtrip(img, 30)
    assert ms_ssim(img, other) == pytest.approx(ms_ssim(other, img), abs=1e-12)
    # RGB: the mean of the per-channel (grayscale) values
    assert ms_ssim(img, other) == pytest.approx(np.mean([ms_ssim(img[..., c], other[..., c]) for c in range(3)]),
                                                abs=1e-12)
    assert ms_ssim_db(0.99) == pytest.approx(20.0)


def test_ms_ssim_rejects_small_or_mismatched_images():
    img = synthetic_photo(160, 300)
    with pytest.raises(ValueError, match="160"):
        ms_ssim(img, img)
    with pytest.raises(ValueError, match="shape"):
        ms_ssim(synthetic_photo(170, 170), synthetic_photo(171, 170))


@pytest.mark.parametrize("shape", [(176, 200), (181, 167)])  # even and odd sides (padded pooling)
def test_ms_ssim_matches_pytorch_msssim(shape):
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("pytorch_msssim", reason="pytorch_msssim not installed").ms_ssim
    img = synthetic_photo(*shape)
    for other in (jpeg_roundtrip(img, 20), noisy(img, 10)):
        ours = ms_ssim(img, other)

        def t(a, dtype):
            return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].to(dtype)

        # as CompressAI calls it (float32, its float32 window): agreement to float32 precision
        default = reference(t(img, torch.float32), t(other, torch.float32), data_range=255).item()
        assert ours == pytest.approx(default, abs=1e-5)
        # float64 with the same window: the same computation
        win = torch.from_numpy(gaussian_window()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
        exact = reference(t(img, torch.float64), t(other, torch.float64), data_range=255, win=win).item()
        assert ours == pytest.approx(exact, abs=1e-12)


# --------------------------------------------------------------------------- BD-rate


def classic_bd_rate(rate_a, psnr_a, rate_b, psnr_b):
    """Bjøntegaard's original: log-rate as a least-squares cubic in PSNR, integrated over the common PSNR range."""
    pa, pb = np.polyfit(psnr_a, np.log(rate_a), 3), np.polyfit(psnr_b, np.log(rate_b), 3)
    lo, hi = max(min(psnr_a), min(psnr_b)), min(max(psnr_a), max(psnr_b))
    ia, ib = np.polyint(pa), np.polyint(pb)
    mean_diff = (np.polyval(ib, hi) - np.polyval(ib, lo) - np.polyval(ia, hi) + np.polyval(ia, lo)) / (hi - lo)
    return 100 * (math.exp(mean_diff) - 1)


# A JPEG-like curve (mean bpp, mean PSNR) and a better codec sampled at other qualities.
RATE_A = np.array([0.23, 0.33, 0.50, 0.64, 0.75, 0.86, 0.98, 1.16, 1.47, 2.20, 3.17])
PSNR_A = np.array([23.9, 27.1, 29.8, 31.2, 32.2, 33.0, 33.7, 34.7, 36.1, 38.7, 41.2])
RATE_B = np.array([0.08, 0.11, 0.16, 0.23, 0.35, 0.53, 0.78, 1.09, 1.47, 2.20])
PSNR_B = np.array([26.3, 27.4, 28.8, 30.3, 32.0, 34.1, 36.0, 38.0, 39.7, 41.7])


def test_bd_rate_equal_quality_rate_scaled_is_exact():
    pytest.importorskip("bjontegaard")
    for method in ("cubic", "pchip", "akima"):
        assert bd_rate(RATE_A, PSNR_A, 0.8 * RATE_A, PSNR_A, method=method) == pytest.approx(-20.0, abs=1e-9)
        assert bd_rate(RATE_A, PSNR_A, RATE_A, PSNR_A, method=method) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_analytic_curves():
    pytest.importorskip("bjontegaard")
    # log-rate an exact cubic of PSNR: B at other PSNRs with 0.8× the rate is -20% for the cubic fit
    def log_rate(q):
        return -6 + 0.3 * (q - 20) - 0.004 * (q - 20) ** 2 + 1e-4 * (q - 20) ** 3

    qa, qb = np.linspace(25, 40, 8), np.linspace(27, 43, 6)
    assert bd_rate(np.exp(log_rate(qa)), qa, 0.8 * np.exp(log_rate(qb)), qb) == pytest.approx(-20.0, abs=1e-8)
    # log10-rate linear in PSNR, B = A shifted up by d dB: every interpolation gives 10^(-b·d) - 1
    b, d = 0.1, 1.5
    expected = 100 * (10 ** (-b * d) - 1)
    for method in ("cubic", "pchip", "akima"):
        got = bd_rate(10 ** (b * qa - 4), qa, 10 ** (b * (qb - d) - 4), qb, method=method)
        assert got == pytest.approx(expected, abs=1e-8)


def test_bd_rate_agrees_with_classic_implementation():
    pytest.importorskip("bjontegaard")
    ours = bd_rate(RATE_A, PSNR_A, RATE_B, PSNR_B)
    assert ours == pytest.approx(classic_bd_rate(RATE_A, PSNR_A, RATE_B, PSNR_B), abs=1e-9)
    assert -60 < ours < -30
    perm = np.random.default_rng(0).permutation(len(RATE_B))  # order of the points does not matter
    assert bd_rate(RATE_A, PSNR_A, RATE_B[perm], PSNR_B[perm]) == pytest.approx(ours, abs=1e-9)
    back = bd_rate(RATE_B, PSNR_B, RATE_A, PSNR_A)  # swapping the curves inverts the rate ratio
    assert (1 + ours / 100) * (1 + back / 100) == pytest.approx(1.0, abs=1e-9)


def test_bd_rate_invalid_input():
    pytest.importorskip("bjontegaard")
    with pytest.warns(UserWarning, match="overlap"):
        assert math.isnan(bd_rate(RATE_A, PSNR_A, RATE_A, PSNR_A + 30))
    with pytest.raises(ValueError, match="positive"):
        bd_rate(RATE_A, PSNR_A, -RATE_A, PSNR_A)
    with pytest.raises(ValueError, match="matching"):
        bd_rate(RATE_A, PSNR_A, RATE_A[:3], PSNR_A)


# --------------------------------------------------------------------------- codecs

MAGIC = {"JPEG": b"\xff\xd8", "JPEG (optimize)": b"\xff\xd8", "WebP": b"RIFF", "AVIF": b"ftypavif",
         "JPEG XL": b"\xff\x0a"}


def codec_or_skip(name: str) -> peers.Codec:
    try:
        return peers.CODECS[name]()
    except peers.CodecUnavailable as e:
        pytest.skip(f"{name}: {e}")


@pytest.mark.parametrize("name", list(peers.CODECS))
def test_codec_round_trip(name):
    codec = codec_or_skip(name)
    img = synthetic_photo(48, 64)
    low, mid, high = (codec.settings[i] for i in (0, len(codec.settings) // 2, -1))
    data = codec.encode(img, mid)
    assert isinstance(data, bytes) and MAGIC[name] in data[:12]
    out = codec.decode(data)
    assert out.dtype == np.uint8 and out.shape == img.shape
    small, large = codec.encode(img, low), codec.encode(img, high)
    assert len(small) < len(data) < len(large)
    assert psnr_rgb(img, codec.decode(small)) < psnr_rgb(img, out) < psnr_rgb(img, codec.decode(large))
    assert psnr_rgb(img, codec.decode(large)) > 30


def test_jpeg_is_420_and_optimize_only_shrinks():
    from PIL import JpegImagePlugin

    plain, opt = codec_or_skip("JPEG"), codec_or_skip("JPEG (optimize)")
    img = synthetic_photo(64, 80)
    data = plain.encode(img, 50)
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(data))) == 2  # 4:2:0
    smaller = opt.encode(img, 50)
    assert len(smaller) < len(data)
    assert np.array_equal(plain.decode(data), opt.decode(smaller))


# --------------------------------------------------------------------------- benchmark plumbing


def test_kodak_dir_missing_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("LATCOMP_DATA", raising=False)
    with pytest.raises(DataError, match="LATCOMP_DATA"):
        kodak.kodak_dir(tmp_path)
    (tmp_path / "kodak").mkdir()
    Image.fromarray(synthetic_photo(8, 8)).save(tmp_path / "kodak" / "kodim01.png")
    monkeypatch.setenv("LATCOMP_DATA", str(tmp_path))
    assert kodak.kodak_dir() == tmp_path / "kodak"


def test_main_without_data_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        photo_peers.main(["--data-dir", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Kodak images" in err and "LATCOMP_DATA" in err
    assert not list(tmp_path.iterdir())


def test_main_writes_report(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "kodak").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(synthetic_photo(168, 176, seed=i)).save(root / "kodak" / f"kodim{i + 1:02d}.png")
    out = tmp_path / "out"
    photo_peers.main(["--data-dir", str(root), "--codecs", "JPEG,WebP", "--repeats", "1", "--out-dir", str(out)])
    md = (out / "photo-peers.md").read_text()
    assert "BD-rate against JPEG" in md and "| WebP |" in md and "--codecs JPEG,WebP" in md
    assert (out / "photo-peers.png").read_bytes()[:4] == b"\x89PNG"
    res = json.loads((out / "photo-peers.json").read_text())
    assert res["data"]["images"] == 2 and [c["name"] for c in res["curves"]] == ["JPEG", "WebP"]
    assert len(res["curves"][0]["points"]) == len(peers.QUALITIES)
    assert len(res["curves"][0]["points"][0]["per_image"]) == 2


def test_another_curve_joins_the_report(tmp_path):
    """A new codec (here a stand-in) measured with measure_curve joins the peers' table, BD-rates and plot."""
    images = [("a", synthetic_photo(168, 176)), ("b", synthetic_photo(176, 168, seed=3))]
    jpeg = codec_or_skip("JPEG")
    measured = [peers.codec_curve(jpeg, images, repeats=1, log=lambda s: None)]
    meta = {"machine": {"cpu": "test", "cpu_count": 1, "platform": "test", "load_average": None},
            "versions": {}, "data": {"folder": "synthetic", "images": 2, "pixels": 2 * 168 * 176},
            "date": "now", "wall_s": 1.0, "repeats": 1}
    rd.write_report(measured, meta, "first", tmp_path / "photo-peers.json")
    loaded = rd.load_curves(tmp_path / "photo-peers.json")
    assert [p.bpp for p in loaded[0].points] == [p.bpp for p in measured[0].points]

    def encode(img, q):  # "a new codec": JPEG at 4:4:4
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q, subsampling="4:4:4")
        return buf.getvalue()

    new = rd.measure_curve("latcomp", encode, peers.pillow_decode, (30, 50, 70, 90), images, repeats=1,
                           setting_name="quality", log=lambda s: None)
    paths = [tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"]
    written = rd.write_report([*loaded, new], meta, "second", *paths)
    assert written == [tmp_path / "b.json", tmp_path / "b.png", tmp_path / "b.md"]
    md = (tmp_path / "b.md").read_text()
    assert "![RD curves](b.png)" in md and "`b.json`" in md
    assert "| latcomp |" in md and "### latcomp" in md
    assert rd.curve_colours(["JPEG", "latcomp"])["latcomp"] not in rd.CURVE_COLOURS.values()
