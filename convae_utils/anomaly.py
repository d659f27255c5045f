"""Anomaly detection with reconstruction error, done properly: ROC curves, AUROC, a validation threshold.

Introduced in notebook 07 (what the codes are for); notebook 05 showed the idea with one threshold.
An autoencoder trained on *normal* images rebuilds them well and unfamiliar ones worse, so each
image's reconstruction error (MSE on the [0, 1] pixel scale) is its **anomaly score**. Here:

- :func:`anomaly_sets` builds out-of-distribution inputs of the normal images' shape: another
  dataset, uniform noise, upside-down and colour-inverted images, and a class held out of training
  (:func:`hold_out_class`);
- :func:`roc` gives the ROC curve and the area under it (AUROC, via torchmetrics): 1.0 separates every
  anomaly from every normal image, 0.5 is a coin toss, below 0.5 the anomalies look *more* normal;
- :func:`false_alarm_threshold` picks the threshold on **validation** scores only, and
  :func:`detection_report` gives its precision and recall on test scores;
- :func:`contaminate` mixes a share of anomalies into a training set, to measure how a detector
  trained on dirty data degrades.

All images are uint8 (N, 3, 32, 32) tensors or :class:`~convae_utils.images.ImageSet`\\ s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchmetrics.functional.classification import binary_auroc, binary_roc

from .checks import IMAGE_SHAPE, check_float, check_int, describe_shape
from .images import ImageSet, normalize
from .inference import batched, evaluating, model_device
from .metrics import per_image_mse

ANOMALY_CLASS = "(anomaly)"  # the class name given to images mixed in by contaminate()


def as_pixels(images, name: str = "images", *, like: ImageSet | torch.Tensor | None = None) -> torch.Tensor:
    """An ImageSet or uint8 tensor -> its uint8 (N, 3, 32, 32) pixels on the CPU, checked.

    ``like``: the normal images; anomalies of another image shape are refused with the shapes of both.
    """
    pixels = images.images if isinstance(images, ImageSet) else images
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"{name} must be an ImageSet or a uint8 tensor (N, 3, 32, 32), got {type(images).__name__}")
    want = IMAGE_SHAPE
    if like is not None:
        want = tuple((like.images if isinstance(like, ImageSet) else like).shape[1:])
    if pixels.ndim != 4 or tuple(pixels.shape[1:]) != want or len(pixels) == 0:
        raise ValueError(f"{name} must have the shape of the normal images, (N, {', '.join(map(str, want))}) "
                         f"with N >= 1, got {describe_shape(pixels)}; resize or crop them to "
                         f"{want[1]}x{want[2]} pixels with {want[0]} channels first")
    if pixels.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 pixels 0..255, got dtype {pixels.dtype}; "
                         "convert [-1, 1] floats with convae_utils.images.to_uint8")
    return pixels.detach().cpu()


@torch.inference_mode()
def reconstruction_errors(model: nn.Module, images, *, batch_size: int = 500) -> torch.Tensor:
    """Anomaly scores: each image's reconstruction MSE on the [0, 1] pixel scale, float32 (N,) on the CPU.

    Runs on the model's device in eval mode (its mode is restored). Higher = less normal.
    """
    pixels = as_pixels(images)
    check_int("batch_size", batch_size)

    def errors(part: torch.Tensor) -> torch.Tensor:
        x = normalize(part)
        return per_image_mse(model(x).float(), x)

    with evaluating(model):
        return batched(errors, pixels, device=model_device(model), batch_size=batch_size)


def hold_out_class(dataset: ImageSet, label: int) -> tuple[ImageSet, ImageSet]:
    """Split ``dataset`` into (every other class, the class ``label``): train on the first, test with the second."""
    label = check_int("label", label, minimum=0, maximum=len(dataset.classes) - 1)
    mask = dataset.labels.cpu() == label
    if not bool(mask.any()) or bool(mask.all()):
        raise ValueError(f"holding out class {label} ({dataset.classes[label]}) of {dataset.name} leaves an empty "
                         "side; the set needs images of that class and of others")
    return (dataset.subset(torch.nonzero(~mask).flatten()),
            dataset.subset(torch.nonzero(mask).flatten(), split=f"{dataset.split}-held-out"))


def anomaly_sets(normal, *, other=None, held_out=None, size: int | None = None,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """Out-of-distribution inputs made from the normal images (uint8 tensors, each (n, 3, 32, 32)).

    Keys: ``"other dataset"`` (``other``'s first ``n`` images, if given), ``"uniform noise"``,
    ``"upside down"`` (flipped vertically), ``"colour-inverted"`` (255 - pixel) and ``"held-out class"``
    (``held_out``'s images, if given). ``n = size`` or the number of normal images. ``other`` and
    ``held_out`` must have the normal images' shape.
    """
    pixels = as_pixels(normal, "normal")
    n = len(pixels) if size is None else check_int("size", size, maximum=len(pixels))
    base = pixels[:n]
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    sets = {}
    if other is not None:
        sets["other dataset"] = as_pixels(other, "other", like=pixels)[:n]
    sets["uniform noise"] = torch.randint(0, 256, base.shape, dtype=torch.uint8, generator=generator)
    sets["upside down"] = base.flip(dims=(2,)).contiguous()
    sets["colour-inverted"] = 255 - base
    if held_out is not None:
        sets["held-out class"] = as_pixels(held_out, "held_out", like=pixels)[:n]
    return sets


@dataclass(frozen=True)
class Roc:
    """A ROC curve: false-positive and true-positive rates (float32, same length), thresholds, and AUROC."""

    fpr: torch.Tensor
    tpr: torch.Tensor
    thresholds: torch.Tensor
    auroc: float


def _scores(values, name: str) -> torch.Tensor:
    scores = torch.as_tensor(np.asarray(values, dtype=np.float32)).flatten()
    if len(scores) == 0:
        raise ValueError(f"{name} is empty: give at least one score")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{name} holds NaN or infinite scores")
    return scores


def roc(normal_scores, anomaly_scores) -> Roc:
    """ROC curve and AUROC of scores where higher means "anomaly" (torchmetrics ``binary_roc``/``binary_auroc``).

    ``normal_scores``, ``anomaly_scores``: 1-D arrays or tensors of finite scores (e.g.
    :func:`reconstruction_errors` of normal test images and of anomalies).
    """
    normal, anomalous = _scores(normal_scores, "normal_scores"), _scores(anomaly_scores, "anomaly_scores")
    scores = torch.cat([normal, anomalous])
    target = torch.cat([torch.zeros(len(normal), dtype=torch.long), torch.ones(len(anomalous), dtype=torch.long)])
    # thresholds=None: exact, one point per distinct score. Scores are errors, not probabilities:
    # torchmetrics would squash values outside [0, 1] with a sigmoid (monotone, so the curve is unchanged).
    fpr, tpr, thresholds = binary_roc(scores, target, thresholds=None)
    return Roc(fpr, tpr, thresholds, float(binary_auroc(scores, target, thresholds=None)))


def false_alarm_threshold(val_scores, rate: float) -> float:
    """The score above which a share ``rate`` of the *validation* (normal) images lie: the alarm threshold.

    ``rate`` in (0, 1), e.g. 0.05 accepts false alarms on 5% of normal images. Choose it on validation
    data only: the test images must stay an unbiased check of the detector.
    """
    rate = check_float("rate (share of false alarms on normal validation images)", rate, low=0.0, high=1.0)
    return float(np.quantile(_scores(val_scores, "val_scores").numpy(), 1.0 - rate))


def detection_report(normal_scores, anomaly_scores, threshold: float) -> dict:
    """Precision, recall and false-alarm rate of "score > threshold" on a test mix of normal images and anomalies.

    Precision depends on the mix: here every normal and every anomalous score given counts once.
    Returns a dict with ``precision``, ``recall`` (share of anomalies flagged), ``false_alarm_rate``
    (share of normal images flagged), ``flagged``, ``normal`` and ``anomalies`` (counts).
    """
    normal, anomalous = _scores(normal_scores, "normal_scores"), _scores(anomaly_scores, "anomaly_scores")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    true_alarms, false_alarms = int((anomalous > threshold).sum()), int((normal > threshold).sum())
    flagged = true_alarms + false_alarms
    return {"precision": true_alarms / flagged if flagged else float("nan"),
            "recall": true_alarms / len(anomalous), "false_alarm_rate": false_alarms / len(normal),
            "flagged": flagged, "normal": len(normal), "anomalies": len(anomalous)}


def contaminate(train: ImageSet, anomalies, share: float, *, seed: int = 0) -> ImageSet:
    """A copy of ``train`` in which a share ``share`` of the images are anomalies (same size, same order otherwise).

    ``round(share * len(train))`` randomly chosen training images are replaced by randomly drawn
    images of ``anomalies`` (uint8 or ImageSet, the training images' shape); they get the extra class
    ``"(anomaly)"``, and ``meta["contamination"]`` records the share and their indices. Keeping the size
    keeps the training budget equal to the clean run's. ``share`` must lie in [0, 1).
    """
    if not isinstance(train, ImageSet):
        raise TypeError(f"train must be a convae_utils.images.ImageSet, got {type(train).__name__}")
    share = check_float("share (of anomalies in the training set)", share, low=0.0, high=1.0, low_inclusive=True)
    pool = as_pixels(anomalies, "anomalies", like=train)
    count = round(share * len(train))
    if count > len(pool):
        raise ValueError(f"a share of {share:.1%} of {len(train):,} training images needs {count:,} anomalies, "
                         f"but only {len(pool):,} were given")
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    where = torch.randperm(len(train), generator=generator)[:count].sort().values
    which = torch.randperm(len(pool), generator=generator)[:count]
    images, labels = train.images.clone(), train.labels.clone()
    images[where] = pool[which].to(images.device)
    labels[where] = len(train.classes)
    meta = {**train.meta, "contamination": {"share": share, "indices": where.tolist()}}
    return ImageSet(images, labels, (*train.classes, ANOMALY_CLASS), train.name, train.split, meta)


def auroc_table(detectors: dict[str, nn.Module], normal_test, anomalies: dict[str, torch.Tensor]) -> pd.DataFrame:
    """AUROC of each detector (columns) against each kind of anomaly (rows) on the same normal test images."""
    if not detectors:
        raise ValueError("detectors is empty: give {name: model}")
    columns = {}
    for name, model in detectors.items():
        normal = reconstruction_errors(model, normal_test)
        columns[name] = {kind: roc(normal, reconstruction_errors(model, as_pixels(pixels, kind, like=normal_test))).auroc
                         for kind, pixels in anomalies.items()}
    table = pd.DataFrame(columns)
    table.index.name = "anomaly"
    return table
