"""The epoch scrubber: watch reconstructions sharpen epoch by epoch, and its widget-free twin.

Defined in notebook 03 (training). :func:`epoch_scrubber` is an ipywidget whose pictures switch in
the browser: it works live and in exported HTML, but a page needs the widget library (loaded from a
CDN by nbconvert's HTML) to show it. :func:`animation_html` shows the same frames with plain HTML and
JavaScript, which works with no kernel and no network; :func:`convae_utils.plotting.reconstruction_strip`
is the static picture of the same story.
"""

from __future__ import annotations

import base64
import html
import json
import struct
import uuid

import matplotlib.pyplot as plt

try:  # the player (animation_html) and the static strip need no widget library; only the slider does
    import ipywidgets as widgets
except ImportError:
    widgets = None

from .checks import check_int
from .plotting import (CELL_INCHES, as_histories, draw_pair_grid, epoch_title, figure_to_png,
                       model_scale, pair_image)
from .history import History


FRAME_DPI = 100  # pixels per inch of every frame: a frame is FRAME_DPI * its figure size, always the same
WIDGETS_NEEDED = "8.0"  # ipywidgets 8 brought widgets.Stack, which the scrubber is made of (pyproject.toml says so too)
KEYS_CLASS = "convae-keys-stay"  # a container whose focused controls keep their keys (see KEYS_SCRIPT)

# JupyterLab turns arrow keys into notebook commands (select the cell above/below) when they bubble up
# from a widget; a focused slider then seems to ignore the keyboard. Keys pressed inside a container
# of class KEYS_CLASS stop at it, after the control under them has used them. ``data-lm-suppress-
# shortcuts`` asks Lumino (JupyterLab's toolkit) for the same where it knows that attribute.
KEYS_SCRIPT = """(function () {
  var KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown", " "];
  function keep(el) {
    if (el.getAttribute("data-convae-keys")) { return; }
    el.setAttribute("data-convae-keys", "1");
    el.setAttribute("data-lm-suppress-shortcuts", "true");
    el.addEventListener("keydown", function (event) {
      if (KEYS.indexOf(event.key) >= 0) { event.stopPropagation(); }
    });
  }
  function scan() { document.querySelectorAll(".%s").forEach(keep); }
  scan();
  if (!window.__convaeKeysObserver) {
    var pending = false;
    window.__convaeKeysObserver = new MutationObserver(function () {
      if (pending) { return; }
      pending = true;
      setTimeout(function () { pending = false; scan(); }, 50);
    });
    window.__convaeKeysObserver.observe(document.body, {childList: true, subtree: true});
  }
})();""" % KEYS_CLASS


def widget_library_problem() -> str | None:
    """Why the epoch slider cannot be built in this kernel (ipywidgets missing or older than 8), else None."""
    if widgets is None:
        return "ipywidgets is not installed"
    if not hasattr(widgets, "Stack"):
        return f"ipywidgets {getattr(widgets, '__version__', '?')} is installed"
    return None


