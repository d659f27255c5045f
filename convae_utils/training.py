"""Training: a step a learner can read whole, an epoch of steps, and ``fit`` around them.

Introduced in notebook 03 (training), which prints :func:`train_step` and :func:`train_epoch` in
full. ``fit`` wraps them with what a real run needs and a lesson does not: argument checks,
checkpoints, exact resume, the Stop button, progress bars, NaN checks and per-epoch callbacks
(the exemplar pictures are one, as in the UvA tutorial's ``GenerateCallback``).

The loop differs from the article's where the article was wrong or slow, and says so:

- batches are shuffled (the article's DataLoader was not), from a seeded generator per epoch;
- the epoch loss is the mean over the epoch's batches (the article printed the last batch's);
- validation uses a held-out part of the training split, never the test set;
- images stay uint8 on the device and are normalised per batch there: no per-item PIL work,
  no host-to-device copy per step;
- per-batch losses are collected on the device and read once per logging interval, so a GPU is
  not stalled by a ``.item()`` after every step.

Every loss is summed on the host in Python floats, never as float64 on the device: Apple's MPS
backend has no float64, and the same code runs on every backend.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_float, check_int
from .cpu_speed import native_bf16, tune_allocator
from .errors import CheckpointError, TrainingDiverged, warn
from .fileio import atomic_write
from .history import History
from .images import ImageSet, normalize, to_uint8
from .settings import LR_RANGE, check_limit, pick_device

CHECKPOINT_FORMAT = "convae-checkpoint"
CHECKPOINT_VERSION = 1
REPORT_PREFIX = "convae | "  # every progress line the package prints starts so (the headless series echoes them)


def report(message: str) -> None:
    """Print one progress line; ``python -m convae_utils series`` echoes exactly these to the terminal."""
    print(f"{REPORT_PREFIX}{message}", flush=True)


# -- the lesson: one step, one epoch --------------------------------------------------------------

def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, *,
               corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
               channels_last: bool = True, amp: bool = False) -> torch.Tensor:
    """One optimiser step on a batch of uint8 images (B, 3, 32, 32); returns the loss (a 0-d tensor).

    ``corrupt`` (optional) turns the clean inputs into corrupted ones (a denoising autoencoder); the
    target is always the clean image. The loss is MSE on the [-1, 1] scale.
    """
    target = normalize(batch)                                   # (B, 3, 32, 32), uint8 -> [-1, 1]
    if channels_last:
        target = target.contiguous(memory_format=torch.channels_last)
    inputs = target if corrupt is None else corrupt(target)    # what the encoder sees
    with torch.autocast(target.device.type, dtype=torch.bfloat16, enabled=amp):
        reconstruction = model(inputs)                          # (B, 3, 32, 32)
    loss = F.mse_loss(reconstruction.float(), target)           # mean over every pixel and channel
    optimizer.zero_grad(set_to_none=True)
    loss.backward()                                             # gradients of the loss
    optimizer.step()                                            # Adam nudges every weight
    return loss.detach()


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                order: torch.Tensor, batch_size: int, *, first_step: int = 0,
                after_step: Callable[[int, torch.Tensor], None] | None = None, step_fn=train_step,
                **step_options) -> torch.Tensor:
    """One pass over ``images`` (uint8, on the model's device) in the shuffled ``order``.

    Returns the loss of every batch as a tensor on the device (read it once, not per step).
    ``first_step`` skips batches already done (resume); ``after_step(step, losses)`` runs after
    each step (progress, checks, the Stop button); ``step_fn`` is ``train_step`` or a stand-in
    for it that does the same (``GraphedStep`` on a GPU).
    """
    n_batches = math.ceil(len(order) / batch_size)
    losses = torch.zeros(n_batches, device=images.device)
    model.train()
    for step in range(first_step, n_batches):
        batch = images[order[step * batch_size:(step + 1) * batch_size]]
        losses[step] = step_fn(model, optimizer, batch, **step_options)
        if after_step is not None:
            after_step(step, losses)
    return losses


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), so resume can rebuild it."""
    # PyTorch takes seeds below 2**64: wrap, so every seed RunSettings accepts shuffles (smaller ones as before)
    gen = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)
    return torch.randperm(n, generator=gen).to(device)


# -- evaluation helpers -------------------------------------------------------------------------------

