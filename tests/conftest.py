"""Shared test fixtures. Tests never touch the internet: CIFAR-10 is fabricated and served locally."""

from __future__ import annotations

from pathlib import Path

import pytest

from cifar_fixtures import FakeCifar, closed_port_url, fabricate_cifar10


@pytest.fixture(scope="session")
def _fabricated_cifar() -> FakeCifar:
    return fabricate_cifar10()


@pytest.fixture
def fake_cifar(_fabricated_cifar: FakeCifar, monkeypatch) -> FakeCifar:
    """A tiny fabricated CIFAR-10 (100 train, 20 test images) that torchvision accepts in this test."""
    _fabricated_cifar.patch_md5(monkeypatch)
    return _fabricated_cifar


@pytest.fixture
def cifar_root(fake_cifar: FakeCifar, tmp_path: Path) -> Path:
    """A data folder holding the fabricated CIFAR-10, extracted and as an archive."""
    return fake_cifar.install(tmp_path / "data")


@pytest.fixture
def offline_cifar(monkeypatch, tmp_path: Path) -> Path:
    """An empty data folder in ``$CONVAE_DATA_DIR`` and ``$CONVAE_CIFAR10_URL`` on a closed local port."""
    data = tmp_path / "offline-data"
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data))
    monkeypatch.setenv("CONVAE_CIFAR10_URL", closed_port_url())
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    return data


@pytest.fixture(autouse=True)
def _never_the_internet(monkeypatch):
    """Every test: a CIFAR-10 URL on a closed local port, unless the test points it elsewhere."""
    monkeypatch.setenv("CONVAE_CIFAR10_URL", closed_port_url())


@pytest.fixture(scope="session")
def trained_small():
    """Notebook 08's model, small, after one pass of plain Adam over 3,200 shapes10 patches (a few
    seconds), through the series' own epoch (training.train_epoch); in eval mode. Shared by the codec and
    model tests, which must not change it."""
    import torch

    from convae_utils import data
    from convae_utils.spatial import SpatialAutoencoder
    from convae_utils.training import train_epoch

    train = data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0).train
    torch.manual_seed(0)
    model = SpatialAutoencoder(2, width=8, depth=0, stem="pixel")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    train_epoch(model, optimizer, train.images, order, 64)
    return model.eval()
