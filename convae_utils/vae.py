"""A variational autoencoder: the encoder gives a mean and a log-variance, the code is sampled, the KL is a rate.

Defined in notebook 09 (from rebuilding to generating). The encoder and decoder are those of notebook
08's model (:mod:`convae_utils.spatial`), so that the VAE differs from the plain autoencoder in its
objective only. The encoder's last layer gives twice the code's channels: the first half is the mean
``mu`` of the posterior q(z | x), the second half its log-variance ``log sigma^2``.

The loss, per image and averaged over the batch (:func:`vae_step`)::

    loss = distortion + beta * KL / 3072
         = MSE per value on the [-1, 1] scale (the series' training loss)
           + beta * (KL of q(z | x) from the prior N(0, I), in nats per image) / (3,072 values per image)

With ``beta = 1`` this is the negative evidence lower bound per value (up to a constant) of a decoder
whose pixels carry Gaussian noise of variance 1/2 on the [-1, 1] scale: a very noisy decoder, which is
why useful VAEs on photographs take ``beta`` well below 1. The KL is also a **rate**: the bits per image
that a code drawn from q costs to send with a code book built on the prior (bits-back coding), so the
notebooks report it in bits per image beside the bit counts of notebook 06.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_float, check_image_batch, check_int
from .settings import RunSettings
from .spatial import CODE_SIZE, SpatialDecoder, SpatialEncoder

IMAGE_VALUES = 3 * 32 * 32          # values per image: the KL is divided by it to sit beside the MSE per value
NATS_PER_BIT = math.log(2.0)        # 1 bit = ln 2 nats
LOGVAR_RANGE = (-30.0, 20.0)        # log-variances are clamped here: exp() stays finite in float32


# -- the two pieces the learner writes in notebook 09 ------------------------------------------------

def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample of N(mean, exp(logvar)) written as ``mean + sigma * eps`` with ``eps ~ N(0, I)``.

    The randomness sits in ``eps``, outside the network, so gradients flow to ``mean`` and ``logvar``
    (the reparameterisation trick). ``mean`` and ``logvar`` have the same shape, e.g. (N, C, 4, 4);
    so has the result. ``sigma = exp(logvar / 2)``: the log-variance halved is the log of the spread.
    """
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * eps


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mean, exp(logvar)) || N(0, I) ) of each image, in nats: a tensor (N,) of values >= 0.

    Closed form, per code value: ``0.5 * (mean^2 + exp(logvar) - 1 - logvar)``, summed over every
    value of an image's code (all dimensions but the first). Divide by ``ln 2`` for bits (:func:`nats_to_bits`).
    """
    per_value = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)
    return per_value.flatten(1).sum(dim=1)


def nats_to_bits(nats: torch.Tensor | float) -> torch.Tensor | float:
    """Nats -> bits (divide by ln 2)."""
    return nats / NATS_PER_BIT


# -- the model ---------------------------------------------------------------------------------------

class VariationalAutoencoder(nn.Module):
    """An encoder that gives (mean, log-variance), a sampled code, a decoder.

    Args:
        encoder: image (N, 3, 32, 32) -> (N, 2C, ...): the first C channels are the mean, the other C
            the log-variance (so its code has twice the channels of the decoder's input).
        decoder: code (N, C, ...) -> image (N, 3, 32, 32) in [-1, 1].

    ``forward(x)`` decodes the *mean*: deterministic, what :func:`convae_utils.metrics.evaluate` and a
    codec use. Training samples the code (:func:`vae_step`). ``encode(x)`` is the mean; ``posterior(x)``
    gives both halves; ``sample(n)`` decodes draws from the prior N(0, I).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, code_shape: tuple[int, ...]):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.code_shape = tuple(int(s) for s in code_shape)   # one image's code, e.g. (C, 4, 4) or (L,)

    @property
    def latent_dim(self) -> int:
        """Number of code values per image (C x 4 x 4 for a spatial code)."""
        return math.prod(self.code_shape)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each (N, *code_shape)."""
        stats = self.encoder(x)                                   # (N, 2C, ...)
        mean, logvar = stats.chunk(2, dim=1)                      # (N, C, ...) each
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (N, *code_shape): the deterministic code of each image."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, *code_shape) -> images (N, 3, 32, 32) in [-1, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = 0, temperature: float = 1.0) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior N(0, temperature^2 I): images (n, 3, 32, 32) in [-1, 1].

        The same ``seed`` gives the same images (``None``: PyTorch's global generator). The draws are
        made on the CPU and moved to the model's device, so they are the same on every device.
        """
        n = check_int("n", n)
        temperature = check_float("temperature", temperature, low=0.0, high=100.0)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        z = torch.randn((n, *self.code_shape), generator=generator) * temperature
        was_training = self.training
        self.eval()
        try:
            param = next(self.parameters())
            return self.decode(z.to(param.device, param.dtype)).float().cpu()
        finally:
            self.train(was_training)


