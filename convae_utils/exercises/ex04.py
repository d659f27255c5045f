"""Notebook 04's exercise (the bottleneck): one PSNR per image."""

from __future__ import annotations

import math

import torch

from .. import metrics
from .core import CodeExercise, Wrong, as_tensor, close

NUMBERS = []


def psnr_per_image(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, [0, 1] pixel scale, peak 1) of each image; inputs (N, 3, 32, 32) in [-1, 1]; returns (N,)."""
    reconstructions01 = (reconstructions.clamp(-1, 1) + 1) / 2        # [-1, 1] -> [0, 1]
    originals01 = (originals + 1) / 2
    mse = (reconstructions01 - originals01).pow(2).flatten(1).mean(dim=1)   # (N,): one MSE per image
    return 10 * torch.log10(1 / mse)


def check_psnr(candidate) -> None:
    """Run ``candidate`` on 5 noisy images; compare with ``metrics.per_image_psnr``."""
    generator = torch.Generator().manual_seed(0)
    originals = torch.rand(5, 3, 32, 32, generator=generator) * 2 - 1
    noise = torch.randn(5, 1, 1, 1, generator=generator).abs() * 0.2 + 0.05
    reconstructions = (originals + noise * torch.randn(5, 3, 32, 32, generator=generator)).clamp(-1, 1)
    got = as_tensor(candidate(reconstructions, originals), "the PSNRs").double()
    expected = metrics.per_image_psnr(reconstructions, originals).double()
    if got.ndim == 0 or got.numel() == 1:
        raise Wrong("you returned one number for the whole batch; return one PSNR per image, shape (N,): "
                    "average the squared error over each image's values only (dims 1, 2, 3)")
    if got.shape != expected.shape:
        raise Wrong(f"expected one PSNR per image, shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
    if close(got, expected, 1e-3):
        return
    difference = got - expected
    mse01 = 10 ** (-expected / 10)
    if close(difference, torch.full_like(difference, -10 * math.log10(4)), 1e-3):
        raise Wrong("every value is 6.02 dB too low: you computed the MSE on the [-1, 1] scale, where it is 4 times "
                    "larger; map both images to [0, 1] first ((x + 1) / 2)")
    if close(got, 2 * expected, 1e-3):
        raise Wrong("every value is twice too large: PSNR is 10 log10(1 / MSE), or 20 log10(1 / RMSE), "
                    "not 20 log10(1 / MSE)")
    if close(got, expected / 2, 1e-3):
        raise Wrong("every value is half what it should be: PSNR is 10 log10(1 / MSE); 10 log10(1 / RMSE) "
                    "takes the root twice over (20 log10(1 / RMSE) is right)")
    if close(got, -expected, 1e-3):
        raise Wrong("the signs are flipped: PSNR = 10 log10(1 / MSE) = -10 log10(MSE), higher is better")
    if close(got, 10 * torch.log(1 / mse01), 1e-3):
        raise Wrong("you took the natural logarithm: PSNR uses log10 (torch.log10), in decibels")
    if close(got, 10 * torch.log10(1 / (mse01 * 255 ** 2)), 1e-3):
        raise Wrong("every value is 48.1 dB too low: the MSE is on the 0-255 scale while the peak is 1; use "
                    "images on [0, 1] (peak 1)")
    raise Wrong(f"for images with per-image PSNRs {', '.join(f'{v:.2f}' for v in expected.tolist())} dB you gave "
                f"{', '.join(f'{v:.2f}' for v in got.tolist())}")


CODE = [CodeExercise(
    "04.5", "Write psnr_per_image(reconstructions, originals): one PSNR in dB per image, on the [0, 1] pixel "
            "scale, from images on [-1, 1].", psnr_per_image, check_psnr)]
