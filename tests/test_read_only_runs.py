"""Shared runs on a read-only file system (issue 30 item 4, issue 31) and files a newer PyTorch wrote (item 5).

A finished run loads without writing anything; a run that needs training says where it can train
instead, and with the default runs folder trains in the participant's own folder, said. A folder is
made read-only the way a hub's shared volume is: a read-only bind mount where this machine allows one
(as root, which ignores permissions), else ``chmod -R a-w`` (as a user, which cannot write there).
"""

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from convae_utils import corruptions, runs, settings, vae
from convae_utils.callbacks import OneCycle
from convae_utils.checkpoints import load_checkpoint, save_checkpoint
from convae_utils.data import prepare_data
from convae_utils.errors import CheckpointError, RunFolderError
from convae_utils.history import History
from convae_utils.models import build_autoencoder
from convae_utils.runs import Recipe, load_run, train_or_load
from convae_utils.training import denoising_step, make_adamw

RELEASE_RUNS = Path(__file__).parent / "data" / "runs-b1e4154"
SETTINGS = settings.preset("smoke", train_size=64, val_size=16, test_size=32, num_epochs=1, latent_dim=8,
                           base_channels=2)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` and everything in it cannot be written for the ``with`` block (EROFS or EACCES)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield "permission"
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("as root permissions are ignored, and this machine cannot make a read-only bind mount")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("this machine cannot remount a bind mount read-only")
        yield "read-only file system"
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def _files(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def build_spatial(run_settings):  # notebook 08's builder as the fixture recorded it (module __main__)
    from convae_utils import models
    from convae_utils.exercises.ex08 import build_spatial_autoencoder  # 08.1's worked solution

    torch.manual_seed(run_settings.seed)
    return models.SequentialAutoencoder(*build_spatial_autoencoder(1, 2))


build_spatial.__module__ = "__main__"


def release_runs(bundle):
    """(settings, recipe, data, start_from) of each folder in tests/data/runs-b1e4154 (tests/data/make_release_runs.py)."""
    no_test = bundle.replace(test=None, exemplars=None)
    return {
        "smoke-shapes10-latent8-c2": (SETTINGS, runs.MAIN, bundle, None),
        "smoke-shapes10-latent8-c2-denoise-test": (
            SETTINGS, Recipe("denoise-test", step=denoising_step(corruptions.gaussian_noise(0.1, seed=0))), no_test,
            build_autoencoder(8, base_channels=2)),
        "smoke-shapes10-latent8-c2-detector-no3": (SETTINGS, Recipe("detector-no3", options={"held_out_class": 3}),
                                                   no_test, None),
        "smoke-shapes10-latent16-c2-spatial": (
            SETTINGS.replace(lr=6e-3, latent_dim=16),
            Recipe("spatial", build=build_spatial, optimizer=make_adamw(), callbacks=[OneCycle()]), bundle, None),
        "smoke-shapes10-latent16-c2-vae-beta1": (
            SETTINGS.replace(latent_dim=16, lr=2e-3),
            Recipe("vae-beta1", build=vae.vae_builder(1, 2), step=vae.vae_step(1.0)),
            bundle.replace(exemplars=None), None),
    }


@pytest.fixture(scope="module")
def bundle():
    return prepare_data(**SETTINGS.data_options())


@pytest.fixture
def shared(tmp_path):
    """A copy of the release's finished runs: the instructor's shared runs folder."""
    folder = tmp_path / "shared"
    shutil.copytree(RELEASE_RUNS, folder)
    return folder


def test_run_folders_of_main_before_the_recipe_load_unchanged(bundle, shared, capsys):
    """Every kind of run main made before the recipe (b1e4154) loads with today's code, and no file changes."""
    before = _files(shared)
    for folder, (run_settings, recipe, data, start_from) in release_runs(bundle).items():
        run = train_or_load(run_settings, recipe, data, start_from=start_from, runs_root=shared, progress=False)
        assert run.loaded and run.complete and run.run_dir == shared / folder, folder
    assert _files(shared) == before
    said = capsys.readouterr().out
    assert "Resuming" not in said and "Trained" not in said
    opened = load_run(shared / "smoke-shapes10-latent8-c2")
    assert opened.settings == SETTINGS and opened.summary["test_images"] == 32


def test_finished_runs_load_from_a_read_only_folder_without_writing(bundle, shared, capsys):
    before = _files(shared)
    with read_only(shared):
        for run_settings, recipe, data, start_from in release_runs(bundle).values():
            assert train_or_load(run_settings, recipe, data, start_from=start_from, runs_root=shared,
                                 progress=False).loaded
        assert load_run(shared / "smoke-shapes10-latent8-c2").summary is not None
    assert _files(shared) == before and not list(shared.rglob(".lock"))


def test_a_run_not_finished_in_a_read_only_folder_says_where_to_train(bundle, shared):
    with read_only(shared) as kind, pytest.raises(RunFolderError) as refused:
        train_or_load(SETTINGS.replace(latent_dim=4), data=bundle, runs_root=shared, progress=False)
    said = str(refused.value)
    assert "is not trained yet" in said and "folder of your own" in said
    assert ("read-only file system" in said) == (kind == "read-only file system")


def test_with_the_default_runs_folder_read_only_a_participant_trains_in_their_own(bundle, shared, tmp_path,
                                                                                  monkeypatch, capsys):
    """A hub: $CONVAE_RUNS_DIR is the shared read-only folder (or a read-only project checkout's runs/)."""
    own = tmp_path / "own"
    monkeypatch.setenv(settings.RUNS_DIR_ENV, str(shared))
    monkeypatch.setenv(settings.OWN_RUNS_DIR_ENV, str(own))
    with read_only(shared):
        assert train_or_load(SETTINGS, data=bundle, progress=False).loaded       # the shared run
        new = SETTINGS.replace(latent_dim=4)
        trained = train_or_load(new, data=bundle, progress=False, save_figures=False)
        assert not trained.loaded and trained.run_dir == own / new.folder_name("shapes10")
        assert f"trains in your own folder {trained.run_dir} instead" in capsys.readouterr().out
        again = train_or_load(new, data=bundle, progress=False)                   # found in their own folder
        assert again.loaded and again.run_dir == trained.run_dir


def test_a_read_only_data_folder_serves_the_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with read_only(data):
        bundle = prepare_data("shapes10", train_size=64, val_size=16, test_size=32, root=data)
    assert len(bundle.train) == 64


def test_the_command_line_loads_a_finished_run_from_a_read_only_folder(tmp_path):
    folder = tmp_path / "shared-run"
    command = [sys.executable, "-m", "convae_utils", "train", "--profile", "smoke", "--no-progress",
               "--train-size", "64", "--val-size", "16", "--test-size", "32", "--epochs", "1", "--latent-dim", "8"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    assert subprocess.run(command + ["--run-dir", str(folder)], env=env, capture_output=True).returncode == 0
    with read_only(tmp_path) as kind:
        loaded = subprocess.run(command + ["--run-dir", str(folder)], env=env, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        assert "nothing was trained" in loaded.stdout
        other = subprocess.run(command + ["--runs-dir", str(tmp_path), "--latent-dim", "4"], env=env,
                               capture_output=True, text=True)
    assert other.returncode == 2
    assert "a finished run there would load without writing" in other.stderr
    if kind == "read-only file system":  # the cause is named as it is, not as a missing permission
        assert "read-only file system" in other.stderr and "no permission" not in other.stderr


# -- item 5: a file a newer PyTorch wrote is good, and never called damaged ------------------------------

def _as_if_newer_torch(path: Path, version: int = 99) -> None:
    """Rewrite ``path``'s archive as a newer torch would mark it: a file format this torch cannot read."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            archive.writestr(info, f"{version}\n".encode() if info.filename.endswith("/version")
                             and "/.data/" not in info.filename else data)


def test_a_checkpoint_from_a_newer_pytorch_says_upgrade_not_delete(bundle, shared, tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", build_autoencoder(8, base_channels=2), None, History(), None, epoch=1)
    _as_if_newer_torch(path)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    said = str(refused.value)
    assert "newer PyTorch" in said and "Upgrade PyTorch" in said and "file format 99" in said
    assert "damaged" not in said and "delete" not in said
    run_dir = shared / "smoke-shapes10-latent8-c2"
    _as_if_newer_torch(run_dir / "checkpoint.pt")
    for load in (lambda: load_run(run_dir),
                 lambda: train_or_load(SETTINGS, data=bundle, runs_root=shared, progress=False)):
        with pytest.raises(CheckpointError, match="newer PyTorch") as refused:
            load()
        assert "damaged" not in str(refused.value) and "delete" not in str(refused.value)


def test_an_unreadable_record_is_not_called_damaged(shared, monkeypatch):
    record = shared / "smoke-shapes10-latent8-c2" / "config.json"
    real = Path.read_text

    def refused(self, *args, **kwargs):
        if self == record:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refused)
    with pytest.raises(RunFolderError, match="could not be read") as caught:
        load_run(record.parent)
    assert "delete" not in str(caught.value) and "damaged" not in str(caught.value)
