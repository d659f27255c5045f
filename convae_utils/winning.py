"""Notebook 08's training parts, on their way to :mod:`convae_utils.training`.

Defined in notebook 08 (an autoencoder that wins). Its models are in :mod:`convae_utils.models`
(:class:`~convae_utils.models.SequentialAutoencoder`, :class:`~convae_utils.models.RefinedCodes`,
:func:`~convae_utils.models.refine_codes`, :func:`~convae_utils.models.article_parameter_shares`) and
:mod:`convae_utils.spatial` (:class:`~convae_utils.spatial.PCAInitAutoencoder`), its codec curves in
:mod:`convae_utils.codecs.curves`, its figures in :mod:`convae_utils.plotting`, exercise 08.1 in :mod:`convae_utils.exercises`.
What is still here:

- :func:`noisy_code_step`, a step for the harness (``step(model, batch) -> (loss, logs)``): uniform
  noise on the code, the differentiable stand-in for rounding it before it is entropy-coded;
- :func:`make_adamw` and :func:`train_or_load`: AdamW with the harness's one-cycle schedule
  (:class:`convae_utils.callbacks.OneCycle`), a pure function of the step, so resume is exact;
  :func:`train_plain`, the headless study's bare loop;
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .callbacks import OneCycle
from .checks import check_float
from .images import ImageSet, normalize
from .settings import RunSettings
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
