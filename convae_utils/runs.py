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
one otherwise. A run is its settings (:class:`~convae_utils.settings.RunSettings`) and its
:class:`Recipe` (name, model builder, step, optimiser, callbacks, options): the series' main models
use the default recipe, every other model (a denoiser, notebook 08's models, a VAE per beta, the
yardstick classifier) a named one. What a run is (finished, interrupted, how far) is read from its
checkpoint. A finished run loads without writing anything, so a shared read-only folder serves it;
training needs a writable folder, and a runs folder that cannot be written sends the training to
the participant's own (:func:`~convae_utils.settings.own_runs_dir`), said. A lock keeps two processes
from writing the same folder at once. A folder whose first attempt failed before its first
checkpoint, or diverged, does not hold a run: a second attempt with other settings starts over there.
A field added to the settings later reads, in an older ``config.json`` that lacks it, as its default:
run folders of earlier versions keep loading (``tests/data/runs-*``).
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from torch import nn

from .callbacks import Callback, ReconstructExemplars, StallGuard, report
from .checkpoints import Checkpoint, load_checkpoint, load_weights
from .errors import RunFolderError, TrainingDiverged
from .fileio import folder_lock, write_json
from .history import History
from .models import assemble_autoencoder, warn_if_code_not_smaller
from .settings import RunSettings, own_runs_dir, pick_device, python_command, runs_dir, versions
from .training import Step, fit, mse_step, step_name

if TYPE_CHECKING:
    import pandas as pd

    from .data import DataBundle

CONFIG_FILE, CHECKPOINT_FILE, HISTORY_FILE = "config.json", "checkpoint.pt", "history.json"
METRICS_FILE, PER_IMAGE_FILE = "metrics.json", "per_image.csv"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def build_model(settings: RunSettings) -> nn.Module:
    """The article's autoencoder these settings describe, with seeded initial weights (the default builder).

    Its sizes were checked when the settings were made; they are not checked again here.
    """
    warn_if_code_not_smaller(settings.latent_dim)
    return assemble_autoencoder(**settings.model_options())


@dataclass(frozen=True)
class Recipe:
    """How a run trains, beside its settings: together with them, what makes two runs the same run.

    Introduced in notebook 03 (training); named recipes from notebook 07 on.

    Attributes:
        name: ``None`` for the series' main runs; else the run folder's suffix (letters, digits, ``_.+-``),
            e.g. ``"denoise-gauss0.1"``.
        build: ``build(settings) -> model``, seeded (default: the article's autoencoder). A function's
            module and name are recorded, and the layers it builds (:func:`architecture_digest`).
        step: ``training.fit``'s step (default: the article's MSE); recorded by ``training.step_name``.
        optimizer: ``(model, lr) -> optimizer`` (default ``None``: Adam); recorded by its name.
        callbacks: more ``training.fit`` callbacks (e.g. ``callbacks.OneCycle()``); recorded by their
            ``describe()`` or class name. Checkpoints, pictures and the stall check are added by the harness.
        options: more plain values that define the run (e.g. ``{"held_out_class": 3}``), recorded as they are.
    """

    name: str | None = None
    build: Callable[[RunSettings], nn.Module] = build_model
    step: Step = mse_step
    optimizer: Callable | None = None
    callbacks: tuple[Callback, ...] = ()
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name is not None and (not isinstance(self.name, str) or not _NAME.match(self.name)):
            raise ValueError(f"a recipe's name must be letters, digits and _.+- (a folder suffix), got {self.name!r}")
        object.__setattr__(self, "callbacks", tuple(self.callbacks))
        try:
            json.dumps(self.options)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"a recipe's options must be plain values (numbers, text, lists, dicts), got "
                            f"{self.options!r} ({exc})") from exc

    def identity(self) -> dict:
        """What this recipe adds to a run's record: compared with a folder's before anything is trained or loaded."""
        return {"name": self.name, "model": _builder_name(self.build), "step": step_name(self.step),
                "optimizer": "adam" if self.optimizer is None else step_name(self.optimizer),
                "callbacks": [step_name(callback) for callback in self.callbacks], "options": dict(self.options)}


