"""Checkpoints: a run saved after every epoch and on interruption, loaded safely, resumed exactly.

Introduced in notebook 03 (training). :class:`Checkpoint` is a callback of ``training.fit``: it
resumes from its file when the run starts, and saves model, optimiser, history and position (epoch,
step within it) after each epoch and when the Stop button is pressed. Files are written atomically
(``fileio.atomic_write``) and loaded with ``weights_only=True``, so a file from elsewhere cannot run code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from .callbacks import Callback, Loop, report
from .errors import CheckpointError
from .fileio import atomic_write
from .history import History

CHECKPOINT_FORMAT = "convae-checkpoint"
CHECKPOINT_VERSION = 1
# What must agree for a checkpoint to be resumed (a key an older checkpoint lacks is not compared).
FINGERPRINT = ("latent_dim", "batch_size", "lr", "seed", "dataset", "train_size", "channels_last", "step")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    history: History, settings: dict | None, *, epoch: int, step: int = 0,
                    planned_epochs: int | None = None) -> Path:
    """Save model, optimiser, history and position (epoch, step within it) atomically and durably.

    ``planned_epochs`` is how many epochs the run was asked for: a checkpoint at the end of that epoch
    is a finished run (``runs`` reads it from here, not from which other files exist).
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "history": history.to_state(),
        "settings": settings,
        "epoch": int(epoch),
        "step": int(step),
        "planned_epochs": None if planned_epochs is None else int(planned_epochs),
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
    torch's whole explanation. A file written by a newer PyTorch than this one is said to be so (upgrade
    PyTorch), never called damaged: the file is good, and deleting it would lose a run.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as exc:  # could not be read at all (permissions, I/O): nothing is known about its content
        raise CheckpointError(f"checkpoint {path} could not be read ({exc.strerror or exc}); it was not "
                              "changed") from exc
    except Exception as exc:  # pickle errors, truncated zip, foreign objects refused by weights_only
        detail = _full_message(exc)
        if "Unsupported global" in detail:  # a readable file holding objects a safe load refuses
            raise CheckpointError(
                f"checkpoint {path} holds Python objects that a safe load (weights_only=True) refuses, so it "
                f"was not written by convae_utils (which saves plain values only); it is not loaded. Torch "
                f"says:\n{detail}") from exc
        newer = _written_by_newer_torch(detail)
        if newer is not None:
            raise CheckpointError(
                f"checkpoint {path} was made by a newer PyTorch than this one ({torch.__version__}){newer}: the "
                f"file is fine, this PyTorch cannot read it. Upgrade PyTorch (pip install --upgrade torch) to load "
                f"it; keep the file. Torch says: {detail}") from exc
        raise CheckpointError(f"checkpoint {path} is damaged or not a convae checkpoint "
                              f"({type(exc).__name__}: {detail}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a convae checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
                              "delete it or choose another path")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state.get('version')}, "
                              f"this package reads version {CHECKPOINT_VERSION}: it was made by another version of "
                              "convae_utils; load it with that version (or upgrade this one), and keep the file")
    return state


_NEWER_FORMAT = re.compile(r"version (\d+), but the maximum supported version for reading is (\d+)")


def _written_by_newer_torch(detail: str) -> str | None:
    """What torch said when a newer torch wrote the file (" (file format N; this torch reads up to M)"), else ``None``.

    Torch says "... version N, but the maximum supported version for reading is M ... please upgrade PyTorch".
    """
    found = _NEWER_FORMAT.search(detail)
    if found:
        return f" (file format {found.group(1)}; this PyTorch reads up to {found.group(2)})"
    return "" if "please upgrade pytorch" in detail.lower() else None


