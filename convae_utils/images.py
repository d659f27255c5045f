"""The image container of the series and the one conversion between pixels and model inputs.

Introduced in notebook 01 (data). Images are held once as uint8 tensors of shape (N, 3, 32, 32) --
a quarter of the memory of float copies -- and normalised per batch, on the device, by
:func:`normalize`. No per-item PIL transform runs during training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .checks import IMAGE_SHAPE, check_int, describe_shape


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images and labels of one split.

    Attributes:
        images: uint8 tensor (N, 3, 32, 32), pixels 0..255, channels first.
        labels: int64 tensor (N,), values in ``range(len(classes))``.
        classes: class names, index = label.
        name: dataset name (``"cifar10"`` or the stand-in's name), carried into every result.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str
    split: str = "train"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        x, y = self.images, self.labels
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"ImageSet.images must be a uint8 tensor (pixels 0..255), got {got}")
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"ImageSet.images must have shape (N, 3, 32, 32), got {describe_shape(x)}")
        if len(x) == 0:
            raise ValueError(f"ImageSet {self.name!r} ({self.split}) is empty: it needs at least one image")
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x):
            got = describe_shape(y) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"ImageSet.labels must be a 1-D tensor of {len(x):,} labels, got {got}")
        if y.dtype != torch.int64:
            object.__setattr__(self, "labels", y.long())
        if int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes):
            raise ValueError(f"ImageSet.labels must lie in 0..{len(self.classes) - 1} "
                             f"(one per class name), got {int(self.labels.min())}..{int(self.labels.max())}")
        # Plain Python strings only: these values end up in checkpoints, which are loaded with
        # weights_only=True and refuse NumPy scalars such as numpy.str_.
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "split", str(self.split))

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices, split: str | None = None) -> "ImageSet":
        """A new ImageSet holding the images at ``indices`` (a tensor, array or list of ints)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.name,
                        split or self.split, dict(self.meta))

    def head(self, n: int | None) -> "ImageSet":
        """The first ``n`` images (all of them when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        check_int("n", n)
        return self.subset(torch.arange(n))

    def to(self, device) -> "ImageSet":
        """The same set with its tensors on ``device`` (still uint8)."""
        return ImageSet(self.images.to(device), self.labels.to(device), self.classes, self.name,
                        self.split, dict(self.meta))

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=len(self.classes)).tolist()


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1]: ToTensor's /255 then Normalize(0.5, 0.5) in one step."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"normalize expects uint8 pixels (0..255), got {got}")
    return images.float().div_(127.5).sub_(1.0)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (a reconstruction can overshoot the range)."""
    return x.add(1.0).mul_(0.5).clamp_(0.0, 1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Floats in [-1, 1] -> uint8 pixels, rounded; the inverse of :func:`normalize` up to rounding.

    Values outside [-1, 1] are clamped (a reconstruction can overshoot) and NaN becomes 0, so pixels on
    another scale are not detected here: a batch of 0..255 floats comes out white. Check a learner's
    images with ``checks.check_image_batch(x, check_values=True)`` where they enter.
    """
    return denormalize(x).mul_(255.0).round_().to(torch.uint8)
