"""Settings that come from the environment: profile, dataset, data folder, device, seeds.

The notebooks read every knob through here, so one environment variable switches the whole series:

- ``CONVAE_PROFILE`` = ``full`` | ``workshop`` | ``smoke`` | ``auto`` (full on a GPU, workshop on a CPU)
- ``CONVAE_DATASET`` = ``cifar10`` | ``shapes10`` (the offline stand-in) | ``auto``
- ``CONVAE_DATA_DIR`` = where CIFAR-10 lives (default ``<project>/data``)
- ``CONVAE_RUNS_DIR`` = where training runs are saved (default ``<project>/runs``)
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .checks import check_choice

PROFILE_ENV = "CONVAE_PROFILE"
DATASET_ENV = "CONVAE_DATASET"
DATA_DIR_ENV = "CONVAE_DATA_DIR"
RUNS_DIR_ENV = "CONVAE_RUNS_DIR"

STANDIN = "shapes10"
DATASETS = ("cifar10", STANDIN, "auto")


@dataclass(frozen=True)
class Profile:
    """How much work a run of the series does. ``None`` sizes mean "the whole split"."""

    name: str
    dataset: str            # default dataset choice for this profile
    train_size: int | None  # training images after the validation hold-out
    val_size: int           # held out from the training split, seeded
    test_size: int | None   # test images used for the final numbers
    num_epochs: int
    batch_size: int
    latent_dims: tuple[int, ...]
    description: str

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "full": Profile("full", "auto", None, 5_000, None, 10, 64, (200, 1000),
                    "the article's experiment: all 50,000 training images (5,000 held out), 10 epochs"),
    "workshop": Profile("workshop", "auto", 20_000, 2_000, 2_000, 5, 64, (200, 1000),
                        "CPU-friendly: 20,000 training images, 5 epochs; the series in under 15 minutes"),
    "smoke": Profile("smoke", STANDIN, 256, 64, 128, 2, 64, (200, 1000),
                     "seconds, offline stand-in data: for tests only, the pictures mean little"),
}
PROFILE_CHOICES = tuple(PROFILES) + ("auto",)


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else ``$CONVAE_PROFILE``, else ``auto`` (full on a GPU, workshop on a CPU)."""
    chosen = name if name is not None else os.environ.get(PROFILE_ENV, "auto")
    chosen = chosen.strip().lower()
    source = "profile" if name is not None else f"${PROFILE_ENV}"
    check_choice(source, chosen, PROFILE_CHOICES)
    if chosen == "auto":
        chosen = "full" if torch.cuda.is_available() else "workshop"
    return PROFILES[chosen]


def dataset_choice(name: str | None = None, profile: Profile | None = None) -> str:
    """The dataset named, else ``$CONVAE_DATASET``, else the profile's default."""
    if name is None:
        name = os.environ.get(DATASET_ENV) or (profile.dataset if profile else "auto")
        source = f"${DATASET_ENV}"
    else:
        source = "dataset"
    name = name.strip().lower()
    return check_choice(source, name, DATASETS)


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


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """Where CIFAR-10 lives: the argument, else ``$CONVAE_DATA_DIR``, else ``<project>/data``."""
    if root is None:
        root = os.environ.get(DATA_DIR_ENV) or project_root() / "data"
    return Path(root).expanduser()


def runs_dir(root: str | os.PathLike | None = None) -> Path:
    """Where training runs are saved: the argument, else ``$CONVAE_RUNS_DIR``, else ``<project>/runs``."""
    if root is None:
        root = os.environ.get(RUNS_DIR_ENV) or project_root() / "runs"
    return Path(root).expanduser()


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: cuda, then mps, then cpu. An explicit device must exist here."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} was requested but PyTorch sees no CUDA GPU on this machine; "
                "use device='cpu' (or 'auto' to pick the best available)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} does not exist: this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} was requested but Apple's MPS is not available here; "
                             "use device='cpu' (or 'auto')")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
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


def banner(profile: Profile, dataset: str, device: torch.device, seed: int, *, file=None) -> str:
    """The setup banner every notebook prints: profile, dataset, device, seed and versions."""
    v = versions()
    lines = [
        f"profile : {profile.name} ({profile.description})",
        f"dataset : {dataset}" + ("   <-- OFFLINE STAND-IN, not CIFAR-10" if dataset == STANDIN else ""),
        f"device  : {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"seed    : {seed}",
        "versions: " + ", ".join(f"{k} {v[k]}" for k in ("python", "torch", "torchvision", "numpy")),
    ]
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text