def load_weights(model: nn.Module, path: str | os.PathLike, state: dict | None = None) -> dict:
    """Load a checkpoint's weights into ``model`` (``state``: the checkpoint, if already loaded).

    A model of another shape is a :class:`CheckpointError` that names the layers that differ.
    """
    state = load_checkpoint(path) if state is None else state
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:  # explained here, when it fails: the caller compared what it could before
        want, have = getattr(model, "latent_dim", None), state.get("latent_dim")
        if want is not None and have not in (None, -1) and want != have:
            raise CheckpointError(f"checkpoint {path} holds a latent_dim={have} model, "
                                  f"but the model given has latent_dim={want}") from exc
        mismatches = [line.strip() for line in _full_message(exc).splitlines()[1:] if line.strip()]
        raise CheckpointError(
            f"checkpoint {path} does not fit this model (other layer sizes: was it trained with another "
            f"base_channels or activation?):\n  " + "\n  ".join(mismatches or [_full_message(exc)])
        ) from exc
    return state


def fingerprint(loop: Loop) -> dict:
    """What must agree for a checkpoint of this run to be resumed (from the run's own record)."""
    return {key: loop.history.meta.get(key) for key in FINGERPRINT}


class Checkpoint(Callback):
    """Resume from ``path`` when the run starts; save there after each epoch and on interruption.

    Put it last among the callbacks: it saves what the others added to each epoch (the pictures, a
    schedule's next learning rate). On resume it sets the position (epoch, step), the history and the
    optimiser's state (learning rate included) that the run continues from; the progress bar and the
    Stop button, which ``fit`` adds after it, start from there. A checkpoint made with other settings
    is refused (:class:`CheckpointError`) unless ``resume=False``, which starts over and overwrites it;
    ``compare=False`` when the caller has already compared the run (``runs.train_or_load`` compares its
    folder's ``config.json`` once, before anything is loaded).
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool = True, compare: bool = True):
        self.path, self.resume, self.compare = Path(path), resume, compare

    def on_fit_start(self, loop: Loop) -> None:
        loop.checkpoint = self.path
        if not (self.resume and self.path.exists()):
            return
        state = load_checkpoint(self.path)
        saved, now = state.get("settings") or {}, fingerprint(loop)
        mismatched = {k: (saved[k], v) for k, v in now.items() if k in saved and saved[k] != v} if self.compare else {}
        if mismatched:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in mismatched.items())
            raise CheckpointError(f"checkpoint {self.path} was trained with other settings ({detail}); use the "
                                  "same settings to resume, resume=False to start over, or another path")
        load_weights(loop.model, self.path, state)
        loop.optimizer.load_state_dict(state["optimizer"])
        device_meta = loop.history.meta.get("device")
        loop.history = History.from_state(state["history"])
        loop.history.meta.pop("interrupted", None)
        if device_meta is not None:
            loop.history.meta["device"] = device_meta
        loop.epoch, loop.first_step = int(state["epoch"]), int(state["step"])
        loop.completed = loop.first_step
        if loop.epoch or loop.first_step:  # said even without progress bars: the run did not start from scratch
            if loop.first_step >= loop.n_batches:
                where = f"the end of epoch {loop.epoch + 1} (its validation and pictures are still to do)"
            elif loop.first_step:
                where = f"epoch {loop.epoch + 1}, batch {loop.first_step + 1} of {loop.n_batches}"
            else:
                where = f"the start of epoch {loop.epoch + 1}"
            if loop.epoch < loop.num_epochs:
                report(f"Resuming from {self.path} at {where}.")

    def _save(self, loop: Loop, epoch: int, step: int) -> None:
        save_checkpoint(self.path, loop.model, loop.optimizer, loop.history, fingerprint(loop),
                        epoch=epoch, step=step, planned_epochs=loop.num_epochs)

    def on_epoch_end(self, loop: Loop) -> None:
        self._save(loop, loop.epoch + 1, 0)

    def on_interrupt(self, loop: Loop) -> None:
        self._save(loop, loop.epoch, loop.completed)
        print(f"\nInterrupted at epoch {loop.epoch + 1}, batch {loop.completed} of {loop.n_batches}. Saved to "
              f"{self.path}; run the same call again to resume where it stopped.")
