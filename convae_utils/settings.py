"""One settings record for a run, its presets, and the one place that reads the environment.

Introduced in notebook 01 (data). A run of the series is described by one frozen record,
:class:`RunSettings`: which data and how much of it, how long to train, the model's size. The
profiles are presets of it, nanoGPT-style: a preset is a handful of overrides of the defaults,
and the defaults are the article's experiment.

The environment is read here and nowhere else in the package (the command line and the notebooks'
parameters cells call :func:`from_env`); only ``convae_utils.series`` sets these variables,
for the kernels it starts:

- ``CONVAE_PROFILE`` = ``full`` | ``workshop`` | ``smoke`` | ``auto`` (full on a GPU, workshop on a CPU)
- ``CONVAE_DATASET`` = ``cifar10`` | ``photos10`` | ``shapes10`` | ``auto`` (``photos10`` without CIFAR-10)
- ``CONVAE_DATA_DIR`` = where CIFAR-10 lives (default ``<project>/data``)
- ``CONVAE_RUNS_DIR`` = where training runs are saved (default ``<project>/runs``)
- ``CONVAE_OWN_RUNS_DIR`` = where a participant trains when ``CONVAE_RUNS_DIR`` cannot be written (a
  hub's shared, read-only runs; default ``~/convae-runs``)
- ``CONVAE_CIFAR10_URL`` = where CIFAR-10 is downloaded from (default: torchvision's URL)

A relative path in ``CONVAE_DATA_DIR`` or ``CONVAE_RUNS_DIR`` is relative to the project root (the
folder holding ``pyproject.toml``), not to the current folder: the command line runs from the root and
the notebooks' kernels from ``notebooks/``, and both must find the same folder. A folder given as an
argument (``--data-dir``, ``root=...``) is the caller's own and is taken as given.
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from .checks import check_choice, check_float, check_int

PROFILE_ENV = "CONVAE_PROFILE"
DATASET_ENV = "CONVAE_DATASET"
DATA_DIR_ENV = "CONVAE_DATA_DIR"
RUNS_DIR_ENV = "CONVAE_RUNS_DIR"
OWN_RUNS_DIR_ENV = "CONVAE_OWN_RUNS_DIR"
CIFAR10_URL_ENV = "CONVAE_CIFAR10_URL"
TUNE_MALLOC_ENV = "CONVAE_TUNE_MALLOC"  # 0: keep glibc's malloc defaults (see convae_utils.cpu_speed)

PHOTOS, SHAPES = "photos10", "shapes10"  # the offline stand-ins (convae_utils.photos, convae_utils.shapes)
STANDIN = PHOTOS  # what "auto" falls back to without CIFAR-10: real photographs
DATASETS = ("cifar10", PHOTOS, SHAPES, "auto")
CODE_ACTIVATIONS = ("relu", None)
OUTPUT_ACTIVATIONS = (None, "tanh")
MAX_IMAGES = 1_000_000  # a sane ceiling for any split size
# The accepted range, (lowest, highest), of every whole number a run is described by. RunSettings,
# training.fit and the model check these, and the command line checks its options against them while
# it parses them (convae_utils.arguments): a limit is changed here, once.
LIMITS: dict[str, tuple[int, int]] = {
    "train_size": (1, MAX_IMAGES),
    "val_size": (1, MAX_IMAGES),
    "test_size": (1, MAX_IMAGES),
    "num_epochs": (1, 100_000),
    "batch_size": (1, 1 << 16),
    "seed": (0, 2**64 - 1),  # PyTorch's generators take seeds up to 2**64 - 1
    "latent_dim": (1, 1 << 20),
    "base_channels": (1, 1024),
}
LR_RANGE = (0.0, 10.0)  # lr must lie in (0, 10]


def check_limit(name: str, value) -> int:
    """``value`` as an int if it lies within ``LIMITS[name]``, else raise with the accepted range."""
    lowest, highest = LIMITS[name]
    return check_int(name, value, minimum=lowest, maximum=highest)


@dataclass(frozen=True)
class RunSettings:
    """Everything that defines one training run; the defaults are the article's experiment.

    Two runs with equal settings are the same run (``num_epochs`` aside: training a run further
    continues it). Every field holds a plain Python value, whatever came in (a NumPy integer
    becomes an ``int``), so the record can be saved as JSON and compared after loading.

    Attributes:
        profile: the preset it came from (``full``, ``workshop``, ``smoke``); names the run folder.
        dataset: ``cifar10``, the stand-in, or ``auto`` (CIFAR-10 if it can be had, else the stand-in).
        train_size: training images after the validation hold-out; ``None`` = all that remain.
        val_size: images held out of the training split for validation (never the test set).
        test_size: test images scored at the end; ``None`` = the whole test split.
        num_epochs, batch_size, lr: Adam on MSE, as in the article (10, 64, 1e-3).
        seed: seeds the initial weights, the validation split and the shuffling.
        latent_dim: size of the latent code (the bottleneck), 200 in the article.
        base_channels: channels of the first conv layer (16 in the article; 32 and 64 follow).
        code_activation: ``"relu"`` (the article) or ``None`` (a linear code, no dead units).
        output_activation: ``None`` (the article) or ``"tanh"`` (outputs in [-1, 1] like the targets).
    """

    profile: str = "full"
    dataset: str = "auto"
    train_size: int | None = None
    val_size: int = 5_000
    test_size: int | None = None
    num_epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    latent_dim: int = 200
    base_channels: int = 16
    code_activation: str | None = "relu"
    output_activation: str | None = None

    def __post_init__(self):
        plain = {
            "profile": str(check_choice("profile", _plain_str(self.profile), tuple(PRESETS))),
            "dataset": check_choice("dataset", _plain_str(self.dataset), DATASETS),
            "lr": check_float("lr", self.lr, low=LR_RANGE[0], high=LR_RANGE[1], high_inclusive=True),
            "code_activation": check_choice("code_activation", _plain_str(self.code_activation),
                                            CODE_ACTIVATIONS),
            "output_activation": check_choice("output_activation", _plain_str(self.output_activation),
                                              OUTPUT_ACTIVATIONS),
        }
        for name in LIMITS:
            value = getattr(self, name)
            optional = name in ("train_size", "test_size")  # None: the whole split
            plain[name] = None if optional and value is None else check_limit(name, value)
        for name, value in plain.items():
            object.__setattr__(self, name, value)

    # -- what each part of the package takes, derived from the one record -----------------------

    def data_options(self) -> dict:
        """Keyword arguments for ``data.prepare_data``: the dataset, the split sizes and the seed."""
        return dict(dataset=self.dataset, train_size=self.train_size, val_size=self.val_size,
                    test_size=self.test_size, seed=self.seed)

    def model_options(self) -> dict:
        """Keyword arguments for ``models.build_autoencoder`` (the seed included)."""
        return dict(latent_dim=self.latent_dim, base_channels=self.base_channels,
                    code_activation=self.code_activation, output_activation=self.output_activation,
                    seed=self.seed)

    def fit_options(self) -> dict:
        """Keyword arguments for ``training.fit``: epochs, batch size, learning rate, seed."""
        return dict(num_epochs=self.num_epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed)

    def identity(self) -> dict:
        """The fields a run folder must agree on (all but ``num_epochs``, which may grow)."""
        return {k: v for k, v in asdict(self).items() if k != "num_epochs"}

    def variant(self) -> str:
        """A short tag for settings that differ from the article's model ("" for the article's)."""
        parts = []
        if self.code_activation != "relu":
            parts.append("linearcode")
        if self.output_activation is not None:
            parts.append(f"{self.output_activation}out")
        if self.base_channels != 16:
            parts.append(f"c{self.base_channels}")
        return "-".join(parts)

    def folder_name(self, dataset: str) -> str:
        """``<profile>-<dataset>-latent<L>[-variant]``: the run folder's name."""
        name = f"{self.profile}-{dataset}-latent{self.latent_dim}"
        return f"{name}-{self.variant()}" if self.variant() else name

    @property
    def description(self) -> str:
        return PRESET_DESCRIPTIONS[self.profile]

    def replace(self, **changes) -> "RunSettings":
        """A copy with some fields changed (checked like a new record)."""
        _check_fields(changes)
        return replace(self, **changes)


