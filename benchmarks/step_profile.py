"""Where a CPU training step's time goes, by kind of work (issue 14): the ceiling of non-kernel tuning.

Profiles the package's own step (``training.train_step`` with ``fit``'s settings: channels_last,
fused Adam, the measured malloc settings) with ``torch.profiler`` and sums each operator's own
("self") CPU time into a few kinds: convolutions (forward and backward, oneDNN's kernels), linear
layers (matrix products), ReLU and its backward, the loss, the optimiser, and the rest. If everything
except the convolutions took no time at all, a step could get at most ``1 / convolution share``
times faster: the printed bound on what any tuning outside oneDNN's kernels can give.

    PYTHONPATH=. python benchmarks/step_profile.py --latent-dim 200 --batch-size 64 --steps 20

The profiler adds a little time to every operator, so small operators look slightly heavier than
they are: the bound it prints is, if anything, generous. Result of one run on the 2-core CPU:
``benchmarks/results/step-profile-2core-avx2.txt``.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from convae_utils.arguments import OneLineParser
from convae_utils.cpu_speed import tune_allocator
from convae_utils.models import build_autoencoder
from convae_utils.speed import Speed, make_adam
from convae_utils.training import mse_step, train_step

# Kind of work -> (whole operator names, fragments of names); the first match wins, anything else is "other".
KINDS = (
    ("convolution", (), ("convolution", "conv2d", "conv_transpose")),
    ("linear (matrix products)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul"), ()),
    ("ReLU and its backward", (), ("relu", "threshold", "clamp_min")),
    ("loss (MSE)", (), ("mse_loss",)),
    ("optimiser (fused Adam, zero_grad)", (), ("adam", "zero_grad")),
)


def kind_of(name: str) -> str:
    """The kind of work of a profiler event's name (e.g. ``aten::addmm`` -> matrix products)."""
    lowered = name.lower()
    for kind, names, fragments in KINDS:
        if lowered in names or any(fragment in lowered for fragment in fragments):
            return kind
    return "other (copies, allocation, autograd bookkeeping)"


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latent-dim", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="profiled steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    allocator = tune_allocator()
    torch.manual_seed(0)
    model = build_autoencoder(latent_dim=args.latent_dim).to(memory_format=torch.channels_last)
    optimizer = make_adam(model, 1e-3)
    step = Speed().wrap(mse_step)  # fit's default: channels_last batches
    generator = torch.Generator().manual_seed(0)
    batches = torch.randint(0, 256, (args.warmup + args.steps, args.batch_size, 3, 32, 32),
                            dtype=torch.uint8, generator=generator)
    for batch in batches[:args.warmup]:
        train_step(model, optimizer, batch, step=step)
    step_seconds = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[args.warmup:]:
            start = time.perf_counter()
            train_step(model, optimizer, batch, step=step)
            step_seconds.append(time.perf_counter() - start)

    totals: dict[str, float] = {}
    for event in prof.key_averages():
        # self time only: an operator's children are counted under their own names
        totals[kind_of(event.key)] = totals.get(kind_of(event.key), 0.0) + event.self_cpu_time_total
    whole = sum(totals.values())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, malloc tuned: {allocator['applied']}")
    print(f"latent {args.latent_dim}, batch {args.batch_size}: {args.steps} profiled steps after {args.warmup}, "
          f"median step {1e3 * statistics.median(step_seconds):.1f} ms wall (with the profiler on)")
    print(f"{'kind of work':<50s} {'ms/step':>8s} {'share':>7s}")
    for kind, micros in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{kind:<50s} {micros / 1e3 / args.steps:8.1f} {micros / whole:7.1%}")
    conv_share = totals.get("convolution", 0.0) / whole
    print(f"convolutions take {conv_share:.0%} of the operators' CPU time: with everything else free, "
          f"a step would be at most {1 / conv_share:.2f}x faster")


if __name__ == "__main__":
    main()
