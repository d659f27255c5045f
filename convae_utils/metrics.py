"""Reconstruction metrics per image (MSE, PSNR, SSIM), a test-set evaluation and comparison tables.

Defined in notebook 04 (comparing bottlenecks). Every metric is measured on the [0, 1] pixel scale,
the scale image-quality numbers are usually quoted on: inputs are model-scale tensors in [-1, 1] and
are mapped back with :func:`convae_utils.images.denormalize` (which clamps, so a reconstruction that
overshoots [-1, 1] is scored as the picture it would display). The training loss, by contrast, is
MSE on the [-1, 1] scale: four times the MSE reported here.

Table shapes:

- :func:`evaluate` -> one row per image (index ``image``), columns ``label``, ``class``, ``mse``,
  ``psnr``, ``ssim``; ``class`` is categorical, its categories in label order.
- :func:`summarize` -> one row per class (index ``class``, ``"all"`` first), columns ``images``,
  ``mse``, ``psnr``, ``ssim`` (means over the images of that row).
- :func:`compare_models` -> the same rows, columns a MultiIndex ``(model, metric)``.
- :func:`long_table` -> the tidy form for plotting: columns ``model``, ``class``, ``mse``, ``psnr``,
  ``ssim``, one row per model and image (or per model and class when given summaries).
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_image_batch, check_int, describe_shape
from .images import ImageSet, denormalize, normalize
from .inference import batched, evaluating, model_device
from .settings import pick_device

METRICS = ("mse", "psnr", "ssim")
MAX_PSNR_DB = 100.0  # PSNR of a perfect reconstruction is infinite; cap it so means stay finite
_MIN_MSE = 10.0 ** (-MAX_PSNR_DB / 10.0)  # the MSE at which PSNR reaches the cap


def _pixel_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two model-scale batches and return them on the [0, 1] scale."""
    check_image_batch(pred, "pred")
    check_image_batch(target, "target", check_values=True)  # NaN/inf or a wrong scale would score silently
    if not bool(torch.isfinite(pred).all()):  # a reconstruction may overshoot [-1, 1], but never be NaN
        raise ValueError(f"pred contains {int((~torch.isfinite(pred)).sum()):,} NaN or infinite values")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {describe_shape(pred)} "
                         f"and {describe_shape(target)}")
    return denormalize(pred), denormalize(target)


def per_image_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of each image on the [0, 1] scale; inputs are (N, 3, 32, 32) in [-1, 1]; returns (N,)."""
    pred01, target01 = _pixel_pair(pred, target)
    return (pred01 - target01).pow(2).flatten(1).mean(dim=1)


def per_image_psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image on the [0, 1] scale (peak 1), capped at ``MAX_PSNR_DB``; returns (N,)."""
    return _psnr_from_mse(per_image_mse(pred, target))


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10(mse.clamp_min(_MIN_MSE))  # 10*log10(peak**2 / mse), peak 1


SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03  # Wang et al. (2004), torchmetrics' defaults


