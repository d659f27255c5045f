"""Notebook 08's training parts and exercise 08.1, on their way to their concepts' modules.

Defined in notebook 08 (an autoencoder that wins). Its models are in :mod:`convae_utils.models`
(:class:`~convae_utils.models.SequentialAutoencoder`, :class:`~convae_utils.models.RefinedCodes`,
:func:`~convae_utils.models.refine_codes`, :func:`~convae_utils.models.article_parameter_shares`) and
:mod:`convae_utils.spatial` (:class:`~convae_utils.spatial.PCAInitAutoencoder`), its codec curves in
:mod:`convae_utils.codecs.curves`, its figures in :mod:`convae_utils.plotting`. What is still here:

- :func:`noisy_code_step`, a step for the harness (``step(model, batch) -> (loss, logs)``): uniform
  noise on the code, the differentiable stand-in for rounding it before it is entropy-coded;
- :func:`make_adamw` and :func:`train_or_load`: AdamW with the harness's one-cycle schedule
  (:class:`convae_utils.callbacks.OneCycle`), a pure function of the step, so resume is exact;
  :func:`train_plain`, the headless study's bare loop;
- exercise 08.1's worked solution and check (:func:`build_spatial_autoencoder`,
  :func:`check_spatial_autoencoder`).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .callbacks import OneCycle
from .checks import check_float
from .exercises import Wrong, add_code_exercise
from .images import ImageSet, normalize
from .settings import RunSettings
from .spatial import ResidualBlock
from .training import mse_step

StepOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]


# -- steps: the loss of one batch --------------------------------------------------------------------

def noisy_code_step(step_size: float):
    """A step that trains the decoder for a code rounded to multiples of ``step_size``.

    In training mode it adds uniform noise in ``[-step/2, step/2)`` to the code (rounding's error has
    that spread, and noise has a gradient where rounding has none); in eval mode it rounds, so the
    validation loss is what the quantised code really gives. Logs ``mse``.
    """
    step_size = check_float("step_size", step_size, low=0.0, high=math.inf)

    def step(model: nn.Module, batch: torch.Tensor) -> StepOutput:
        code = model.encode(batch)
        if model.training:
            code = code + (torch.rand_like(code) - 0.5) * step_size
        else:
            code = torch.round(code / step_size) * step_size
        loss = F.mse_loss(model.decode(code).float(), batch)
        return loss, {"mse": loss.detach()}

    step.__qualname__ = step.__name__ = f"noisy_code_step({step_size:g})"
    return step


class ClippedAdamW(torch.optim.AdamW):
    """AdamW that first scales the gradient down to a norm of at most ``max_grad_norm`` (over all its
    parameters) at every step; a checkpoint saves and restores it as AdamW's state."""

    def __init__(self, params, *, max_grad_norm: float, **kwargs):
        super().__init__(params, **kwargs)
        self.max_grad_norm = max_grad_norm

    def step(self, closure=None):
        nn.utils.clip_grad_norm_([p for group in self.param_groups for p in group["params"] if p.grad is not None],
                                 self.max_grad_norm)
        return super().step(closure)


def make_adamw(weight_decay: float = 1e-4, beta2: float = 0.99, max_grad_norm: float | None = 0.3):
    """An optimizer factory for the harness: ``(model, lr) -> AdamW`` (decay on weights, not on biases).

    Two guards against the blow-ups of a short run at a high peak rate. Exploratory trials made for
    notebook 08 (its model and close variants, photos10, 48,000 patches, one-cycle to a 6e-3 peak; their
    scripts were not kept; ``python -m convae_utils.tools.winning`` reruns the rows that matter): with
    PyTorch's AdamW defaults 4 of 7 runs ended with every output stuck (the loss at 0.3-1.2 where it
    should be near 0.01), and all 3 at a 1e-2 peak; with ``beta2`` 0.99 alone 1 of 3 seeds stuck and
    1 lost 2.9 dB to a spike; with both guards all 3 seeds trained (+0.20, +0.19, +0.29 dB over PCA-64
    at equal values).

    - ``beta2`` 0.99, not 0.999: Adam divides each step by a running average of squared gradients
      over about ``1 / (1 - beta2)`` steps; with 0.999 that memory (1,000 steps) is as long as a
      whole short run (750 steps in those trials, 1,500 in notebook 08's workshop run), so after a burst
      of large gradients the steps stay out of scale for hundreds of steps;
    - ``max_grad_norm`` 0.3 (``None``: no clipping; :class:`ClippedAdamW`): a rare huge gradient
      moves the weights no further than an ordinary one.
    """
    weight_decay = check_float("weight_decay", weight_decay, low=0.0, high=1.0, low_inclusive=True)
    beta2 = check_float("beta2", beta2, low=0.0, high=1.0)
    if max_grad_norm is not None:
        max_grad_norm = check_float("max_grad_norm", max_grad_norm, low=0.0, high=math.inf)

    def adamw(model: nn.Module, lr: float) -> torch.optim.Optimizer:
        decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
        other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
        if max_grad_norm is None:
            return torch.optim.AdamW(groups, lr=lr, betas=(0.9, beta2))
        return ClippedAdamW(groups, lr=lr, betas=(0.9, beta2), max_grad_norm=max_grad_norm)
    clip = "" if max_grad_norm is None else f", max_grad_norm={max_grad_norm:g}"
    adamw.__qualname__ = adamw.__name__ = f"adamw(weight_decay={weight_decay:g}, beta2={beta2:g}{clip})"
    return adamw