@torch.inference_mode()
def mean_loss(model: nn.Module, images: torch.Tensor, *, batch_size: int = 500,
              channels_last: bool = True,
              corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Mean per-pixel MSE ([-1, 1] scale) of ``model`` on uint8 ``images`` already on its device.

    With ``corrupt`` (a denoiser's validation) the model sees corrupted images and is scored
    against the clean ones, as in training.
    """
    was_training = model.training
    model.eval()
    sums = []
    for start in range(0, len(images), batch_size):
        xb = normalize(images[start:start + batch_size])
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        inputs = xb if corrupt is None else corrupt(xb)
        sums.append(F.mse_loss(model(inputs), xb, reduction="sum"))
    model.train(was_training)
    # Summed on the host in Python floats: exact enough, and no float64 on the device (MPS has none).
    return math.fsum(torch.stack(sums).tolist()) / images[0].numel() / len(images)


@torch.inference_mode()
def reconstruct(model: nn.Module, images: torch.Tensor, *, channels_last: bool = True) -> torch.Tensor:
    """Reconstructions of uint8 images (K, 3, 32, 32) as uint8 on the CPU (for grids and the history)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    xb = normalize(images.to(device))
    if channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    out = to_uint8(model(xb).float()).cpu().contiguous()
    model.train(was_training)
    return out


def constant_prediction_loss(train: torch.Tensor, val: torch.Tensor) -> float:
    """Validation MSE ([-1, 1] scale) of always predicting the training set's mean colour per channel.

    The trivial prediction: a model that cannot beat it has learnt nothing about the images.
    """
    mean = torch.stack([normalize(train[i:i + 4096]).mean(dim=(0, 2, 3)) for i in range(0, len(train), 4096)])
    colour = mean.mean(dim=0).view(1, 3, 1, 1)  # chunks are equal-sized but the last: close enough
    sums = [(normalize(val[i:i + 4096]) - colour).pow(2).sum() for i in range(0, len(val), 4096)]
    return math.fsum(torch.stack(sums).tolist()) / val[0].numel() / len(val)


# -- checkpoints ----------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    history: History, settings: dict | None, *, epoch: int, step: int = 0) -> Path:
    """Save model, optimiser, history and position (epoch, step within it) atomically and durably."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "history": history.to_state(),
        "settings": settings,
        "epoch": int(epoch),
        "step": int(step),
        "latent_dim": int(getattr(model, "latent_dim", -1)),
    }
    return atomic_write(path, lambda handle: torch.save(state, handle), durable=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _full_message(exc: BaseException) -> str:
    """An exception's whole message, without terminal colour codes."""
    return _ANSI.sub("", str(exc)).strip() or type(exc).__name__


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``: a downloaded file cannot run code).

    Raises :class:`CheckpointError` for a missing, truncated, foreign or code-carrying file, with
    torch's whole explanation.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, foreign objects refused by weights_only
        detail = _full_message(exc)
        if "Unsupported global" in detail:  # a readable file holding objects a safe load refuses
            raise CheckpointError(
                f"checkpoint {path} holds Python objects that a safe load (weights_only=True) refuses, so it "
                f"was not written by convae_utils (which saves plain values only); it is not loaded. Torch "
                f"says:\n{detail}") from exc
        raise CheckpointError(f"checkpoint {path} is damaged or not a convae checkpoint "
                              f"({type(exc).__name__}: {detail}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a convae checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
                              "delete it or choose another path")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state.get('version')}, "
                              f"this package reads version {CHECKPOINT_VERSION}")
    return state


