"""Quantising a code: every way the series turns float code values into integers, and back.

Two quantisers, one home:

- **fixed-length** (:class:`Quantizer`, :func:`fit_quantizer`; introduced in the rate-distortion
  notebook 06): ``2**bits`` levels per code value over the training codes' range, so every value
  costs exactly ``bits`` bits whatever it is;
- **uniform step** (:func:`quantize`, :func:`dequantize`; introduced in notebook 08): integers
  ``round(code / step)`` with no range at all, for an entropy coder
  (:mod:`convae_utils.codecs.entropy_coding`) that spends few bits on likely integers and many on
  rare ones. A larger ``step`` means fewer bits and more distortion.

Both run on the CPU in float64 (exact for 16-bit levels) and hand back tensors on the codes' own
device, so codes on a GPU or an Apple-silicon device (whose MPS backend has no float64) quantise alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

from ..checks import check_float, describe_shape
from .bits import code_bits

QUANTIZER_BITS = (2, 4, 8, 16)  # bits per code value on offer


# -- uniform step: integers for an entropy coder --------------------------------------------------------

def as_code_array(codes, name: str = "codes") -> np.ndarray:
    """A (N, D) float array on the CPU from a tensor or array; a (N, C, H, W) code is flattened per image.

    Raises ValueError for fewer than two dimensions, no images, or NaN/infinite values.
    """
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().float().cpu().numpy()
    codes = np.asarray(codes)
    if codes.ndim < 2 or codes.shape[0] == 0:
        raise ValueError(f"expected {name} of shape (N, D) or (N, C, H, W) with N >= 1, got {codes.shape}")
    codes = codes.reshape(len(codes), -1)
    if not np.isfinite(codes).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return codes


def quantize(codes, step: float) -> np.ndarray:
    """Codes (N, D) or (N, C, H, W), float -> integer symbols ``round(code / step)``, int32 (N, D)."""
    step = check_float("step", step, low=0.0, high=math.inf)
    return np.rint(as_code_array(codes) / step).astype(np.int32)


def dequantize(symbols: np.ndarray, step: float) -> torch.Tensor:
    """Integer symbols (N, D) -> float32 codes ``symbols * step`` as a tensor (N, D) on the CPU."""
    return torch.from_numpy(np.asarray(symbols, dtype=np.float32) * np.float32(step))


# -- fixed length: 2**bits levels over the training range ------------------------------------------------

@dataclass(frozen=True, eq=False)
class Quantizer:
    """Uniform quantiser of codes (N, latent_dim): ``2**bits`` levels per code unit over [low, high].

    Attributes:
        low, high: (latent_dim,) float32 ranges per code unit on the CPU, taken from the training codes.
        bits: bits per code value (one of ``QUANTIZER_BITS``).
        percentile: 0 for the training min/max, else the lower percentile used (see fit_quantizer).

    ``low``/``high`` are side information shared by all images (2 x 32 bits per unit, once per
    model), not counted in the bits per image. Introduced in notebook 06.
    """

    low: torch.Tensor
    high: torch.Tensor
    bits: int
    percentile: float

    @property
    def levels(self) -> int:
        return 2 ** self.bits

    @property
    def step(self) -> torch.Tensor:
        """(latent_dim,) distance between neighbouring levels; 0 for a unit that was constant in training."""
        return self._step64().float()

    def _step64(self) -> torch.Tensor:
        return (self.high.double() - self.low.double()) / (self.levels - 1)

    def bits_per_image(self) -> int:
        return code_bits(len(self.low), self.bits)

    def _check_codes(self, codes) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[1] != len(self.low):
            got = describe_shape(codes) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"expected codes of shape (N, {len(self.low)}), got {got}")
        return codes

    def quantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Float codes (N, latent_dim) -> integer levels 0..2**bits - 1 (uint8 up to 8 bits, else int32).

        Values outside the training range are clipped to its ends. Computed on the CPU in float64
        (16-bit levels stay exact; MPS has no float64), returned on the codes' device.
        """
        codes = self._check_codes(codes)
        values = codes.detach().cpu().double()
        low, step = self.low.cpu().double(), self._step64().cpu()
        safe = torch.where(step > 0, step, torch.ones_like(step))  # constant units: every value -> level 0
        index = ((values - low) / safe).round().clamp(0, self.levels - 1)
        index = torch.where(step > 0, index, torch.zeros_like(index))
        return index.to(torch.uint8 if self.bits <= 8 else torch.int32).to(codes.device)

    def dequantize(self, levels: torch.Tensor) -> torch.Tensor:
        """Integer levels (N, latent_dim) -> float32 codes ``low + level * step``, on the levels' device
        (computed on the CPU in float64, as :meth:`quantize`)."""
        levels = self._check_codes(levels)
        low, step = self.low.cpu().double(), self._step64().cpu()
        return (low + levels.detach().cpu().double() * step).float().to(levels.device)

    def roundtrip(self, codes: torch.Tensor) -> torch.Tensor:
        """dequantize(quantize(codes)): what the decoder sees after the code was stored."""
        return self.dequantize(self.quantize(codes))


def fit_quantizer(train_codes: torch.Tensor, bits: int, *, percentile: float = 0.0) -> Quantizer:
    """A uniform quantiser whose range per code unit comes from the training codes (N, latent_dim).

    ``percentile`` 0 (default) takes each unit's min and max over the training set: no training
    value is clipped, and the rounding error of any value inside the range is at most half a step.
    A percentile ``p`` in (0, 50) takes the p-th and (100 - p)-th percentiles instead: a narrower
    range, finer steps, and the rare values outside are clipped. ``bits`` must be one of 2, 4, 8, 16.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits not in QUANTIZER_BITS:
        raise ValueError(f"bits must be one of {', '.join(map(str, QUANTIZER_BITS))} bits per code value, "
                         f"got {bits!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, Real) or not 0 <= percentile < 50:
        raise ValueError(f"percentile must be a number in [0, 50), got {percentile!r}")
    if not isinstance(train_codes, torch.Tensor) or train_codes.ndim != 2 or len(train_codes) == 0:
        got = describe_shape(train_codes) if isinstance(train_codes, torch.Tensor) else type(train_codes).__name__
        raise ValueError(f"expected train_codes of shape (N, latent_dim) with N >= 1, got {got}")
    codes = train_codes.detach().float().cpu()
    if not bool(torch.isfinite(codes).all()):
        raise ValueError("train_codes contain NaN or infinite values")
    if percentile == 0:
        low, high = codes.min(dim=0).values, codes.max(dim=0).values
    else:
        q = torch.tensor([percentile / 100, 1 - percentile / 100])
        low, high = torch.quantile(codes, q, dim=0)
    return Quantizer(low.contiguous(), high.contiguous(), int(bits), float(percentile))