def train_plain(model: nn.Module, train: ImageSet, *, num_epochs: int = 1, batch_size: int = 64,
                max_lr: float = 3e-3, seed: int = 0, step=mse_step, weight_decay: float = 1e-4,
                optimizer: str = "adamw", schedule: bool = True, log_every: int = 0) -> list[float]:
    """A bare training loop for the headless study's many short trials; returns the batch losses.

    ``optimizer`` ``"adamw"`` (:func:`make_adamw`: beta2 0.99, gradient norm clipped to 0.3),
    ``"adamw-defaults"`` (PyTorch's: beta2 0.999, no clipping) or ``"adam"`` (the article's); ``schedule``
    True follows the harness's one-cycle schedule to ``max_lr``, False keeps ``max_lr`` constant (the
    article). The notebooks train through :func:`train_or_load` (checkpoints, resume, Stop) instead.
    """
    if optimizer == "adamw":
        opt = make_adamw(weight_decay)(model, max_lr)
    elif optimizer == "adamw-defaults":
        opt = make_adamw(weight_decay, beta2=0.999, max_grad_norm=None)(model, max_lr)
    elif optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=max_lr)
    else:
        raise ValueError(f"optimizer must be 'adamw', 'adamw-defaults' or 'adam', got {optimizer!r}")
    rate = OneCycle(max_lr).rate
    n_batches = len(train) // batch_size
    total = num_epochs * n_batches
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for epoch in range(num_epochs):
        order = torch.randperm(len(train), generator=generator)
        for i in range(n_batches):
            global_step = epoch * n_batches + i
            if schedule:
                for group in opt.param_groups:
                    group["lr"] = rate(global_step, total)
            batch = normalize(train.images[order[i * batch_size:(i + 1) * batch_size]])
            loss, _ = step(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if log_every and (global_step + 1) % log_every == 0:
                print(f"step {global_step + 1}/{total}: loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    model.eval()
    return losses


def build_spatial_autoencoder(code_channels: int = 4, width: int = 32) -> tuple[nn.Sequential, nn.Sequential]:
    """The worked solution of notebook 08's exercise: the winning spatial-code encoder and decoder.

    ``c = 2 * width`` channels at every stage (16x16, 8x8, 4x4). Encoder: (B, 3, 32, 32) in [-1, 1] ->
    pixel unshuffle to (B, 12, 16, 16) -> convolutions and residual blocks -> a linear code
    (B, code_channels, 4, 4). Decoder: back up with upsample + conv, then a conv to 12 channels at
    16x16 and a pixel shuffle to (B, 3, 32, 32), tanh. The same layers as
    :class:`~convae_utils.spatial.SpatialAutoencoder` with ``depth=1, stem="pixel"``, written out: its
    state dict loads into that class, which the tests check.
    """
    c = 2 * width
    encoder = nn.Sequential(
        nn.PixelUnshuffle(2),                                  # 3x32x32 -> 12x16x16: each 2x2 block of pixels
        nn.Conv2d(12, c, 3, padding=1), nn.GELU(),             # -> c x16x16
        nn.Conv2d(c, c, 3, stride=2, padding=1),               # 16x16 -> 8x8
        ResidualBlock(c), nn.GELU(),                           # x + conv(gelu(conv(gelu(x))))
        nn.Conv2d(c, c, 3, stride=2, padding=1),               # 8x8 -> 4x4
        ResidualBlock(c), nn.GELU(),
        nn.Conv2d(c, code_channels, 3, padding=1),             # the code: code_channels x4x4, linear
    )
    decoder = nn.Sequential(
        nn.Conv2d(code_channels, c, 3, padding=1),             # code -> c x4x4
        ResidualBlock(c), nn.GELU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(c, c, 3, padding=1),   # 4x4 -> 8x8
        ResidualBlock(c), nn.GELU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(c, c, 3, padding=1), nn.GELU(),  # 8x8 -> 16x16
        nn.Conv2d(c, 12, 3, padding=1), nn.PixelShuffle(2),    # 12x16x16 -> 3x32x32
        nn.Tanh(),                                             # outputs in [-1, 1], like the images
    )
    return encoder, decoder


def check_spatial_autoencoder(candidate) -> None:
    """Run ``candidate(code_channels=3, width=8)`` on a batch; raise :class:`Wrong` at the first problem.

    Checks, in this order: it returns an (encoder, decoder) pair of modules; the code of a batch of 4
    images has shape (4, 3, 4, 4); the code is linear (negative values occur, i.e. no ReLU at its
    end); the decoder turns the code back into (4, 3, 32, 32); the output stays in [-1, 1] even for a
    large code; the encoder ends in its code's Conv2d; no BatchNorm (see notebook 08), no Linear layer
    (the point of a spatial code); a pixel unshuffle in and a pixel shuffle out; ``2 * width`` channels;
    residual blocks (``spatial.ResidualBlock`` or the learner's own, each checked to be x + body(x)) in
    the encoder and in the decoder.
    """
    result = candidate(3, 8)  # code_channels=3, width=8
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(m, nn.Module) for m in result)):
        raise Wrong(f"return two modules, (encoder, decoder); got {type(result).__name__}")
    encoder, decoder = result
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    try:
        _check_spatial_pair(encoder, decoder, x)
    except RuntimeError as error:  # layers that do not fit together: PyTorch's message, in the learner's terms
        raise Wrong(f"running your model on 4 images (4, 3, 32, 32) failed: {str(error).splitlines()[0]}. "
                    "The check builds it with code_channels=3 and width=8: use those arguments (c = 2 * width) "
                    "rather than fixed numbers, and make each layer take the channels the previous one gives") from None


