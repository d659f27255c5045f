"""What a training run logs: losses per batch and per epoch, timings, and the exemplars' pictures.

Introduced in notebook 03 (training). :class:`History` is plain data (tensors, lists, strings), so
it can be saved in a checkpoint that loads with ``weights_only=True`` and read by the plotting and
widget modules without importing the training code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class History:
    """Everything a training run logs. Losses are the step's loss: MSE on the [-1, 1] scale for the article's.

    Attributes:
        train_batch_loss: loss of every training batch, in order (``batches_per_epoch`` per epoch).
        train_epoch_loss: mean training loss of each epoch (the article printed the last batch's).
        val_epoch_loss: mean validation loss after each epoch.
        train_batch_logs, train_logs, val_logs: what the step logs beside its loss (e.g. a VAE's KL
            in bits), per batch, as epoch means, and on the validation split after each epoch.
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
    train_batch_logs: dict[str, list[float]] = field(default_factory=dict)
    train_logs: dict[str, list[float]] = field(default_factory=dict)
    val_logs: dict[str, list[float]] = field(default_factory=dict)

    @property
    def epochs_done(self) -> int:
        return len(self.train_epoch_loss)

    @property
    def interrupted(self) -> bool:
        return bool(self.meta.get("interrupted", False))

    def record_batches(self, records: dict[str, torch.Tensor], first: int, stop: int) -> None:
        """Append batches ``first`` to ``stop - 1`` of the current epoch from ``records`` (name -> per-batch values)."""
        for name, values in records.items():
            done = values[first:stop].tolist()
            (self.train_batch_loss if name == "loss" else self.train_batch_logs.setdefault(name, [])).extend(done)

    def end_epoch(self, val: dict[str, float], *, seconds: float) -> None:
        """Close an epoch whose batches are all recorded: epoch means of its batches, and ``val``'s values."""
        n, start = self.batches_per_epoch, self.epochs_done * self.batches_per_epoch
        self.train_epoch_loss.append(math.fsum(self.train_batch_loss[start:start + n]) / n)
        for name, values in self.train_batch_logs.items():
            self.train_logs.setdefault(name, []).append(math.fsum(values[start:start + n]) / n)
        self.val_epoch_loss.append(val["loss"])
        for name, value in val.items():
            if name != "loss":
                self.val_logs.setdefault(name, []).append(value)
        self.epoch_seconds.append(seconds)

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

    @property
    def last_reconstructions(self) -> torch.Tensor | None:
        """The exemplars' reconstructions after the last epoch, uint8 (K, 3, 32, 32), or None."""
        return self.reconstructions[-1] if self.reconstructions else None

    @classmethod
    def from_state(cls, state: dict) -> "History":
        state = dict(state)
        state["classes"] = tuple(state.get("classes", ()))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in state.items() if k in known})
