"""Notebook 10's exercise (a learned codec): write the rate term, the bits of a rounded code under a Laplace prior.

The worked solution is the package's own :func:`convae_utils.codecs.learned.rate_bits` (what the codec's
step charges). The check compares the learner's numbers with the right ones and with each usual slip
(:data:`RATE_SLIPS`: a density for the mass, nats for bits, an interval not centred on the value, the CDF
alone, a sign), so each slip is named in its own words; the batch summed or averaged, and the values of an
image not summed, are told apart by the shape returned; ``loc`` and ``scale`` not viewed as (1, C, 1, 1)
by the size error it raises.
"""

from __future__ import annotations

import math

import torch

from ..codecs import learned
from .core import CodeExercise, Wrong

NUMBERS = []

def _rate_variants(y: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """The right bits per image and the usual slips, each (B,) (or a scalar for the batch slips)."""
    l4, s4 = loc.view(1, -1, 1, 1), scale.view(1, -1, 1, 1)
    per_image = lambda bits: bits.flatten(1).sum(dim=1)  # noqa: E731
    mass = lambda lo, hi: (learned.laplace_cdf(hi, l4, s4) - learned.laplace_cdf(lo, l4, s4)).clamp_min(learned.MIN_MASS)  # noqa: E731
    right = learned.rate_bits(y, loc, scale)
    return {
        "right": right,
        "density": per_image(-torch.log2(learned.laplace_density(y, l4, s4))),
        "nats": right * math.log(2),
        "density in nats": per_image(-torch.log(learned.laplace_density(y, l4, s4))),
        "no half above": per_image(-torch.log2(mass(y - 1, y))),
        "no half below": per_image(-torch.log2(mass(y, y + 1))),
        "cdf only": per_image(-torch.log2(learned.laplace_cdf(y, l4, s4).clamp_min(learned.MIN_MASS))),
        "sign": -right,
        "mean per value": right / y[0].numel(),
        "reversed, clamped": per_image(-torch.log2(mass(y + 0.5, y - 0.5))),
    }


RATE_SLIPS = {
    "density": "you took -log2 of the density at y; a density is not a probability (it can exceed 1, and its "
               "bits go negative). The probability of a rounded value is the mass of its interval: "
               "CDF(y + 1/2) - CDF(y - 1/2)",
    "density in nats": "you took -log of the density at y: a density is not a probability, and the log must be "
                       "base 2. Use the mass CDF(y + 1/2) - CDF(y - 1/2) and torch.log2",
    "nats": "your numbers are the right ones times ln 2 = 0.693: that is nats (natural log). Bits need torch.log2 "
            "(or divide by math.log(2))",
    "no half above": "you took CDF(y) - CDF(y - 1): the interval a rounded value stands for is centred on it, "
                     "from y - 1/2 to y + 1/2",
    "no half below": "you took CDF(y + 1) - CDF(y): the interval a rounded value stands for is centred on it, "
                     "from y - 1/2 to y + 1/2",
    "cdf only": "you took -log2 CDF(y), the probability of everything up to y; the probability of the rounded "
                "value y is CDF(y + 1/2) - CDF(y - 1/2)",
    "sign": "your bits are negative: the cost of a value is -log2 of its probability (probabilities are at "
            "most 1, so bits are at least 0)",
    "mean per value": "you averaged each image's values: that is bits per value. The rate of an image is the SUM "
                      "of its values' bits (sum over C, H and W), one number per image",
    "reversed, clamped": "every value costs the floor's 40 bits: your masses are negative or zero, so the clamp "
                         "replaced them all. Subtract the other way round: CDF(y + 1/2) - CDF(y - 1/2)",
}


def _rate_check_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(10)
    y = torch.round(torch.randn(4, 3, 4, 4, generator=generator) * torch.tensor([0.5, 1.5, 3.0]).view(1, 3, 1, 1))
    return y, torch.tensor([0.0, 0.3, -0.4]), torch.tensor([0.4, 1.2, 2.5])


def check_rate_bits(candidate) -> None:
    """Run ``candidate(y, loc, scale)`` on a small code; raise ``exercises.Wrong`` with the slip it recognises.

    Refused, each with its own message: the density instead of the mass, nats instead of bits, an interval
    not centred on the value (the +-1/2 forgotten), -log2 of the CDF alone, a negative sign, the batch
    summed or averaged into one number, the values of each image not summed, ``loc`` and ``scale`` left
    (C,) instead of viewed as (1, C, 1, 1), y rounded inside (right on integers, wrong on the noisy code
    training hands it). Any other way to compute the right numbers (another CDF, log-space,
    torch.distributions) passes.
    """
    y, loc, scale = _rate_check_inputs()
    variants = _rate_variants(y, loc, scale)
    right = variants["right"]
    try:
        got = candidate(y.clone(), loc.clone(), scale.clone())
    except NotImplementedError:  # not written yet: check_code hands back the solution and says so
        raise
    except RuntimeError as error:
        if "must match the size of tensor" in str(error):   # loc, scale (C,) broadcast against W, not C
            raise Wrong(f"expected loc and scale of shape (1, C, 1, 1) = (1, {y.shape[1]}, 1, 1) against y "
                        f"{tuple(y.shape)}; as ({y.shape[1]},) they line up with y's last axis (W = {y.shape[3]}), "
                        "not its channels. View them first: loc.view(1, -1, 1, 1), scale.view(1, -1, 1, 1) "
                        f"(PyTorch said: {str(error).splitlines()[0]})") from None
        raise Wrong(f"rate_bits(y, loc, scale) failed on y (4, 3, 4, 4), loc and scale (3,): "
                    f"{type(error).__name__}: {str(error).splitlines()[0]}") from None
    except (TypeError, ValueError, IndexError) as error:
        raise Wrong(f"rate_bits(y, loc, scale) failed on y (4, 3, 4, 4), loc and scale (3,): "
                    f"{type(error).__name__}: {str(error).splitlines()[0]}") from None
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"return a tensor of bits per image, shape (B,); got {type(got).__name__}")
    got = got.detach().float()
    close = lambda a, b: a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-3, atol=0.02))  # noqa: E731
    if got.ndim == 0:
        if close(got, right.sum()):
            raise Wrong("you summed over the batch: return each image's own bits, shape (B,) "
                        "(sum over the channel and position axes only, e.g. bits.flatten(1).sum(dim=1))")
        if close(got, right.mean()):
            raise Wrong("you averaged over the batch: return each image's own bits, shape (B,); the step "
                        "takes the mean over the batch itself")
        raise Wrong(f"return one number per image, shape ({len(y)},); got a single number")
    if tuple(got.shape) == tuple(y.shape):
        raise Wrong(f"you returned the bits of every value, {tuple(got.shape)}: sum each image's values, "
                    "e.g. bits.flatten(1).sum(dim=1), to get shape (B,)")
    if tuple(got.shape) != (len(y),):
        raise Wrong(f"return one number per image, shape ({len(y)},); got {tuple(got.shape)}")
    if close(got, right):
        _check_on_a_noisy_code(candidate, y, loc, scale, close)
        return
    if bool(torch.isnan(got).any()):
        raise Wrong("your bits are NaN: log2 of a negative number. Is the mass CDF(y - 1/2) - CDF(y + 1/2)? "
                    "Subtract the other way round: CDF(y + 1/2) - CDF(y - 1/2), upper minus lower")
    for slip, message in RATE_SLIPS.items():
        if close(got, variants[slip]):
            raise Wrong(message)
    numbers = lambda t: "[" + ", ".join(f"{v:.2f}" for v in t.tolist()) + "]"  # noqa: E731
    raise Wrong(f"expected {numbers(right)} bits for the 4 test images, got {numbers(got)}: each value costs -log2(CDF(y + 1/2) - CDF(y - 1/2)) with "
                "learned.laplace_cdf(x, loc, scale), loc and scale viewed as (1, C, 1, 1)")


