"""Notebook 03's exercise (training): the training step, ``step(model, batch) -> (loss, logs)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from .core import CodeExercise, Wrong

NUMBERS = []


def mse_step(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one batch: the MSE between the model's reconstruction and the batch itself.

    batch: float (B, 3, 32, 32) in [-1, 1]. Returns the loss to minimise (a 0-d tensor with a
    gradient) and what to log. The training loop does zero_grad, backward and the optimiser step.
    """
    reconstruction = model(batch)                      # (B, 3, 32, 32)
    loss = F.mse_loss(reconstruction, batch)           # the mean over every value of the batch
    return loss, {}                                    # the loss is all there is to log here


def _wrong_losses(reconstruction: torch.Tensor, batch: torch.Tensor, mse: float) -> list[tuple[float, str]]:
    """Losses a learner plausibly writes instead of the MSE, each with what to say about it."""
    error = reconstruction - batch
    values = batch[0].numel()
    return [
        (float(error.pow(2).sum()), "your loss {got:.4g} is the sum of the squared errors; the step averages them "
                                    f"({mse:.4g}): reduction='mean', F.mse_loss's default"),
        (float(error.pow(2).flatten(1).sum(1).mean()),
         f"your loss {{got:.4g}} is {values:,} times the MSE ({mse:.4g}): you summed the squared errors of each "
         "image and averaged over the batch; average over every value"),
        (mse / 4, f"your loss {{got:.4g}} is the MSE on the [0, 1] scale; training compares the batch and its "
                  f"reconstruction as they are, on [-1, 1] ({mse:.4g})"),
        (mse / 2, f"your loss {{got:.4g}} is half the MSE ({mse:.4g}), the 1/2 of some textbooks: the series' loss "
                  "is the plain mean of the squared errors"),
        (math.sqrt(mse), f"your loss {{got:.4g}} is the root of the MSE ({mse:.4g}): drop the square root"),
        (float(error.abs().mean()), f"your loss {{got:.4g}} is the mean absolute error (L1, F.l1_loss); the step asks "
                                    f"for the mean squared error, F.mse_loss ({mse:.4g})"),
        (float(F.smooth_l1_loss(reconstruction, batch)),
         f"your loss {{got:.4g}} is the smooth L1 (Huber) loss; the step asks for the mean squared error, "
         f"F.mse_loss ({mse:.4g})"),
        (-mse, f"your loss {{got:.4g}} is minus the MSE: minimising it would make the reconstructions worse; "
               "return F.mse_loss(...) itself"),
        (float(reconstruction.pow(2).mean()),
         f"your loss {{got:.4g}} compares the reconstruction with zeros; the target of an autoencoder is its own "
         f"input: F.mse_loss(model(batch), batch) ({mse:.4g})"),
        (float(batch.pow(2).mean()),
         f"your loss {{got:.4g}} does not involve the model's output: compare model(batch) with batch ({mse:.4g})"),
    ]


def check_step(candidate) -> None:
    """Run ``candidate(model, batch)`` on a small model and batch; :class:`Wrong` at the first problem."""
    model = models.build_autoencoder(8, base_channels=2, seed=0)
    batch = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = candidate(model, batch)
    if any(p.grad is not None for p in model.parameters()):
        raise Wrong("your step called backward(): the step only computes the loss; the training loop calls "
                    "zero_grad(), backward() and optimizer.step()")
    if not isinstance(result, tuple) or len(result) != 2:
        raise Wrong(f"return a pair (loss, logs), e.g. `return loss, {{'mse': loss.detach()}}`, got "
                    f"{type(result).__name__}")
    loss, logs = result
    if not isinstance(loss, torch.Tensor):
        raise Wrong(f"the loss should be a tensor, got {type(loss).__name__}: did you call .item()? The loop needs "
                    "the tensor to call backward() on")
    if loss.ndim != 0:
        raise Wrong(f"the loss should be one number (a 0-d tensor), got shape {tuple(loss.shape)}: average over "
                    "every value of the batch (F.mse_loss does, with its default reduction='mean')")
    if not loss.requires_grad:
        raise Wrong("the loss has no gradient: was it computed under torch.no_grad(), or detached? "
                    "backward() could not train anything")
    with torch.no_grad():
        reconstruction = model(batch)
        expected = float((reconstruction.double() - batch.double()).pow(2).mean())
        value = float(loss.detach())
        if not math.isclose(value, expected, rel_tol=1e-4):
            for wrong, message in _wrong_losses(reconstruction.double(), batch.double(), expected):
                if math.isclose(value, wrong, rel_tol=1e-4):
                    raise Wrong(message.format(got=value))
            raise Wrong(f"your loss is {value:.4g}; the mean squared error between model(batch) and batch is "
                        f"{expected:.4g}")
    if not isinstance(logs, dict) or not all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in logs.values()):
        raise Wrong(f"logs should be a dict of names to 0-d tensors (an empty dict {{}} is fine here), got {logs!r}")


CODE = [CodeExercise(
    "03.6", "Write the training step step(model, batch) -> (loss, logs): the MSE between model(batch) and the "
            "batch, and a dict of what else to log (nothing here: {}).", mse_step, check_step,
    imports="import torch\nimport torch.nn.functional as F\nfrom torch import nn")]
