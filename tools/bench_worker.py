"""One timed run of one training path, in a process of its own: the benchmark's worker.

``python -m tools bench`` starts this file as a fresh Python process for every path and every
repeat (``python .../bench_worker.py SPEC.json``), so that what one path does to the process (the
malloc settings of :func:`convae_utils.cpu_speed.tune_allocator`, oneDNN's caches, compiled code)
cannot help or hurt the next. The ``convae_utils`` it imports is whichever ``PYTHONPATH`` names:
this checkout, or an older revision exported by ``bench --baseline REV``. So this file imports only
the standard library and torch at the top, and from the package only what every release has:
``models.build_autoencoder``, ``training.fit``, ``training.mean_loss`` and ``training.ImageSet`` (the
class ``fit`` checks for, wherever a release defines it).

The spec (JSON) names the data file (``torch.save`` of uint8 tensors, written by the benchmark), the
starting weights, the path (``impl``: ``fit`` or ``article``, and fit's options), the batch sizes and
the step counts. The result is one JSON line on stdout, after the marker ``RESULT_MARKER``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import statistics
import sys
import time

import torch

RESULT_MARKER = "convae-bench-worker-result: "


def sync(device: torch.device) -> None:
    """Wait for the device (CUDA and MPS run asynchronously; a CPU never needs it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Window:
    """Wall time from the end of the last warm-up step to the end of the last timed step.

    On a CPU every step is synchronous, so the time between two steps' ends is that step's cost
    (data loading included); those are kept too, for a load-robust median.
    """

    def __init__(self, device: torch.device, warmup: int, last: int):
        self.device, self.warmup, self.last = device, warmup, last
        self.marks: list[float] = []

    def __call__(self, step: int) -> None:
        if step == self.warmup - 1 or step == self.last:
            sync(self.device)
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


class MemoryProbe:
    """Peak memory of one run: CUDA's allocator peak, or the process's resident-set growth on a CPU.

    On Linux the kernel's resident-set high-water mark (VmHWM) is reset before the run, after handing
    freed heap pages back (``malloc_trim``), so the figure is the run's own peak working set: model,
    optimiser state, activations, batches and, for the article's loop, its per-item tensors. Elsewhere
    ``ru_maxrss`` is used, which only grows (a lower bound).
    """

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated growth during the run (CUDA caching allocator)"
        elif device.type == "cpu" and proc_hwm_supported():
            self.method = ("peak resident-set growth of the process during the run "
                           "(Linux VmHWM, reset before each run after malloc_trim)")
        elif device.type == "cpu":
            self.method = "growth of the process's peak RSS (ru_maxrss; a lower bound)"
        else:
            self.method = "not measured on this device"
        self.base = 0

    def __enter__(self):
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.device.type == "cpu":
            if proc_hwm_supported():
                malloc_trim()
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")  # resets VmHWM to the current RSS
                self.base = proc_status_kb("VmRSS") * 1024
            else:
                self.base = ru_maxrss_bytes()
        return self

    def __exit__(self, *exc):
        return False

    def peak_bytes(self) -> int | None:
        if self.device.type == "cuda":
            sync(self.device)
            return int(torch.cuda.max_memory_allocated(self.device) - self.base)
        if self.device.type == "cpu":
            peak = proc_status_kb("VmHWM") * 1024 if proc_hwm_supported() else ru_maxrss_bytes()
            return max(0, int(peak - self.base))
        return None


def proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


_HWM_SUPPORTED: bool | None = None


def proc_hwm_supported() -> bool:
    global _HWM_SUPPORTED
    if _HWM_SUPPORTED is None:
        try:
            proc_status_kb("VmHWM")
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            _HWM_SUPPORTED = True
        except (OSError, KeyError, ValueError):
            _HWM_SUPPORTED = False
    return _HWM_SUPPORTED


def malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def ru_maxrss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _image_set_class():
    """The ImageSet class ``fit`` checks for: every release's training module imports it by that name."""
    from convae_utils import training

    return training.ImageSet


def _cpu_seconds() -> float:
    return time.process_time()


def call_fit(fit, model, train, val, *, options: dict, on_step=None, **kwargs):
    """Call the ``fit`` of whichever release is on the path with ``options`` (layout, autocast, compile).

    Releases up to 0.2 take them and ``on_batch_end(epoch, step)`` as keywords; later ones take a
    ``speed.Speed`` and callbacks. ``on_step(step)`` gets each step's index within the epoch.
    """
    import inspect

    if "speed" not in inspect.signature(fit).parameters:
        extra = {"on_batch_end": lambda _epoch, step: on_step(step)} if on_step is not None else {}
        return fit(model, train, val, **kwargs, **options, **extra)
    from convae_utils.callbacks import Callback
    from convae_utils.speed import Speed

    class OnStep(Callback):
        def on_step_end(self, loop) -> None:
            on_step(loop.completed - 1)

    return fit(model, train, val, **kwargs, speed=Speed(**options),
               callbacks=[OnStep()] if on_step is not None else ())


def run_steps(spec: dict) -> dict:
    """The agreement check's steps: one epoch of ``fit`` over the images given; saves the weights after."""
    import convae_utils
    from convae_utils.models import build_autoencoder
    from convae_utils.training import fit

    data = torch.load(spec["data"], weights_only=True)
    ImageSet = _image_set_class()
    images = ImageSet(data["train"], data["train_labels"], tuple(data["classes"]), data["name"], "train")
    model = build_autoencoder(spec["latent_dim"], seed=spec["seed"])
    model.load_state_dict(torch.load(spec["weights"], weights_only=True))
    history = call_fit(fit, model, images, images, options=spec.get("options", {}), num_epochs=1,
                       batch_size=spec["batch_size"], seed=spec["seed"], device=spec["device"], progress=False)
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, spec["out_state"])
    return {"package": str(convae_utils.__file__), "losses": [float(x) for x in history.train_batch_loss]}


