"""Notebook 06's exercises (rate and distortion): bits of a code, PSNR units, and PCA's encoder and decoder."""

from __future__ import annotations

import math

import torch

from .. import baselines
from ..codecs.bits import IMAGE_VALUES
from .core import CodeExercise, Exercise, Wrong, as_tensor, check_number, close

NUMBERS = [
    Exercise(
        "06.2", "Bits of one latent-200 code quantised to 2 bits per value?",
        200 * 2,
        "Bits of a code = latent_dim x bits per value (bits.code_bits).",
        "200 x 2 = 400 bits, 1.6% of the 24,576-bit image (float32 would be 6,400 bits).", unit="bits"),
    Exercise(
        "06.3", "UvA's reconstruction error of 50 (squared error summed over an image, [-1, 1] scale): how many dB of PSNR?",
        -10.0 * math.log10(50 / IMAGE_VALUES / 4),
        "Divide by the 3,072 values of an image to get the MSE on [-1, 1], by 4 more for [0, 1]; PSNR = 10 log10(1 / MSE).",
        "50 / 3,072 = 0.0163 per value on [-1, 1]; / 4 = 0.00407 on [0, 1]; 10 log10(1 / 0.00407) = 23.9 dB. "
        "`baselines.convert_units(sse_pm1=50)` gives the same.", tolerance=0.1, unit="dB"),
]


def check_code_bits(answer) -> bool:
    """Notebook 06, exercise 2: bits of a latent-200 code at 2 bits per value."""
    return check_number(NUMBERS[0], answer)


def check_psnr_conversion(answer) -> bool:
    """Notebook 06, exercise 3: UvA's summed error of 50 in dB of PSNR."""
    return check_number(NUMBERS[1], answer)


def pca_round_trip(x: torch.Tensor, mean: torch.Tensor,
                   components: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA codes and reconstructions of flattened images.

    x: (N, 3072) images on [-1, 1]; mean: (3072,) the mean training image; components: (k, 3072)
    orthonormal rows. Returns codes (N, k) and reconstructions (N, 3072).
    """
    codes = (x - mean) @ components.T                  # (N, 3072) -> (N, k): centre, then project
    reconstructions = codes @ components + mean        # (N, k) -> (N, 3072): back, then un-centre
    return codes, reconstructions


def check_pca(candidate) -> None:
    """Run ``candidate`` on 8 images with a 5-component PCA fitted on 32 others; compare with baselines' PCA."""
    generator = torch.Generator().manual_seed(0)
    pixels = (torch.rand(40, 3, 32, 32, generator=generator) * 120 + 60).to(torch.uint8)
    pca = baselines.fit_pca(pixels[:32], 5, solver="exact")
    x = (pixels[32:].float() / 127.5 - 1).flatten(1)               # (8, 3072) on [-1, 1]
    result = candidate(x.clone(), pca.mean.clone(), pca.components.clone())
    if not isinstance(result, tuple) or len(result) != 2:
        raise Wrong(f"return a pair (codes, reconstructions), got {type(result).__name__}")
    codes, reconstructions = (as_tensor(value, what) for value, what in zip(result, ("codes", "reconstructions")))
    want_codes = pca.encode(pixels[32:])
    want_reconstructions = pca.decode(want_codes).flatten(1)
    if codes.shape != want_codes.shape:
        raise Wrong(f"codes should have shape (N, k) = {tuple(want_codes.shape)}, got {tuple(codes.shape)}: "
                    "components holds one component per row, so project with x @ components.T")
    if not close(codes, want_codes):
        if close(codes, x @ pca.components.T):
            raise Wrong("your codes skip the centring: subtract the mean image before projecting, (x - mean) @ components.T")
        if close(codes, (x + pca.mean) @ pca.components.T):
            raise Wrong("your codes add the mean image: subtract it before projecting, (x - mean) @ components.T")
        raise Wrong("your codes differ from PCA's: codes = (x - mean) @ components.T")
    if reconstructions.shape != want_reconstructions.shape:
        raise Wrong(f"reconstructions should have shape (N, 3072) = {tuple(want_reconstructions.shape)}, got "
                    f"{tuple(reconstructions.shape)}: go back with codes @ components")
    if not close(reconstructions, want_reconstructions):
        if close(reconstructions + pca.mean, want_reconstructions):
            raise Wrong("your reconstructions lack the mean image: add it back after codes @ components")
        if close(reconstructions, x):
            raise Wrong("your reconstructions are the images themselves: rebuild them from the codes, "
                        "codes @ components + mean")
        raise Wrong("your reconstructions differ from PCA's: codes @ components + mean")


CODE = [CodeExercise(
    "06.5", "Write pca_round_trip(x, mean, components) -> (codes, reconstructions): PCA's encoder and decoder.",
    pca_round_trip, check_pca)]