def build_vae(code_channels: int = 4, width: int = 32, depth: int = 1, *, activation: str = "gelu",
              upsample: str = "nearest", seed: int | None = 0) -> VariationalAutoencoder:
    """A VAE with notebook 08's encoder and decoder (:mod:`convae_utils.spatial`) and a (code_channels, 4, 4) code.

    The encoder gives ``2 * code_channels`` channels (mean and log-variance); the decoder is unchanged
    (tanh output). The defaults are notebook 08's reference model: 4 x 4 x 4 = 64 code values per image.
    With a ``seed`` the initial weights are the same on every run (the global generator is untouched).
    """
    code_channels = check_int("code_channels", code_channels, maximum=512)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        encoder = SpatialEncoder(2 * code_channels, width, depth, activation)
        decoder = SpatialDecoder(code_channels, width, depth, activation, upsample, "tanh")
    return VariationalAutoencoder(encoder, decoder, (code_channels, CODE_SIZE, CODE_SIZE))


def vae_builder(code_channels: int = 4, width: int = 32, depth: int = 1) -> Callable:
    """``build(settings) -> VariationalAutoencoder`` for ``runs.train_or_load(build=...)``: :func:`build_vae`
    seeded with ``settings.seed``. Its name records the shape, so a run folder never loads another model."""

    def build(settings) -> VariationalAutoencoder:
        return build_vae(code_channels, width, depth, seed=settings.seed)

    build.__name__ = build.__qualname__ = f"build_vae(code_channels={code_channels}, width={width}, depth={depth})"
    return build


# -- the step that plugs into training.fit / runs.train_or_load --------------------------------------

def vae_step(beta: float = 1.0, *, reparameterize_fn: Callable = reparameterize,
             kl_fn: Callable = kl_divergence) -> Callable:
    """The training step of a VAE with KL weight ``beta``: ``step(model, batch) -> (loss, logs)``.

    ``batch`` is float (B, 3, 32, 32) in [-1, 1] on the model's device. ``loss`` (0-d) is
    ``mse + beta * kl_nats / 3072`` (see the module docstring); ``logs`` hold ``mse`` (the distortion,
    per value, [-1, 1] scale) and ``kl_bits`` (the rate, bits per image, batch mean). In eval mode the code is the posterior mean (deterministic validation); in training
    mode it is sampled with ``reparameterize_fn``. ``beta`` >= 0 (0: a plain autoencoder with a noisy code).
    """
    beta = check_float("beta", beta, low=0.0, high=1e6, low_inclusive=True)

    def step(model: VariationalAutoencoder, batch: torch.Tensor):
        mean, logvar = model.posterior(batch)                               # (B, C, 4, 4) each
        z = reparameterize_fn(mean, logvar) if model.training else mean     # sampled only while training
        reconstruction = model.decode(z)                                    # (B, 3, 32, 32)
        mse = F.mse_loss(reconstruction.float(), batch)                     # per value, [-1, 1] scale
        kl = kl_fn(mean.float(), logvar.float()).mean()                     # nats per image
        loss = mse + beta * kl / IMAGE_VALUES
        return loss, {"mse": mse.detach(), "kl_bits": (kl / NATS_PER_BIT).detach()}

    step.__name__ = step.__qualname__ = f"vae_step(beta={beta:g})"
    step.beta = beta
    step.describe = lambda: f"vae_step(beta={beta:g})"
    return step


# -- what notebook 09 measures on a trained VAE ----------------------------------------------------------

