"""One notebook cell, timed several times: ``python benchmarks/one_cell.py notebooks/08_winning.py "SCRATCH, REFINED"``.

Runs the notebook's code cells (its percent-format ``.py``) in this process, from ``notebooks/``, up to the
first cell whose source starts with the given text, then runs that cell ``--repeats`` times on copies of
the namespace and prints each run's wall and CPU seconds with the load average; ``--profile`` adds one
cProfile run (the top functions by cumulative time). The profile, dataset and runs folder come from the
environment, as for :mod:`benchmarks.cell_times` (e.g. ``CONVAE_PROFILE=smoke``); magics (``%...``) are
skipped and figures go to the Agg backend. Used to time notebook 08's scoring cell before and after PCA's
best codec chose its points on ideal bits (``benchmarks/results/pca-best-codec-2core.txt``).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path, help="a notebook's percent-format .py")
    parser.add_argument("starts_with", help="the first characters of the cell to time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="add one cProfile run")
    args = parser.parse_args(argv)
    import jupytext
    import matplotlib

    matplotlib.use("Agg")
    cells = [c.source for c in jupytext.read(args.notebook).cells if c.cell_type == "code"]
    target = next((i for i, source in enumerate(cells) if source.startswith(args.starts_with)), None)
    if target is None:
        parser.error(f"no code cell of {args.notebook} starts with {args.starts_with!r}")
    os.chdir(args.notebook.resolve().parent)
    namespace = {"__name__": "__main__"}
    for source in cells[:target]:
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
        exec(compile(code, f"{args.notebook.name} cell", "exec"), namespace)
    cell = compile(cells[target], f"{args.notebook.name} timed cell", "exec")
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        exec(cell, dict(namespace))
        print(f"cell: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        exec(cell, dict(namespace))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
