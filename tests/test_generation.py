"""Sampling a code space three ways, and the offline generation measures of notebook 09."""

import json
import warnings

import pytest
import torch

from convae_utils import generation
from convae_utils.data import DataBundle
from convae_utils.shapes import make_shapes10


def _correlated_codes(n=3_000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, generator=gen)
    return torch.cat([base, 2 * base + 0.1 * torch.randn(n, 1, generator=gen), torch.randn(n, 2, generator=gen)], dim=1)


@pytest.mark.parametrize("kind", generation.DENSITIES)
def test_densities_sample_seeded_codes_of_the_right_shape(kind):
    codes = _correlated_codes()
    density = generation.fit_code_density(codes, kind, components=3)
    first, again, other = density.sample(500, seed=1), density.sample(500, seed=1), density.sample(500, seed=2)
    assert first.shape == (500, 4) and first.dtype == torch.float32
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.allclose(first.mean(dim=0), codes.mean(dim=0), atol=0.25)


def test_full_covariance_keeps_correlations_the_per_unit_model_loses():
    codes = _correlated_codes()
    independent = generation.fit_code_density(codes, "independent").sample(4_000)
    gaussian = generation.fit_code_density(codes, "gaussian").sample(4_000)
    correlation = lambda c: float(torch.corrcoef(c[:, :2].T)[0, 1])  # noqa: E731
    assert correlation(codes) > 0.99
    assert correlation(gaussian) > 0.95 and abs(correlation(independent)) < 0.1


def test_sample_codes_keeps_the_code_shape():
    codes = torch.randn(200, 2, 4, 4)
    drawn = generation.sample_codes(codes, 7, components=2)
    assert list(drawn) == list(generation.DENSITIES)
    assert all(c.shape == (7, 2, 4, 4) for c in drawn.values())


def test_bad_codes_are_refused():
    with pytest.raises(ValueError, match="N >= 2"):
        generation.fit_code_density(torch.randn(1, 5))
    with pytest.raises(ValueError, match="kind"):
        generation.fit_code_density(torch.randn(10, 5), "flow")


def test_mmd_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 16, generator=gen), torch.randn(400, 16, generator=gen)
    same, shifted = generation.mmd_squared(x, y), generation.mmd_squared(x, y + 0.5)
    assert abs(same) < 0.02
    assert shifted > 10 * abs(same) and shifted > generation.mmd_squared(x, y + 0.25) > same


def test_nearest_rmse_finds_copies():
    reference = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    distances = generation.nearest_rmse(reference[:5], reference)
    assert distances.shape == (5,) and float(distances.max()) < 1e-3
    fresh = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    assert float(generation.nearest_rmse(fresh, reference).min()) > 0.3


def test_class_entropy_bits():
    even = torch.eye(4).repeat(5, 1)                   # every class predicted equally often
    assert generation.class_entropy_bits(even) == pytest.approx(2.0)
    assert generation.class_entropy_bits(torch.eye(4)[[0] * 8]) == 0.0


def _data(train_images: int, seed: int = 0) -> DataBundle:
    return DataBundle(make_shapes10(train_images, seed=seed), make_shapes10(64, seed=seed + 1), None, None, "shapes10")


@pytest.fixture(scope="module")
def classifier_and_data(tmp_path_factory):
    data = _data(600)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVAE_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        classifier = generation.yardstick_classifier(data, "smoke", seed=0, progress=False)
    return classifier, data.train, make_shapes10(200, seed=0, split="test")


def test_the_classifier_tells_real_images_from_noise(classifier_and_data):
    classifier, train, test = classifier_and_data
    assert generation.accuracy(classifier, test) > 0.5                       # 10 classes: chance is 0.1
    scorer = generation.GenerationScorer(classifier, test, train)
    real = scorer.score(make_shapes10(200, seed=1, split="test").images)
    noise = scorer.score(torch.rand(200, 3, 32, 32) * 2 - 1)
    assert real["class_entropy_bits"] > 3.0                                   # the classes come out evenly
    assert noise["mmd"] > 10 * max(real["mmd"], 1e-3)
    assert noise["nearest_train_rmse"] > real["nearest_train_rmse"]


