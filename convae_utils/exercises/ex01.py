"""Notebook 01's exercise (data): what a pixel becomes after normalising, shifting and converting back."""

from __future__ import annotations

from .core import Exercise, check_number


def shifted_pixel(pixel: int, shift: float) -> int:
    """normalize -> + shift -> to_uint8, for one pixel (the arithmetic of notebook 01's conversions)."""
    value = pixel / 127.5 - 1.0 + shift
    return round(min(max((value + 1.0) / 2.0, 0.0), 1.0) * 255.0)


NUMBERS = [Exercise(
    "01.2", "Normalise a pixel of value 200, add 0.5, convert back with images.to_uint8: which value comes out?",
    shifted_pixel(200, 0.5),
    "200 / 127.5 - 1 is about 0.57; add 0.5. What does images.denormalize do with values above 1?",
    "200 / 127.5 - 1 = 0.569; + 0.5 = 1.069, outside [-1, 1]. `denormalize` maps it to (1.069 + 1) / 2 = 1.03 "
    "and clamps it to 1.0, so `to_uint8` gives 255: every pixel from about 191 upwards ends at 255, and the "
    "brightest details are lost (clipped).", unit="(pixel value)")]
CODE = []


def check_to_uint8_clipping(answer) -> bool:
    """Notebook 01, exercise 2: pixel 200, normalised, + 0.5, back to uint8."""
    return check_number(NUMBERS[0], answer)
