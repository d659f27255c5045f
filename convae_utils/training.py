"""Training: one ``fit`` with the article's defaults, checkpoints every epoch, resume, interruption.

Defined in notebook 03 (training). The loop differs from the article's where the article was wrong
or slow, and says so:

- batches are shuffled (the article's DataLoader was not), from a seeded generator per epoch;
- the epoch loss is the mean over the epoch's batches (the article printed the last batch's);
- validation uses a held-out part of the training split, never the test set;
- images stay uint8 on the device and are normalised per batch there: no per-item PIL work,
  no host-to-device copy per step;
- per-batch losses are collected on the device and read once per logging interval, so a GPU is
  not stalled by a ``.item()`` after every step.

A checkpoint is written atomically after every epoch and when training is interrupted (Jupyter's
Stop button, Ctrl-C), mid-epoch included; calling ``fit`` again with the same checkpoint resumes
and ends with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_float, check_int
from .config import pick_device
from .data import ImageSet, normalize, to_uint8
from .errors import CheckpointError, TrainingDiverged

CHECKPOINT_FORMAT = "convae-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class History:
    """Everything a training run logs. Losses are MSE on the [-1, 1] scale (the training loss).

    Attributes:
        train_batch_loss: loss of every training batch, in order (``batches_per_epoch`` per epoch).
        train_epoch_loss: mean training loss of each epoch (the article printed the last batch's).
        val_epoch_loss: mean validation loss after each epoch.
        reconstructions: per epoch, the exemplars' reconstructions as uint8 (K, 3, 32, 32).
        exemplars: the exemplar originals, uint8 (K, 3, 32, 32), or None.
        classes: class names of the exemplars (one per exemplar).
        epoch_seconds: wall time of each epoch's training pass.
        meta: what produced the run (dataset name, latent_dim, seed, device, versions ...).
    """

    batches_per_epoch: int = 0
    train_batch_loss: list[float] = field(default_factory=list)
    train_epoch_loss: list[float] = field(default_factory=list)
    val_epoch_loss: list[float] = field(default_factory=list)
    reconstructions: list[torch.Tensor] = field(default_factory=list)
    exemplars: torch.Tensor | None = None
    classes: tuple[str, ...] = ()
    epoch_seconds: list[float] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def epochs_done(self) -> int:
        return len(self.train_epoch_loss)

    @property
    def interrupted(self) -> bool:
        return bool(self.meta.get("interrupted", False))

    def to_json(self) -> dict:
        """Losses and timings as plain JSON (images are left out: they live in the checkpoint/PNGs)."""
        d = asdict(self)
        for key in ("reconstructions", "exemplars"):
            d.pop(key)
        d["classes"] = list(self.classes)
        return d

    def to_state(self) -> dict:
        """Everything, as tensors/lists/strings: loadable with ``torch.load(weights_only=True)``."""
        d = self.to_json()
        d["reconstructions"] = [r.cpu() for r in self.reconstructions]
        d["exemplars"] = None if self.exemplars is None else self.exemplars.cpu()
        return d

    @classmethod
    def from_state(cls, state: dict) -> "History":
        state = dict(state)
        state["classes"] = tuple(state.get("classes", ()))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in state.items() if k in known})


@dataclass(frozen=True)
class FitSettings:
    """The settings that must agree for a checkpoint to be resumed."""

    latent_dim: int
    batch_size: int
    lr: float
    seed: int
    dataset: str
    train_size: int
    channels_last: bool


def _atomic_torch_save(obj, path: Path) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    history: History, settings: FitSettings | None, *, epoch: int, step: int = 0) -> Path:
    """Save model, optimiser, history and position (epoch, step within it) atomically."""
    path = Path(path)
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "history": history.to_state(),
        "settings": None if settings is None else asdict(settings),
        "epoch": epoch,
        "step": step,
        "latent_dim": int(getattr(model, "latent_dim", -1)),
    }
    _atomic_torch_save(state, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``: a downloaded file cannot run code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, foreign objects refused by weights_only
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a convae checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); delete it to start over"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a convae checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
                              "delete it or choose another path")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state.get('version')}, "
                              f"this package reads version {CHECKPOINT_VERSION}")
    return state


def load_weights(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load a checkpoint's weights into ``model``; a latent-size mismatch is a clear error."""
    state = load_checkpoint(path)
    want = getattr(model, "latent_dim", None)
    have = state.get("latent_dim")
    if want is not None and have not in (None, -1) and want != have:
        raise CheckpointError(f"checkpoint {path} holds a latent_dim={have} model, "
                              f"but the model given has latent_dim={want}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {str(exc).splitlines()[0]}") from exc
    return state


def make_adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where this torch supports it on the model's device.

    The fused step is the same algorithm with a different rounding order; on CPU it cut the
    optimiser's share of a latent-1000 step from 30-40 ms to 4-6 ms (``python -m convae_utils bench``).
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without a fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


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


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), so resume can rebuild it."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).to(device)


