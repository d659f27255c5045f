"""Side-by-side CPU measurements of training-step variants (issue 14), in one process, interleaved.

Every variant trains its own copy of the same seeded model on the same batches with the package's
step (``fit``'s inner loop: uint8 gather, ``normalize``, channels_last, MSE, zero_grad, backward,
fused Adam). Variants take turns in blocks of a few steps (rotating who goes first), so a neighbour
loading the shared cores hits all of them alike; medians of per-step times are reported, as ratios
to the first variant. After the same steps each variant's loss is compared to the first's.

    PYTHONPATH=. python benchmarks/cpu_modes.py --variants base,bf16,compile --steps 60
    PYTHONPATH=. python benchmarks/cpu_modes.py --variants base,denormal,zero_keep,prealloc,contig

``compile`` also reports its compile time (the extra time of its first steps over its steady step,
with a fresh inductor cache unless --warm-cache) and the time of a workshop epoch (20,000 images)
with and without that compile time.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time

if "--warm-cache" not in sys.argv:
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-cold-"))

import torch
import torch.nn.functional as F

from convae_utils.arguments import OneLineParser
from convae_utils.images import normalize
from convae_utils.models import build_autoencoder
from convae_utils.shapes import make_shapes10
from convae_utils.speed import make_adam
from convae_utils.training import epoch_order

WORKSHOP_EPOCH_IMAGES = 20_000


class Variant:
    def __init__(self, name: str, *, amp=False, compile=False, channels_last=True, zero_to_none=True,
                 denormal=False, prealloc=False, mkldnn=True):
        self.name, self.amp, self.compile, self.channels_last = name, amp, compile, channels_last
        self.zero_to_none, self.denormal, self.prealloc, self.mkldnn = zero_to_none, denormal, prealloc, mkldnn
        self.times: list[float] = []
        self.eval_times: list[float] = []
        self.losses: list[float] = []
        self.first_steps: list[float] = []


VARIANTS = {
    "base": {},
    "bf16": {"amp": True},
    "compile": {"compile": True},
    "contig": {"channels_last": False},
    "denormal": {"denormal": True},
    "zero_keep": {"zero_to_none": False},
    "prealloc": {"prealloc": True},
    "no_mkldnn": {"mkldnn": False},
}


def setup(v: Variant, latent_dim: int, lr: float):
    model = build_autoencoder(latent_dim, seed=0)
    if v.channels_last:
        model = model.to(memory_format=torch.channels_last)
    v.model = model
    v.forward = torch.compile(model) if v.compile else model
    v.opt = make_adam(model, lr)
    v.step = 0
    v.buffers = None


def normalized_batch(v: Variant, images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    if not v.prealloc:
        xb = normalize(images[idx])
        return xb.contiguous(memory_format=torch.channels_last) if v.channels_last else xb
    # Reuse two buffers: gather into a uint8 one, convert into a float one laid out as channels_last.
    if v.buffers is None or v.buffers[0].shape[0] != len(idx):
        u8 = torch.empty((len(idx), *images.shape[1:]), dtype=torch.uint8)
        f32 = torch.empty(u8.shape, dtype=torch.float32, memory_format=torch.channels_last)
        v.buffers = (u8, f32)
    u8, f32 = v.buffers
    torch.index_select(images, 0, idx, out=u8)
    f32.copy_(u8)
    return f32.div_(127.5).sub_(1.0)


def train_step(v: Variant, images: torch.Tensor, order: torch.Tensor, batch: int) -> float:
    start = (v.step * batch) % (len(order) - batch + 1)
    idx = order[start:start + batch]
    torch.set_flush_denormal(v.denormal)
    torch.backends.mkldnn.enabled = v.mkldnn
    t0 = time.perf_counter()
    xb = normalized_batch(v, images, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v.amp):
        loss = F.mse_loss(v.forward(xb).float(), xb)
    v.opt.zero_grad(set_to_none=v.zero_to_none)
    loss.backward()
    v.opt.step()
    value = float(loss.detach())
    elapsed = time.perf_counter() - t0
    v.step += 1
    v.losses.append(value)
    return elapsed


@torch.inference_mode()
def eval_step(v: Variant, images: torch.Tensor, batch: int) -> float:
    torch.set_flush_denormal(v.denormal)
    torch.backends.mkldnn.enabled = v.mkldnn
    v.model.eval()
    t0 = time.perf_counter()
    xb = normalize(images[:batch])
    if v.channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v.amp):
        float(F.mse_loss(v.forward(xb).float(), xb, reduction="sum"))
    elapsed = time.perf_counter() - t0
    v.model.train()
    return elapsed


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="base,bf16,compile")
    parser.add_argument("--latent-dim", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps per variant")
    parser.add_argument("--block", type=int, default=5, help="steps a variant runs before the next takes over")
    parser.add_argument("--eval-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warm-cache", action="store_true", help="keep inductor's on-disk cache (default: cold)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch = args.batch_size
    images = make_shapes10(max(2_000, 4 * batch), seed=0, split="train").images
    order = epoch_order(len(images), 0, 0, "cpu")
    variants = [Variant(n, **VARIANTS[n]) for n in args.variants.split(",")]
    for v in variants:
        setup(v, args.latent_dim, 1e-3)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            v.first_steps.append(train_step(v, images, order, batch))
        v.warmup_seconds = time.perf_counter() - t0
    for b in range(0, args.steps, args.block):
        k = (b // args.block) % len(variants)
        for v in variants[k:] + variants[:k]:
            for _ in range(min(args.block, args.steps - b)):
                v.times.append(train_step(v, images, order, batch))
    for v in variants:  # compile the evaluation graph (inference mode) outside the timing
        for _ in range(3):
            eval_step(v, images, batch)
    for b in range(0, args.eval_steps, args.block):
        k = (b // args.block) % len(variants)
        for v in variants[k:] + variants[:k]:
            for _ in range(min(args.block, args.eval_steps - b)):
                v.eval_times.append(eval_step(v, images, batch))

    base = variants[0]
    base_step, base_eval = statistics.median(base.times), statistics.median(base.eval_times)
    print(f"latent {args.latent_dim}, batch {batch}, {args.threads} threads, {args.steps} timed steps per variant "
          f"after {args.warmup}, blocks of {args.block}; cpu capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'variant':<10} {'train img/s':>11} {'x':>6} {'eval img/s':>10} {'x':>6} {'loss@end':>10} "
          f"{'rel diff':>9} {'1st steps s':>11}")
    for v in variants:
        step, ev = statistics.median(v.times), statistics.median(v.eval_times)
        rel = abs(v.losses[-1] - base.losses[-1]) / abs(base.losses[-1])
        print(f"{v.name:<10} {batch / step:11.0f} {base_step / step:5.2f}x {batch / ev:10.0f} {base_eval / ev:5.2f}x "
              f"{v.losses[-1]:10.6f} {rel:9.1e} {v.warmup_seconds:11.1f}")
    steps_epoch = WORKSHOP_EPOCH_IMAGES // batch
    for v in variants:
        if v.compile:
            step = statistics.median(v.times)
            compile_s = v.warmup_seconds - args.warmup * step
            eager = steps_epoch * base_step
            print(f"{v.name}: compile time ~{compile_s:.1f} s (first {args.warmup} steps {v.warmup_seconds:.1f} s "
                  f"minus {args.warmup} steady steps); workshop epoch ({WORKSHOP_EPOCH_IMAGES:,} images, "
                  f"{steps_epoch} steps): eager {eager:.0f} s, compiled steady {steps_epoch * step:.0f} s, "
                  f"compiled incl. compile {steps_epoch * step + compile_s:.0f} s "
                  f"({eager / (steps_epoch * step + compile_s):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
