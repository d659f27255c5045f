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
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from .checks import check_int
from .corruptions import Corruption
from .images import ImageSet, normalize
from .metrics import MAX_PSNR_DB, per_image_mse, per_image_psnr

COLUMNS = ("input", "denoiser", "plain")


def _device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@torch.inference_mode()
def _outputs(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    was_training = model.training
    model.eval()
    device = _device(model)
    try:
        return torch.cat([model(part.to(device)).float().cpu() for part in inputs.split(batch_size)])
    finally:
        model.train(was_training)


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


def summary_row(outputs: dict[str, torch.Tensor], label: str) -> dict:
    """One row of the denoising table: PSNR of the mean MSE (dB) per column, and the denoiser's gain."""
    row = {"corruption": label}
    for name in COLUMNS:
        mse = float(per_image_mse(outputs[name], outputs["clean"]).mean())
        row[f"{name} PSNR (dB)"] = min(MAX_PSNR_DB, -10.0 * math.log10(mse)) if mse > 0 else MAX_PSNR_DB
    row["denoiser - plain (dB)"] = row["denoiser PSNR (dB)"] - row["plain PSNR (dB)"]
    return row
