"""Notebook 03's exported HTML in a real browser: the pictures switch, and the page holds up offline.

Executes notebooks/03_training.ipynb (smoke profile, stand-in data, runs in a temporary folder) with
``series.execute``, as ``make run`` does, and opens the HTML in headless Chromium driven by
Playwright (Debian's ``chromium`` package; ``.ci/run`` installs it). Skipped, saying why, only where
Playwright or Chromium is missing.

Offline, every request that is not a file:// is refused. The widget library (``@jupyter-widgets/
html-manager``) comes from a CDN, so offline the widget cannot render: the test proves that the page
says so, raises no script error, and that the self-contained player switches pictures. The widget
itself is tried when ``$CONVAE_WIDGETS_JS`` names a folder holding npm's html-manager 1.x and
requirejs packages (``.ci/run`` puts them there with ``npm pack``): the CDN's answers are served
from that folder, as the CDN would, and moving the slider must change the picture.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from convae_utils.series import WIDGETS_OFFLINE_NOTE, execute, notebook_html

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CONVAE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("CONVAE_BROWSER_SHOTS", "")) if os.environ.get("CONVAE_BROWSER_SHOTS") else None



def _no_browser(reason: str) -> None:
    """Skip where no browser can be had; under CI (which installs one, see .ci/run) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright import sync_api
except ImportError:
    _no_browser("playwright is not installed (pip install -e '.[dev]')")
if not Path(CHROMIUM).exists():
    _no_browser(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CONVAE_CHROMIUM)")

PLAYER = "div.convae-animation"
# what the page asks the internet for: the widget library and its loader, and MathJax
CDN_FILES = ("embed-amd.js", "require.min.js", "require.js", "latest.js")


@pytest.fixture(scope="module")
def html_page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONVAE_PROFILE", "smoke")
        env.setenv("CONVAE_DATASET", "shapes10")
        env.setenv("CONVAE_RUNS_DIR", str(tmp / "runs"))
        env.setenv("CONVAE_DATA_DIR", str(tmp / "data"))
        _, html, _ = execute(ROOT / "notebooks" / "03_training.ipynb", tmp / "build", timeout=600)
    return html


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Watched:
    """A page whose script errors, console errors and failed or refused requests are recorded."""

    def __init__(self, browser, serve=None):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page_errors, self.console_errors, self.failed, self.served = [], [], [], []
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        self.page.on("requestfailed", lambda request: self.failed.append(request.url))
        self.page.route("**/*", lambda route: self._route(route, serve or {}))

    def _route(self, route, serve):
        url = route.request.url
        if url.startswith("file:"):
            return route.continue_()
        local = serve.get(url.rsplit("/", 1)[-1].split("?")[0])
        if local is not None:
            self.served.append(url)
            return route.fulfill(path=str(local), content_type=_content_type(local))
        return route.abort("internetdisconnected")  # offline: nothing from the network

    def shot(self, name: str) -> None:
        if SHOTS is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / name), full_page=False)


def _content_type(path: Path) -> str:
    return {".js": "application/javascript", ".woff2": "font/woff2", ".woff": "font/woff",
            ".ttf": "font/ttf", ".svg": "image/svg+xml", ".eot": "application/vnd.ms-fontobject"
            }.get(path.suffix, "application/octet-stream")


def _shown(locator) -> bytes:
    """What the browser draws for an element: a screenshot of it (PNG bytes)."""
    locator.scroll_into_view_if_needed()
    return locator.screenshot()


