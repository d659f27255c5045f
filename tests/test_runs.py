"""Run folders: load-or-train, resume, locking and refusal of foreign runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convae_utils.data import prepare_data
from convae_utils.errors import RunFolderError
from convae_utils.runs import Recipe, build_model, load_run, train_or_load
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
    # the checkpoint holds every epoch's pictures, the last one's too
    assert len(again.history.reconstructions) == again.history.epochs_done == 1
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
    # as if it had been started for 3 epochs and stopped at the end of epoch 2: the checkpoint says 3
    state = torch.load(two.run_dir / "checkpoint.pt", weights_only=True)
    torch.save({**state, "planned_epochs": 3}, two.run_dir / "checkpoint.pt")
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
    with pytest.raises(RunFolderError, match="damaged"):
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


# -- the harness's failing inputs from the field (issue 18) -----------------------------------------

def test_a_diverged_first_attempt_does_not_claim_the_folder(bundle, tmp_path, capsys):
    from convae_utils.errors import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="Lower the learning rate"):
        train_or_load(config(lr=10.0), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    # the retry the message advises is trained, not refused as "holds another run (lr=10.0 there)"
    retry = train_or_load(config(), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    assert retry.complete and not retry.loaded and retry.settings.lr == 1e-3
    assert json.loads((retry.run_dir / "config.json").read_text())["config"]["lr"] == 1e-3


def test_a_run_that_diverged_after_a_checkpoint_is_started_over_with_other_settings(bundle, tmp_path, capsys):
    from convae_utils.errors import TrainingDiverged
    from convae_utils.runs import _record, build_model
    from convae_utils.training import mse_step

    first = train_or_load(config(), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    recorded = json.loads((first.run_dir / "config.json").read_text())
    (first.run_dir / "config.json").write_text(json.dumps({**recorded, "diverged": "lr=0.001"}))
    (first.run_dir / "metrics.json").unlink()
    again = train_or_load(config(seed=1), data=bundle, run_dir=first.run_dir, progress=False, save_figures=False)
    assert not again.loaded and again.settings.seed == 1
    assert (first.run_dir / "checkpoint-diverged.pt").exists()
    assert "held a run that diverged" in capsys.readouterr().out


def test_a_finished_run_without_its_metrics_is_loaded_and_scored_again(bundle, tmp_path, capsys):
    first = train_or_load(config(num_epochs=2), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    (first.run_dir / "metrics.json").unlink()
    capsys.readouterr()
    opened = load_run(first.run_dir)  # finished, read from its checkpoint: not "not finished"
    assert opened.summary is None and opened.history.epochs_done == 2
    again = train_or_load(config(num_epochs=2), data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    said = capsys.readouterr().out
    assert again.loaded and "Resuming" not in said and "Trained and saved" not in said
    assert "nothing was trained" in said
    assert again.summary == json.loads((first.run_dir / "metrics.json").read_text())
    # the same weights, the same scores (up to the float rounding of another memory layout)
    for got, want in zip(again.summary["metrics"], first.summary["metrics"]):
        assert got["class"] == want["class"] and got["psnr"] == pytest.approx(want["psnr"], abs=1e-5)


def test_a_finished_named_run_loads_without_resuming(bundle, tmp_path, capsys):
    # notebook 07 run a second time: every finished extra model loads, nothing "resumes"
    for _ in range(2):
        run = train_or_load(config(), Recipe("extra"), bundle.replace(test=None), runs_root=tmp_path, progress=False)
    said = capsys.readouterr().out
    assert run.loaded and "Resuming" not in said and said.count("Trained and saved") == 1


RELEASE_RUNS = Path(__file__).parent / "data" / "runs-0.2.0"


def test_run_folders_of_release_0_2_load_unchanged(tmp_path, capsys):
    """Folders written by 0.2.0 (tests/data/runs-0.2.0, made by its train_or_load and train_side_run) load."""
    import shutil

    from convae_utils import corruptions
    from convae_utils.training import denoising_step

    shutil.copytree(RELEASE_RUNS, tmp_path, dirs_exist_ok=True)
    def files():  # the lock file aside, which any load creates
        return {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    settings = preset("smoke", train_size=64, val_size=16, test_size=32, num_epochs=1, latent_dim=8, base_channels=2)
    bundle = prepare_data(**settings.data_options())
    main_run = train_or_load(settings, data=bundle, runs_root=tmp_path, progress=False)
    assert main_run.loaded and main_run.complete and main_run.summary["test_images"] == 32
    side = train_or_load(settings, Recipe("denoise-test"), bundle.replace(test=None, exemplars=None),
                         runs_root=tmp_path, progress=False)
    assert side.loaded
    assert "Resuming" not in capsys.readouterr().out
    assert files() == before  # nothing rewritten
    opened = load_run(main_run.run_dir)
    assert opened.settings == settings and opened.summary == main_run.summary
    # a setting added after 0.2 reads, in its config.json, as its default: simulate one the file lacks
    recorded = json.loads((main_run.run_dir / "config.json").read_text())
    del recorded["config"]["output_activation"]
    (main_run.run_dir / "config.json").write_text(json.dumps(recorded))
    assert train_or_load(settings, data=bundle, runs_root=tmp_path, progress=False).loaded
    assert load_run(main_run.run_dir).settings == settings
    # and the 0.2 side run's record (its corruption, none) is compared: another step is another run
    with pytest.raises(RunFolderError, match="another run"):
        train_or_load(settings, Recipe("denoise-test", step=denoising_step(corruptions.gaussian_noise(0.1))),
                      bundle.replace(test=None, exemplars=None), runs_root=tmp_path, progress=False)


def _tanh_model(settings):
    from torch import nn
    model = build_model(settings)
    model.decoder.output_activation = nn.Tanh()
    return model


def test_a_builder_of_the_same_name_with_other_layers_is_another_run(bundle, tmp_path):
    """A learner's model and the worked solution share the builder's name; their layers tell them apart."""
    from torch import nn

    first = train_or_load(config(), Recipe("mine", build=_tanh_model), bundle.replace(test=None), runs_root=tmp_path,
                          progress=False)

    def sigmoid_model(settings):  # a learner's builder: the same qualified name as _tanh_model, other layers
        model = build_model(settings)
        model.decoder.output_activation = nn.Sigmoid()
        return model

    sigmoid_model.__qualname__, sigmoid_model.__module__ = _tanh_model.__qualname__, _tanh_model.__module__
    with pytest.raises(RunFolderError, match="architecture=") as refused:
        train_or_load(config(), Recipe("mine", build=sigmoid_model), bundle.replace(test=None), runs_root=tmp_path,
                      progress=False)
    assert "model=" not in str(refused.value)  # the names agree: only the layers tell them apart
    assert train_or_load(config(), Recipe("mine", build=_tanh_model), bundle.replace(test=None),
                         runs_root=tmp_path, progress=False).loaded
    assert first.complete


def test_the_train_or_load_route_checks_no_setting_again(bundle, tmp_path, monkeypatch):
    """latent_dim, lr and the other numbers are checked once, when the settings are made (issue 27)."""
    from convae_utils import checks, models, settings as settings_module, training

    settings = config(latent_dim=16)
    checked = []

    def spy(real):
        def check(name, *args, **kwargs):
            checked.append(name)
            return real(name, *args, **kwargs)
        return check

    for module in (checks, settings_module, models, training):
        for name in ("check_float", "check_int", "check_limit", "check_choice"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, spy(getattr(module, name)))
    train_or_load(settings, data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    assert not {"latent_dim", "lr", "batch_size", "num_epochs", "seed", "base_channels"} & set(checked), checked
