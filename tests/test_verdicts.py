"""Verdict lines follow the numbers both ways: gains and losses, targets met and missed, converged or not."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from convae_utils import verdicts


def gains(*pairs) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["bits_per_image", "gain_db"])


@pytest.mark.parametrize("gain, target, expected", [
    (0.56, 0.5, "+0.56 dB -> met"),
    (0.41, 0.5, "+0.41 dB -> missed by 0.09 dB"),
    (0.499, 0.5, "+0.50 dB -> met"),           # printed as +0.50, so met: the verdict follows the printed number
    (-0.3, 0.5, "-0.30 dB -> missed by 0.80 dB"),
    (-0.001, 0.0, "+0.00 dB -> met"),          # no "-0.00"
])
def test_target_line_follows_the_number(gain, target, expected):
    assert verdicts.target_line("x", gain, target) == f"x: {expected}"


def test_target_line_never_calls_a_missing_number_met():
    assert "not measured" in verdicts.target_line("x", math.nan, 0.5)


def test_gains_line_prints_losses_as_well_as_gains():
    line = verdicts.gains_line("model", gains((100, -0.4), (200, 0.3), (400, math.nan)), "JPEG")
    assert "100 bits (0.098 bpp) -0.40 dB" in line and "200 bits (0.195 bpp) +0.30 dB" in line
    assert "ahead at 1 of 2 rates" in line and "1 of its rates outside JPEG's range" in line


@pytest.mark.parametrize("values, expected", [
    ((0.2, 0.5), "ahead at all 2 rates"),
    ((-0.2, -0.5), "behind or level at all 2 rates"),
    ((0.004, -0.5), "behind or level at all 2 rates"),   # +0.00 printed is not ahead
])
def test_gains_line_counts_follow_the_signs(values, expected):
    line = verdicts.gains_line("m", gains(*zip((100, 200), values)), "PCA's best codec")
    assert line.endswith(expected)


def test_gains_line_with_one_rate_says_so():
    assert verdicts.gains_line("m", gains((100, -0.3)), "JPEG").endswith("behind or level at its one rate")
    assert verdicts.gains_line("m", gains((100, 0.3)), "JPEG").endswith("ahead at its one rate")


def test_a_margin_keeps_hundredths_from_counting_as_wins():
    line = verdicts.gains_line("m", gains((100, 0.01), (200, 0.2)), "PCA's best codec", margin_db=0.05)
    assert "+0.01 dB" in line and "ahead at 1 of 2 rates (ahead: by more than 0.05 dB)" in line


def test_gains_line_without_overlap_claims_nothing():
    line = verdicts.gains_line("m", gains((100, math.nan)), "JPEG")
    assert "no rate inside" in line and "ahead" not in line


@pytest.mark.parametrize("losses, expected, unexpected", [
    ((1.0, 0.95), "not converged", "no sign"),
    ((1.0, 0.995), "no sign of more to gain", "not converged"),
    ((1.0, 1.02), "rose by 2.0%", "not converged"),
    ((1.0,), "too few", "not converged"),
])
def test_convergence_is_called_from_the_last_epoch(losses, expected, unexpected):
    line = verdicts.convergence_line(losses)
    assert expected in line and unexpected not in line


def test_bits_per_pixel_of_a_32x32_image():
    from convae_utils.codecs.bits import bits_per_pixel

    assert bits_per_pixel(1024) == 1.0 and bits_per_pixel(24_576) == 24.0  # the raw RGB image: 24 bpp
    assert verdicts.rate(512) == "512 bits (0.500 bpp)"