# A preset is a handful of overrides of the defaults above (the article's experiment).
PRESETS: dict[str, dict] = {
    "full": {},
    "workshop": dict(train_size=12_000, val_size=2_000, test_size=2_000, num_epochs=5),
    "smoke": dict(dataset=SHAPES, train_size=256, val_size=64, test_size=128, num_epochs=2),
}
PRESET_DESCRIPTIONS = {
    "full": "the article's experiment: all 50,000 training images (5,000 held out), 10 epochs",
    "workshop": "CPU-friendly: 12,000 training images, 5 epochs; the nine notebooks in about 16-18 minutes",
    "smoke": "seconds, offline stand-in data: for tests only, the pictures mean little",
}
PROFILE_CHOICES = tuple(PRESETS) + ("auto",)


def _plain_str(value):
    """NumPy strings (``np.str_``) become ``str``: saved records hold plain Python values only."""
    return str(value) if isinstance(value, str) else value


def _check_fields(overrides: dict) -> None:
    known = {f.name for f in fields(RunSettings)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown RunSettings field(s): {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(known))}")


def resolve_profile(name: str, source: str = "profile") -> str:
    """A profile name, checked; ``auto`` becomes ``full`` on a GPU and ``workshop`` otherwise."""
    chosen = check_choice(source, str(name).strip().lower(), PROFILE_CHOICES)
    if chosen == "auto":
        chosen = "full" if torch.cuda.is_available() else "workshop"
    return chosen


