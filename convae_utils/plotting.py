"""Figures of the series: one helper per kind of picture, each returning its matplotlib Figure.

Used by every notebook (01-07). No helper calls ``plt.show``: the Figure comes back so that tests can
inspect it and notebooks can save it. The figures are pyplot figures, so a notebook shows them at
the end of the cell; end the call with ``;`` or assign the result (``fig = ...``) to get one copy
instead of two. Image grids are drawn by ``torchvision.utils.make_grid(..., normalize=True,
value_range=(-1, 1))``: the fixed range clamps overshooting reconstructions instead of stretching
each grid to its own min and max, so colours are comparable across epochs and models.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.transforms import Bbox
from torch import nn
from torchvision.utils import make_grid

from .baselines import TABLE_COLUMNS
from .codecs.bits import IMAGE_BITS, IMAGE_PIXELS
from .checks import check_choice, check_image_batch, check_int, describe_shape
from .errors import warn
from .fileio import atomic_write
from .images import ImageSet, normalize
from .metrics import long_table
from .history import History
from .spatial import upsample_layers
from .training import step_name

PAD = 2  # make_grid's padding between images, in pixels
TILE = 32 + PAD  # pixels from one image's left edge to the next one's
CELL_INCHES = 0.55  # displayed size of one 32x32 image
PAD_VALUE = 1.0  # white separators between images, on a white figure background

METRIC_LABELS = {
    "mse": "MSE on [0, 1] pixels (lower is better)",
    "psnr": "PSNR in dB (higher is better)",
    "ssim": "SSIM (higher is better)",
}


# -- shared pieces ------------------------------------------------------------------------------

OVERSHOOT = 4.0  # a model's raw output may overshoot [-1, 1] a little (it is clipped for display), never by this much


class ValueRangeWarning(UserWarning):
    """Float images whose values look like [0, 1] pixels (ToTensor without Normalize), not [-1, 1]."""


def model_scale(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """uint8 pixels, or floats in [-1, 1], shape (N, 3, 32, 32) -> float [-1, 1] on the CPU.

    Floats are checked as the metrics check them: NaN/inf is an error; values far outside [-1, 1]
    (e.g. 0..255 pixels as floats) are an error; a batch entirely in [0, 1] gets a
    :class:`ValueRangeWarning` (it would be drawn washed out). ``name`` ending in ``reconstructions``
    may overshoot [-1, 1] a little, as raw model outputs do.
    """
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        return check_image_batch(normalize(images.detach().cpu()), name)
    x = check_image_batch(images, name).detach().cpu().float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contain {int((~torch.isfinite(x)).sum()):,} NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    limit = OVERSHOOT if name.endswith("reconstructions") else 1.0 + 1e-4
    if lo < -limit or hi > limit:
        raise ValueError(f"expected {name} as uint8 pixels (0..255) or floats normalised to [-1, 1], got float "
                         f"values in [{lo:.3g}, {hi:.3g}]; pass the uint8 images themselves, or "
                         "convae_utils.images.normalize(uint8 images)")
    if lo >= 0.0 and hi <= 1.0 and len(x) >= 4:
        warn(f"{name} are floats in [{lo:.3g}, {hi:.3g}]: that looks like [0, 1] pixels (ToTensor "
                      "without Normalize), which would be drawn washed out; plots expect uint8 pixels or floats "
                      "in [-1, 1] (convae_utils.images.normalize)", ValueRangeWarning)
    return x


def image_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    """make_grid of [-1, 1] images with the series' settings, as an (H, W, 3) array in [0, 1]."""
    grid = make_grid(images, nrow=nrow, padding=PAD, normalize=True, value_range=(-1, 1),
                     pad_value=PAD_VALUE)
    if len(images) == 1:  # make_grid returns a lone image unpadded; pad it like the others
        grid = torch.nn.functional.pad(grid, (PAD, PAD, PAD, PAD), value=PAD_VALUE)
    return grid.permute(1, 2, 0).numpy()


def pair_image(originals: torch.Tensor, reconstructions: torch.Tensor) -> np.ndarray:
    """Originals over reconstructions ([-1, 1], K each) as one (H, W, 3) grid array: K columns, 2 rows."""
    return image_grid(torch.cat([originals, reconstructions]), nrow=len(originals))


