"""The epoch scrubber: slider range, browser-side links, one frame per epoch of one size; the HTML player.

What a real browser shows is checked in tests/test_browser.py.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import struct  # noqa: E402

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

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


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return struct.unpack(">II", png[16:24])


@pytest.fixture(scope="module")
def scrubber():
    histories = {"latent 200": make_history(seed=1), "latent 1000": make_history(seed=2)}
    return widgets.epoch_scrubber(histories, interval_ms=300)


def test_slider_covers_the_epochs_and_every_link_is_in_the_browser(scrubber):
    tree = list(walk(scrubber))
    (play,) = [w for w in tree if isinstance(w, ipywidgets.Play)]
    (slider,) = [w for w in tree if isinstance(w, ipywidgets.IntSlider)]
    (stack,) = [w for w in tree if isinstance(w, ipywidgets.Stack)]
    assert (slider.min, slider.max, slider.value) == (1, 3, 1)
    assert (play.min, play.max, play.interval) == (1, 3, 300)
    # jslink: Play moves the slider and the slider picks the picture with no round trip to the kernel,
    # so an exported page (no kernel) switches pictures too
    play_link, stack_link = scrubber.links
    for link in scrubber.links:
        assert isinstance(link, ipywidgets.widgets.widget_link.Link)
    assert play_link.source == (play, "value") and play_link.target == (slider, "value")
    assert stack_link.source == (slider, "value") and stack_link.target == (stack, "selected_index")
    # child e of the stack is epoch e, so the slider's value is the index; child 0 is a placeholder
    assert stack.selected_index == slider.value == 1
    assert stack.children[1:] == tuple(scrubber.images) and len(scrubber.images) == 3
    assert not isinstance(stack.children[0], ipywidgets.Image)
    assert plt.get_fignums() == []  # every rendered figure was closed


def test_no_python_callback_swaps_the_picture(scrubber):
    # what a page without a kernel sees: moving the slider in Python changes no image
    before = [bytes(image.value) for image in scrubber.images]
    try:
        scrubber.slider.value = 3
        assert [bytes(image.value) for image in scrubber.images] == before
        assert scrubber.stack.selected_index == 1  # only the browser-side link moves it
    finally:
        scrubber.slider.value = 1


def test_every_epoch_is_its_own_png_of_one_size(scrubber):
    assert len(scrubber.frames) == 3 and len(set(scrubber.frames)) == 3
    assert [bytes(image.value) for image in scrubber.images] == scrubber.frames
    assert len({png_size(frame) for frame in scrubber.frames}) == 1


def test_pictures_stay_put_however_long_the_titles():
    # the same reconstructions every epoch, and val loss logged for some epochs only: only the titles
    # differ, so every pixel below the title must be the same in every frame (nothing jumps)
    history = make_history(epochs=4, seed=3)
    history.reconstructions = [history.reconstructions[0]] * 4
    history.val_epoch_loss = history.val_epoch_loss[:2]
    frames = widgets.epoch_frames({"model": history}, show_names=False)
    assert len({png_size(frame) for frame in frames}) == 1
    pixels = [np.asarray(Image.open(io.BytesIO(frame))) for frame in frames]
    changed_rows = np.nonzero(np.any(np.stack(pixels) != pixels[0], axis=(0, 2, 3)))[0]
    assert changed_rows.size and changed_rows.max() < 0.2 * pixels[0].shape[0]  # the title band only


def test_more_models_stack_downwards_not_sideways():
    # ten exemplars, as in the notebooks: the pictures, not the titles, set the width
    one = widgets.epoch_frames({"latent 200": make_history(epochs=1, k=10, seed=1)}, show_names=True)
    two = widgets.epoch_frames({"latent 200": make_history(epochs=1, k=10, seed=1),
                                "latent 1000": make_history(epochs=1, k=10, seed=2)}, show_names=True)
    (w1, h1), (w2, h2) = png_size(one[0]), png_size(two[0])
    assert w2 == w1 and h2 > 1.8 * h1
    assert w1 <= 800  # fits a 1280-px JupyterLab with its side bar open


def test_single_history_and_bad_arguments():
    single = widgets.epoch_scrubber(make_history(epochs=2))
    assert single.slider.max == 2 and len(single.images) == 2
    with pytest.raises(ValueError, match="same number of epochs"):
        widgets.epoch_scrubber({"a": make_history(epochs=2), "b": make_history(epochs=3)})
    with pytest.raises(ValueError, match="interval_ms"):
        widgets.epoch_scrubber(make_history(), interval_ms=0)


def test_animation_html_is_self_contained_with_one_frame_per_epoch():
    histories = {"a": make_history(epochs=3), "b": make_history(epochs=3, seed=4)}
    html = widgets.animation_html(histories, interval_ms=400)
    assert isinstance(html, str) and "<script" in html
    (frames,) = re.findall(r"var frames = (\[.*?\]);", html)
    frames = json.loads(frames)
    assert frames == [base64.b64encode(f).decode() for f in widgets.epoch_frames(histories, show_names=True)]
    assert len({png_size(base64.b64decode(f)) for f in frames}) == 1
    # nothing to fetch: no URLs, no icon font; the buttons say what they do
    assert "http" not in html and "font-awesome" not in html and "fa-" not in html
    for label in ("play", "back", "next"):
        assert re.search(rf"<button[^>]*>[^<]*{label}[^<]*</button>", html)
    assert 'max="3"' in html and "400" in html
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="same number of epochs"):
        widgets.animation_html({"a": make_history(epochs=2), "b": make_history(epochs=3)})