def _gaussian_blur_matrix(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size, size) matrix G: ``G @ column`` is the column padded by reflection and blurred by the SSIM window.

    The 11 x 11 Gaussian window is the outer product of two 1-D Gaussians, so blurring a (H, W) map is
    ``G_H @ map @ G_W.T``: two small matrix products instead of a 121-tap convolution per pixel.
    """
    half = SSIM_WINDOW // 2
    # float32 on the CPU: an 11-tap window needs no more, and Apple's MPS has no float64 at all
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float32) - half
    taps = torch.exp(-offsets ** 2 / (2 * SSIM_SIGMA ** 2))
    taps = taps / taps.sum()
    impulses = torch.eye(size, dtype=torch.float32).unsqueeze(1)                        # (size, 1, size)
    padded = F.pad(impulses, (half, half), mode="reflect")                              # (size, 1, size + 10)
    responses = F.conv1d(padded, taps.view(1, 1, -1)).squeeze(1)                        # row j: G @ e_j
    return responses.T.contiguous().to(dtype=dtype, device=device)


def per_image_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image on the [0, 1] scale (11x11 Gaussian window, sigma 1.5); returns (N,).

    The same numbers as torchmetrics' ``structural_similarity_index_measure`` (borders padded by
    reflection, the SSIM map averaged over all pixels and channels, so values differ slightly from
    tools that crop the border, e.g. scikit-image), computed with the window's two 1-D halves as
    matrices (:func:`_gaussian_blur_matrix`): about 10x faster on a CPU, which matters where a codec
    sweep scores thousands of images at every point. The tests check it against torchmetrics and
    against an independent reference.
    """
    pred01, target01 = _pixel_pair(pred, target)
    dtype = torch.promote_types(pred01.dtype, torch.float32)
    pred01, target01 = pred01.to(dtype), target01.to(dtype)
    height, width = pred01.shape[-2:]
    rows = _gaussian_blur_matrix(height, dtype, pred01.device)
    cols = _gaussian_blur_matrix(width, dtype, pred01.device)
    maps = torch.stack((pred01, target01, pred01 * pred01, target01 * target01, pred01 * target01))
    mean_pred, mean_target, pred_sq, target_sq, cross = rows @ maps @ cols.T           # (5, N, C, H, W)
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2                                                 # data range 1
    var_pred = (pred_sq - mean_pred ** 2).clamp_min(0.0)
    var_target = (target_sq - mean_target ** 2).clamp_min(0.0)
    covariance = cross - mean_pred * mean_target
    ssim_map = ((2 * mean_pred * mean_target + c1) * (2 * covariance + c2)
                / ((mean_pred ** 2 + mean_target ** 2 + c1) * (var_pred + var_target + c2)))
    return ssim_map.flatten(1).mean(dim=1)


def evaluate(model: nn.Module, dataset: ImageSet, *, batch_size: int = 500,
             device: str | torch.device | None = None) -> pd.DataFrame:
    """Score every image of ``dataset``: a DataFrame with columns label, class, mse, psnr, ssim.

    Runs in eval mode under ``torch.inference_mode`` on ``pick_device(device)``; uint8 images are
    normalised per batch on the device. The model's device and train/eval modes (of every
    submodule) are restored afterwards. Metrics are on the [0, 1] pixel scale.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(dataset, ImageSet):
        raise TypeError(f"dataset must be a convae_utils.images.ImageSet, got {type(dataset).__name__}")
    check_int("batch_size", batch_size)
    dev = pick_device(device)
    home = model_device(model)
    modes = {module: module.training for module in model.modules()}
    scores: dict[str, list[torch.Tensor]] = {name: [] for name in METRICS}
    try:
        model.to(dev).eval()
        with torch.inference_mode():
            for start in range(0, len(dataset), batch_size):
                target = normalize(dataset.images[start:start + batch_size].to(dev, non_blocking=True))
                pred = model(target)
                mse = per_image_mse(pred, target)
                for name, values in (("mse", mse), ("psnr", _psnr_from_mse(mse)),
                                     ("ssim", per_image_ssim(pred, target))):
                    scores[name].append(values.float().cpu())
    finally:
        model.to(home)
        for module, training in modes.items():
            module.training = training
    labels = dataset.labels.cpu().numpy()
    frame = pd.DataFrame({
        "label": labels,
        "class": pd.Categorical.from_codes(labels, categories=list(dataset.classes)),
        **{name: torch.cat(parts).numpy().astype("float64") for name, parts in scores.items()},
    })
    frame.index.name = "image"
    return frame


@torch.inference_mode()
def encode(model: nn.Module, dataset: ImageSet, *, batch_size: int = 500) -> torch.Tensor:
    """The latent codes of every image of ``dataset``: float32 (N, latent_dim) on the CPU.

    Runs on the model's own device in eval mode; the model's train/eval mode is restored.
    Introduced in notebook 05 (beyond the article).
    """
    if not isinstance(dataset, ImageSet):
        raise TypeError(f"dataset must be a convae_utils.images.ImageSet, got {type(dataset).__name__}")
    check_int("batch_size", batch_size)
    with evaluating(model):
        return batched(lambda batch: model.encode(normalize(batch)), dataset.images, device=model_device(model),
                       batch_size=batch_size)


def dead_code_units(codes: torch.Tensor) -> int:
    """How many code units are zero for every image: (N, latent_dim) codes -> a count in 0..latent_dim.

    A dead unit carries no information; behind a ReLU it also gets no gradient and stays dead.
    """
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or len(codes) == 0:
        got = describe_shape(codes) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"expected codes of shape (N, latent_dim) with N >= 1, got {got}")
    return int((codes != 0).sum(dim=0).eq(0).sum())


def _check_columns(frame, needed, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}; expected the per-image table "
                         f"from convae_utils.metrics.evaluate, got columns {list(frame.columns)}")


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics overall (row ``"all"``, first) and per class in label order, with each row's image count.

    The order holds however the table was made or loaded (a CSV forgets categorical order, the
    ``label`` column does not).
    """
    _check_columns(per_image, ("class", *METRICS), "per_image")
    overall = per_image[list(METRICS)].mean().to_frame("all").T
    overall.insert(0, "images", len(per_image))
    # observed=True: classes absent from the evaluated set get no row rather than a row of NaN
    by_class = per_image.groupby("class", observed=True, sort=False)
    per_class = by_class[list(METRICS)].mean()
    per_class.insert(0, "images", by_class.size())
    per_class = per_class.loc[_label_order(per_image, per_class.index)]
    table = pd.concat([overall, per_class])
    table.index = pd.Index([str(i) for i in table.index], name="class")
    table["images"] = table["images"].astype(int)
    return table


