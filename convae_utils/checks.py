"""Argument checks shared by the package: fail where a bad value enters, say what was expected."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

IMAGE_SHAPE = (3, 32, 32)


def check_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[minimum, maximum]``, else raise with the accepted range."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum:,}" if maximum is not None else ""
        raise ValueError(f"{name} must be at least {minimum:,}{upper}, got {value:,}")
    return int(value)


def check_float(name: str, value, *, low: float, high: float, low_inclusive: bool = False,
                high_inclusive: bool = False) -> float:
    """Return ``value`` as a float if it is finite and inside the interval, else raise."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    ok_low = value >= low if low_inclusive else value > low
    ok_high = value <= high if high_inclusive else value < high
    if not (ok_low and ok_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must lie in {left}{low:g}, {high:g}{right}, got {value:g}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {accepted}, got {value!r}")
    return value


def describe_shape(x: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in x.shape) + ")"


def check_image_batch(x, name: str = "images", *, check_values: bool = False) -> torch.Tensor:
    """Check that ``x`` is a float batch of shape (N, 3, 32, 32).

    The shape and dtype checks cost nothing and run on every forward pass. ``check_values`` also
    rejects NaN/inf pixels and values outside [-1, 1]; it reads the data (a device sync on a GPU),
    so it is for entry points, not the training step.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, 3, 32, 32), got {type(x).__name__}")
    if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        got = describe_shape(x)
        hint = ""
        if x.ndim == 3 and tuple(x.shape) == IMAGE_SHAPE:
            hint = "; for a single image use x.unsqueeze(0)"
        elif x.ndim == 4 and x.shape[-1] == 3:
            hint = "; channels come first in PyTorch: use x.permute(0, 3, 1, 2)"
        raise ValueError(f"expected {name} of shape (N, 3, 32, 32), got {got}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"expected {name} of shape (N, 3, 32, 32) with N >= 1, got an empty batch")
    if not x.is_floating_point():
        raise ValueError(
            f"expected {name} as floats normalised to [-1, 1], got dtype {x.dtype}; "
            "convert uint8 pixels with convae_utils.images.normalize(images)"
        )
    if check_values:
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"expected {name} without NaN or infinite values, found {bad:,}")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
            raise ValueError(
                f"expected {name} normalised to [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                "use convae_utils.images.normalize on uint8 pixels (0..255)"
            )
    return x


def check_matches_weights(x: torch.Tensor, weight: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Check that ``x`` has the dtype and device of the layer ``weight`` it enters, as that layer requires.

    Without this, float64 images or images on another device fail deep inside ``conv.py`` with
    "Input type (double) and bias type (float) should be the same". Under ``torch.autocast`` the
    layers cast their inputs themselves, so only the device is checked there.
    """
    if x.device != weight.device:
        raise ValueError(f"expected {name} on {weight.device} (where the model is), got {name} on {x.device}; "
                         f"move them with {name}.to({str(weight.device)!r}) or the model with model.to({str(x.device)!r})")
    if x.dtype != weight.dtype and not _autocast_enabled(x.device.type):
        dtype, got = (str(t).removeprefix("torch.") for t in (weight.dtype, x.dtype))
        raise ValueError(f"expected {name} of dtype {dtype} (the model's weights), got {got}; "
                         f"convert them with {name}.to(torch.{dtype}) or the model with model.to(torch.{got})")
    return x


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch before 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
