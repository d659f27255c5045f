"""Does each model of the series keep the colours? ``python -m tools study colour``

For every model the series trains (notebook 03's latent 200, notebook 04's latent 1000, notebook 05's
fixed model), load its run folder (or train it, as the notebooks would), and print the colour check
of its last epoch's exemplar reconstructions and its test PSNR:

- chroma kept: the reconstructions' mean chroma (mean |pixel - its grey level| on [0, 1]) as a share
  of the originals'; the check asks for at least 60%;
- mean colour error: the largest difference of a per-channel mean colour, on [0, 1]; at most 0.03.

Run it after ``python -m convae_utils series --profile workshop`` to read the numbers off the run
folders the series left (nothing is trained again).
"""

from __future__ import annotations

import sys

from convae_utils.arguments import OneLineParser
from convae_utils.colour import colour_report
from convae_utils.data import prepare_data
from convae_utils.runs import train_or_load
from convae_utils.errors import ConvaeError
from convae_utils.settings import DATASETS, PROFILE_CHOICES, from_env, runs_dir

SERIES_MODELS = {
    "03 latent 200": dict(latent_dim=200),
    "04 latent 1000": dict(latent_dim=1000),
    "05 fixed (linear code, tanh)": dict(latent_dim=200, code_activation=None, output_activation="tanh"),
}


def check(profile: str | None = None, dataset: str | None = None, *, progress: bool = False) -> list[dict]:
    """One row per series model: chroma kept, mean colour error, passes, test PSNR."""
    base = from_env(profile, **({"dataset": dataset} if dataset else {}))
    bundle = prepare_data(**base.data_options())
    rows = []
    for name, overrides in SERIES_MODELS.items():
        run = train_or_load(base.replace(**overrides), data=bundle, progress=progress)
        report = colour_report(run.history.exemplars, run.history.last_reconstructions)
        rows.append({"model": name, "dataset": bundle.dataset, "profile": base.profile,
                     "chroma kept": report["chroma_kept"], "mean colour error": report["max_mean_colour_error"],
                     "passes": report["passes"], "test PSNR (dB)": run.summary["metrics"][0]["psnr"]})
    return rows


def main(argv=None, prog: str = "python -m tools study colour") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None, help="default: $CONVAE_PROFILE or auto")
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="default: $CONVAE_DATASET or the profile's")
    args = parser.parse_args(argv)
    print(f"Run folders are read from {runs_dir()}; a model missing there is trained now, as the notebooks "
          "would (minutes per model on a CPU).", flush=True)
    try:
        rows = check(args.profile, args.dataset, progress=True)
    except (ConvaeError, ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{'model':30} {'dataset':9} {'profile':9} {'chroma kept':>11} {'colour err':>10} {'check':>6} {'PSNR':>7}")
    for r in rows:
        print(f"{r['model']:30} {r['dataset']:9} {r['profile']:9} {r['chroma kept']:11.0%} "
              f"{r['mean colour error']:10.3f} {'pass' if r['passes'] else 'FAIL':>6} {r['test PSNR (dB)']:7.2f}")
    return 0 if all(r["passes"] for r in rows) else 1

