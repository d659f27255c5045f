"""Rate-distortion figure: quality against bits per image, one line per method.

Defined in the rate-distortion notebook (issue 11, after notebook 05). Like every figure helper of
the series it returns the matplotlib Figure and never calls ``plt.show``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .baselines import TABLE_COLUMNS
from .bits import IMAGE_BITS
from .checks import check_choice

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


def rate_distortion_plot(table: pd.DataFrame, marks: pd.DataFrame | None = None, *,
                         psnr: str = "psnr_of_mean_mse", label_points: bool = True) -> Figure:
    """PSNR and SSIM against bits per image (log x), one line per method, points labelled by setting.

    Args:
        table: :func:`convae_utils.baselines.rate_distortion_table` output (or any frame with the
            columns method, setting, bits_per_image, the PSNR column and ssim).
        marks: rows to emphasise as large stars with their ``method`` and ``setting`` written
            beside them, e.g. the article's two models; the same columns (a missing SSIM may be NaN,
            e.g. for published points that report none: they are drawn on the PSNR panel only).
        psnr: which PSNR to plot, ``"psnr_of_mean_mse"`` (default) or ``"mean_psnr"``.
        label_points: write each point's setting (``k=200``, ``q=50`` ...) next to it.

    A dotted vertical line marks the raw image, 24,576 bits: a code to the right of it is no
    compression at all.
    """
    check_choice("psnr", psnr, PSNR_COLUMNS)
    metrics = (psnr, "ssim")
    table = _check_table(table, "table", metrics)
    if not len(table):
        raise ValueError("table is empty: nothing to plot")
    if marks is not None:
        marks = _check_table(marks, "marks", (psnr,))
    methods = list(dict.fromkeys(table["method"]))
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    for ax, metric in zip(axes, metrics):
        for method in methods:
            rows = table[table["method"] == method].sort_values("bits_per_image")
            ax.plot(rows["bits_per_image"], rows[metric], marker="o", markersize=4, linewidth=1.6,
                    color=palette[method], label=method)
            if label_points:
                for _, row in rows.iterrows():
                    ax.annotate(str(row["setting"]), (row["bits_per_image"], row[metric]), fontsize=6.5,
                                color=palette[method], xytext=(3, 3), textcoords="offset points")
        if marks is not None and metric in marks.columns:
            shown = marks[marks[metric].notna()]
            ax.scatter(shown["bits_per_image"], shown[metric], marker="*", s=160, color="black", zorder=5,
                       label="marked" if len(shown) else None)
            for _, row in shown.iterrows():
                ax.annotate(f"{row['method']} {row['setting']}", (row["bits_per_image"], row[metric]),
                            fontsize=7.5, fontweight="bold", xytext=(5, -10), textcoords="offset points")
        ax.axvline(IMAGE_BITS, color="0.4", linestyle=":", linewidth=1.2)
        ax.annotate(f"raw image\n{IMAGE_BITS:,} bits", (IMAGE_BITS, 0.02), xycoords=("data", "axes fraction"),
                    fontsize=7, color="0.35", ha="right", xytext=(-3, 0), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("bits per image (log scale)")
        ax.set_ylabel(_YLABELS[metric])
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_title("PSNR against bits per image")
    axes[1].set_title("SSIM against bits per image")
    axes[1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