def _label_order(per_image: pd.DataFrame, present) -> list:
    """The classes in ``present`` in label order (by the ``label`` column, else the categorical order)."""
    if "label" in per_image.columns:
        order = per_image.drop_duplicates("class").sort_values("label")["class"].tolist()
    elif isinstance(per_image["class"].dtype, pd.CategoricalDtype):
        order = list(per_image["class"].cat.categories)
    else:
        order = sorted(present, key=str)
    present = set(present)
    return [c for c in order if c in present]


def _as_summary(name: str, table) -> pd.DataFrame:
    if "label" in getattr(table, "columns", ()):  # a per-image table from evaluate
        return summarize(table)
    _check_columns(table, METRICS, f"results[{name!r}]")
    return table


def _check_results(results) -> None:
    if not isinstance(results, dict) or not results:
        got = "an empty dict" if isinstance(results, dict) else type(results).__name__
        raise ValueError(f"results must be a non-empty dict {{model name: evaluate(...) table}}, got {got}")


def compare_models(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per class (``"all"`` first), columns ``(model, metric)``; give per-image tables or summaries."""
    _check_results(results)
    summaries = {str(name): _as_summary(str(name), table)[list(METRICS)] for name, table in results.items()}
    table = pd.concat(summaries, axis=1, names=["model", "metric"], sort=False)
    table.index.name = "class"
    return table


def long_table(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The tidy form of several models' tables: columns model, class, mse, psnr, ssim.

    Per-image tables give one row per model and image; summaries give one row per model and class
    (``"all"`` included). ``class`` is categorical in the tables' own class order.
    """
    _check_results(results)
    frames, order = [], []
    for name, table in results.items():
        if "class" in getattr(table, "columns", ()):
            _check_columns(table, ("class", *METRICS), f"results[{name!r}]")
            part = table[["class", *METRICS]].reset_index(drop=True)
            seen = set(part["class"].astype(str))
            known = (list(part["class"].cat.categories) if isinstance(part["class"].dtype, pd.CategoricalDtype)
                     else list(dict.fromkeys(part["class"].astype(str))))
            names = [str(c) for c in known if str(c) in seen]
        else:  # a summary: its index holds the class names
            part = _as_summary(str(name), table)[list(METRICS)].rename_axis("class").reset_index()
            names = [str(c) for c in part["class"]]
        part["class"] = part["class"].astype(str)
        part.insert(0, "model", str(name))
        frames.append(part)
        order.extend(c for c in names if c not in order)
    if "all" in order:  # the overall row leads, as in summarize
        order.insert(0, order.pop(order.index("all")))
    tidy = pd.concat(frames, ignore_index=True)
    tidy["class"] = pd.Categorical(tidy["class"], categories=order)
    return tidy
