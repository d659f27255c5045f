"""A learned codec: an autoencoder trained on distortion + lambda x rate, its rate paid by a real bitstream.

Defined in notebook 10 (a learned codec). Notebook 08's spatial autoencoder was trained for the squared
error alone and entropy-coded afterwards; here the code's cost enters the loss (Ballé et al., 2017):

- **a learnt entropy model** of the quantised code, :class:`FactorizedLaplace`: one Laplace distribution
  per code channel (a learnt location and scale, shared by the channel's 4 x 4 positions), in units of
  the channel's quantisation step;
- **its bits**: ``-log2`` of the probability *mass* of each rounded value, ``CDF(y + 1/2) - CDF(y - 1/2)``
  (:func:`rate_bits`; a density is not a probability, and the log is base 2, not e);
- **training on D + lambda x R** (:func:`rate_distortion_step`): in training the rounding is replaced by
  uniform noise in [-1/2, 1/2) (the code's rounding error has that spread; noise has a gradient where
  rounding has none, and the mass of a noisy value is the density of the noisy code under the prior,
  so the rate term is the bits the rounded code will cost, smoothed). Straight-through rounding (round
  forward, identity backward) is the other common choice; noise is used here because it makes the
  training loss a proper upper bound in expectation and keeps the prior's gradient smooth, and the
  decoder learns to tolerate a code error of up to half a step, which is what it will see;
- :class:`LearnedCodec` wraps an encoder and a decoder (notebook 08's trained model, fine-tuned; its
  code optionally widened with channels that start unused, so the rate term can decide which to pay
  for) with a learnt quantisation step per channel and the prior;
- **real bitstreams**: :func:`code_test_images` drives ``constriction``'s ANS coder with the *same*
  learnt distributions (:func:`entropy_model_of`), decodes every bitstream back and checks it.

Units: D is the mean squared error of images in [-1, 1] (as every loss of the series); R is bits per
pixel (bits per image / 1,024, ``bpp``), so ``lambda`` is "MSE units per bpp". Side information: the
prior's location and scale and the step, three float32 per channel, sent once for all images
(:func:`side_bits`); the decoder's weights are part of the codec, not counted (as JPEG's decoder is not).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..baselines import score_reconstructions
from ..checks import check_float, check_image_batch, check_int
from ..images import ImageSet, normalize
from .. import studies
from ..settings import RunSettings
from . import entropy_coding

PIXELS = 32 * 32                 # bits per pixel = bits per image / PIXELS
MIN_MASS = 2.0 ** -40            # a mass below this is counted as this (40 bits): keeps log2 finite
MIN_SCALE = 0.02                 # in steps: a channel switched off still has a positive scale
MAX_LOG_SCALE = math.log(1e3)   # a hyperprior's scale is at most 1,000 steps (the coder's range stays small)
TAIL = 16.0                      # the coder covers loc +- TAIL x scale (Laplace tail mass 0.5 e^-16 ~ 2^-24)
SIDE_BITS_PER_CHANNEL = 3 * 32   # location, scale and step as float32
# The codec's own few parameters (log-steps, the prior's locations and log-scales) are stored divided by
# FAST, so Adam, which moves every parameter by about the learning rate per step, moves them FAST times
# faster than the network's weights: a log-step must travel about 1 in a fine-tuning run of a few hundred
# steps at a peak rate of 2e-3, a weight only a little.
FAST = 30.0
StepOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]


# -- the rate: bits of a rounded value under a distribution -----------------------------------------

def laplace_cdf(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The Laplace distribution's CDF at ``x`` (any shape, broadcast with ``loc`` and ``scale`` > 0)."""
    z = (x - loc) / scale
    return torch.where(z < 0, 0.5 * torch.exp(z.clamp(max=0)), 1 - 0.5 * torch.exp(-z.clamp(min=0)))


