"""The one device lookup, eval-mode helper and batched-inference helper every model runner uses."""

import pytest
import torch
from torch import nn

from convae_utils.inference import batched, evaluating, model_device


def test_model_device_reads_parameters_then_buffers_then_defaults_to_cpu():
    assert model_device(nn.Linear(2, 2, device="meta")).type == "meta"
    only_buffer = nn.BatchNorm1d(2, affine=False).to("meta")
    assert model_device(only_buffer).type == "meta"
    assert model_device(nn.ReLU()) == torch.device("cpu")


@pytest.mark.parametrize("start_training", [True, False])
def test_evaluating_restores_the_mode_even_after_an_error(start_training):
    model = nn.Dropout().train(start_training)
    with pytest.raises(RuntimeError), evaluating(model):
        assert not model.training
        raise RuntimeError("inside")
    assert model.training is start_training


def test_batched_moves_each_batch_to_the_device_and_returns_float32_on_the_cpu():
    seen = []

    def fn(x):
        seen.append((x.device.type, len(x)))
        return x.double() * 2

    out = batched(fn, torch.arange(7.0), device=torch.device("cpu"), batch_size=3)
    assert seen == [("cpu", 3), ("cpu", 3), ("cpu", 1)]
    assert out.dtype == torch.float32 and torch.equal(out, torch.arange(7.0) * 2)


def test_batched_hands_a_meta_model_meta_inputs():
    model = nn.Linear(4, 2, device="meta")
    out = batched(model, torch.ones(5, 4), device=model_device(model), batch_size=2)
    assert out.device.type == "meta" and out.shape == (5, 2)
