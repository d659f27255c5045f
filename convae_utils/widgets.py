"""The epoch scrubber: watch reconstructions sharpen epoch by epoch, and its kernel-free fallback.

Defined in notebook 03 (training). :func:`epoch_scrubber` needs a running kernel; the static
:func:`convae_utils.plotting.reconstruction_strip` and the self-contained :func:`animation_html`
show the same story in a rendered notebook.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation

from .checks import check_int
from .plotting import (CELL_INCHES, as_histories, draw_pair_grid, epoch_title, figure_to_png,
                       model_scale, pair_image, reconstruction_grid)
from .history import History


class EpochScrubber(widgets.VBox):
    """A Play button and an epoch slider over one image per model; PNGs are rendered up front.

    Attributes:
        play, slider: the controls, linked in the browser by ``link`` (``ipywidgets.jslink``).
        images: ``{model name: ipywidgets.Image}``, all driven by the one slider.
        frames: ``{model name: [png bytes of epoch 1, epoch 2, ...]}``, the cache they show.
    """

    def __init__(self, histories: dict[str, History], *, interval_ms: int, show_names: bool):
        epochs = len(next(iter(histories.values())).reconstructions)
        self.frames = {name: _render_epochs(name if show_names else None, history)
                       for name, history in histories.items()}
        self.play = widgets.Play(value=1, min=1, max=epochs, step=1, interval=interval_ms,
                                 description="play")
        self.slider = widgets.IntSlider(value=1, min=1, max=epochs, step=1, description="epoch",
                                        continuous_update=True)
        # the browser moves the slider with Play without a round trip; the slider drives the images
        self.link = widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.images = {name: widgets.Image(value=frames[0], format="png")
                       for name, frames in self.frames.items()}
        self.caption = widgets.Label(value=f"epoch 1 of {epochs}")
        self.slider.observe(self._show, names="value")
        super().__init__([
            widgets.HBox([self.play, self.slider, self.caption]),
            widgets.HBox(list(self.images.values())),
        ])

    def _show(self, change) -> None:
        epoch = change["new"]
        for name, image in self.images.items():
            image.value = self.frames[name][epoch - 1]
        self.caption.value = f"epoch {epoch} of {self.slider.max}"


def _render_epochs(name: str | None, history: History) -> list[bytes]:
    """One PNG per epoch of originals over that epoch's reconstructions."""
    frames = []
    for epoch, recon in enumerate(history.reconstructions, start=1):
        fig = reconstruction_grid(history.exemplars, recon, classes=_classes(history),
                                  title=epoch_title(name, history, epoch))
        try:
            frames.append(figure_to_png(fig))
        finally:
            plt.close(fig)  # pyplot keeps every figure alive until it is closed
    return frames


def _classes(history: History):
    return history.classes if len(history.classes) == len(history.exemplars) else None


def epoch_scrubber(histories: History | dict[str, History], *, interval_ms: int = 700) -> widgets.Widget:
    """Play/slider over epochs 1..E showing each model's originals over that epoch's reconstructions.

    All models move together from one slider; a dict of histories must share the number of epochs.
    """
    check_int("interval_ms", interval_ms, maximum=60_000)
    show_names = isinstance(histories, dict)
    return EpochScrubber(as_histories(histories), interval_ms=interval_ms, show_names=show_names)


def animation_html(histories: History | dict[str, History], interval_ms: int = 700) -> str:
    """A self-contained HTML/JS animation over epochs (``FuncAnimation.to_jshtml``); needs no kernel."""
    check_int("interval_ms", interval_ms, maximum=60_000)
    show_names = isinstance(histories, dict)
    histories = as_histories(histories)
    epochs = len(next(iter(histories.values())).reconstructions)
    k = max(len(h.exemplars) for h in histories.values())
    fig, axes = plt.subplots(1, len(histories), squeeze=False, layout="constrained",
                             figsize=(len(histories) * (CELL_INCHES * k + 1.8), 2 * CELL_INCHES + 1.3))
    panels = []
    for ax, (name, history) in zip(axes[0], histories.items()):
        originals = model_scale(history.exemplars, "exemplars")
        grids = [pair_image(originals, model_scale(r, "reconstructions")) for r in history.reconstructions]
        image = draw_pair_grid(ax, originals, model_scale(history.reconstructions[0]), _classes(history))
        title = ax.set_title(epoch_title(name if show_names else None, history, 1))
        panels.append((name, history, grids, image, title))

    def show(frame: int):
        for name, history, grids, image, title in panels:
            image.set_data(grids[frame])
            title.set_text(epoch_title(name if show_names else None, history, frame + 1))
        return [artist for panel in panels for artist in panel[3:]]

    animation = FuncAnimation(fig, show, frames=epochs, interval=interval_ms, blit=False)
    try:
        return animation.to_jshtml()
    finally:
        plt.close(fig)