def laplace_density(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The Laplace density at ``x``: ``exp(-|x - loc| / scale) / (2 scale)`` (a density, not a probability)."""
    return torch.exp(-(x - loc).abs() / scale) / (2 * scale)


def rate_bits(y: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits per image of a code ``y`` (B, C, H, W), in steps, under a Laplace(loc, scale) per channel (C,).

    Each value costs ``-log2 P(y)``, ``P(y) = CDF(y + 1/2) - CDF(y - 1/2)``: the probability mass of the
    unit interval around it, which for a rounded ``y`` is the probability of that integer. Returns (B,),
    each image's bits summed over its values. The worked solution of exercise 10.1
    (its check: :func:`convae_utils.exercises.ex10.check_rate_bits`).

    The Laplace is symmetric about ``loc``, so each value is reflected to the lower side first: there both
    CDF values are small and their difference keeps float32's precision far into the tail (on the upper
    side they would both round to 1).
    """
    loc, scale = loc.view(1, -1, 1, 1), scale.view(1, -1, 1, 1)
    lower = loc - (y - loc).abs()                                     # the mirror image of y below loc
    mass = laplace_cdf(lower + 0.5, loc, scale) - laplace_cdf(lower - 0.5, loc, scale)
    return -torch.log2(mass.clamp_min(MIN_MASS)).flatten(1).sum(dim=1)


class FactorizedLaplace(nn.Module):
    """A learnt prior: one Laplace per code channel, location ``loc`` and scale ``exp(log_scale)``, in steps.

    "Factorised": every value is coded on its own, independent of the others (no context, no hyperprior);
    the channel's 16 positions share one distribution. Parameters (C,) each, no weight decay (1-D).
    """

    def __init__(self, channels: int, loc: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()
        channels = check_int("channels", channels, maximum=1024)
        start_loc = torch.zeros(channels) if loc is None else loc.detach().float()
        start = torch.ones(channels) if scale is None else scale.detach().float().clamp_min(MIN_SCALE)
        self.fast_loc = nn.Parameter(start_loc / FAST)               # stored / FAST (see FAST)
        self.fast_log_scale = nn.Parameter(start.log() / FAST)

    @property
    def loc(self) -> torch.Tensor:
        return self.fast_loc * FAST

    @property
    def scale(self) -> torch.Tensor:
        return (self.fast_log_scale * FAST).exp().clamp_min(MIN_SCALE)

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """Bits per image (B,) of ``y`` (B, C, H, W): :func:`rate_bits` under this prior."""
        return rate_bits(y, self.loc, self.scale)

    def bits_per_channel(self, y: torch.Tensor) -> torch.Tensor:
        """Mean bits per image spent on each channel, (C,)."""
        return torch.stack([rate_bits(y[:, [c]], self.loc[[c]], self.scale[[c]]).mean() for c in range(y.shape[1])])


# -- the codec: encoder, learnt steps, prior, decoder --------------------------------------------------

def _code_layers(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Conv2d, nn.Conv2d, callable]:
    """(encoder, decoder, the encoder's last conv, the decoder's first conv, a setter) of notebook 08's models."""
    encoder, decoder = model.encoder, model.decoder
    if isinstance(encoder, nn.Sequential) and isinstance(decoder, nn.Sequential):   # the learner's / the solution
        last, first = encoder[-1], decoder[0]

        def replace(new_last, new_first):
            encoder[-1], decoder[0] = new_last, new_first
    elif hasattr(encoder, "to_code") and hasattr(decoder, "features"):               # spatial.SpatialAutoencoder
        last, first = encoder.to_code, decoder.features[0]

        def replace(new_last, new_first):
            encoder.to_code, decoder.features[0] = new_last, new_first
    else:
        raise TypeError(f"expected notebook 08's spatial autoencoder (encoder and decoder as nn.Sequential, or "
                        f"spatial.SpatialAutoencoder), got {type(model).__name__}")
    if not (isinstance(last, nn.Conv2d) and isinstance(first, nn.Conv2d)):
        raise TypeError("the encoder must end, and the decoder start, with the code's nn.Conv2d")
    return encoder, decoder, last, first, replace


def widen_code(model: nn.Module, code_channels: int, *, seed: int = 0) -> nn.Module:
    """A copy of a spatial autoencoder whose code has ``code_channels`` channels; it reconstructs as before.

    The new channels of the encoder's last convolution start with PyTorch's default random weights
    (seeded), and the decoder's first convolution reads them with zero weights: the decoder ignores them
    until training finds them worth their bits. Fewer channels than the model has are refused.
    """
    model = copy.deepcopy(model)
    _, _, last, first, replace = _code_layers(model)
    code_channels = check_int("code_channels", code_channels, minimum=last.out_channels, maximum=1024)
    if code_channels == last.out_channels:
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new_last = nn.Conv2d(last.in_channels, code_channels, last.kernel_size, padding=last.padding)
        new_first = nn.Conv2d(code_channels, first.out_channels, first.kernel_size, padding=first.padding)
    with torch.no_grad():
        old = last.out_channels
        new_last.weight[:old] = last.weight
        new_last.bias[:old] = last.bias
        new_first.weight.zero_()
        new_first.weight[:, :old] = first.weight
        new_first.bias.copy_(first.bias)
    replace(new_last, new_first)
    return model


class LearnedCodec(nn.Module):
    """An encoder, a learnt quantisation step per code channel, a learnt prior and a decoder.

    ``latents(x)``: images (B, 3, 32, 32) in [-1, 1] -> the code in steps, (B, C, 4, 4), float;
    ``quantise(y)``: ``y + U(-1/2, 1/2)`` in training, ``round(y)`` in eval mode;
    ``decode(y_hat)``: (B, C, 4, 4) in steps -> images (B, 3, 32, 32) in [-1, 1];
    ``forward(x) = decode(quantise(latents(x)))``; ``encode`` is ``latents`` (the float code).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, step: torch.Tensor, prior: FactorizedLaplace):
        super().__init__()
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.fast_log_step = nn.Parameter(step.detach().float().log() / FAST)  # (C,), stored / FAST

    @property
    def step(self) -> torch.Tensor:
        """(C,) the quantisation step of each channel, in the encoder's output units."""
        return (self.fast_log_step * FAST).exp()

    @property
    def code_channels(self) -> int:
        return len(self.fast_log_step)

    @property
    def code_shape(self) -> tuple[int, int, int]:
        return (self.code_channels, 4, 4)

    @property
    def latent_dim(self) -> int:
        return 16 * self.code_channels

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(check_image_batch(x)) / self.step.view(1, -1, 1, 1)   # (B, C, 4, 4) in steps

    encode = latents

    def quantise(self, y: torch.Tensor) -> torch.Tensor:
        if self.training:
            return y + torch.rand_like(y) - 0.5
        return torch.round(y)

    def decode(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.decoder(y_hat * self.step.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantise(self.latents(x)))

    def rate(self, y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """Bits per image (B,) of the quantised (or noisy) code ``y_hat`` (B, C, 4, 4); ``y`` is the float code
        it came from (unused here: a factorised prior does not look at the image; a hyperprior does)."""
        return self.prior.bits(y_hat)


class Hyperprior(nn.Module):
    """Side values per image that set a Laplace location and scale for every code value (a hyperprior).

    A factorised prior gives a value the same distribution in every image: a photograph of sky and one
    of foliage pay for one width between them. Ballé et al. (2018) send a few more values per image,
    ``z``, computed from the code; the decoder reads ``z`` first and predicts from it each code value's
    distribution (here its location and scale: the "mean-scale" form of Minnen et al., 2018). ``z`` is
    quantised like the code and costs bits of its own, under a factorised Laplace per side value
    (:class:`FactorizedLaplace`), paid in every image's rate. Introduced in notebook 10 (its study codec).

    ``side(y)``: the code (B, C, 4, 4) in steps -> ``z`` (B, Z), floats (read from ``|y|``);
    ``params(z_hat)``: (B, Z) -> ``(loc, scale)``, each (B, C, 4, 4) in steps. The decoder's last layer
    starts at zero, so an untrained hyperprior gives every image the same distributions: the ``loc``
    and ``scale`` it was built with, per code value. Its two small networks belong to the codec's
    decoder and are not counted as bits (as the decoder's weights are not); ``z``'s prior and the base
    location and scale are side information, once for all images.
    """

    def __init__(self, channels: int, loc: torch.Tensor, scale: torch.Tensor, *, z_values: int = 4, hidden: int = 64):
        super().__init__()
        values = 16 * channels
        self.code_shape = (channels, 4, 4)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(values, hidden), nn.ReLU(), nn.Linear(hidden, z_values))
        self.decoder = nn.Sequential(nn.Linear(z_values, hidden), nn.ReLU(), nn.Linear(hidden, 2 * values))
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)
        self.z_prior = FactorizedLaplace(z_values)
        per_value = lambda a: a.detach().float().view(-1, 1).expand(-1, 16).reshape(-1)  # noqa: E731 (C,) -> (C*16,)
        self.base_loc = nn.Parameter(per_value(loc).clone())                       # (C*16,), no weight decay
        self.base_log_scale = nn.Parameter(per_value(scale.clamp_min(MIN_SCALE)).log().clone())

    @property
    def z_values(self) -> int:
        return self.z_prior.fast_loc.numel()

    def side(self, y: torch.Tensor) -> torch.Tensor:
        return self.encoder(y.abs())

    def params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.decoder(z_hat).view(-1, 2, *self.code_shape)
        loc = self.base_loc.view(self.code_shape) + out[:, 0]
        scale = (self.base_log_scale.view(self.code_shape) + out[:, 1]).clamp(max=MAX_LOG_SCALE).exp()
        return loc, scale.clamp_min(MIN_SCALE)

    def value_bits(self, y_hat: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Bits of each value (B, C, 4, 4) of ``y_hat`` under per-value Laplaces: as :func:`rate_bits`, unsummed."""
        lower = loc - (y_hat - loc).abs()
        mass = laplace_cdf(lower + 0.5, loc, scale) - laplace_cdf(lower - 0.5, loc, scale)
        return -torch.log2(mass.clamp_min(MIN_MASS))


class HyperpriorCodec(LearnedCodec):
    """A :class:`LearnedCodec` whose code's distributions come from a :class:`Hyperprior`, image by image.

    The rate of an image is the bits of its side values ``z`` plus the bits of its code under the
    distributions ``z`` predicts. ``z`` gets uniform noise in training and is rounded in eval mode, as
    the code is. The factorised ``prior`` is kept (it seeds the hyperprior's base distributions and
    names the channels) but does not price the code.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, step: torch.Tensor, prior: FactorizedLaplace,
                 hyper: Hyperprior):
        super().__init__(encoder, decoder, step, prior)
        self.hyper = hyper

    def side_values(self, y: torch.Tensor) -> torch.Tensor:
        """``z`` (B, Z) for the code ``y``: noisy in training, rounded in eval mode."""
        z = self.hyper.side(y)
        return z + torch.rand_like(z) - 0.5 if self.training else torch.round(z)

    def rate(self, y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        z_hat = self.side_values(y)
        loc, scale = self.hyper.params(z_hat)
        z_bits = self.hyper.z_prior.bits(z_hat[:, :, None, None])
        return z_bits + self.hyper.value_bits(y_hat, loc, scale).flatten(1).sum(dim=1)


@torch.no_grad()
def codec_from_autoencoder(model: nn.Module, sample: torch.Tensor, *, code_channels: int | None = None,
                           step_factor: float = 0.3, seed: int = 0) -> LearnedCodec:
    """A :class:`LearnedCodec` that starts from a trained spatial autoencoder (a copy; the model is untouched).

    ``sample``: a few hundred training images (N, 3, 32, 32) in [-1, 1]; each channel's step starts at
    ``step_factor`` x the spread of its codes on them, and the prior at their median and mean absolute
    deviation in steps. ``code_channels`` widens the code (:func:`widen_code`); a new channel starts with
    the old channels' mean step. Same arguments, same codec (the new channels' weights are seeded).
    Raises ValueError for a sample that is not (N, 3, 32, 32) floats in [-1, 1] (0..255 or NaN pixels;
    [0, 1] floats, ``ToTensor`` without ``Normalize``, lie inside the range and cannot be told apart here).
    """
    step_factor = check_float("step_factor", step_factor, low=0.0, high=100.0)
    check_image_batch(sample, "sample", check_values=True)  # its spread sets the steps: a 0..255 sample would not fail
    channels = code_channels or _code_layers(model)[2].out_channels
    wide = widen_code(model, channels, seed=seed).cpu().eval()
    encoder, decoder, *_ = _code_layers(wide)
    old = _code_layers(model)[2].out_channels
    codes = encoder(sample.cpu().float())                                         # (N, C, 4, 4)
    per_channel = codes.transpose(0, 1).flatten(1)                               # (C, N*16)
    step = step_factor * per_channel.std(dim=1).clamp_min(1e-6)
    step[old:] = step[:old].mean()
    y = per_channel / step[:, None]
    loc = y.median(dim=1).values
    scale = (y - loc[:, None]).abs().mean(dim=1)
    return LearnedCodec(encoder, decoder, step, FactorizedLaplace(channels, loc, scale)).train()


def with_hyperprior(codec: LearnedCodec, *, z_values: int = 4, seed: int = 0) -> HyperpriorCodec:
    """The same codec (its layers shared, not copied) with a :class:`Hyperprior` seeded by ``seed``, whose
    base distributions are the codec's factorised prior: untrained, it prices every image's code as the
    factorised prior does, plus the bits of its side values."""
    if isinstance(codec, HyperpriorCodec):
        raise TypeError("codec already has a hyperprior; give the codec it was made from")
    z_values = check_int("z_values", z_values, minimum=1, maximum=256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hyper = Hyperprior(codec.code_channels, codec.prior.loc, codec.prior.scale, z_values=z_values)
    hyper_codec = HyperpriorCodec(codec.encoder, codec.decoder, codec.step, codec.prior, hyper)
    return hyper_codec.train(codec.training)


def codec_builder(model: nn.Module, sample: torch.Tensor, *, code_channels: int | None = None,
                  step_factor: float = 0.3, hyperprior: bool = False):
    """``build(settings) -> LearnedCodec`` for ``runs.train_or_load``: :func:`codec_from_autoencoder`, seeded
    by the run's seed (``hyperprior``: then :func:`with_hyperprior`). The run's folder name and ``details``
    must say which trained model it starts from. The sample is checked here, before any run starts (as
    :func:`codec_from_autoencoder` checks it)."""
    check_image_batch(sample, "sample", check_values=True)

    def build(run_settings: RunSettings) -> LearnedCodec:
        codec = codec_from_autoencoder(model, sample, code_channels=code_channels, step_factor=step_factor,
                                       seed=run_settings.seed)
        return with_hyperprior(codec, seed=run_settings.seed) if hyperprior else codec

    build.__qualname__ = build.__name__ = "hyperprior_codec_from_autoencoder" if hyperprior else "codec_from_autoencoder"
    return build


# -- the step: distortion + lambda x rate --------------------------------------------------------------

DECODER_INPUTS = ("noisy", "rounded")


def rate_distortion_step(lmbda: float, decoder_input: str = "noisy"):
    """A step for the harness (``step(model, batch) -> (loss, logs)``): ``MSE + lmbda x bpp`` of a :class:`LearnedCodec`.

    In training the code gets uniform noise (see the module docstring), in eval mode it is rounded, so
    the validation loss uses the bits the rounded code really costs under the prior (the ideal; the
    coder adds a few bits per image, measured by :func:`code_test_images`). ``decoder_input``
    ``"rounded"``: the rate still sees the noisy code, but the decoder gets the rounded one, with the
    gradient passed straight through the rounding (Minnen & Singh, 2020), so it trains on the values it
    will decode. Logs ``mse`` and ``bpp``; the loss is exactly ``mse + lmbda * bpp`` (a test checks it).
    ``lmbda`` 0 trains for the MSE alone (the prior is then left as it is: a control without the rate term).
    Raises ValueError for a ``decoder_input`` other than ``"noisy"`` or ``"rounded"``.
    """
    lmbda = check_float("lmbda", lmbda, low=0.0, high=1e3, low_inclusive=True)
    if decoder_input not in DECODER_INPUTS:
        raise ValueError(f"decoder_input must be one of {', '.join(DECODER_INPUTS)}, got {decoder_input!r}")

    def step(model: LearnedCodec, batch: torch.Tensor) -> StepOutput:
        y = model.latents(batch)
        y_hat = model.quantise(y)                                      # (B, C, 4, 4), noisy or rounded
        decoded_from = y_hat
        if decoder_input == "rounded" and model.training:
            decoded_from = y + (torch.round(y) - y).detach()           # rounded forward, identity backward
        mse = F.mse_loss(model.decode(decoded_from).float(), batch)
        bpp = model.rate(y, y_hat.float()).mean() / PIXELS             # mean bits per image / pixels
        return mse + lmbda * bpp, {"mse": mse.detach(), "bpp": bpp.detach()}

    suffix = "" if decoder_input == "noisy" else f", {decoder_input}"
    step.__qualname__ = step.__name__ = f"rate_distortion_step({lmbda:g}{suffix})"
    record = {"step": "rate_distortion", "lambda": lmbda, "rate": "bits per pixel", "distortion": "MSE in [-1, 1]"}
    if decoder_input != "noisy":   # recorded only when not the default, so earlier runs keep their identity
        record["decoder_input"] = decoder_input
    step.describe = lambda: dict(record)
    return step


# -- honest bits: the learnt prior drives the entropy coder ---------------------------------------------

def side_bits(codec: LearnedCodec) -> int:
    """Bits the decoder needs once, for all images: location, scale and step per channel (float32 each);
    with a hyperprior, the step per channel and, as float32, the base location and scale of every code
    value and the side values' prior (location and scale of each)."""
    if isinstance(codec, HyperpriorCodec):
        return 32 * (codec.code_channels + 2 * codec.latent_dim + 2 * codec.hyper.z_values)
    return SIDE_BITS_PER_CHANNEL * codec.code_channels


def _laplace_model(loc: np.ndarray, scale: np.ndarray) -> entropy_coding.EntropyModel:
    """An :class:`~convae_utils.codecs.entropy_coding.EntropyModel` of Laplaces (D,), ranges ``loc +- TAIL x scale``."""
    loc, scale = np.asarray(loc, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    low = np.floor(loc - TAIL * scale - 1).astype(np.int32)
    high = np.ceil(loc + TAIL * scale + 1).astype(np.int32)
    return entropy_coding.EntropyModel(np.ones(len(loc), dtype=bool), loc.astype(np.float32),
                                       scale.astype(np.float32), low, high)


def entropy_model_of(codec: LearnedCodec) -> entropy_coding.EntropyModel:
    """The codec's learnt prior as an :class:`~convae_utils.entropy_coding.EntropyModel` over its flat code (C x 16).

    Each value takes its channel's Laplace (location, scale in steps) and a symbol range of
    ``loc +- TAIL x scale`` (beyond it the mass is below 2^-24; rarer symbols are clipped, and counted).
    """
    positions = codec.code_shape[1] * codec.code_shape[2]   # (C,) -> (C*16,), channel-major like flatten
    return _laplace_model(np.repeat(codec.prior.loc.detach().cpu().double().numpy(), positions),
                          np.repeat(codec.prior.scale.detach().cpu().double().numpy(), positions))


@torch.no_grad()
def rounded_codes(codec: LearnedCodec, images: ImageSet, batch_size: int = 500) -> np.ndarray:
    """Every image's rounded code, int32 (N, C x 16), on the CPU."""
    was = codec.training
    codec.eval()
    try:
        device = next(codec.parameters()).device
        return np.concatenate([torch.round(codec.latents(normalize(b.to(device)))).flatten(1).cpu().numpy()
                               for b in images.images.split(batch_size)]).astype(np.int32)
    finally:
        codec.train(was)


@torch.no_grad()
def decode_symbols(codec: LearnedCodec, symbols: np.ndarray, batch_size: int = 500) -> torch.Tensor:
    """Integer symbols (N, C x 16) -> reconstructions (N, 3, 32, 32) in [-1, 1], on the CPU."""
    was = codec.training
    codec.eval()
    try:
        device = next(codec.parameters()).device
        y = torch.from_numpy(symbols.astype(np.float32)).view(-1, *codec.code_shape)
        return torch.cat([codec.decode(b.to(device)).float().clamp(-1, 1).cpu() for b in y.split(batch_size)])
    finally:
        codec.train(was)


@torch.no_grad()
def _image_model(hyper: Hyperprior, z: np.ndarray) -> entropy_coding.EntropyModel:
    """The code's model for one image from its side values ``z`` (Z,), int, with ``hyper`` on the CPU: the
    same float computation on the coding and the decoding side (one image at a time), so both get the same model."""
    loc, scale = hyper.params(torch.from_numpy(z.astype(np.float32))[None])
    return _laplace_model(loc.flatten().double().numpy(), scale.flatten().double().numpy())


def _code_with_hyperprior(codec: HyperpriorCodec, images: ImageSet, batch_size: int = 500
                          ) -> tuple[entropy_coding.CodedImages, np.ndarray]:
    """Every image as one bitstream: its side values ``z``, then its code under the model ``z`` gives.

    Returns the coded images (symbols of the code, decoded back; ``bits`` of the whole stream;
    ``information_bits`` the ideal bits of ``z`` and the code) and the ideal bits of each value (N, C x 16).
    Without ``constriction`` the bits are the ideal ones (``ideal`` True), as in ``code_images``.
    """
    was = codec.training
    codec.eval()
    try:
        device = next(codec.parameters()).device
        ys, zs = [], []
        with torch.no_grad():
            for b in images.images.split(batch_size):
                y = codec.latents(normalize(b.to(device)))
                ys.append(torch.round(y).flatten(1).cpu())
                zs.append(codec.side_values(y).cpu())
        symbols, z = torch.cat(ys).numpy().astype(np.int32), torch.cat(zs).numpy().astype(np.int32)
        z_model = _laplace_model(codec.hyper.z_prior.loc.detach().cpu().numpy(),
                                 codec.hyper.z_prior.scale.detach().cpu().numpy())
        z = z_model.clip(z)
        hyper = copy.deepcopy(codec.hyper).cpu()
        models = [_image_model(hyper, row) for row in z]
        clipped = np.stack([m.clip(row[None])[0] for m, row in zip(models, symbols)])
        value_bits = np.stack([entropy_coding._bits_of(row, "laplace", m.mean, m.scale, m.low, m.high)
                               for m, row in zip(models, clipped)])
        information = z_model.information_bits(z) + value_bits.sum(axis=1)
        changed = int((clipped != symbols).sum())
        side = side_bits(codec)
        if not entropy_coding.coder_available():
            return entropy_coding.CodedImages(clipped, information, information, changed, side, ideal=True), value_bits
        streams = []
        for model, row, side_row in zip(models, clipped, z):
            coder = entropy_coding.new_coder()
            model.push(coder, row)            # a stack: the code first, so that z is read first
            z_model.push(coder, side_row)
            streams.append(entropy_coding.coder_bytes(coder))
        decoded = []
        for data in streams:
            coder = entropy_coding.coder_from_bytes(data)
            side_row = z_model.pop(coder)
            decoded.append(_image_model(hyper, side_row).pop(coder))
        decoded = np.stack(decoded)
        if not np.array_equal(decoded, clipped):
            bad = int((decoded != clipped).any(axis=1).sum())
            raise RuntimeError(f"{bad} of {len(clipped)} bitstreams did not decode to the symbols they came from")
        bits = np.array([8 * len(data) for data in streams], dtype=np.int64)
        return entropy_coding.CodedImages(decoded, bits, information, changed, side), value_bits
    finally:
        codec.train(was)


@dataclass(frozen=True)
class CodecPoint:
    """One learned codec on the test images: its row of a rate-distortion table and what the bits are made of."""

    row: pd.DataFrame            # score_reconstructions' columns + bpp, information_bits, side_bits, clipped
    bits_per_channel: np.ndarray  # (C,) mean ideal bits per image spent on each channel
    coded: entropy_coding.CodedImages


def code_test_images(name: str, codec: LearnedCodec, test: ImageSet, setting: str = "") -> CodecPoint:
    """Entropy-code every test image with the codec's own prior, decode each bitstream back, score it.

    ``bits_per_image`` is the mean size of the real bitstreams (whole bytes, each decoded and checked
    by :func:`convae_utils.codecs.entropy_coding.code_images`; without ``constriction`` on this machine
    they are the ideal bits and the row's ``ideal`` is True); ``information_bits`` the prior's ideal, so their
    difference is the coder's overhead per image; ``side_bits`` the prior and steps, once for all images.
    A :class:`HyperpriorCodec`'s image is one bitstream holding its side values and then its code, and
    both count in its bits.
    """
    if not isinstance(codec, LearnedCodec):
        raise TypeError(f"codec must be a LearnedCodec (learned.codec_from_autoencoder; notebook 08's autoencoder "
                        f"is its starting point, not a codec), got {type(codec).__name__}")
    if not isinstance(test, ImageSet):
        raise TypeError(f"test must be an ImageSet (e.g. data.prepare_data(...).test), got {type(test).__name__}; "
                        "wrap uint8 images (N, 3, 32, 32) in images.ImageSet")
    if isinstance(codec, HyperpriorCodec):
        coded, value_bits = _code_with_hyperprior(codec, test)
        per_channel = value_bits.reshape(len(value_bits), codec.code_channels, -1).sum(axis=2).mean(axis=0)
    else:
        coded = entropy_coding.code_images(entropy_model_of(codec), rounded_codes(codec, test))
        y = torch.from_numpy(coded.symbols.astype(np.float32)).view(-1, *codec.code_shape)
        with torch.no_grad():
            per_channel = codec.prior.bits_per_channel(y.to(codec.prior.loc.device)).cpu().numpy()
    reconstructions = decode_symbols(codec, coded.symbols)
    row = score_reconstructions(name, setting or name, reconstructions, test, bits_per_image=coded.bits_per_image)
    row = row.assign(bpp=row["bits_per_image"] / PIXELS, information_bits=float(coded.information_bits.mean()),
                     side_bits=side_bits(codec), clipped=coded.clipped, ideal=coded.ideal)
    return CodecPoint(row, per_channel, coded)


# -- reading curves against each other ------------------------------------------------------------------

def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The points no other point beats: fewer or equal bits and a higher PSNR (``bits_per_image``,
    ``psnr_of_mean_mse``), sorted by bits. The envelope of a family of curves (PCA at every k and step)."""
    ordered = points.sort_values(["bits_per_image", "psnr_of_mean_mse"], ascending=[True, False])
    keep, best = [], -math.inf
    for index, psnr in zip(ordered.index, ordered["psnr_of_mean_mse"]):
        if psnr > best:
            keep.append(index)
            best = psnr
    return ordered.loc[keep]


def bit_saving_at_equal_psnr(curve: pd.DataFrame, reference: pd.DataFrame, samples: int = 200) -> float:
    """A BD-rate style summary: the mean bit saving of ``curve`` over ``reference`` at equal PSNR, as a share.

    Both curves (their Pareto fronts) are read as log2(bits) against PSNR, piecewise linearly, over the
    PSNR range both cover; the mean difference of log2(bits) ``d`` gives a saving ``1 - 2**d`` (0.1: the
    curve needs 10 % fewer bits on average; negative: more). NaN when the PSNR ranges do not overlap.
    Bjøntegaard (2001) fits cubics instead; with a handful of points, straight segments say less they cannot know.
    """
    a, b = pareto_front(curve), pareto_front(reference)
    low = max(a["psnr_of_mean_mse"].min(), b["psnr_of_mean_mse"].min())
    high = min(a["psnr_of_mean_mse"].max(), b["psnr_of_mean_mse"].max())
    if not high > low:
        return float("nan")
    psnr = np.linspace(low, high, samples)
    log_a = np.interp(psnr, a["psnr_of_mean_mse"], np.log2(a["bits_per_image"]))
    log_b = np.interp(psnr, b["psnr_of_mean_mse"], np.log2(b["bits_per_image"]))
    return float(1 - 2 ** np.mean(log_a - log_b))


def points_beaten(curve: pd.DataFrame, reference: pd.DataFrame) -> int:
    """How many of ``reference``'s points some point of ``curve`` beats on both counts: fewer bits per image
    and a higher PSNR (``bits_per_image``, ``psnr_of_mean_mse``). A win that needs no equal-bits reading, for
    opponents whose rates do not overlap (WebP's lowest quality on 32x32 patches, study 10)."""
    bits, psnr = curve["bits_per_image"].to_numpy(), curve["psnr_of_mean_mse"].to_numpy()
    return sum(bool(((bits < b) & (psnr > p)).any())
               for b, p in zip(reference["bits_per_image"], reference["psnr_of_mean_mse"]))


# -- the plan shared by notebook 10 and its study ----------------------------------------------------------

@dataclass(frozen=True)
class CodecPlan:
    """What notebook 10 (and its study) trains: one fine-tuned codec per lambda, from notebook 08's model."""

    lambdas: tuple[float, ...]
    code_channels: int
    settings: RunSettings        # the fine-tuning runs' settings: patches, epochs, peak rate, seed
    step_factor: float = 0.3
    name: str = ""               # the plan's key in PLANS; named in run folders unless it is the profile's own
    hyperprior: bool = False     # HyperpriorCodec instead of the factorised prior
    decoder_input: str = "noisy"  # rate_distortion_step's: "rounded" decodes the rounded code in training

    def step(self, lmbda: float):
        """The plan's training step at ``lmbda``: :func:`rate_distortion_step`."""
        return rate_distortion_step(lmbda, self.decoder_input)

    def run_name(self, lmbda: float, starts_from: nn.Module) -> str:
        """The run folder's suffix, e.g. ``codec-c8-lambda0.03-from1a2b3c4d``: the plan (unless the profile's
        own), the code's channels, lambda, and the :func:`weights_digest` of the model it starts from (another
        seed or model: another folder)."""
        plan = f"-{self.name}" if self.name and self.name != self.settings.profile else ""
        return f"codec{plan}-c{self.code_channels}-lambda{lmbda:g}-from{weights_digest(starts_from)[:8]}"

    def builder(self, starts_from: nn.Module, sample: torch.Tensor):
        """``build(settings)`` for the plan's codecs: :func:`codec_builder` from ``starts_from``."""
        return codec_builder(starts_from, sample, code_channels=self.code_channels, step_factor=self.step_factor,
                             hyperprior=self.hyperprior)


PLANS = studies.CODEC_PLANS   # per profile, and the headless study's ("study"): convae_utils.studies


def codec_plan(base: RunSettings, plan: str | None = None) -> CodecPlan:
    """The fine-tuning plan for ``base`` (notebook 08's run settings): ``PLANS[plan or base.profile]``."""
    if not isinstance(base, RunSettings):
        raise TypeError(f"base must be a RunSettings (notebook 08's settings), got {type(base).__name__}")
    name = plan or base.profile
    if name not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}, got {name!r}")
    chosen = PLANS[name]
    changes = {"latent_dim": 16 * chosen["code_channels"], "num_epochs": chosen["num_epochs"], "lr": chosen["lr"]}
    if chosen["train_size"] is not None:
        changes["train_size"] = chosen["train_size"]
    return CodecPlan(tuple(chosen["lambdas"]), chosen["code_channels"], base.replace(**changes), name=name,
                     hyperprior=chosen.get("hyperprior", False), decoder_input=chosen.get("decoder_input", "noisy"))


def weights_digest(model: nn.Module) -> str:
    """16 hex digits naming a model's weights (its state dict's names, shapes and values).

    A codec fine-tuned from notebook 08's model records the digest of the weights it started from, so a
    run folder is never reused for a codec that started from other weights (another seed, a learner's model).
    """
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]

