"""What a real run needs and a lesson does not, plugged into ``training.fit`` as callbacks.

Introduced in notebook 03 (training). ``fit`` is a loop a learner can read whole; everything else a
run needs attaches here, through six events (fastbook's ``Learner`` and d2l's ``Trainer`` work the
same way): ``on_fit_start``, ``on_step_end``, ``on_epoch_end``, ``on_interrupt``, ``on_fit_end``.
Each callback gets the :class:`Loop`, the state of the run so far, and may read or change it.

- :class:`StopButton`: Jupyter's Stop button (or Ctrl-C) stops between two steps, never inside one.
- :class:`NaNGuard`: a NaN or infinite loss stops the run with :class:`~convae_utils.errors.TrainingDiverged`.
- :class:`ProgressBar`: a tqdm bar per epoch and one line per epoch.
- :class:`StallGuard`: one warning when a model is no better than predicting the mean colour.
- :class:`ReconstructExemplars`: the exemplars' reconstructions after each epoch (the pictures).
- :class:`OneCycle`: a learning-rate schedule, a pure function of the step (so resume is exact).
- ``checkpoints.Checkpoint``: saves after each epoch and on interruption, and resumes exactly.
"""

from __future__ import annotations

import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import TrainingDiverged, warn
from .history import History
from .images import ImageSet, normalize, to_uint8
from .inference import evaluating, model_device

REPORT_PREFIX = "convae | "  # every progress line the package prints starts so (the headless series echoes them)


def report(message: str) -> None:
    """Print one progress line; ``python -m convae_utils series`` echoes exactly these to the terminal."""
    print(f"{REPORT_PREFIX}{message}", flush=True)


