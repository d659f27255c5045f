"""Running a model on many images: where its weights live, eval mode for a while, batch by batch.

Every helper that runs a trained model (codes, reconstructions, scores) goes through these three, so
that a model left on a GPU or an Apple-silicon device by :func:`convae_utils.runs.train_or_load` gets
its inputs on its own device, and its train/eval mode comes back as it was. Introduced in notebook 05,
where codes are first taken from a trained model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer; the CPU for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the ``with`` block, then restore the mode it had."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def batched(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, *, device: torch.device,
            batch_size: int = 500) -> torch.Tensor:
    """``fn`` applied to ``inputs`` in batches along dim 0, each moved to ``device`` first.

    Returns float32 on the CPU, concatenated: (N, ...) whatever ``fn`` returns per batch. Gradient
    mode is the caller's (wrap the call in ``torch.no_grad()`` or ``torch.inference_mode()``).
    A model on the ``meta`` device (tests stand it in for a GPU) returns meta tensors: they hold no
    values to copy to the CPU.
    """
    parts = [fn(part.to(device)) for part in inputs.split(batch_size)]
    if device.type == "meta":
        return torch.cat(parts)
    return torch.cat([part.float().cpu() for part in parts])
