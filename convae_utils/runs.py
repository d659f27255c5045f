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
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING


from .checks import check_choice, check_int
from .config import PROFILES, Profile, dataset_choice, get_profile, pick_device, runs_dir, versions
from .errors import RunFolderError
from .models import Autoencoder, build_autoencoder
from .training import History, fit, load_checkpoint, load_weights

if TYPE_CHECKING:
    import pandas as pd

CONFIG_FILE, CHECKPOINT_FILE, HISTORY_FILE = "config.json", "checkpoint.pt", "history.json"
METRICS_FILE, PER_IMAGE_FILE = "metrics.json", "per_image.csv"
CODE_ACTIVATIONS = ("relu", None)
OUTPUT_ACTIVATIONS = (None, "tanh")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run. Two runs with equal configs are the same run."""

    latent_dim: int = 200
    num_epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    dataset: str = "auto"
    train_size: int | None = None
    val_size: int = 5_000
    test_size: int | None = None
    base_channels: int = 16
    code_activation: str | None = "relu"
    output_activation: str | None = None
    profile: str = "full"

    def __post_init__(self):
        check_int("latent_dim", self.latent_dim, maximum=1 << 20)
        check_int("num_epochs", self.num_epochs, maximum=100_000)
        check_int("batch_size", self.batch_size, maximum=1 << 16)
        check_int("val_size", self.val_size)
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        check_choice("code_activation", self.code_activation, CODE_ACTIVATIONS)
        check_choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)

    @classmethod
    def from_profile(cls, profile: Profile | str | None = None, **overrides) -> "RunConfig":
        """The profile's sizes and epochs, with any field overridden by keyword."""
        p = profile if isinstance(profile, Profile) else get_profile(profile)
        base = dict(num_epochs=p.num_epochs, batch_size=p.batch_size, dataset=dataset_choice(None, p),
                    train_size=p.train_size, val_size=p.val_size, test_size=p.test_size, profile=p.name)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown RunConfig field(s): {', '.join(sorted(unknown))}")
        base.update({k: v for k, v in overrides.items() if v is not None or k.endswith("activation")})
        return cls(**base)

    def as_profile(self) -> Profile:
        """The data sizes as a Profile, for ``data.prepare_data``."""
        p = PROFILES.get(self.profile, PROFILES["full"])
        return replace(p, dataset=self.dataset, train_size=self.train_size, val_size=self.val_size,
                       test_size=self.test_size, num_epochs=self.num_epochs, batch_size=self.batch_size)

    def variant(self) -> str:
        parts = []
        if self.code_activation != "relu":
            parts.append("linearcode")
        if self.output_activation is not None:
            parts.append(f"{self.output_activation}out")
        if self.base_channels != 16:
            parts.append(f"c{self.base_channels}")
        return "-".join(parts)

    def folder_name(self, dataset: str) -> str:
        name = f"{self.profile}-{dataset}-latent{self.latent_dim}"
        return f"{name}-{self.variant()}" if self.variant() else name

    def build_model(self) -> Autoencoder:
        return build_autoencoder(self.latent_dim, base_channels=self.base_channels,
                                 code_activation=self.code_activation,
                                 output_activation=self.output_activation, seed=self.seed)


@dataclass
class Run:
    """A trained (or partly trained) run and what it produced."""

    config: RunConfig
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
        return f"latent {self.config.latent_dim}" + (f" ({self.config.variant()})" if self.config.variant() else "")


def _write_json(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
                             f"folder with --runs-dir or CONVAE_RUNS_DIR") from exc


def _lock(run_dir: Path):
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise RunFolderError(f"the run folder {run_dir} is in use by another process (training or "
                             "evaluating); wait for it to finish or choose another folder") from exc
    return lock


def _check_config(run_dir: Path, config: RunConfig, dataset: str) -> None:
    want = {**asdict(config), "dataset": dataset}
    path = run_dir / CONFIG_FILE
    if path.exists():
        have = _read_json(path).get("config", {})
        diff = {k: (have.get(k), v) for k, v in want.items() if k != "num_epochs" and have.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}={a!r} there, {b!r} asked" for k, (a, b) in sorted(diff.items()))
            raise RunFolderError(f"the run folder {run_dir} holds another run ({detail}); choose another "
                                 "folder or delete this one to start over")
        return  # keep the versions that produced the run; loading it again must not rewrite them
    _write_json(path, {"config": want, "versions": versions()})


