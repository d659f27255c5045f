"""Metrics against hand-computed values and an independent SSIM; evaluate on tiny models and sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from convae_utils import metrics
from convae_utils.images import ImageSet, normalize
from convae_utils.models import build_autoencoder

CLASSES = ("cat", "dog", "ship")


def model_scale(pixels01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> the model's [-1, 1] scale, the inverse of data.denormalize."""
    return pixels01 * 2.0 - 1.0


def reference_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM of Wang et al. (2004) per image, float64, for (N, C, H, W) arrays on [0, 1].

    Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03, data range 1; borders padded by reflection
    and the SSIM map averaged over all pixels and channels (torchmetrics' border convention).
    """
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    offsets = np.arange(11) - 5
    g = np.exp(-offsets ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def local_mean(a: np.ndarray) -> np.ndarray:
        padded = np.pad(a, ((0, 0), (0, 0), (5, 5), (5, 5)), mode="reflect")
        patches = np.lib.stride_tricks.sliding_window_view(padded, (11, 11), axis=(2, 3))
        return (patches * window).sum(axis=(-2, -1))

    mx, my = local_mean(x), local_mean(y)
    vx, vy = local_mean(x * x) - mx ** 2, local_mean(y * y) - my ** 2
    cov = local_mean(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return ssim_map.mean(axis=(1, 2, 3))


@pytest.fixture
def tiny_set() -> ImageSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    return ImageSet(images, labels, CLASSES, "tiny", "test")


class Identity(nn.Module):
    """A 'perfect autoencoder' with one parameter, so evaluate has a device and modes to restore."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


# -- per-image metrics ----------------------------------------------------------------------------

def test_ssim_matches_independent_reference():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(4, 3, 32, 32, generator=g, dtype=torch.float64)
    pred = (target + 0.15 * torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64)).clamp(0, 1)
    pred[3] = torch.rand(3, 32, 32, generator=g, dtype=torch.float64)  # an unrelated image: low SSIM
    got = metrics.per_image_ssim(model_scale(pred).float(), model_scale(target).float())
    expected = reference_ssim(pred.numpy(), target.numpy())
    assert got.shape == (4,)
    np.testing.assert_allclose(got.double().numpy(), expected, atol=1e-4)
    assert expected[3] < 0.1 < expected[0]  # the reference spans a real range, not just ~1


