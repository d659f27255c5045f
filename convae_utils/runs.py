"""Run folders: train once, load ever after.

Defined in notebook 03 (training); notebook 04 and ``python -m convae_utils train`` use it too.
A run folder holds everything one training run produced::

    runs/<profile>-<dataset>-latent<L>[-variant]/
        config.json        the settings (a folder never silently holds two different runs)
        checkpoint.pt      weights, optimiser, history; written after every epoch (atomic)
        history.json       losses and timings as plain JSON
        metrics.json       test-set MSE / PSNR / SSIM, overall and per class
        per_image.csv      the same metrics for every test image
        epochs/epoch_NN.png   originals over reconstructions after each epoch
        loss_curves.png, reconstruction_strip.png

``train_or_load`` returns a finished run as it is, resumes an interrupted one, and trains a new
one otherwise. A lock keeps two processes from writing the same folder at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RunFolderError
from .fileio import folder_lock, write_json
from .history import History
from .models import Autoencoder, build_autoencoder
from .settings import RunSettings, pick_device, runs_dir, versions
from .training import fit, load_checkpoint, load_weights, report

if TYPE_CHECKING:
    import pandas as pd

CONFIG_FILE, CHECKPOINT_FILE, HISTORY_FILE = "config.json", "checkpoint.pt", "history.json"
METRICS_FILE, PER_IMAGE_FILE = "metrics.json", "per_image.csv"


def build_model(settings: RunSettings) -> Autoencoder:
    """The autoencoder these settings describe, with seeded initial weights."""
    return build_autoencoder(**settings.model_options())


@dataclass
class Run:
    """A trained (or partly trained) run and what it produced."""

    settings: RunSettings
    run_dir: Path
    dataset: str
    model: Autoencoder
    history: History
    summary: dict | None = None          # metrics.json content
    per_image: pd.DataFrame | None = None  # per-image test metrics
    loaded: bool = False                 # True: nothing was trained in this call
    complete: bool = True                # False: interrupted; call train_or_load again to resume
    files: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        variant = self.settings.variant()
        return f"latent {self.settings.latent_dim}" + (f" ({variant})" if variant else "")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is unreadable ({exc}); delete the run folder {path.parent} to start over") from exc


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


def _recorded(settings: RunSettings, dataset: str) -> dict:
    return {**asdict(settings), "dataset": dataset}


def config_differences(run_dir: str | os.PathLike, settings: RunSettings, dataset: str | None = None) -> dict:
    """What the run saved in ``run_dir`` was made with where it differs from ``settings``: {field: (there, asked)}.

    Empty when the folder holds no run (no ``config.json``) or the same run (``num_epochs`` may differ: a
    run can be trained further). ``dataset`` is the dataset the run would use (``None``: not settled
    yet, e.g. ``auto`` before it is resolved; then it is not compared).
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return {}
    have = _read_json(path).get("config", {})
    want = _recorded(settings, dataset)
    return {k: (have.get(k), v) for k, v in want.items()
            if k != "num_epochs" and not (k == "dataset" and dataset is None) and have.get(k) != v}


def _check_config(run_dir: Path, settings: RunSettings, dataset: str) -> None:
    path = run_dir / CONFIG_FILE
    if path.exists():
        diff = config_differences(run_dir, settings, dataset)
        if diff:
            detail = ", ".join(f"{k}={a!r} there, {b!r} asked" for k, (a, b) in sorted(diff.items()))
            raise RunFolderError(f"the run folder {run_dir} holds another run ({detail}); choose another "
                                 "folder or delete this one to start over")
        return  # keep the versions that produced the run; loading it again must not rewrite them
    write_json(path, {"config": _recorded(settings, dataset), "versions": versions()})


def _record_epochs(run_dir: Path, num_epochs: int) -> None:
    """Training a run further updates the epochs its config.json records (the history has them all)."""
    path = run_dir / CONFIG_FILE
    recorded = _read_json(path)
    if recorded.get("config", {}).get("num_epochs") != num_epochs:
        recorded["config"]["num_epochs"] = num_epochs
        write_json(path, recorded)


def _finished_at(run_dir: Path, state: dict, asked: int) -> bool:
    """Whether the checkpoint ``state`` is the end of a finished run: a whole number of epochs, the test
    metrics written, and those epochs the ones asked or the ones ``config.json`` records (it is
    updated only once training further is done)."""
    if state["step"] != 0 or not (run_dir / METRICS_FILE).exists():
        return False
    return state["epoch"] == asked or _read_json(run_dir / CONFIG_FILE).get("config", {}).get("num_epochs") == state["epoch"]


