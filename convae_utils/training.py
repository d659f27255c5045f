"""Training: one ``fit`` with the article's defaults, checkpoints every epoch, resume, interruption.

Defined in notebook 03 (training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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