def _last_module(module: nn.Module) -> nn.Module:
    """The last layer that does something: through nested nn.Sequential, past nn.Identity."""
    while isinstance(module, nn.Sequential):
        layers = [m for m in module if not isinstance(m, nn.Identity)]
        if not layers:
            break
        module = layers[-1]
    return module


def _own_blocks(module: nn.Module) -> list[nn.Module]:
    """Modules inside ``module`` from neither PyTorch nor a plain container: spatial.ResidualBlock or the learner's."""
    return [m for m in module.modules() if m is not module and not type(m).__module__.startswith("torch.")]


def _check_blocks_are_residual(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> None:
    """Each own block returns x + body(x): with every weight zeroed it passes x through unchanged, and it has
    weights of its own (a block that only returns x does nothing)."""
    inputs: dict[int, torch.Tensor] = {}
    blocks = _own_blocks(encoder) + _own_blocks(decoder)
    hooks = [b.register_forward_pre_hook(lambda m, args: inputs.setdefault(id(m), args[0])) for b in blocks]
    try:
        with torch.no_grad():
            decoder(encoder(x))
    finally:
        for hook in hooks:
            hook.remove()
    for block in blocks:
        name = type(block).__name__
        if id(block) not in inputs:
            continue
        if not any(True for _ in block.parameters()):
            raise Wrong(f"your {name} has no weights of its own: a residual block is x + body(x), where body is "
                        "(GELU, Conv2d, GELU, Conv2d)")
        zeroed = copy.deepcopy(block)
        with torch.no_grad():
            for parameter in zeroed.parameters():
                parameter.zero_()
            kept = zeroed(inputs[id(block)])
        if kept.shape != inputs[id(block)].shape or not torch.allclose(kept, inputs[id(block)], atol=1e-6):
            raise Wrong(f"your {name} is not residual: with its body's weights at zero it should hand its input "
                        "through unchanged. Return x + body(x), not body(x)")


def _check_spatial_pair(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> None:
    # an nn.Sequential (what the exercise asks for) must end in its code's Conv2d, which catches any
    # activation on the code; an encoder of another class is judged by its codes alone (below)
    last = _last_module(encoder)
    if isinstance(encoder, nn.Sequential) and not isinstance(last, nn.Conv2d):
        raise Wrong(f"the encoder ends in {type(last).__name__}: end it with the code's plain nn.Conv2d, so the "
                    "code is linear (no activation after the last convolution: a linear code cannot die)")
    with torch.no_grad():
        code = encoder(x)
        if tuple(code.shape) != (4, 3, 4, 4):
            raise Wrong(f"the encoder should turn 4 images (4, 3, 32, 32) into a code of shape (4, 3, 4, 4) "
                        f"(code_channels=3 on a 4x4 grid: a pixel unshuffle to 16x16, then two stride-2 convolutions), "
                        f"got {tuple(code.shape)}")
        spread = encoder(torch.cat([x, -x, 10 * x, -10 * x]))  # a linear code goes below 0 somewhere
        if float(spread.min()) >= 0:
            raise Wrong("every code value is >= 0: the encoder seems to end in an activation (ReLU?). "
                        "End it with a plain convolution, so the code is linear and no code unit can die")
        out = decoder(code)
        if tuple(out.shape) == (4, 12, 16, 16):
            raise Wrong("the decoder ends at 12 x 16 x 16: add nn.PixelShuffle(2) after the conv to 12 channels "
                        "(it turns each 12-channel position into a 2x2 block of 3 colours: 3 x 32 x 32)")
        if tuple(out.shape) != (4, 3, 32, 32):
            raise Wrong(f"the decoder should turn the code (4, 3, 4, 4) back into images (4, 3, 32, 32), "
                        f"got {tuple(out.shape)}: two upsample + conv steps take 4x4 to 16x16, then a conv to 12 channels "
                        "and nn.PixelShuffle(2) make 3 x 32 x 32")
        large = decoder(code * 1e4)
        if float(large.abs().max()) > 1.0 + 1e-6:
            raise Wrong(f"for a large code the output reaches {float(large.abs().max()):.3g}, outside [-1, 1] where "
                        "the images lie: end the decoder with nn.Tanh()")
        if float(torch.cat([out, large, decoder(-code * 1e4)]).min()) >= 0:
            raise Wrong("the output never goes below 0, but the images lie in [-1, 1]: end the decoder with "
                        "nn.Tanh(), not a Sigmoid or ReLU")
    kinds = {type(m).__name__ for m in (*encoder.modules(), *decoder.modules())}
    if "ConvTranspose2d" in kinds:
        raise Wrong("the decoder uses ConvTranspose2d: upsample with nn.Upsample(scale_factor=2) followed by a "
                    "3x3 Conv2d instead (the checkerboard picture in notebook 08 shows why)")
    if kinds & {"BatchNorm2d", "BatchNorm1d"}:
        raise Wrong("the model uses BatchNorm: leave it out here (a reconstruction should not depend on the "
                    "other images of the batch; notebook 08 explains)")
    if "Linear" in kinds:
        raise Wrong("the model has a Linear layer: keep the code a 4x4 feature map, made and read by convolutions")
    for part, module in (("encoder", encoder), ("decoder", decoder)):
        if not _own_blocks(module):  # spatial.ResidualBlock, or the learner's own block (any module not from torch.nn)
            raise Wrong(f"the {part} has no residual block: put spatial.ResidualBlock(c) after the convolution "
                        "that reaches 8x8 and after the one that reaches 4x4, in the encoder and in the decoder")
    if "PixelUnshuffle" not in kinds or "PixelShuffle" not in kinds:
        missing = "nn.PixelUnshuffle(2) at the encoder's start" if "PixelUnshuffle" not in kinds else \
            "nn.PixelShuffle(2) at the decoder's end"
        raise Wrong(f"the model has no {missing}: the exercise's model works at 16x16 and below "
                    "(pixel unshuffle in, pixel shuffle out)")
    first = next((m for m in encoder.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.out_channels != 16:
        raise Wrong(f"the encoder's first convolution gives {first.out_channels} channels; the check builds with "
                    "width=8, so it should give c = 2 * width = 16")
    _check_blocks_are_residual(encoder, decoder, x)


WINNER_TASK = ("Exercise 08.1: write build_spatial_autoencoder(code_channels, width): an encoder that turns (B, 3, 32, 32) into "
               "a linear (B, code_channels, 4, 4) code (PixelUnshuffle, stride-2 convolutions, residual blocks, GELU), "
               "and a decoder that takes it back (Upsample + Conv2d, residual blocks, a conv to 12 channels + "
               "PixelShuffle, Tanh).")


add_code_exercise("08.1", WINNER_TASK, build_spatial_autoencoder, check_spatial_autoencoder)


# -- training a notebook-08 model through the run folders ---------------------------------------------

def train_or_load(settings: RunSettings, *, name: str, build, data, step=mse_step,
                  weight_decay: float = 1e-4, beta2: float = 0.99, max_grad_norm: float | None = 0.3,
                  progress: bool = True):
    """Train one of notebook 08's models through the run harness, or load it: AdamW, one-cycle to ``settings.lr``.

    ``build(settings) -> nn.Module``; ``data`` a :class:`~convae_utils.data.DataBundle` for ``settings``.
    A thin wrapper of :func:`convae_utils.runs.train_or_load` (checkpoints, exact resume, the Stop
    button, a run folder ``<profile>-<dataset>-latent<L>-<name>``); returns its ``Run``.
    """
    from . import runs

    return runs.train_or_load(settings, name=name, data=data, build=build, step=step,
                              optimizer=make_adamw(weight_decay, beta2, max_grad_norm), callbacks=[OneCycle(settings.lr)],
                              details={"optimizer": f"AdamW(weight_decay={weight_decay:g}, betas=(0.9, {beta2:g}), "
                                                    f"gradient norm clipped to {max_grad_norm})",
                                       "schedule": f"one-cycle to {settings.lr:g}"},
                              progress=progress)