def test_offline_page_loads_without_errors_and_the_player_switches_pictures(browser, html_page):
    watched = Watched(browser)
    page = watched.page
    page.goto(html_page.as_uri(), wait_until="load")
    player = page.locator(PLAYER)
    assert player.count() == 1
    image, slider, label = player.locator("img"), player.locator("input[type=range]"), player.locator("[data-label]")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")  # the first frame is drawn
    epochs = int(slider.get_attribute("max"))  # the smoke profile's epochs
    assert epochs >= 2 and label.inner_text() == f"epoch 1 of {epochs}"

    before_src, before_pixels = image.get_attribute("src"), _shown(image)
    watched.shot("03_offline_player_epoch1.png")
    slider.focus()
    page.keyboard.press("ArrowRight")  # a reader drags or steps the slider
    assert label.inner_text() == f"epoch 2 of {epochs}" and slider.input_value() == "2"
    assert image.get_attribute("src") != before_src
    assert _shown(image) != before_pixels
    watched.shot("03_offline_player_epoch2.png")
    player.get_by_role("button", name="back").click()
    assert image.get_attribute("src") == before_src
    # at epoch 1 there is no "back" to the last epoch (it used to wrap around)
    back = player.get_by_role("button", name="back")
    assert back.is_disabled() and label.inner_text() == f"epoch 1 of {epochs}"
    slider.focus()
    page.keyboard.press("ArrowLeft")
    assert label.inner_text() == f"epoch 1 of {epochs}"
    # the buttons carry text, not icons from a font on the internet
    assert [b.inner_text() for b in player.locator("button").all()] == ["◀ back", "▶ play", "next ▶"]

    # the widget cannot render offline: its place says so instead of staying empty; only the epoch
    # slider's place: the training progress bars are their last line of text, not widgets (issue 19)
    notes = page.locator(".convae-widgets-offline")
    assert notes.count() == 1 and notes.first.inner_text() == WIDGETS_OFFLINE_NOTE
    assert page.get_by_text(re.compile(r"100%")).count() >= 1
    notes.last.scroll_into_view_if_needed()
    watched.shot("03_offline_widget_note.png")
    # nothing breaks: no script error, and the only requests that failed are the CDN's
    assert watched.page_errors == []
    assert watched.failed and all(url.endswith(CDN_FILES) or "latest.js" in url for url in watched.failed)
    assert all("ERR_INTERNET_DISCONNECTED" in text or "Failed to load resource" in text
               for text in watched.console_errors), watched.console_errors
    # every picture on the page is drawn from the page itself
    broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
    assert broken == 0
    page.close()


# What JupyterLab does with a key that bubbles up from an output: its notebook shortcuts take it (arrow
# keys move the cell selection). A listener on the document stands in for them: a key that reaches it
# would have been taken from the control that had the focus.
LAB_SHORTCUTS = """() => { window.keysReachingLab = [];
  document.addEventListener("keydown", e => window.keysReachingLab.push(e.key)); }"""


def test_keys_on_the_focused_player_stay_there(browser, html_page):
    watched = Watched(browser)
    page = watched.page
    page.goto(html_page.as_uri(), wait_until="load")
    page.evaluate(LAB_SHORTCUTS)
    player = page.locator(PLAYER)
    slider, label = player.locator("input[type=range]"), player.locator("[data-label]")
    epochs = int(slider.get_attribute("max"))
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert label.inner_text() == f"epoch 2 of {epochs}"  # the control used the key ...
    assert page.evaluate("window.keysReachingLab") == []  # ... and JupyterLab would not have seen it
    page.keyboard.press("Tab")  # keys that are not the control's still reach the page
    assert page.evaluate("window.keysReachingLab") == ["Tab"]
    page.close()


def test_play_shows_the_current_epoch_first_and_stops_at_the_last(browser, html_page):
    watched = Watched(browser)
    page = watched.page
    page.goto(html_page.as_uri(), wait_until="load")
    player = page.locator(PLAYER)
    label, epochs = player.locator("[data-label]"), int(player.locator("input[type=range]").get_attribute("max"))
    player.get_by_role("button", name="play").click()
    assert label.inner_text() == f"epoch 1 of {epochs}"  # not at once to epoch 2
    page.wait_for_function("el => el.textContent === 'epoch 2 of ' + el.textContent.split(' of ')[1]",
                           arg=label.element_handle(), timeout=5_000)
    page.wait_for_function(f"el => el.textContent === 'epoch {epochs} of {epochs}'", arg=label.element_handle(),
                           timeout=5_000 * epochs)
    page.wait_for_timeout(1_500)  # two intervals more: it stopped at the last epoch
    assert label.inner_text() == f"epoch {epochs} of {epochs}"
    assert "play" in player.locator("[data-play]").inner_text()
    page.close()