def train_or_load(settings: RunSettings, *, data=None, run_dir: str | os.PathLike | None = None,
                  runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                  device=None, progress: bool = True, save_figures: bool = True) -> Run:
    """Load the run if it is finished, resume it if it was interrupted, train it otherwise.

    Introduced in notebook 03 (training).

    Args:
        settings: the run's :class:`~convae_utils.settings.RunSettings` (``settings.from_env(...)``).
        data: a ``data.DataBundle`` already prepared for these settings (else prepared here).
        run_dir: the folder; default ``<runs_root>/<settings.folder_name(dataset)>``.
        runs_root: default ``$CONVAE_RUNS_DIR`` or ``<project>/runs``.
        data_root: the CIFAR-10 folder, when ``data`` is prepared here.

    A finished run that holds *more* epochs than ``settings.num_epochs`` (trained further, e.g. with
    ``python -m convae_utils train --epochs 10``) is loaded as it is, and says so; the returned
    ``Run.settings`` then record its real number of epochs.

    Raises :class:`RunFolderError` when the folder is in use, unwritable, holds another run, or holds
    an unfinished run that is already past ``settings.num_epochs``.
    """
    from .data import prepare_data

    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings must be a convae_utils.settings.RunSettings (e.g. settings.from_env()), "
                        f"got {type(settings).__name__}")
    if data is None:
        data = prepare_data(**settings.data_options(), root=data_root)
    dataset = data.dataset
    run_dir = Path(run_dir) if run_dir is not None else runs_dir(runs_root) / settings.folder_name(dataset)
    _prepare_folder(run_dir)
    with _lock(run_dir):
        _check_config(run_dir, settings, dataset)
        model = build_model(settings)
        ckpt = run_dir / CHECKPOINT_FILE
        if ckpt.exists():
            state = load_checkpoint(ckpt)
            done, asked = state["epoch"], settings.num_epochs
            if done >= asked and _finished_at(run_dir, state, asked):
                load_weights(model, ckpt)
                model.to(pick_device(device)).eval()
                if done > asked:  # trained further, e.g. `train --epochs 10` before a 5-epoch workshop
                    report(f"Loaded the finished run {run_dir}: it holds {done} epochs, more than the {asked} "
                           f"asked (it was trained further); its history, pictures and metrics are those of all "
                           f"{done} epochs. Nothing was trained. For a {asked}-epoch run, use another folder "
                           "(run_dir= here, --run-dir on the command line).")
                    settings = settings.replace(num_epochs=done)
                else:
                    report(f"Loaded the finished run {run_dir}: nothing was trained.")
                return _finished_run(settings, run_dir, dataset, model, History.from_state(state["history"]))
            if done > asked:
                raise RunFolderError(f"the run folder {run_dir} holds an unfinished run that has already done {done} "
                                     f"epochs, more than the {asked} asked; ask for the epochs it was started with "
                                     f"(at least {done + (state['step'] > 0)}) to finish it, or use another folder")
        history = fit(model, data.train, data.val, **settings.fit_options(), device=device,
                      exemplars=data.exemplars, checkpoint=ckpt, progress=progress)
        history.meta["dataset"] = dataset
        write_json(run_dir / HISTORY_FILE, history.to_json())
        if history.interrupted:
            return Run(settings, run_dir, dataset, model, history, complete=False)
        _record_epochs(run_dir, settings.num_epochs)
        run = _evaluate_and_save(settings, run_dir, dataset, model, history, data.test, save_figures)
        report(f"Trained and saved {run_dir}.")
        return run


def _finished_run(settings: RunSettings, run_dir: Path, dataset: str, model: Autoencoder, history: History) -> Run:
    import pandas as pd

    summary = _read_json(run_dir / METRICS_FILE)
    per_image = None
    if (run_dir / PER_IMAGE_FILE).exists():
        per_image = pd.read_csv(run_dir / PER_IMAGE_FILE)
        # CSV forgets that classes are ordered by label; restore it so tables list classes as a fresh run does.
        order = per_image.drop_duplicates("label").sort_values("label")["class"].tolist()
        per_image["class"] = pd.Categorical(per_image["class"], categories=order)
    return Run(settings, run_dir, dataset, model, history, summary=summary, per_image=per_image, loaded=True,
               files=_listing(run_dir))


def _evaluate_and_save(settings, run_dir, dataset, model, history, test, save_figures) -> Run:
    from . import metrics

    per_image = metrics.evaluate(model, test)
    table = metrics.summarize(per_image)
    dead = metrics.dead_code_units(metrics.encode(model, test))
    summary = {
        "dataset": dataset,
        "test_images": len(test),
        "latent_dim": settings.latent_dim,
        "compression": 3 * 32 * 32 / settings.latent_dim,
        "dead_code_units": dead,
        "metrics": json.loads(table.reset_index().to_json(orient="records")),
    }
    per_image.to_csv(run_dir / PER_IMAGE_FILE, index=False)
    write_json(run_dir / METRICS_FILE, summary)
    if save_figures:
        save_run_figures(run_dir, history, label=f"latent {settings.latent_dim}")
    return Run(settings, run_dir, dataset, model, history, summary=summary, per_image=per_image,
               files=_listing(run_dir))


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
    for name, fig in (("loss_curves.png", plotting.loss_curves({label: history})),
                      ("reconstruction_strip.png", plotting.reconstruction_strip({label: history}))):
        plotting.save_figure(fig, run_dir / name)
        plt.close(fig)


def _listing(run_dir: Path) -> dict:
    return {p.relative_to(run_dir).as_posix(): p for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def load_run(run_dir: str | os.PathLike, *, device=None) -> Run:
    """Open a finished run folder without its data (e.g. one trained on a GPU droplet)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise RunFolderError(f"{run_dir} is not a run folder (no {CONFIG_FILE}); train one with "
                             "`python -m convae_utils train`")
    saved = _read_json(run_dir / CONFIG_FILE)["config"]
    dataset = saved["dataset"]
    try:
        settings = RunSettings(**saved)
    except (TypeError, ValueError) as exc:
        raise RunFolderError(f"{run_dir / CONFIG_FILE} holds settings this version cannot read ({exc}); "
                             "train the run again") from exc
    if not (run_dir / METRICS_FILE).exists():
        raise RunFolderError(f"the run in {run_dir} is not finished; run train_or_load (or the train "
                             "command) again to resume it")
    model = build_model(settings)
    state = load_weights(model, run_dir / CHECKPOINT_FILE)
    model.to(pick_device(device)).eval()
    return _finished_run(settings, run_dir, dataset, model, History.from_state(state["history"]))