def preset(name: str = "auto", **overrides) -> RunSettings:
    """The settings of profile ``name`` (``full``, ``workshop``, ``smoke`` or ``auto``), with overrides.

    >>> preset("workshop", latent_dim=1000).num_epochs
    5
    """
    _check_fields(overrides)
    chosen = resolve_profile(name)
    return RunSettings(**{"profile": chosen, **PRESETS[chosen], **overrides})


def from_env(profile: str | None = None, **overrides) -> RunSettings:
    """The settings the environment asks for: ``$CONVAE_PROFILE`` and ``$CONVAE_DATASET``, then ``overrides``.

    What a notebook's parameters cell and the command line call. ``profile`` (if given) wins over
    ``$CONVAE_PROFILE``; a ``dataset`` override wins over ``$CONVAE_DATASET``, which wins over the preset's.
    """
    _check_fields(overrides)
    if profile is None:
        chosen = resolve_profile(os.environ.get(PROFILE_ENV, "auto"), f"${PROFILE_ENV}")
    else:
        chosen = resolve_profile(profile)
    env_dataset = os.environ.get(DATASET_ENV, "").strip().lower()
    if env_dataset and "dataset" not in overrides:
        overrides["dataset"] = check_choice(f"${DATASET_ENV}", env_dataset, DATASETS)
    return preset(chosen, **overrides)


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding ``pyproject.toml`` at or above ``start`` (default: the current folder).

    Notebooks run inside ``notebooks/``; resolving defaults from the project root lets every
    notebook, the command line and ``make`` share one ``data/`` and one ``runs/`` folder.
    Outside a checkout it is the checkout the package was installed from (``pip install -e .``),
    else the current folder.
    """
    here = Path(start or Path.cwd()).resolve()
    package_home = Path(__file__).resolve().parents[1]  # the checkout, for an editable install
    for folder in (here, *here.parents, package_home):
        if (folder / "pyproject.toml").is_file() and (folder / "convae_utils").is_dir():
            return folder
    return here


def _folder_from_env(name: str, default: str) -> Path:
    """``$name`` as a folder, a relative one taken from the project root; unset or empty: ``<project>/default``."""
    value = os.environ.get(name, "").strip()
    folder = Path(value).expanduser() if value else Path(default)
    return folder if folder.is_absolute() else project_root() / folder


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """Where CIFAR-10 lives: the argument, else ``$CONVAE_DATA_DIR``, else ``<project>/data``.

    A relative ``$CONVAE_DATA_DIR`` is relative to the project root, wherever the caller runs.
    """
    if root is None:
        return _folder_from_env(DATA_DIR_ENV, "data")
    return Path(root).expanduser()


def runs_dir(root: str | os.PathLike | None = None) -> Path:
    """Where training runs are saved: the argument, else ``$CONVAE_RUNS_DIR``, else ``<project>/runs``.

    A relative ``$CONVAE_RUNS_DIR`` is relative to the project root, wherever the caller runs.
    """
    if root is None:
        return _folder_from_env(RUNS_DIR_ENV, "runs")
    return Path(root).expanduser()


def own_runs_dir() -> Path:
    """Where a participant's own runs go when the runs folder is shared and read-only: ``$CONVAE_OWN_RUNS_DIR``,
    else ``~/convae-runs`` (a relative ``$CONVAE_OWN_RUNS_DIR`` is relative to the project root)."""
    value = os.environ.get(OWN_RUNS_DIR_ENV, "").strip()
    if not value:
        return Path.home() / "convae-runs"
    folder = Path(value).expanduser()
    return folder if folder.is_absolute() else project_root() / folder


def python_command() -> str:
    """How to start this Python from a terminal: ``python`` when that is the one on ``PATH``, else its full path.

    ``make`` installs the project into ``.venv`` and a notebook's kernel runs there, but a terminal's bare
    ``python`` is another interpreter (without torch) unless the environment is activated; a hint
    the package prints ("run ... download") must work as it is typed.
    """
    on_path = shutil.which("python")
    if on_path and os.path.normcase(os.path.abspath(on_path)) == os.path.normcase(os.path.abspath(sys.executable)):
        return "python"  # compared without following links: a venv's python links to the system's
    return sys.executable or "python"


def cifar10_url(url: str | None = None, default: str | None = None) -> str | None:
    """The CIFAR-10 archive's URL: the argument, else ``$CONVAE_CIFAR10_URL``, else ``default``."""
    return url or os.environ.get(CIFAR10_URL_ENV) or default


