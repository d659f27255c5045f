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
