"""Training throughput of one epoch, revisions alternated (issue 27: the ~7% lost by the harness restructuring).

Trains one epoch of the workshop latent-200 model on photos10 with ``python -m convae_utils train``, as
a learner would, once per revision per repeat, the revisions alternated (A B C A B C ...), each in a
fresh process and a fresh runs folder, and prints per revision:

- ``printed``: the images/s the revision's own epoch line says (its own definition: up to b80bae7 and
  again after the recipe, the training pass only; in between, training *and* validation);
- ``train pass``: images / the training pass's seconds, timed the same way for every revision (the
  epoch's time in history.json, less the validation time where the revision counted it in; the
  validation is timed separately in the same process, ``--val-size`` images as ``fit`` scores them);
- ``wall``: the whole command's seconds (start-up, data, the epoch, test scoring, pictures).

    PYTHONPATH=. python benchmarks/train_throughput.py --revisions b80bae7 b1e4154 . --repeats 3

A revision is a git revision (exported with ``git archive``) or ``.`` for the working tree. The
machine must be quiet for the figures to mean anything; on a shared machine say so beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"epoch 1/1: .* ([\d,]+) images/s")
VALIDATION = """
import json, sys, time, torch
from convae_utils.data import prepare_data
from convae_utils.models import build_autoencoder
val = prepare_data('photos10', train_size={train}, val_size={val}, test_size={test}, seed=0).val
model = build_autoencoder(200).to(memory_format=torch.channels_last).eval()
x = val.images
with torch.inference_mode():
    started = time.perf_counter()
    for i in range(0, len(x), 500):
        b = (x[i:i + 500].float() / 127.5 - 1).contiguous(memory_format=torch.channels_last)
        torch.nn.functional.mse_loss(model(b), b, reduction='sum')
print(json.dumps(time.perf_counter() - started))
"""


def export(revision: str, into: Path) -> Path:
    """The package of ``revision`` (``.``: the working tree) as a folder to put on PYTHONPATH."""
    if revision == ".":
        return ROOT
    folder = into / revision
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def one_epoch(home: Path, runs: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(home), "CONVAE_PROFILE": "workshop"}
    command = [sys.executable, "-m", "convae_utils", "train", "--profile", "workshop", "--dataset", "photos10",
               "--epochs", "1", "--latent-dim", "200", "--train-size", str(args.train_size),
               "--val-size", str(args.val_size), "--test-size", str(args.test_size), "--runs-dir", str(runs),
               "--device", "cpu"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=home)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{home}: train failed:\n{done.stderr[-2000:]}")
    printed = LINE.search(done.stdout)
    history = json.loads(next(runs.glob("*/history.json")).read_text())
    return {"printed": float(printed.group(1).replace(",", "")) if printed else float("nan"),
            "epoch_seconds": history["epoch_seconds"][0], "wall": wall}


def validation_seconds(home: Path, args) -> float:
    code = VALIDATION.format(train=args.train_size, val=args.val_size, test=args.test_size)
    env = {**os.environ, "PYTHONPATH": str(home)}
    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", nargs="+", default=["b80bae7", "b1e4154", "."])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=12_000, help="the workshop profile's 12,000 by default")
    parser.add_argument("--val-size", type=int, default=2_000)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--counts-validation", nargs="*", default=["b1e4154"],
                        help="revisions whose epoch time includes the validation pass")
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {r: [] for r in args.revisions}
    with tempfile.TemporaryDirectory(prefix="convae-throughput-") as tmp:
        homes = {r: export(r, Path(tmp) / "src") for r in args.revisions}
        for repeat in range(args.repeats):
            for revision in args.revisions:  # alternated: a slow minute of a shared machine hits every revision
                row = one_epoch(homes[revision], Path(tmp) / f"runs-{repeat}-{revision.replace('.', 'tree')}", args)
                if revision in args.counts_validation:
                    row["epoch_seconds"] -= validation_seconds(homes[revision], args)
                row["train_pass"] = args.train_size / row["epoch_seconds"]
                results[revision].append(row)
                print(f"repeat {repeat + 1}: {revision}: printed {row['printed']:,.0f} images/s, train pass "
                      f"{row['train_pass']:,.0f} images/s, wall {row['wall']:.0f} s", flush=True)
    print(f"\none epoch, workshop latent 200, photos10, {args.train_size:,} training images, CPU, "
          f"{os.cpu_count()} CPUs seen, torch threads default; {args.repeats} alternated repeats")
    for revision, rows in results.items():
        low_high = lambda key: f"{min(r[key] for r in rows):,.0f}-{max(r[key] for r in rows):,.0f}"
        print(f"  {revision:>10}: printed {low_high('printed')} images/s; train pass {low_high('train_pass')} images/s "
              f"(median {statistics.median(r['train_pass'] for r in rows):,.0f}); wall {low_high('wall')} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
