"""Run folders: train once, load ever after. One harness for every model the series trains.

Introduced in notebook 03 (training); every later notebook and ``python -m convae_utils train`` use it.
A run folder holds everything one training run produced::

    runs/<profile>-<dataset>-latent<L>[-variant][-<name>]/
        config.json        the settings, the run's record (model, step, data sizes) and the versions
        checkpoint.pt      weights, optimiser, history, position; written after every epoch (atomic)
        history.json       losses and timings as plain JSON
        metrics.json       test-set MSE / PSNR / SSIM, overall and per class
        per_image.csv      the same metrics for every test image
        epochs/epoch_NN.png   originals over reconstructions after each epoch
        loss_curves.png, reconstruction_strip.png

:func:`train_or_load` returns a finished run as it is, resumes an interrupted one, and trains a new
one otherwise: the series' main models, and any other (a denoiser, notebook 08's model, a VAE) as a
*named* run with its own model builder and step. What a run is (finished, interrupted, how far) is
read from its checkpoint. A lock keeps two processes from writing the same folder at once. A folder
whose first attempt failed before its first checkpoint, or diverged, does not hold a run: a second
attempt with other settings starts over there. A field added to the settings later reads, in an
older ``config.json`` that lacks it, as its default: run folders of earlier versions keep loading.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from torch import nn

from .callbacks import Callback, ReconstructExemplars, StallGuard, report
from .checkpoints import Checkpoint, load_checkpoint, load_weights
from .errors import RunFolderError, TrainingDiverged
from .fileio import folder_lock, write_json
from .history import History
from .models import build_autoencoder
from .settings import RunSettings, pick_device, python_command, runs_dir, versions
from .training import Step, fit, mse_step, step_name

if TYPE_CHECKING:
    import pandas as pd

    from .images import ImageSet

CONFIG_FILE, CHECKPOINT_FILE, HISTORY_FILE = "config.json", "checkpoint.pt", "history.json"
METRICS_FILE, PER_IMAGE_FILE = "metrics.json", "per_image.csv"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def build_model(settings: RunSettings) -> nn.Module:
    """The article's autoencoder these settings describe, with seeded initial weights (the default builder)."""
    return build_autoencoder(**settings.model_options())


@dataclass
class Run:
    """A trained (or partly trained) run and what it produced."""

    settings: RunSettings
    run_dir: Path
    dataset: str
    model: nn.Module
    history: History
    summary: dict | None = None          # metrics.json content (None: not evaluated)
    per_image: pd.DataFrame | None = None  # per-image test metrics
    loaded: bool = False                 # True: nothing was trained in this call
    complete: bool = True                # False: interrupted; call train_or_load again to resume
    files: dict = field(default_factory=dict)
    name: str | None = None              # a named run's name (None: one of the series' main runs)

    @property
    def label(self) -> str:
        variant = self.settings.variant()
        label = f"latent {self.settings.latent_dim}" + (f" ({variant})" if variant else "")
        return f"{self.name}, {label}" if self.name else label


# -- what a folder holds ----------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is unreadable ({exc}); delete the run folder {path.parent} to start over") from exc


def _builder_name(build: Callable) -> str:
    return f"{getattr(build, '__module__', '?')}.{getattr(build, '__qualname__', type(build).__name__)}"


