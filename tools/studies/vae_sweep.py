"""Notebook 09's beta sweep, headless: ``python -m tools study 09 --profile workshop|full``

Trains one VAE per KL weight beta (the plan of ``vae.sweep_plan``: the workshop profile's reduced
budget, or the full one) and prints, per beta: the rate (KL in bits per image), the distortion that goes
with it (PSNR of the test set decoded from codes drawn from q(z | x), as notebook 06 scores a codec; the
posterior means' PSNR beside it), the inactive code values
(posterior collapse) and the offline generation measures of 500 prior samples
(``generation.GenerationScorer``: a small classifier stands in for Inception; the numbers are not
comparable with published FIDs). The same calls as the notebook, so the numbers match it.
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from convae_utils.arguments import OneLineParser
from convae_utils import generation, vae
from convae_utils.data import prepare_data
from convae_utils.errors import ConvaeError
from convae_utils.runs import Recipe, train_or_load
from convae_utils.settings import DATASETS, PROFILE_CHOICES, from_env, seed_everything

SAMPLES = 500                                    # prior samples scored per beta
VAL_IMAGES = 500                                 # validation images scored after each epoch

COLUMNS = ["beta", "rate_bits", "psnr_of_mean_mse", "mean_psnr", "ssim", "posterior_mean_psnr", "inactive_dims", "latent_dim",
           "sample_confidence", "sample_class_entropy_bits", "sample_nearest_train_rmse", "sample_mmd"]


def train_vaes(plan: vae.SweepPlan, bundle, *, progress: bool = False) -> dict[float, vae.VariationalAutoencoder]:
    """One trained VAE per beta of ``plan``, each a named run (loaded when it is already there)."""
    models = {}
    for beta in plan.betas:
        recipe = Recipe(plan.run_name(beta), build=vae.vae_builder(plan.code_channels, plan.width),
                        step=vae.vae_step(beta))
        splits = bundle.replace(train=bundle.train.head(plan.settings.train_size), val=bundle.val.head(VAL_IMAGES),
                                exemplars=None)
        run = train_or_load(plan.settings, recipe, splits, progress=progress)
        if not run.complete:
            raise ConvaeError(f"the run for beta={beta:g} was interrupted; run the command again to resume it")
        models[beta] = run.model
    return models


def study(profile: str | None = None, dataset: str | None = None, *, progress: bool = False) -> pd.DataFrame:
    """The sweep's table for one profile and dataset: one row per beta (columns :data:`COLUMNS`)."""
    config = from_env(profile, **({"dataset": dataset} if dataset else {}))
    seed_everything(config.seed)
    bundle = prepare_data(**config.data_options())
    plan = vae.sweep_plan(config)
    classifier = generation.yardstick_classifier(bundle, config.profile, seed=config.seed, progress=progress)
    scorer = generation.GenerationScorer(classifier, bundle.test, bundle.train)
    rows = []
    for beta, model in train_vaes(plan, bundle, progress=progress).items():
        row = generation.vae_measures(model, bundle.test, label=f"beta={beta:g}", scorer=scorer, samples=SAMPLES,
                                      seed=config.seed)
        rows.append({"beta": beta, **row})
    real = scorer.score(bundle.val.images[:SAMPLES])
    table = pd.DataFrame(rows)[COLUMNS]
    table.attrs.update(dataset=bundle.dataset, profile=config.profile, width=plan.width,
                       train_size=len(bundle.train.head(plan.settings.train_size)), num_epochs=plan.settings.num_epochs,
                       real_validation_images={k: v for k, v in real.items() if k != "images"})
    return table


def main(argv=None, prog: str = "python -m tools study 09") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None, help="default: $CONVAE_PROFILE or auto")
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="default: $CONVAE_DATASET or the profile's")
    parser.add_argument("--csv", default=None, help="also write the table as CSV")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        table = study(args.profile, args.dataset, progress=True)
    except (ConvaeError, ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    info = table.attrs
    print(f"\n{info['profile']} profile, {info['dataset']}: VAEs of width {info['width']} trained on "
          f"{info['train_size']:,} images for {info['num_epochs']} epochs each; {time.perf_counter() - start:.0f} s in all")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(4).to_string(index=False))
        print("real validation images, same measures:",
              ", ".join(f"{k} {v:.4g}" for k, v in info["real_validation_images"].items()))
    if info["dataset"] != "cifar10":
        print("Stand-in results, not CIFAR-10 results.")
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0

