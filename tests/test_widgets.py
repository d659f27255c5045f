"""The epoch scrubber: slider range, linked Play, cached PNGs, models in step; the HTML fallback."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from convae_utils import widgets  # noqa: E402
from convae_utils.history import History  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_history(epochs: int = 3, k: int = 2, seed: int = 0) -> History:
    g = torch.Generator().manual_seed(seed)
    return History(
        batches_per_epoch=2,
        train_batch_loss=list(np.linspace(0.5, 0.1, 2 * epochs)),
        train_epoch_loss=[0.3 / e for e in range(1, epochs + 1)],
        val_epoch_loss=[0.25 / e for e in range(1, epochs + 1)],
        reconstructions=[torch.randint(0, 256, (k, 3, 32, 32), dtype=torch.uint8, generator=g)
                         for _ in range(epochs)],
        exemplars=torch.randint(0, 256, (k, 3, 32, 32), dtype=torch.uint8, generator=g),
        classes=("cat", "dog")[:k],
    )


def walk(widget):
    """Every widget in the tree under ``widget``."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


@pytest.fixture(scope="module")
def scrubber():
    histories = {"latent 200": make_history(seed=1), "latent 1000": make_history(seed=2)}
    return widgets.epoch_scrubber(histories, interval_ms=300)


def test_slider_covers_the_epochs_and_play_is_linked(scrubber):
    tree = list(walk(scrubber))
    (play,) = [w for w in tree if isinstance(w, ipywidgets.Play)]
    (slider,) = [w for w in tree if isinstance(w, ipywidgets.IntSlider)]
    assert (slider.min, slider.max, slider.value) == (1, 3, 1)
    assert (play.min, play.max, play.interval) == (1, 3, 300)
    link = scrubber.link
    # jslink: the browser moves the slider itself, with no round trip through the kernel
    assert isinstance(link, ipywidgets.widgets.widget_link.Link)
    assert link.source == (play, "value") and link.target == (slider, "value")
    assert len([w for w in tree if isinstance(w, ipywidgets.Image)]) == 2
    assert plt.get_fignums() == []  # every rendered figure was closed


def test_frames_are_png_rendered_once_per_epoch(scrubber):
    for frames in scrubber.frames.values():
        assert len(frames) == 3 and all(f.startswith(PNG_SIGNATURE) for f in frames)
        assert len(set(frames)) == 3


def test_moving_the_slider_shows_the_cached_epoch_for_every_model(scrubber):
    try:
        for epoch in (3, 2):
            scrubber.slider.value = epoch
            for name, image in scrubber.images.items():
                assert bytes(image.value) == scrubber.frames[name][epoch - 1]
            assert f"epoch {epoch}" in scrubber.caption.value
    finally:
        scrubber.slider.value = 1


def test_single_history_and_bad_arguments():
    single = widgets.epoch_scrubber(make_history(epochs=2))
    assert single.slider.max == 2 and list(single.images) == ["model"]
    with pytest.raises(ValueError, match="same number of epochs"):
        widgets.epoch_scrubber({"a": make_history(epochs=2), "b": make_history(epochs=3)})
    with pytest.raises(ValueError, match="interval_ms"):
        widgets.epoch_scrubber(make_history(), interval_ms=0)


def test_animation_html_has_one_frame_per_epoch():
    html = widgets.animation_html({"a": make_history(epochs=3), "b": make_history(epochs=3, seed=4)},
                                  interval_ms=400)
    assert isinstance(html, str) and "<script" in html
    frames = re.findall(r'frames\[(\d+)\] = "data:image/png;base64,', html)
    assert sorted(int(i) for i in frames) == [0, 1, 2]
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="same number of epochs"):
        widgets.animation_html({"a": make_history(epochs=2), "b": make_history(epochs=3)})