def load_weights(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load a checkpoint's weights into ``model``; a model of another shape is a clear error."""
    state = load_checkpoint(path)
    want = getattr(model, "latent_dim", None)
    have = state.get("latent_dim")
    if want is not None and have not in (None, -1) and want != have:
        raise CheckpointError(f"checkpoint {path} holds a latent_dim={have} model, "
                              f"but the model given has latent_dim={want}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        mismatches = [line.strip() for line in _full_message(exc).splitlines()[1:] if line.strip()]
        raise CheckpointError(
            f"checkpoint {path} does not fit this model (other layer sizes: was it trained with another "
            f"base_channels or activation?):\n  " + "\n  ".join(mismatches or [_full_message(exc)])
        ) from exc
    return state


def make_adam(model: nn.Module, lr: float, *, capturable: bool = False) -> torch.optim.Adam:
    """Adam, fused into one kernel where this torch supports it on the model's device.

    The fused step is the same algorithm with a different rounding order; on CPU it cut the
    optimiser's share of a latent-1000 step from 30-40 ms to 4-6 ms (``python -m convae_utils bench``).
    ``capturable=True`` keeps its step count on the GPU, so the step can be captured in a CUDA graph.
    """
    try:
        if capturable:
            return torch.optim.Adam(model.parameters(), lr=lr, fused=True, capturable=True)
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without a fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


class GraphedStep:
    """``train_step`` captured once as a CUDA graph and replayed for every full batch (CUDA only).

    At batch 64 this small network keeps a GPU waiting on Python: launching ~150 kernels one by
    one costs more than running them. A CUDA graph launches the whole step (forward, backward,
    Adam) at once. The numbers are the same step's; what changes is only how it is launched.
    Capturing needs a few warm-up steps, which would train the model: the weights and Adam's state
    are put back exactly as they were afterwards. Batches of another shape (the last, smaller batch
    of an epoch) run eagerly, and so does every step under bfloat16 autocast (autocast's cast cache
    and graph capture do not mix). If capturing fails, every step runs eagerly, with one warning.
    """

    def __init__(self):
        self.graph = None
        self.failed = False
        self.static_batch = self.static_loss = None

    def __call__(self, model, optimizer, batch, **step_options) -> torch.Tensor:
        if self.failed or step_options.get("amp") or (self.graph is not None
                                                      and batch.shape != self.static_batch.shape):
            return train_step(model, optimizer, batch, **step_options)
        if self.graph is None:
            self._capture(model, optimizer, batch, step_options)
            if self.failed:
                return train_step(model, optimizer, batch, **step_options)
        self.static_batch.copy_(batch)
        self.graph.replay()
        return self.static_loss

    def _capture(self, model, optimizer, batch, step_options) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        saved_params = [p.detach().clone() for p in params]
        saved_state = {i: {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
                       for i, p in enumerate(params) if optimizer.state.get(p)}
        self.static_batch = batch.clone()
        try:
            side = torch.cuda.Stream(batch.device)
            side.wait_stream(torch.cuda.current_stream(batch.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up: allocations and kernel choices settle before capture
                    train_step(model, optimizer, self.static_batch, **step_options)
            torch.cuda.current_stream(batch.device).wait_stream(side)
            optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.static_loss = train_step(model, optimizer, self.static_batch, **step_options)
            self.graph = graph
        except Exception as exc:  # an op that cannot be captured on this torch/driver: stay eager
            self.failed = True
            warn(f"capturing the training step as a CUDA graph failed ({type(exc).__name__}: {exc}); "
                          "training continues eagerly, which is slower but the same")
        finally:
            with torch.no_grad():  # undo the warm-up: the same weights and Adam state as before it
                for p, saved in zip(params, saved_params):
                    p.copy_(saved)
                for i, p in enumerate(params):
                    for key, value in optimizer.state.get(p, {}).items():
                        if not torch.is_tensor(value):
                            continue
                        before = saved_state.get(i, {}).get(key)
                        value.copy_(before) if before is not None else value.zero_()


# -- callbacks ------------------------------------------------------------------------------------

class Callback(Protocol):
    """Called by ``fit`` after every finished epoch (``epoch`` counted from 1)."""

    def on_epoch_end(self, epoch: int, model: nn.Module, history: History) -> None: ...


class ReconstructExemplars:
    """After every epoch, reconstruct the exemplars into ``history.reconstructions`` (uint8, CPU)."""

    def __init__(self, exemplars: torch.Tensor, *, channels_last: bool = True):
        self.exemplars, self.channels_last = exemplars, channels_last

    def on_epoch_end(self, epoch: int, model: nn.Module, history: History) -> None:
        history.reconstructions.append(reconstruct(model, self.exemplars, channels_last=self.channels_last))


class _StopRequest:
    """Turns the first SIGINT (Jupyter's Stop button, Ctrl-C) into a flag checked between steps.

    Stopping between steps, never inside ``optimizer.step()``, is what makes the saved state exact.
    A second SIGINT raises KeyboardInterrupt as usual.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# -- fit --------------------------------------------------------------------------------------------

def _resume_fingerprint(model: nn.Module, train: ImageSet, batch_size: int, lr: float, seed: int,
                        channels_last: bool) -> dict:
    """What must agree for a checkpoint to be resumed (derived from fit's own arguments)."""
    return {"latent_dim": int(getattr(model, "latent_dim", -1)), "batch_size": batch_size, "lr": lr,
            "seed": seed, "dataset": train.name, "train_size": len(train), "channels_last": bool(channels_last)}


def _restore(checkpoint: Path, model, optimizer, fingerprint: dict, n_batches: int):
    """Load a checkpoint to resume from; returns (history, epoch, step)."""
    state = load_checkpoint(checkpoint)
    saved = state.get("settings") or {}
    mismatched = {k: (saved.get(k), v) for k, v in fingerprint.items() if saved.get(k) != v}
    if mismatched:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in mismatched.items())
        raise CheckpointError(f"checkpoint {checkpoint} was trained with other settings ({detail}); "
                              "use the same settings to resume, resume=False to start over, or another path")
    load_weights(model, checkpoint)
    optimizer.load_state_dict(state["optimizer"])
    history = History.from_state(state["history"])
    history.meta.pop("interrupted", None)
    epoch, step = int(state["epoch"]), int(state["step"])
    if epoch or step:  # said even without progress bars: the run did not start from scratch
        if step >= n_batches:
            where = f"the end of epoch {epoch + 1} (its validation and pictures are still to do)"
        elif step:
            where = f"epoch {epoch + 1}, batch {step + 1} of {n_batches}"
        else:
            where = f"the start of epoch {epoch + 1}"
        report(f"Resuming from {checkpoint} at {where}.")
    return history, epoch, step


def fit(model: nn.Module, train: ImageSet, val: ImageSet, *, num_epochs: int = 10, batch_size: int = 64,
        lr: float = 1e-3, seed: int = 0, device: str | torch.device | None = None,
        exemplars: ImageSet | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = True, progress: bool = True, channels_last: bool = True,
        amp: bool = False, compile: bool = False, log_every: int = 25,
        corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
        callbacks: Sequence[Callback] = (), cuda_graph: bool | None = None,
        on_batch_end: Callable[[int, int], None] | None = None) -> History:
    """Train ``model`` to reconstruct ``train`` (MSE, Adam) and return its :class:`History`.

    Introduced in notebook 03 (training).

    Args:
        model: an autoencoder (e.g. ``build_autoencoder()``); moved to ``device`` and trained in place.
        train, val: uint8 ImageSets; ``val`` is the held-out validation split, never the test set.
        num_epochs: total epochs; resuming a checkpoint trains only the missing ones.
        seed: seeds the shuffling; with the same initial weights, runs on a CPU repeat exactly.
        device: ``None``/``"auto"`` picks cuda, then mps, then cpu.
        exemplars: images reconstructed after every epoch (the article's 10 class images).
        checkpoint: file written after each epoch and on interruption; resumed from if present.
        channels_last: NHWC memory layout; measured faster on CPU (``python -m convae_utils bench``).
        amp: bfloat16 autocast (CUDA, or a CPU with native bf16 instructions; off by default, and
            a warning on a CPU without them, where it is emulated and slower).
        compile: run the training forward pass through ``torch.compile`` (off by default).
        corrupt: maps clean inputs in [-1, 1] to corrupted ones (denoising, notebook 07); the
            target stays the clean image, and the validation loss scores corrupted validation
            inputs against clean targets too (``exemplars`` are still reconstructed from clean
            images: leave them out for a denoiser).
        callbacks: objects with ``on_epoch_end(epoch, model, history)``, called after each epoch.
        cuda_graph: replay the step as a CUDA graph (:class:`GraphedStep`); default: on CUDA
            without ``compile``. Measured by ``python -m convae_utils.tools.experiment`` on a GPU.
        on_batch_end: called as ``on_batch_end(epoch, step)`` after each optimiser step (epoch and
            step counted from 0); for progress hooks and tests.

    The first call in a process applies the measured malloc settings
    (:func:`convae_utils.cpu_speed.tune_allocator`; ``$CONVAE_TUNE_MALLOC=0`` keeps glibc's defaults).

    Interrupting (Stop button / Ctrl-C) finishes the current step, saves the checkpoint and returns
    the history with ``history.interrupted`` set. A NaN/inf loss raises :class:`TrainingDiverged`
    without overwriting the last good checkpoint. A model no better than predicting the mean colour
    after an epoch gets one :class:`TrainingStalledWarning`.
    """
    num_epochs, batch_size, seed = (check_limit(name, value) for name, value in
                                    (("num_epochs", num_epochs), ("batch_size", batch_size), ("seed", seed)))
    lr = check_float("lr", lr, low=LR_RANGE[0], high=LR_RANGE[1], high_inclusive=True)
    log_every = check_int("log_every", log_every)
    for name, split in (("train", train), ("val", val)):
        if not isinstance(split, ImageSet):
            raise TypeError(f"{name} must be a convae_utils.images.ImageSet, got {type(split).__name__}")
    if batch_size > len(train):
        raise ValueError(f"batch_size={batch_size:,} is larger than the training set ({len(train):,} images); "
                         "use a smaller batch or more data")
    device = pick_device(device)
    tune_allocator()  # once per process: keeps each step's activations on the heap (measured in cpu_speed)
    if amp and device.type == "cpu" and not native_bf16():
        warn("amp=True on a CPU without native bfloat16 instructions (AVX-512 BF16, AMX or Arm BF16): "
                      "autocast is emulated there and was measured ~12x slower than float32; use amp=False")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    graphed = cuda_graph if cuda_graph is not None else (device.type == "cuda" and not compile)
    if graphed and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, got device {device}")
    optimizer = make_adam(model, lr, capturable=graphed)
    fingerprint = _resume_fingerprint(model, train, batch_size, lr, seed, channels_last)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    n_batches = math.ceil(len(train) / batch_size)
    callbacks = list(callbacks)
    if exemplars is not None:
        callbacks.insert(0, ReconstructExemplars(exemplars.images.to(device), channels_last=channels_last))

    history = History(batches_per_epoch=n_batches,
                      classes=tuple(exemplars.classes[i] for i in exemplars.labels.tolist()) if exemplars else (),
                      exemplars=exemplars.images.cpu().clone() if exemplars is not None else None,
                      meta={"dataset": train.name, "latent_dim": fingerprint["latent_dim"],
                            "batch_size": batch_size, "lr": lr, "seed": seed, "train_size": len(train),
                            "val_size": len(val), "device": str(device)})
    start_epoch, start_step = 0, 0
    if checkpoint is not None and resume and checkpoint.exists():
        history, start_epoch, start_step = _restore(checkpoint, model, optimizer, fingerprint, n_batches)
    if start_epoch >= num_epochs:
        return history

    train_images, val_images = train.images.to(device), val.images.to(device)
    trivial_loss = constant_prediction_loss(train_images, val_images)
    warned = False
    step_options = dict(corrupt=corrupt, channels_last=channels_last, amp=amp,
                        step_fn=GraphedStep() if graphed else train_step)

    from tqdm.auto import tqdm

    with _StopRequest() as stop:
        for epoch in range(start_epoch, num_epochs):
            first = start_step if epoch == start_epoch else 0
            done_before = history.train_batch_loss[epoch * n_batches:epoch * n_batches + first]
            del history.train_batch_loss[epoch * n_batches:]
            bar = tqdm(total=n_batches, initial=first, desc=f"epoch {epoch + 1}/{num_epochs}",
                       disable=not progress, leave=True, unit="batch")
            completed = first  # steps whose update fully happened
            current = None     # this epoch's per-batch losses, on the device

            def after_step(step: int, losses: torch.Tensor) -> None:
                nonlocal completed, current
                completed, current = step + 1, losses
                if on_batch_end is not None:
                    on_batch_end(epoch, step)
                bar.update(1)
                if completed % log_every == 0 or completed == n_batches:
                    recent = losses[max(first, completed - log_every):completed]
                    if not bool(torch.isfinite(recent).all()):
                        _diverged(history, losses[first:completed], done_before, epoch, lr, checkpoint)
                    bar.set_postfix(loss=f"{float(recent.mean()):.4f}")
                if stop.requested:
                    raise KeyboardInterrupt

            order = epoch_order(len(train), seed, epoch, device)
            t0 = time.perf_counter()
            try:
                losses = train_epoch(forward, optimizer, train_images, order, batch_size, first_step=first,
                                     after_step=after_step, **step_options)
            except KeyboardInterrupt:
                bar.close()
                done = current[first:completed] if current is not None else torch.zeros(0)
                if not bool(torch.isfinite(done).all()):
                    _diverged(history, done, done_before, epoch, lr, checkpoint)
                history.train_batch_loss.extend(done_before + done.tolist())
                return _interrupted(history, model, optimizer, fingerprint, checkpoint, epoch, completed, n_batches)
            train_seconds = time.perf_counter() - t0
            bar.close()
            batch_losses = done_before + losses[first:].tolist()
            history.train_batch_loss.extend(batch_losses)
            history.train_epoch_loss.append(math.fsum(batch_losses) / n_batches)
            history.val_epoch_loss.append(mean_loss(model, val_images, channels_last=channels_last, corrupt=corrupt))
            history.epoch_seconds.append(train_seconds)
            for callback in callbacks:
                callback.on_epoch_end(epoch + 1, model, history)
            if progress:
                report(f"epoch {epoch + 1}/{num_epochs}: train loss {history.train_epoch_loss[-1]:.4f} "
                       f"(epoch mean), val loss {history.val_epoch_loss[-1]:.4f}, "
                       f"{(len(train) - first * batch_size) / max(train_seconds, 1e-9):,.0f} images/s")
            steps_done = (epoch + 1) * n_batches
            if not warned and _stalled(history.val_epoch_loss[-1], trivial_loss, steps_done):
                warned = True
                _warn_stalled(history.val_epoch_loss[-1], trivial_loss, epoch, lr)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history, fingerprint, epoch=epoch + 1, step=0)
    return history


class TrainingStalledWarning(UserWarning):
    """After an epoch the model was no better than predicting the mean colour everywhere."""


STALL_MIN_STEPS = 200  # before this many steps a model may still be close to the trivial prediction


def _stalled(val_loss: float, trivial: float, steps_done: int) -> bool:
    """Far worse than the trivial prediction at any time, or no better after enough steps."""
    return val_loss >= 2.0 * trivial or (steps_done >= STALL_MIN_STEPS and val_loss >= trivial)


def _warn_stalled(val_loss: float, trivial: float, epoch: int, lr: float) -> None:
    cause = (f"The likely cause is a learning rate too high for Adam (lr={lr:g}; the article's is 1e-3): large "
             "steps push the code units behind the ReLU below zero for every image, where they die"
             if lr > 1e-3 else
             "Check the data (all images alike?) and the dead code units (metrics.dead_code_units)")
    warn(
        f"after epoch {epoch + 1} the validation loss ({val_loss:.4f}) is no better than predicting the "
        f"training set's mean colour everywhere ({trivial:.4f}): the model has learnt nothing about the images. "
        f"{cause}; then train again.", TrainingStalledWarning)


def _interrupted(history: History, model, optimizer, fingerprint: dict, checkpoint: Path | None, epoch: int,
                 completed: int, n_batches: int) -> History:
    history.meta["interrupted"] = True
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, optimizer, history, fingerprint, epoch=epoch, step=completed)
        print(f"\nInterrupted at epoch {epoch + 1}, batch {completed} of {n_batches}. Saved to "
              f"{checkpoint}; run the same call again to resume where it stopped.")
    else:
        print(f"\nInterrupted at epoch {epoch + 1}, batch {completed} of {n_batches}; the model keeps "
              "what it learnt (pass checkpoint=... to be able to resume).")
    return history


def _diverged(history: History, losses: torch.Tensor, done_before: list[float], epoch: int, lr: float,
              checkpoint: Path | None) -> None:
    values = done_before + losses.tolist()
    history.train_batch_loss.extend(values)
    bad = next(i for i, v in enumerate(values) if not math.isfinite(v))
    kept = (f"the last good checkpoint ({checkpoint}, end of epoch {epoch}) was kept"
            if checkpoint is not None and checkpoint.exists() else "no checkpoint was written")
    raise TrainingDiverged(
        f"training loss became NaN or infinite at epoch {epoch + 1}, batch {bad + 1}; {kept}. "
        f"Lower the learning rate (lr={lr:g}) or check the input data for NaN/inf pixels.",
        history=history,
    )
