"""Print notebook 06's rate-distortion table headless: ``python -m tools study 06``

The same package calls as notebook 06 (``baselines.autoencoder_sweep``, ``pca_sweep``, ``jpeg_sweep``,
``resample_sweep``) on the same data and run folders, so the numbers match the notebook's for the
same profile and dataset. Run folders that exist are loaded; missing ones are trained (use it on a GPU
droplet to prepare the sweep for a workshop, or after ``python -m convae_utils series``).
"""

from __future__ import annotations

import sys

import pandas as pd

from convae_utils.arguments import OneLineParser
from convae_utils import baselines, studies
from convae_utils.codecs.bits import IMAGE_VALUES
from convae_utils.data import prepare_data
from convae_utils.runs import train_or_load
from convae_utils.errors import ConvaeError
from convae_utils.settings import DATASETS, PROFILE_CHOICES, from_env, runs_dir

# The plan notebook 06's parameters cell reads too (convae_utils/studies.py).
QUANTIZE_BITS, JPEG_QUALITIES, THUMBNAIL_SIZES = studies.QUANTIZE_BITS, studies.JPEG_QUALITIES, studies.THUMBNAIL_SIZES


def study(profile: str | None = None, dataset: str | None = None, *, device=None, progress: bool = False) -> pd.DataFrame:
    """The rate-distortion table of notebook 06 for one profile and dataset."""
    config = from_env(profile, **({"dataset": dataset} if dataset else {}))
    sweep = studies.LATENT_SWEEPS[config.profile]
    bundle = prepare_data(**config.data_options())
    models = {}
    for latent_dim in sweep:
        run = train_or_load(config.replace(latent_dim=latent_dim), data=bundle, device=device, progress=progress)
        models[f"latent {latent_dim}"] = run.model
    components = tuple(k for k in sweep if k <= min(len(bundle.train), IMAGE_VALUES))
    table = baselines.rate_distortion_table([
        baselines.autoencoder_sweep(models, bundle.train, bundle.test, quantize_bits=QUANTIZE_BITS),
        baselines.pca_sweep(bundle.train, bundle.test, components, quantize_bits=QUANTIZE_BITS),
        baselines.jpeg_sweep(bundle.test, JPEG_QUALITIES),
        baselines.resample_sweep(bundle.test, THUMBNAIL_SIZES),
    ])
    return table.assign(dataset=bundle.dataset, profile=config.profile)


def main(argv=None, prog: str = "python -m tools study 06") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None, help="default: $CONVAE_PROFILE or auto")
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="default: $CONVAE_DATASET or the profile's")
    parser.add_argument("--device", default=None, help="where to train missing runs (default: auto)")
    parser.add_argument("--csv", default=None, help="also write the table as CSV")
    args = parser.parse_args(argv)
    print(f"Run folders are read from {runs_dir()}; a model missing there is trained now, as the notebooks "
          "would (minutes per model on a CPU).", flush=True)
    try:
        table = study(args.profile, args.dataset, device=args.device, progress=True)
    except (ConvaeError, ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    columns = ["method", "setting", "bits_per_image", "psnr_of_mean_mse", "mean_psnr", "ssim"]
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.sort_values(["method", "bits_per_image"])[columns].round(3).to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0