def allocator_environment() -> dict:
    """What the environment says about malloc: ``LD_PRELOAD`` and whether ``$CONVAE_TUNE_MALLOC`` allows tuning."""
    return {"ld_preload": os.environ.get("LD_PRELOAD", ""),
            "tune": os.environ.get(TUNE_MALLOC_ENV, "1").strip() != "0"}


def pick_device(device: str | torch.device | None = None, *, option: str | None = None) -> torch.device:
    """``None``/``"auto"``: cuda, then mps, then cpu. An explicit device must exist here.

    ``option`` is how the caller's user names the choice: the command line passes ``"--device"``, and
    its errors then say ``use --device cpu``, not the Python ``use device='cpu'``.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")

    def use(choice: str) -> str:
        return f"{option} {choice}" if option else f"device={choice!r}"

    asked = f"{option} {device}" if option else f"device {str(device)!r}"
    accepted = ("auto, cpu, cuda, cuda:N or mps" if option else "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    wrong_name = ValueError(f"{option or 'device'} must be {accepted}, got {str(device)!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise wrong_name from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            auto = use("auto") if option else "'auto'"
            raise ValueError(f"{asked} was requested but PyTorch sees no CUDA GPU on this machine; "
                             f"use {use('cpu')} (or {auto} to pick the best available)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            last = f" (up to cuda:{count - 1})" if count > 1 else ""
            raise ValueError(f"{asked} does not exist: this machine has {count} CUDA GPU(s); "
                             f"use {use('cuda:0')}{last} or {use('auto')}")
    elif dev.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            auto = use("auto") if option else "'auto'"
            raise ValueError(f"{asked} was requested but Apple's MPS is not available here; "
                             f"use {use('cpu')} (or {auto})")
    elif dev.type != "cpu":
        raise wrong_name
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    """Library versions worth recording next to any result."""
    import matplotlib
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_threads": str(torch.get_num_threads()),
    }


TABLE_ROWS = 200  # a table the series shows is read whole; a longer one is a data file, not a table


def show_tables_whole() -> None:
    """Let pandas show every column and whole cell texts, and up to :data:`TABLE_ROWS` rows.

    pandas' defaults cut text at 50 characters and wide tables in the middle with "...": the licences
    of photos10, notebook 04's code-size column and the sources of notebook 06's published references
    were lost from the tables whose text says each row shows them. Called by :func:`banner`.
    """
    import pandas as pd

    for option, value in (("display.max_colwidth", None), ("display.max_columns", None),
                          ("display.width", 250), ("display.max_rows", TABLE_ROWS)):
        pd.set_option(option, value)


def banner(settings: RunSettings, dataset: str, device: torch.device, *, file=None) -> str:
    """The setup banner every notebook prints: profile, dataset, device, seed and versions.

    Printing it is each notebook's set-up step, so it also sets how tables show (:func:`show_tables_whole`).
    """
    show_tables_whole()
    v = versions()
    lines = [
        f"profile : {settings.profile} ({settings.description})",
        f"dataset : {dataset}" + ("   <-- OFFLINE STAND-IN, not CIFAR-10" if dataset != "cifar10" else ""),
        f"device  : {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"seed    : {settings.seed}",
        "versions: " + ", ".join(f"{k} {v[k]}" for k in ("python", "torch", "torchvision", "numpy")),
    ]
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text

