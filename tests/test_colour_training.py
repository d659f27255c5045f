"""The colour path in CI: a short training run on photo patches must give coloured reconstructions.

A model that returns every picture in grey (the failure the workshop showed on shapes10) must fail
the same check; the test proves that too, so the threshold is not one any model passes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convae_utils.colour import colour_report
from convae_utils.models import build_autoencoder
from convae_utils.callbacks import reconstruct
from convae_utils.training import fit

photos = pytest.importorskip("convae_utils.photos")
pytest.importorskip("skimage")
pytest.importorskip("sklearn")

# Below what two short epochs on photo patches reach, far above what a grey output can reach (0).
MIN_CHROMA_KEPT_SHORT_RUN = 0.2
MAX_MEAN_COLOUR_ERROR_SHORT_RUN = 0.1


class _GreyOutput(nn.Module):
    """Wraps a model and replaces each output pixel by its channel mean: the grey failure mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        train = photos.make_photos10(512, seed=0)
        val = photos.make_photos10(64, seed=1)
        test = photos.make_photos10(200, seed=0, split="test")
        model = build_autoencoder(200, seed=0)  # the article's model, as the series runs it
        fit(model, train, val, num_epochs=2, batch_size=32, lr=2e-3, seed=0, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    return model, test


def _check(model: nn.Module, test) -> dict:
    return colour_report(test.images, reconstruct(model, test.images, channels_last=False))


def test_short_training_on_photos_learns_colour(trained):
    model, test = trained
    report = _check(model, test)
    assert report["chroma_kept"] >= MIN_CHROMA_KEPT_SHORT_RUN, report
    assert report["max_mean_colour_error"] <= MAX_MEAN_COLOUR_ERROR_SHORT_RUN, report


def test_a_grey_model_fails_the_same_check(trained):
    model, test = trained
    report = _check(_GreyOutput(model), test)
    assert report["chroma_kept"] < MIN_CHROMA_KEPT_SHORT_RUN
