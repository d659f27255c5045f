"""Scoring a denoiser: PSNR of the corrupted input, the denoiser's output and the plain autoencoder's.

Introduced in notebook 07 (what the codes are for). A denoising autoencoder is the article's
architecture trained with ``training.fit(..., step=training.denoising_step(corrupt))`` (:mod:`convae_utils.corruptions`): the
encoder sees a corrupted image, the loss compares the output with the clean one. To judge it, the
**test** images are corrupted once with a fixed seed and three things are scored against the clean
images, on the [0, 1] pixel scale (:mod:`convae_utils.metrics`):

- ``input``: the corrupted image itself (doing nothing);
- ``denoiser``: the denoiser fed the corrupted image;
- ``plain``: the plain autoencoder (trained on clean images) fed the same corrupted image.

The clean image is never a model input here: it is only the target.

A classical denoiser stands beside them, so that "the denoiser helps" has a yardstick that needs no
training: :func:`gaussian_blur`, with its strength tuned on the **validation** images
(:func:`tune_blur`), never on the test images it is then scored on.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from torchvision.transforms.functional import gaussian_blur as _torchvision_blur

from .checks import check_float, check_int
from .corruptions import Corruption
from .images import ImageSet, normalize
from .inference import batched, evaluating, model_device
from .metrics import MAX_PSNR_DB, per_image_mse, per_image_psnr

COLUMNS = ("input", "denoiser", "plain")


@torch.inference_mode()
def _outputs(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    with evaluating(model):
        return batched(model, inputs, device=model_device(model), batch_size=batch_size)


def corrupt_set(test: ImageSet, corruption: Corruption, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) float tensors (N, 3, 32, 32) on the [-1, 1] scale; the same seed, the same corruption."""
    if not isinstance(test, ImageSet):
        raise TypeError(f"test must be a convae_utils.images.ImageSet, got {type(test).__name__}")
    if not isinstance(corruption, Corruption):
        raise TypeError("corruption must come from corruptions.gaussian_noise or corruptions.random_mask, "
                        f"got {type(corruption).__name__}")
    clean = normalize(test.images.cpu())
    return clean, corruption.apply(clean, seed=seed)


def denoise(denoiser: nn.Module, plain: nn.Module, test: ImageSet, corruption: Corruption, *,
            seed: int | None = None, batch_size: int = 500) -> dict[str, torch.Tensor]:
    """Corrupt ``test`` and run both models on the corrupted images.

    Returns a dict of float (N, 3, 32, 32) tensors on the [-1, 1] scale (CPU): ``clean`` (the
    target), ``input`` (corrupted), ``denoiser`` and ``plain`` (the models' outputs, unclamped).
    """
    check_int("batch_size", batch_size)
    clean, corrupted = corrupt_set(test, corruption, seed=seed)
    return {"clean": clean, "input": corrupted,
            "denoiser": _outputs(denoiser, corrupted, batch_size),
            "plain": _outputs(plain, corrupted, batch_size)}


def psnr_table(outputs: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Per-image PSNR (dB, [0, 1] scale) of ``input``, ``denoiser`` and ``plain`` against ``clean``: (N, 3)."""
    missing = [k for k in ("clean", *COLUMNS) if k not in outputs]
    if missing:
        raise ValueError(f"outputs lacks {', '.join(missing)}; pass what denoise() returns")
    frame = pd.DataFrame({name: per_image_psnr(outputs[name], outputs["clean"]).numpy().astype("float64")
                          for name in COLUMNS})
    frame.index.name = "image"
    return frame


def psnr_of_mean_mse(pred: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR (dB, [0, 1] scale) of the mean per-image MSE of ``pred`` against ``clean``, both (N, 3, 32, 32) on [-1, 1]."""
    mse = float(per_image_mse(pred, clean).double().mean())
    return min(MAX_PSNR_DB, -10.0 * math.log10(mse)) if mse > 0 else MAX_PSNR_DB


def summary_row(outputs: dict[str, torch.Tensor], label: str) -> dict:
    """One row of the denoising table: PSNR of the mean MSE (dB) per column, and the denoiser's gain."""
    row = {"corruption": label}
    for name in COLUMNS:
        row[f"{name} PSNR (dB)"] = psnr_of_mean_mse(outputs[name], outputs["clean"])
    row["denoiser - plain (dB)"] = row["denoiser PSNR (dB)"] - row["plain PSNR (dB)"]
    return row


BLUR_SIGMAS = (0.0, 0.5, 0.7, 1.0, 1.4, 2.0)  # pixels; 0 = leave the corrupted image as it is


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur float images (N, 3, 32, 32) on [-1, 1] with a Gaussian of ``sigma`` pixels (0: unchanged).

    The kernel spans 3 sigma on each side (at least 3x3), with reflected borders (torchvision).
    Introduced in notebook 07 as the classical denoiser beside the denoising autoencoder.
    """
    sigma = check_float("sigma (pixels)", sigma, low=0.0, high=10.0, low_inclusive=True, high_inclusive=True)
    if sigma == 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    return _torchvision_blur(images, kernel_size=2 * radius + 1, sigma=sigma)


def tune_blur(val: ImageSet, corruption: Corruption, sigmas=BLUR_SIGMAS, *, seed: int | None = None) -> dict:
    """Pick the blur that best restores corrupted **validation** images (PSNR of the mean MSE).

    Returns ``{"sigma": best sigma, "psnr": {sigma: dB}}``. Tune here, then score the chosen sigma
    once on the test images: choosing it on the test images would flatter the baseline.
    """
    if not sigmas:
        raise ValueError("sigmas is empty: give the blur strengths to try, e.g. denoising.BLUR_SIGMAS")
    clean, corrupted = corrupt_set(val, corruption, seed=seed)
    scores = {float(sigma): psnr_of_mean_mse(gaussian_blur(corrupted, sigma), clean) for sigma in sigmas}
    return {"sigma": max(scores, key=scores.get), "psnr": scores}
