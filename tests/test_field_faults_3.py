"""Faults from the field, round 3 (issue 19): each test failed before its fix.

Each fault stands for a kind (a message that names the wrong cause, an input that leaks, a learner
left stuck); the tests exercise the kind, not only the reported case. Items 6 and 9 need a browser
and live in tests/test_browser.py.
"""

from __future__ import annotations

import pytest
import torch

from convae_utils.models import build_autoencoder

TINY = dict(latent_dim=16, base_channels=4)


# -- 1. what enters the model is checked where it enters: dtype and device too --------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_model_refuses_images_of_another_dtype_by_name(dtype):
    model = build_autoencoder(**TINY)
    with pytest.raises(ValueError, match=r"expected images of dtype float32 \(the model's weights\), got "
                                         + str(dtype).removeprefix("torch.") + r".*images\.to\(torch\.float32\)"):
        model(torch.zeros(2, 3, 32, 32, dtype=dtype))


def test_decoder_refuses_codes_of_another_dtype_by_name():
    model = build_autoencoder(**TINY)
    with pytest.raises(ValueError, match=r"expected codes of dtype float32.*got float64"):
        model.decode(torch.zeros(2, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected codes as floats, got dtype torch\.int64"):
        model.decode(torch.zeros(2, 16, dtype=torch.long))


def test_matching_dtypes_and_autocast_still_run():
    model = build_autoencoder(**TINY).double()
    assert model(torch.zeros(2, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
    model = build_autoencoder(**TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts inputs itself: no refusal
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_model_refuses_images_on_another_device_by_name():
    model = build_autoencoder(**TINY).to("meta")
    with pytest.raises(ValueError, match=r"expected images on meta \(where the model is\), got images on cpu"):
        model(torch.zeros(2, 3, 32, 32))


# -- 3. a damaged extracted CIFAR-10 batch is named whatever happens next -------------------------

def _damaged_without_archive(fake_cifar, root):
    from cifar_fixtures import BASE_FOLDER

    root = fake_cifar.install(root, archive=False)
    batch = root / BASE_FOLDER / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])  # truncated, and no .tar.gz to extract it from
    return root


def test_damaged_batch_is_named_when_the_repairing_download_fails(fake_cifar, tmp_path):
    from convae_utils.cifar10 import download_cifar10, load_cifar10
    from convae_utils.errors import DataError

    root = _damaged_without_archive(fake_cifar, tmp_path / "data")
    for attempt in (lambda: load_cifar10("train", root, progress=False),  # the default: download=True
                    lambda: download_cifar10(root, progress=False)):
        with pytest.raises(DataError) as info:
            attempt()
        message = str(info.value)
        assert "data_batch_3 damaged" in message and "ConnectionRefusedError" in message
        assert "python -m convae_utils download" in message and "--dataset photos10" in message  # the ways out


def test_auto_falls_back_naming_the_damaged_batch(fake_cifar, tmp_path, monkeypatch):
    from convae_utils.data import resolve_auto

    root = _damaged_without_archive(fake_cifar, tmp_path / "data")
    for download in (True, False):
        name, reason = resolve_auto(root, download=download)
        assert name == "photos10" and "data_batch_3 damaged" in reason, reason
    assert "is not in" in resolve_auto(tmp_path / "empty", download=False)[1]  # nothing there: said as before
