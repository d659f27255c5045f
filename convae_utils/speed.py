"""What makes training fast and changes no number: kept apart from the lesson in ``training``.

Introduced in notebook 03 (training), which prints the lesson, not this. :class:`Speed` wraps a
model and its step for ``training.fit``: channels-last memory layout (measured faster on CPU),
bfloat16 autocast where the hardware has it, ``torch.compile``, the fused Adam, and on CUDA the whole
optimiser update replayed as one CUDA graph (:class:`GraphedStep`). Measured by
``python -m tools bench`` and ``python -m tools study experiment``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .cpu_speed import native_bf16, tune_allocator
from .errors import warn

StepOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]  # (the loss, 0-d; what to log: name -> 0-d tensor)
Step = Callable[..., StepOutput]      # step(model, batch) -> (loss, logs); a labelled step: step(model, batch, labels)
Update = Callable[..., StepOutput]    # update(model, optimizer, batch[, labels]): training.train_step with a step bound


def make_adam(model: nn.Module, lr: float, *, capturable: bool = False) -> torch.optim.Adam:
    """Adam, fused into one kernel where this torch supports it on the model's device.

    The fused step is the same algorithm with a different rounding order; on CPU it cut the
    optimiser's share of a latent-1000 step from 30-40 ms to 4-6 ms (``python -m tools bench``).
    ``capturable=True`` keeps its step count on the GPU, so the step can be captured in a CUDA graph.
    """
    try:
        if capturable:
            return torch.optim.Adam(model.parameters(), lr=lr, fused=True, capturable=True)
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without a fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


@dataclass(frozen=True)
class Speed:
    """How to run a step fast without changing what it computes.

    Attributes:
        channels_last: NHWC memory layout for the model and every batch (faster on CPU, measured).
        amp: bfloat16 autocast (CUDA, or a CPU with native bf16 instructions; a warning elsewhere,
            where it is emulated and measured ~12x slower).
        compile: run the model through ``torch.compile`` (off: slower per step on 2 CPU cores).
        cuda_graph: replay each update as a CUDA graph; ``None``: on CUDA unless ``compile``.
    """

    channels_last: bool = True
    amp: bool = False
    compile: bool = False
    cuda_graph: bool | None = None

    def apply(self, model: nn.Module, step: Step, device: torch.device) -> tuple[nn.Module, Step, bool]:
        """Move ``model`` to ``device`` in this layout; returns (model to train, step to run, use a CUDA graph).

        The first call in a process applies the measured malloc settings
        (:func:`convae_utils.cpu_speed.tune_allocator`; ``$CONVAE_TUNE_MALLOC=0`` keeps glibc's defaults).
        """
        tune_allocator()
        if self.amp and device.type == "cpu" and not native_bf16():
            warn("amp=True on a CPU without native bfloat16 instructions (AVX-512 BF16, AMX or Arm BF16): "
                 "autocast is emulated there and was measured ~12x slower than float32; use amp=False")
        graphed = self.cuda_graph if self.cuda_graph is not None else (device.type == "cuda" and not self.compile)
        if graphed and device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs a CUDA device, got device {device}")
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        forward = torch.compile(model) if self.compile else model
        # autocast's cast cache and graph capture do not mix: under bfloat16 every update runs eagerly
        return forward, self.wrap(step), graphed and not self.amp

    def wrap(self, step: Step) -> Step:
        """``step`` with each batch in this memory layout and under this autocast (same numbers, faster)."""
        if not (self.channels_last or self.amp):
            return step
        return functools.partial(_fast_step, step=step, channels_last=self.channels_last, amp=self.amp)


def _fast_step(model: nn.Module, batch: torch.Tensor, *labels: torch.Tensor, step: Step, channels_last: bool,
               amp: bool):
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=amp):
        return step(model, batch, *labels)


class GraphedStep:
    """An optimiser update captured once as a CUDA graph and replayed for every full batch (CUDA only).

    ``update(model, optimizer, batch)`` is ``training.train_step`` with the model's step bound: the
    graph captures whatever step it is handed. At batch 64 these small networks keep a GPU waiting on
    Python: launching ~150 kernels one by one costs more than running them; a graph launches the
    whole update (forward, backward, Adam) at once, with the same numbers. Capturing needs a few
    warm-up updates, which would train the model: weights and Adam's state are put back exactly
    afterwards. Batches of another shape (an epoch's last, smaller batch) and labelled updates (the
    classifier's, small) run eagerly. If capturing fails, every update runs eagerly, with one warning.
    """

    def __init__(self, update: Update):
        self.update = update
        self.graph = None
        self.failed = False
        self.static_batch = self.static_out = None

    def __call__(self, model, optimizer, batch, *labels):
        if labels or self.failed or (self.graph is not None and batch.shape != self.static_batch.shape):
            return self.update(model, optimizer, batch, *labels)
        if self.graph is None:
            self._capture(model, optimizer, batch)
            if self.failed:
                return self.update(model, optimizer, batch)
        self.static_batch.copy_(batch)
        self.graph.replay()
        return self.static_out

    def _capture(self, model, optimizer, batch) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        saved_params = [p.detach().clone() for p in params]
        saved_state = {i: {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
                       for i, p in enumerate(params) if optimizer.state.get(p)}
        self.static_batch = batch.clone()
        try:
            side = torch.cuda.Stream(batch.device)
            side.wait_stream(torch.cuda.current_stream(batch.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up: allocations and kernel choices settle before capture
                    self.update(model, optimizer, self.static_batch)
            torch.cuda.current_stream(batch.device).wait_stream(side)
            optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.static_out = self.update(model, optimizer, self.static_batch)
            self.graph = graph
        except Exception as exc:  # an op that cannot be captured on this torch/driver: stay eager
            self.failed = True
            warn(f"capturing the training step as a CUDA graph failed ({type(exc).__name__}: {exc}); "
                 "training continues eagerly, which is slower but the same")
        finally:
            with torch.no_grad():  # undo the warm-up: the same weights and Adam state as before it
                for p, saved in zip(params, saved_params):
                    p.copy_(saved)
                for i, p in enumerate(params):
                    for key, value in optimizer.state.get(p, {}).items():
                        if not torch.is_tensor(value):
                            continue
                        before = saved_state.get(i, {}).get(key)
                        value.copy_(before) if before is not None else value.zero_()
