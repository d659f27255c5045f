"""Baselines (PCA, JPEG, bicubic), code quantiser, bits and units: checked against second implementations."""

from __future__ import annotations

import io
import math
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, JpegImagePlugin

from convae_utils import baselines as bl
from convae_utils.codecs.bits import IMAGE_BITS, CodeSizeWarning, bits_summary, code_bits, warn_if_code_not_smaller
from convae_utils.images import normalize
from convae_utils.metrics import per_image_mse
from convae_utils.photos import make_photos10
from convae_utils.plotting import rate_distortion_plot
from convae_utils.shapes import make_shapes10

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def train():
    return make_shapes10(200, seed=1).images


@pytest.fixture(scope="module")
def test_images():
    return make_shapes10(40, seed=1, split="test").images


def _flat01(images: torch.Tensor) -> np.ndarray:
    return normalize(images).flatten(1).double().numpy()


# -- bits -------------------------------------------------------------------------------------------

def test_code_bits_and_summary():
    assert IMAGE_BITS == 3 * 32 * 32 * 8
    assert code_bits(200) == 200 * 32 and code_bits(200, 8) == 1600
    summary = bits_summary(1000)
    assert summary["code_bits"] == 32_000 and not summary["smaller_than_image"]
    assert summary["share_of_image"] == pytest.approx(32_000 / 24_576)
    assert "32,000 bits" in summary["text"]
    for bad in (0, -3):
        with pytest.raises(ValueError):
            code_bits(bad)
    with pytest.raises(TypeError):
        code_bits(2.5)


