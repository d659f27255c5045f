"""The notebook series: pairing, committed without outputs, one skeleton, the profile switch reaching the kernel.

``pytest --nbmake notebooks`` executes every notebook (smoke profile, see notebooks/conftest.py);
these tests check what nbmake does not: that each reviewed ``.py`` source and its ``.ipynb`` agree,
that no executed output is committed, that every notebook follows the series' skeleton and imports
its code instead of re-typing it, and that ``CONVAE_PROFILE`` set outside really reaches the kernel.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from tools import headers as breadcrumbs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
# each notebook names itself in its own breadcrumb; `make sync` writes the rest (tools/headers.py)
TITLES = {stem[:2]: title[3:] for stem, title in breadcrumbs.titles(NOTEBOOKS).items()}
PARAMETERS_TAG = "parameters"
PARAMETERS_MARK = "# Parameters"


def ids(paths):
    return [p.stem for p in paths]


def cells(path: Path) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in jupytext.read(path).cells]


def code_cells(path: Path):
    return [cell for cell in jupytext.read(path).cells if cell.cell_type == "code"]


def markdown(path: Path) -> str:
    return "\n".join(cell.source for cell in jupytext.read(path).cells if cell.cell_type == "markdown")


def test_the_series_is_complete():
    numbers = [p.name[:2] for p in SOURCES]
    assert numbers == [f"{n:02d}" for n in range(1, len(SOURCES) + 1)], f"the series skips a number: {ids(SOURCES)}"
    assert list(TITLES) == numbers


def test_headers_are_written_by_the_command():
    """Breadcrumbs and measured run times come from `make sync` (tools/headers.py), not from hand edits."""
    assert breadcrumbs.sync(NOTEBOOKS, check=True) == [], "headers or the README's table are out of date: run `make sync`"


def _copy_series(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for source in [*SOURCES, NOTEBOOKS / breadcrumbs.RUN_TIMES]:
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def test_a_new_notebook_touches_only_its_neighbour(tmp_path: Path):
    """Issue 27: adding notebook 08 rewrote sixteen other notebook files (every breadcrumb listed the series)."""
    folder = _copy_series(tmp_path)
    new = folder / f"{len(SOURCES) + 1:02d}_new.py"
    new.write_text(f"# %% [markdown]\n# convae · **{new.name[:2]} New model**\n#\n# # {new.name[:2]} · New\n")
    assert breadcrumbs.sync(folder) == [folder / SOURCES[-1].name, new]
    assert breadcrumbs.sync(folder, check=True) == []
    assert f"[{new.name[:2]} New model →]({new.stem}.ipynb)" in (folder / SOURCES[-1].name).read_text()
    assert f"[← {SOURCES[-1].name[:2]} {TITLES[SOURCES[-1].name[:2]]}]({SOURCES[-1].stem}.ipynb) · **{new.name[:2]} New model**" in new.read_text()


def test_measured_times_are_written_once_and_reach_every_header_and_the_readme(tmp_path: Path):
    """Issue 27: re-measuring the series touched twenty files by hand; now one file, one command."""
    folder = _copy_series(tmp_path)
    timings = tmp_path / "timings.json"  # what `python -m convae_utils series --profile workshop` writes
    timings.write_text(json.dumps({"profile": "workshop", "dataset": "photos10",
                                   "seconds": {p.stem: 61.0 + i for i, p in enumerate(SOURCES)}}))
    assert breadcrumbs.take_timings(folder, timings) == "workshop"
    changed = breadcrumbs.sync(folder)
    assert set(changed) == {folder / p.name for p in SOURCES} | {tmp_path / "README.md"}
    readme = (tmp_path / "README.md").read_text()
    total = sum(61.0 + i for i in range(len(SOURCES)))
    assert f"| **{breadcrumbs.as_time(total)}** |" in readme
    for i, source in enumerate(SOURCES):
        header = jupytext.read(folder / source.name).cells[0].source
        assert f"| {breadcrumbs.as_time(61.0 + i)} (measured by" in header
    # a time typed into one header by hand is out of date, and the command says so
    first = folder / SOURCES[0].name
    first.write_text(first.read_text().replace(f"| {breadcrumbs.as_time(61.0)} (measured", "| 9.9 min (measured"))
    assert breadcrumbs.sync(folder, check=True) == [first]


# -- (1) pairing, and nothing executed is committed -----------------------------------------------

@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_py_and_ipynb_agree(source: Path):
    twin = source.with_suffix(".ipynb")
    assert twin.is_file(), f"{twin.name} is missing: run `jupytext --sync {source.relative_to(ROOT)}`"
    assert cells(source) == cells(twin), (
        f"{source.name} and {twin.name} differ: edit the .py, then `jupytext --sync` (make sync)")


@pytest.mark.parametrize("start", ["project root", "notebooks folder"])
def test_saving_in_jupyter_updates_both_files_wherever_jupyter_starts(start: str, tmp_path: Path):
    """The README says `jupyter lab notebooks/`: the server then sees no root jupytext.toml, so the
    pairing must travel in each notebook's own metadata. Save through jupytext's contents manager
    (what JupyterLab uses) rooted where the user started it, and check the .py follows."""
    pytest.importorskip("jupyter_server")
    from jupytext import TextFileContentsManager

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    name = SOURCES[0].stem
    for suffix in (".py", ".ipynb"):
        (project / "notebooks" / f"{name}{suffix}").write_bytes((NOTEBOOKS / f"{name}{suffix}").read_bytes())
    root = project if start == "project root" else project / "notebooks"
    path = f"notebooks/{name}.ipynb" if start == "project root" else f"{name}.ipynb"
    manager = TextFileContentsManager(root_dir=str(root))
    model = manager.get(path)
    model["content"].cells.append(nbformat.v4.new_markdown_cell("A note saved from Jupyter."))
    manager.save(model, path)
    assert "A note saved from Jupyter." in (project / "notebooks" / f"{name}.py").read_text(), (
        "saving the .ipynb did not update the paired .py")


@pytest.mark.parametrize("twin", [s.with_suffix(".ipynb") for s in SOURCES], ids=ids(SOURCES))
def test_ipynb_is_committed_without_outputs(twin: Path):
    notebook = json.loads(twin.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"{twin.name} cell {index} has outputs: clear them before committing"
        assert cell.get("execution_count") is None, f"{twin.name} cell {index} has an execution count"


# -- (3) the skeleton -----------------------------------------------------------------------------

@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_skeleton(source: Path):
    notebook = jupytext.read(source)
    first = notebook.cells[0]
    breadcrumb = first.source.splitlines()[0]
    number = source.name[:2]
    assert first.cell_type == "markdown" and breadcrumb.startswith("convae ·"), "the first line is the breadcrumb"
    assert "# " + breadcrumb == breadcrumbs.breadcrumb(source.stem, breadcrumbs.titles(NOTEBOOKS)), (
        "the breadcrumb links this notebook's neighbours, with this one in bold: run `make sync`")
    assert f"**{number} {TITLES[number]}**" in breadcrumb, "the breadcrumb marks this notebook in bold"
    assert re.search(r"^# ", first.source, re.MULTILINE), "a title follows the breadcrumb"
    assert "What you will learn" in first.source
    assert "Run time" in first.source and all(p in first.source for p in ("smoke", "workshop", "full"))

    headings = [line.strip("# ").strip() for line in markdown(source).splitlines() if line.startswith("#")]
    for heading in ("Setup", "Parameters", "Summary", "Exercises"):
        assert heading in headings, f"no '## {heading}' heading"
    assert headings.index("Summary") < headings.index("Exercises")


@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_exactly_one_parameters_cell(source: Path):
    code = code_cells(source)
    tagged = [i for i, c in enumerate(code) if PARAMETERS_TAG in c.metadata.get("tags", [])]
    marked = [i for i, c in enumerate(code) if c.source.lstrip().startswith(PARAMETERS_MARK)]
    assert len(tagged) == 1, f"expected one code cell tagged {PARAMETERS_TAG!r}, found {len(tagged)}"
    assert marked == tagged, f"the tagged cell, and only it, starts with {PARAMETERS_MARK!r}"
    assert "settings.from_env(" in code[tagged[0]].source, "the parameters cell reads the profile switch"


@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_setup_prints_the_banner(source: Path):
    code = "\n".join(c.source for c in code_cells(source))
    assert "settings.seed_everything(" in code and "settings.banner(" in code


# -- (4) code comes from convae_utils, never re-typed -----------------------------------------------

@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_imports_the_package_and_defines_no_class(source: Path):
    code = "\n".join(c.source for c in code_cells(source))
    assert re.search(r"^from convae_utils import ", code, re.MULTILINE), "import the helpers from convae_utils"
    classes = re.findall(r"^class \w+", code, re.MULTILINE)
    assert not classes, f"{source.name} defines {classes}: import it from convae_utils and show its source"
    assert "sys.path" not in code, "the package is installed; no sys.path hacks"


# -- (2) the profile switch reaches the kernel ------------------------------------------------------

def test_profile_switch_reaches_the_kernel(monkeypatch, tmp_path):
    """Execute notebook 01 (the fastest) in a real kernel with CONVAE_PROFILE=smoke set from outside."""
    from nbclient import NotebookClient

    monkeypatch.setenv("CONVAE_PROFILE", "smoke")
    monkeypatch.setenv("CONVAE_DATASET", "shapes10")   # offline, whatever the caller's shell says
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / "01_data.ipynb", as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()

    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs if output.output_type == "stream")
    assert "profile : smoke" in text, "the banner does not show the profile set in the environment"
    assert "dataset : shapes10" in text

    # Every figure shows exactly once. The inline backend shows each open pyplot figure at the end of
    # the cell; a Figure that is also the cell's value is shown a second time, as an execute_result
    # (rendered differently, so the two PNGs are not even byte-identical). Assign it or end with ';'.
    images = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        shown = [output for output in cell.outputs if "image/png" in output.get("data", {})]
        returned = [output for output in shown if output.output_type == "execute_result"]
        assert not returned, f"cell {index} returns a Figure, which the inline backend then shows twice"
        pngs = [output["data"]["image/png"] for output in shown]
        digests = [hashlib.sha1(png.encode()).hexdigest() for png in pngs]
        assert len(digests) == len(set(digests)), f"cell {index} shows the same figure twice"
        reprs = [output["data"]["text/plain"] for output in cell.outputs
                 if "image/png" not in output.get("data", {"image/png": None})
                 and output.get("data", {}).get("text/plain", "").startswith("<Figure size")]
        assert not reprs, f"cell {index} shows a Figure as text instead of a picture: {reprs}"
        images += len(shown)
    assert images >= 3, "the class grid, the exemplars and the histograms should be drawn"


# -- numbers the text states, held to what decides them (issue 20) ----------------------------------

def test_workshop_time_in_each_header_matches_the_readme_table():
    """Notebook 01's header said 16 s where the README's table (from build/timings.json) said 14 s."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| \[(\d\d) [^\]]+\]\(notebooks/[^)]+\) \| [^|]+ \| ([^|]+?) \|$", readme, re.MULTILINE))
    assert len(table) == len(SOURCES), f"README's series table lists {sorted(table)}"
    for source in SOURCES:
        header = jupytext.read(source).cells[0].source
        found = re.search(r"^\| `workshop` \| [^|]+ \| ([\d.]+ (?:s|min)) \(measured", header, re.MULTILINE)
        if found:  # notebooks whose header gives a measured workshop time
            assert found.group(1) == table[source.name[:2]], (
                f"{source.name}: header says {found.group(1)}, README's table {table[source.name[:2]]}")