@dataclass
class Loop:
    """The state of a run that ``fit`` shares with its callbacks.

    ``epoch`` counts from 0; ``first_step`` is where this epoch started (after a resume, not 0);
    ``completed`` is how many steps of this epoch have fully happened; ``records`` holds this epoch's
    per-batch values (``"loss"`` and each of the step's logs), on the device.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    train_images: torch.Tensor   # uint8 (N, 3, 32, 32), on the device
    val_images: torch.Tensor
    num_epochs: int
    n_batches: int
    epoch: int = 0
    first_step: int = 0
    completed: int = 0
    records: dict[str, torch.Tensor] = field(default_factory=dict)
    checkpoint: Path | None = None  # set by checkpoints.Checkpoint, so messages can say what was kept

    @property
    def global_step(self) -> int:
        """Steps done since the start of the run (the next step's index)."""
        return self.epoch * self.n_batches + self.completed

    @property
    def total_steps(self) -> int:
        return self.num_epochs * self.n_batches

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def done_this_epoch(self, name: str = "loss") -> list[float]:
        """This epoch's values of ``name`` for the steps completed in this call (read from the device)."""
        values = self.records.get(name)
        return [] if values is None else values[self.first_step:self.completed].tolist()


class Callback:
    """A run's extra behaviour: override any of the events; each gets the :class:`Loop`."""

    def on_fit_start(self, loop: Loop) -> None: ...
    def on_step_end(self, loop: Loop) -> None: ...
    def on_epoch_end(self, loop: Loop) -> None: ...
    def on_interrupt(self, loop: Loop) -> None: ...
    def on_fit_end(self, loop: Loop) -> None: ...


class StopButton(Callback):
    """Turns the first SIGINT (Jupyter's Stop button, Ctrl-C) into a stop between two steps.

    Stopping between steps, never inside ``optimizer.step()``, is what makes a saved state exact.
    A second SIGINT raises KeyboardInterrupt at once, as usual.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def on_fit_start(self, loop: Loop) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def on_step_end(self, loop: Loop) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def on_interrupt(self, loop: Loop) -> None:
        where = f"epoch {loop.epoch + 1}, batch {loop.completed} of {loop.n_batches}"
        if loop.checkpoint is None:
            print(f"\nInterrupted at {where}; the model keeps what it learnt (a checkpoint would let it resume).")

    def on_fit_end(self, loop: Loop) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class NaNGuard(Callback):
    """Stops the run with :class:`TrainingDiverged` as soon as a loss is NaN or infinite.

    The losses stay on the device and are read every ``every`` steps (a GPU is not stalled after each
    step), and before anything is saved on interruption, so a bad state is never checkpointed.
    """

    def __init__(self, every: int = 25):
        self.every = every

    def on_step_end(self, loop: Loop) -> None:
        if loop.completed % self.every == 0 or loop.completed == loop.n_batches:
            start = max(loop.first_step, loop.completed - self.every)
            if not bool(torch.isfinite(loop.records["loss"][start:loop.completed]).all()):
                loop.history.record_batches(loop.records, loop.first_step, loop.completed)
                self._diverged(loop)

    def on_interrupt(self, loop: Loop) -> None:  # fit has recorded this epoch's batches in the history
        if not all(math.isfinite(v) for v in loop.done_this_epoch()):
            self._diverged(loop)

    @staticmethod
    def _diverged(loop: Loop) -> None:
        values = loop.done_this_epoch()
        bad = loop.first_step + next(i for i, v in enumerate(values) if not math.isfinite(v))
        kept = (f"the last good checkpoint ({loop.checkpoint}, end of epoch {loop.epoch}) was kept"
                if loop.checkpoint is not None and loop.checkpoint.exists() else "no checkpoint was written")
        raise TrainingDiverged(
            f"training loss became NaN or infinite at epoch {loop.epoch + 1}, batch {bad + 1}; {kept}. "
            f"Lower the learning rate (lr={loop.history.meta.get('lr', loop.lr):g}) or check the input data for "
            "NaN/inf pixels.", history=loop.history)


class ProgressBar(Callback):
    """A tqdm bar per epoch with the recent loss, and one line per epoch (echoed by the headless series)."""

    def __init__(self, enabled: bool = True, every: int = 25):
        self.enabled, self.every = enabled, every
        self.bar = None

    def on_fit_start(self, loop: Loop) -> None:
        self._open(loop)

    def _open(self, loop: Loop) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=loop.n_batches, initial=loop.first_step, desc=f"epoch {loop.epoch + 1}/{loop.num_epochs}",
                        disable=not self.enabled, leave=True, unit="batch")

    def on_step_end(self, loop: Loop) -> None:
        if self.bar is None:
            self._open(loop)
        self.bar.update(1)
        if loop.completed % self.every == 0 or loop.completed == loop.n_batches:
            recent = loop.records["loss"][max(loop.first_step, loop.completed - self.every):loop.completed]
            self.bar.set_postfix(loss=f"{float(recent.mean()):.4f}")

    def on_epoch_end(self, loop: Loop) -> None:
        self._close()
        h = loop.history
        if self.enabled:
            images = (loop.n_batches - loop.first_step) / loop.n_batches * len(loop.train_images)
            report(f"epoch {loop.epoch + 1}/{loop.num_epochs}: train loss {h.train_epoch_loss[-1]:.4f} "
                   f"(epoch mean), val loss {h.val_epoch_loss[-1]:.4f}, "
                   f"{images / max(h.epoch_seconds[-1], 1e-9):,.0f} images/s")

    def on_interrupt(self, loop: Loop) -> None:
        self._close()

    def on_fit_end(self, loop: Loop) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainingStalledWarning(UserWarning):
    """After an epoch the model was no better than predicting the mean colour everywhere."""


STALL_MIN_STEPS = 200  # before this many steps a model may still be close to the trivial prediction


def constant_prediction_loss(train: torch.Tensor, val: torch.Tensor) -> float:
    """Validation MSE ([-1, 1] scale) of always predicting the training set's mean colour per channel.

    The trivial prediction: a model that cannot beat it has learnt nothing about the images.
    """
    mean = torch.stack([normalize(train[i:i + 4096]).mean(dim=(0, 2, 3)) for i in range(0, len(train), 4096)])
    colour = mean.mean(dim=0).view(1, 3, 1, 1)  # chunks are equal-sized but the last: close enough
    sums = [(normalize(val[i:i + 4096]) - colour).pow(2).sum() for i in range(0, len(val), 4096)]
    return math.fsum(torch.stack(sums).tolist()) / val[0].numel() / len(val)


class StallGuard(Callback):
    """One :class:`TrainingStalledWarning` when the validation MSE is no better than the mean colour's.

    For steps whose loss is the reconstruction MSE (``training.mse_step`` and the denoisers'); far
    worse than the trivial prediction at any time, or no better after ``STALL_MIN_STEPS`` steps.
    """

    def __init__(self):
        self.trivial, self.warned = None, False

    def on_fit_start(self, loop: Loop) -> None:
        self.trivial = constant_prediction_loss(loop.train_images, loop.val_images)

    def on_epoch_end(self, loop: Loop) -> None:
        val_loss, steps = loop.history.val_epoch_loss[-1], (loop.epoch + 1) * loop.n_batches
        if self.warned or not (val_loss >= 2.0 * self.trivial or (steps >= STALL_MIN_STEPS and val_loss >= self.trivial)):
            return
        self.warned = True
        lr = loop.history.meta.get("lr", loop.lr)
        cause = (f"The likely cause is a learning rate too high for Adam (lr={lr:g}; the article's is 1e-3): large "
                 "steps push the code units behind the ReLU below zero for every image, where they die"
                 if lr > 1e-3 else
                 "Check the data (all images alike?) and the dead code units (metrics.dead_code_units)")
        warn(f"after epoch {loop.epoch + 1} the validation loss ({val_loss:.4f}) is no better than predicting the "
             f"training set's mean colour everywhere ({self.trivial:.4f}): the model has learnt nothing about the "
             f"images. {cause}; then train again.", TrainingStalledWarning)


@torch.inference_mode()
def reconstruct(model: nn.Module, images: torch.Tensor, *, channels_last: bool = True) -> torch.Tensor:
    """Reconstructions of uint8 images (K, 3, 32, 32) as uint8 on the CPU (for grids and the history)."""
    xb = normalize(images.to(model_device(model)))
    if channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    with evaluating(model):
        return to_uint8(model(xb).float()).cpu().contiguous()


class ReconstructExemplars(Callback):
    """After every epoch, reconstruct the exemplars (the article's one image per class) into the history.

    ``history.reconstructions`` gains one uint8 (K, 3, 32, 32) tensor per epoch, on the CPU; the
    originals and their class names go into ``history.exemplars`` and ``history.classes``.
    """

    def __init__(self, exemplars: ImageSet, *, channels_last: bool = True):
        self.exemplars, self.channels_last = exemplars, channels_last

    def on_fit_start(self, loop: Loop) -> None:
        self.images = self.exemplars.images.to(loop.train_images.device)
        if loop.history.exemplars is None:
            loop.history.exemplars = self.exemplars.images.cpu().clone()
            loop.history.classes = tuple(self.exemplars.classes[i] for i in self.exemplars.labels.tolist())

    def on_epoch_end(self, loop: Loop) -> None:
        loop.history.reconstructions.append(reconstruct(loop.model, self.images, channels_last=self.channels_last))


class OneCycle(Callback):
    """The one-cycle learning-rate schedule (Smith & Topin, 2019): warm up to ``max_lr``, then anneal.

    The rate rises from ``max_lr / 25`` to ``max_lr`` over the first ``warmup`` share of the run's
    steps and falls along a cosine to ``max_lr / 1e4``. It is a pure function of the step, so a run
    that resumes from a checkpoint gets exactly the rates an uninterrupted one would. ``max_lr``
    ``None`` (the default): the run's own learning rate (``fit``'s ``lr``, a run's ``settings.lr``).
    """

    def __init__(self, max_lr: float | None = None, warmup: float = 0.3):
        self.max_lr, self.warmup = None if max_lr is None else float(max_lr), float(warmup)

    def rate(self, step: int, total: int, max_lr: float | None = None) -> float:
        max_lr = self.max_lr if max_lr is None else max_lr
        start, end, peak = max_lr / 25, max_lr / 1e4, max(1, round(self.warmup * total))
        if step < peak:
            return start + (max_lr - start) * (1 - math.cos(math.pi * step / peak)) / 2
        fraction = min(1.0, (step - peak) / max(1, total - peak))
        return end + (max_lr - end) * (1 + math.cos(math.pi * fraction)) / 2

    def on_fit_start(self, loop: Loop) -> None:
        self._peak = self.max_lr if self.max_lr is not None else float(loop.history.meta["lr"])
        loop.lr = self.rate(loop.global_step, loop.total_steps, self._peak)

    def on_step_end(self, loop: Loop) -> None:
        loop.lr = self.rate(loop.global_step, loop.total_steps, self._peak)

    def describe(self) -> dict:
        return {"schedule": "one-cycle", "max_lr": self.max_lr or "the run's lr", "warmup": self.warmup}