class WidgetNote:
    """One line shown where a widget would be: plain text in a terminal, a paragraph in a notebook."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f'<p class="convae-widget-note" style="font-style:italic">{html.escape(self.text)}</p>'


class EpochScrubber(widgets.VBox if widgets is not None else object):
    """A Play button and an epoch slider over one picture per epoch, switched in the browser.

    Every epoch's picture is in the widget from the start (a ``widgets.Stack`` of ``widgets.Image``),
    and the controls are linked by ``widgets.jslink``: Play moves the slider, the slider picks the
    picture. No Python callback is involved, so the scrubber works the same live in JupyterLab and in
    an exported HTML page that stores the widget state (``python -m convae_utils series``).

    Attributes:
        play, slider: the controls; the slider runs over epochs 1..E.
        stack: the pictures; child 0 is an empty placeholder so that child ``e`` is epoch ``e``.
        images: ``[ipywidgets.Image of epoch 1, epoch 2, ...]``, the stack's children after the placeholder.
        frames: ``[png bytes of epoch 1, epoch 2, ...]``, all the same pixel size (see :func:`epoch_frames`).
        links: ``(play -> slider, slider -> stack)``, both ``ipywidgets.jslink``.
    """

    def __init__(self, histories: dict[str, History], *, interval_ms: int, show_names: bool):
        self.frames = epoch_frames(histories, show_names=show_names)
        epochs = len(self.frames)
        self.play = widgets.Play(value=1, min=1, max=epochs, step=1, interval=interval_ms,
                                 description="play")
        self.slider = widgets.IntSlider(value=1, min=1, max=epochs, step=1, description="epoch",
                                        continuous_update=True)
        self.images = [widgets.Image(value=frame, format="png",
                                     layout=widgets.Layout(max_width="100%", height="auto"))
                       for frame in self.frames]
        self.stack = widgets.Stack([widgets.HTML(""), *self.images], selected_index=1)
        self.links = (widgets.jslink((self.play, "value"), (self.slider, "value")),
                      widgets.jslink((self.slider, "value"), (self.stack, "selected_index")))
        controls = widgets.HBox([self.play, self.slider])
        controls.add_class(KEYS_CLASS)  # arrow keys on the focused slider move it, not JupyterLab's cell selection
        super().__init__([controls, self.stack])

    def _ipython_display_(self):
        """Show the widget after the script that keeps its keys (:data:`KEYS_SCRIPT`) in the page."""
        from IPython.display import Javascript, display

        display(Javascript(KEYS_SCRIPT))
        display(self._repr_mimebundle_(), raw=True)


def epoch_frames(histories: dict[str, History], *, show_names: bool) -> list[bytes]:
    """One PNG per epoch: each model's originals over that epoch's reconstructions, models one under another.

    Every frame comes from one figure whose layout is fixed once (with room for the longest title)
    and then reused, so all frames have the same pixel size and the pictures do not move between
    epochs. The width follows the number of exemplars (about 7.4 in, 740 px, for 10; wider only if a
    title needs it), so two models never make the picture wider than one. Inputs are checked by :func:`as_histories`.
    """
    epochs = len(next(iter(histories.values())).reconstructions)
    k = max(len(h.exemplars) for h in histories.values())
    labelled = any(_classes(h) is not None for h in histories.values())
    row_inches = 2 * CELL_INCHES + 0.35 + 0.6 * labelled
    fig, axes = plt.subplots(len(histories), 1, squeeze=False, layout="constrained",
                             figsize=(CELL_INCHES * k + 1.9, len(histories) * row_inches + 0.1))
    panels = []
    for ax, (name, history) in zip(axes[:, 0], histories.items()):
        originals = model_scale(history.exemplars, "exemplars")
        grids = [pair_image(originals, model_scale(r, "reconstructions")) for r in history.reconstructions]
        titles = [epoch_title(name if show_names else None, history, e) for e in range(1, epochs + 1)]
        image = draw_pair_grid(ax, originals, model_scale(history.reconstructions[0], "reconstructions"),
                               _classes(history))
        title = ax.set_title(max(titles, key=len))  # lay out for the longest title ...
        panels.append((grids, titles, image, title))
    try:
        for _ in range(3):  # few exemplars: the longest title, not the pictures, sets the width
            fig.canvas.draw()
            boxes = [title.get_window_extent() for *_, title in panels]
            overflow = max(0.0, -min(b.x0 for b in boxes)) + max(0.0, max(b.x1 for b in boxes) - fig.bbox.width)
            if overflow <= 0:
                break
            fig.set_figwidth(fig.get_figwidth() + (overflow + 10) / fig.dpi)
        fig.set_layout_engine("none")  # ... then keep that layout for every frame
        _room_above_titles(fig, panels, epochs)
        frames = []
        for epoch in range(epochs):
            for grids, titles, image, title in panels:
                image.set_data(grids[epoch])
                title.set_text(titles[epoch])
            frames.append(figure_to_png(fig, dpi=FRAME_DPI, tight=False))
        return frames
    finally:
        plt.close(fig)  # pyplot keeps every figure alive until it is closed


TITLE_MARGIN_PX = 10  # clear pixels above the highest title of any epoch: a frame's title never touches its top


def _room_above_titles(fig, panels, epochs: int) -> None:
    """Grow the figure at the top until every epoch's title has :data:`TITLE_MARGIN_PX` clear above it.

    The layout was made for the longest title; another epoch's may reach higher (taller glyphs), and
    constrained layout leaves only a few pixels, so a title could touch or lose the top of the frame.
    Axes keep their pixel positions (measured from the bottom); only room is added above.
    """
    highest = 0.0
    for epoch in range(epochs):
        for grids, titles, image, title in panels:
            title.set_text(titles[epoch])
        fig.canvas.draw()
        highest = max(highest, *(title.get_window_extent().y1 for *_, title in panels))
    missing = highest + TITLE_MARGIN_PX * fig.dpi / FRAME_DPI - fig.bbox.height
    if missing <= 0:
        return
    old_height = fig.get_figheight()
    positions = [(ax, ax.get_position()) for ax in fig.axes]
    fig.set_figheight(old_height + missing / fig.dpi)
    scale = old_height / fig.get_figheight()
    for ax, box in positions:
        ax.set_position([box.x0, box.y0 * scale, box.width, box.height * scale])


def _classes(history: History):
    return history.classes if len(history.classes) == len(history.exemplars) else None


def epoch_scrubber(histories: History | dict[str, History], *, interval_ms: int = 700) -> widgets.Widget:
    """Play/slider over epochs 1..E showing each model's originals over that epoch's reconstructions.

    All models move together from one slider, shown one under another in one picture per epoch; a
    dict of histories must share the number of epochs. The pictures switch in the browser (see
    :class:`EpochScrubber`). Raises ValueError for bad histories or an ``interval_ms`` outside
    1..60000. Without ipywidgets 8 (older hosted notebooks have 7, which lacks ``Stack``) it returns
    a :class:`WidgetNote`, one line saying the version needed, so that "Run all" goes on to the strip
    and the player. Introduced in notebook 03, used for two models in notebook 04.
    """
    check_int("interval_ms", interval_ms, maximum=60_000)
    show_names = isinstance(histories, dict)
    histories = as_histories(histories)
    problem = widget_library_problem()
    if problem is not None:  # an older hosted notebook: say so in one line, and let "Run all" go on
        return WidgetNote(f"The epoch slider needs ipywidgets {WIDGETS_NEEDED} or newer ({problem}): "
                          f'pip install "ipywidgets>={WIDGETS_NEEDED}", then restart the kernel. The strip and '
                          "the player below show the same epochs without it.")
    return EpochScrubber(histories, interval_ms=interval_ms, show_names=show_names)


_CONTROLS = """\
<div id="{uid}" class="convae-animation" style="width:{width}px;max-width:100%;font-family:sans-serif">
<img src="data:image/png;base64,{first}" width="{width}" height="{height}" alt="{alt}"
     style="display:block;max-width:100%;height:auto">
