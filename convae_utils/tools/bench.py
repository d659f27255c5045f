"""Benchmark: the article's training loop and the package's, side by side, in one process.

``python -m convae_utils bench`` (or ``python -m convae_utils.bench``) trains the same model from the
same initial weights on the same batches, once through the article's loop as the article wrote it and
once through the package's own :func:`convae_utils.training.fit`, alternating the two for several
repeats so that both see the same machine load. It prints, per latent size:

- training and evaluation throughput (images/s, median over repeats) and the ratio to the article's loop;
- achieved GFLOP/s (FLOPs of one step counted with ``torch.utils.flop_counter.FlopCounterMode``) and
  that as a share of a float32 matrix-multiply peak measured in the same run, on the same threads;
- peak memory of each path;
- the loss both paths reach after the same steps (they must agree up to float noise, otherwise the
  command exits with status 1);
- an estimate of the article's whole experiment (10 epochs over 50,000 training images plus a
  10,000-image evaluation per epoch) from the measured throughput.

The article's loop, as written: a Dataset over HWC uint8 NumPy images that, like torchvision's
``CIFAR10.__getitem__``, makes a PIL image per item and applies ``ToTensor`` + ``Normalize``; a
``DataLoader`` without shuffling or workers; the model in its default memory layout; ``.to(device)``
per batch; Adam 1e-3, MSE and ``loss.item()`` after every step. So that both paths see the same
batches, its DataLoader is given ``fit``'s batch order as a sampler (one epoch of ``fit``'s shuffle,
read from :func:`convae_utils.training.epoch_order`); nothing else about it changes.

The package's path is the package's real code, not a copy: :func:`~convae_utils.training.fit` for
training (its ``on_batch_end`` hook marks the end of the warm-up and of the last step) and
:func:`~convae_utils.training.mean_loss` for evaluation.

For the command line (wired as ``python -m convae_utils bench``): :func:`add_arguments` fills a parser,
:func:`run` does the work, prints, and returns the results as a dict, :func:`exit_code` turns them into
the exit status, :func:`run_cli` does both for a parsed namespace, and :func:`main` also parses.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..article import article_evaluate, article_loader, article_train, as_article_model
from ..images import ImageSet
from ..models import MAX_LATENT_DIM, build_autoencoder, count_parameters
from ..settings import pick_device
from ..shapes import make_shapes10
from ..training import epoch_order, fit, mean_loss
from .arguments import whole_number

BENCH_FORMAT = "convae-bench"
BENCH_VERSION = 1

DEFAULT_LATENT_DIMS = (200, 1000)
DEFAULTS = {"batch_size": 64, "steps": 30, "warmup": 5, "repeats": 5}
# --quick: a CI smoke test that finishes in seconds. Numbers from it are not measurements.
QUICK = {"batch_size": 16, "steps": 2, "warmup": 1, "repeats": 1}

# The article's experiment: 10 epochs over CIFAR-10's 50,000 training images, each epoch followed by
# a pass over the 10,000 test images (its validation set).
ARTICLE_EPOCHS = 10
ARTICLE_TRAIN_IMAGES = 50_000
ARTICLE_EVAL_IMAGES = 10_000

# Targets from the issue: on a 2-core CPU and on one GPU, for latent 200 at batch 64; on a GPU also
# the article's whole experiment (latent 200 and 1000) in under a minute.
TARGET_LATENT_DIM = 200
TARGET_BATCH_SIZE = 64
CPU_TARGETS = {"train_speedup": 1.25, "eval_speedup": 1.5, "train_peak_share": 0.55}
GPU_TARGETS = {"train_speedup": 10.0, "experiment_seconds": 60.0}

# Both paths start from the same weights and see the same batches, so the first step's loss differs
# only by summation order (channels_last picks other kernels). Later losses drift further: Adam
# amplifies float noise; measured here, about 4e-3 relative after 50-200 steps. A wrong batch order,
# normalisation or learning rate moves them by far more.
FIRST_STEP_RTOL = 1e-4
TF32_FIRST_STEP_RTOL = 1e-3  # on a GPU cuDNN may pick TF32 kernels (10-bit mantissa), other ones per layout
LOSS_RTOL = 1e-2
AMP_LOSS_RTOL = 5e-2  # bfloat16 autocast changes results beyond float32 noise by design

MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# The article's loop, as written
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Measuring: clocks, FLOPs, the matmul peak, memory
# ---------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class _Window:
    """Wall time from the end of the last warm-up step to the end of the last timed step.

    On a CPU every step is synchronous, so the time between two steps' ends is that step's cost
    (data loading included); those are kept too, for a load-robust median.
    """

    def __init__(self, device: torch.device, warmup: int, last: int):
        self.device, self.warmup, self.last = device, warmup, last
        self.marks: list[float] = []

    def __call__(self, step: int) -> None:
        if step == self.warmup - 1 or step == self.last:
            _sync(self.device)
        if self.warmup - 1 <= step <= self.last:
            self.marks.append(time.perf_counter())

    @property
    def seconds(self) -> float:
        if len(self.marks) != self.last - self.warmup + 2:
            raise RuntimeError("the timed window was never closed: fewer steps ran than expected")
        return self.marks[-1] - self.marks[0]

    @property
    def step_seconds(self) -> list[float]:
        """Per-step times (CPU only: on a GPU steps are asynchronous and only the total is meaningful)."""
        if self.device.type != "cpu":
            return []
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def count_flops(model: nn.Module, batch_size: int, device: torch.device, *, train: bool) -> int:
    """FLOPs of one training step (forward + backward) or one evaluation forward, for ``batch_size`` images.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions; elementwise work
    and the optimiser step are not counted, as is usual for GFLOP/s figures).
    """
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters())
    x = torch.zeros(batch_size, 3, 32, 32, device=device, dtype=param.dtype)
    was_training = model.training
    model.train(train)
    counter = FlopCounterMode(display=False)
    try:
        if train:
            with counter:
                loss = F.mse_loss(model(x), x)
                loss.backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), counter:
                model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def matmul_gflops(device: torch.device, size: int, *, dtype: torch.dtype = torch.float32,
                  samples: int = 3) -> list[float]:
    """Achieved GFLOP/s of ``samples`` timed square matmuls (after one untimed), on the current threads."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    flops = 2.0 * size ** 3
    # On a GPU one matmul takes well under a millisecond: time a few together so the clock resolves them.
    inner = 1 if device.type == "cpu" else max(1, int(2e11 // flops))
    torch.mm(a, b, out=out)
    _sync(device)
    results = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=out)
        _sync(device)
        results.append(flops * inner / (time.perf_counter() - t0) / 1e9)
    return results


class _MemoryProbe:
    """Peak memory of one run: CUDA's allocator peak, or the process's resident-set growth on a CPU.

    On Linux the kernel's resident-set high-water mark (VmHWM) is reset before the run, after handing
    freed heap pages back (``malloc_trim``), so the figure is the run's own peak working set: model,
    optimiser state, activations, batches and, for the article's loop, its per-item tensors. Elsewhere
    ``ru_maxrss`` is used, which only grows, so later runs can read 0 (a lower bound).
    """

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated growth during the run (CUDA caching allocator)"
        elif device.type == "cpu" and _proc_hwm_supported():
            self.method = ("peak resident-set growth of the process during the run "
                           "(Linux VmHWM, reset before each run after malloc_trim)")
        elif device.type == "cpu":
            self.method = "growth of the process's peak RSS (ru_maxrss; a lower bound after the first run)"
        else:
            self.method = "not measured on this device"
        self.base = 0

    def __enter__(self):
        if self.device.type == "cuda":
            _sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.device.type == "cpu":
            if _proc_hwm_supported():
                _malloc_trim()
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")  # resets VmHWM to the current RSS
                self.base = _proc_status_kb("VmRSS") * 1024
            else:
                self.base = _ru_maxrss_bytes()
        return self

    def __exit__(self, *exc):
        return False

    def peak_bytes(self) -> int | None:
        if self.device.type == "cuda":
            _sync(self.device)
            return int(torch.cuda.max_memory_allocated(self.device) - self.base)
        if self.device.type == "cpu":
            peak = _proc_status_kb("VmHWM") * 1024 if _proc_hwm_supported() else _ru_maxrss_bytes()
            return max(0, int(peak - self.base))
        return None


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


_HWM_SUPPORTED: bool | None = None


def _proc_hwm_supported() -> bool:
    global _HWM_SUPPORTED
    if _HWM_SUPPORTED is None:
        try:
            _proc_status_kb("VmHWM")
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            _HWM_SUPPORTED = True
        except (OSError, KeyError, ValueError):
            _HWM_SUPPORTED = False
    return _HWM_SUPPORTED


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _ru_maxrss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


# ---------------------------------------------------------------------------------------------
# The two paths, measured
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """One way of running the package's path (the article's loop is the ``article`` variant)."""

    name: str
    channels_last: bool = True
    amp: bool = False
    compile: bool = False

    @property
    def is_article(self) -> bool:
        return self.name == "article"


ARTICLE = Variant("article", channels_last=False)
PACKAGE = Variant("package")  # fit's defaults


@dataclass
class _Run:
    seconds: float
    losses: list[float]
    peak_bytes: int | None
    model: nn.Module | None
    step_seconds: list[float] = field(default_factory=list)


def _train_once(variant: Variant, latent_dim: int, train: ImageSet, val: ImageSet, *, batch_size: int,
                warmup: int, steps: int, seed: int, device: torch.device) -> _Run:
    """Train a fresh model (same seeded weights every time) for warmup + steps batches; time the last steps."""
    model = build_autoencoder(latent_dim, seed=seed)
    window = _Window(device, warmup, warmup + steps - 1)
    probe = _MemoryProbe(device)
    if variant.is_article:
        loader = article_loader(train, batch_size, epoch_order(len(train), seed, 0, "cpu").tolist())
        as_article_model(model).to(device)  # the article's model moved itself to the device in __init__
        with probe:
            losses = article_train(model, loader, device, on_step=window)
    else:
        with probe:
            history = fit(model, train, val, num_epochs=1, batch_size=batch_size, seed=seed, device=device,
                          progress=False, channels_last=variant.channels_last, amp=variant.amp,
                          compile=variant.compile, on_batch_end=lambda _epoch, step: window(step))
        losses = history.train_batch_loss
    return _Run(window.seconds, losses, probe.peak_bytes(), model, window.step_seconds)


def _evaluate_once(variant: Variant, model: nn.Module, images: ImageSet, *, batch_size: int, warmup: int,
                   device: torch.device) -> _Run:
    """Evaluate ``model`` on ``images`` (warm-up batches first, untimed); mean loss of the timed batches."""
    probe = _MemoryProbe(device)
    if variant.is_article:
        window = _Window(device, warmup, len(images) // batch_size - 1)
        loader = article_loader(images, batch_size)
        with probe:
            batch_losses = article_evaluate(model, loader, device, on_step=window)
        loss = statistics.fmean(batch_losses[warmup:])  # all batches hold batch_size images
        seconds = window.seconds
    else:
        on_device = images.images.to(device)
        split = warmup * batch_size
        with probe:
            mean_loss(model, on_device[:split], batch_size=batch_size, channels_last=variant.channels_last)
            _sync(device)
            t0 = time.perf_counter()
            loss = mean_loss(model, on_device[split:], batch_size=batch_size, channels_last=variant.channels_last)
            _sync(device)
            seconds = time.perf_counter() - t0
    return _Run(seconds, [loss], probe.peak_bytes(), model)


def _first_step_rtol(device: torch.device) -> float:
    tf32 = device.type == "cuda" and (torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)
    return TF32_FIRST_STEP_RTOL if tf32 else FIRST_STEP_RTOL


def _rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _make_images(n: int, seed: int, split: str) -> ImageSet:
    """Stand-in pictures: timing does not depend on what the pictures show."""
    return make_shapes10(n, seed=seed, split=split)


def _rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def bench_latent(latent_dim: int, variants: list[Variant], settings: dict, device: torch.device,
                 peak_samples: dict[str, list[float]], log: Callable[[str], None]) -> dict:
    """Measure every variant for one latent size; returns that latent's result block."""
    batch, steps, warmup, repeats = (settings[k] for k in ("batch_size", "steps", "warmup", "repeats"))
    eval_batch, eval_steps, seed = settings["eval_batch_size"], settings["eval_steps"], settings["seed"]
    train = _make_images((warmup + steps) * batch, seed, "train")
    val = _make_images(batch, seed + 1, "test")  # fit's end-of-epoch validation: kept tiny, not timed
    evaluation = _make_images((warmup + eval_steps) * eval_batch, seed, "test")

    models: dict[str, nn.Module] = {}
    train_runs: dict[str, list[_Run]] = {v.name: [] for v in variants}
    eval_runs: dict[str, list[_Run]] = {v.name: [] for v in variants}
    for r in range(repeats):
        log(f"latent {latent_dim}: training, repeat {r + 1}/{repeats}")
        for variant in _rotate(variants, r):  # alternate who goes first: both see the same drift in load
            run_ = _train_once(variant, latent_dim, train, val, batch_size=batch, warmup=warmup, steps=steps,
                               seed=seed, device=device)
            models.setdefault(variant.name, run_.model)
            run_.model = None
            train_runs[variant.name].append(run_)
        _sample_peaks(device, settings, variants, peak_samples)
    for r in range(repeats):
        log(f"latent {latent_dim}: evaluation, repeat {r + 1}/{repeats}")
        for variant in _rotate(variants, r):
            run_ = _evaluate_once(variant, models[variant.name], evaluation, batch_size=eval_batch,
                                  warmup=warmup, device=device)
            run_.model = None
            eval_runs[variant.name].append(run_)
        _sample_peaks(device, settings, variants, peak_samples)

    model = build_autoencoder(latent_dim, seed=seed).to(device)
    flops_train = count_flops(model, batch, device, train=True) / batch
    flops_eval = count_flops(model, eval_batch, device, train=False) / eval_batch

    block: dict = {
        "latent_dim": latent_dim,
        "parameters": count_parameters(model),
        "flops_per_image": {"train_step": flops_train, "eval_forward": flops_eval},
        "paths": {},
    }
    ref_train = train_runs[ARTICLE.name][0].losses
    ref_eval = eval_runs[ARTICLE.name][0].losses[0]
    for variant in variants:
        trains, evals = train_runs[variant.name], eval_runs[variant.name]
        train_ips = [steps * batch / r.seconds for r in trains]
        eval_ips = [eval_steps * eval_batch / r.seconds for r in evals]
        losses = trains[0].losses
        peaks = [r.peak_bytes for r in trains + evals if r.peak_bytes is not None]
        entry = {
            "channels_last": variant.channels_last, "amp": variant.amp, "compile": variant.compile,
            "train": _throughput(train_ips, flops_train, [t for r in trains for t in r.step_seconds], batch),
            "eval": _throughput(eval_ips, flops_eval),
            "peak_memory_mb": max(peaks) / MB if peaks else None,
            "loss": {
                "first_step": losses[0],
                "last_step": losses[-1],
                "timed_steps_mean": statistics.fmean(losses[warmup:]),
                "eval": evals[0].losses[0],
            },
        }
        if not variant.is_article:
            rtol = AMP_LOSS_RTOL if variant.amp else LOSS_RTOL
            first_rtol = AMP_LOSS_RTOL if variant.amp else _first_step_rtol(device)
            diffs = {
                "first_step": _rel_diff(losses[0], ref_train[0]),
                "timed_steps_mean": _rel_diff(entry["loss"]["timed_steps_mean"], statistics.fmean(ref_train[warmup:])),
                "eval": _rel_diff(entry["loss"]["eval"], ref_eval),
            }
            entry["loss_check"] = {
                "relative_difference": diffs,
                "tolerance": {"first_step": first_rtol, "timed_steps_mean": rtol, "eval": rtol},
                "ok": bool(diffs["first_step"] <= first_rtol and diffs["timed_steps_mean"] <= rtol
                           and diffs["eval"] <= rtol and all(map(math.isfinite, losses))),
            }
        block["paths"][variant.name] = entry
    base = block["paths"][ARTICLE.name]
    for entry in block["paths"].values():
        for phase in ("train", "eval"):
            entry[phase]["speedup"] = entry[phase]["images_per_s"] / base[phase]["images_per_s"]
        if "images_per_s_median_step" in entry["train"]:
            entry["train"]["speedup_median_step"] = (entry["train"]["images_per_s_median_step"]
                                                     / base["train"]["images_per_s_median_step"])
        entry["experiment_seconds"] = experiment_seconds(entry["train"]["images_per_s"],
                                                         entry["eval"]["images_per_s"])
    return block


def _throughput(images_per_s: list[float], flops_per_image: float, step_seconds: Sequence[float] = (),
                batch_size: int = 0) -> dict:
    median = statistics.median(images_per_s)
    out = {
        "images_per_s": median,
        "images_per_s_repeats": images_per_s,
        "gflops": median * flops_per_image / 1e9,
    }
    if step_seconds:
        # The median step of all repeats: steadier than whole windows when other jobs share the CPU.
        out["images_per_s_median_step"] = batch_size / statistics.median(step_seconds)
    return out


def experiment_seconds(train_images_per_s: float, eval_images_per_s: float) -> float:
    """The article's experiment for one latent size at these speeds: training and evaluation passes only."""
    return ARTICLE_EPOCHS * (ARTICLE_TRAIN_IMAGES / train_images_per_s + ARTICLE_EVAL_IMAGES / eval_images_per_s)


def _peak_size(device: torch.device, quick: bool) -> int:
    if device.type == "cpu":
        return 512 if quick else 2048
    return 2048 if quick else 8192


def _sample_peaks(device: torch.device, settings: dict, variants: list[Variant],
                  samples: dict[str, list[float]]) -> None:
    """Time the matmul peak between repeats, so it sees the same machine load as the paths do."""
    size = settings["peak_matmul_size"]
    n = 1 if settings["quick"] else 3
    samples.setdefault("float32", []).extend(matmul_gflops(device, size, samples=n))
    if any(v.amp for v in variants):
        samples.setdefault("bfloat16", []).extend(matmul_gflops(device, size, dtype=torch.bfloat16, samples=n))


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

_positive_int = whole_number(1)
_non_negative_int = whole_number(0)


def _latent_dims(text: str) -> list[int]:
    dims = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected latent sizes like 200 or 200,1000, got {text!r}") from None
        if not 1 <= value <= MAX_LATENT_DIM:
            raise argparse.ArgumentTypeError(f"latent sizes must lie in 1..{MAX_LATENT_DIM:,}, got {value}")
        dims.append(value)
    return dims


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (a whole parser or a ``bench`` subcommand)."""
    parser.add_argument("--latent-dim", type=_latent_dims, action="append", metavar="N[,N...]",
                        help="latent size(s) to measure; repeatable or comma-separated (default: 200,1000)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help=f"training batch size (default {DEFAULTS['batch_size']}; --quick: {QUICK['batch_size']})")
    parser.add_argument("--steps", type=_positive_int, metavar="N",
                        help=f"timed training steps per repeat, after the warm-up (default {DEFAULTS['steps']})")
    parser.add_argument("--warmup", type=_positive_int, metavar="N",
                        help=f"untimed steps (and evaluation batches) before timing (default {DEFAULTS['warmup']})")
    parser.add_argument("--repeats", type=_positive_int, metavar="N",
                        help=f"times each path is run, alternating; medians are reported (default {DEFAULTS['repeats']})")
    parser.add_argument("--eval-steps", type=_positive_int, metavar="N",
                        help="timed evaluation batches per repeat (default: as --steps)")
    parser.add_argument("--eval-batch-size", type=_positive_int, metavar="N",
                        help="evaluation batch size, the same for both paths (default: as --batch-size)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="initial weights, batch order and data (default 0)")
    parser.add_argument("--amp", action="store_true",
                        help="also time the package with bfloat16 autocast (CUDA only)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the package with torch.compile (compiling happens in the warm-up)")
    parser.add_argument("--contiguous", action="store_true",
                        help="also time the package without channels_last, to see what the layout buys")
    parser.add_argument("--json", metavar="PATH",
                        help="write the results as JSON to PATH ('-' for stdout; the table then goes to stderr)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test for CI: tiny batches, a couple of steps, seconds; not a measurement")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of ``python -m convae_utils.bench``."""
    parser = argparse.ArgumentParser(
        prog="python -m convae_utils bench",
        description="Time the article's training loop against the package's, side by side.")
    return add_arguments(parser)


def _settings(args: argparse.Namespace, device: torch.device) -> dict:
    quick = bool(getattr(args, "quick", False))
    preset = QUICK if quick else DEFAULTS
    settings = {k: getattr(args, k, None) or preset[k] for k in DEFAULTS}
    settings["eval_steps"] = getattr(args, "eval_steps", None) or settings["steps"]
    settings["eval_batch_size"] = getattr(args, "eval_batch_size", None) or settings["batch_size"]
    dims = getattr(args, "latent_dim", None)
    settings["latent_dims"] = list(dict.fromkeys(d for group in dims for d in group)) if dims else list(DEFAULT_LATENT_DIMS)
    settings["seed"] = int(getattr(args, "seed", 0) or 0)
    settings["quick"] = quick
    settings["peak_matmul_size"] = _peak_size(device, quick)
    return settings


def _variants(args: argparse.Namespace, device: torch.device) -> list[Variant]:
    variants = [ARTICLE, PACKAGE]
    if getattr(args, "contiguous", False):
        variants.append(Variant("package-contiguous", channels_last=False))
    if getattr(args, "amp", False):
        if device.type != "cuda":
            raise ValueError(f"--amp needs a CUDA device (bfloat16 autocast in fit), got device {device}")
        variants.append(Variant("package+amp", amp=True))
    if getattr(args, "compile", False):
        variants.append(Variant("package+compile", compile=True))
        if getattr(args, "amp", False):
            variants.append(Variant("package+amp+compile", amp=True, compile=True))
    return variants


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _machine(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        # cuDNN may run float32 convolutions in TF32, faster than the float32 matmul peak measured here.
        info["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        info["matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return info


def _target(value: float, target: float, *, at_most: bool = False) -> dict:
    return {"target": target, "measured": value, "met": bool(value <= target if at_most else value >= target)}


def _targets(block: dict, device: torch.device, settings: dict) -> dict:
    """The issue's targets for this latent size. They are set for latent 200 at batch 64; ``applies``
    says whether this block is that setting (other blocks show them for reference)."""
    package = block["paths"][PACKAGE.name]
    applies = (block["latent_dim"] == TARGET_LATENT_DIM and settings["batch_size"] == TARGET_BATCH_SIZE
               and not settings["quick"])
    if device.type == "cuda":
        checks = {"train_speedup": _target(package["train"]["speedup"], GPU_TARGETS["train_speedup"])}
    else:
        checks = {
            "train_speedup": _target(package["train"]["speedup"], CPU_TARGETS["train_speedup"]),
            "eval_speedup": _target(package["eval"]["speedup"], CPU_TARGETS["eval_speedup"]),
            "train_peak_share": _target(package["train"]["peak_share"], CPU_TARGETS["train_peak_share"]),
        }
    return {"applies": applies, **checks}


def _experiment_target(package_seconds: float, device: torch.device, settings: dict) -> dict | None:
    """On a GPU: the article's whole experiment (latent 200 and 1000) within ``GPU_TARGETS``."""
    if device.type != "cuda":
        return None
    applies = (set(settings["latent_dims"]) == set(DEFAULT_LATENT_DIMS)
               and settings["batch_size"] == TARGET_BATCH_SIZE and not settings["quick"])
    return {"applies": applies, **_target(package_seconds, GPU_TARGETS["experiment_seconds"], at_most=True)}


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark described by ``args`` (from :func:`add_arguments`), print it, return the results.

    Raises ValueError for what a parser cannot check (a device this machine lacks, ``--amp`` without
    CUDA); :func:`main` turns that into a usage error (exit status 2).
    """
    device = pick_device(getattr(args, "device", "auto"))
    settings = _settings(args, device)
    variants = _variants(args, device)
    json_target = getattr(args, "json", None)
    table_stream = sys.stderr if json_target == "-" else sys.stdout

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    log(f"device {device}, {torch.get_num_threads()} threads; variants: {', '.join(v.name for v in variants)}")
    peak_samples: dict[str, list[float]] = {}
    _sample_peaks(device, settings, variants, peak_samples)  # also warms up the BLAS threads
    peak_samples = {k: [] for k in peak_samples}  # the first samples were the warm-up
    blocks = [bench_latent(d, variants, settings, device, peak_samples, log) for d in settings["latent_dims"]]

    peak = {"matmul_size": settings["peak_matmul_size"], "threads": torch.get_num_threads()}
    for dtype, samples in peak_samples.items():
        peak[dtype] = {"gflops": statistics.median(samples), "max_gflops": max(samples), "samples": samples}
    fp32_peak = peak["float32"]["gflops"]
    for block in blocks:
        for entry in block["paths"].values():
            ref = peak["bfloat16"]["gflops"] if entry["amp"] else fp32_peak
            for phase in ("train", "eval"):
                entry[phase]["peak_share"] = entry[phase]["gflops"] / ref
        block["targets"] = _targets(block, device, settings)

    experiment = {name: sum(b["paths"][name]["experiment_seconds"] for b in blocks) for name in blocks[0]["paths"]}
    memory_method = _MemoryProbe(device).method
    result = {
        "format": BENCH_FORMAT,
        "version": BENCH_VERSION,
        "settings": {**settings, "device": str(device), "variants": [v.name for v in variants],
                     "dataset": _make_images(1, 0, "train").name},
        "machine": _machine(device),
        "peak": peak,
        "memory_method": memory_method,
        "results": blocks,
        "experiment_seconds": {
            "latent_dims": settings["latent_dims"],
            "what": (f"{ARTICLE_EPOCHS} epochs x ({ARTICLE_TRAIN_IMAGES:,} training + {ARTICLE_EVAL_IMAGES:,} "
                     "evaluation images) per latent size, summed over the latent sizes measured; estimated "
                     "from the median throughput (no data loading, checkpoints or pictures)"),
            **experiment,
        },
        "experiment_target": _experiment_target(experiment[PACKAGE.name], device, settings),
        "loss_ok": all(e.get("loss_check", {}).get("ok", True) for b in blocks for e in b["paths"].values()),
    }
    print(format_table(result), file=table_stream, flush=True)
    if json_target == "-":
        print(json.dumps(result, indent=2), flush=True)
    elif json_target:
        Path(json_target).parent.mkdir(parents=True, exist_ok=True)
        Path(json_target).write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {json_target}")
    return result


def exit_code(result: dict) -> int:
    """0 when every package variant reached the article loop's loss (within tolerance), else 1."""
    return 0 if result.get("loss_ok") else 1


def run_cli(args: argparse.Namespace) -> int:
    """Run from an already parsed namespace (``python -m convae_utils bench``) and return the exit status."""
    return exit_code(run(args))


def _fmt_memory(mb: float | None) -> str:
    return "n/a" if mb is None else f"{mb:,.0f} MB"


def _fmt_target(name: str, value: float) -> str:
    if "share" in name:
        return f"{value:.0%}"
    if "seconds" in name:
        return f"{value:,.0f} s"
    return f"{value:.2f}x"


def format_table(result: dict) -> str:
    """The results as a plain-text table."""
    s, m, peak = result["settings"], result["machine"], result["peak"]
    lines = [
        f"convae bench: device {m['device']} ({m['device_name']}), {m['threads']} threads, torch {m['torch']}",
        f"batch {s['batch_size']} (eval {s['eval_batch_size']}), {s['steps']} timed steps "
        f"({s['eval_steps']} eval) after {s['warmup']} warm-up, median of {s['repeats']} alternating repeats; "
        f"data: {s['dataset']}" + ("   [--quick: smoke test, not a measurement]" if s["quick"] else ""),
        f"matmul peak ({peak['matmul_size']}x{peak['matmul_size']} float32): {peak['float32']['gflops']:,.1f} GFLOP/s "
        f"(median; best {peak['float32']['max_gflops']:,.1f})"
        + (f"; bfloat16 {peak['bfloat16']['gflops']:,.1f}" if "bfloat16" in peak else ""),
        f"memory: {result['memory_method']}",
    ]
    header = (f"{'latent':>6}  {'path':<20} {'train img/s':>11} {'x':>6} {'GFLOP/s':>8} {'peak':>5}   "
              f"{'eval img/s':>10} {'x':>6} {'GFLOP/s':>8} {'peak':>5}   {'memory':>9}  {'loss diff':>9}  "
              f"{'10 epochs':>9}")
    for block in result["results"]:
        lines += ["", header, "-" * len(header)]
        for name, e in block["paths"].items():
            tr, ev = e["train"], e["eval"]
            check = e.get("loss_check")
            diff = "ref." if check is None else (
                f"{max(check['relative_difference'].values()):.1e}" + ("" if check["ok"] else " !"))
            lines.append(
                f"{block['latent_dim']:>6}  {name:<20} {tr['images_per_s']:>11,.0f} {tr['speedup']:>5.2f}x "
                f"{tr['gflops']:>8,.1f} {tr['peak_share']:>5.0%}   {ev['images_per_s']:>10,.0f} {ev['speedup']:>5.2f}x "
                f"{ev['gflops']:>8,.1f} {ev['peak_share']:>5.0%}   {_fmt_memory(e['peak_memory_mb']):>9}  {diff:>9}  "
                f"{e['experiment_seconds']:>8,.0f}s")
        steady = [f"{name} {e['train']['speedup_median_step']:.2f}x" for name, e in block["paths"].items()
                  if name != ARTICLE.name and "speedup_median_step" in e["train"]]
        if steady:
            lines.append(f"{'':>6}  training speedup by median step (steadier when the CPU is shared): "
                         + ", ".join(steady))
        f = block["flops_per_image"]
        lines.append(f"{'':>6}  {block['parameters']:,} parameters; per image: training step "
                     f"{f['train_step'] / 1e6:,.1f} MFLOP, evaluation {f['eval_forward'] / 1e6:,.1f} MFLOP")
        targets = dict(block["targets"])
        applies = targets.pop("applies")
        verdicts = [f"{name} {_fmt_target(name, t['measured'])} (target {_fmt_target(name, t['target'])}: "
                    f"{'met' if t['met'] else 'MISSED'})" for name, t in targets.items()]
        label = "targets" if applies else (f"for reference, the targets set for latent {TARGET_LATENT_DIM}, "
                                           f"batch {TARGET_BATCH_SIZE}")
        lines.append(f"{'':>6}  {label}: " + "; ".join(verdicts))
    exp = result["experiment_seconds"]
    dims = " + ".join(str(d) for d in exp["latent_dims"])
    lines += ["", f"the article's experiment (latent {dims}; {exp['what']}):"]
    for name in result["results"][0]["paths"]:
        lines.append(f"  {name:<20} {exp[name]:>8,.0f} s  ({exp[name] / 60:,.1f} min)")
    target = result.get("experiment_target")
    if target is not None:
        lines.append(f"  target: package under {target['target']:,.0f} s on one GPU: "
                     f"{'met' if target['met'] else 'MISSED'}"
                     + ("" if target["applies"] else " (the target is for latent 200 + 1000 at batch 64)"))
    lines.append("losses agree (within float noise): " + ("yes" if result["loss_ok"] else "NO -- see 'loss diff' (!)"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convae_utils.bench [options]``: run, print, return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except ValueError as exc:  # a bad device, --amp without CUDA ...: a usage error, one line
        parser.error(str(exc))
    return exit_code(result)


if __name__ == "__main__":
    sys.exit(main())