def test_formulas_read_offline(browser, tmp_path):
    """Notebook 02's formulas: MathJax comes from a CDN, so offline they showed as raw $$...$$."""
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / "02_architecture.ipynb", as_version=4)
    page_file = tmp_path / "02.html"
    page_file.write_text(notebook_html(nb), encoding="utf-8")
    watched = Watched(browser)
    page = watched.page
    page.goto(page_file.as_uri(), wait_until="load")
    text = page.locator("body").inner_text()
    assert "$$" not in text and "\\frac" not in text and "\\text" not in text
    formulas = page.locator("math")
    assert formulas.count() == 2
    for formula in formulas.all():  # drawn by the browser itself, with height (fractions stack)
        box = formula.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 10
    formulas.first.scroll_into_view_if_needed()
    watched.shot("02_offline_formula.png")
    page.close()


def _widget_library() -> dict[str, Path] | None:
    folder = os.environ.get("CONVAE_WIDGETS_JS")
    if not folder or not Path(folder).is_dir():
        return None
    embed = sorted(Path(folder).glob("**/dist/embed-amd.js"))
    require = sorted(Path(folder).glob("**/require.js"))
    if not embed or not require:
        return None
    served = {path.name: path for path in embed[0].parent.iterdir() if path.is_file()}
    served["require.min.js"] = require[0]
    return served


def test_widget_slider_switches_the_picture_in_the_exported_page(browser, html_page):
    serve = _widget_library()
    if serve is None:
        pytest.skip("the widget library is on a CDN: set $CONVAE_WIDGETS_JS to a folder with npm's "
                    "@jupyter-widgets/html-manager@1 and requirejs (.ci/run does) to try the widget itself")
    watched = Watched(browser, serve)
    page = watched.page
    page.goto(html_page.as_uri(), wait_until="load")
    scrubber = page.locator(".widget-vbox", has=page.locator(".widget-play")).first
    scrubber.wait_for(timeout=20_000)

    # the Play buttons show text symbols (the widget library's icon font is not found from a file:// page)
    glyphs = scrubber.locator(".widget-play i").evaluate_all(
        "icons => icons.map(i => getComputedStyle(i, '::before').content)")
    assert glyphs and all(g.strip('"') in {"▶", "■", "↻", "❚❚"} for g in glyphs), glyphs
    readout = scrubber.locator(".widget-readout").first
    handle = scrubber.locator(".noUi-handle").first

    def shown() -> tuple[str, bytes]:
        """The picture on show once it is drawn: its src (a blob URL, new at every switch) and pixels."""
        page.wait_for_function("el => { const shown = [...el.querySelectorAll('img')].filter("
                               "i => i.offsetParent !== null); return shown.length === 1 && "
                               "shown[0].complete && shown[0].naturalWidth > 0; }",
                               arg=scrubber.element_handle(), timeout=5_000)
        (image,) = [img for img in scrubber.locator("img").all() if img.is_visible()]
        return image.get_attribute("src"), _shown(image)

    def after(action, src: str, epoch: str) -> tuple[str, bytes]:
        action()
        page.wait_for_function("([el, src, epoch]) => [...el.querySelectorAll('img')].some(i => "
                               "i.offsetParent !== null && i.src !== src) && "
                               "el.querySelector('.widget-readout').textContent.trim() === epoch",
                               arg=[scrubber.element_handle(), src, epoch], timeout=5_000)
        return shown()

    def key(name: str):
        return lambda: (handle.focus(), page.keyboard.press(name))

    src1, epoch1 = shown()
    assert readout.inner_text().strip() == "1"
    page.evaluate(LAB_SHORTCUTS)
    watched.shot("03_widget_epoch1.png")
    # the slider picks the picture, in the browser, with no kernel behind the page
    src2, epoch2 = after(key("ArrowRight"), src1, "2")
    assert epoch2 != epoch1
    watched.shot("03_widget_epoch2.png")
    src1, back = after(key("ArrowLeft"), src2, "1")
    assert back == epoch1
    # keys on the focused slider stay with it: JupyterLab's shortcuts would not see them (issue 19)
    assert page.evaluate("window.keysReachingLab") == []
    # Play moves the slider, and with it the picture
    _, played = after(lambda: scrubber.locator(".widget-play button").first.click(), src1, "2")
    assert played == epoch2
    assert watched.page_errors == []
    page.close()
