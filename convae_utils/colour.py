"""Colour metrics: does a reconstruction keep the colour of its original, or only its grey levels?

Defined in notebook 03 (training), used by the series' colour check. An autoencoder can reach a
fair MSE while returning every picture in shades of grey: luminance carries most of the pixel
variance, colour (chroma) the rest. These numbers make that failure visible:

* **chroma** of a picture: mean over pixels and channels of ``|pixel - grey|`` on [0, 1], where
  ``grey`` is the mean of the pixel's three channels. A grey picture has chroma 0.
* **chroma kept**: the reconstructions' chroma as a fraction of the originals'.
* **mean colour**: the mean of each channel over all pictures, on [0, 1].

The series' check (issue 10): after the workshop profile the last epoch's exemplar
reconstructions keep at least :data:`MIN_CHROMA_KEPT` of the chroma and match the mean colour
per channel within :data:`MAX_MEAN_COLOUR_ERROR`.
"""

from __future__ import annotations

import torch

from .checks import describe_shape

MIN_CHROMA_KEPT = 0.6
MAX_MEAN_COLOUR_ERROR = 0.03


def _unit_float(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 (N, 3, H, W) or (3, H, W) -> float64 (N, 3, H, W) on [0, 1]."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a uint8 tensor of pixels 0..255 (e.g. ImageSet.images or a "
                         f"reconstruction from training.reconstruct), got {got}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3 or images.numel() == 0:
        raise ValueError(f"{name} must have shape (N, 3, H, W) with N >= 1 (RGB, channels first), "
                         f"got {describe_shape(images)}")
    return images.double().div_(255.0)


def chroma_map(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel colour offsets ``pixel - grey``: float64 (N, 3, H, W) on [-1, 1] (zero for grey)."""
    x = _unit_float(images, "images")
    return x - x.mean(dim=1, keepdim=True)


def mean_chroma(images: torch.Tensor) -> float:
    """Mean ``|pixel - grey level|`` on [0, 1] of uint8 images (N, 3, H, W); 0.0 for grey pictures."""
    return float(chroma_map(images).abs().mean())


def mean_colour(images: torch.Tensor) -> torch.Tensor:
    """Mean of each channel (R, G, B) over all pixels of uint8 images: float64 tensor (3,) on [0, 1]."""
    return _unit_float(images, "images").mean(dim=(0, 2, 3))


def colour_report(originals: torch.Tensor, reconstructions: torch.Tensor, *,
                  min_chroma_kept: float = MIN_CHROMA_KEPT,
                  max_mean_colour_error: float = MAX_MEAN_COLOUR_ERROR) -> dict:
    """How much colour the reconstructions keep; both arguments uint8 (N, 3, H, W) of one shape.

    Returns a dict of plain floats: ``chroma_original``, ``chroma_reconstruction``, ``chroma_kept``
    (their ratio; 0 for grey output), ``chroma_error`` (mean ``|offset_orig - offset_rec|``, the
    colour error with luminance taken out), ``mean_colour_original``/``_reconstruction`` (lists of
    3), ``max_mean_colour_error`` (largest per-channel difference) and ``passes`` (both limits met).

    Raises:
        ValueError: not uint8, not (N, 3, H, W), shapes differ, or the originals have no colour at
            all (chroma 0: "kept" would mean nothing).
    """
    if not isinstance(reconstructions, torch.Tensor) or not isinstance(originals, torch.Tensor) \
            or originals.shape != reconstructions.shape:
        got = [describe_shape(t) if isinstance(t, torch.Tensor) else type(t).__name__
               for t in (originals, reconstructions)]
        raise ValueError(f"originals and reconstructions must be tensors of one shape, got {got[0]} and {got[1]}")
    orig_offsets, rec_offsets = chroma_map(originals), chroma_map(reconstructions)
    chroma_original = float(orig_offsets.abs().mean())
    if chroma_original == 0.0:
        raise ValueError("the originals are grey (chroma 0): there is no colour to keep; "
                         "check colour on pictures that have some")
    chroma_reconstruction = float(rec_offsets.abs().mean())
    colour_original, colour_reconstruction = mean_colour(originals), mean_colour(reconstructions)
    max_error = float((colour_original - colour_reconstruction).abs().max())
    kept = chroma_reconstruction / chroma_original
    return {
        "chroma_original": chroma_original,
        "chroma_reconstruction": chroma_reconstruction,
        "chroma_kept": kept,
        "chroma_error": float((orig_offsets - rec_offsets).abs().mean()),
        "mean_colour_original": colour_original.tolist(),
        "mean_colour_reconstruction": colour_reconstruction.tolist(),
        "max_mean_colour_error": max_error,
        "passes": bool(kept >= min_chroma_kept and max_error <= max_mean_colour_error),
    }


def format_colour_report(report: dict) -> str:
    """One line for logs and notebooks, e.g. ``chroma kept 83% (0.052 of 0.062), mean colour off by 0.011``."""
    verdict = "passes" if report["passes"] else "FAILS"
    return (f"chroma kept {report['chroma_kept']:.0%} ({report['chroma_reconstruction']:.3f} of "
            f"{report['chroma_original']:.3f}), mean colour off by at most {report['max_mean_colour_error']:.3f} "
            f"per channel: {verdict} the colour check")