def _hide_axes(ax) -> None:
    """No ticks or frame on an image, but keep room for tick labels and axis labels."""
    ax.tick_params(length=0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _centres(count: int) -> list[float]:
    """Pixel centres of ``count`` consecutive grid cells (columns or rows)."""
    return [PAD + i * TILE + 15.5 for i in range(count)]


def draw_pair_grid(ax, originals: torch.Tensor, reconstructions: torch.Tensor,
                   classes=None):
    """Draw originals over reconstructions on ``ax``; returns the AxesImage. Inputs in [-1, 1]."""
    k = len(originals)
    image = ax.imshow(pair_image(originals, reconstructions), interpolation="nearest")
    _hide_axes(ax)
    ax.set_yticks(_centres(2), ["original", "reconstruction"])
    if classes is not None:
        ax.set_xticks(_centres(k), list(classes), rotation=45, ha="right", rotation_mode="anchor")
    return image


def labelled_grid(images: torch.Tensor, nrow: int, *, column_labels=None, row_labels=None,
                  title: str | None = None, xlabel: str | None = None) -> Figure:
    """Images in a grid of ``nrow`` columns, with optional labels under columns and beside rows.

    ``images`` are uint8 pixels or floats in [-1, 1], shape (N, 3, 32, 32), filled row by row.
    """
    images = model_scale(images)
    nrow = check_int("nrow", nrow)
    rows = -(-len(images) // nrow)
    for name, labels, count in (("column_labels", column_labels, min(nrow, len(images))),
                                ("row_labels", row_labels, rows)):
        if labels is not None and len(labels) != count:
            raise ValueError(f"expected {count} {name}, got {len(labels)}")
    fig, ax = plt.subplots(figsize=(CELL_INCHES * 1.3 * min(nrow, len(images)) + (1.6 if row_labels else 0.4),
                                    CELL_INCHES * 1.3 * rows + 1.2), layout="constrained")
    ax.imshow(image_grid(images, nrow=nrow), interpolation="nearest")
    _hide_axes(ax)
    if column_labels is not None:
        ax.set_xticks(_centres(len(column_labels)), [str(c) for c in column_labels],
                      rotation=45, ha="right", rotation_mode="anchor")
    if row_labels is not None:
        ax.set_yticks(_centres(rows), [str(r) for r in row_labels])
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    return fig


def _pair(originals, reconstructions, classes) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
    originals = model_scale(originals, "originals")
    reconstructions = model_scale(reconstructions, "reconstructions")
    if len(originals) != len(reconstructions):
        raise ValueError(f"expected one reconstruction per original, got {len(originals)} originals "
                         f"and {len(reconstructions)} reconstructions")
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        if len(classes) != len(originals):
            raise ValueError(f"expected one class name per image ({len(originals)}), got {len(classes)}")
    return originals, reconstructions, classes


def as_histories(histories: History | dict[str, History]) -> dict[str, History]:
    """Check one History or a dict of them for picture-making; a single one is named ``"model"``.

    Each needs exemplars and at least one epoch of reconstructions of the same count; in a dict
    all must have the same number of epochs, since they are shown side by side per epoch.
    """
    if isinstance(histories, History):
        histories = {"model": histories}
    if not isinstance(histories, dict) or not histories:
        got = "an empty dict" if isinstance(histories, dict) else type(histories).__name__
        raise ValueError(f"expected a History or a non-empty dict {{name: History}}, got {got}")
    for name, history in histories.items():
        if not isinstance(history, History):
            raise TypeError(f"histories[{name!r}] must be a convae_utils.training.History, "
                            f"got {type(history).__name__}")
        if history.exemplars is None or not history.reconstructions:
            raise ValueError(f"history {name!r} has no exemplars or no reconstructions: train with "
                             "exemplars so that every epoch logs their reconstructions")
        count = len(history.exemplars)
        for epoch, recon in enumerate(history.reconstructions, start=1):
            if not isinstance(recon, torch.Tensor) or tuple(recon.shape) != (count, 3, 32, 32):
                got = describe_shape(recon) if isinstance(recon, torch.Tensor) else type(recon).__name__
                raise ValueError(f"history {name!r}: epoch {epoch}'s reconstructions must have shape "
                                 f"({count}, 3, 32, 32) like its exemplars, got {got}")
    epochs = {name: len(h.reconstructions) for name, h in histories.items()}
    if len(set(epochs.values())) > 1:
        counts = ", ".join(f"{name}: {n}" for name, n in epochs.items())
        raise ValueError(f"histories must have the same number of epochs to be shown side by side, "
                         f"got {counts}")
    return dict(histories)


def epoch_title(name: str | None, history: History, epoch: int) -> str:
    """``"name: epoch 3, val loss 0.0123"``; the loss only when that epoch logged one."""
    text = f"epoch {epoch}"
    if len(history.val_epoch_loss) >= epoch:
        text += f", val loss {history.val_epoch_loss[epoch - 1]:.4f}"
    return f"{name}: {text}" if name else text


# -- the pictures -------------------------------------------------------------------------------

def class_grid(dataset: ImageSet, per_class: int = 8) -> Figure:
    """The first ``per_class`` images of every class, one labelled row per class."""
    if not isinstance(dataset, ImageSet):
        raise TypeError(f"dataset must be a convae_utils.data.ImageSet, got {type(dataset).__name__}")
    check_int("per_class", per_class, maximum=64)
    labels = dataset.labels.cpu()
    n_classes = len(dataset.classes)
    fig, axes = plt.subplots(n_classes, 1, squeeze=False, layout="constrained",
                             figsize=(CELL_INCHES * per_class + 1.4, CELL_INCHES * n_classes + 0.5))
    for label, (ax, name) in enumerate(zip(axes[:, 0], dataset.classes)):
        index = torch.nonzero(labels == label).flatten()[:per_class]
        _hide_axes(ax)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        if len(index):
            images = normalize(dataset.images[index].cpu())
            ax.imshow(image_grid(images, nrow=per_class), interpolation="nearest")
        # a class short of images keeps the common scale: its row is just shorter
        ax.set_xlim(-0.5, PAD + per_class * TILE - 0.5)
        ax.set_ylim(TILE + PAD - 0.5, -0.5)
    fig.suptitle(f"{dataset.name} ({dataset.split}): first {per_class} images per class")
    return fig


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, *, classes=None,
                        title: str | None = None) -> Figure:
    """Originals (top row) over their reconstructions; uint8 or [-1, 1] float, (K, 3, 32, 32) each."""
    originals, reconstructions, classes = _pair(originals, reconstructions, classes)
    k = len(originals)
    fig, ax = plt.subplots(layout="constrained",
                           figsize=(CELL_INCHES * k + 1.4, 2 * CELL_INCHES + 0.4 + 0.3 * (title is not None)
                                    + 0.6 * (classes is not None)))
    draw_pair_grid(ax, originals, reconstructions, classes)
    if title is not None:
        ax.set_title(title)
    return fig


def reconstruction_strip(histories: History | dict[str, History]) -> Figure:
    """Every epoch's reconstructions at once: originals first, then one row per epoch, models side by side.

    The static stand-in for :func:`convae_utils.widgets.epoch_scrubber` in a notebook without a kernel.
    """
    named = isinstance(histories, dict)
    histories = as_histories(histories)
    epochs = len(next(iter(histories.values())).reconstructions)
    k = max(len(h.exemplars) for h in histories.values())
    fig, axes = plt.subplots(epochs + 1, len(histories), squeeze=False, layout="constrained",
                             figsize=(len(histories) * (CELL_INCHES * k + 0.2) + 1.0,
                                      (epochs + 1) * CELL_INCHES + 0.6 + 0.3 * named))
    for col, (name, history) in enumerate(histories.items()):
        column = axes[:, col]
        rows = [history.exemplars, *history.reconstructions]
        for row, (ax, images) in enumerate(zip(column, rows)):
            ax.imshow(image_grid(model_scale(images), nrow=k), interpolation="nearest")
            _hide_axes(ax)
            if col == 0:
                ax.set_ylabel("original" if row == 0 else f"epoch {row}", rotation=0, ha="right", va="center")
        if history.classes and len(history.classes) == len(history.exemplars):
            column[0].xaxis.tick_top()
            column[0].set_xticks(_centres(len(history.classes)), list(history.classes), rotation=45,
                                 ha="left", rotation_mode="anchor", fontsize="small")
        if named:
            column[0].set_title(name)
    return fig


def _batches_per_epoch(name: str, history: History) -> int:
    if history.batches_per_epoch:
        return history.batches_per_epoch
    # older histories may lack the count: recover it when whole epochs were logged
    if history.epochs_done and len(history.train_batch_loss) % history.epochs_done == 0:
        return len(history.train_batch_loss) // history.epochs_done
    raise ValueError(f"history {name!r} has {len(history.train_batch_loss)} batch losses over "
                     f"{history.epochs_done} epochs and no batches_per_epoch: set History.batches_per_epoch")


# The losses whose meaning a step's name alone does not say (``training.step_name`` of the step).
STEP_LOSS_LABELS = {"mse_step": "MSE loss ([-1, 1] scale)", "classification_step": "cross-entropy loss",
                    "rate_distortion": "loss: MSE + lambda x bpp (rate_distortion)"}
FALLBACK_LOSS_LABEL = "training loss"  # no step recorded (a hand-made History), or runs of different steps


def loss_label(step) -> str:
    """The y-axis label for the loss a step computes: ``"MSE loss ([-1, 1] scale)"``, ``"loss (vae_step(beta=1))"``.

    ``step``: the step itself (its ``loss_label`` attribute wins, if it has one), or its recorded name
    (``History.meta["step"]``, which ``training.fit`` writes; a step with ``describe()`` is recorded as
    JSON, named here by its ``"step"`` entry), or ``None``: then ``"training loss"``.
    """
    given = getattr(step, "loss_label", None)
    if isinstance(given, str) and given:
        return given
    if callable(step):
        step = step_name(step)
    if not isinstance(step, str) or not step:
        return FALLBACK_LOSS_LABEL
    if step[0] in '{"':  # a described step, recorded as json.dumps(step.describe()): its "step" entry, or the text
        try:
            described = json.loads(step)
        except ValueError:
            described = None
        described = described.get("step") if isinstance(described, dict) else described
        step = described if isinstance(described, str) and described else step
    return STEP_LOSS_LABELS.get(step, f"loss ({step})")


def loss_curves(histories: History | dict[str, History], *, val: bool = True, log_y: bool = False,
                y_label: str | None = None) -> Figure:
    """Training loss per batch (light) and per epoch, and validation loss per epoch; one colour per model.

    Introduced in notebook 03. ``histories``: one History (named ``"model"``) or ``{name: History}``.
    ``val``: draw the validation losses; ``log_y``: a log y axis. The y axis names what the runs' step
    computes (:func:`loss_label` of ``History.meta["step"]``: MSE for the article's step, ``MSE + lambda x
    bpp`` is not MSE), or ``y_label`` when given; runs of different steps share ``"training loss"``.

    The x axis counts epochs completed: batch ``i`` (0-based) ends at ``(i + 1) / batches_per_epoch``,
    so epoch ``e``'s batches lie in ``(e - 1, e]``. Epoch ``e``'s mean training loss averages those
    batches and is drawn in their middle, at ``x = e - 0.5``; its validation loss is measured on the
    model at the end of the epoch and is drawn at ``x = e``.

    Raises:
        TypeError: a value of the dict is not a History.
        ValueError: no History, no losses at all, or batch losses without ``batches_per_epoch`` that
            cannot be recovered from the number of epochs.
    """
    if isinstance(histories, History):
        histories = {"model": histories}
    if not isinstance(histories, dict) or not histories:
        got = "an empty dict" if isinstance(histories, dict) else type(histories).__name__
        raise ValueError(f"expected a History or a non-empty dict {{name: History}}, got {got}")
    batch_rows, epoch_rows = [], []
    for name, history in histories.items():
        if not isinstance(history, History):
            raise TypeError(f"histories[{name!r}] must be a History, got {type(history).__name__}")
        if history.train_batch_loss:
            per_epoch = _batches_per_epoch(name, history)
            batch_rows += [(name, (i + 1) / per_epoch, loss) for i, loss in enumerate(history.train_batch_loss)]
        # a mean over an epoch's batches describes the model half-way through them, not at the epoch's end
        epoch_rows += [(name, "train", e - 0.5, loss) for e, loss in enumerate(history.train_epoch_loss, start=1)]
        if val:
            epoch_rows += [(name, "validation", e, loss)
                           for e, loss in enumerate(history.val_epoch_loss, start=1)]
    if not batch_rows and not epoch_rows:
        raise ValueError("the histories hold no losses yet: nothing to plot")
    names = list(histories)
    palette = dict(zip(names, sns.color_palette(n_colors=len(names))))
    fig, ax = plt.subplots(layout="constrained", figsize=(7, 4))
    batches = pd.DataFrame(batch_rows, columns=["model", "epoch", "loss"])
    per_epoch = pd.DataFrame(epoch_rows, columns=["model", "kind", "epoch", "loss"])
    common = dict(x="epoch", y="loss", hue="model", hue_order=names, palette=palette, estimator=None,
                  errorbar=None, sort=False, legend=False, ax=ax)
    if len(batches):
        sns.lineplot(data=batches, alpha=0.3, linewidth=0.8, **common)
    train = per_epoch[per_epoch["kind"] == "train"]
    if len(train):
        sns.lineplot(data=train, marker="o", linewidth=1.8, **common)
    valid = per_epoch[per_epoch["kind"] == "validation"]
    if len(valid):
        sns.lineplot(data=valid, marker="s", linestyle="--", linewidth=1.8, **common)
    if log_y:
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlim(left=0)
    ax.set_xlabel("epochs completed")
    if y_label is None:
        labels = {loss_label(history.meta.get("step")) for history in histories.values()}
        y_label = labels.pop() if len(labels) == 1 else FALLBACK_LOSS_LABEL
    ax.set_ylabel(y_label + (", log scale" if log_y else ""))
    ax.set_title("Training and validation loss" if val else "Training loss")
    # one legend for colours (models) and one for line styles (what was measured)
    handles = [Line2D([], [], color=palette[n], linewidth=2, label=n) for n in names] if len(names) > 1 else []
    grey = "0.35" if len(names) > 1 else palette[names[0]]  # one model: the styles in its own colour
    for present, style in ((len(batches), dict(alpha=0.4, linewidth=0.8, label="train, per batch")),
                           (len(train), dict(marker="o", label="train, epoch mean (mid-epoch)")),
                           (len(valid), dict(marker="s", linestyle="--", label="validation (end of epoch)"))):
        if present:
            handles.append(Line2D([], [], color=grey, **style))
    ax.legend(handles=handles, loc="upper right", fontsize="small")
    return fig


def pixel_histograms(images_uint8: torch.Tensor | ImageSet) -> Figure:
    """Per-channel pixel distributions before (0..255) and after normalisation to [-1, 1]."""
    images = images_uint8.images if isinstance(images_uint8, ImageSet) else images_uint8
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
            or images.shape[1] != 3:
        got = (f"{describe_shape(images)} {images.dtype}" if isinstance(images, torch.Tensor)
               else type(images).__name__)
        raise ValueError(f"expected uint8 images of shape (N, 3, H, W), got {got}")
    # exact counts of the 256 levels: a histogram of the full set without a 30-million-row frame
    counts = torch.stack([torch.bincount(images[:, c].flatten().cpu(), minlength=256) for c in range(3)])
    levels = np.arange(256)
    frame = pd.DataFrame({
        "channel": np.repeat(["R", "G", "B"], 256),
        "pixel": np.tile(levels, 3),
        "normalised": np.tile(levels / 127.5 - 1.0, 3),
        "count": counts.flatten().numpy(),
    })
    edges = np.linspace(-0.5, 255.5, 65)  # 64 bins of exactly four levels each
    # bins go in as lists: seaborn 0.13 compares them to "auto", which an array cannot answer
    palette = {"R": "tab:red", "G": "tab:green", "B": "tab:blue"}
    fig, (before, after) = plt.subplots(1, 2, layout="constrained", figsize=(9, 3.2))
    panels = ((before, "pixel", list(edges), "before: uint8 pixels 0..255"),
              (after, "normalised", list(edges / 127.5 - 1.0), "after normalize: [-1, 1]"))
    for ax, column, bins, title in panels:
        sns.histplot(data=frame, x=column, weights="count", hue="channel", palette=palette, bins=bins,
                     element="step", fill=False, stat="proportion", common_norm=False, ax=ax)
        ax.set_title(title)
        ax.set_xlabel("pixel value")
    after.set_ylabel("")
    fig.suptitle(f"Pixel values of {len(images):,} images, per channel")
    return fig


def _tidy_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Any of the metrics tables -> columns model, class, metrics (see metrics_by_class)."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if isinstance(table.columns, pd.MultiIndex):  # compare_models
        return long_table({model: table[model] for model in table.columns.get_level_values(0).unique()})
    if "model" in table.columns:
        return table
    return long_table({"": table})


def metrics_by_class(table: pd.DataFrame, metric: str = "psnr") -> Figure:
    """Bars of one metric per class, one colour per model.

    ``table`` may be :func:`convae_utils.metrics.compare_models`' output (its ``"all"`` row becomes the
    first group), the tidy :func:`convae_utils.metrics.long_table` (per-image rows give mean bars
    with +-2 standard-error ticks), or one model's :func:`~convae_utils.metrics.evaluate` or
    :func:`~convae_utils.metrics.summarize` table.
    """
    check_choice("metric", metric, tuple(METRIC_LABELS))
    tidy = _tidy_metrics(table)
    missing = [c for c in ("model", "class", metric) if c not in tidy.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {', '.join(missing)}; give compare_models(...), "
                         f"long_table(...) or an evaluate(...) table, got columns {list(tidy.columns)}")
    models = list(dict.fromkeys(tidy["model"]))
    if isinstance(tidy["class"].dtype, pd.CategoricalDtype):
        order = [c for c in tidy["class"].cat.categories if c in set(tidy["class"])]
    else:
        order = list(dict.fromkeys(tidy["class"].astype(str)))
    width = max(6.0, 0.35 * len(order) * max(2, len(models)) + 1.5)
    fig, ax = plt.subplots(layout="constrained", figsize=(width, 3.8))
    sns.barplot(data=tidy.assign(**{"class": tidy["class"].astype(str)}), x="class", y=metric, hue="model",
                order=order, hue_order=models, errorbar=("se", 2), ax=ax)
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_ha("right")
        label.set_rotation_mode("anchor")
    ax.set_xlabel("")
    ax.set_ylabel(METRIC_LABELS[metric])
    if len(models) > 1:
        ax.legend(title="model", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_title(f"{metric.upper()} by class")
    return fig


# -- rate and distortion (the rate-distortion notebook) ---------------------------------------------

PSNR_COLUMNS = ("psnr_of_mean_mse", "mean_psnr")
_YLABELS = {
    "psnr_of_mean_mse": "PSNR of the mean MSE, dB (higher is better)",
    "mean_psnr": "mean per-image PSNR, dB (higher is better)",
    "ssim": "SSIM (higher is better)",
}
_NEEDED = ("method", "setting", "bits_per_image")


def _check_table(table, what: str, metrics) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame (convae_utils.baselines.rate_distortion_table), "
                        f"got {type(table).__name__}")
    missing = [c for c in (*_NEEDED, *metrics) if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}; expected the columns of "
                         f"convae_utils.baselines.TABLE_COLUMNS {list(TABLE_COLUMNS)}, got {list(table.columns)}")
    if len(table) and not (table["bits_per_image"] > 0).all():
        raise ValueError(f"{what}: bits_per_image must be positive for a log axis")
    return table


