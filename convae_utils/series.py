"""Run the whole notebook series headless: ``python -m convae_utils series`` (``make run``).

Executes ``notebooks/NN_*.ipynb`` in order in fresh kernels, with the profile and dataset switches
passed through the environment, and writes each executed notebook and its HTML under ``build/``.
Progress shows per notebook and per cell. A failing notebook stops the series with the cell that
failed; notebooks executed before it are kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from . import settings as run_settings
from .errors import ConvaeError
from .fileio import atomic_write, write_json
from .settings import (DATA_DIR_ENV, DATASET_ENV, DATASETS, PROFILE_CHOICES, PROFILE_ENV, RUNS_DIR_ENV,
                        pick_device, project_root, versions)
from .callbacks import REPORT_PREFIX
from .arguments import UsageError, output_folder, whole_number


# Run in every kernel before the first cell: the measured malloc settings, for the whole notebook (its
# data loading and evaluation too, not only from its first ``fit``). Idempotent; $CONVAE_TUNE_MALLOC=0 skips it.
KERNEL_STARTUP = ("--IPKernelApp.exec_lines="
                  "['from convae_utils.cpu_speed import tune_allocator as _tune; _tune(); del _tune']")


def add_arguments(parser) -> None:
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                        help="full, workshop, smoke or auto = full on a GPU else workshop "
                             "(default: $CONVAE_PROFILE or auto)")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="cifar10, photos10, shapes10 or auto (default: $CONVAE_DATASET or the profile's)")
    parser.add_argument("--notebooks", default=None, help="folder of notebooks (default: <project>/notebooks)")
    parser.add_argument("--out", default=None, help="output folder (default: <project>/build)")
    parser.add_argument("--only", action="append", default=None, metavar="TEXT",
                        help="run only notebooks whose name contains this text, e.g. 03; repeat it for several "
                             "(--only 03 --only 10), which run in the series' order (default: all)")
    parser.add_argument("--timeout", type=whole_number(1), default=3600,
                        help="seconds a single cell may run (default %(default)s)")


def _texts(only: str | Sequence[str] | None) -> list[str]:
    """``--only``'s texts: one (a caller's string) or several (the option repeated), empty ones dropped."""
    return [text for text in ([only] if isinstance(only, str) else only or []) if text]


def find_notebooks(folder: Path, only: str | Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks (NN_name.ipynb) of a folder, in order; with ``only``, those whose name contains
    any of its texts (still in the series' order: a later notebook may load what an earlier one trained)."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    texts = _texts(only)
    if texts:
        found = [p for p in found if any(text in p.name for text in texts)]
    return found


def _echoing_client(echo, **kwargs):
    """A NotebookClient that also prints the kernel's one-line training reports to this terminal.

    Cell-level progress alone would sit still for minutes during training; the progress lines the
    package prints (``callbacks.report``: epochs, resumes, loaded runs) show the run is alive and how
    it is doing. They are recognised by their prefix, not by their wording.
    """
    from nbclient import NotebookClient

    class EchoingClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] == "stream" and msg["content"].get("name") == "stdout":
                for line in msg["content"].get("text", "").splitlines():
                    if line.startswith(REPORT_PREFIX):
                        echo(f"    {line[len(REPORT_PREFIX):]}")
            return super().output(outs, msg, display_id, cell_index)

    return EchoingClient(**kwargs)


def execute(path: Path, out_dir: Path, *, timeout: int = 3600, offline: bool = False) -> tuple[Path, Path, float]:
    """Execute one notebook in a fresh kernel (cwd = its folder); write the .ipynb and .html copies.

    ``offline``: the HTML loads nothing from the internet (:func:`notebook_html`).
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    code_cells = sum(c.cell_type == "code" for c in nb.cells)
    bar = tqdm(total=code_cells, desc=path.stem, unit="cell", leave=True)
    # The kernel's log is not the notebook's output: keep its start-up chatter (a plain-TCP notice on
    # localhost, printed once per notebook) and the tracebacks of its messages cut off by a Ctrl-C (ZMQError)
    # out of the terminal. A cell's error is not the kernel's log: it reaches the notebook and this command.
    client = _echoing_client(bar.write, nb=nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                             extra_arguments=["--IPKernelApp.log_level=CRITICAL", KERNEL_STARTUP],
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=lambda **_: bar.update(1))
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    try:
        with _interruptible() as ctrl_c:
            client.execute()
    except CellExecutionError as exc:
        if exc.ename == "KeyboardInterrupt":  # the kernel got the Ctrl-C: nothing failed
            raise KeyboardInterrupt from None
        _write_notebook(nb, executed)  # keep what ran, with the error in it
        raise ConvaeError(f"{path.name} failed: {_whole_error(exc)}\n(the executed notebook, with the error, "
                          f"is {executed})") from exc
    except BaseException as exc:
        # Ctrl-C reaches the kernel and this process together: nbclient then fails in whatever it was doing
        # (asyncio's own SIGINT handler cancels its loop: CancelledError; or DeadKernelError, ZMQError). That is
        # an interruption, said in one line by the caller; nothing is written, so an unfinished notebook is
        # never taken for a finished one.
        # nbclient takes SIGINT over while it runs (loop.add_signal_handler: it shuts the kernel down, and
        # leaves the future that does it on the client), so the note alone would miss it.
        if (ctrl_c["interrupted"] or isinstance(exc, asyncio.CancelledError)
                or getattr(client, "_async_cleanup_kernel_future", None) is not None):
            # nbclient's kernel-alive poller, left pending, is reported at exit ("Task exception was never
            # retrieved"): the command is ending on purpose, so asyncio's own log stays quiet.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            raise KeyboardInterrupt from None
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    _write_notebook(nb, executed)
    html_path = out_dir / f"{path.stem}.html"
    html = notebook_html(nb, HTMLExporter, offline=offline)
    atomic_write(html_path, lambda handle: handle.write(html.encode("utf-8")))  # a full disk: said as such
    return executed, html_path, seconds


