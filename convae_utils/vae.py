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
why useful VAEs on photographs take ``beta`` well below 1 (:func:`negative_elbo_bits_per_dim` writes
the bound in bits per dimension for any decoder noise).

The KL is also a **rate**. A code *drawn* from q(z | x) can be sent to a receiver who knows the prior
for about ``KL + log2(KL + 1) + O(1)`` bits (KL in bits) with relative-entropy coding, also called
channel simulation (Havasi et al., ICLR 2019; Theis and Yosri, 2022 survey); it needs a source of
random numbers shared by both ends. (Bits-back coding, Townsend et al., ICLR 2019, also pays about
the KL, but it is a *lossless* scheme: the receiver must rebuild q(z | x) from the decoded image.) So
the KL is a lower bound on what a real coder of the drawn code pays, and the distortion that goes
with it is the drawn code's, E_q[d(x, g(z))] (:func:`convae_utils.generation.vae_measures`). An
ordinary quantise-and-entropy-code of the mean pays something else again (notebook 10 builds one).
The notebooks report the KL in bits per image beside the bit counts of notebook 06.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_float, check_image_batch, check_int
from .codecs.bits import NATS_PER_BIT
from .inference import batched, evaluating, model_device
from .settings import RunSettings
from .spatial import CODE_SIZE, SpatialDecoder, SpatialEncoder

