"""Training: a model's step, one optimiser update, an epoch of updates, and ``fit`` around them.

Introduced in notebook 03 (training), which prints :func:`mse_step`, :func:`train_step`,
:func:`train_epoch` and :func:`fit` in full. ``fit`` has two seams, as d2l's ``Trainer`` and
fastbook's ``Learner`` do:

- the **step**: ``step(model, batch) -> (loss, logs)``, the model's objective on one batch of images
  (float (B, 3, 32, 32) in [-1, 1]): the loss to minimise (a 0-d tensor) and what to log (name ->
  0-d tensor). :func:`mse_step` is the article's; a denoiser, notebook 08's quantised codes and
  notebook 09's variational autoencoder each bring their own, and the loop does not change. A step
  marked ``labelled`` (:func:`classification_step`) is called ``step(model, batch, labels)`` with
  the batch's class labels (int64 (B,)): the yardstick classifier of notebook 09 trains here too;
- the **callbacks** (:mod:`convae_utils.callbacks`): checkpoints and exact resume, the Stop button,
  NaN and stall guards, progress, the per-epoch pictures, learning-rate schedules.

Optimisers beyond the default Adam (:func:`make_adamw`, notebook 08's) are factories
``(model, lr) -> optimizer``. What makes it fast and changes no number (memory layout, autocast, the fused Adam, CUDA graphs)
lives in :mod:`convae_utils.speed`. The loop differs from the article's where the article was wrong
or slow, and says so: batches are shuffled from a seeded generator per epoch; the epoch loss is the
mean over the epoch's batches (the article printed the last batch's); validation uses a held-out part
of the training split, never the test set; images stay uint8 on the device and are normalised per
batch there; per-batch losses stay on the device and are read once per logging interval. Every loss
is summed on the host in Python floats, never as float64 on the device (Apple's MPS has none).
"""

from __future__ import annotations

import functools
import json
import math
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .callbacks import Callback, Loop, NaNGuard, ProgressBar, StopButton
from .checks import check_float
from .history import History
from .images import ImageSet, normalize
from .inference import evaluating
from .settings import RunSettings, pick_device
from .speed import GraphedStep, Speed, Step, StepOutput, make_adam


# -- the lesson: a step, an update, an epoch, the loop ------------------------------------------------