@contextmanager
def _interruptible():
    """Note a Ctrl-C (SIGINT) while the block runs, and raise KeyboardInterrupt as Python would; yields the note."""
    note = {"interrupted": False}
    # A kernel shut down mid-message makes tornado warn about closed streams: noise after a Ctrl-C.
    logging.getLogger("tornado.general").setLevel(logging.ERROR)
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield note
        return
    previous = signal.getsignal(signal.SIGINT)

    def interrupted(signum, frame):
        note["interrupted"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield note
    finally:
        signal.signal(signal.SIGINT, previous)


def _whole_error(exc) -> str:
    """The kernel's exception as its type and whole message: a message with its ways out on later lines
    (``DataError``'s) must not be cut to its last line. No terminal colours."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{ename}: {evalue}" if ename and evalue is not None else str(exc).strip().splitlines()[-1]
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()


def _write_notebook(nb, path: Path) -> None:
    import nbformat

    text = nbformat.writes(nb)
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


# Said in a page whose widget library could not be loaded (it comes from a CDN: offline, it cannot).
# Placed first in <head>, it sees the failed <script> loads of require.js / the html-manager, which
# nbconvert's page makes, and writes the note into each widget's output instead of leaving it empty.
WIDGETS_OFFLINE_NOTE = ("Widget not shown: this page loads the widget library from the internet, and it "
                        "could not be loaded (offline?). Everything else on the page works without it.")
_WIDGETS_NOTE_SCRIPT = """<script>
(function () {
  var failed = false;
  function note() {
    document.querySelectorAll("div.jupyter-widgets").forEach(function (area) {
      if (area.querySelector(".convae-widgets-offline")) { return; }
      var p = document.createElement("p");
      p.className = "convae-widgets-offline";
      p.style.cssText = "font-style:italic;color:#555;margin:0.4em 0";
      p.textContent = %s;
      area.appendChild(p);
    });
  }
  window.addEventListener("error", function (event) {
    var src = event.target && event.target.src;
    if (failed || !src || !/html-manager|require/.test(src)) { return; }
    failed = true;
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", note); } else { note(); }
  }, true);
  if (%s) { document.addEventListener("DOMContentLoaded", note); }
})();
</script>"""
_WIDGETS_OFFLINE_SCRIPT = _WIDGETS_NOTE_SCRIPT % (json.dumps(WIDGETS_OFFLINE_NOTE), "false")
# A page made to open without the internet (the workshop kit's filled/) loads nothing: the note is there from the start.
WIDGETS_NOT_IN_PAGE_NOTE = ("Widget not shown: this page is made to open without the internet, and the widget "
                            "library is not part of it; open the .ipynb in JupyterLab to use the widget. Everything "
                            "else on the page works.")
_WIDGETS_NOT_IN_PAGE_SCRIPT = _WIDGETS_NOTE_SCRIPT % (json.dumps(WIDGETS_NOT_IN_PAGE_NOTE), "true")
_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\bsrc="(?:https?:)?//[^"]*"[^>]*>\s*</script>')
_WIDGET_LOADER = re.compile(r"<script>(?:(?!</script>).)*widgetRendererSrc(?:(?!</script>).)*</script>", re.S)


# The HTML manager's icon font (Font Awesome) is looked up next to the page, not on the CDN, so in a
# page opened from disk the Play widget's buttons are blank even online: give them text symbols.
_PLAY_BUTTON_CSS = """<style>
.widget-play .fa::before { font-family: sans-serif !important; font-weight: normal !important; }
.widget-play .fa-play::before { content: "\\25B6"; }
.widget-play .fa-pause::before { content: "\\275A\\275A"; }
.widget-play .fa-stop::before { content: "\\25A0"; }
.widget-play .fa-retweet::before { content: "\\21BB"; }
</style>"""


_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_PROGRESS_MODELS = ("FloatProgressModel", "IntProgressModel")


def math_as_mathml(markdown: str) -> str:
    """Display formulas (``$$...$$``) in ``markdown`` as MathML, which browsers draw with no script.

    nbconvert's page typesets TeX with MathJax from a CDN, so offline a formula stayed raw ``$$...$$``.
    MathML needs nothing from the network; MathJax, where it loads, has no TeX left to do.
    """
    from latex2mathml.converter import convert

    def mathml(match: re.Match) -> str:
        tex = re.sub(r"\\text\{([^}]*)\}", lambda m: "\\text{" + m.group(1).replace("\\_", "_") + "}",
                     match.group(1).strip())
        return "\n" + convert(tex, display="block") + "\n"
    return _DISPLAY_MATH.sub(mathml, markdown)


_NOTEBOOK_LINK = re.compile(r"\]\((?![a-zA-Z][\w+.-]*:)([^()\s/]+)\.ipynb(#[^()\s]*)?\)")


def links_to_pages(markdown: str) -> str:
    """Links to a sibling notebook (``[02](02_architecture.ipynb)``) point at its page (``02_architecture.html``).

    The series writes every page into one folder; a browser shows a linked ``.ipynb`` as raw JSON.
    Links with a scheme (``https://...``) or a folder are left alone.
    """
    return _NOTEBOOK_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(2) or ''})", markdown)


def progress_bars_as_text(nb) -> int:
    """Replace each stored progress-bar widget (tqdm's, in the notebook) by its last state as one line of text.

    A page without the widget library (offline) would show a "widget not shown" note for every bar;
    a finished bar says all it has to say as text ("epoch 2/2: 100% 5/5 [00:01<00:00]"). Returns how
    many were replaced; other widgets are left to the widget library.
    """
    state = nb.metadata.get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})

    def model(ref: str) -> dict:
        return state.get(str(ref).removeprefix("IPY_MODEL_"), {})

    replaced = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(_WIDGET_VIEW)
            box = model(view["model_id"]) if view else {}
            children = [model(ref) for ref in box.get("state", {}).get("children", [])]
            bars = [c for c in children if c.get("model_name") in _PROGRESS_MODELS]
            if box.get("model_name") != "HBoxModel" or len(bars) != 1:
                continue
            bar = bars[0]["state"]
            parts = []
            for child in children:
                if child.get("model_name") == "HTMLModel":
                    parts.append(re.sub(r"<[^>]+>", "", child["state"].get("value", "")).replace("&nbsp;", " ").strip())
                elif child is bars[0] and bar.get("max"):
                    parts.append(f"{100 * bar.get('value', 0) / bar['max']:.0f}%")
            output["data"] = {"text/plain": " ".join(p for p in parts if p)}
            replaced += 1
    return replaced


def notebook_html(nb, exporter_class=None, *, offline: bool = False) -> str:
    """An executed notebook as one HTML page (nbconvert's lab template) that degrades clearly offline.

    Widgets render from the widget state stored in the notebook with the ipywidgets-8 HTML manager
    (``@jupyter-widgets/html-manager`` 1.x), which nbconvert's page loads from a CDN; no pip package
    ships it, so offline a widget cannot render and its place says so instead of staying empty; the
    Play widget's buttons get text symbols, since the manager's icon font is not found from a page on
    disk. Everything else in the page (pictures, the ``widgets.animation_html`` player) needs no network:
    progress bars become their last line of text (:func:`progress_bars_as_text`) and formulas MathML
    (:func:`math_as_mathml`).

    ``offline``: a page that loads nothing from the internet (the workshop kit's ``filled/``, for laptops
    without it): no require.js, no MathJax (the formulas are MathML already), no widget library; each
    widget's place says so from the start.
    """
    if exporter_class is None:
        from nbconvert import HTMLExporter as exporter_class
    import copy

    nb = copy.deepcopy(nb)  # the executed .ipynb keeps its widgets and TeX; only the page changes
    progress_bars_as_text(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = links_to_pages(math_as_mathml(cell.source))
    exporter = exporter_class(html_manager_semver_range="^1.0.0")  # the major version ipywidgets 8 speaks
    html, _ = exporter.from_notebook_node(nb)
    if offline:
        html = _WIDGET_LOADER.sub("", _EXTERNAL_SCRIPT.sub("", html))
    if "widgets" in nb.metadata and "<head>" in html:
        note = _WIDGETS_NOT_IN_PAGE_SCRIPT if offline else _WIDGETS_OFFLINE_SCRIPT
        html = html.replace("<head>", "<head>\n" + note + "\n" + _PLAY_BUTTON_CSS, 1)
    return html


def resolve_dataset(choice: str, data_dir: Path) -> str:
    """The dataset for the whole series: ``auto`` is settled once (CIFAR-10 if it can be had)."""
    from .cifar10 import cifar10_url, download_command
    from .data import FALLBACK, resolve_auto

    if choice != "auto":
        return choice
    name, reason = resolve_auto(data_dir, download=True)
    if reason:
        print(f"\n*** {reason}.\n*** Every notebook will use the OFFLINE STAND-IN {FALLBACK} "
              f"(not CIFAR-10).\n*** To use CIFAR-10, run `{download_command(data_dir, cifar10_url())}` "
              "or copy cifar-10-python.tar.gz into the data folder.\n", flush=True)
    return name


def _notebooks(count: int) -> str:
    return f"{count} notebook" + ("" if count == 1 else "s")


def _no_notebooks(folder: Path, args) -> None:
    """Nothing to run: say what was looked for, where, and which option to change."""
    looked = f"no notebooks (NN_*.ipynb) in {folder}" + ("" if folder.is_dir() else " (no such folder)")
    _check_only(folder, args.only, looked)
    if args.notebooks:
        raise UsageError(f"{looked}; pass --notebooks the folder that holds them (default: the project's notebooks/)")
    raise ConvaeError(f"{looked}: this checkout has no notebooks; pass --notebooks the folder that holds them")


def _check_only(folder: Path, only, looked: str) -> None:
    """Each ``--only`` must name some notebook: a typo in one of several would otherwise drop it silently."""
    found = find_notebooks(folder)
    names = [p.stem for p in found]
    for text in _texts(only):
        if names and not any(text in p.name for p in found):   # the same match as find_notebooks
            raise UsageError(f"{looked} whose name contains --only {text!r}; pass part of one of "
                             f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''} (e.g. --only {names[0][:2]})")


def run(args) -> int:
    """Execute the notebooks; the settings reach each kernel through the environment, set here only."""
    overrides = {"dataset": args.dataset} if args.dataset else {}
    root = project_root()
    folder = Path(args.notebooks) if args.notebooks else root / "notebooks"
    # Before anything starts (a download, a kernel): a file or an unwritable place as the output folder.
    out_dir = output_folder("--out", Path(args.out).expanduser() if args.out else root / "build",
                            "where the executed notebooks and their HTML go",
                            source=None if args.out else "the default of --out",
                            error=UsageError if args.out else ValueError)
    settings = run_settings.from_env(args.profile, **overrides)  # a bad name fails before anything else
    notebooks = find_notebooks(folder, args.only)
    if not notebooks:
        _no_notebooks(folder, args)
    _check_only(folder, args.only, f"no notebooks (NN_*.ipynb) in {folder}")
    data_dir = run_settings.data_dir()
    # Settle "auto" once, up front: one download with its own progress bar, or one loud fallback,
    # instead of every kernel probing the network on its own.
    dataset = resolve_dataset(settings.dataset, data_dir)
    # The kernels inherit these: the only place the package writes the environment.
    os.environ.update({PROFILE_ENV: settings.profile, DATASET_ENV: dataset, DATA_DIR_ENV: str(data_dir),
                       # kernels run inside notebooks/: pin runs to the project so every notebook shares them
                       RUNS_DIR_ENV: str(run_settings.runs_dir())})
    print(f"Running {_notebooks(len(notebooks))} with profile {settings.profile!r} "
          f"(dataset: {dataset}) into {out_dir}", flush=True)
    total = 0.0
    timings = {"profile": settings.profile, "dataset": dataset,
               "versions": versions(), "device": str(pick_device()), "seconds": {}}
    for i, nb_path in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb_path.name}", flush=True)
        executed, html, seconds = execute(nb_path, out_dir, timeout=args.timeout,
                                          offline=getattr(args, "offline_html", False))
        total += seconds
        timings["seconds"][nb_path.stem] = round(seconds, 1)
        # Written after every notebook: the README's run-time table is read off this file.
        write_json(out_dir / "timings.json", timings)
        print(f"    done in {seconds:.0f} s -> {html}", flush=True)
    print(f"Ran {_notebooks(len(notebooks))} in {total / 60:.1f} min. Open {out_dir / notebooks[0].stem}.html "
          f"(or the executed .ipynb files in {out_dir}).", flush=True)
    return 0
