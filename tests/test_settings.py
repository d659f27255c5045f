"""The settings record, its presets, and the environment switches: profile, dataset, folders and device."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from convae_utils import settings as config

ROOT = Path(__file__).resolve().parents[1]


def test_profile_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("CONVAE_PROFILE", "smoke")
    assert config.from_env().profile == "smoke"
    assert config.from_env("workshop").profile == "workshop"
    monkeypatch.setenv("CONVAE_PROFILE", " Workshop ")
    assert config.from_env().profile == "workshop"


def test_auto_profile_depends_on_the_gpu(monkeypatch):
    monkeypatch.delenv("CONVAE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.from_env().profile == "workshop"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.from_env().profile == "full"


def test_unknown_names_list_what_is_accepted(monkeypatch):
    with pytest.raises(ValueError, match="profile must be one of 'full', 'workshop', 'smoke', 'auto', got 'huge'"):
        config.preset("huge")
    monkeypatch.setenv("CONVAE_DATASET", "mnist")
    with pytest.raises(ValueError, match=r"\$CONVAE_DATASET must be one of 'cifar10', 'photos10', 'shapes10', 'auto'"):
        config.from_env()


def test_dataset_defaults_to_the_profile(monkeypatch):
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    assert config.from_env("smoke").dataset == "shapes10"
    assert config.from_env("full").dataset == "auto"
    monkeypatch.setenv("CONVAE_DATASET", "cifar10")
    assert config.from_env("smoke").dataset == "cifar10"
    assert config.from_env("smoke", dataset="shapes10").dataset == "shapes10"  # an argument wins


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


def test_device_errors_speak_the_callers_terms(monkeypatch):
    """Python callers read device='cpu'; the command line passes option='--device' and reads --device cpu."""
    with pytest.raises(ValueError, match="^--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu0'$"):
        config.pick_device("gpu0", option="--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^--device cuda was requested .* use --device cpu \(or --device auto"):
        config.pick_device("cuda", option="--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"device 'cuda:3' does not exist: .* 2 CUDA GPU\(s\); use device='cuda:0' "
                                         r"\(up to cuda:1\) or device='auto'"):
        config.pick_device("cuda:3")
    with pytest.raises(ValueError, match="use --device cuda:0 .* or --device auto"):
        config.pick_device("cuda:3", option="--device")


def test_a_preset_is_a_handful_of_overrides_of_the_articles_defaults():
    full = config.preset("full")
    assert full == config.RunSettings()  # the defaults are the article's experiment
    assert (full.num_epochs, full.batch_size, full.lr, full.latent_dim) == (10, 64, 1e-3, 200)
    workshop = config.preset("workshop", latent_dim=1000)
    assert (workshop.profile, workshop.train_size, workshop.num_epochs, workshop.latent_dim) == (
        "workshop", 12_000, 5, 1000)
    assert workshop.data_options() == dict(dataset="auto", train_size=12_000, val_size=2_000, test_size=2_000, seed=0)
    assert workshop.fit_options() == dict(num_epochs=5, batch_size=64, lr=1e-3, seed=0)
    with pytest.raises(TypeError, match="unknown RunSettings field.*epochs"):
        config.preset("smoke", epochs=3)


def test_numpy_values_become_plain_python_values():
    settings = config.RunSettings(latent_dim=np.int64(16), lr=np.float32(0.5), dataset=np.str_("shapes10"),
                                  train_size=np.int32(100))
    for name in ("latent_dim", "train_size"):
        assert type(getattr(settings, name)) is int
    assert type(settings.lr) is float and type(settings.dataset) is str
    assert settings == config.RunSettings(latent_dim=16, lr=float(np.float32(0.5)), dataset="shapes10", train_size=100)


def test_the_environment_is_read_in_settings_and_written_only_by_series():
    """Library code reads no environment variable except through settings; only the tools that start
    processes hand an environment on (series to its kernels, bench to its worker processes, kit to pip
    and to the series it runs, saving and restoring what it sets)."""
    sources = {p.relative_to(ROOT).as_posix(): p.read_text()
               for folder in ("convae_utils", "tools") for p in (ROOT / folder).rglob("*.py")}
    readers = sorted(name for name, text in sources.items()
                     if "os.environ.get" in text or "os.environ[" in text or "getenv" in text)
    assert readers == ["convae_utils/settings.py", "tools/kit.py"], readers
    passing_on = sorted(name for name, text in sources.items()
                        if "os.environ" in text and name != "convae_utils/settings.py")
    assert passing_on == ["convae_utils/series.py", "tools/bench.py", "tools/kit.py"], passing_on
    # the kit reads back only what it sets for the series, to restore it afterwards
    kit_reads = re.findall(r"os\.environ\.get\((\w+)\)", sources["tools/kit.py"])
    assert kit_reads == ["key"] and "saved = {key: os.environ.get(key) for key in keys}" in sources["tools/kit.py"]
    assert "os.environ.update" in sources["convae_utils/series.py"]


def test_every_seed_the_settings_accept_can_shuffle():
    from convae_utils.training import epoch_order

    highest = config.LIMITS["seed"][1]
    assert config.RunSettings(seed=highest).seed == highest
    with pytest.raises(ValueError, match="seed must be at least 0 and at most 18,446,744,073,709,551,615"):
        config.RunSettings(seed=highest + 1)
    # each epoch's shuffle is seeded from (seed, epoch): the largest seed must not overflow PyTorch's 64 bits
    assert sorted(epoch_order(10, highest, 3, "cpu").tolist()) == list(range(10))
    # and an ordinary seed shuffles as it always did
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(7 * 1_000_003 + 3))
    assert torch.equal(epoch_order(10, 7, 3, "cpu"), expected)
