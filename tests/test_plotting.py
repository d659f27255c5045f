"""Plotting helpers: each returns a labelled Figure; image grids are exactly make_grid's output."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from convae_utils import metrics, plotting  # noqa: E402
from convae_utils.images import ImageSet, normalize  # noqa: E402
from convae_utils.history import History  # noqa: E402

CLASSES = ("cat", "dog", "ship")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def pixels(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)


def make_history(epochs: int = 2, k: int = 3, batches: int = 4, seed: int = 0) -> History:
    """A hand-made History: losses falling, random reconstructions of ``k`` exemplars."""
    return History(
        batches_per_epoch=batches,
        train_batch_loss=list(np.linspace(0.5, 0.1, epochs * batches)),
        train_epoch_loss=[0.4 / e for e in range(1, epochs + 1)],
        val_epoch_loss=[0.5 / e for e in range(1, epochs + 1)],
        reconstructions=[pixels(k, seed + e) for e in range(1, epochs + 1)],
        exemplars=pixels(k, seed),
        classes=CLASSES[:k],
    )


def texts(fig: Figure) -> set[str]:
    return {t.get_text() for t in fig.findobj(matplotlib.text.Text)}


def test_class_grid_rows_are_labelled_classes():
    labels = torch.tensor([0, 1, 0, 2, 0, 1, 0])  # "cat" has 4 images, "ship" only 1
    dataset = ImageSet(pixels(7), labels, CLASSES, "tiny")
    fig = plotting.class_grid(dataset, per_class=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes] == list(CLASSES)
    widths = [ax.images[0].get_array().shape[1] for ax in fig.axes]
    assert widths == [2 + 3 * 34, 2 + 2 * 34, 2 + 1 * 34]  # first 3 cats, both dogs, the one ship
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in fig.axes)
    with pytest.raises(ValueError, match="per_class"):
        plotting.class_grid(dataset, per_class=0)


def test_reconstruction_grid_is_make_grid_with_value_range():
    originals = pixels(4)
    recon = torch.zeros(4, 3, 32, 32)  # model scale 0 = mid grey
    recon[0] = 1.7                      # overshoot: must clamp to white, not rescale the grid
    fig = plotting.reconstruction_grid(originals, recon, classes=["a", "b", "c", "d"], title="epoch 1")
    (ax,) = fig.axes
    shown = np.asarray(ax.images[0].get_array())
    expected = make_grid(torch.cat([normalize(originals), recon]), nrow=4, padding=2, normalize=True,
                         value_range=(-1, 1), pad_value=1.0).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(shown, expected)
    assert shown.shape == (2 + 2 * 34, 2 + 4 * 34, 3)
    first_recon = shown[36:68, 2:34]   # row 2, column 1
    second_recon = shown[36:68, 36:68]
    assert np.allclose(first_recon, 1.0) and np.allclose(second_recon, 0.5)
    assert {"a", "b", "c", "d", "original", "reconstruction", "epoch 1"} <= texts(fig)
    # uint8 and float inputs draw the same picture
    again = plotting.reconstruction_grid(normalize(originals), recon)
    np.testing.assert_array_equal(np.asarray(again.axes[0].images[0].get_array()), expected)


def test_reconstruction_grid_rejects_bad_inputs():
    with pytest.raises(ValueError, match="one reconstruction per original"):
        plotting.reconstruction_grid(pixels(3), pixels(2))
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        plotting.reconstruction_grid(pixels(3), torch.zeros(3, 3, 28, 28))
    with pytest.raises(ValueError, match="one class name per image"):
        plotting.reconstruction_grid(pixels(3), pixels(3), classes=["a", "b"])


def test_reconstruction_strip_one_row_per_epoch():
    fig = plotting.reconstruction_strip(make_history(epochs=3))
    assert len(fig.axes) == 4 and all(len(ax.images) == 1 for ax in fig.axes)
    assert [ax.get_ylabel() for ax in fig.axes] == ["original", "epoch 1", "epoch 2", "epoch 3"]
    assert set(CLASSES) <= texts(fig)

    fig = plotting.reconstruction_strip({"latent 200": make_history(), "latent 1000": make_history(seed=5)})
    assert len(fig.axes) == 2 * 3  # (originals + 2 epochs) x 2 models
    assert {"latent 200", "latent 1000"} <= {ax.get_title() for ax in fig.axes}


def test_reconstruction_strip_rejects_mismatched_histories():
    with pytest.raises(ValueError, match="same number of epochs"):
        plotting.reconstruction_strip({"a": make_history(epochs=2), "b": make_history(epochs=3)})
    bare = make_history()
    bare.exemplars = None
    with pytest.raises(ValueError, match="no exemplars"):
        plotting.reconstruction_strip(bare)
    wrong = make_history()
    wrong.reconstructions[1] = pixels(2)
    with pytest.raises(ValueError, match="epoch 2"):
        plotting.reconstruction_strip(wrong)


def test_loss_curves_per_batch_and_per_epoch():
    histories = {"latent 200": make_history(epochs=3, batches=4),
                 "latent 1000": make_history(epochs=3, batches=4)}
    fig = plotting.loss_curves(histories)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 * 3  # per model: batches, epoch means, validation
    xs = [tuple(np.round(line.get_xdata(), 6)) for line in ax.lines]
    assert tuple(np.round(np.arange(1, 13) / 4, 6)) in xs  # batch i ends at (i + 1) / batches_per_epoch
    means = [line for line in ax.lines if line.get_marker() == "o"]
    validation = [line for line in ax.lines if line.get_marker() == "s"]
    assert len(means) == len(validation) == 2
    for line in means:  # each epoch's mean sits in the middle of the batches it averages
        assert tuple(np.round(line.get_xdata(), 6)) == (0.5, 1.5, 2.5)
        assert list(line.get_ydata()) == pytest.approx([0.4 / e for e in (1, 2, 3)])
    for line in validation:  # validation is measured on the model at the end of the epoch
        assert tuple(np.round(line.get_xdata(), 6)) == (1.0, 2.0, 3.0)
    assert ax.get_xlabel() == "epochs completed"
    legend = {t.get_text() for t in ax.get_legend().texts}
    assert {"latent 200", "latent 1000", "train, epoch mean (mid-epoch)", "validation (end of epoch)"} <= legend

    single = plotting.loss_curves(make_history(), val=False, log_y=True).axes[0]
    assert len(single.lines) == 2 and single.get_yscale() == "log"


def _steps():
    from convae_utils import training, vae
    from convae_utils.codecs import learned

    return {"mse": (training.mse_step, "MSE loss ([-1, 1] scale)"),
            "codec": (learned.rate_distortion_step(0.01), "loss: MSE + lambda x bpp (rate_distortion)"),
            "vae": (vae.vae_step(0.5), "loss (vae_step(beta=0.5))"),
            "classifier": (training.classification_step, "cross-entropy loss"),
            "denoiser": (training.denoising_step(lambda batch: batch), "loss (denoising)")}


@pytest.mark.parametrize("kind", ["mse", "codec", "vae", "classifier", "denoiser"])
def test_loss_curves_name_the_loss_the_run_s_step_computes(kind):
    from convae_utils.training import step_name

    step, expected = _steps()[kind]
    history = make_history()
    history.meta["step"] = step_name(step)  # as training.fit records it
    ax = plotting.loss_curves(history).axes[0]
    assert ax.get_ylabel() == expected  # was "MSE loss ([-1, 1] scale)" for every run
    assert plotting.loss_label(step) == expected
    plt.close(ax.figure)


def test_loss_curves_without_one_step_say_training_loss_and_take_a_step_s_own_label():
    assert plotting.loss_curves(make_history()).axes[0].get_ylabel() == "training loss"  # no step recorded
    mixed = {name: make_history() for name in ("mse", "codec")}
    for name, history in mixed.items():
        history.meta["step"] = plotting.step_name(_steps()[name][0])
    assert plotting.loss_curves(mixed).axes[0].get_ylabel() == "training loss"  # two objectives, one axis
    assert plotting.loss_curves(mixed, y_label="my loss", log_y=True).axes[0].get_ylabel() == "my loss, log scale"

    def step(model, batch):
        raise AssertionError("not called")

    step.loss_label = "Charbonnier loss"
    assert plotting.loss_label(step) == "Charbonnier loss"
    plt.close("all")


def test_run_figures_label_the_loss_with_the_run_s_step(tmp_path, monkeypatch):
    from convae_utils import runs
    from convae_utils.codecs import learned
    from convae_utils.training import step_name

    history = make_history()
    history.meta["step"] = step_name(learned.rate_distortion_step(0.01))
    saved, save = {}, plotting.save_figure

    def spy(fig, path, *args, **kwargs):
        saved[Path(path).name] = fig.axes[0].get_ylabel()
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(plotting, "save_figure", spy)
    runs.save_run_figures(tmp_path, history, label="codec, latent 64")
    assert saved["loss_curves.png"] == "loss: MSE + lambda x bpp (rate_distortion)"
    assert (tmp_path / "loss_curves.png").stat().st_size > 0


def test_loss_curves_infers_batches_per_epoch_and_rejects_empty():
    history = make_history(epochs=2, batches=5)
    history.batches_per_epoch = 0
    ax = plotting.loss_curves(history).axes[0]
    assert max(line.get_xdata().max() for line in ax.lines) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no losses"):
        plotting.loss_curves(History())


def test_pixel_histograms_before_and_after():
    images = pixels(5)
    fig = plotting.pixel_histograms(images)
    before, after = fig.axes
    assert "0..255" in before.get_title() and "[-1, 1]" in after.get_title()
    assert before.get_xlim()[1] > 200 and after.get_xlim()[1] < 1.5
    assert {"R", "G", "B"} <= texts(fig)
    with pytest.raises(ValueError, match="uint8"):
        plotting.pixel_histograms(normalize(images))


def test_metrics_by_class_from_compare_models():
    def table(offset: float) -> pd.DataFrame:
        labels = [0, 1, 2, 0]
        classes = pd.Categorical.from_codes(labels, categories=list(CLASSES))
        return pd.DataFrame({"label": labels, "class": classes,
                             "mse": 0.01, "psnr": [20 + offset, 21, 22, 23], "ssim": 0.5})
    wide = metrics.compare_models({"latent 200": table(0), "latent 1000": table(4)})
    fig = plotting.metrics_by_class(wide, "psnr")
    (ax,) = fig.axes
    assert len(ax.containers) == 2  # one bar group colour per model
    heights = [bar.get_height() for bar in ax.containers[0]]
    assert heights == pytest.approx(wide[("latent 200", "psnr")].tolist())  # all, cat, dog, ship
    assert [t.get_text() for t in ax.get_xticklabels()] == ["all", *CLASSES]
    assert "PSNR" in ax.get_ylabel()
    assert {"latent 200", "latent 1000"} <= {t.get_text() for t in ax.get_legend().texts}
    # the tidy per-image form gives the same bar heights, without an "all" group
    tidy_ax = plotting.metrics_by_class(metrics.long_table({"latent 200": table(0)}), "psnr").axes[0]
    assert [b.get_height() for b in tidy_ax.containers[0]] == pytest.approx(heights[1:])
    with pytest.raises(ValueError, match="metric"):
        plotting.metrics_by_class(wide, "accuracy")


def test_png_bytes_and_atomic_save(tmp_path):
    fig = plotting.reconstruction_grid(pixels(2), pixels(2))
    assert plotting.figure_to_png(fig).startswith(PNG_SIGNATURE)
    target = tmp_path / "figures" / "nested" / "grid.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    assert plotting.save_figure(fig, target) == target
    assert target.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in target.parent.iterdir()] == ["grid.png"]  # no temporary file left behind
    svg = plotting.save_figure(fig, tmp_path / "new" / "grid.svg")
    assert b"<svg" in svg.read_bytes()[:500]


def test_labelled_grid_places_one_label_per_column_and_row():
    from convae_utils.plotting import labelled_grid

    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    fig = labelled_grid(images, 3, column_labels=list("abc"), row_labels=["top", "bottom"], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["top", "bottom"]
    assert ax.images[0].get_array().shape[:2] == (2 * 34 + 2, 3 * 34 + 2)
    with pytest.raises(ValueError, match="expected 3 column_labels, got 2"):
        labelled_grid(images, 3, column_labels=["a", "b"])
    plt.close("all")


def test_retrieval_gallery_frames_each_neighbour_by_whether_it_shares_the_query_class():
    from matplotlib.colors import to_hex
    from matplotlib.patches import Rectangle

    query_labels = torch.tensor([0, 2])
    neighbour_labels = {"code space": torch.tensor([[0, 1, 0], [2, 2, 2]]),  # 5 of 6 share the query's class
                        "pixel space": torch.tensor([[1, 1], [0, 2]])}       # 1 of 4
    neighbours = {"code space": pixels(6).view(2, 3, 3, 32, 32), "pixel space": pixels(4, 1).view(2, 2, 3, 32, 32)}
    fig = plotting.retrieval_gallery(pixels(2), neighbours, query_labels=query_labels,
                                     neighbour_labels=neighbour_labels, classes=CLASSES)
    query_ax, code_ax, pixel_ax = fig.axes
    assert [t.get_text() for t in query_ax.get_yticklabels()] == ["cat", "ship"]
    assert "same class: 5/6" in code_ax.get_title() and "same class: 1/4" in pixel_ax.get_title()

    def frames(ax):  # (row, column) of each frame's cell -> its colour
        return {(round((p.get_y() + 0.5 - plotting.PAD) / plotting.TILE), round((p.get_x() + 0.5 - plotting.PAD) / plotting.TILE)):
                to_hex(p.get_edgecolor()) for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()}
    same, other = plotting.SAME_CLASS_COLOUR.lower(), plotting.OTHER_CLASS_COLOUR.lower()
    assert frames(code_ax) == {(0, 0): same, (0, 1): other, (0, 2): same, (1, 0): same, (1, 1): same, (1, 2): same}
    assert frames(pixel_ax) == {(0, 0): other, (0, 1): other, (1, 0): other, (1, 1): same}
    assert {"same class as the query", "another class"} <= {t.get_text() for t in fig.legends[0].texts}
    # class names compare as well as indices; without neighbour labels there are no frames
    named = plotting.retrieval_gallery(pixels(2), {"code space": neighbours["code space"]}, query_labels=["cat", "ship"],
                                       neighbour_labels={"code space": [["cat", "dog", "cat"], ["ship"] * 3]})
    assert frames(named.axes[1]) == frames(code_ax)
    assert not frames(plotting.retrieval_gallery(pixels(2), neighbours, query_labels=query_labels).axes[1])


@pytest.mark.parametrize("labels, query_labels, message", [
    ({"code space": torch.zeros(2, 4, dtype=torch.long)}, [0, 1], r"shape \(2, 3\).*got shape \(2, 4\)"),
    ({"code space": torch.zeros(2, 3, dtype=torch.long), "graph space": torch.zeros(2, 3, dtype=torch.long)},
     [0, 1], r"one \(Q, k\) entry per panel of neighbours \['code space'\], got \['code space', 'graph space'\]"),
    ({"code space": torch.zeros(2, 3, dtype=torch.long)}, None, "need query_labels too"),
    ({"code space": torch.zeros(2, 3, dtype=torch.long)}, ["cat", "dog"], "both class indices or both class names"),
    ({"code space": torch.full((2, 3), 7)}, [0, 1], r"indices 0..2 \(classes has 3 names\), got indices 7..7"),
])
def test_retrieval_gallery_rejects_labels_that_do_not_fit(labels, query_labels, message):
    classes = CLASSES if "classes has" in message else None
    with pytest.raises(ValueError, match=message):
        plotting.retrieval_gallery(pixels(2), {"code space": pixels(6).view(2, 3, 3, 32, 32)},
                                   query_labels=query_labels, neighbour_labels=labels, classes=classes)


def realistic_rate_distortion_table() -> pd.DataFrame:
    """Curves as notebook 06 draws them (bits 100..32,000, PSNR 18..38 dB), crowded where they cross."""
    rows = []
    for method, settings, bits, psnr, ssim in [
        ("PCA (float32)", [f"k={k}" for k in (25, 50, 100, 200, 500, 1000)], [800, 1600, 3200, 6400, 16000, 32000],
         [22.5, 24.3, 26.4, 28.9, 33.1, 37.4], [0.62, 0.68, 0.76, 0.84, 0.92, 0.96]),
        ("PCA (8-bit)", [f"k={k}" for k in (25, 50, 100, 200, 500, 1000)], [200, 400, 800, 1600, 4000, 8000],
         [22.4, 24.2, 26.3, 28.7, 32.6, 35.9], [0.61, 0.68, 0.76, 0.83, 0.91, 0.95]),
        ("PCA (4-bit)", [f"k={k}" for k in (25, 50, 100, 200, 500, 1000)], [100, 200, 400, 800, 2000, 4000],
         [21.8, 23.3, 24.9, 26.4, 28.2, 29.0], [0.58, 0.64, 0.70, 0.76, 0.83, 0.86]),
        ("JPEG (whole file)", [f"q={q}" for q in (5, 10, 20, 50, 75, 90)], [5400, 5500, 5700, 6100, 6600, 7200],
         [23.8, 26.7, 29.0, 31.7, 33.6, 36.3], [0.65, 0.77, 0.84, 0.90, 0.93, 0.96]),
        ("JPEG (scan data only)", [f"q={q}" for q in (5, 10, 20, 50, 75, 90)], [230, 340, 520, 920, 1380, 2300],
         [23.8, 26.7, 29.0, 31.7, 33.6, 36.3], [0.65, 0.77, 0.84, 0.90, 0.93, 0.96]),
        ("bicubic", ["8x8", "12x12", "16x16", "24x24"], [1536, 3456, 6144, 13824],
         [25.8, 29.0, 32.0, 37.9], [0.77, 0.88, 0.93, 0.98]),
        ("autoencoder (float32)", [f"latent {k}" for k in (25, 50, 100, 200, 500, 1000)],
         [800, 1600, 3200, 6400, 16000, 32000], [20.5, 21.2, 22.2, 23.5, 26.1, 29.1], [0.50, 0.56, 0.64, 0.71, 0.80, 0.84]),
        ("autoencoder (8-bit)", [f"latent {k}" for k in (25, 50, 100, 200, 500, 1000)],
         [200, 400, 800, 1600, 4000, 8000], [20.4, 21.2, 22.1, 23.3, 25.6, 27.7], [0.49, 0.56, 0.64, 0.71, 0.79, 0.84]),
    ]:
        rows += [{"method": method, "setting": s, "bits_per_image": b, "psnr_of_mean_mse": p, "mean_psnr": p + 0.5,
                  "ssim": q} for s, b, p, q in zip(settings, bits, psnr, ssim)]
    return pd.DataFrame(rows)


def test_rate_distortion_labels_never_overlap_and_the_important_ones_stay():
    from itertools import combinations

    table = realistic_rate_distortion_table()
    marks = table[(table["method"] == "autoencoder (float32)") & table["setting"].isin(["latent 200", "latent 1000"])]
    fig = plotting.rate_distortion_plot(table, marks.assign(method="the article's models"))
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        boxes = {t: t.get_window_extent() for t in ax.texts}
        crossings = [(a.get_text(), b.get_text()) for a, b in combinations(boxes, 2) if boxes[a].overlaps(boxes[b])]
        assert not crossings, f"{ax.get_title()}: labels overlap: {crossings}"
        frame = ax.get_window_extent()
        assert all(frame.x0 <= box.x0 and box.x1 <= frame.x1 for box in boxes.values())
        shown = [t.get_text() for t in ax.texts]
        assert len(shown) >= 0.7 * len(table)  # most points keep their label
        bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
        assert sorted(bold) == ["latent 1000", "latent 200"]  # the marks are always labelled
        at = [(t.get_text(), tuple(map(float, t.xy))) for t in ax.texts if hasattr(t, "xy")]
        assert len(at) == len(set(at))  # a point under a star is labelled once, by the star
        assert {"k=25", "k=1000", "q=5", "q=90", "8x8", "24x24"} <= set(shown)  # and the curves' ends
    unlabelled = plotting.rate_distortion_plot(table, label_points=False).axes[0]
    assert [t.get_text() for t in unlabelled.texts] == [f"raw image\n{24576:,} bits"]


def test_rate_distortion_axes_show_bits_per_pixel_beside_bits_per_image():
    fig = plotting.rate_distortion_plot(realistic_rate_distortion_table(), label_points=False)
    for ax in fig.axes[:2]:
        (top,) = [child for child in ax.child_axes if child.get_xlabel().startswith("bits per pixel")]
        fig.canvas.draw()
        # the top axis maps 1,024 bits per image (one bit for each of a 32 x 32 image's pixels) to 1 bpp
        ticks = {round(float(t), 6) for t in top.get_xticks()}
        assert 1.0 in ticks or 0.1 in ticks
        lo, hi = ax.get_xlim()
        assert top.get_xlim() == pytest.approx((lo / 1024, hi / 1024))
    plt.close(fig)


def test_roc_curves_keep_the_coin_toss_line_visible_over_a_chance_curve():
    from convae_utils.anomaly import roc

    generator = torch.Generator().manual_seed(0)
    perfect = roc(torch.rand(200, generator=generator), torch.rand(200, generator=generator) + 2)
    chance = roc(torch.rand(2000, generator=generator), torch.rand(2000, generator=generator))
    fig = plotting.roc_curves({"noise": perfect, "upside down": chance})
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    diagonal = lines["coin toss (0.50)"]
    assert diagonal.get_zorder() > max(line.get_zorder() for name, line in lines.items() if name != diagonal.get_label())
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "noise (AUROC 1.00)", f"upside down (AUROC {chance.auroc:.2f})", "coin toss (0.50)"]
    # a perfect detector runs along the top and left edges: the axes leave room to see it
    assert ax.get_xlim()[0] < 0 and ax.get_ylim()[1] > 1
    plt.close(fig)


def test_loss_curves_of_one_model_draw_the_legend_in_its_colour():
    ax = plotting.loss_curves(make_history()).axes[0]
    curve_colours = {matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()}
    legend_colours = {matplotlib.colors.to_hex(handle.get_color()) for handle in ax.get_legend().legend_handles}
    assert len(legend_colours) == 1 and legend_colours <= curve_colours  # not a grey the plot never uses
    plt.close(ax.figure)


def test_a_control_that_coincides_with_its_trained_model_stays_visible_when_dashed():
    table = realistic_rate_distortion_table()
    same = table[table["method"] == "PCA (float32)"].assign(method="PCA, untrained control")  # drawn after, exactly on top
    table = pd.concat([table, same], ignore_index=True)
    fig = plotting.rate_distortion_plot(table, label_points=False, dashed=["PCA, untrained control"])
    for ax in fig.axes[:2]:
        lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        control, trained = lines["PCA, untrained control"], lines["PCA (float32)"]
        assert control.get_linestyle() == "--" and control.get_markerfacecolor() == "none"
        assert trained.get_linestyle() == "-" and control.get_markersize() > trained.get_markersize()
    with pytest.raises(ValueError, match="dashed names methods the table does not have: \\['no such'\\]"):
        plotting.rate_distortion_plot(table, dashed=["no such"])
