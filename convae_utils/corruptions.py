"""Corruptions for a denoising autoencoder: additive Gaussian noise and random masking.

Introduced in notebook 07 (what the codes are for). A corruption is a callable that maps a batch of
clean images on the model's [-1, 1] scale, float (B, 3, 32, 32), to corrupted ones of the same shape
and scale; ``training.denoising_step(corruption)`` feeds the corrupted batch to the encoder and keeps
the clean batch as the target. Levels are given on the [0, 1] pixel scale, the scale image-quality
numbers are quoted on (:mod:`convae_utils.metrics`):

- :func:`gaussian_noise` ``(sigma)``: adds noise of standard deviation ``sigma`` (in [0, 1] pixel
  units, so ``2 * sigma`` on the [-1, 1] scale), then clips to the valid range, as a camera would;
- :func:`random_mask` ``(fraction)``: sets a random ``fraction`` of the pixel positions (all three
  channels) to mid-grey, 0 on the [-1, 1] scale.

Randomness comes from the corruption's own generator, seeded: the same corruption called on the same
batches gives the same results, and the global random state is left alone. :meth:`Corruption.apply`
corrupts a whole set with a fixed seed (the test images of an evaluation are always corrupted alike).
"""

from __future__ import annotations

import torch

from .checks import check_float, check_image_batch, check_int

KINDS = ("gaussian", "mask")
MASK_FILL = 0.0  # mid-grey on the [-1, 1] scale: what a masked pixel becomes


class Corruption:
    """A seeded corruption of [-1, 1] image batches; build it with :func:`gaussian_noise` or :func:`random_mask`.

    Attributes:
        kind: ``"gaussian"`` or ``"mask"``.
        level: noise standard deviation on the [0, 1] pixel scale, or the masked share of pixels.
        seed: seeds the corruption's own generator (not the global one).
    """

    def __init__(self, kind: str, level: float, seed: int = 0):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
        self.kind, self.level, self.seed = kind, float(level), check_int("seed", seed, minimum=0)
        self._generator = torch.Generator().manual_seed(self.seed)

    # -- names ------------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """A human-readable name, e.g. ``"Gaussian noise sigma=0.1"`` or ``"mask 50%"``: ASCII, so it prints on any console."""
        if self.kind == "gaussian":
            return f"Gaussian noise sigma={self.level:g}"
        return f"mask {self.level:.0%}"

    @property
    def tag(self) -> str:
        """A name safe for folders, e.g. ``"gauss0.1"`` or ``"mask0.5"``."""
        return f"{'gauss' if self.kind == 'gaussian' else 'mask'}{self.level:g}"

    def describe(self) -> dict:
        """The corruption as plain values (for a run folder's config)."""
        return {"kind": self.kind, "level": self.level, "seed": self.seed}

    def __repr__(self) -> str:
        return f"Corruption({self.kind!r}, {self.level:g}, seed={self.seed})"

    # -- applying it --------------------------------------------------------------------------------

    def reset(self) -> "Corruption":
        """Restart the generator from ``seed``; returns self."""
        self._generator.manual_seed(self.seed)
        return self

    def __call__(self, clean: torch.Tensor) -> torch.Tensor:
        """Corrupt a float batch (B, 3, 32, 32) on the [-1, 1] scale; returns a new tensor, same device.

        The random draws are made on the CPU from the corruption's generator (the same numbers on
        every device) and moved to the batch's device.
        """
        check_image_batch(clean, "clean")
        if self.kind == "gaussian":
            noise = torch.randn(clean.shape, generator=self._generator).to(clean.device, clean.dtype)
            return (clean + (2.0 * self.level) * noise).clamp(-1.0, 1.0)  # sigma on [0, 1] = 2 sigma on [-1, 1]
        keep = torch.rand((clean.shape[0], 1, *clean.shape[2:]), generator=self._generator) >= self.level
        keep = keep.to(clean.device)                                       # (B, 1, 32, 32): all channels alike
        return torch.where(keep, clean, torch.full_like(clean, MASK_FILL))

    def apply(self, clean: torch.Tensor, *, seed: int | None = None, batch_size: int = 1000) -> torch.Tensor:
        """Corrupt a whole set with a fixed seed (default: the corruption's own) without touching its state.

        ``clean``: float (N, 3, 32, 32) in [-1, 1]. The same seed always gives the same corrupted set.
        """
        check_int("batch_size", batch_size)
        twin = Corruption(self.kind, self.level, self.seed if seed is None else seed)
        return torch.cat([twin(part) for part in clean.split(batch_size)])


def gaussian_noise(sigma: float, *, seed: int = 0) -> Corruption:
    """Additive Gaussian noise of standard deviation ``sigma`` on the [0, 1] pixel scale, clipped to the range.

    Introduced in notebook 07. ``sigma`` must lie in [0, 1] (0.1 is visible noise, 0.3 is heavy);
    raises ValueError otherwise.
    """
    sigma = check_float("sigma (noise standard deviation on the [0, 1] pixel scale)", sigma,
                        low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
    return Corruption("gaussian", sigma, seed)


def random_mask(fraction: float, *, seed: int = 0) -> Corruption:
    """Set a random ``fraction`` of pixel positions (all channels) to mid-grey.

    Introduced in notebook 07. ``fraction`` must lie in [0, 1): masking every pixel leaves nothing
    to rebuild from. Raises ValueError otherwise.
    """
    fraction = check_float("fraction (share of masked pixels)", fraction, low=0.0, high=1.0, low_inclusive=True)
    return Corruption("mask", fraction, seed)