# Where a point's label may go, tried in this order: (x, y) offset in points, horizontal and vertical alignment
_LABEL_SPOTS = ((4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
                (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"),
                (7, 0, "left", "center"), (-7, 0, "right", "center"), (4, 11, "left", "bottom"),
                (4, -11, "left", "top"), (-4, 11, "right", "bottom"), (-4, -11, "right", "top"))
_MARKER_PX = 3.5  # half the side of the box around a point that labels keep clear of, in pixels at 100 dpi


def _place_labels(ax, labels: list[tuple[str, float, float, dict]], points) -> list:
    """Annotate ``(text, x, y, style)`` in order where the label covers no earlier label or point, else leave it out.

    Greedy: each label takes the first of :data:`_LABEL_SPOTS` whose box stays inside the axes and
    clear of the labels placed before it, of every point in ``points`` ((x, y) data pairs), and of the
    texts already on the axes. Call after the figure's layout is done (``fig.draw_without_rendering()``);
    the labels are kept out of the layout so that placing them cannot move the axes. Returns the placed texts.
    """
    scale = ax.figure.dpi / 100.0
    gap = 1.5 * scale
    frame = ax.get_window_extent()
    pixels = ax.transData.transform(np.asarray(points, dtype=float).reshape(-1, 2))
    taken = [Bbox.from_extents(px - _MARKER_PX * scale, py - _MARKER_PX * scale,
                               px + _MARKER_PX * scale, py + _MARKER_PX * scale) for px, py in pixels]
    taken += [t.get_window_extent() for t in ax.texts if t.get_text()]
    placed = []
    for text, x, y, style in labels:
        for dx, dy, ha, va in _LABEL_SPOTS:
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, **style)
            label.set_in_layout(False)
            box = label.get_window_extent().expanded(1.0, 1.0).padded(gap)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                placed.append(label)
                break
            label.remove()
    return placed


def rate_distortion_plot(table: pd.DataFrame, marks: pd.DataFrame | None = None, *,
                         psnr: str = "psnr_of_mean_mse", label_points: bool = True, dashed=()) -> Figure:
    """PSNR and SSIM against bits per image (log x; bits per pixel on the top axis), one line per method.

    Points are labelled by setting.

    Introduced in notebook 06.

    Args:
        table: :func:`convae_utils.baselines.rate_distortion_table` output (or any frame with the
            columns method, setting, bits_per_image > 0, the PSNR column in dB and ssim in [0, 1]).
        marks: rows to emphasise as large stars with their ``setting`` written beside them, e.g. the
            article's two models; the same columns (a missing SSIM may be NaN, e.g. for published
            points that report none: they are drawn on the PSNR panel only).
        psnr: which PSNR to plot, ``"psnr_of_mean_mse"`` (default) or ``"mean_psnr"``.
        label_points: write each point's setting (``k=200``, ``q=50`` ...) next to it where there is
            room. Labels never overlap: the marks' labels go first, then each curve's two ends, then
            the points in between; a label that would cover another label or a point is left out
            (the table has every point), and a point under a mark is labelled once, by the mark.
        dashed: methods drawn dashed with open markers, on top of the others (controls: an untrained model
            whose curve coincides with its trained one stays visible); each must be a method of ``table``.

    A dotted vertical line marks the raw image, 24,576 bits: a code to the right of it is no
    compression at all.

    Raises:
        TypeError: ``table`` or ``marks`` is not a DataFrame.
        ValueError: a column is missing, ``table`` is empty, a bits_per_image is not positive,
            ``psnr`` is not one of the two names, or a ``dashed`` method is not in ``table``.
    """
    check_choice("psnr", psnr, PSNR_COLUMNS)
    metrics = (psnr, "ssim")
    table = _check_table(table, "table", metrics)
    if not len(table):
        raise ValueError("table is empty: nothing to plot")
    if marks is not None:
        marks = _check_table(marks, "marks", (psnr,))
    methods = list(dict.fromkeys(table["method"]))
    dashed = [dashed] if isinstance(dashed, str) else list(dashed)
    unknown = [m for m in dashed if m not in methods]
    if unknown:
        raise ValueError(f"dashed names methods the table does not have: {unknown}; its methods: {methods}")
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    shown_marks = {}
    for ax, metric in zip(axes, metrics):
        for method in methods:
            rows = table[table["method"] == method].sort_values("bits_per_image")
            style = (dict(linestyle="--", markerfacecolor="none", markersize=6, zorder=3) if method in dashed
                     else dict(markersize=4))
            ax.plot(rows["bits_per_image"], rows[metric], marker="o", linewidth=1.6, color=palette[method],
                    label=method, **style)
        if marks is not None and metric in marks.columns:
            shown = shown_marks[metric] = marks[marks[metric].notna()]
            ax.scatter(shown["bits_per_image"], shown[metric], marker="*", s=160, color="black", zorder=5,
                       label=", ".join(dict.fromkeys(shown["method"].astype(str))) if len(shown) else None)
        ax.axvline(IMAGE_BITS, color="0.4", linestyle=":", linewidth=1.2)
        ax.annotate(f"raw image\n{IMAGE_BITS:,} bits", (IMAGE_BITS, 0.02), xycoords=("data", "axes fraction"),
                    fontsize=7, color="0.35", ha="right", xytext=(-3, 0), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("bits per image (log scale)")
        # the compression literature's unit beside ours: bits per pixel of a 32 x 32 image
        top = ax.secondary_xaxis("top", functions=(lambda b: np.asarray(b) / IMAGE_PIXELS,
                                                   lambda p: np.asarray(p) * IMAGE_PIXELS))
        top.set_xlabel("bits per pixel (bpp)", fontsize=8)
        top.tick_params(labelsize=7)
        ax.set_ylabel(_YLABELS[metric])
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_title("PSNR against bits per image")
    axes[1].set_title("SSIM against bits per image")
    axes[1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.draw_without_rendering()  # the layout fixes where each point lands: labels are placed after it
    for ax, metric in zip(axes, metrics):
        shown = shown_marks.get(metric, table.iloc[:0])
        labels = [(str(row["setting"]), row["bits_per_image"], row[metric], dict(fontsize=7.5, fontweight="bold"))
                  for _, row in shown.iterrows()]
        if label_points:
            curves = [table[table["method"] == method].sort_values("bits_per_image") for method in methods]
            ends = [(rows, i) for rows in curves for i in sorted({0, len(rows) - 1})]
            middles = [(rows, i) for rows in curves for i in range(1, len(rows) - 1)]
            starred = {(str(row["setting"]), float(row["bits_per_image"])) for _, row in shown.iterrows()}
            labels += [(str(rows["setting"].iloc[i]), rows["bits_per_image"].iloc[i], rows[metric].iloc[i],
                        dict(fontsize=7, color=palette[rows["method"].iloc[0]])) for rows, i in ends + middles
                       # a point under a star already has the star's bold label
                       if (str(rows["setting"].iloc[i]), float(rows["bits_per_image"].iloc[i])) not in starred]
        points = [*zip(table["bits_per_image"], table[metric]), *zip(shown["bits_per_image"], shown[metric])]
        _place_labels(ax, labels, points)
    return fig


# -- output -------------------------------------------------------------------------------------

def figure_to_png(fig: Figure, dpi: int = 100, *, tight: bool = True) -> bytes:
    """The figure as PNG bytes, e.g. for an ipywidgets.Image.

    ``tight=True`` crops to what is drawn (the size follows the content); ``tight=False`` keeps the
    figure's own size, ``figsize * dpi`` pixels, as frames of one animation must.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=check_int("dpi", dpi, maximum=1200),
                bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Save ``fig`` atomically (``fileio.atomic_write``), creating the folder; returns the path.

    A reader never sees a half-written file, and an interrupted save leaves the old one in place.
    The format follows the suffix (``.png``, ``.svg``, ``.pdf`` ...; PNG when there is none).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    dpi = check_int("dpi", dpi, maximum=1200)
    return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi, bbox_inches="tight"))


# -- notebook 07: what the codes are for ----------------------------------------------------------

def roc_curves(curves: dict, *, title: str | None = None) -> Figure:
    """ROC curves, one line per entry, AUROC in the legend; the diagonal is a coin toss.

    ``curves``: ``{name: roc}`` where ``roc`` has ``fpr``, ``tpr`` (1-D, same length) and ``auroc``
    (e.g. ``convae_utils.anomaly.roc``). Introduced in notebook 07.
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict {name: ROC curve with fpr, tpr and auroc}")
    fig, ax = plt.subplots(figsize=(5.2, 4.6), layout="constrained")
    for name, curve in curves.items():
        fpr, tpr = np.asarray(curve.fpr, dtype=float), np.asarray(curve.tpr, dtype=float)
        if fpr.shape != tpr.shape or fpr.ndim != 1:
            raise ValueError(f"curves[{name!r}]: fpr and tpr must be 1-D of equal length, got {fpr.shape} and {tpr.shape}")
        ax.plot(fpr, tpr, linewidth=1.8, label=f"{name} (AUROC {curve.auroc:.2f})", clip_on=False)
    # drawn last and on top: a curve at AUROC 0.5 lies on the diagonal and would hide it
    ax.plot([0, 1], [0, 1], color="black", linestyle=(0, (2, 2)), linewidth=1, zorder=5, label="coin toss (0.50)")
    ax.set_xlim(-0.01, 1.01)  # a little room, so curves along the edges (a perfect detector) stay visible
    ax.set_ylim(-0.01, 1.02)
    ax.set_xlabel("false-positive rate (normal images flagged)")
    ax.set_ylabel("true-positive rate (anomalies flagged)")
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return fig


SAME_CLASS_COLOUR = "#0072B2"   # Okabe-Ito blue and vermillion: told apart with every common colour-vision
OTHER_CLASS_COLOUR = "#D55E00"  # deficiency; the "other class" frame is also dashed, for greyscale prints


def _labels_array(values, name: str, shape: tuple[int, ...], classes) -> np.ndarray:
    """Class indices or names as an array of ``shape``; indices become names when ``classes`` is given."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.shape != shape:
        raise ValueError(f"expected {name} of shape {shape} (one label per image shown), got shape "
                         f"{array.shape}; pass test.labels[index] for the indices that chose the images")
    if array.dtype.kind in "iub":
        if classes is None:
            return array.astype(np.int64)
        if len(array) and (array.min() < 0 or array.max() >= len(classes)):
            raise ValueError(f"expected {name} as class indices 0..{len(classes) - 1} (classes has {len(classes)} "
                             f"names), got indices {array.min()}..{array.max()}; pass the dataset's own classes "
                             "(e.g. test.classes)")
        return np.asarray(list(classes), dtype=object)[array]
    if array.dtype.kind not in "UO":
        raise ValueError(f"expected {name} as class indices (integers) or class names, got dtype {array.dtype}")
    return array.astype(str).astype(object)


def _frame(ax, row: int, col: int, same: bool) -> None:
    """A frame on the edge of grid cell (row, col): solid blue for same class, dashed vermillion for other."""
    ax.add_patch(Rectangle((PAD + col * TILE - 0.5, PAD + row * TILE - 0.5), 32, 32, fill=False, linewidth=2.2,
                           edgecolor=SAME_CLASS_COLOUR if same else OTHER_CLASS_COLOUR,
                           linestyle="-" if same else (0, (2.5, 1.2))))


def retrieval_gallery(queries: torch.Tensor, neighbours: dict[str, torch.Tensor], *, query_labels=None,
                      neighbour_labels: dict | None = None, classes=None, title: str | None = None) -> Figure:
    """For each query (a row): the query, then its nearest neighbours under each way of measuring distance.

    Introduced in notebook 07.

    Args:
        queries: uint8 pixels or floats in [-1, 1], shape (Q, 3, 32, 32).
        neighbours: ``{name: images (Q, k, 3, 32, 32)}``, e.g. ``{"code space": ..., "pixel space": ...}``,
            nearest first; ``k`` may differ between panels.
        query_labels: (Q,) class indices or names, written beside the queries.
        neighbour_labels: ``{name: (Q, k) labels}`` for every panel of ``neighbours`` (same names), of
            the same kind as ``query_labels`` (needed with them). Each neighbour then gets a frame: solid
            blue when it has its query's class, dashed vermillion when not; each panel's title counts
            the same-class neighbours ("same class: 7/30").
        classes: class names, index -> name, to show (and compare) integer labels as names.
        title: the figure's title.

    Raises:
        ValueError: images of the wrong shape, labels of the wrong shape or kind, ``neighbour_labels``
            without ``query_labels``, or whose names are not exactly the panels of ``neighbours``.
    """
    queries = model_scale(queries, "queries")
    if not isinstance(neighbours, dict) or not neighbours:
        raise ValueError("neighbours must be a non-empty dict {name: images (Q, k, 3, 32, 32)}")
    q = len(queries)
    panels = {}
    for name, images in neighbours.items():
        if not isinstance(images, torch.Tensor) or images.ndim != 5 or images.shape[0] != q:
            got = describe_shape(images) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"neighbours[{name!r}] must have shape ({q}, k, 3, 32, 32), got {got}")
        panels[name] = model_scale(images.flatten(0, 1), name).unflatten(0, images.shape[:2])
    shown_queries = None if query_labels is None else _labels_array(query_labels, "query_labels", (q,), classes)
    matches = {}
    if neighbour_labels is not None:
        if shown_queries is None:
            raise ValueError("neighbour_labels need query_labels too: pass query_labels=labels[query_index] "
                             "so that each neighbour can be compared with its query")
        if not isinstance(neighbour_labels, dict) or set(neighbour_labels) != set(panels):
            got = list(neighbour_labels) if isinstance(neighbour_labels, dict) else type(neighbour_labels).__name__
            raise ValueError(f"expected neighbour_labels as a dict with one (Q, k) entry per panel of neighbours "
                             f"{list(panels)}, got {got}; use the same names as in neighbours")
        for name, labels in neighbour_labels.items():
            found = _labels_array(labels, f"neighbour_labels[{name!r}]", tuple(panels[name].shape[:2]), classes)
            if (found.dtype == object) != (shown_queries.dtype == object):
                raise ValueError(f"query_labels and neighbour_labels[{name!r}] must be of one kind, both class "
                                 "indices or both class names; pass classes=... to compare indices with names")
            matches[name] = found == shown_queries[:, None]                    # (Q, k) bool
    widths = [1] + [panel.shape[1] for panel in panels.values()]
    fig, axes = plt.subplots(1, len(widths), figsize=(CELL_INCHES * 1.5 * sum(widths) + 1.0,
                                                      CELL_INCHES * 1.5 * q + (1.2 if matches else 0.9)),
                             layout="constrained", gridspec_kw={"width_ratios": widths}, squeeze=False)
    axes = axes[0]
    axes[0].imshow(image_grid(queries, nrow=1), interpolation="nearest")
    axes[0].set_title("query")
    _hide_axes(axes[0])
    if shown_queries is not None:
        axes[0].set_yticks(_centres(q), [str(label) for label in shown_queries])
    for ax, (name, panel) in zip(axes[1:], panels.items()):
        k = panel.shape[1]
        ax.imshow(image_grid(panel.flatten(0, 1), nrow=k), interpolation="nearest")
        _hide_axes(ax)
        heading = f"{k} nearest, {name}"
        if name in matches:
            same = matches[name]
            for (row, col), hit in np.ndenumerate(same):
                _frame(ax, row, col, bool(hit))
            heading += f"\nsame class: {int(same.sum())}/{same.size}"
        ax.set_title(heading)
    if matches:
        handles = [Patch(facecolor="none", edgecolor=SAME_CLASS_COLOUR, linewidth=2.2,
                         label="same class as the query"),
                   Patch(facecolor="none", edgecolor=OTHER_CLASS_COLOUR, linewidth=2.2, linestyle=(0, (2.5, 1.2)),
                         label="another class")]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def code_maps(maps: dict, labels, classes, *, title: str | None = None) -> Figure:
    """Side-by-side 2-D maps of codes (e.g. t-SNE), points coloured by class. Introduced in notebook 09.

    ``maps``: {panel title: (N, 2) array}, the same N images in each; ``labels``: (N,) class indices;
    ``classes``: the class names (index = label).
    """
    if not isinstance(maps, dict) or not maps:
        raise ValueError("maps must be a non-empty dict {title: (N, 2) array}")
    labels = np.asarray(labels)
    for name, points in maps.items():
        if np.ndim(points) != 2 or np.shape(points)[1] != 2 or len(points) != len(labels):
            raise ValueError(f"map {name!r} must have shape ({len(labels)}, 2), got {np.shape(points)}")
    palette = sns.color_palette("tab10", n_colors=len(classes))
    fig, axes = plt.subplots(1, len(maps), figsize=(4.8 * len(maps) + 1.6, 4.6), layout="constrained", squeeze=False)
    for ax, (name, points) in zip(axes[0], maps.items()):
        points = np.asarray(points)
        for label, class_name in enumerate(classes):
            chosen = labels == label
            ax.scatter(points[chosen, 0], points[chosen, 1], s=7, color=palette[label], label=str(class_name), alpha=0.8)
        ax.set_title(name)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=2)
    if title:
        fig.suptitle(title)
    return fig


# -- upsampling layers' geometry (notebook 08) --------------------------------------------------------

def upsampling_coverage(upsample: str, stages: int = 2, size: int = 4) -> torch.Tensor:
    """How many kernel taps reach each output pixel after ``stages`` x2 upsamplings: (size * 2**stages,)^2.

    Every weight is 1 and the input a constant map, so any pattern in the output comes from the layer's
    geometry alone. A stride-2 3x3 transposed convolution (``"transposed"``, the article's layer) covers
    output pixels alternately by 1, 2 and 4 taps: the checkerboard of Odena et al. (2016); nearest
    upsampling + a 3x3 convolution (``"nearest"``) covers every inner pixel alike. Shown in notebook 08.
    """
    x = torch.ones(1, 1, size, size)
    with torch.no_grad():
        for _ in range(stages):
            layers = nn.Sequential(*upsample_layers(1, 1, upsample))
            for module in layers.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
            x = layers(x)
    return x[0, 0]


def checkerboard_figure(decoded: dict[str, torch.Tensor] | None = None):
    """One picture: the tap coverage of each upsampling (:func:`upsampling_coverage`), and optionally images.

    ``decoded`` maps a label to one image (3, 32, 32) in [-1, 1] to show beside the coverage maps
    (e.g. what an untrained or briefly trained decoder of each kind draws). Returns the Figure.
    """
    maps = {"stride-2 transposed conv": upsampling_coverage("transposed"),
            "upsample + 3x3 conv": upsampling_coverage("nearest")}
    panels = len(maps) + len(decoded or {})
    fig, axes = plt.subplots(1, panels, figsize=(2.4 * panels, 2.6))
    for ax, (label, coverage) in zip(axes, maps.items()):
        inner = coverage[4:-4, 4:-4]  # the borders see fewer taps in both layers (zero padding)
        # each map relative to its own mean, on one grey scale (0 to twice the mean): an even layer is a
        # flat mid-grey, not a blank panel
        ax.imshow((inner / inner.mean()).numpy(), cmap="gray", vmin=0, vmax=2)
        ax.set_title(f"{label}\ntaps per pixel {int(inner.min())}..{int(inner.max())}", fontsize=8)
    for ax, (label, image) in zip(axes[len(maps):], (decoded or {}).items()):
        ax.imshow(((image.detach().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy())
        ax.set_title(label, fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig
