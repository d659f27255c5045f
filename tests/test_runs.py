"""Run folders: load-or-train, resume, locking and refusal of foreign runs."""

import json
import subprocess
import sys

import pytest

from convae_utils.data import prepare_data
from convae_utils.errors import RunFolderError
from convae_utils.runs import load_run, train_or_load
from convae_utils.settings import preset


@pytest.fixture(scope="module")
def bundle():
    return prepare_data(**preset("smoke", dataset="shapes10").data_options())


def config(**kw):
    return preset("smoke", **{"num_epochs": 1, **kw})


def test_a_finished_run_is_loaded_not_retrained(bundle, tmp_path):
    first = train_or_load(config(), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    assert not first.loaded and first.complete
    assert first.run_dir == tmp_path / "smoke-shapes10-latent200"
    recorded = json.loads((first.run_dir / "config.json").read_text())
    recorded["versions"]["torch"] = "the version on the machine that trained it"
    (first.run_dir / "config.json").write_text(json.dumps(recorded))
    again = train_or_load(config(), data=bundle, runs_root=tmp_path, progress=False)
    # loading on another machine keeps the versions that produced the run
    assert json.loads((first.run_dir / "config.json").read_text()) == recorded
    assert again.loaded and again.history.train_batch_loss == first.history.train_batch_loss
    assert again.summary == json.loads((first.run_dir / "metrics.json").read_text())
    opened = load_run(first.run_dir)
    assert opened.settings == first.settings and opened.dataset == "shapes10"
    assert list(opened.per_image.columns) == ["label", "class", "mse", "psnr", "ssim"]
    # classes come back in label order, as in a fresh run (not alphabetically, as a CSV would give)
    assert list(opened.per_image["class"].cat.categories) == list(bundle.test.classes)
    from convae_utils.metrics import summarize
    assert summarize(opened.per_image).equals(summarize(first.per_image))


def test_more_epochs_continue_the_same_run(bundle, tmp_path):
    one = train_or_load(config(), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    two = train_or_load(config(num_epochs=2), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    assert not two.loaded and two.history.epochs_done == 2
    assert two.history.train_batch_loss[:4] == one.history.train_batch_loss
    # asking for fewer epochs than a finished run holds (a notebook after `train --epochs 2`) loads it as it is
    fewer = train_or_load(config(num_epochs=1), data=bundle, runs_root=tmp_path, progress=False)
    assert fewer.loaded and fewer.history.epochs_done == 2 and fewer.settings.num_epochs == 2
    assert fewer.history.train_batch_loss == two.history.train_batch_loss
    assert fewer.summary == json.loads((two.run_dir / "metrics.json").read_text())


def test_an_unfinished_run_past_the_epochs_asked_is_refused_with_the_way_out(bundle, tmp_path):
    two = train_or_load(config(num_epochs=2), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    # as if it had been started for 3 epochs and stopped at the end of epoch 2: config.json says 3
    recorded = json.loads((two.run_dir / "config.json").read_text())
    recorded["config"]["num_epochs"] = 3
    (two.run_dir / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(RunFolderError, match=r"unfinished run that has already done 2 epochs, more than the 1 asked"):
        train_or_load(config(num_epochs=1), data=bundle, runs_root=tmp_path, progress=False)
    finished = train_or_load(config(num_epochs=3), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    assert not finished.loaded and finished.history.epochs_done == 3  # the way out: finish it


def test_the_variant_gets_its_own_folder(bundle, tmp_path):
    run = train_or_load(config(code_activation=None, output_activation="tanh"), data=bundle,
                        runs_root=tmp_path, progress=False, save_figures=False)
    assert run.run_dir.name == "smoke-shapes10-latent200-linearcode-tanhout"


def test_a_folder_in_use_by_another_process_is_refused(bundle, tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; "
         f"lock = FileLock({str(folder / '.lock')!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match="in use by another process"):
            train_or_load(config(), data=bundle, run_dir=folder, progress=False)
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # nothing written beside the lock
    finally:
        holder.kill()
        holder.wait()
    run = train_or_load(config(), data=bundle, run_dir=folder, progress=False, save_figures=False)
    assert run.complete  # the lock died with its process: no stale lock to clear by hand


def test_unfinished_or_foreign_folders_are_explained(bundle, tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="unreadable"):
        train_or_load(config(), data=bundle, run_dir=tmp_path, progress=False)


@pytest.mark.parametrize("field, value, message", [
    ("latent_dim", 0, "latent_dim must be at least 1"),
    ("val_size", -5, "val_size must be at least 1"),
    ("code_activation", "sigmoid", "code_activation must be one of"),
    ("output_activation", "relu", "output_activation must be one of"),
])
def test_bad_run_settings_fail_at_once(field, value, message):
    with pytest.raises(ValueError, match=message):
        config(**{field: value})
