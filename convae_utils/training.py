"""Training: a model's step, one optimiser update, an epoch of updates, and ``fit`` around them.

Introduced in notebook 03 (training), which prints :func:`mse_step`, :func:`train_step`,
:func:`train_epoch` and :func:`fit` in full. ``fit`` has two seams, as d2l's ``Trainer`` and
fastbook's ``Learner`` do:

- the **step**: ``step(model, batch) -> (loss, logs)``, the model's objective on one batch of images
  (float (B, 3, 32, 32) in [-1, 1]): the loss to minimise (a 0-d tensor) and what to log (name ->
  0-d tensor). :func:`mse_step` is the article's; a denoiser, notebook 08's quantised codes and
  notebook 09's variational autoencoder each bring their own, and the loop does not change;
- the **callbacks** (:mod:`convae_utils.callbacks`): checkpoints and exact resume, the Stop button,
  NaN and stall guards, progress, the per-epoch pictures, learning-rate schedules.

What makes it fast and changes no number (memory layout, autocast, the fused Adam, CUDA graphs)
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
from .history import History
from .images import ImageSet, normalize
from .inference import evaluating
from .checks import check_float
from .settings import LR_RANGE, check_limit, pick_device
from .speed import GraphedStep, Speed, make_adam

StepOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]
Step = Callable[[nn.Module, torch.Tensor], StepOutput]


# -- the lesson: a step, an update, an epoch, the loop ------------------------------------------------

def mse_step(model: nn.Module, batch: torch.Tensor) -> StepOutput:
    """The article's objective: rebuild the batch (float (B, 3, 32, 32) in [-1, 1]); the loss is the MSE."""
    reconstruction = model(batch)                         # (B, 3, 32, 32)
    loss = F.mse_loss(reconstruction.float(), batch)      # mean over every pixel and channel
    return loss, {}                                       # nothing to log beyond the loss itself


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor,
               step: Step = mse_step) -> StepOutput:
    """One optimiser update on a batch of uint8 images (B, 3, 32, 32); returns the step's (loss, logs)."""
    loss, logs = step(model, normalize(batch))            # uint8 -> [-1, 1], then the model's loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()                                       # gradients of the loss
    optimizer.step()                                      # Adam nudges every weight
    return loss.detach(), {name: value.detach() for name, value in logs.items()}


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                order: torch.Tensor, batch_size: int, *, update=train_step, first_step: int = 0,
                after_step: Callable[[int, dict], None] | None = None) -> dict[str, torch.Tensor]:
    """One pass over ``images`` (uint8, on the model's device) in the shuffled ``order``.

    Returns every batch's loss and logs, ``{"loss": (n_batches,), ...}``, on the device (read them once,
    not per step). ``first_step`` skips batches already done (resume); ``after_step(index, records)``
    runs after each update; ``update`` is ``train_step`` with the model's step, or a stand-in that
    does the same faster (``speed.GraphedStep`` on a GPU).
    """
    n_batches = math.ceil(len(order) / batch_size)
    records: dict[str, torch.Tensor] = {}
    model.train()
    for index in range(first_step, n_batches):
        batch = images[order[index * batch_size:(index + 1) * batch_size]]
        loss, logs = update(model, optimizer, batch)
        for name, value in {"loss": loss, **logs}.items():
            records.setdefault(name, torch.zeros(n_batches, device=images.device))[index] = value
        if after_step is not None:
            after_step(index, records)
    return records


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), so resume can rebuild it."""
    # PyTorch takes seeds below 2**64: wrap, so every seed RunSettings accepts shuffles (smaller ones as before)
    gen = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)
    return torch.randperm(n, generator=gen).to(device)


def fit(model: nn.Module, train: ImageSet, val: ImageSet, *, step: Step = mse_step, num_epochs: int = 10,
        batch_size: int = 64, lr: float = 1e-3, seed: int = 0, device=None, optimizer=None,
        callbacks: Sequence[Callback] = (), progress: bool = True, speed: Speed = Speed()) -> History:
    """Train ``model`` on ``train`` by minimising ``step``'s loss; returns the run's :class:`History`.

    ``step(model, batch) -> (loss, logs)`` is the objective (default: the article's MSE) and scores
    ``val`` after every epoch too; ``optimizer(model, lr)`` builds the optimiser (default: Adam);
    ``callbacks`` add checkpoints, pictures and schedules; ``speed`` changes how fast, never what is
    computed. The Stop button ends the run between two steps; a NaN loss raises TrainingDiverged.
    """
    _check_arguments(train, val, num_epochs=num_epochs, batch_size=batch_size, lr=lr, seed=seed)
    device = pick_device(device)
    forward, fast_step, graphed = speed.apply(model, step, device)   # same numbers, faster
    update = functools.partial(train_step, step=fast_step)
    n_batches = math.ceil(len(train) / batch_size)
    meta = dict(dataset=train.name, latent_dim=int(getattr(model, "latent_dim", -1)), batch_size=batch_size,
                lr=lr, seed=seed, train_size=len(train), val_size=len(val), device=str(device),
                channels_last=speed.channels_last, step=step_name(step))
    loop = Loop(model, make_adam(model, lr, capturable=graphed) if optimizer is None else optimizer(model, lr),
                History(batches_per_epoch=n_batches, meta=meta), train.images.to(device), val.images.to(device),
                num_epochs, n_batches)
    callbacks = [NaNGuard(), *callbacks, ProgressBar(progress), StopButton()]

    def emit(event: str) -> None:
        for callback in callbacks:
            getattr(callback, event)(loop)

    def after_step(index: int, records: dict) -> None:
        loop.completed, loop.records = index + 1, records
        emit("on_step_end")

    try:
        emit("on_fit_start")                               # a Checkpoint moves the start forward here
        update = GraphedStep(update) if graphed else update
        while loop.epoch < num_epochs:
            order = epoch_order(len(train), seed, loop.epoch, device)
            started = time.perf_counter()
            try:
                loop.records = train_epoch(forward, loop.optimizer, loop.train_images, order, batch_size,
                                           update=update, first_step=loop.first_step, after_step=after_step)
            except KeyboardInterrupt:                      # the Stop button, between two steps
                loop.history.record_batches(loop.records, loop.first_step, loop.completed)
                loop.history.meta["interrupted"] = True
                emit("on_interrupt")                       # the NaN guard looks, then a Checkpoint saves
                return loop.history
            loop.history.record_batches(loop.records, loop.first_step, n_batches)
            loop.history.end_epoch(evaluate_step(loop.model, fast_step, loop.val_images),
                                   seconds=time.perf_counter() - started)
            emit("on_epoch_end")
            loop.epoch, loop.first_step, loop.completed = loop.epoch + 1, 0, 0
    finally:
        emit("on_fit_end")
    return loop.history


def _check_arguments(train, val, **numbers) -> None:
    """fit's own arguments, checked where a learner's values enter (``RunSettings`` checks them for runs)."""
    for name, split in (("train", train), ("val", val)):
        if not isinstance(split, ImageSet):
            raise TypeError(f"{name} must be a convae_utils.images.ImageSet, got {type(split).__name__}")
    for name in ("num_epochs", "batch_size", "seed"):
        check_limit(name, numbers[name])
    check_float("lr", numbers["lr"], low=LR_RANGE[0], high=LR_RANGE[1], high_inclusive=True)
    if numbers["batch_size"] > len(train):
        raise ValueError(f"batch_size={numbers['batch_size']:,} is larger than the training set ({len(train):,} "
                         "images); use a smaller batch or more data")


# -- evaluation -----------------------------------------------------------------------------------------

@torch.inference_mode()
def evaluate_step(model: nn.Module, step: Step, images: torch.Tensor, *, batch_size: int = 500) -> dict[str, float]:
    """``step``'s loss and logs on uint8 ``images`` (on the model's device) in eval mode, averaged per image.

    Returns ``{"loss": ..., <each log>: ...}``; ``fit`` scores the validation split with it after each epoch.
    """
    sums: dict[str, list[torch.Tensor]] = {}
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            loss, logs = step(model, normalize(batch))
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


def step_name(step: Step) -> str:
    """A plain string that tells one step from another, for run records (``describe()`` if the step has one)."""
    describe = getattr(step, "describe", None)
    if callable(describe):
        return json.dumps(describe(), sort_keys=True)
    return getattr(step, "__qualname__", type(step).__name__)