<div style="display:flex;align-items:center;gap:0.4em;margin-top:0.3em">
<button type="button" data-step="-1" title="previous epoch" disabled>&#9664; back</button>
<button type="button" data-play title="play or pause">&#9654; play</button>
<button type="button" data-step="1" title="next epoch">next &#9654;</button>
<input type="range" min="1" max="{epochs}" value="1" step="1" aria-label="epoch" style="flex:1 1 0;min-width:3em">
<span data-label style="font-variant-numeric:tabular-nums;white-space:nowrap">epoch 1 of {epochs}</span>
</div>
</div>
<script>
(function () {{
  var root = document.getElementById("{uid}");
  if (!root) {{ return; }}
  var frames = {frames};
  var img = root.querySelector("img"), range = root.querySelector("input[type=range]");
  var label = root.querySelector("[data-label]"), play = root.querySelector("[data-play]");
  var timer = null, last = frames.length;
  var back = root.querySelector("[data-step='-1']"), next = root.querySelector("[data-step='1']");
  function show(epoch) {{
    epoch = Math.min(Math.max(epoch, 1), last);  // the ends stop: epoch 1 has no "back" to the last epoch
    img.src = "data:image/png;base64," + frames[epoch - 1];
    range.value = String(epoch);
    label.textContent = "epoch " + epoch + " of " + last;
    back.disabled = epoch === 1;
    next.disabled = epoch === last;
    return epoch;
  }}
  function stop() {{ clearInterval(timer); timer = null; play.innerHTML = "&#9654; play"; }}
  range.addEventListener("input", function () {{ stop(); show(Number(range.value)); }});
  root.querySelectorAll("[data-step]").forEach(function (button) {{
    button.addEventListener("click", function () {{
      stop(); show(Number(range.value) + Number(button.getAttribute("data-step")));
    }});
  }});
  play.addEventListener("click", function () {{
    if (timer !== null) {{ stop(); return; }}
    if (Number(range.value) === last) {{ show(1); }}  // from the end, the film starts again at epoch 1
    play.innerHTML = "&#10074;&#10074; pause";
    // the epoch on show stays for one interval before the next: Play does not jump ahead at once
    timer = setInterval(function () {{ if (show(Number(range.value) + 1) === last) {{ stop(); }} }}, {interval_ms});
  }});
  // keys on a focused control belong to it: JupyterLab would take arrow keys for its cell selection
  root.addEventListener("keydown", function (event) {{
    if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown", " "]
        .indexOf(event.key) >= 0) {{ event.stopPropagation(); }}
  }});
  show(1);
}})();
</script>
"""


def animation_html(histories: History | dict[str, History], interval_ms: int = 700) -> str:
    """A self-contained HTML/JS player over epochs: needs no kernel, no widget library and no network.

    The same pictures as :func:`epoch_scrubber` (:func:`epoch_frames`, all one size), as base64 PNGs
    in the page, with a range input, back/next buttons and play/pause (text labels, no icon fonts).
    Show it with ``IPython.display.HTML``; it plays in JupyterLab and in exported HTML, offline too.
    Raises ValueError like :func:`epoch_scrubber`. Introduced in notebook 03.
    """
    check_int("interval_ms", interval_ms, maximum=60_000)
    show_names = isinstance(histories, dict)
    frames = epoch_frames(as_histories(histories), show_names=show_names)
    encoded = [base64.b64encode(frame).decode("ascii") for frame in frames]
    width, height = struct.unpack(">II", frames[0][16:24])  # the PNG header's IHDR: width, height
    return _CONTROLS.format(uid=f"convae-animation-{uuid.uuid4().hex}", first=encoded[0], width=width,
                            height=height, epochs=len(frames), frames=json.dumps(encoded),
                            interval_ms=interval_ms,
                            alt="originals over their reconstructions, epoch by epoch")