@torch.inference_mode()
def mean_loss(model: nn.Module, images: torch.Tensor, *, batch_size: int = 500,
              channels_last: bool = True) -> float:
    """Mean per-pixel MSE of ``model`` on uint8 ``images`` already on the model's device."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    for start in range(0, len(images), batch_size):
        xb = normalize(images[start:start + batch_size])
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        total += F.mse_loss(model(xb), xb, reduction="sum").double()
    model.train(was_training)
    return float(total) / images[0].numel() / len(images)


@torch.inference_mode()
def reconstruct(model: nn.Module, images: torch.Tensor, *, channels_last: bool = True) -> torch.Tensor:
    """Reconstructions of uint8 images as uint8 on the CPU (for grids and the history)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    xb = normalize(images.to(device))
    if channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    out = to_uint8(model(xb).float()).cpu().contiguous()
    model.train(was_training)
    return out


def fit(model: nn.Module, train: ImageSet, val: ImageSet, *, num_epochs: int = 10, batch_size: int = 64,
        lr: float = 1e-3, seed: int = 0, device: str | torch.device | None = None,
        exemplars: ImageSet | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = True, progress: bool = True, channels_last: bool = True,
        amp: bool = False, compile: bool = False, log_every: int = 25, on_batch_end: Callable[[int, int], None] | None = None) -> History:
    """Train ``model`` to reconstruct ``train`` (MSE, Adam) and return its :class:`History`.

    Args:
        model: an autoencoder (e.g. ``build_autoencoder()``); moved to ``device`` and trained in place.
        train, val: uint8 ImageSets; ``val`` is the held-out validation split, never the test set.
        num_epochs: total epochs; resuming a checkpoint trains only the missing ones.
        seed: seeds the shuffling; with the same initial weights, runs on a CPU repeat exactly.
        device: ``None``/``"auto"`` picks cuda, then mps, then cpu.
        exemplars: images reconstructed after every epoch (the article's 10 class images).
        checkpoint: file written after each epoch and on interruption; resumed from if present.
        channels_last: NHWC memory layout; measured faster on CPU (``python -m convae_utils bench``).
        amp: bfloat16 autocast on CUDA (off by default: not yet measured on a GPU by our benchmark).
        compile: run the training forward pass through ``torch.compile`` (off by default, as ``amp``).
        on_batch_end: called as ``on_batch_end(epoch, step)`` after each optimiser step (epoch and
            step counted from 0); for progress hooks and tests.

    Interrupting (Stop button / Ctrl-C) finishes the current step, saves the checkpoint and returns
    the history with ``history.interrupted`` set. A NaN/inf loss raises :class:`TrainingDiverged`
    without overwriting the last good checkpoint.
    """
    num_epochs = check_int("num_epochs", num_epochs, maximum=100_000)
    batch_size = check_int("batch_size", batch_size, maximum=1 << 16)
    lr = check_float("lr", lr, low=0.0, high=10.0, high_inclusive=True)
    seed = check_int("seed", seed, minimum=0)
    log_every = check_int("log_every", log_every)
    for name, split in (("train", train), ("val", val)):
        if not isinstance(split, ImageSet):
            raise TypeError(f"{name} must be a convae_utils.data.ImageSet, got {type(split).__name__}")
    if batch_size > len(train):
        raise ValueError(f"batch_size={batch_size:,} is larger than the training set ({len(train):,} images); "
                         "use a smaller batch or more data")
    device = pick_device(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if amp and device.type != "cuda":
        raise ValueError(f"amp=True needs a CUDA device (bfloat16 autocast), got device {device}")
    forward = torch.compile(model) if compile else model
    optimizer = make_adam(model, lr)
    settings = FitSettings(int(getattr(model, "latent_dim", -1)), batch_size, lr, seed, train.name,
                           len(train), bool(channels_last))
    checkpoint = Path(checkpoint) if checkpoint is not None else None

    n_batches = math.ceil(len(train) / batch_size)
    history = History(batches_per_epoch=n_batches, classes=tuple(
        exemplars.classes[i] for i in exemplars.labels.tolist()) if exemplars is not None else (),
        exemplars=exemplars.images.cpu().clone() if exemplars is not None else None,
        meta={"dataset": train.name, "latent_dim": settings.latent_dim, "batch_size": batch_size, "lr": lr,
              "seed": seed, "train_size": len(train), "val_size": len(val), "device": str(device)})
    start_epoch, start_step = 0, 0
    if checkpoint is not None and resume and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        saved = state.get("settings") or {}
        mismatched = {k: (saved.get(k), v) for k, v in asdict(settings).items() if saved.get(k) != v}
        if mismatched:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in mismatched.items())
            raise CheckpointError(f"checkpoint {checkpoint} was trained with other settings ({detail}); "
                                  "use the same settings to resume, resume=False to start over, or another path")
        load_weights(model, checkpoint)
        optimizer.load_state_dict(state["optimizer"])
        history = History.from_state(state["history"])
        history.meta.pop("interrupted", None)
        start_epoch, start_step = int(state["epoch"]), int(state["step"])
        if start_epoch or start_step:  # said even without progress bars: the run did not start from scratch
            where = f"epoch {start_epoch + 1}, batch {start_step + 1}" if start_step else f"epoch {start_epoch + 1}"
            print(f"Resuming from {checkpoint} at {where}.")
    if start_epoch >= num_epochs:
        return history

    train_images = train.images.to(device)
    val_images = val.images.to(device)
    exemplar_images = exemplars.images.to(device) if exemplars is not None else None

    from tqdm.auto import tqdm

    model.train()
    with _StopRequest() as stop:
        for epoch in range(start_epoch, num_epochs):
            order = epoch_order(len(train), seed, epoch, device)
            # Losses stay on the device until a logging point: no GPU stall per step.
            losses = torch.empty(n_batches, device=device)
            first = start_step if epoch == start_epoch else 0
            done_before = history.train_batch_loss[epoch * n_batches:]
            if first:
                losses[:first] = torch.tensor(done_before[:first], device=device)
            del history.train_batch_loss[epoch * n_batches:]
            bar = tqdm(total=n_batches, initial=first, desc=f"epoch {epoch + 1}/{num_epochs}",
                       disable=not progress, leave=True, unit="batch")
            t0 = time.perf_counter()
            completed = first  # steps whose update fully happened
            try:
                for step in range(first, n_batches):
                    idx = order[step * batch_size:(step + 1) * batch_size]
                    xb = normalize(train_images[idx])
                    if channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                        loss = F.mse_loss(forward(xb).float(), xb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    losses[step] = loss.detach()
                    completed = step + 1
                    if on_batch_end is not None:
                        on_batch_end(epoch, step)
                    bar.update(1)
                    if (step + 1) % log_every == 0 or step + 1 == n_batches:
                        recent = losses[max(0, step + 1 - log_every):step + 1]
                        if not bool(torch.isfinite(recent).all()):
                            _diverged(history, losses[:step + 1], epoch, step, lr, checkpoint)
                        bar.set_postfix(loss=f"{float(recent.mean()):.4f}")
                    if stop.requested:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                bar.close()
                if not bool(torch.isfinite(losses[:completed]).all()):
                    _diverged(history, losses[:completed], epoch, completed, lr, checkpoint)
                history.train_batch_loss.extend(losses[:completed].tolist())
                history.meta["interrupted"] = True
                if checkpoint is not None:
                    save_checkpoint(checkpoint, model, optimizer, history, settings, epoch=epoch, step=completed)
                    print(f"\nInterrupted at epoch {epoch + 1}, batch {completed}/{n_batches}. Saved to "
                          f"{checkpoint}; run the same call again to resume where it stopped.")
                else:
                    print(f"\nInterrupted at epoch {epoch + 1}, batch {completed}/{n_batches}; the model keeps "
                          "what it learnt (pass checkpoint=... to be able to resume).")
                return history
            train_seconds = time.perf_counter() - t0
            bar.close()
            batch_losses = losses.tolist()
            history.train_batch_loss.extend(batch_losses)
            history.train_epoch_loss.append(sum(batch_losses) / n_batches)
            history.val_epoch_loss.append(mean_loss(model, val_images, channels_last=channels_last))
            history.epoch_seconds.append(train_seconds)
            if exemplar_images is not None:
                history.reconstructions.append(reconstruct(model, exemplar_images, channels_last=channels_last))
            if progress:
                print(f"epoch {epoch + 1}/{num_epochs}: train loss {history.train_epoch_loss[-1]:.4f} "
                      f"(epoch mean), val loss {history.val_epoch_loss[-1]:.4f}, "
                      f"{len(train) / train_seconds:,.0f} images/s")
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history, settings, epoch=epoch + 1, step=0)
    return history


def _diverged(history: History, losses: torch.Tensor, epoch: int, step: int, lr: float,
              checkpoint: Path | None) -> None:
    history.train_batch_loss.extend(losses.tolist())
    bad = int((~torch.isfinite(losses)).nonzero()[0]) if not bool(torch.isfinite(losses).all()) else step
    kept = (f"the last good checkpoint ({checkpoint}, end of epoch {epoch}) was kept"
            if checkpoint is not None and checkpoint.exists() else "no checkpoint was written")
    raise TrainingDiverged(
        f"training loss became NaN or infinite at epoch {epoch + 1}, batch {bad + 1}; {kept}. "
        f"Lower the learning rate (lr={lr:g}) or check the input data for NaN/inf pixels.",
        history=history,
    )