def run_spec(spec: dict) -> dict:
    """Train (warm-up + timed steps) then evaluate (warm-up + timed batches) as ``spec`` says; return timings."""
    import convae_utils
    from convae_utils.models import build_autoencoder

    if spec.get("mode") == "steps":
        return run_steps(spec)
    device = torch.device(spec["device"])
    data = torch.load(spec["data"], weights_only=True)
    ImageSet = _image_set_class()
    classes = tuple(data["classes"])
    train = ImageSet(data["train"], data["train_labels"], classes, data["name"], "train")
    val = ImageSet(data["val"], data["val_labels"], classes, data["name"], "val")
    evaluation = ImageSet(data["eval"], data["eval_labels"], classes, data["name"], "test")
    batch, warmup, steps = spec["batch_size"], spec["warmup"], spec["steps"]
    eval_batch = spec["eval_batch_size"]
    seed, impl, options = spec["seed"], spec["impl"], spec.get("options", {})

    model = build_autoencoder(spec["latent_dim"], seed=seed)
    model.load_state_dict(torch.load(spec["weights"], weights_only=True))  # the same start in every version
    window = Window(device, warmup, warmup + steps - 1)
    train_probe = MemoryProbe(device)
    cpu0 = _cpu_seconds()
    if impl == "article":
        from convae_utils.article import article_evaluate, article_loader, article_train, as_article_model
        from convae_utils.training import epoch_order

        loader = article_loader(train, batch, epoch_order(len(train), seed, 0, "cpu").tolist())
        as_article_model(model).to(device)  # the article's model moved itself to the device in __init__
        with train_probe:
            losses = article_train(model, loader, device, on_step=window)
    elif impl == "fit":
        from convae_utils.training import fit, mean_loss

        with train_probe:
            history = call_fit(fit, model, train, val, options=options, on_step=window, num_epochs=1,
                               batch_size=batch, seed=seed, device=device, progress=False)
        losses = list(history.train_batch_loss)
    else:
        raise ValueError(f"unknown impl {impl!r}; expected 'fit' or 'article'")
    train_cpu = _cpu_seconds() - cpu0
    train_seconds, step_seconds = window.seconds, window.step_seconds

    eval_probe = MemoryProbe(device)
    if impl == "article":
        eval_window = Window(device, warmup, len(evaluation) // eval_batch - 1)
        with eval_probe:
            batch_losses = article_evaluate(model, article_loader(evaluation, eval_batch), device,
                                            on_step=eval_window)
        eval_loss = statistics.fmean(batch_losses[warmup:])  # all batches hold eval_batch images
        eval_seconds = eval_window.seconds
    else:
        on_device = evaluation.images.to(device)
        split = warmup * eval_batch
        channels_last = options.get("channels_last", True)
        with eval_probe:
            mean_loss(model, on_device[:split], batch_size=eval_batch, channels_last=channels_last)
            sync(device)
            t0 = time.perf_counter()
            eval_loss = mean_loss(model, on_device[split:], batch_size=eval_batch, channels_last=channels_last)
            sync(device)
            eval_seconds = time.perf_counter() - t0
    peaks = [p for p in (train_probe.peak_bytes(), eval_probe.peak_bytes()) if p is not None]
    return {
        "package": str(convae_utils.__file__),
        "threads": torch.get_num_threads(),
        "train_seconds": train_seconds,
        "train_step_seconds": step_seconds,
        "train_cpu_seconds": train_cpu,
        "losses": [float(x) for x in losses],
        "eval_seconds": eval_seconds,
        "eval_loss": float(eval_loss),
        "peak_bytes": max(peaks) if peaks else None,
        "memory_method": train_probe.method,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench_worker.py SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        spec = json.load(fh)
    result = run_spec(spec)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    # Run by path: this file's folder (tools/) must not shadow anything on the import path.
    sys.path.pop(0)
    sys.exit(main(sys.argv[1:]))
