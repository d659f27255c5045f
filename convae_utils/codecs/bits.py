"""Counting bits: what a code costs per image, against the 24,576-bit image it stands for; nats to bits.

Defined in notebook 02 (a code's size beside the image's) and the rate-distortion notebook 06; used
wherever a latent size appears (notebooks 02, 04 and 06, the command line's run summary). A CIFAR-10
image is 3 x 32 x 32 values of 8 bits: 24,576 bits. A latent code of ``latent_dim`` float32 values is
``32 * latent_dim`` bits, so the article's latent 1,000 (32,000 bits) is *larger* than the image it
claims to compress, and latent 200 (6,400 bits) is 26 % of it. Quantising the code to 8 or 4 bits per
value (:mod:`convae_utils.codecs.quantizers`) cuts that by 4 or 8; entropy coding
(:mod:`convae_utils.codecs.entropy_coding`) counts the bits of a real bitstream instead. A rate in
nats (notebook 09's KL term) is :func:`nats_to_bits` of it.

This module imports only the package's checks, so any layer may use it.
"""

from __future__ import annotations

import math

import torch

from ..checks import check_int
from ..errors import warn

IMAGE_VALUES = 3 * 32 * 32  # values (pixels x channels) per image: 3,072
IMAGE_PIXELS = 32 * 32  # pixels per image: 1,024 (bits per pixel, "bpp", counts per pixel, not per value)
IMAGE_BITS = IMAGE_VALUES * 8  # 24,576 bits: the uint8 image, uncompressed
FLOAT32_BITS = 32
NATS_PER_BIT = math.log(2.0)  # 1 bit = ln 2 nats


class CodeSizeWarning(UserWarning):
    """A latent code holds as many bits as the image it encodes, or more: it compresses nothing."""


def code_bits(latent_dim: int, bits_per_value: int = FLOAT32_BITS) -> int:
    """Bits of one image's code: ``latent_dim * bits_per_value`` (32 for float32, 8 or 4 once quantised).

    Raises ValueError/TypeError unless both are whole numbers >= 1 (``bits_per_value`` at most 64).
    """
    latent_dim = check_int("latent_dim", latent_dim)
    bits_per_value = check_int("bits_per_value", bits_per_value, maximum=64)
    return latent_dim * bits_per_value


def bits_summary(latent_dim: int, bits_per_value: int = FLOAT32_BITS) -> dict:
    """The size of one code against the image, as a dict.

    Keys: ``latent_dim``, ``bits_per_value``, ``code_bits``, ``image_bits`` (24,576),
    ``share_of_image`` (code_bits / image_bits, 1.0 = as large as the image), ``compression``
    (image_bits / code_bits), ``smaller_than_image`` (bool) and ``text`` (one line for a printout,
    e.g. ``"latent 200 x 32 bits = 6,400 bits, 26.0% of the 24,576-bit image"``).
    """
    bits = code_bits(latent_dim, bits_per_value)
    share = bits / IMAGE_BITS
    text = (f"latent {latent_dim:,} x {bits_per_value} bits = {bits:,} bits, "
            f"{100 * share:.1f}% of the {IMAGE_BITS:,}-bit image")
    if bits >= IMAGE_BITS:
        text += " (no smaller than the image itself)"
    return {
        "latent_dim": int(latent_dim),
        "bits_per_value": int(bits_per_value),
        "code_bits": bits,
        "image_bits": IMAGE_BITS,
        "share_of_image": share,
        "compression": IMAGE_BITS / bits,
        "smaller_than_image": bits < IMAGE_BITS,
        "text": text,
    }


def warn_if_code_not_smaller(latent_dim: int, bits_per_value: int = FLOAT32_BITS) -> bool:
    """Warn (:class:`CodeSizeWarning`) when the code holds >= 24,576 bits; return True if it warned.

    At float32 that is any latent size of 768 or more; at 8 bits, 3,072 or more.
    """
    summary = bits_summary(latent_dim, bits_per_value)
    if summary["smaller_than_image"]:
        return False
    needed = -(-IMAGE_BITS // bits_per_value) - 1  # the largest latent size that still saves bits
    # Said as a fact with its condition, not an order: notebooks 02, 04 and 06 build latent 1,000 on
    # purpose (the article's larger bottleneck), and a warning must not tell a learner to undo the lesson.
    warn(
        f"{summary['text']}: a code this size compresses nothing. That is fine for comparing bottlenecks "
        f"(the article's latent 1,000 is one); to compress, use a latent size of at most {needed:,} at "
        f"{bits_per_value} bits per value, or quantise the code (convae_utils.codecs.quantizers.fit_quantizer).",
        CodeSizeWarning)
    return True


def bits_per_pixel(bits_per_image):
    """Bits per image -> bits per pixel (bpp), the compression literature's unit: divide by the 1,024 pixels.

    Works on a number, an array or a pandas column alike; the uncompressed image is 24 bpp.
    """
    return bits_per_image / IMAGE_PIXELS


def nats_to_bits(nats: torch.Tensor | float) -> torch.Tensor | float:
    """Nats -> bits (divide by ln 2): a rate from a natural logarithm (notebook 09's KL term) in bits."""
    return nats / NATS_PER_BIT
