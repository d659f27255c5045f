"""Side runs: a small extra model (a denoiser, a detector trained on contaminated data) in a folder of its own.

Introduced in notebook 07 (what the codes are for). ``runs.train_or_load`` keeps the series' main
models; the experiments of notebook 07 need a few more, trained on a reduced budget, on a changed
training set (a class held out, anomalies mixed in) or with corrupted inputs. :func:`train_side_run`
trains one with ``training.fit`` into ``<runs>/<main run's folder>-<name>/checkpoint.pt`` and writes
what defines it to ``config.json`` beside it, so that running the notebook again loads the model (or
resumes an interrupted run) instead of training it twice, and a folder never silently holds another run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .errors import RunFolderError
from .fileio import folder_lock, write_json
from .history import History
from .images import ImageSet
from .models import Autoencoder, build_autoencoder
from .settings import RunSettings, pick_device, runs_dir
from .training import fit, load_checkpoint, report

CONFIG_FILE, CHECKPOINT_FILE = "config.json", "checkpoint.pt"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass
class SideRun:
    """A side run's model (on its device, eval mode), its history and folder; ``loaded``: nothing was trained."""

    model: Autoencoder
    history: History
    run_dir: Path
    loaded: bool
    complete: bool = True


def _describe(corrupt) -> dict | str | None:
    if corrupt is None:
        return None
    describe = getattr(corrupt, "describe", None)
    return describe() if callable(describe) else repr(corrupt)


def train_side_run(settings: RunSettings, train: ImageSet, val: ImageSet, *, name: str,
                   corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   start_from: nn.Module | None = None, details: dict | None = None,
                   runs_root: str | os.PathLike | None = None, device=None, progress: bool = True) -> SideRun:
    """Train (or load, or resume) a model of ``settings`` on ``train`` into its own folder.

    Args:
        settings: model and training settings (``num_epochs``, ``batch_size``, ``lr``, ``seed``,
            the model's options); the data come from ``train`` and ``val`` as given.
        train, val: uint8 ImageSets; ``val`` scores every epoch (corrupted too when ``corrupt`` is given).
        name: the folder's suffix, e.g. ``"denoise-gauss0.1"``: letters, digits, ``_.+-``.
        corrupt: a corruption for a denoiser (:mod:`convae_utils.corruptions`): the encoder sees
            corrupted images, the loss compares with the clean ones.
        start_from: a trained model whose weights the new one starts from (fine-tuning); ignored
            when the folder already holds a checkpoint.
        details: more plain values that define the run (e.g. the contamination share), recorded
            and compared like the settings.

    A folder holding more whole epochs than ``settings.num_epochs`` (a parameter lowered after a longer
    run) is loaded as it is, and says so.

    Raises RunFolderError when the folder holds a run with other settings, a run stopped part-way
    through an epoch past the epochs asked, or is in use.
    """
    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings must be a RunSettings (settings.from_env()), got {type(settings).__name__}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be letters, digits and _.+- (a folder suffix), got {name!r}")
    run_dir = runs_dir(runs_root) / f"{settings.folder_name(train.name)}-{name}"
    want = {"config": {**asdict(settings), "dataset": train.name}, "train_images": len(train),
            "val_images": len(val), "corrupt": _describe(corrupt),
            "start_from": None if start_from is None else type(start_from).__name__,
            "details": details or {}}
    json.dumps(want)  # plain values only, before anything is written
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {run_dir} ({exc.strerror or exc}); choose "
                             "another folder with CONVAE_RUNS_DIR") from exc
    busy = lambda lock: RunFolderError(f"the run folder {run_dir} is in use by another process; wait for it "
                                       "or choose another folder")
    unwritable = lambda folder, exc: RunFolderError(f"cannot lock the run folder {folder} ({exc})")
    with folder_lock(run_dir, ".lock", timeout=0, busy=busy, unwritable=unwritable):
        _check_config(run_dir, want)
        model = build_autoencoder(**settings.model_options())
        ckpt = run_dir / CHECKPOINT_FILE
        loaded = False
        more = None  # epochs held beyond those asked (a parameter lowered after a longer run)
        if ckpt.exists():
            state = load_checkpoint(ckpt)
            done, asked = state["epoch"], settings.num_epochs
            if done > asked and state["step"] == 0:
                more, settings = done, settings.replace(num_epochs=done)  # load it whole, as it is
            elif done > asked:
                raise RunFolderError(f"the run folder {run_dir} holds a run stopped in epoch {done + 1}, past the "
                                     f"{asked} epochs asked; ask for at least {done + 1} epochs to finish it, or "
                                     "delete the folder")
            loaded = state["epoch"] == settings.num_epochs and state["step"] == 0
        elif start_from is not None:
            model.load_state_dict(start_from.state_dict())
        history = fit(model, train, val, **settings.fit_options(), corrupt=corrupt, checkpoint=ckpt,
                      device=device, progress=progress and not loaded)
        model.to(pick_device(device)).eval()
        if loaded and more is not None:
            report(f"Loaded the side run {run_dir}: it holds {more} epochs, more than the {asked} asked, and is "
                   f"used as it is (all {more} epochs). Nothing was trained. For {asked} epochs, delete the folder.")
        elif loaded:
            report(f"Loaded the finished side run {run_dir}: nothing was trained.")
        elif not history.interrupted:
            report(f"Trained and saved {run_dir}.")
        return SideRun(model, history, run_dir, loaded, complete=not history.interrupted)


def _check_config(run_dir: Path, want: dict) -> None:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        write_json(path, want)
        return
    try:
        have = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is unreadable ({exc}); delete {run_dir} to start over") from exc
    flat_have = {**have.get("config", {}), **{k: v for k, v in have.items() if k != "config"}}
    flat_want = {**want["config"], **{k: v for k, v in want.items() if k != "config"}}
    diff = {k: (flat_have.get(k), v) for k, v in flat_want.items() if k != "num_epochs" and flat_have.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}={a!r} there, {b!r} asked" for k, (a, b) in sorted(diff.items()))
        raise RunFolderError(f"the run folder {run_dir} holds another run ({detail}); delete it to start over "
                             "or choose another name")
    if have.get("config", {}).get("num_epochs") != want["config"]["num_epochs"]:
        have["config"]["num_epochs"] = want["config"]["num_epochs"]
        write_json(path, have)
