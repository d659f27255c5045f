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