IMAGE_VALUES = 3 * 32 * 32          # values per image: the KL is divided by it to sit beside the MSE per value
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
    value of an image's code (all dimensions but the first). Divide by ``ln 2`` for bits (:func:`convae_utils.codecs.bits.nats_to_bits`).
    """
    per_value = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)
    return per_value.flatten(1).sum(dim=1)


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
        with evaluating(self):
            return self.decode(z.to(model_device(self))).float().cpu()


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

def _is_package(fn: Callable, reference: Callable) -> bool:
    return fn is reference or getattr(fn, "__wrapped__", None) is reference


def _function_text(fn: Callable) -> str:
    """A function's source (a notebook cell's too: IPython keeps it), else its bytecode and names."""
    import inspect

    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return repr(fn) if code is None else f"{code.co_code.hex()}:{code.co_names}:{code.co_consts}"


def learner_tag(reparameterize_fn: Callable = reparameterize, kl_fn: Callable = kl_divergence) -> str:
    """``""`` for the package's two functions, else ``"yours-"`` and 8 hex digits of the learner's source.

    A VAE trained with a learner's own ``reparameterize`` or ``kl_divergence`` is another run: notebook 09
    puts it in a run folder of its own (:meth:`SweepPlan.run_name`), and a changed function gets another.
    """
    import hashlib

    own = [_function_text(fn) for fn, ref in ((reparameterize_fn, reparameterize), (kl_fn, kl_divergence))
           if not _is_package(fn, ref)]
    if not own:
        return ""
    return "yours-" + hashlib.sha256("\n".join(own).encode()).hexdigest()[:8]


def vae_step(beta: float = 1.0, *, reparameterize_fn: Callable = reparameterize,
             kl_fn: Callable = kl_divergence) -> Callable:
    """The training step of a VAE with KL weight ``beta``: ``step(model, batch) -> (loss, logs)``.

    ``batch`` is float (B, 3, 32, 32) in [-1, 1] on the model's device. ``loss`` (0-d) is
    ``mse + beta * kl_nats / 3072`` (see the module docstring); ``logs`` hold ``mse`` (the distortion,
    per value, [-1, 1] scale) and ``kl_bits`` (the rate, bits per image, batch mean). In eval mode the
    code is the posterior mean (deterministic validation); in training mode it is sampled with
    ``reparameterize_fn``. ``beta`` >= 0 (0: a plain autoencoder with a noisy code). Notebook 09 passes the
    learner's two functions; the step's name then carries :func:`learner_tag`, so its run is another.
    """
    beta = check_float("beta", beta, low=0.0, high=1e6, low_inclusive=True)
    tag = learner_tag(reparameterize_fn, kl_fn)

    def step(model: VariationalAutoencoder, batch: torch.Tensor):
        mean, logvar = model.posterior(batch)                               # (B, C, 4, 4) each
        z = reparameterize_fn(mean, logvar) if model.training else mean     # sampled only while training
        reconstruction = model.decode(z)                                    # (B, 3, 32, 32)
        mse = F.mse_loss(reconstruction.float(), batch)                     # per value, [-1, 1] scale
        kl = kl_fn(mean.float(), logvar.float()).mean()                     # nats per image
        loss = mse + beta * kl / IMAGE_VALUES
        return loss, {"mse": mse.detach(), "kl_bits": (kl / NATS_PER_BIT).detach()}

    name = f"vae_step(beta={beta:g}{', ' + tag if tag else ''})"
    step.__name__ = step.__qualname__ = name
    step.beta = beta
    step.tag = tag
    step.describe = lambda: name
    return step


def negative_elbo_bits_per_dim(mse: float, kl_bits: float, *, noise_variance: float | None = None) -> float:
    """The negative ELBO of 8-bit images in bits per dimension (value), for a Gaussian decoder.

    Args:
        mse: the decoded *drawn* codes' mean squared error per value, [0, 1] scale (E_q of the distortion,
            ``vae_measures(...)["mse"]``).
        kl_bits: the mean KL per image, in bits (the rate).
        noise_variance: the decoder's pixel noise variance, [0, 1] scale; default ``mse`` itself, the one
            variance that makes the bound tightest. (The loss with ``beta = 1`` assumes 1/2 on the
            [-1, 1] scale, 1/8 here.)

    Each value's Gaussian density is turned into the probability of its 8-bit level (width 1/255), so
    the result is comparable with 8 bits per value for the raw image and with the bits per dimension
    that likelihood models report (as UvA's Tutorial 11 does):
    ``[0.5 ln(2 pi var) + mse / (2 var)] / ln 2 + log2(255) + kl_bits / 3072``.
    """
    mse = check_float("mse", mse, low=0.0, high=1.0)
    variance = mse if noise_variance is None else check_float("noise_variance", noise_variance, low=0.0, high=1e6)
    nll_nats = 0.5 * math.log(2 * math.pi * variance) + mse / (2 * variance)     # per value, density on [0, 1]
    return nll_nats / NATS_PER_BIT + math.log2(255) + float(kl_bits) / IMAGE_VALUES


# -- what notebook 09 measures on a trained VAE ----------------------------------------------------------

@torch.inference_mode()
def posterior_stats(model: VariationalAutoencoder, pixels: torch.Tensor, *, batch_size: int = 500
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and log-variance of every image of uint8 ``pixels`` (N, 3, 32, 32): two float tensors (N, D) on the CPU.

    D = ``model.latent_dim`` (the code flattened). Runs in eval mode; the model's mode is restored.
    """
    from .images import normalize

    def both(batch: torch.Tensor) -> torch.Tensor:
        mean, logvar = model.posterior(normalize(batch))
        return torch.cat([mean.flatten(1), logvar.flatten(1)], dim=1)          # (B, 2D)

    with evaluating(model):
        stats = batched(both, pixels, device=model_device(model), batch_size=batch_size)
    return stats[:, :model.latent_dim].contiguous(), stats[:, model.latent_dim:].contiguous()


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


@torch.inference_mode()
def decoder_sensitivity(model: VariationalAutoencoder, pixels: torch.Tensor, values: torch.Tensor, *,
                        seed: int = 0) -> float:
    """How much the decoded images change when some code values are redrawn from the prior.

    Each image of uint8 ``pixels`` (N, 3, 32, 32) is decoded from its posterior mean, then again with
    the code values ``values`` (indices into the flattened code, 0..latent_dim-1) replaced by draws from
    N(0, 1). Returns the RMSE between the two decodings, [0, 1] pixel scale, over all images: about 0
    for values the decoder ignores (collapsed ones), larger for values it reads.
    """
    values = torch.as_tensor(values, dtype=torch.long).flatten()
    if values.numel() == 0 or int(values.min()) < 0 or int(values.max()) >= model.latent_dim:
        raise ValueError(f"expected code value indices in 0..{model.latent_dim - 1}, got {values.tolist()}")
    mean, _ = posterior_stats(model, pixels)                                  # (N, D)
    moved = mean.clone()
    gen = torch.Generator().manual_seed(seed)
    moved[:, values] = torch.randn(len(mean), values.numel(), generator=gen)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        a = model.decode(mean.view(len(mean), *model.code_shape).to(device)).float().cpu()
        b = model.decode(moved.view(len(moved), *model.code_shape).to(device)).float().cpu()
    finally:
        model.train(was_training)
    return float(((a - b) / 2).pow(2).mean().sqrt())        # [-1, 1] -> [0, 1] scale: differences halve


def interpolate(model: VariationalAutoencoder, first: torch.Tensor, second: torch.Tensor, steps: int = 9
                ) -> torch.Tensor:
    """Decode a straight line between the posterior means of two images (each (1, 3, 32, 32) in [-1, 1]).

    Returns (steps, 3, 32, 32) in [-1, 1]; the first and last are the two reconstructions. Raises
    ValueError for a batch of more than one image (pass ``x[i:i + 1]``), an image outside [-1, 1] (0..255
    pixels) or with NaN pixels ([0, 1] floats lie inside the range and cannot be told apart here).
    """
    steps = check_int("steps", steps, minimum=2)
    for name, image in (("first", first), ("second", second)):
        check_image_batch(image, name, check_values=True)
        if len(image) != 1:
            raise ValueError(f"expected {name} to be one image, shape (1, 3, 32, 32), got {len(image)} images; "
                             f"pass one of them, e.g. x[i:i + 1]")
    device = model_device(model)
    with torch.no_grad(), evaluating(model):
        a, b = model.encode(torch.cat([first, second]).to(device))           # (*code_shape,) each
        weights = torch.linspace(0, 1, steps, device=device).view(-1, *([1] * a.ndim))
        return model.decode((1 - weights) * a + weights * b).float().cpu()   # (steps, 3, 32, 32)


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

    def run_name(self, beta: float, tag: str = "") -> str:
        """The run folder's suffix for one beta, e.g. ``vae-w16-beta0.1``; a :func:`learner_tag` is appended
        (``vae-w16-beta0.1-yours-1a2b3c4d``), so a learner's functions train runs of their own."""
        return f"vae-w{self.width}-beta{beta:g}" + (f"-{tag}" if tag else "")


CONTROL_BETA = 0.0   # notebook 09's control: the same network and budget with no KL charge (a plain autoencoder)

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

