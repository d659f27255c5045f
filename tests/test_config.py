"""The environment switches: profile, dataset, folders and device."""

from pathlib import Path

import pytest
import torch

from convae_utils import config

ROOT = Path(__file__).resolve().parents[1]


def test_profile_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("CONVAE_PROFILE", "smoke")
    assert config.get_profile().name == "smoke"
    assert config.get_profile("workshop").name == "workshop"
    monkeypatch.setenv("CONVAE_PROFILE", " Workshop ")
    assert config.get_profile().name == "workshop"


def test_auto_profile_depends_on_the_gpu(monkeypatch):
    monkeypatch.delenv("CONVAE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.get_profile().name == "workshop"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_profile().name == "full"


def test_unknown_names_list_what_is_accepted(monkeypatch):
    with pytest.raises(ValueError, match="profile must be one of 'full', 'workshop', 'smoke', 'auto', got 'huge'"):
        config.get_profile("huge")
    monkeypatch.setenv("CONVAE_DATASET", "mnist")
    with pytest.raises(ValueError, match=r"\$CONVAE_DATASET must be one of 'cifar10', 'shapes10', 'auto'"):
        config.dataset_choice()


def test_dataset_defaults_to_the_profile(monkeypatch):
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    assert config.dataset_choice(profile=config.PROFILES["smoke"]) == "shapes10"
    assert config.dataset_choice(profile=config.PROFILES["full"]) == "auto"
    monkeypatch.setenv("CONVAE_DATASET", "cifar10")
    assert config.dataset_choice(profile=config.PROFILES["smoke"]) == "cifar10"


def test_folders_default_to_the_project_from_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("CONVAE_DATA_DIR", raising=False)
    monkeypatch.delenv("CONVAE_RUNS_DIR", raising=False)
    monkeypatch.chdir(ROOT / "notebooks")  # where Jupyter runs a notebook
    assert config.data_dir() == ROOT / "data" and config.runs_dir() == ROOT / "runs"
    monkeypatch.chdir(tmp_path)  # outside the checkout: the checkout of the editable install
    assert config.project_root() == ROOT
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "cifar"))
    assert config.data_dir() == tmp_path / "cifar"
    assert config.data_dir("elsewhere") == Path("elsewhere")


def test_devices():
    assert config.pick_device("cpu") == torch.device("cpu")
    assert config.pick_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device must be"):
        config.pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU on this machine; use device='cpu'"):
            config.pick_device("cuda:0")