def test_ssim_agrees_with_torchmetrics():
    """The fast SSIM (the window's 1-D halves as matrices) gives torchmetrics' numbers, image by image."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    g = torch.Generator().manual_seed(3)
    target = torch.rand(6, 3, 32, 32, generator=g)
    pred = (target + torch.linspace(0.0, 0.5, 6).view(-1, 1, 1, 1) * torch.randn(6, 3, 32, 32, generator=g)).clamp(0, 1)
    expected = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none")
    got = metrics.per_image_ssim(model_scale(pred), model_scale(target))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    assert expected[0] > 0.99 > 0.5 > expected[-1]  # the six images span the scale


def test_identical_images_are_perfect():
    x = model_scale(torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    assert torch.allclose(metrics.per_image_ssim(x, x.clone()), torch.ones(3), atol=1e-5)
    assert torch.equal(metrics.per_image_mse(x, x.clone()), torch.zeros(3))
    assert torch.equal(metrics.per_image_psnr(x, x.clone()), torch.full((3,), metrics.MAX_PSNR_DB))


def test_psnr_of_a_constant_offset():
    # targets inside [0.2, 0.8] so that +0.1 never reaches the clamp at 1
    target01 = 0.2 + 0.6 * torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    pred, target = model_scale(target01 + 0.1), model_scale(target01)
    assert torch.allclose(metrics.per_image_mse(pred, target), torch.full((2,), 0.01), atol=1e-6)
    assert torch.allclose(metrics.per_image_psnr(pred, target), torch.full((2,), 20.0), atol=1e-3)


def test_mse_on_known_values_is_per_image_on_the_unit_scale():
    target = torch.full((2, 3, 32, 32), -1.0)  # black: 0 on the [0, 1] scale
    pred = target.clone()
    pred[0] = 0.0                               # mid grey: 0.5 -> squared error 0.25 everywhere
    pred[1, 0] = 1.0                            # one channel white: error 1 on a third of the values
    assert torch.allclose(metrics.per_image_mse(pred, target), torch.tensor([0.25, 1 / 3]))
    assert torch.allclose(metrics.per_image_psnr(pred, target), 10 * torch.log10(torch.tensor([4.0, 3.0])))


def test_overshooting_reconstructions_are_scored_as_displayed():
    target = torch.ones(1, 3, 32, 32)
    assert metrics.per_image_mse(target * 3.0, target).item() == 0.0  # 3.0 displays as white, like 1.0


@pytest.mark.parametrize("fn", [metrics.per_image_mse, metrics.per_image_psnr, metrics.per_image_ssim])
def test_bad_shapes_raise(fn):
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match="same shape"):
        fn(x, torch.zeros(3, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        fn(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="normalize"):
        fn(x.to(torch.uint8), x)


# -- evaluate and tables ---------------------------------------------------------------------------

def test_evaluate_tiny_autoencoder(tiny_set):
    model = build_autoencoder(latent_dim=8, base_channels=4)
    model.train()
    model.encoder.eval()  # a mixed state must come back exactly as it was
    table = metrics.evaluate(model, tiny_set, batch_size=4, device="cpu")
    assert model.training and model.decoder.training and not model.encoder.training
    assert list(table.columns) == ["label", "class", "mse", "psnr", "ssim"]
    assert len(table) == len(tiny_set) and table.index.name == "image"
    assert list(table["class"]) == [CLASSES[i] for i in tiny_set.labels.tolist()]
    assert list(table["class"].cat.categories) == list(CLASSES)
    # batching changes nothing, and the numbers are the per-image metrics of the eval-mode output
    whole = metrics.evaluate(model, tiny_set, batch_size=500, device="cpu")
    pd.testing.assert_frame_equal(table, whole, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        model.eval()
        x = normalize(tiny_set.images)
        out = model(x)
    np.testing.assert_allclose(table["ssim"], metrics.per_image_ssim(out, x).numpy(), atol=1e-6)
    np.testing.assert_allclose(table["psnr"], 10 * np.log10(1 / table["mse"]), atol=1e-4)


def test_evaluate_identity_is_perfect_and_restores_eval_mode(tiny_set):
    model = Identity().eval()
    table = metrics.evaluate(model, tiny_set, batch_size=3, device="cpu")
    assert not model.training
    assert (table["mse"] == 0).all() and (table["psnr"] == metrics.MAX_PSNR_DB).all()
    np.testing.assert_allclose(table["ssim"], 1.0, atol=1e-5)
    assert len(metrics.evaluate(nn.Identity(), tiny_set, device="cpu")) == len(tiny_set)  # no parameters


def test_evaluate_rejects_bad_arguments(tiny_set):
    with pytest.raises(ValueError, match="batch_size"):
        metrics.evaluate(Identity(), tiny_set, batch_size=0, device="cpu")
    with pytest.raises(TypeError, match="ImageSet"):
        metrics.evaluate(Identity(), tiny_set.images, device="cpu")
    with pytest.raises(ValueError, match="device"):
        metrics.evaluate(Identity(), tiny_set, device="tpu")


def per_image_table(values: list[float], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame({
        "label": labels,
        "class": pd.Categorical.from_codes(labels, categories=list(CLASSES)),
        "mse": values, "psnr": [10 * v for v in values], "ssim": [v / 10 for v in values],
    })


def test_summarize_overall_first_then_classes():
    table = metrics.summarize(per_image_table([1.0, 2.0, 3.0, 6.0], [2, 0, 2, 0]))
    assert list(table.index) == ["all", "cat", "ship"]  # class order, absent classes left out
    assert list(table.columns) == ["images", "mse", "psnr", "ssim"]
    assert table["images"].tolist() == [4, 2, 2]
    assert table["mse"].tolist() == [3.0, 4.0, 2.0]
    assert table.loc["ship", "psnr"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="ssim"):
        metrics.summarize(table.reset_index().drop(columns="ssim"))


def test_compare_models_and_long_table():
    a = per_image_table([1.0, 3.0], [0, 1])
    b = per_image_table([2.0, 4.0], [0, 1])
    wide = metrics.compare_models({"latent 200": a, "latent 1000": metrics.summarize(b)})
    assert wide.columns.names == ["model", "metric"]
    assert list(wide.columns) == [(m, k) for m in ("latent 200", "latent 1000") for k in metrics.METRICS]
    assert list(wide.index) == ["all", "cat", "dog"]
    assert wide.loc["all", ("latent 1000", "mse")] == 3.0
    assert wide.loc["dog", ("latent 200", "psnr")] == 30.0

    tidy = metrics.long_table({"latent 200": a, "latent 1000": b})
    assert list(tidy.columns) == ["model", "class", "mse", "psnr", "ssim"]
    assert len(tidy) == 4 and list(tidy["class"].cat.categories) == ["cat", "dog"]
    tidy_summaries = metrics.long_table({"x": metrics.summarize(a)})
    assert list(tidy_summaries["class"]) == ["all", "cat", "dog"]
    with pytest.raises(ValueError, match="non-empty dict"):
        metrics.compare_models({})


def test_nan_infinite_and_wrongly_scaled_pixels_are_refused_by_name():
    from convae_utils.metrics import per_image_mse

    good = torch.zeros(2, 3, 32, 32)
    bad = good.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="expected target without NaN or infinite values, found 1"):
        per_image_mse(good, bad)
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="pred contains 1 NaN or infinite"):
        per_image_mse(bad, good)
    with pytest.raises(ValueError, match=r"normalised to \[-1, 1\], got values in \[0, 255\]"):
        per_image_mse(good, torch.full((2, 3, 32, 32), 255.0).index_fill_(0, torch.tensor([0]), 0.0))