MAIN = Recipe()  # the series' main runs: the article's autoencoder, MSE, Adam


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
    name: str | None = None              # its recipe's name (None: one of the series' main runs)

    @property
    def label(self) -> str:
        variant = self.settings.variant()
        label = f"latent {self.settings.latent_dim}" + (f" ({variant})" if variant else "")
        return f"{self.name}, {label}" if self.name else label


# -- what a folder holds ----------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # permissions or I/O: the file may be fine, so nothing is advised about deleting it
        raise RunFolderError(f"{path} could not be read ({exc.strerror or exc}); it was not changed") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path} is damaged ({exc}); delete the run folder {path.parent} to start over") from exc


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


def _record(settings: RunSettings, recipe: Recipe, data: DataBundle, model: nn.Module, start_from) -> dict:
    """What defines a run: the settings, the recipe, the data's sizes, the model's layers and where it started.

    ``architecture`` is a digest of the model's layers as PyTorch prints them: two builders of one name
    (a learner's model and the worked solution) that build different layers are different runs.
    """
    run = {**recipe.identity(), "architecture": architecture_digest(model), "train_images": len(data.train),
           "val_images": len(data.val), "start_from": None if start_from is None else type(start_from).__name__}
    return {"config": {**asdict(settings), "dataset": data.dataset}, "run": run}


def _as_recorded(have: dict) -> dict:
    """A ``config.json`` as this version records it: settings it lacks read as their defaults, the earlier
    side-run format (``corrupt`` and the data sizes beside ``config``) maps onto ``run``, and the earlier
    ``details`` onto ``options`` (its ``optimizer`` and ``schedule`` texts are now the recipe's own records)."""
    config = {f.name: f.default for f in fields(RunSettings)} | have.get("config", {})
    run = dict(have.get("run", {}))
    for key in ("train_images", "val_images", "start_from", "details"):
        if key in have and key not in run:
            run[key] = have[key]
    if "corrupt" in have and "step" not in run:  # a side run of version 0.2: its corruption named its step
        corrupt = have["corrupt"]
        run["step"] = (step_name(mse_step) if corrupt is None else
                       json.dumps({"step": "denoising", "corrupt": corrupt}, sort_keys=True))
    if "details" in run and "options" not in run:
        run["options"] = {k: v for k, v in (run.pop("details") or {}).items() if k not in ("optimizer", "schedule")}
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


def _check_same_run(run_dir: Path, want: dict) -> None:
    """Refuse a folder that holds another run than ``want`` (``num_epochs`` may differ)."""
    diff = _differences(_read_json(run_dir / CONFIG_FILE), want)
    if diff:
        detail = ", ".join(f"{k}={a!r} there, {b!r} asked" for k, (a, b) in sorted(diff.items()))
        raise RunFolderError(f"the run folder {run_dir} holds another run ({detail}); choose another "
                             "folder (or name) or delete this one to start over")


def holds_finished_run(run_dir: str | os.PathLike, settings: RunSettings) -> bool:
    """Whether ``run_dir`` holds a finished main run of ``settings`` with its test metrics: one that loads
    without writing (the command line asks before refusing a folder it cannot write)."""
    run_dir = Path(run_dir)
    if not ((run_dir / CONFIG_FILE).is_file() and (run_dir / METRICS_FILE).is_file() and _holds_a_run(run_dir)):
        return False
    if config_differences(run_dir, settings):
        return False
    return _is_finished(load_checkpoint(run_dir / CHECKPOINT_FILE), run_dir, settings.num_epochs)