def test_the_classifier_trains_through_the_harness_seeded_and_loads_after(tmp_path, monkeypatch, capsys):
    """The yardstick is a run like any other: labels reach its step, its folder is reused, its seed repeats."""
    data = _data(128)
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(tmp_path / "a"))
    a = generation.yardstick_classifier(data, "smoke", seed=5, progress=False)
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(tmp_path / "b"))
    b = generation.yardstick_classifier(data, "smoke", seed=5, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    capsys.readouterr()
    again = generation.yardstick_classifier(data, "smoke", seed=5, progress=False)
    assert "nothing was trained" in capsys.readouterr().out
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), again.state_dict().values()))
    assert next(again.parameters()).device.type == "cpu" and not again.training
    history = json.loads(next((tmp_path / "b").glob("*-classifier/history.json")).read_text())
    assert history["meta"]["step"] == "classification_step"


def test_vae_measures_report_the_kl_as_the_rate():
    from convae_utils import vae

    model = vae.build_vae(code_channels=1, width=4, depth=0)
    test = make_shapes10(20, seed=0, split="test")
    row = generation.vae_measures(model, test, label="beta=1")
    mean, logvar = vae.posterior_stats(model, test.images)
    assert row["rate_bits"] == pytest.approx(float(vae.kl_divergence(mean, logvar).mean()) / 0.6931471805599453)
    assert row["bits_per_image"] == pytest.approx(max(row["rate_bits"], 1e-6))
    assert 0 <= row["inactive_dims"] <= row["latent_dim"] == 16
    assert 0 < row["psnr_of_mean_mse"] < 100


def _noisy_vae():
    """A VAE whose posterior spread is wide, so a drawn code decodes differently from the mean."""
    from convae_utils import vae

    model = vae.build_vae(code_channels=1, width=4, depth=0)
    with torch.no_grad():
        last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.bias[1:] += 2.0                                   # log-variance channel: sigma ~ e
    return model


def test_a_vae_point_pairs_the_kl_with_the_drawn_codes_distortion():
    from convae_utils import baselines, metrics, vae

    model = _noisy_vae()
    test = make_shapes10(24, seed=0, split="test")
    row = generation.vae_measures(model, test, label="beta=1", draws=3, seed=7)
    # the same draws made here by hand: z = mean + sigma * eps, 3 per image, decoded, scored on [0, 1]
    mean, logvar = vae.posterior_stats(model, test.images)
    gen = torch.Generator().manual_seed(7)
    z = torch.cat([mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen) for _ in range(3)])
    with torch.no_grad():
        drawn = model.decode(z.view(-1, *model.code_shape))
    mse = metrics.per_image_mse(drawn, images_scaled(test.images.repeat(3, 1, 1, 1))).double().mean()
    assert row["mse"] == pytest.approx(float(mse), rel=1e-5)
    assert row["method"] == generation.SAMPLED_CODE and row["draws_per_image"] == 3
    at_mean = baselines.score_reconstructions("m", "s", model(images_scaled(test.images)).detach(), test.images,
                                              bits_per_image=1.0)
    assert row["posterior_mean_psnr"] == pytest.approx(float(at_mean["psnr_of_mean_mse"].iloc[0]))
    assert row["psnr_of_mean_mse"] != pytest.approx(row["posterior_mean_psnr"], abs=1e-3)


def images_scaled(pixels):
    from convae_utils.images import normalize

    return normalize(pixels)