def _check_on_a_noisy_code(candidate, y, loc, scale, close) -> None:
    """In training the rate term gets the code plus uniform noise, not integers: the same formula must hold there."""
    generator = torch.Generator().manual_seed(11)
    noisy = y + torch.rand(y.shape, generator=generator) - 0.5           # what the step hands the rate in training
    right = learned.rate_bits(noisy, loc, scale)
    got = candidate(noisy.clone(), loc.clone(), scale.clone())
    got = got.detach().float() if isinstance(got, torch.Tensor) else got
    if isinstance(got, torch.Tensor) and close(got, right):
        return
    if isinstance(got, torch.Tensor) and close(got, learned.rate_bits(torch.round(noisy), loc, scale)):
        raise Wrong("right on integers, but you round y inside: in training the rate term is handed the noisy code "
                    "y + U(-1/2, 1/2), and rounding there changes its bits and stops the gradient. Use y as it comes")
    raise Wrong("right on integers, but not on the noisy code the training step hands the rate (y + U(-1/2, 1/2)): "
                "keep the same formula for any y, -log2(CDF(y + 1/2) - CDF(y - 1/2)), with no rounding or integer tricks")


RATE_TASK = ("Exercise 10.1: write rate_bits(y, loc, scale): the bits per image, shape (B,), of a rounded code y "
             "(B, C, H, W) under a Laplace(loc[c], scale[c]) per channel: each value costs "
             "-log2(CDF(y + 1/2) - CDF(y - 1/2)).")


CODE = [CodeExercise("10.1", RATE_TASK, learned.rate_bits, check_rate_bits,
                     imports="import torch\n\nfrom convae_utils.codecs.learned import MIN_MASS, laplace_cdf")]