@torch.inference_mode()
def posterior_stats(model: VariationalAutoencoder, pixels: torch.Tensor, *, batch_size: int = 500
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and log-variance of every image of uint8 ``pixels`` (N, 3, 32, 32): two float tensors (N, D) on the CPU.

    D = ``model.latent_dim`` (the code flattened). Runs in eval mode; the model's mode is restored.
    """
    from .images import normalize

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    means, logvars = [], []
    try:
        for batch in pixels.split(batch_size):
            mean, logvar = model.posterior(normalize(batch.to(device)))
            means.append(mean.flatten(1).float().cpu())
            logvars.append(logvar.flatten(1).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(means), torch.cat(logvars)


def kl_per_dimension(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL of each code value over the images, in nats: (N, D) posteriors -> (D,)."""
    return (0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0)


def inactive_dimensions(mean: torch.Tensor, logvar: torch.Tensor, *, threshold_nats: float = 0.01) -> int:
    """Code values that carry (almost) nothing: mean KL below ``threshold_nats`` (posterior collapse).

    A collapsed value has q(z | x) equal to the prior for every image: whatever the image, the decoder
    gets noise there, so it learns to ignore it. (Burda et al.'s activity, the variance of the mean over
    the images, says the same here: a value with KL ~ 0 has mean ~ 0 and variance ~ 1 for every image.)
    """
    return int((kl_per_dimension(mean, logvar) < threshold_nats).sum())


def interpolate(model: VariationalAutoencoder, first: torch.Tensor, second: torch.Tensor, steps: int = 9
                ) -> torch.Tensor:
    """Decode a straight line between the posterior means of two images (each (1, 3, 32, 32) in [-1, 1]).

    Returns (steps, 3, 32, 32) in [-1, 1]; the first and last are the two reconstructions.
    """
    steps = check_int("steps", steps, minimum=2)
    check_image_batch(first, "first")
    check_image_batch(second, "second")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            a, b = model.encode(torch.cat([first, second]).to(device))           # (*code_shape,) each
            weights = torch.linspace(0, 1, steps, device=device).view(-1, *([1] * a.ndim))
            return model.decode((1 - weights) * a + weights * b).float().cpu()   # (steps, 3, 32, 32)
    finally:
        model.train(was_training)


# -- the beta sweep of notebook 09 and tools.vae_sweep: one plan per profile ------------------------------

@dataclass(frozen=True)
class SweepPlan:
    """What a beta sweep trains: the KL weights, the model's width, and the (reduced) training budget."""

    betas: tuple[float, ...]
    width: int
    settings: RunSettings      # the runs' settings: data sizes, epochs, seed; latent_dim = code values per image

    @property
    def code_channels(self) -> int:
        return self.settings.latent_dim // (CODE_SIZE * CODE_SIZE)

    def run_name(self, beta: float) -> str:
        """The run folder's suffix for one beta, e.g. ``vae-w16-beta0.1``."""
        return f"vae-w{self.width}-beta{beta:g}"


# Per profile: betas, encoder/decoder width, and the training budget (None: the profile's own).
# The full profile trains notebook 08's reference width (32) on the profile's data; the workshop
# sweep is cut to fit a notebook's minutes on a CPU (narrower layers, fewer images and epochs).
SWEEPS = {
    "full": dict(betas=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), width=32, train_size=None, num_epochs=None),
    # 10: measured on the workshop budget, beta 1 still used all 64 code values; collapse needs dearer bits
    "workshop": dict(betas=(0.01, 1.0, 10.0), width=16, train_size=4_000, num_epochs=3),
    "smoke": dict(betas=(0.1, 10.0), width=8, train_size=None, num_epochs=None),
}


def sweep_plan(config: RunSettings, *, code_channels: int = 4) -> SweepPlan:
    """The beta sweep for ``config``'s profile (:data:`SWEEPS`): betas, width and the runs' settings."""
    if not isinstance(config, RunSettings):
        raise TypeError(f"config must be a RunSettings (settings.from_env()), got {type(config).__name__}")
    plan = SWEEPS[config.profile]
    changes = {"latent_dim": code_channels * CODE_SIZE * CODE_SIZE, "code_activation": None,
               "output_activation": "tanh"}
    for name in ("train_size", "num_epochs"):
        if plan[name] is not None:
            changes[name] = plan[name] if getattr(config, name) is None else min(plan[name], getattr(config, name))
    return SweepPlan(tuple(plan["betas"]), plan["width"], config.replace(**changes))

