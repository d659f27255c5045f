"""Colour metrics: chroma, mean colour, and the report that tells a grey reconstruction apart."""

from __future__ import annotations

import pytest
import torch

from convae_utils.colour import (MAX_MEAN_COLOUR_ERROR, MIN_CHROMA_KEPT, colour_report, format_colour_report,
                                 mean_chroma, mean_colour)


def _flat(rgb, n=1, size=8) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1).expand(n, 3, size, size).contiguous()


def _grey_of(images: torch.Tensor) -> torch.Tensor:
    """Every pixel replaced by its channel mean: the grey failure mode, exactly."""
    return images.float().mean(dim=1, keepdim=True).round().expand_as(images).to(torch.uint8).contiguous()


def test_chroma_of_grey_is_zero_and_of_a_pure_colour_is_known():
    assert mean_chroma(_flat([90, 90, 90])) == 0.0
    # Pure red (1, 0, 0): grey 1/3, offsets (2/3, 1/3, 1/3) -> mean 4/9.
    assert mean_chroma(_flat([255, 0, 0])) == pytest.approx(4 / 9)


def test_mean_colour_per_channel():
    images = torch.cat([_flat([255, 0, 0]), _flat([0, 0, 255])])
    assert mean_colour(images).tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert mean_colour(_flat([51, 102, 153])[0]).tolist() == pytest.approx([0.2, 0.4, 0.6])  # one (3, H, W) image


def test_perfect_reconstruction_passes_and_keeps_all_chroma():
    images = torch.randint(0, 256, (4, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    report = colour_report(images, images.clone())
    assert report["chroma_kept"] == pytest.approx(1.0) and report["chroma_error"] == 0.0
    assert report["max_mean_colour_error"] == 0.0 and report["passes"]
    assert "passes" in format_colour_report(report)


def test_grey_reconstruction_fails_the_check():
    originals = torch.cat([_flat([200, 60, 90]), _flat([30, 160, 220])])
    report = colour_report(originals, _grey_of(originals))
    assert report["chroma_kept"] < 0.01 < MIN_CHROMA_KEPT
    assert report["max_mean_colour_error"] > MAX_MEAN_COLOUR_ERROR  # grey also moves the mean colour
    assert not report["passes"] and "FAILS" in format_colour_report(report)


def test_shifted_colour_fails_on_the_mean_even_with_chroma_kept():
    originals = _flat([200, 60, 90], n=2)
    shifted = _flat([200, 60, 120], n=2)  # blue +30/255 = 0.118 off
    report = colour_report(originals, shifted)
    assert report["max_mean_colour_error"] == pytest.approx(30 / 255)
    assert not report["passes"]


@pytest.mark.parametrize("bad", [torch.zeros(2, 3, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.uint8), [1, 2, 3]])
def test_bad_images_are_rejected(bad):
    with pytest.raises(ValueError, match="uint8|shape"):
        mean_chroma(bad)


def test_report_needs_matching_shapes_and_some_colour():
    with pytest.raises(ValueError, match="one shape"):
        colour_report(_flat([200, 0, 0], n=2), _flat([200, 0, 0], n=3))
    with pytest.raises(ValueError, match="grey"):
        colour_report(_flat([80, 80, 80]), _flat([80, 80, 80]))