def train_or_load(config: RunConfig, *, data=None, run_dir: str | os.PathLike | None = None,
                  runs_root: str | os.PathLike | None = None, device=None, progress: bool = True,
                  save_figures: bool = True) -> Run:
    """Load the run if it is finished, resume it if it was interrupted, train it otherwise.

    Args:
        config: the run's settings (``RunConfig.from_profile(...)``).
        data: a ``data.DataBundle`` already prepared for this config (else prepared here).
        run_dir: the folder; default ``<runs_root>/<config.folder_name(dataset)>``.
        runs_root: default ``$CONVAE_RUNS_DIR`` or ``./runs``.
    """
    from .data import prepare_data

    if data is None:
        data = prepare_data(config.as_profile(), dataset=config.dataset, seed=config.seed)
    dataset = data.dataset
    run_dir = Path(run_dir) if run_dir is not None else runs_dir(runs_root) / config.folder_name(dataset)
    _prepare_folder(run_dir)
    lock = _lock(run_dir)
    try:
        _check_config(run_dir, config, dataset)
        model = config.build_model()
        ckpt = run_dir / CHECKPOINT_FILE
        if (run_dir / METRICS_FILE).exists() and ckpt.exists():
            state = load_checkpoint(ckpt)
            if state["epoch"] == config.num_epochs and state["step"] == 0:
                load_weights(model, ckpt)
                model.to(pick_device(device)).eval()
                return _finished_run(config, run_dir, dataset, model, History.from_state(state["history"]))
        if ckpt.exists():
            done = load_checkpoint(ckpt)["epoch"]
            if done > config.num_epochs:
                raise RunFolderError(f"the run folder {run_dir} already holds {done} epochs, more than the "
                                     f"{config.num_epochs} asked; ask for at least {done} or use another folder")
        history = fit(model, data.train, data.val, num_epochs=config.num_epochs, batch_size=config.batch_size,
                      lr=config.lr, seed=config.seed, device=device, exemplars=data.exemplars,
                      checkpoint=ckpt, progress=progress)
        history.meta["dataset"] = dataset
        _write_json(run_dir / HISTORY_FILE, history.to_json())
        if history.interrupted:
            return Run(config, run_dir, dataset, model, history, complete=False)
        return _evaluate_and_save(config, run_dir, dataset, model, history, data.test, save_figures)
    finally:
        lock.release()


def _finished_run(config: RunConfig, run_dir: Path, dataset: str, model: Autoencoder, history: History) -> Run:
    import pandas as pd

    summary = _read_json(run_dir / METRICS_FILE)
    per_image = None
    if (run_dir / PER_IMAGE_FILE).exists():
        per_image = pd.read_csv(run_dir / PER_IMAGE_FILE)
        # CSV forgets that classes are ordered by label; restore it so tables list classes as a fresh run does.
        order = per_image.drop_duplicates("label").sort_values("label")["class"].tolist()
        per_image["class"] = pd.Categorical(per_image["class"], categories=order)
    return Run(config, run_dir, dataset, model, history, summary=summary, per_image=per_image, loaded=True,
               files=_listing(run_dir))


def _evaluate_and_save(config, run_dir, dataset, model, history, test, save_figures) -> Run:
    from . import metrics

    per_image = metrics.evaluate(model, test)
    table = metrics.summarize(per_image)
    summary = {
        "dataset": dataset,
        "test_images": len(test),
        "latent_dim": config.latent_dim,
        "compression": 3 * 32 * 32 / config.latent_dim,
        "metrics": table.reset_index().to_dict(orient="records"),
    }
    per_image.to_csv(run_dir / PER_IMAGE_FILE, index=False)
    _write_json(run_dir / METRICS_FILE, summary)
    if save_figures:
        save_run_figures(run_dir, history, label=f"latent {config.latent_dim}")
    return Run(config, run_dir, dataset, model, history, summary=summary, per_image=per_image,
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
    dataset = saved.pop("dataset")
    config = RunConfig(**{**saved, "dataset": dataset})
    if not (run_dir / METRICS_FILE).exists():
        raise RunFolderError(f"the run in {run_dir} is not finished; run train_or_load (or the train "
                             "command) again to resume it")
    model = config.build_model()
    state = load_weights(model, run_dir / CHECKPOINT_FILE)
    model.to(pick_device(device)).eval()
    return _finished_run(config, run_dir, dataset, model, History.from_state(state["history"]))
