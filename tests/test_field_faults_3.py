"""Faults from the field, round 3 (issue 19): each test failed before its fix.

Each fault stands for a kind (a message that names the wrong cause, an input that leaks, a learner
left stuck); the tests exercise the kind, not only the reported case. Items 6 and 9 need a browser
and live in tests/test_browser.py.
"""

from __future__ import annotations

import re

import pytest
import torch

from convae_utils.models import build_autoencoder

TINY = dict(latent_dim=16, base_channels=4)


# -- 1. what enters the model is checked where it enters: dtype and device too --------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_model_refuses_images_of_another_dtype_by_name(dtype):
    model = build_autoencoder(**TINY)
    with pytest.raises(ValueError, match=r"expected images of dtype float32 \(the model's weights\), got "
                                         + str(dtype).removeprefix("torch.") + r".*images\.to\(torch\.float32\)"):
        model(torch.zeros(2, 3, 32, 32, dtype=dtype))


def test_decoder_refuses_codes_of_another_dtype_by_name():
    model = build_autoencoder(**TINY)
    with pytest.raises(ValueError, match=r"expected codes of dtype float32.*got float64"):
        model.decode(torch.zeros(2, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected codes as floats, got dtype torch\.int64"):
        model.decode(torch.zeros(2, 16, dtype=torch.long))


def test_matching_dtypes_and_autocast_still_run():
    model = build_autoencoder(**TINY).double()
    assert model(torch.zeros(2, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
    model = build_autoencoder(**TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts inputs itself: no refusal
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_model_refuses_images_on_another_device_by_name():
    model = build_autoencoder(**TINY).to("meta")
    with pytest.raises(ValueError, match=r"expected images on meta \(where the model is\), got images on cpu"):
        model(torch.zeros(2, 3, 32, 32))


# -- 3. a damaged extracted CIFAR-10 batch is named whatever happens next -------------------------

def _damaged_without_archive(fake_cifar, root):
    from cifar_fixtures import BASE_FOLDER

    root = fake_cifar.install(root, archive=False)
    batch = root / BASE_FOLDER / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])  # truncated, and no .tar.gz to extract it from
    return root


def test_damaged_batch_is_named_when_the_repairing_download_fails(fake_cifar, tmp_path):
    from convae_utils.cifar10 import download_cifar10, load_cifar10
    from convae_utils.errors import DataError

    root = _damaged_without_archive(fake_cifar, tmp_path / "data")
    for attempt in (lambda: load_cifar10("train", root, progress=False),  # the default: download=True
                    lambda: download_cifar10(root, progress=False)):
        with pytest.raises(DataError) as info:
            attempt()
        message = str(info.value)
        assert "data_batch_3 damaged" in message and "ConnectionRefusedError" in message
        assert "python -m convae_utils download" in message and "--dataset photos10" in message  # the ways out


def test_auto_falls_back_naming_the_damaged_batch(fake_cifar, tmp_path, monkeypatch):
    from convae_utils.data import resolve_auto

    root = _damaged_without_archive(fake_cifar, tmp_path / "data")
    for download in (True, False):
        name, reason = resolve_auto(root, download=download)
        assert name == "photos10" and "data_batch_3 damaged" in reason, reason
    assert "is not in" in resolve_auto(tmp_path / "empty", download=False)[1]  # nothing there: said as before


# -- 2. a full disk is said as such, wherever a file is written ------------------------------------

def _enospc() -> OSError:
    import errno
    import os

    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _write_then_fill(handle):
    handle.write(b"x" * 3000)
    raise _enospc()


def _torch_write_then_fill(handle):
    """torch.save on a full disk: its own RuntimeError, the OSError only in the chain."""
    handle.write(b"x" * 3000)
    try:
        raise _enospc()
    except OSError as exc:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 3000 vs 2990") from exc


@pytest.mark.parametrize("write", [_write_then_fill, _torch_write_then_fill])
def test_a_full_disk_is_named_and_the_previous_file_survives(tmp_path, write):
    from convae_utils.errors import DiskFullError
    from convae_utils.fileio import atomic_write

    target = tmp_path / "run" / "checkpoint.pt"
    atomic_write(target, lambda handle: handle.write(b"previous" * 1000))
    with pytest.raises(DiskFullError) as info:
        atomic_write(target, write, durable=True)
    message = str(info.value)
    assert f"the disk holding {target.parent} is full" in message
    assert "stopped after 0.0 MB" in message and "previous version, kept unchanged, is 0.0 MB" in message
    assert "Free some space on that disk, or choose a folder on another disk" in message
    assert info.value.folder == target.parent and info.value.needed_bytes == 8000
    assert target.read_bytes() == b"previous" * 1000  # the previous file survives
    assert sorted(p.name for p in target.parent.iterdir()) == ["checkpoint.pt"]  # no temporary file left


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    from convae_utils.fileio import atomic_write

    def fail(handle):
        raise RuntimeError("unexpected pos")  # the same words without a full disk behind them
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic_write(tmp_path / "x.pt", fail)


def test_train_on_a_full_disk_ends_in_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    from convae_utils import checkpoints
    from convae_utils.cli import main

    monkeypatch.setenv("CONVAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CONVAE_PROFILE", raising=False)
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    real_save, saves = torch.save, []

    def save_until_full(obj, handle, *args, **kwargs):
        saves.append(1)
        if len(saves) > 1:  # the first epoch's checkpoint fits; the second finds the disk full
            return _torch_write_then_fill(handle)
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    assert main(["train", "--profile", "smoke", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    folder = tmp_path / "runs" / "smoke-shapes10-latent200"
    assert f"error: the disk holding {folder} is full: writing checkpoint.pt" in err
    monkeypatch.setattr(torch, "save", real_save)
    assert checkpoints.load_checkpoint(folder / "checkpoint.pt")["epoch"] == 1


def test_a_full_disk_while_downloading_cifar10_is_named_with_what_it_needs(tmp_path, monkeypatch):
    from convae_utils import cifar10
    from convae_utils.errors import DiskFullError

    def stream_until_full(url, part, timeout, progress):
        part.write_bytes(b"x" * 100)
        raise _enospc()

    monkeypatch.setattr(cifar10, "_stream_once", stream_until_full)
    with pytest.raises(DiskFullError, match=r"the disk holding the data folder .* is full: downloading the archive "
                                            r"stopped \(CIFAR-10 needs 170 MB for the archive.*--data-dir"):
        cifar10.download_cifar10(tmp_path / "data", progress=False, retries=3)
    assert list((tmp_path / "data").glob("*.part")) == []


# -- 4. a relative folder in the environment means one place, whoever reads it -------------------

def test_relative_folder_variables_mean_one_place_from_any_working_folder(monkeypatch):
    from pathlib import Path

    from convae_utils.settings import data_dir, project_root, runs_dir

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("CONVAE_RUNS_DIR", "runs-shared")
    monkeypatch.setenv("CONVAE_DATA_DIR", "usb-data")
    seen = set()
    for cwd in (root, root / "notebooks", root / "convae_utils"):  # the CLI's, a kernel's, another
        monkeypatch.chdir(cwd)
        assert project_root() == root
        seen.add((runs_dir(), data_dir()))
    assert seen == {(root / "runs-shared", root / "usb-data")}
    monkeypatch.setenv("CONVAE_RUNS_DIR", "/abs/runs")  # absolute and given folders are taken as they are
    assert runs_dir() == Path("/abs/runs") and runs_dir("mine") == Path("mine")
    monkeypatch.setenv("CONVAE_RUNS_DIR", "")
    assert runs_dir() == root / "runs"


def test_readme_says_where_relative_folder_variables_point():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in ("CONVAE_DATA_DIR", "CONVAE_RUNS_DIR"):
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
        assert "relative to the project root" in row


# -- 10. every command a user is told to type works as typed after the README's set-up -----------

def test_readme_activates_the_environment_before_its_first_bare_python_command():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    activate = readme.index("source .venv/bin/activate")
    assert ".venv\\Scripts\\Activate.ps1" in readme  # PowerShell too
    bare = [m.start() for m in re.finditer(r"(?<![\w/.\\-])(python|pip) (-m |benchmarks/|install)", readme)]
    assert bare, "the README's commands were not found"
    early = [readme[i:i + 60] for i in bare if i < activate]
    assert early == [], f"bare python/pip before the README says to activate .venv: {early}"


def test_printed_hints_name_the_python_they_run_in(monkeypatch):
    import shutil
    import sys

    from convae_utils import settings
    from convae_utils.cifar10 import download_command

    venv_python = "/home/learner/convae/.venv/bin/python"
    monkeypatch.setattr(sys, "executable", venv_python)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/python")  # a terminal without the venv
    assert settings.python_command() == venv_python
    assert download_command(settings.data_dir(), "https://x/cifar-10-python.tar.gz").startswith(
        f"{venv_python} -m convae_utils download")
    monkeypatch.setattr(shutil, "which", lambda name: venv_python)  # the venv is active: plain python works
    assert settings.python_command() == "python"


# -- 13. leftovers and duplicates ------------------------------------------------------------------

def test_the_notebook_tests_runs_folder_reaches_the_tests_and_is_removed_after(tmp_path):
    """notebooks/conftest.py's temporary runs folder is there during the session and gone after it."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "nbs"
    folder.mkdir()
    shutil.copy(root / "notebooks" / "conftest.py", folder / "conftest.py")
    (folder / "test_sees_runs.py").write_text(
        "import os, pathlib\n"
        "def test_runs_folder():\n"
        "    runs = pathlib.Path(os.environ['CONVAE_RUNS_DIR'])\n"
        "    assert runs.is_dir() and runs.name.startswith('convae-nbtest-runs-')\n"
        "    (runs / 'run' ).mkdir(); (runs / 'run' / 'checkpoint.pt').write_bytes(b'x' * 1000)\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CONVAE_RUNS_DIR"}
    env.update(TMPDIR=str(temp), PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(temp.glob("convae-nbtest-runs-*")) == []


def test_make_uses_an_active_conda_environment_instead_of_a_second_venv(tmp_path):
    import os
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    conda = tmp_path / "envs" / "convae"
    (conda / "bin").mkdir(parents=True)
    (conda / "bin" / "python").write_text("")

    def dry_run(**env) -> str:
        done = subprocess.run(["make", "-n", "-C", str(root), "test"], capture_output=True, text=True,
                              env={**os.environ, **env})
        return done.stdout + done.stderr

    planned = dry_run(CONDA_PREFIX=str(conda), CONDA_DEFAULT_ENV="convae")
    assert "-m venv" not in planned and f"{conda}/bin/python -m pytest tests" in planned, planned
    planned = dry_run(CONDA_PREFIX=str(conda), CONDA_DEFAULT_ENV="base")  # never into conda's base
    assert ".venv/bin/python -m pytest tests" in planned, planned


# -- 5. an old or missing widget library: one line with the version needed, and Run all goes on -----

def _history(epochs: int = 3):
    import numpy as np

    from convae_utils.history import History

    g = torch.Generator().manual_seed(0)
    return History(batches_per_epoch=2, train_batch_loss=list(np.linspace(0.5, 0.1, 2 * epochs)),
                   train_epoch_loss=[0.3 / e for e in range(1, epochs + 1)],
                   val_epoch_loss=[0.25 / e for e in range(1, epochs + 1)],
                   reconstructions=[torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
                                    for _ in range(epochs)],
                   exemplars=torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g),
                   classes=["a", "b"])


@pytest.mark.parametrize("library, said", [("7.8.1", "ipywidgets 7.8.1 is installed"),
                                           (None, "ipywidgets is not installed")])
def test_epoch_scrubber_without_ipywidgets_8_is_one_line_and_the_player_still_works(monkeypatch, library, said):
    import types

    import ipywidgets

    from convae_utils import widgets

    if library is None:
        monkeypatch.setattr(widgets, "widgets", None)
    else:  # ipywidgets 7: everything the scrubber uses but Stack
        old = types.SimpleNamespace(**{name: getattr(ipywidgets, name) for name in ("VBox", "HBox", "Play",
                                       "IntSlider", "Image", "HTML", "Layout", "jslink")}, __version__=library)
        monkeypatch.setattr(widgets, "widgets", old)
    shown = widgets.epoch_scrubber(_history())  # no AttributeError: "Run all" goes on
    text = repr(shown)
    assert len(text.splitlines()) == 1
    assert text.startswith("The epoch slider needs ipywidgets 8.0 or newer (" + said + ")")
    assert 'pip install "ipywidgets>=8.0"' in text and "convae-widget-note" in shown._repr_html_()
    assert "convae-animation" in widgets.animation_html(_history())  # the player beside it needs no widgets
    with pytest.raises(ValueError):  # bad input is still refused where it enters
        widgets.epoch_scrubber(_history(), interval_ms=0)


# -- 6. keys on a focused control belong to that control ------------------------------------------

def test_the_scrubbers_controls_keep_their_keys_and_the_script_comes_first(monkeypatch):
    from IPython.display import Javascript

    from convae_utils import widgets

    scrubber = widgets.epoch_scrubber(_history())
    controls = scrubber.children[0]
    assert widgets.KEYS_CLASS in controls._dom_classes and scrubber.slider in controls.children
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.append((objs, kw)))
    scrubber._ipython_display_()
    (first, _), (second, kw) = shown
    assert isinstance(first[0], Javascript) and "stopPropagation" in first[0].data
    assert f'".{widgets.KEYS_CLASS}"' in first[0].data or f".{widgets.KEYS_CLASS}" in first[0].data
    assert kw == {"raw": True} and "application/vnd.jupyter.widget-view+json" in second[0]


# -- 7. a lesson that makes a point on purpose says so, and the warning does not undo it ------------

def test_code_size_warning_states_the_condition_instead_of_ordering_a_smaller_code():
    import re
    import warnings

    from convae_utils.codecs.bits import CodeSizeWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_autoencoder(1000, base_channels=4)
    [warning] = [w for w in caught if issubclass(w.category, CodeSizeWarning)]
    message = str(warning.message)
    assert "compresses nothing" in message and "fine for comparing bottlenecks" in message
    assert "to compress, use a latent size of at most 767" in message
    assert not re.search(r"(^|\. )Use a latent size", message)  # no order to undo the lesson


def _notebook_sources():
    from pathlib import Path

    import jupytext

    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py")):
        nb = jupytext.read(path)
        yield path.name, nb.cells


def test_notebooks_that_build_a_code_larger_than_the_image_say_the_warning_is_on_purpose():
    import re

    from convae_utils.codecs.bits import FLOAT32_BITS, IMAGE_BITS

    checked = []
    for name, cells in _notebook_sources():
        code = "\n".join(c.source for c in cells if c.cell_type == "code")
        latents = {int(n) for line in code.splitlines() if re.match(r"\s*\w*LATENT\w* = ", line)
                   for n in re.findall(r"\b\d{2,5}\b", line.split("#")[0])}
        if any(n * FLOAT32_BITS >= IMAGE_BITS for n in latents):
            text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
            assert "`CodeSizeWarning`" in text, f"{name} builds a code larger than the image without saying why"
            checked.append(name)
    assert {"02_architecture.py", "04_bottleneck.py", "06_rate_distortion.py"} <= set(checked)


# -- 9. text that describes what is shown holds for what is shown --------------------------------

def test_stand_in_descriptions_name_the_stand_in_they_describe():
    import re

    for name, cells in _notebook_sources():
        for cell in cells:
            if cell.cell_type != "markdown":
                continue
            for sentence in re.split(r"(?<=[.;:])\s", " ".join(cell.source.replace("#", " ").split())):
                if "patches of ten photographs" in sentence and "stand-in" in sentence:
                    assert "photos10" in sentence, f"{name}: {sentence!r} holds only for photos10"


def test_the_scrubbers_heading_says_how_it_shows_two_models():
    for name, cells in _notebook_sources():
        for index, cell in enumerate(cells):
            if cell.cell_type == "code" and "epoch_scrubber(histories)" in cell.source:
                before = cells[index - 1].source
                assert "side by side" not in before and "one above the other" in before, name


# -- 8. a reopened notebook's "model not found" is explained where the learner meets it ----------

def test_model_not_found_is_explained_next_to_every_slider_and_in_troubleshooting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    trouble = readme[readme.index("## Troubleshooting"):]
    assert "model not found" in trouble and "re-run that cell" in trouble
    sliders = 0
    for name, cells in _notebook_sources():
        for index, cell in enumerate(cells):
            if cell.cell_type == "code" and "epoch_scrubber(" in cell.source:
                sliders += 1
                after = " ".join(next(c.source for c in cells[index + 1:] if c.cell_type == "markdown").split())
                assert "model not found" in after and "re-run the cell above" in after, name
    assert sliders >= 2


# -- 14. what the README says about native bfloat16 comes from a run in the repository ------------

def test_readme_bf16_claim_points_at_its_measurement():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert "What would change this: a CPU with native bfloat16" not in readme  # measured now, not hoped
    [cited] = re.findall(r"`(benchmarks/results/bench-amp-[\w-]+\.txt)`", readme)
    result = (root / cited).read_text()
    assert "# command: " in result and "--amp" in result and "load average" in result
    rows = {line.split()[1]: line.split() for line in result.splitlines() if re.match(r"\s+200\s+(package|article)", line)}
    train_amp, train_f32 = int(rows["package+amp"][2]), int(rows["package"][2])
    assert f"training at {train_amp} images/s against float32's {train_f32}" in " ".join(readme.split())


# -- 12. the exported HTML as a reader meets it ------------------------------------------------------

def test_exported_pages_link_to_pages_not_to_notebook_json():
    import re
    from pathlib import Path

    import nbformat

    from convae_utils.series import notebook_html

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "02_architecture.ipynb", as_version=4)
    page = notebook_html(nb)
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert "03_training.html" in hrefs and "01_data.html" in hrefs
    assert [h for h in hrefs if h.endswith(".ipynb") and "://" not in h] == []
    assert "03_training.ipynb" in "".join(c.source for c in nb.cells)  # the notebook itself is untouched


def test_tables_are_shown_whole_after_the_setup_banner(capsys):
    import pandas as pd

    from convae_utils import settings

    long_source = "Ballé et al., End-to-end optimized image compression, ICLR 2017, Table 2 and Figure 8 (Kodak)"
    table = pd.DataFrame({f"column {i}": [f"value {i}"] * 3 for i in range(25)}).assign(source=long_source)
    with pd.option_context("display.max_colwidth", 50, "display.max_columns", 20):  # pandas' defaults
        assert "..." in table._repr_html_()
        settings.banner(settings.preset("smoke"), "shapes10", torch.device("cpu"))
        shown = table._repr_html_()
    assert "..." not in shown and long_source in shown and "column 24" in shown


def test_every_frame_has_clear_room_above_its_title():
    """The player's frame titles were drawn 4-5 px under the frame's top edge, and read as clipped."""
    import io

    import numpy as np
    from PIL import Image

    from convae_utils import widgets

    for histories, named in (({"latent 200": _history(4), "latent 1000 (linear code)": _history(4)}, True),
                             ({"x": _history(4)}, False)):
        for frame in widgets.epoch_frames(histories, show_names=named):
            pixels = np.asarray(Image.open(io.BytesIO(frame)).convert("L"))
            first_ink = int(np.where((pixels < 200).any(axis=1))[0][0])
            assert first_ink >= 8, f"the title starts {first_ink} px under the frame's top"


# -- entry points that fit or optimise on a learner's images check their scale (0..255 would not fail) --

def _vae_interpolate(images):
    from convae_utils import vae

    model = vae.build_vae(2, 8, 0)
    return vae.interpolate(model, images[:1], images[1:2], steps=3)


def _codec_from_autoencoder(images):
    from convae_utils.codecs import learned
    from convae_utils.spatial import SpatialAutoencoder

    return learned.codec_from_autoencoder(SpatialAutoencoder(4, 8, 0, seed=0), images)


def _codec_builder(images):  # what notebook 10 calls: refused here, not later inside train_or_load
    from convae_utils.codecs import learned
    from convae_utils.spatial import SpatialAutoencoder

    return learned.codec_builder(SpatialAutoencoder(4, 8, 0, seed=0), images, hyperprior=True)


def _refine_codes(images):
    from convae_utils.models import refine_codes
    from convae_utils.spatial import SpatialAutoencoder

    return refine_codes(SpatialAutoencoder(4, 8, 0, seed=0).eval(), images, steps=1)


@pytest.mark.parametrize("call", [_codec_from_autoencoder, _codec_builder, _refine_codes, _vae_interpolate],
                         ids=["codec_from_autoencoder", "codec_builder", "refine_codes", "interpolate"])
@pytest.mark.parametrize("pixels, said", [
    (lambda x: (x + 1) * 127.5, "normalised to [-1, 1], got values in [0, "),  # uint8's scale, as floats
    (lambda x: x.clone().index_fill_(0, torch.tensor([1]), float("nan")), "NaN or infinite"),
], ids=["0..255", "NaN"])
def test_images_on_the_wrong_scale_are_refused_where_a_learner_passes_them(call, pixels, said):
    images = torch.linspace(-1, 1, 4 * 3 * 32 * 32).reshape(4, 3, 32, 32)
    call(images)  # the right scale runs
    with pytest.raises(ValueError, match=re.escape(said)):
        call(pixels(images))


def test_interpolate_takes_one_image_at_each_end_and_says_how_to_pick_one():
    from convae_utils import vae

    model = vae.build_vae(2, 8, 0)
    x = torch.linspace(-1, 1, 4 * 3 * 32 * 32).reshape(4, 3, 32, 32)
    assert vae.interpolate(model, x[:1], x[1:2], steps=3).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match=re.escape("expected first to be one image, shape (1, 3, 32, 32), got 2 "
                                                   "images; pass one of them, e.g. x[i:i + 1]")):
        vae.interpolate(model, x[:2], x[2:4])