def test_warns_exactly_when_code_is_not_smaller():
    assert issubclass(CodeSizeWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_code_not_smaller(767) is False  # 24,544 bits: still smaller
        assert warn_if_code_not_smaller(3071, 8) is False
    with pytest.warns(CodeSizeWarning, match="compresses nothing"):
        assert warn_if_code_not_smaller(768) is True  # exactly the image's 24,576 bits
    with pytest.warns(CodeSizeWarning):
        warn_if_code_not_smaller(3072, 8)


# -- PCA ----------------------------------------------------------------------------------------------

def test_pca_matches_numpy_eigendecomposition(train):
    x = _flat01(train)
    k = 12
    model = bl.fit_pca(train, k, solver="exact")
    centred = x - x.mean(axis=0)
    # the covariance's top eigenvalues, from the small (N x N) Gram matrix: same non-zero spectrum
    eigenvalues = np.linalg.eigvalsh(centred @ centred.T / (len(x) - 1))[::-1][:k]
    np.testing.assert_allclose(model.explained_variance.double().numpy(), eigenvalues, rtol=1e-3)
    gram = (model.components @ model.components.T).double().numpy()
    np.testing.assert_allclose(gram, np.eye(k), atol=1e-4)  # orthonormal rows


def test_pca_reconstruction_equals_sklearn(train, test_images):
    sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
    k = 16
    reference = sklearn_decomposition.PCA(k, svd_solver="full").fit(_flat01(train))
    expected = reference.inverse_transform(reference.transform(_flat01(test_images)))
    got = bl.fit_pca(train, k, solver="exact").reconstruct(test_images).flatten(1).double().numpy()
    np.testing.assert_allclose(got, expected, atol=2e-4)


def test_pca_reconstruction_is_the_least_squares_projection(train, test_images):
    model = bl.fit_pca(train, 10, solver="exact")
    centred = _flat01(test_images) - model.mean.double().numpy()
    basis = model.components.double().numpy().T  # (3072, k)
    coefficients, *_ = np.linalg.lstsq(basis, centred.T, rcond=None)
    expected = (basis @ coefficients).T + model.mean.double().numpy()
    got = model.reconstruct(test_images).flatten(1).double().numpy()
    np.testing.assert_allclose(got, expected, atol=2e-4)
    codes = model.encode(test_images)
    assert codes.shape == (len(test_images), 10) and codes.dtype == torch.float32
    assert model.decode(codes).shape == test_images.shape


def test_randomized_pca_is_close_to_exact(train):
    k = 20
    fast = bl.fit_pca(train, k)  # auto: 2 * (k + 20) < 200 -> randomized
    exact = bl.fit_pca(train, k, solver="exact")
    assert fast.solver == "randomized" and exact.solver == "exact"
    target = normalize(train)

    def train_mse(model):
        return float(per_image_mse(model.reconstruct(train), target).mean())

    assert train_mse(fast) <= train_mse(exact) * 1.01
    assert torch.equal(bl.fit_pca(train, k).components, fast.components)  # seeded: repeatable


def test_covariance_pca_is_exact_and_chosen_for_large_k():
    # N >= 3,072 images: the covariance (3,072 x 3,072) route applies; k = 400 is past the randomized range
    images = make_photos10(3_200, seed=3).images
    model = bl.fit_pca(images, 400)
    assert model.solver == "covariance"
    gram = (model.components @ model.components.T).double().numpy()
    np.testing.assert_allclose(gram, np.eye(400), atol=1e-4)  # orthonormal rows
    codes = model.encode(images)
    np.testing.assert_allclose(codes.double().var(dim=0).numpy(), model.explained_variance.double().numpy(), rtol=1e-3)
    # the exact optimum: on its own training images no other 400-dimensional projection does better
    target = normalize(images)
    randomized = bl.fit_pca(images, 400, solver="randomized")

    def train_mse(pca):
        return float(per_image_mse(pca.reconstruct(images), target).mean())

    assert train_mse(model) <= train_mse(randomized) * (1 + 1e-5)
    assert bl.fit_pca(images, 200).solver == "randomized"  # small k stays on the fast route
    with pytest.raises(ValueError, match="at least as many training images"):
        bl.fit_pca(images[:3_000], 10, solver="covariance")


def test_pca_components_checked_before_work(train):
    with pytest.raises(ValueError, match="at most"):
        bl.fit_pca(train[:50], 51)
    assert bl.fit_pca(train[:50], 50).n_components == 50  # the limit itself is fine (exact solver)
    for bad in (0, -1):
        with pytest.raises(ValueError):
            bl.fit_pca(train, bad)
    with pytest.raises(ValueError, match="uint8"):
        bl.fit_pca(normalize(train), 5)
    with pytest.raises(ValueError, match="codes of shape"):
        bl.fit_pca(train, 5).decode(torch.zeros(3, 6))


# -- JPEG ---------------------------------------------------------------------------------------------

def _pillow_file(image: torch.Tensor, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_jpeg_bytes_and_pixels_match_pillow(test_images):
    images = test_images[:8]
    recon, whole, scan = bl.jpeg_roundtrip(images, 50)
    assert recon.dtype == torch.uint8 and recon.shape == images.shape
    for i, image in enumerate(images):
        data = _pillow_file(image, 50)  # Pillow's own defaults: 4:2:0, standard tables
        assert whole[i] == len(data)
        decoded = np.asarray(Image.open(io.BytesIO(data)))
        assert np.array_equal(recon[i].permute(1, 2, 0).numpy(), decoded)
        # the scan data is the bytes between the SOS segment and the final EOI marker
        sos = data.index(b"\xff\xda")
        header_end = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
        assert scan[i] == len(data) - header_end - 2
    assert len(set((whole - scan).tolist())) == 1  # same quality -> the same header size for every image


def test_jpeg_quality_orders_size_and_error(test_images):
    low, low_bytes, _ = bl.jpeg_roundtrip(test_images, 10)
    high, high_bytes, _ = bl.jpeg_roundtrip(test_images, 90)
    target = normalize(test_images)
    assert high_bytes.mean() > low_bytes.mean()
    assert per_image_mse(normalize(high), target).mean() < per_image_mse(normalize(low), target).mean()


def test_jpeg_subsampling_is_what_was_asked(test_images):
    for name, code in (("4:2:0", 2), ("4:4:4", 0)):
        buffer = io.BytesIO()
        Image.fromarray(test_images[0].permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=75,
                                                                     subsampling=name)
        assert JpegImagePlugin.get_sampling(Image.open(buffer)) == code
    _, default, _ = bl.jpeg_roundtrip(test_images[:4], 75)
    _, full_colour, _ = bl.jpeg_roundtrip(test_images[:4], 75, subsampling="4:4:4")
    assert not np.array_equal(default, full_colour)


@pytest.mark.parametrize("quality", [0, 96, 100, -5, 50.0, True, "50"])
def test_jpeg_bad_quality_fails_before_any_work(quality):
    with pytest.raises(ValueError, match="quality"):
        bl.jpeg_roundtrip("not even images", quality)  # the quality is checked first


# -- downsampling -------------------------------------------------------------------------------------

def test_resample_roundtrip(test_images):
    assert bl.resample_bits(16) == 16 * 16 * 3 * 8
    assert torch.equal(bl.resample_roundtrip(test_images, 32), test_images)
    flat = torch.full((2, 3, 32, 32), 77, dtype=torch.uint8)
    assert torch.equal(bl.resample_roundtrip(flat, 8), flat)  # a constant image survives any size
    target = normalize(test_images)
    errors = [float(per_image_mse(normalize(bl.resample_roundtrip(test_images, s)), target).mean())
              for s in (4, 8, 16, 24)]
    assert errors == sorted(errors, reverse=True)
    for bad in (0, 33):
        with pytest.raises(ValueError):
            bl.resample_roundtrip(test_images, bad)


def test_resample_thumbnail_matches_pillow_bicubic(test_images):
    """Our shrinking step against Pillow's antialiased BICUBIC resize, which torch's antialias follows."""
    image = test_images[0]
    pil = np.asarray(Image.fromarray(image.permute(1, 2, 0).numpy()).resize((16, 16), Image.BICUBIC))
    ours = F.interpolate(image[None].float(), size=(16, 16), mode="bicubic", antialias=True).round().clamp(0, 255)
    difference = np.abs(ours[0].permute(1, 2, 0).numpy() - pil.astype(np.float32))
    assert difference.max() <= 2 and difference.mean() < 0.25  # Pillow rounds its filter weights to fixed point


# -- scoring, tables, sweeps --------------------------------------------------------------------------

def test_score_perfect_and_direct(test_images):
    perfect = bl.score_reconstructions("copy", "-", test_images, test_images, bits_per_image=IMAGE_BITS)
    assert list(perfect.columns) == list(bl.TABLE_COLUMNS)
    row = perfect.iloc[0]
    assert row["mse"] == 0 and row["psnr_of_mean_mse"] == 100 and row["ssim"] == pytest.approx(1.0)
    noisy = (test_images.int() + 8).clamp(0, 255).to(torch.uint8)
    row = bl.score_reconstructions("noisy", "+8", noisy, test_images, bits_per_image=100).iloc[0]
    direct = ((noisy.double() - test_images.double()) / 255).pow(2).flatten(1).mean(1)
    assert row["mse"] == pytest.approx(float(direct.mean()), rel=1e-5)
    assert row["psnr_of_mean_mse"] == pytest.approx(-10 * math.log10(float(direct.mean())), rel=1e-5)
    assert row["mean_psnr"] >= row["psnr_of_mean_mse"]
    assert row["share_of_image"] == pytest.approx(100 / IMAGE_BITS)
    floats = bl.score_reconstructions("noisy", "+8", normalize(noisy), test_images, bits_per_image=100)
    assert floats.iloc[0]["mse"] == pytest.approx(row["mse"], rel=1e-5)  # uint8 or [-1, 1] floats alike
    with pytest.raises(ValueError, match="bits_per_image"):
        bl.score_reconstructions("x", "-", noisy, test_images, bits_per_image=0)
    with pytest.raises(ValueError, match="one reconstruction per original"):
        bl.score_reconstructions("x", "-", noisy[:3], test_images, bits_per_image=10)


def test_sweeps_reject_duplicates_before_work(train, test_images, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the sweep was checked")

    monkeypatch.setattr(bl, "fit_pca", no_work)
    monkeypatch.setattr(bl, "jpeg_roundtrip", no_work)
    monkeypatch.setattr(bl, "resample_roundtrip", no_work)
    with pytest.raises(ValueError, match="more than once"):
        bl.pca_sweep(train, test_images, [8, 16, 8])
    with pytest.raises(ValueError, match="quantize_bits"):
        bl.pca_sweep(train, test_images, [8], quantize_bits=[3])
    with pytest.raises(ValueError, match="at most"):
        bl.pca_sweep(train, test_images, [201])
    with pytest.raises(ValueError, match="more than once"):
        bl.jpeg_sweep(test_images, [50, 50])
    with pytest.raises(ValueError, match="quality"):
        bl.jpeg_sweep(test_images, [50, 99])
    with pytest.raises(ValueError, match="more than once"):
        bl.resample_sweep(test_images, [8, 8])
    with pytest.raises(ValueError, match="more than once"):
        bl.check_sweep("latent sizes", [64, 128, 64])
    with pytest.raises(ValueError, match="empty"):
        bl.check_sweep("latent sizes", [])


def test_sweeps_build_one_table(train, test_images):
    pca = bl.pca_sweep(train, test_images, [4, 16], quantize_bits=(8, 4))
    assert len(pca) == 6 and set(pca["method"]) == {"PCA (float32)", "PCA (8-bit)", "PCA (4-bit)"}
    float32 = pca[pca["method"] == "PCA (float32)"].set_index("setting")
    assert float32.loc["k=16", "bits_per_image"] == 16 * 32
    assert float32.loc["k=16", "psnr_of_mean_mse"] > float32.loc["k=4", "psnr_of_mean_mse"]
    k16 = pca[pca["setting"] == "k=16"].set_index("method")["mse"]
    assert k16["PCA (float32)"] <= k16["PCA (8-bit)"] <= k16["PCA (4-bit)"]
    jpeg = bl.jpeg_sweep(test_images, [20, 80])
    assert len(jpeg) == 4
    whole, scan = (jpeg[jpeg["method"] == m].set_index("setting") for m in ("JPEG (whole file)",
                                                                           "JPEG (scan data only)"))
    assert (whole["bits_per_image"] > scan["bits_per_image"]).all()
    assert (whole["mse"] == scan["mse"]).all()
    table = bl.rate_distortion_table([pca, jpeg, bl.resample_sweep(test_images, [8, 16])])
    assert len(table) == 12
    with pytest.raises(ValueError, match="more than once"):
        bl.rate_distortion_table([pca, pca])


# -- units --------------------------------------------------------------------------------------------

def test_convert_units_round_trips():
    base = bl.convert_units(mse_01=0.004)
    assert base["mse_pm1"] == pytest.approx(0.016)
    assert base["sse_01"] == pytest.approx(0.004 * 3072)
    assert base["sse_pm1"] == pytest.approx(0.016 * 3072)
    assert base["psnr_db"] == pytest.approx(-10 * math.log10(0.004))
    for unit in ("mse_pm1", "sse_01", "sse_pm1", "psnr_db"):
        again = bl.convert_units(**{unit: base[unit]})
        for key, value in base.items():
            assert again[key] == pytest.approx(value)
    assert bl.convert_units(psnr_db=20)["mse_01"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="exactly one"):
        bl.convert_units(mse_01=0.1, psnr_db=10)
    with pytest.raises(ValueError, match="exactly one"):
        bl.convert_units()
    with pytest.raises(ValueError, match="negative"):
        bl.convert_units(sse_pm1=-1.0)


def test_uva_loss_is_sse_pm1(test_images):
    """UvA Tutorial 9's loss on [-1, 1] images equals our mean MSE converted to ``sse_pm1``."""
    x = normalize(test_images)
    x_hat = normalize(bl.resample_roundtrip(test_images, 8))
    uva = float(F.mse_loss(x, x_hat, reduction="none").sum(dim=[1, 2, 3]).mean(dim=[0]))
    ours = float(per_image_mse(x_hat, x).mean())
    assert bl.convert_units(mse_01=ours)["sse_pm1"] == pytest.approx(uva, rel=1e-5)


def test_psnr_two_ways():
    same = bl.psnr_two_ways([0.01, 0.01, 0.01])
    assert same["psnr_of_mean_mse"] == pytest.approx(20) and same["gap_db"] == pytest.approx(0)
    spread = bl.psnr_two_ways(np.array([0.1, 0.001]))
    assert spread["psnr_of_mean_mse"] == pytest.approx(-10 * math.log10(0.0505))
    assert spread["mean_psnr"] == pytest.approx(20.0)  # (10 + 30) / 2
    assert spread["gap_db"] > 0
    with pytest.raises(ValueError):
        bl.psnr_two_ways([])
    card = bl.units_card([0.01])
    assert card.iloc[0]["PSNR dB"] == pytest.approx(20)


def test_published_references_are_labelled_and_consistent():
    refs = bl.published_references()
    assert {"source", "setting", "split", "how_obtained", "latent_dim", "reported"} <= set(refs.columns)
    assert refs["source"].str.startswith("https://github.com/phlippe/uvadlc_notebooks/").all()
    for _, row in refs.iterrows():
        assert row["mse_01"] == pytest.approx(row["reported"] / (4 * 3072))
        assert row["code_bits"] == 32 * row["latent_dim"]
    for _, group in refs.groupby("version"):
        assert group.sort_values("latent_dim")["reported"].is_monotonic_decreasing


# -- figure -------------------------------------------------------------------------------------------

def test_rate_distortion_plot(test_images):
    table = bl.rate_distortion_table([bl.resample_sweep(test_images, [8, 16]), bl.jpeg_sweep(test_images, [30])])
    refs = bl.published_references().head(2)
    marks = pd.DataFrame({"method": refs["version"], "setting": "latent " + refs["latent_dim"].astype(str),
                          "bits_per_image": refs["code_bits"], "psnr_of_mean_mse": refs["psnr_of_mean_mse"],
                          "ssim": np.nan})
    fig = rate_distortion_plot(table, marks)
    psnr_ax, ssim_ax = fig.axes[:2]
    assert psnr_ax.get_xscale() == "log" and ssim_ax.get_xscale() == "log"
    labels = [line.get_label() for line in psnr_ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["bicubic", "JPEG (whole file)", "JPEG (scan data only)"]
    texts = [t.get_text() for t in psnr_ax.texts]
    assert "8x8" in texts and any("latent 64" in t for t in texts)
    assert not any("latent 64" in t.get_text() for t in ssim_ax.texts)  # no SSIM published: PSNR panel only
    with pytest.raises(ValueError):
        rate_distortion_plot(table, psnr="psnr")
    with pytest.raises(ValueError, match="lacks column"):
        rate_distortion_plot(table.drop(columns="ssim"))
    matplotlib.pyplot.close(fig)


def test_autoencoder_sweep_scores_codes_as_they_would_be_stored():
    from convae_utils.models import build_autoencoder
    from convae_utils.shapes import make_shapes10

    model = build_autoencoder(16, base_channels=4, code_activation=None, seed=0)
    train, test = make_shapes10(64, seed=0), make_shapes10(20, seed=0, split="test")
    table = bl.autoencoder_sweep({"latent 16": model}, train, test, quantize_bits=(8, 2))
    rows = table.set_index("method")
    assert list(rows["bits_per_image"]) == [16 * 32, 16 * 8, 16 * 2]
    float_psnr = rows.loc["autoencoder (float32)", "psnr_of_mean_mse"]
    assert abs(rows.loc["autoencoder (8-bit)", "psnr_of_mean_mse"] - float_psnr) < 0.5  # 256 levels: close
    assert rows.loc["autoencoder (2-bit)", "mse"] != rows.loc["autoencoder (float32)", "mse"]  # 4 levels: not free
    with pytest.raises(ValueError, match="quantize_bits must come from"):
        bl.autoencoder_sweep({"latent 16": model}, train, test, quantize_bits=(3,))
