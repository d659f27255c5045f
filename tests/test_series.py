"""`python -m convae_utils series` (make run): executes notebooks in order, writes .ipynb, HTML, timings."""

import json
from argparse import Namespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from convae_utils import series
from convae_utils.errors import ConvaeError
from convae_utils.arguments import UsageError


def write_notebook(path, *sources):
    cells = [new_markdown_cell("# a test notebook")] + [new_code_cell(src) for src in sources]
    nbformat.write(new_notebook(cells=cells), path)


def args(tmp_path, **kw):
    given = dict(profile="smoke", dataset=None, notebooks=str(tmp_path / "nb"), out=str(tmp_path / "out"),
                 only=None, timeout=120)
    return Namespace(**{**given, **kw})


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVAE_PROFILE", raising=False)
    (tmp_path / "nb").mkdir()
    return tmp_path / "nb"


def test_runs_notebooks_in_order_with_the_profile_and_writes_html_and_timings(folder, tmp_path, capsys):
    write_notebook(folder / "02_second.ipynb", "import os\nprint('profile', os.environ['CONVAE_PROFILE'])")
    write_notebook(folder / "01_first.ipynb", "from convae_utils.callbacks import report\n"
                   "report('any wording at all: 0.5000')\nprint('epoch 1/1: train loss 0.7 (a plain print)')")
    write_notebook(folder / "notes.ipynb", "raise RuntimeError('not part of the series')")
    assert [p.name for p in series.find_notebooks(folder)] == ["01_first.ipynb", "02_second.ipynb"]
    assert series.run(args(tmp_path)) == 0
    out = tmp_path / "out"
    printed = capsys.readouterr()
    assert printed.out.index("01_first") < printed.out.index("02_second")
    # the package's progress reports reach the terminal, recognised by their prefix, not their wording
    assert "any wording at all: 0.5000" in printed.out + printed.err
    assert "a plain print" not in printed.out + printed.err
    executed = nbformat.read(out / "02_second.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "profile smoke"
    assert "profile smoke" in (out / "02_second.html").read_text()
    timings = json.loads((out / "timings.json").read_text())
    assert timings["profile"] == "smoke" and set(timings["seconds"]) == {"01_first", "02_second"}


def test_a_failing_notebook_stops_the_series_and_keeps_what_ran(folder, tmp_path):
    write_notebook(folder / "01_ok.ipynb", "x = 1")
    write_notebook(folder / "02_bad.ipynb", "raise ValueError('expected images of shape (N, 3, 32, 32)')")
    write_notebook(folder / "03_never.ipynb", "x = 3")
    with pytest.raises(ConvaeError, match="02_bad.ipynb failed.*expected images of shape"):
        series.run(args(tmp_path))
    out = tmp_path / "out"
    assert (out / "01_ok.html").exists() and (out / "02_bad.ipynb").exists()
    assert not (out / "03_never.ipynb").exists()
    failed = nbformat.read(out / "02_bad.ipynb", as_version=4)
    assert failed.cells[1].outputs[0]["output_type"] == "error"


def test_an_empty_folder_is_a_clear_error(folder, tmp_path):
    with pytest.raises(UsageError, match=f"no notebooks \\(NN_\\*.ipynb\\) in {folder}; pass --notebooks the folder"):
        series.run(args(tmp_path))
    write_notebook(folder / "01_data.ipynb", "x = 1")
    write_notebook(folder / "02_model.ipynb", "x = 2")
    with pytest.raises(UsageError, match="whose name contains --only 'tarining'; pass part of one of 01_data, "
                                         "02_model \\(e.g. --only 01\\)"):
        series.run(args(tmp_path, only="tarining"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("timeout", ["0", "-5", "1.5"])
def test_a_timeout_must_be_a_positive_whole_number_of_seconds(timeout, folder, tmp_path, capsys):
    from convae_utils import cli

    with pytest.raises(SystemExit) as info:  # (an empty folder: were it accepted, nothing would run)
        cli.main(["series", "--timeout", timeout, "--notebooks", str(folder), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "argument --timeout: expected a" in capsys.readouterr().err


def test_auto_dataset_is_settled_once_with_a_loud_fallback(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "data"))  # the autouse fixture closes the URL
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    write_notebook(folder / "01_only.ipynb", "import os\nprint(os.environ['CONVAE_DATASET'])")
    settings = args(tmp_path)
    settings.profile, settings.dataset = "workshop", "auto"
    assert series.run(settings) == 0
    out = capsys.readouterr().out
    assert "OFFLINE STAND-IN photos10" in out
    assert "Running 1 notebook with" in out and "Ran 1 notebook in" in out  # one notebook, not "1 notebooks"
    executed = nbformat.read(tmp_path / "out" / "01_only.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "photos10"
    assert json.loads((tmp_path / "out" / "timings.json").read_text())["dataset"] == "photos10"


def test_an_output_folder_that_is_a_file_is_refused_before_anything_starts(folder, tmp_path, monkeypatch, capsys):
    from convae_utils import cli

    def start(*args, **kwargs):
        raise AssertionError("a notebook was started")

    monkeypatch.setattr(series, "execute", start)
    monkeypatch.setattr(series, "resolve_dataset", start)  # nor a download
    write_notebook(folder / "01_only.ipynb", "x = 1")
    taken = tmp_path / "build.txt"
    taken.write_text("mine")
    with pytest.raises(SystemExit) as info:
        cli.main(["series", "--profile", "smoke", "--notebooks", str(folder), "--out", str(taken)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Errno" not in err, err
    assert f"--out must be a folder (where the executed notebooks and their HTML go), got the file {taken}" in err
    assert err.endswith("(see python -m convae_utils series --help)")
    assert taken.read_text() == "mine"


def test_a_failing_notebook_prints_its_whole_message_not_its_last_line(folder, tmp_path):
    """Issue 19: `make run DATASET=cifar10` offline printed only the last of the three ways out."""
    write_notebook(folder / "01_data.ipynb",
                   "from convae_utils.errors import DataError\n"
                   "raise DataError('could not download CIFAR-10: ConnectionRefusedError.\\nThree ways out:\\n'\n"
                   "                '  1. try again later\\n  2. download it yourself\\n  3. work offline')")
    with pytest.raises(ConvaeError) as info:
        series.run(args(tmp_path))
    message = str(info.value)
    assert message.startswith("01_data.ipynb failed: DataError: could not download CIFAR-10: ConnectionRefusedError.")
    for line in ("Three ways out:", "  1. try again later", "  2. download it yourself", "  3. work offline"):
        assert f"\n{line}\n" in message, message
    assert "\x1b[" not in message and str(tmp_path / "out" / "01_data.ipynb") in message


def test_ctrl_c_while_a_notebook_runs_is_one_line_and_exit_130(folder, tmp_path):
    """Issue 30, item 8: nbclient shuts the kernel down on SIGINT, and the command printed about 80 lines of
    tracebacks (DeadKernelError, ZMQError, AssertionError) and exited 1. The unfinished notebook is not written."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    started = tmp_path / "started"
    write_notebook(folder / "01_slow.ipynb", f"open({str(started)!r}, 'w').close()", "import time\ntime.sleep(120)")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "CONVAE_RUNS_DIR": str(tmp_path / "runs")}
    process = subprocess.Popen([sys.executable, "-m", "convae_utils", "series", "--profile", "smoke", "--dataset",
                                "shapes10", "--notebooks", str(folder), "--out", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    try:
        for _ in range(1200):  # the kernel has started and runs the first cell (at most two minutes)
            if started.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), process.communicate(timeout=30)
        time.sleep(1)  # inside the second cell
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("01_slow:")]  # its progress bar aside
    assert process.returncode == 130, err
    assert lines == ["python -m convae_utils series: interrupted; what was finished is kept, run the same command "
                     "again to go on from there"], err
    assert not (tmp_path / "out" / "01_slow.html").exists()


def test_a_page_made_for_the_kit_loads_nothing_from_the_internet():
    """Issue 30, item 9: the HTML in the kit's filled/ loaded MathJax and require.js from a CDN that an
    offline laptop cannot reach. Formulas are MathML; a widget's place says why it is empty from the start."""
    import re

    nb = new_notebook(cells=[new_markdown_cell("# t\n\n$$x^2 + y$$"), new_code_cell("1")])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                          "version_minor": 0}}
    online, offline = series.notebook_html(nb), series.notebook_html(nb, offline=True)
    assert re.search(r'<script[^>]*src="https://[^"]*(require|mathjax)', online)  # what make run's pages keep
    assert not re.search(r'<script[^>]*\bsrc="(https?:)?//', offline), "a script is loaded from the internet"
    assert "mathjax/" not in offline.lower() and "unpkg.com" not in offline and "require.min.js" not in offline
    assert "<math" in offline and json.dumps(series.WIDGETS_NOT_IN_PAGE_NOTE) in offline


def test_only_repeated_runs_each_named_notebook_in_the_series_order(folder, tmp_path, capsys):
    """`series --only 10 --only 03` ran 03 alone: the last --only won silently."""
    from convae_utils import cli

    for name in ("01_data", "03_training", "05_beyond", "10_learned_codec"):
        write_notebook(folder / f"{name}.ipynb", "x = 1")
    parsed = cli.build_parser().parse_args(["series", "--only", "10", "--only", "03", "--notebooks", str(folder)])
    assert parsed.only == ["10", "03"]
    assert series.run(args(tmp_path, only=parsed.only)) == 0
    out = capsys.readouterr().out
    assert "Running 2 notebooks" in out and out.index("03_training") < out.index("10_learned_codec")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.ipynb")) == ["03_training.ipynb", "10_learned_codec.ipynb"]
    assert series.find_notebooks(folder, "05") == [folder / "05_beyond.ipynb"]  # one text, as before


def test_an_only_that_names_no_notebook_is_refused_even_beside_one_that_does(folder, tmp_path, monkeypatch):
    def start(*args, **kwargs):
        raise AssertionError("a notebook was started")

    monkeypatch.setattr(series, "execute", start)
    monkeypatch.setattr(series, "resolve_dataset", start)
    write_notebook(folder / "01_data.ipynb", "x = 1")
    write_notebook(folder / "03_training.ipynb", "x = 3")
    with pytest.raises(UsageError, match="whose name contains --only '30'; pass part of one of 01_data, 03_training"):
        series.run(args(tmp_path, only=["03", "30"]))


def test_an_only_may_name_a_whole_file_as_the_kit_passes_it(folder, tmp_path, monkeypatch):
    """The kit runs one notebook at a time by its file name ('01_data.ipynb'): the check must match as
    find_notebooks does (the whole name), not the stem alone."""
    write_notebook(folder / "01_data.ipynb", "x = 1")
    series._check_only(folder, ["01_data.ipynb"], "no notebooks")
    assert series.find_notebooks(folder, ["01_data.ipynb"]) == [folder / "01_data.ipynb"]
