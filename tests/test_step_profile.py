"""benchmarks/step_profile.py: the split of a training step's time that bounds non-kernel tuning (issue 14)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "step_profile.py"


def _module():
    spec = importlib.util.spec_from_file_location("step_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, kind", [
    ("aten::convolution_backward", "convolution"),
    ("aten::mkldnn_convolution", "convolution"),
    ("aten::addmm", "linear (matrix products)"),
    ("aten::mm", "linear (matrix products)"),
    ("aten::threshold_backward", "ReLU and its backward"),
    ("aten::relu_", "ReLU and its backward"),
    ("aten::_fused_adam_", "optimiser (fused Adam, zero_grad)"),
    ("aten::mse_loss_backward", "loss (MSE)"),
    ("aten::copy_", "other (copies, allocation, autograd bookkeeping)"),
    ("aten::mmap_like_name", "other (copies, allocation, autograd bookkeeping)"),
])
def test_operators_are_sorted_into_kinds_of_work(name, kind):
    assert _module().kind_of(name) == kind


def test_the_shares_add_up_and_the_bound_follows_from_the_convolution_share():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(SCRIPT), "--latent-dim", "8", "--batch-size", "4", "--steps", "2",
                          "--warmup", "1", "--threads", "1"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300, check=True).stdout
    shares = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^(.+?)\s+[\d.]+\s+([\d.]+)%$", out, re.M)}
    assert "convolution" in shares and shares["convolution"] > 0
    assert sum(shares.values()) == pytest.approx(100, abs=0.5)
    bound = float(re.search(r"at most ([\d.]+)x faster", out).group(1))
    assert bound == pytest.approx(100 / shares["convolution"], abs=0.01)
