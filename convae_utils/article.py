"""The article's own data pipeline and training loop, written once, as the article wrote them.

Introduced in notebook 01 (data), which times the per-item route against ``images.normalize``; the
benchmark (``python -m tools bench``) trains with it side by side with the package's ``fit``.
Nothing here is used for the series' own training: it is the reference the package is measured
against and checked with.

The article's route: a Dataset over HWC uint8 NumPy images that, like torchvision's
``CIFAR10.__getitem__``, makes a PIL image per item and applies ``ToTensor`` + ``Normalize``; a
``DataLoader`` without shuffling or workers; the model in its default memory layout; ``.to(device)``
per batch; Adam 1e-3, MSE and ``loss.item()`` after every step.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim import Adam
from torch.utils.data import DataLoader, Dataset

from .images import ImageSet


def article_transform():
    """The article's per-item transform: ``ToTensor`` (to [0, 1]) then ``Normalize`` to [-1, 1]."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])


class ArticleImages(Dataset):
    """CIFAR-10 as torchvision serves it: HWC uint8 NumPy images, a PIL image and a transform per item."""

    def __init__(self, images_hwc: np.ndarray, transform=None):
        self.data = images_hwc
        self.transform = transform if transform is not None else article_transform()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.data[index])  # what torchvision's CIFAR10.__getitem__ does
        return self.transform(img), 0


def article_loader(images: ImageSet, batch_size: int, order: Sequence[int] | None = None) -> DataLoader:
    """The article's DataLoader (no shuffle, no workers); ``order`` replays another loop's batches."""
    hwc = images.images.permute(0, 2, 3, 1).contiguous().numpy()  # CIFAR10.data is (N, 32, 32, 3)
    return DataLoader(ArticleImages(hwc), batch_size=batch_size, shuffle=False, num_workers=0,
                      sampler=list(order) if order is not None else None)


def as_article_model(model: nn.Module) -> nn.Module:
    """The article's layers as it wrote them: activations not in place (``nn.ReLU()``), default layout.

    The package may build its activations in place (less memory traffic); the article's loop is
    measured without that, whatever the package does.
    """
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return model.to(memory_format=torch.contiguous_format)


def article_train(model: nn.Module, loader: DataLoader, device: torch.device, *,
                  on_step: Callable[[int], None] | None = None) -> list[float]:
    """One epoch of the article's training loop; returns the per-step losses it logs."""
    criterion = nn.MSELoss()
    optimizer = Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for step, (img, _) in enumerate(loader):
        img = img.to(device)
        optimizer.zero_grad()
        outputs = model(img)
        loss = criterion(outputs, img)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # the article logs every batch's loss
        if on_step is not None:
            on_step(step)
    return losses


def article_evaluate(model: nn.Module, loader: DataLoader, device: torch.device, *,
                     on_step: Callable[[int], None] | None = None) -> list[float]:
    """The article's validation pass: ``model.eval()``, ``no_grad``, a loss read per batch."""
    criterion = nn.MSELoss()
    model.eval()
    losses = []
    with torch.no_grad():
        for step, (img, _) in enumerate(loader):
            img = img.to(device)
            losses.append(criterion(model(img), img).item())
            if on_step is not None:
                on_step(step)
    model.train()
    return losses
