"""Side-by-side measurement of malloc choices for the package's CPU training path (issue 14).

Each variant runs in its own fresh Python process (allocator settings are process-wide), the
variants are alternated (rotated each repeat so none always goes first), and the script prints
medians of images/s and minor page faults (``ru_minflt``) per training step, the ratio to glibc's
default, and whether every variant reached bit-identical losses and weights.

    PYTHONPATH=. python benchmarks/allocators.py --repeats 5 --steps 40

The work is the package's real ``fit`` (latent 200, batch 64 by default, shapes10 stand-in images),
timed from the end of the warm-up steps to the end of the last step through ``on_batch_end``.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
JEMALLOC = f"{LIBDIR}/libjemalloc.so.2"          # Debian: libjemalloc2
TCMALLOC = f"{LIBDIR}/libtcmalloc_minimal.so.4"   # Debian: libtcmalloc-minimal4

MIB = 1 << 20
# glibc's <malloc.h> parameter numbers.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8

# name -> (extra environment, mallopt settings applied in the child before torch is imported)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "glibc-default": ({}, {}),
    # Largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2 = 32 MiB); trim only above 1 GiB.
    "mallopt": ({}, {M_MMAP_THRESHOLD: 32 * MIB, M_TRIM_THRESHOLD: 1024 * MIB, M_TOP_PAD: 64 * MIB,
                     M_ARENA_MAX: 2}),
    "mallopt-after-import": ({"_ALLOC_LATE": "1"}, {M_MMAP_THRESHOLD: 32 * MIB, M_TRIM_THRESHOLD: 1024 * MIB,
                                                    M_TOP_PAD: 64 * MIB, M_ARENA_MAX: 2}),
    "glibc-tunables": ({"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={32 * MIB}:"
                                          f"glibc.malloc.trim_threshold={1024 * MIB}:"
                                          f"glibc.malloc.top_pad={64 * MIB}:glibc.malloc.arena_max=2"}, {}),
    # Only keep freed memory (no trimming): the mmap threshold stays glibc's dynamic one.
    "mallopt-trim-only": ({}, {M_TRIM_THRESHOLD: 1024 * MIB, M_TOP_PAD: 64 * MIB}),
    # PyTorch's own switch: 2 MiB-aligned large allocations, madvise(MADV_HUGEPAGE) (THP is "madvise" here).
    "torch-thp": ({"THP_MEM_ALLOC_ENABLE": "1"}, {}),
    "jemalloc": ({"LD_PRELOAD": JEMALLOC}, {}),
    "tcmalloc": ({"LD_PRELOAD": TCMALLOC}, {}),
}


def _apply_mallopt(settings: dict) -> list[int]:
    libc = ctypes.CDLL("libc.so.6")
    return [libc.mallopt(ctypes.c_int(k), ctypes.c_int(v)) for k, v in settings.items()]


def child(variant: str, latent_dim: int, batch_size: int, warmup: int, steps: int, threads: int) -> dict:
    """Train ``warmup + steps`` batches through ``fit`` in this process; return timings and a result hash."""
    env, settings = VARIANTS[variant]
    ok = []
    if settings and not os.environ.get("_ALLOC_LATE"):
        ok = _apply_mallopt(settings)
    import resource

    import torch

    from convae_utils.models import build_autoencoder
    from convae_utils.shapes import make_shapes10
    from convae_utils.callbacks import Callback
    from convae_utils.training import fit

    if settings and os.environ.get("_ALLOC_LATE"):
        ok = _apply_mallopt(settings)  # what a learner's kernel gets: torch already imported
    torch.set_num_threads(threads)
    train = make_shapes10((warmup + steps) * batch_size, seed=0, split="train")
    val = make_shapes10(batch_size, seed=1, split="test")
    model = build_autoencoder(latent_dim, seed=0)
    marks: list[tuple[float, int]] = []

    class Marks(Callback):
        def on_step_end(self, loop) -> None:
            if loop.completed - 1 >= warmup - 1:
                use = resource.getrusage(resource.RUSAGE_SELF)
                marks.append((time.perf_counter(), use.ru_minflt, use.ru_utime, use.ru_stime))

    history = fit(model, train, val, num_epochs=1, batch_size=batch_size, seed=0, device="cpu",
                  progress=False, callbacks=[Marks()])
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    step_s = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    return {
        "variant": variant,
        "mallopt_ok": ok,
        "images_per_s": steps * batch_size / (marks[-1][0] - marks[0][0]),
        "images_per_s_median_step": batch_size / statistics.median(step_s),
        "minflt_per_step": (marks[-1][1] - marks[0][1]) / steps,
        # CPU time the process used per step: less sensitive than wall time to neighbours on shared cores;
        # system time is where page faults (and munmap) are paid.
        "user_ms_per_step": 1e3 * (marks[-1][2] - marks[0][2]) / steps,
        "sys_ms_per_step": 1e3 * (marks[-1][3] - marks[0][3]) / steps,
        "last_loss": float(history.train_batch_loss[-1]).hex(),
        "weights_sha256": digest.hexdigest()[:16],
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--latent-dim", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write all raw results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = (args.latent_dim, args.batch_size, args.warmup, args.steps, args.threads)
    if args.child:
        print(json.dumps(child(args.child, *shape)))
        return 0

    names = args.variants.split(",")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            env = {**os.environ, **VARIANTS[name][0]}
            cmd = [sys.executable, __file__, "--child", name, "--latent-dim", str(args.latent_dim),
                   "--batch-size", str(args.batch_size), "--warmup", str(args.warmup),
                   "--steps", str(args.steps), "--threads", str(args.threads)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(f"repeat {r + 1}: {name:<22} {result['images_per_s']:7.0f} img/s  "
                  f"{result['minflt_per_step']:8.0f} minflt/step  user {result['user_ms_per_step']:6.1f} ms  "
                  f"sys {result['sys_ms_per_step']:5.1f} ms", file=sys.stderr, flush=True)

    base = statistics.median(x["images_per_s"] for x in runs[names[0]])
    base_step = statistics.median(x["images_per_s_median_step"] for x in runs[names[0]])
    base_cpu = statistics.median(x["user_ms_per_step"] + x["sys_ms_per_step"] for x in runs[names[0]])
    fingerprints = {(x["last_loss"], x["weights_sha256"]) for v in runs.values() for x in v}
    print(f"latent {args.latent_dim}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup}, "
          f"{args.threads} threads, median of {args.repeats} alternating repeats (fresh process each)")
    print(f"{'variant':<22} {'img/s':>7} {'x':>6} {'img/s(med step)':>15} {'x':>6} {'minflt/step':>11} {'user ms':>8} {'sys ms':>7} {'cpu x':>6}  result")
    for name, xs in runs.items():
        ips = statistics.median(x["images_per_s"] for x in xs)
        ips_step = statistics.median(x["images_per_s_median_step"] for x in xs)
        flt = statistics.median(x["minflt_per_step"] for x in xs)
        user = statistics.median(x["user_ms_per_step"] for x in xs)
        sys_ms = statistics.median(x["sys_ms_per_step"] for x in xs)
        prints = {(x["last_loss"], x["weights_sha256"]) for x in xs}
        print(f"{name:<22} {ips:7.0f} {ips / base:5.2f}x {ips_step:15.0f} {ips_step / base_step:5.2f}x "
              f"{flt:11.0f} {user:8.1f} {sys_ms:7.1f} {base_cpu / (user + sys_ms):5.2f}x  {sorted(prints)}")
    print("bit-identical across all variants and repeats:", "yes" if len(fingerprints) == 1 else "NO")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(runs, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