def mse_step(model: nn.Module, batch: torch.Tensor) -> StepOutput:
    """The article's objective: rebuild the batch (float (B, 3, 32, 32) in [-1, 1]); the loss is the MSE."""
    reconstruction = model(batch)                         # (B, 3, 32, 32)
    loss = F.mse_loss(reconstruction.float(), batch)      # mean over every pixel and channel
    return loss, {}                                       # nothing to log beyond the loss itself


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor,
               labels: torch.Tensor | None = None, step: Step = mse_step) -> StepOutput:
    """One optimiser update on a batch of uint8 images (B, 3, 32, 32); returns the step's (loss, logs).

    ``labels`` (B,) go to a labelled step (a classifier's) after the images; ``None`` for an autoencoder.
    """
    inputs = normalize(batch)                             # uint8 -> [-1, 1]
    loss, logs = step(model, inputs) if labels is None else step(model, inputs, labels)  # the model's loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()                                       # gradients of the loss
    optimizer.step()                                      # Adam nudges every weight
    return loss.detach(), {name: value.detach() for name, value in logs.items()}


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                order: torch.Tensor, batch_size: int, *, labels: torch.Tensor | None = None, update=train_step,
                first_step: int = 0, after_step: Callable[[int, dict], None] | None = None) -> dict[str, torch.Tensor]:
    """One pass over ``images`` (uint8, on the model's device) in the shuffled ``order``.

    Returns every batch's loss and logs, ``{"loss": (n_batches,), ...}``, on the device (read them once,
    not per step). ``labels`` (N,) go with their images to a labelled step; ``first_step`` skips batches
    already done (resume); ``after_step(index, records)`` runs after each update; ``update`` is
    ``train_step`` with the model's step, or a stand-in that does the same faster (``speed.GraphedStep``).
    """
    n_batches = math.ceil(len(order) / batch_size)
    records: dict[str, torch.Tensor] = {}
    model.train()
    for index in range(first_step, n_batches):
        chosen = order[index * batch_size:(index + 1) * batch_size]
        if labels is None:
            loss, logs = update(model, optimizer, images[chosen])
        else:
            loss, logs = update(model, optimizer, images[chosen], labels[chosen])
        for name, value in {"loss": loss, **logs}.items():
            if name not in records:                       # one buffer per value for the whole epoch
                records[name] = torch.zeros(n_batches, device=images.device)
            records[name][index] = value
        if after_step is not None:
            after_step(index, records)
    return records


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), so resume can rebuild it."""
    # PyTorch takes seeds below 2**64: wrap, so every seed RunSettings accepts shuffles (smaller ones as before)
    gen = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)
    return torch.randperm(n, generator=gen).to(device)


def fit(model: nn.Module, train: ImageSet, val: ImageSet, settings: RunSettings | None = None, *,
        step: Step = mse_step, num_epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
        seed: int | None = None, device=None, optimizer=None, callbacks: Sequence[Callback] = (),
        progress: bool = True, speed: Speed = Speed()) -> History:
    """Train ``model`` on ``train`` by minimising ``step``'s loss; returns the run's :class:`History`.

    The numbers (epochs, batch size, learning rate, seed) come from ``settings`` (a ``RunSettings``,
    checked when it was made) or as keywords (checked here, by the same record; defaults: the
    article's 10, 64, 1e-3, 0). ``step(model, batch) -> (loss, logs)`` is the objective (default: the
    article's MSE) and scores ``val`` after every epoch too; ``optimizer(model, lr)`` builds the optimiser
    (default: Adam); ``callbacks`` add checkpoints, pictures and schedules; ``speed`` changes how fast,
    never what is computed. The Stop button ends the run between two steps; a NaN loss raises TrainingDiverged.
    """
    given = {k: v for k, v in dict(num_epochs=num_epochs, batch_size=batch_size, lr=lr, seed=seed).items()
             if v is not None}
    if settings is None or given:                          # numbers given here are checked here, by the same record
        settings = (settings or RunSettings()).replace(**given)
    _check_data(train, val, settings.batch_size)
    device = pick_device(device)
    forward, fast_step, graphed = speed.apply(model, step, device)   # same numbers, faster
    update = functools.partial(train_step, step=fast_step)
    n_batches = math.ceil(len(train) / settings.batch_size)
    meta = dict(dataset=train.name, latent_dim=int(getattr(model, "latent_dim", -1)), batch_size=settings.batch_size,
                lr=settings.lr, seed=settings.seed, train_size=len(train), val_size=len(val), device=str(device),
                channels_last=speed.channels_last, step=step_name(step))
    make_optimizer = optimizer or functools.partial(make_adam, capturable=graphed)
    loop = Loop(model, make_optimizer(model, settings.lr), History(batches_per_epoch=n_batches, meta=meta),
                train.images.to(device), val.images.to(device), settings.num_epochs, n_batches)
    labelled = getattr(step, "labelled", False)  # a classifier's step also gets the batch's labels
    train_labels, val_labels = (train.labels.to(device), val.labels.to(device)) if labelled else (None, None)
    callbacks = [NaNGuard(), *callbacks, ProgressBar(progress), StopButton()]
    per_step = [c.on_step_end for c in callbacks if type(c).on_step_end is not Callback.on_step_end]

    def emit(event: str) -> None:
        for callback in callbacks:
            getattr(callback, event)(loop)

    def after_step(index: int, records: dict) -> None:
        loop.completed, loop.records = index + 1, records
        for on_step_end in per_step:                       # only the callbacks that act after a step
            on_step_end(loop)

    try:
        emit("on_fit_start")                               # a Checkpoint moves the start forward here
        update = GraphedStep(update) if graphed else update
        while loop.epoch < settings.num_epochs:
            order = epoch_order(len(train), settings.seed, loop.epoch, device)
            started = time.perf_counter()
            try:
                loop.records = train_epoch(forward, loop.optimizer, loop.train_images, order, settings.batch_size,
                                           labels=train_labels, update=update, first_step=loop.first_step,
                                           after_step=after_step)
            except KeyboardInterrupt:                      # the Stop button, between two steps
                loop.history.record_batches(loop.records, loop.first_step, loop.completed)
                loop.history.meta["interrupted"] = True
                emit("on_interrupt")                       # the NaN guard looks, then a Checkpoint saves
                return loop.history
            seconds = time.perf_counter() - started        # the training pass only (images/s), not validation
            loop.history.record_batches(loop.records, loop.first_step, n_batches)
            loop.history.end_epoch(evaluate_step(loop.model, fast_step, loop.val_images, labels=val_labels),
                                   seconds=seconds)
            emit("on_epoch_end")
            loop.epoch, loop.first_step, loop.completed = loop.epoch + 1, 0, 0
    finally:
        emit("on_fit_end")
    return loop.history


def _check_data(train, val, batch_size: int) -> None:
    """What only fit can check: the splits it was handed, and a batch no larger than the training set."""
    for name, split in (("train", train), ("val", val)):
        if not isinstance(split, ImageSet):
            raise TypeError(f"{name} must be a convae_utils.images.ImageSet, got {type(split).__name__}")
    if batch_size > len(train):
        raise ValueError(f"batch_size={batch_size:,} is larger than the training set ({len(train):,} "
                         "images); use a smaller batch or more data")


# -- evaluation -----------------------------------------------------------------------------------------

@torch.inference_mode()
def evaluate_step(model: nn.Module, step: Step, images: torch.Tensor, *, labels: torch.Tensor | None = None,
                  batch_size: int = 500) -> dict[str, float]:
    """``step``'s loss and logs on uint8 ``images`` (on the model's device) in eval mode, averaged per image.

    Returns ``{"loss": ..., <each log>: ...}``; ``fit`` scores the validation split with it after each epoch.
    ``labels`` (N,): the images' classes, for a labelled step.
    """
    sums: dict[str, list[torch.Tensor]] = {}
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            batch = normalize(images[start:start + batch_size])
            if labels is None:
                loss, logs = step(model, batch)
            else:
                loss, logs = step(model, batch, labels[start:start + batch_size])
            for name, value in {"loss": loss, **logs}.items():
                sums.setdefault(name, []).append(value.float() * len(batch))
    # Summed on the host in Python floats: exact enough, and no float64 on the device (MPS has none).
    return {name: math.fsum(torch.stack(values).tolist()) / len(images) for name, values in sums.items()}


def mean_loss(model: nn.Module, images: torch.Tensor, *, batch_size: int = 500, channels_last: bool = True) -> float:
    """Mean per-pixel MSE ([-1, 1] scale) of ``model`` on uint8 ``images`` already on its device."""
    return evaluate_step(model, Speed(channels_last=channels_last).wrap(mse_step), images, batch_size=batch_size)["loss"]


# -- steps for other objectives -------------------------------------------------------------------------

def denoising_step(corrupt: Callable[[torch.Tensor], torch.Tensor]) -> Step:
    """A denoiser's step (notebook 07): the encoder sees ``corrupt(batch)``, the loss compares with the clean batch.

    ``corrupt`` maps a float batch in [-1, 1] to a corrupted one of the same shape (:mod:`convae_utils.corruptions`).
    Validation scores corrupted validation images against the clean ones, as in training.
    """
    def step(model: nn.Module, batch: torch.Tensor) -> StepOutput:
        return F.mse_loss(model(corrupt(batch)).float(), batch), {}

    describe = getattr(corrupt, "describe", None)
    step.describe = lambda: {"step": "denoising", "corrupt": describe() if callable(describe) else repr(corrupt)}
    step.reconstructs = True  # its loss is a reconstruction MSE: the stall check applies
    return step


def classification_step(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor) -> StepOutput:
    """A labelled model's step (notebook 09's yardstick classifier): the cross-entropy of its logits (B, K).

    ``labels`` are the batch's classes, int64 (B,); logs ``accuracy`` (share of the batch right, 0-1).
    """
    logits = model(batch)                                 # (B, K)
    loss = F.cross_entropy(logits.float(), labels)
    return loss, {"accuracy": (logits.argmax(dim=1) == labels).float().mean().detach()}


classification_step.labelled = True  # fit hands it the batch's labels too


def noisy_code_step(step_size: float) -> Step:
    """A step that trains the decoder for a code rounded to multiples of ``step_size`` (notebook 08).

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


# -- optimisers beyond Adam: factories ``(model, lr) -> optimizer`` for ``fit(optimizer=...)`` ------------

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
    """An optimizer factory for ``fit``: ``(model, lr) -> AdamW`` (decay on weights, not on biases).

    Introduced in notebook 08, with the one-cycle schedule (:class:`~convae_utils.callbacks.OneCycle`).
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

    The factory's name (``adamw(weight_decay=..., beta2=...[, max_grad_norm=...])``) is what a run records.
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


def plain_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """PyTorch's Adam with its defaults, unfused: the article's optimiser as it wrote it (for ablations)."""
    return torch.optim.Adam(model.parameters(), lr=lr)


def step_name(step: Step) -> str:
    """A plain string that tells one step from another, for run records (``describe()`` if the step has one)."""
    describe = getattr(step, "describe", None)
    if callable(describe):
        return json.dumps(describe(), sort_keys=True)
    return getattr(step, "__qualname__", type(step).__name__)