def architecture_digest(model: nn.Module) -> str:
    """16 hex digits that name a model's layers as PyTorch prints them (``repr(model)``), not its weights.

    For module classes written outside PyTorch and this package (a learner's own block in a notebook)
    the source of the class counts too, so changing its ``forward`` changes the digest even when its
    layers print the same. A run folder records it; notebook 08 names a learner's run folder by it, so
    each version of the learner's model gets a folder of its own.
    """
    text = repr(model)
    for cls in sorted({type(m) for m in model.modules()}, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        if not cls.__module__.startswith(("torch.", "convae_utils.")):
            text += _methods_text(cls)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _methods_text(cls: type) -> str:
    """The source of a class's own methods (a notebook cell's too: IPython keeps it), else their bytecode."""
    parts = []
    for name, attribute in sorted(vars(cls).items()):
        function = getattr(attribute, "__func__", attribute)
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        try:
            parts.append(inspect.getsource(function))
        except (OSError, TypeError):  # no source to read: the bytecode and names still tell versions apart
            parts.append(f"{name}:{code.co_code.hex()}:{code.co_names}")
    return "".join(parts)


def _record(settings: RunSettings, dataset: str, *, name, build, model, step, train, val, start_from, details) -> dict:
    """What defines a run: compared with a folder's ``config.json`` before anything is trained or loaded.

    ``architecture`` is a digest of the model's layers as PyTorch prints them: two builders of one name
    (a learner's model and the worked solution) that build different layers are different runs.
    """
    architecture = architecture_digest(model)
    run = {"name": name, "model": _builder_name(build), "architecture": architecture, "step": step_name(step),
           "train_images": len(train), "val_images": len(val),
           "start_from": None if start_from is None else type(start_from).__name__, "details": details or {}}
    record = {"config": {**asdict(settings), "dataset": dataset}, "run": run}
    json.dumps(record)  # plain values only, before anything is written
    return record


def _as_recorded(have: dict) -> dict:
    """A ``config.json`` as this version records it: settings it lacks read as their defaults, and the
    earlier side-run format (``corrupt`` and the data sizes beside ``config``) maps onto ``run``."""
    config = {f.name: f.default for f in fields(RunSettings)} | have.get("config", {})
    run = dict(have.get("run", {}))
    for key in ("train_images", "val_images", "start_from", "details"):
        if key in have and key not in run:
            run[key] = have[key]
    if "corrupt" in have and "step" not in run:  # a side run of version 0.2: its corruption named its step
        corrupt = have["corrupt"]
        run["step"] = (step_name(mse_step) if corrupt is None else
                       json.dumps({"step": "denoising", "corrupt": corrupt}, sort_keys=True))
    return {"config": config, "run": run}


def _differences(have: dict, want: dict) -> dict:
    """{field: (there, asked)} where a recorded run differs from the one asked (``num_epochs`` may differ)."""
    have = _as_recorded(have)
    diff = {k: (have["config"].get(k), v) for k, v in want["config"].items()
            if k != "num_epochs" and have["config"].get(k) != v}
    # a record an older version did not keep (e.g. the model builder of a 0.2 run) is not compared
    diff.update({k: (have["run"][k], v) for k, v in want["run"].items() if k in have["run"] and have["run"][k] != v})
    return diff


def _holds_a_run(run_dir: Path) -> bool:
    """A folder holds a run once its first checkpoint is written, and until that run diverges."""
    return (run_dir / CHECKPOINT_FILE).exists() and not (
        (run_dir / CONFIG_FILE).exists() and _read_json(run_dir / CONFIG_FILE).get("diverged"))


def config_differences(run_dir: str | os.PathLike, settings: RunSettings, dataset: str | None = None) -> dict:
    """Where the run held in ``run_dir`` differs from a main run of ``settings``: {field: (there, asked)}.

    Empty when the folder holds no run (nothing trained yet, or a run that failed before its first
    checkpoint or diverged) or the same run (``num_epochs`` may differ: a run can be trained further).
    ``dataset``: the dataset the run would use (``None``: not settled yet, e.g. ``auto``; not compared).
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists() or not _holds_a_run(run_dir):
        return {}
    have = _as_recorded(_read_json(run_dir / CONFIG_FILE))
    want = {**asdict(settings), "dataset": dataset}
    return {k: (have["config"].get(k), v) for k, v in want.items()
            if k != "num_epochs" and not (k == "dataset" and dataset is None) and have["config"].get(k) != v}


def _claim(run_dir: Path, want: dict) -> None:
    """Refuse a folder that holds another run; else record this one in ``config.json``."""
    path = run_dir / CONFIG_FILE
    have = _read_json(path) if path.exists() else None
    if have is not None and _holds_a_run(run_dir):
        diff = _differences(have, want)
        if diff:
            detail = ", ".join(f"{k}={a!r} there, {b!r} asked" for k, (a, b) in sorted(diff.items()))
            raise RunFolderError(f"the run folder {run_dir} holds another run ({detail}); choose another "
                                 "folder (or name) or delete this one to start over")
        return  # keep the versions that produced the run; loading it again must not rewrite them
    if have is not None and have.get("diverged") and (run_dir / CHECKPOINT_FILE).exists():
        os.replace(run_dir / CHECKPOINT_FILE, run_dir / "checkpoint-diverged.pt")
        report(f"The run folder {run_dir} held a run that diverged ({have['diverged']}); starting over. Its last "
               "good checkpoint is kept as checkpoint-diverged.pt.")
    write_json(path, {**want, "versions": versions()})


def _prepare_folder(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(f"cannot write the run folder {run_dir} ({exc.strerror or exc}); choose another "
                             f"folder (the train command's --run-dir or --runs-dir, or $CONVAE_RUNS_DIR)") from exc


def _lock(run_dir: Path):
    return folder_lock(
        run_dir, ".lock", timeout=0,
        busy=lambda lock: RunFolderError(f"the run folder {run_dir} is in use by another process (training or "
                                         "evaluating); wait for it to finish or choose another folder"),
        unwritable=lambda folder, exc: RunFolderError(f"cannot lock the run folder {folder} ({exc})"),
    )


def _planned_epochs(state: dict, run_dir: Path) -> int:
    """The epochs the checkpointed run was asked for (0.2 checkpoints: the epochs its config.json records)."""
    if state.get("planned_epochs"):
        return state["planned_epochs"]
    recorded = _read_json(run_dir / CONFIG_FILE).get("config", {}) if (run_dir / CONFIG_FILE).exists() else {}
    return recorded.get("num_epochs") or state["epoch"]


def _is_finished(state: dict, run_dir: Path, asked: int) -> bool:
    """Whether the checkpoint ends a run of at least ``asked`` epochs: a whole number of epochs, all planned
    ones done (or exactly the epochs asked, from a longer run stopped between two epochs)."""
    done = state["epoch"]
    return state["step"] == 0 and done >= asked and (done >= _planned_epochs(state, run_dir) or done == asked)


# -- the harness -----------------------------------------------------------------------------------

def train_or_load(settings: RunSettings, *, name: str | None = None, data=None, train: ImageSet | None = None,
                  val: ImageSet | None = None, test: ImageSet | None = None,
                  build: Callable[[RunSettings], nn.Module] | None = None, step: Step | None = None,
                  optimizer=None, callbacks: Sequence[Callback] = (), start_from: nn.Module | None = None,
                  details: dict | None = None, evaluate: bool = True, run_dir: str | os.PathLike | None = None,
                  runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                  device=None, progress: bool = True, save_figures: bool = True) -> Run:
    """Load the run if it is finished, resume it if it was interrupted, train it otherwise.

    Introduced in notebook 03 (training); named runs in notebook 07.

    Args:
        settings: the run's :class:`~convae_utils.settings.RunSettings` (``settings.from_env(...)``).
        name: a named run's folder suffix (letters, digits, ``_.+-``), e.g. ``"denoise-gauss0.1"``;
            ``None`` for the series' main runs.
        data: a ``data.DataBundle`` prepared for these settings (else prepared here when needed).
        train, val, test: splits to use instead of the bundle's (e.g. a training set with a class held
            out); ``val`` is scored every epoch, ``test`` once at the end when ``evaluate``.
        build: ``build(settings) -> model``, seeded (default: the article's autoencoder); the model
            maps (B, 3, 32, 32) in [-1, 1] to its reconstruction and has ``encode``/``decode``.
        step, optimizer, callbacks: passed to ``training.fit`` (default: MSE, Adam). Checkpoints, the
            exemplar pictures and the stall check (for reconstruction steps) are added here.
        start_from: a trained model whose weights a new run starts from (fine-tuning).
        details: more plain values that define the run, recorded and compared like the settings.
        evaluate: score ``test`` at the end (``metrics.json``, ``per_image.csv``, figures).
        run_dir: the folder; default ``<runs_root>/<settings.folder_name(dataset)>[-<name>]``.
        runs_root: default ``$CONVAE_RUNS_DIR`` or ``<project>/runs``; data_root: the CIFAR-10 folder.

    A finished run that holds *more* epochs than ``settings.num_epochs`` (trained further) is loaded as
    it is, and says so; ``Run.settings`` then record its real number of epochs.

    Raises :class:`RunFolderError` when the folder is in use, unwritable, holds another run, or holds
    an unfinished run that is already past ``settings.num_epochs``; ``TrainingDiverged`` as ``fit``.
    """
    from .data import prepare_data

    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings must be a convae_utils.settings.RunSettings (e.g. settings.from_env()), "
                        f"got {type(settings).__name__}")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise ValueError(f"name must be letters, digits and _.+- (a folder suffix), got {name!r}")
    if data is None and (train is None or val is None or (evaluate and test is None)):
        data = prepare_data(**settings.data_options(), root=data_root)
    train, val = (train if train is not None else data.train), (val if val is not None else data.val)
    test = test if test is not None else (data.test if data is not None else None)
    build, step = build or build_model, step or mse_step
    dataset = data.dataset if data is not None else train.name
    folder = settings.folder_name(dataset) + (f"-{name}" if name else "")
    run_dir = Path(run_dir) if run_dir is not None else runs_dir(runs_root) / folder
    model = build(settings)
    want = _record(settings, dataset, name=name, build=build, model=model, step=step, train=train, val=val,
                   start_from=start_from, details=details)
    _prepare_folder(run_dir)
    with _lock(run_dir):
        _claim(run_dir, want)
        ckpt = run_dir / CHECKPOINT_FILE
        state = load_checkpoint(ckpt) if ckpt.exists() else None
        if state is not None and _is_finished(state, run_dir, settings.num_epochs):
            return _load_finished(settings, run_dir, dataset, model, state, name, test if evaluate else None, device)
        if state is not None and state["epoch"] + (state["step"] > 0) > settings.num_epochs:
            done = state["epoch"]
            raise RunFolderError(f"the run folder {run_dir} holds an unfinished run that has already done {done} "
                                 f"epochs, more than the {settings.num_epochs} asked; ask for the epochs it was started "
                                 f"with (at least {done + (state['step'] > 0)}) to finish it, or use another folder")
        if state is None and start_from is not None:
            model.load_state_dict(start_from.state_dict())
        extra = []
        if data is not None and train is data.train:
            extra.append(ReconstructExemplars(data.exemplars))
        if step is mse_step or getattr(step, "reconstructs", False):
            extra.append(StallGuard())
        try:  # the checkpoint last: it saves what the others added to each epoch
            history = fit(model, train, val, step=step, **settings.fit_options(), device=device, optimizer=optimizer,
                          callbacks=[*extra, *callbacks, Checkpoint(ckpt)], progress=progress)
        except TrainingDiverged:
            recorded = _read_json(run_dir / CONFIG_FILE)
            write_json(run_dir / CONFIG_FILE, {**recorded, "diverged": f"lr={settings.lr:g}"})
            raise
        history.meta["dataset"] = dataset
        write_json(run_dir / HISTORY_FILE, history.to_json())
        model.to(pick_device(device)).eval()
        if history.interrupted:
            return Run(settings, run_dir, dataset, model, history, complete=False, name=name)
        _record_epochs(run_dir, settings.num_epochs)
        run = Run(settings, run_dir, dataset, model, history, name=name)
        if evaluate:
            _evaluate_and_save(run, test, save_figures)
        report(f"Trained and saved {run_dir}.")
        return run


def _record_epochs(run_dir: Path, num_epochs: int) -> None:
    """Training a run further updates the epochs its config.json records (the history has them all)."""
    path = run_dir / CONFIG_FILE
    recorded = _read_json(path)
    if recorded.get("config", {}).get("num_epochs") != num_epochs:
        recorded["config"]["num_epochs"] = num_epochs
        write_json(path, recorded)


def _load_finished(settings: RunSettings, run_dir: Path, dataset: str, model: nn.Module, state: dict,
                   name: str | None, test, device) -> Run:
    load_weights(model, run_dir / CHECKPOINT_FILE, state)
    model.to(pick_device(device)).eval()
    done, asked = state["epoch"], settings.num_epochs
    if done > asked:  # trained further, e.g. `train --epochs 10` before a 5-epoch workshop
        report(f"Loaded the finished run {run_dir}: it holds {done} epochs, more than the {asked} asked (it was "
               f"trained further); its history, pictures and metrics are those of all {done} epochs. Nothing was "
               f"trained. For a {asked}-epoch run, use another folder (run_dir= here, --run-dir on the command line).")
        settings = settings.replace(num_epochs=done)
    run = _finished_run(settings, run_dir, dataset, model, History.from_state(state["history"]), name)
    if test is not None and run.summary is None:  # finished, but its test metrics were lost: score it again
        _evaluate_and_save(run, test, save_figures=False)
        report(f"Loaded the finished run {run_dir} and scored its test images again (metrics.json was missing): "
               "nothing was trained.")
    elif done <= asked:
        report(f"Loaded the finished run {run_dir}: nothing was trained.")
    run.loaded = True
    return run


def _finished_run(settings: RunSettings, run_dir: Path, dataset: str, model: nn.Module, history: History,
                  name: str | None = None) -> Run:
    import pandas as pd

    summary = _read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).exists() else None
    per_image = None
    if (run_dir / PER_IMAGE_FILE).exists():
        per_image = pd.read_csv(run_dir / PER_IMAGE_FILE)
        # CSV forgets that classes are ordered by label; restore it so tables list classes as a fresh run does.
        order = per_image.drop_duplicates("label").sort_values("label")["class"].tolist()
        per_image["class"] = pd.Categorical(per_image["class"], categories=order)
    return Run(settings, run_dir, dataset, model, history, summary=summary, per_image=per_image, loaded=True,
               files=_listing(run_dir), name=name)


def _evaluate_and_save(run: Run, test, save_figures: bool) -> None:
    from . import metrics

    per_image = metrics.evaluate(run.model, test)
    latent_dim = int(getattr(run.model, "latent_dim", run.settings.latent_dim))
    run.summary = {
        "dataset": run.dataset,
        "test_images": len(test),
        "latent_dim": latent_dim,
        "compression": 3 * 32 * 32 / latent_dim,
        "dead_code_units": metrics.dead_code_units(metrics.encode(run.model, test).flatten(1)),
        "metrics": json.loads(metrics.summarize(per_image).reset_index().to_json(orient="records")),
    }
    run.per_image = per_image
    per_image.to_csv(run.run_dir / PER_IMAGE_FILE, index=False)
    write_json(run.run_dir / METRICS_FILE, run.summary)
    if save_figures:
        save_run_figures(run.run_dir, run.history, label=run.label)
    run.files = _listing(run.run_dir)


def save_run_figures(run_dir: Path, history: History, *, label: str) -> None:
    """Per-epoch grids, the loss curves and the static reconstruction strip as PNG files."""
    import matplotlib.pyplot as plt

    from . import plotting

    epochs_dir = run_dir / "epochs"
    for epoch, recon in enumerate(history.reconstructions, start=1):
        fig = plotting.reconstruction_grid(history.exemplars, recon, classes=history.classes,
                                           title=f"{label}, epoch {epoch}")
        plotting.save_figure(fig, epochs_dir / f"epoch_{epoch:02d}.png")
        plt.close(fig)
    figures = [("loss_curves.png", plotting.loss_curves)]
    if history.reconstructions:
        figures.append(("reconstruction_strip.png", plotting.reconstruction_strip))
    for file_name, draw in figures:
        fig = draw({label: history})
        plotting.save_figure(fig, run_dir / file_name)
        plt.close(fig)


def _listing(run_dir: Path) -> dict:
    return {p.relative_to(run_dir).as_posix(): p for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def load_run(run_dir: str | os.PathLike, *, build: Callable[[RunSettings], nn.Module] | None = None,
             device=None) -> Run:
    """Open a finished run folder without its data (e.g. one trained on a GPU droplet).

    ``build`` is the model builder the run was trained with (default: the article's autoencoder).
    ``Run.summary`` is ``None`` when the folder has no test metrics (``train_or_load`` scores them again).
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise RunFolderError(f"{run_dir} is not a run folder (no {CONFIG_FILE}); train one with "
                             f"`{python_command()} -m convae_utils train`")
    recorded = _read_json(run_dir / CONFIG_FILE)
    saved = _as_recorded(recorded)["config"]
    dataset = saved["dataset"]
    try:
        settings = RunSettings(**saved)
    except (TypeError, ValueError) as exc:
        raise RunFolderError(f"{run_dir / CONFIG_FILE} holds settings this version cannot read ({exc}); "
                             "train the run again") from exc
    if not (run_dir / CHECKPOINT_FILE).exists():
        raise RunFolderError(f"the run folder {run_dir} holds no trained run yet (no {CHECKPOINT_FILE}); run "
                             "train_or_load (or the train command) to train it")
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    if state["step"] != 0 or state["epoch"] < _planned_epochs(state, run_dir):
        raise RunFolderError(f"the run in {run_dir} is not finished (stopped at epoch {state['epoch'] + 1}, batch "
                             f"{state['step']}); run train_or_load (or the train command) again to resume it")
    model = (build or build_model)(settings)
    load_weights(model, run_dir / CHECKPOINT_FILE, state)
    model.to(pick_device(device)).eval()
    name = recorded.get("run", {}).get("name")
    return _finished_run(settings.replace(num_epochs=state["epoch"]), run_dir, dataset, model,
                         History.from_state(state["history"]), name)