def test_the_float32_latent_200_code_is_as_much_smaller_as_notebook_06_says():
    from convae_utils.codecs import bits

    text = markdown(NOTEBOOKS / "06_rate_distortion.py")
    ratio = bits.bits_summary(200)["compression"]
    assert f"{ratio:.1f} times smaller" in text and bits.bits_summary(200)["smaller_than_image"]


@pytest.mark.parametrize("loaded", [True, False])
def test_notebook_03_says_whether_its_run_was_trained_now_or_loaded(loaded, capsys):
    """Issue 30, item 9: after "Loaded the finished run ...: nothing was trained" the notebook printed
    "2 epochs on photos10, 20 s of training", which read as if it had trained."""
    from types import SimpleNamespace

    [cell] = [c for c in jupytext.read(NOTEBOOKS / "03_training.py").cells
              if c.source.startswith("seconds = sum(run.history.epoch_seconds)")]
    history = SimpleNamespace(epochs_done=2, epoch_seconds=[10.0, 10.0], meta={"device": "cpu"})
    run = SimpleNamespace(complete=True, loaded=loaded, history=history)
    exec(cell.source, {"run": run, "bundle": SimpleNamespace(dataset="photos10", train=range(1000))})
    said = capsys.readouterr().out
    assert "2 epochs on photos10, 20 s of training" in said
    assert ("Trained earlier and loaded now" in said) is loaded and ("Trained now" in said) is not loaded