def test_the_plotted_vae_points_use_the_drawn_code_and_the_opponents_are_there():
    import pandas as pd
    from convae_utils import baselines

    model = _noisy_vae()
    test = make_shapes10(16, seed=0, split="test")
    sweep = pd.DataFrame([generation.vae_measures(model, test, label=f"beta={b}", draws=2) for b in (1, 2)])
    pca_curve = pd.DataFrame([dict(zip(baselines.TABLE_COLUMNS, ("PCA (entropy-coded)", f"step={s}", 50.0 * s, 0.0,
                                                                16, 0.01, 20.0 + s, 20.0 + s, 0.5))) for s in (1, 2)])
    jpeg = baselines.jpeg_sweep(test, (10, 50))
    table = generation.vae_against_opponents(sweep, pca_curve=pca_curve, jpeg_rows=jpeg)
    sampled = table[table["method"] == generation.SAMPLED_CODE]
    assert list(sampled["psnr_of_mean_mse"]) == pytest.approx(list(sweep["psnr_of_mean_mse"]))
    at_mean = table[table["method"] == generation.MEAN_CODE]
    assert list(at_mean["psnr_of_mean_mse"]) == pytest.approx(list(sweep["posterior_mean_psnr"]))
    assert {"PCA (entropy-coded)", "JPEG (scan data only)"} <= set(table["method"])
    assert "autoencoder (8-bit)" not in set(table["method"])
    with pytest.raises(ValueError, match="opponents"):
        generation.vae_against_opponents(sweep, pca_curve=pca_curve.iloc[:0], jpeg_rows=jpeg)


@pytest.mark.parametrize("codes", [torch.zeros(60, 64), torch.full((60, 4, 4, 4), 3.0)])
def test_a_map_of_codes_that_do_not_vary_is_handled_before_scikit_learn(codes):
    # scikit-learn's t-SNE crashed the process (segmentation fault) on such codes: it must never see them
    assert not generation.codes_vary(codes)
    with pytest.warns(UserWarning, match="the same"):
        points = generation.tsne_map(codes)
    assert points.shape == (60, 2) and not points.any()


def test_codes_that_vary_in_one_value_still_get_a_map():
    codes = torch.zeros(40, 8)
    codes[:, 3] = torch.linspace(0, 1, 40)
    assert generation.codes_vary(codes)
    points = generation.tsne_map(codes, perplexity=5)
    assert points.shape == (40, 2) and float(points.std()) > 0


def test_real_images_give_the_mmd_floor_and_its_spread(classifier_and_data):
    classifier, train, test = classifier_and_data
    scorer = generation.GenerationScorer(classifier, test, train)
    same = scorer.split_half_mmd(repeats=3)
    assert same.shape == (3,) and float(same.abs().mean()) < 0.05
    shifted = scorer.mmd_spread(train.images, size=32, repeats=3)
    noise = scorer.mmd_spread(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), size=32, repeats=3)
    assert shifted.shape == (3,) and float(noise.mean()) > float(shifted.mean())
    with pytest.raises(ValueError, match="at least"):
        scorer.mmd_spread(train.images[:4], size=32)


def test_code_maps_draws_one_panel_per_map_and_refuses_a_wrong_shape():
    import numpy as np
    from convae_utils import plotting

    labels = np.arange(20) % 10
    fig = plotting.code_maps({"a": np.zeros((20, 2)), "b": np.ones((20, 2))}, labels, [str(i) for i in range(10)])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="shape"):
        plotting.code_maps({"a": np.zeros((19, 2))}, labels, [str(i) for i in range(10)])


@pytest.mark.parametrize("kind", generation.DENSITIES)
def test_densities_fitted_to_codes_that_do_not_vary_sample_that_code(kind):
    # an all-dead code reaches scikit-learn's GaussianMixture here too: it must give finite draws, not crash
    codes = torch.full((50, 8), 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # scikit-learn: "fewer distinct clusters than asked"
        drawn = generation.fit_code_density(codes, kind, components=3).sample(20)
    assert bool(torch.isfinite(drawn).all()) and torch.allclose(drawn, codes[:20], atol=1e-3)
