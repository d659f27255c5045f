"""Verdicts: a run's measurements read into sentences, whichever way they fall.

Defined in notebook 08 (an autoencoder built to compete); notebook 10 reads its codec the same way.
A notebook's verdict must follow its numbers: a gain is printed as a gain and a loss as a loss, a
target is "met" only when the number reaches it, and a run is called "not converged" only when its
last epoch still moved the loss. Each function here takes plain numbers (or a frame of
:func:`convae_utils.codecs.curves.compare_at_equal_bits`) and returns one line of text, so the tests
can feed it both sides of every threshold.

Rates are given in bits per image and, beside them, in bits per pixel (**bpp**, bits per image / 1,024
pixels of a 32 x 32 image), the unit of the compression literature.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from .codecs.bits import bits_per_pixel

CONVERGED_BELOW = 0.01      # a last epoch that moved the validation loss by less than 1% reads as converged


def rate(bits_per_image: float) -> str:
    """A rate as the series writes it: ``"143 bits (0.140 bpp)"``."""
    return f"{bits_per_image:,.0f} bits ({bits_per_pixel(bits_per_image):.3f} bpp)"


def _signed(db: float) -> str:
    return f"{round(float(db), 2) + 0.0:+.2f} dB"  # + 0.0: no "-0.00"


def target_line(label: str, gain_db: float, target_db: float) -> str:
    """``"<label>: +0.41 dB -> missed by 0.09 dB"`` or ``"... -> met"``; a NaN gain is "not measured".

    The gain is rounded to the 0.01 dB it is printed with before it is compared, so the printed number
    and the verdict never disagree (+0.50 printed is met for a +0.5 target).
    """
    if gain_db is None or not math.isfinite(float(gain_db)):
        return f"{label}: not measured in this run"
    shown = round(float(gain_db), 2) + 0.0
    verdict = "met" if shown >= target_db else f"missed by {target_db - shown:.2f} dB"
    return f"{label}: {_signed(shown)} -> {verdict}"


def gains_line(name: str, gains: pd.DataFrame, reference: str, margin_db: float = 0.0) -> str:
    """Every rate of ``name``'s curve inside ``reference``'s range: its gain or loss there, then a count.

    ``gains``: :func:`~convae_utils.codecs.curves.compare_at_equal_bits` of the curve against the
    reference (columns ``bits_per_image`` and ``gain_db``, NaN outside the reference's range). Gains
    and losses are both printed, at every rate; the line ends with how many rates are ahead, or says
    that no rate lies inside the reference's range (nothing to compare, not a win). A rate counts as
    ahead only where the gain is above ``margin_db`` (e.g. the error of reading a curve between its
    points on a straight line), and the line then says so.
    """
    inside = gains[gains["gain_db"].notna()].sort_values("bits_per_image")
    outside = len(gains) - len(inside)
    if not len(inside):
        return f"{name} against {reference}: no rate inside the range of bits {reference} reaches"
    ahead = int((inside["gain_db"].round(2) > margin_db).sum())
    points = ", ".join(f"{rate(b)} {_signed(g)}" for b, g in zip(inside["bits_per_image"], inside["gain_db"]))
    if len(inside) == 1:
        count = "ahead at its one rate" if ahead else "behind or level at its one rate"
    elif ahead == len(inside):
        count = f"ahead at all {len(inside)} rates"
    elif ahead == 0:
        count = f"behind or level at all {len(inside)} rates"
    else:
        count = f"ahead at {ahead} of {len(inside)} rates"
    tail = f" ({outside} of its rates outside {reference}'s range)" if outside else ""
    if margin_db > 0:
        count += f" (ahead: by more than {margin_db:.2f} dB)"
    return f"{name} against {reference} at equal bits: {points} -> {count}{tail}"


def convergence_line(val_losses: Sequence[float], threshold: float = CONVERGED_BELOW) -> str:
    """What the last epoch did to the validation loss, and whether that reads as converged.

    "not converged" only when the last epoch lowered the loss by more than ``threshold`` (a share);
    a smaller change, or a rise, says so instead; fewer than two epochs cannot show either.
    """
    losses = [float(v) for v in val_losses]
    if len(losses) < 2:
        return f"{len(losses)} epoch(s): too few to see whether the run converged"
    before, last = losses[-2], losses[-1]
    change = (before - last) / before
    if change > threshold:
        return (f"validation loss still fell by {change:.1%} in the last of {len(losses)} epochs "
                f"(more than {threshold:.0%}): not converged")
    if change >= 0:
        return (f"validation loss fell by {change:.1%} in the last of {len(losses)} epochs "
                f"(at most {threshold:.0%}): this run shows no sign of more to gain from more epochs")
    return f"validation loss rose by {-change:.1%} in the last of {len(losses)} epochs"