def _claim(run_dir: Path, want: dict) -> None:
    """Refuse a folder that holds another run; else record this one in ``config.json``."""
    path = run_dir / CONFIG_FILE
    have = _read_json(path) if path.exists() else None
    if have is not None and _holds_a_run(run_dir):
        _check_same_run(run_dir, want)
        return  # keep the versions that produced the run; loading it again must not rewrite them
    if have is not None and have.get("diverged") and (run_dir / CHECKPOINT_FILE).exists():
        os.replace(run_dir / CHECKPOINT_FILE, run_dir / "checkpoint-diverged.pt")
        report(f"The run folder {run_dir} held a run that diverged ({have['diverged']}); starting over. Its last "
               "good checkpoint is kept as checkpoint-diverged.pt.")
    write_json(path, {**want, "versions": versions()})


_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)  # a read-only file system, or no permission to write


def _prepare_folder(run_dir: Path) -> None:
    """Make ``run_dir`` if needed and prove it can be written (:class:`RunFolderError` saying why not)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(f"cannot write the run folder {run_dir} ({_why_unwritable(exc)})") from exc


def _why_unwritable(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "it is on a read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "no permission to write there"
    return exc.strerror or str(exc)


def _finished_in(run_dir: Path, want: dict, asked: int) -> dict | None:
    """The checkpoint of the finished run ``want`` in ``run_dir`` (of at least ``asked`` epochs), else ``None``.

    Reads only: a finished run in a read-only folder (a hub's shared runs) loads from here. ``None`` also
    when its test metrics are missing (scoring them again writes) or the folder holds no run; a folder
    holding another run is refused.
    """
    if not ((run_dir / CONFIG_FILE).is_file() and _holds_a_run(run_dir)):
        return None
    _check_same_run(run_dir, want)
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    return state if _is_finished(state, run_dir, asked) else None


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

def train_or_load(settings: RunSettings, recipe: Recipe = MAIN, data: DataBundle | None = None, *,
                  start_from: nn.Module | None = None, run_dir: str | os.PathLike | None = None,
                  runs_root: str | os.PathLike | None = None, device=None, progress: bool = True,
                  save_figures: bool = True) -> Run:
    """Load the run if it is finished, resume it if it was interrupted, train it otherwise.

    Introduced in notebook 03 (training); named recipes in notebook 07.

    Args:
        settings: the run's :class:`~convae_utils.settings.RunSettings` (``settings.from_env(...)``).
        recipe: how it trains (:class:`Recipe`; default: the article's autoencoder, MSE, Adam).
        data: a ``data.DataBundle`` for these settings (default: prepared here). ``train`` trains, ``val``
            is scored every epoch, ``test`` (unless ``None``) once at the end (``metrics.json``,
            ``per_image.csv``, figures), ``exemplars`` (unless ``None``) are reconstructed after each
            epoch. Other splits: ``bundle.replace(train=..., test=None, exemplars=None)``.
        start_from: a trained model whose weights a new run starts from (fine-tuning).
        run_dir: the folder; default ``<runs_root>/<settings.folder_name(dataset)>[-<recipe.name>]``.
        runs_root: default ``$CONVAE_RUNS_DIR`` or ``<project>/runs``; when that default cannot be
            written, a run not finished there trains in :func:`~convae_utils.settings.own_runs_dir`, said.
        device, progress: as ``training.fit``; save_figures: write the PNG figures beside the metrics.

    A finished run loads without writing anything (a read-only folder serves it). One that holds
    *more* epochs than ``settings.num_epochs`` (trained further) is loaded as it is, and says so;
    ``Run.settings`` then record its real number of epochs.

    Raises :class:`RunFolderError` when the folder is in use, cannot be written for a run that needs
    training, holds another run, or holds an unfinished run already past ``settings.num_epochs``;
    ``TrainingDiverged`` as ``fit``.
    """
    from .data import prepare_data

    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings must be a convae_utils.settings.RunSettings (e.g. settings.from_env()), "
                        f"got {type(settings).__name__}")
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a convae_utils.runs.Recipe (e.g. runs.Recipe('my-model', build=...)), "
                        f"got {type(recipe).__name__}")
    data = data if data is not None else prepare_data(**settings.data_options())
    folder = settings.folder_name(data.dataset) + (f"-{recipe.name}" if recipe.name else "")
    places = [Path(run_dir)] if run_dir is not None else [runs_dir(runs_root) / folder]
    if run_dir is None and runs_root is None and own_runs_dir() / folder != places[0]:
        places.append(own_runs_dir() / folder)  # where a participant trains when the shared runs are read-only
    model = recipe.build(settings)
    want = _record(settings, recipe, data, model, start_from)
    for place in places:  # a finished run loads without writing, wherever it is
        state = _finished_in(place, want, settings.num_epochs)
        if state is not None and (data.test is None or (place / METRICS_FILE).is_file()):
            return _load_finished(settings, place, data.dataset, model, state, recipe.name, None, device)
    run_dir = _writable_place(places)
    with _lock(run_dir):
        _claim(run_dir, want)
        ckpt = run_dir / CHECKPOINT_FILE
        state = load_checkpoint(ckpt) if ckpt.exists() else None
        if state is not None and _is_finished(state, run_dir, settings.num_epochs):
            return _load_finished(settings, run_dir, data.dataset, model, state, recipe.name, data.test, device)
        if state is not None and state["epoch"] + (state["step"] > 0) > settings.num_epochs:
            done = state["epoch"]
            raise RunFolderError(f"the run folder {run_dir} holds an unfinished run that has already done {done} "
                                 f"epochs, more than the {settings.num_epochs} asked; ask for the epochs it was started "
                                 f"with (at least {done + (state['step'] > 0)}) to finish it, or use another folder")
        if state is None and start_from is not None:
            model.load_state_dict(start_from.state_dict())
        extra = [] if data.exemplars is None else [ReconstructExemplars(data.exemplars)]
        if recipe.step is mse_step or getattr(recipe.step, "reconstructs", False):
            extra.append(StallGuard())
        try:  # the checkpoint last: it saves what the others added to each epoch
            history = fit(model, data.train, data.val, settings, step=recipe.step, device=device,
                          optimizer=recipe.optimizer, progress=progress,
                          callbacks=[*extra, *recipe.callbacks, Checkpoint(ckpt, compare=False)])
        except TrainingDiverged:
            recorded = _read_json(run_dir / CONFIG_FILE)
            write_json(run_dir / CONFIG_FILE, {**recorded, "diverged": f"lr={settings.lr:g}"})
            raise
        history.meta["dataset"] = data.dataset
        write_json(run_dir / HISTORY_FILE, history.to_json())
        model.to(pick_device(device)).eval()
        if history.interrupted:
            return Run(settings, run_dir, data.dataset, model, history, complete=False, name=recipe.name)
        _record_epochs(run_dir, settings.num_epochs)
        run = Run(settings, run_dir, data.dataset, model, history, name=recipe.name)
        if data.test is not None:
            _evaluate_and_save(run, data.test, save_figures)
        report(f"Trained and saved {run_dir}.")
        return run


def _writable_place(places: list[Path]) -> Path:
    """The first of ``places`` that can be written: the run folder asked for, else the participant's own.

    A run that needs training (or resuming, or its metrics scored again) in a folder that cannot be
    written is refused with where it can train instead.
    """
    try:
        _prepare_folder(places[0])
        return places[0]
    except RunFolderError as exc:
        cause = exc.__cause__
        if not (isinstance(cause, OSError) and cause.errno in _READ_ONLY):
            raise
        if len(places) > 1:
            _prepare_folder(places[1])
            report(f"The runs folder {places[0].parent} cannot be written ({_why_unwritable(cause)}; shared "
                   f"runs load from there): this run trains in your own folder {places[1]} instead.")
            return places[1]
        held = places[0] / CHECKPOINT_FILE
        what = "is not finished" if held.exists() else "is not trained yet"
        raise RunFolderError(
            f"cannot write the run folder {places[0]} ({_why_unwritable(cause)}): a finished run would load from "
            f"there without writing, but this one {what}. Train it in a folder of your own, e.g. "
            f"{own_runs_dir() / places[0].name} (run_dir= or runs_root= here; --run-dir or --runs-dir on the "
            "command line; or $CONVAE_RUNS_DIR)") from cause


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

