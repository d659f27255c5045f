"""Notebook 08's ablation headless, over seeds: ``python -m tools study 08 --profile workshop --seeds 3``

Trains every variant of the ablation from scratch on the profile's data (``training.fit``, the series'
one loop, without run folders: nothing is reused), scores each at equal values against PCA
and at equal entropy-coded bits against PCA's best codec (the envelope over its truncations and steps,
``codecs.curves.pca_best_codec_curve``), and prints one table: the mean over seeds and, beside it, the
spread (standard deviation; 0 with one seed). Every variant sees the same images for the same number of
steps, so the rows differ only by the change they name. The PCA-initialised variant is also scored
untrained (its control, PCA-64 itself), as notebook 08 does.

Budgets: ``workshop`` 96,000 training patches, 1 epoch (notebook 08's from-scratch model; its
PCA-initialised model sees 24,000 there); ``full`` the profile's whole training split, 10 epochs (a
GPU); ``smoke`` seconds, for tests. ``--train-size`` / ``--epochs`` override them. A variant with
``refine`` adds a second row: the same trained model with its codes refined (``models.RefinedCodes``),
coded with the entropy models fitted on the encoder's own training codes (as notebook 08 does). A variant
with ``augment`` trains on turned and mirrored patches (``data.augment_dihedral``); its rows also carry PCA-64
fitted on the same turned patches, minus PCA-64 (the opponent given the same augmentation, column
``PCA-64 fitted on turned patches, gain (dB)``).
"""

from __future__ import annotations

import copy
import sys
from argparse import RawDescriptionHelpFormatter
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from convae_utils.arguments import OneLineParser
from convae_utils import baselines, models, spatial, studies
from convae_utils.callbacks import OneCycle
from convae_utils.codecs import curves as codec_curves
from convae_utils.data import augment_dihedral, prepare_data
from convae_utils.errors import ConvaeError
from convae_utils.models import build_autoencoder, count_parameters
from convae_utils.settings import DATASETS, PROFILE_CHOICES, from_env, seed_everything
from convae_utils.spatial import SpatialAutoencoder
from convae_utils.training import fit, make_adamw, plain_adam

# The plan notebook 08's parameters cell reads too (convae_utils/studies.py).
BUDGETS = studies.PATCH_BUDGETS
PCA_STEPS = studies.PCA_STEPS  # wide enough to reach below every model's lowest rate
CODE_VALUES = studies.CODE_VALUES  # a 4x4x4 spatial code; the article's model has latent 50 here
# on the rows of a model trained on turned and mirrored patches: PCA-64 fitted on such patches, minus PCA-64
PCA_TURNED = "PCA-64 fitted on turned patches, gain (dB)"


@dataclass(frozen=True)
class Variant:
    """One row: how to build the model (from a seed and the PCA fit) and how to train it."""

    name: str
    build: Callable[[int, baselines.PCAModel, int], nn.Module]  # (seed, pca, width) -> model
    optimizer: str = "adamw"
    schedule: bool = True
    max_lr: float = 3e-3
    epochs_scale: int = 1  # x the budget's epochs with 1 / epochs_scale of its patches: patches against epochs
    refine: int = 0        # > 0: also score the trained model with its codes refined for this many steps
    augment: bool = False  # True: each training patch turned and mirrored (data.augment_dihedral, seeded)


def _seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


OPTIMIZERS = {"adamw": make_adamw(),                                      # notebook 08's: beta2 0.99, clipped to 0.3
              "adamw-defaults": make_adamw(beta2=0.999, max_grad_norm=None),  # PyTorch's AdamW defaults
              "adam": plain_adam}                                            # the article's
PLAIN = dict(optimizer="adamw-defaults")  # PyTorch's AdamW defaults (beta2 0.999, no clipping)
VARIANTS = (
    Variant("article, latent 50 (ReLU code, Adam 1e-3, constant)",
            lambda s, p, w: build_autoencoder(50, seed=s), optimizer="adam", schedule=False, max_lr=1e-3),
    Variant("+ linear code, tanh output",
            lambda s, p, w: build_autoencoder(50, code_activation=None, output_activation="tanh", seed=s),
            optimizer="adam", schedule=False, max_lr=1e-3),
    Variant("+ GELU, AdamW, one-cycle to 3e-3",
            lambda s, p, w: build_autoencoder(50, activation="gelu", code_activation=None, output_activation="tanh",
                                              seed=s), **PLAIN),
    Variant("spatial 4x4x4, stride-2 transposed convs",
            lambda s, p, w: SpatialAutoencoder(4, w, 0, upsample="transposed", seed=s), **PLAIN),
    Variant("spatial 4x4x4, upsample + conv", lambda s, p, w: SpatialAutoencoder(4, w, 0, seed=s), **PLAIN),
    Variant("the same, 1/4 of the patches for 4x the epochs",
            lambda s, p, w: SpatialAutoencoder(4, w, 0, seed=s), epochs_scale=4, **PLAIN),
    Variant("+ residual blocks (depth 1)", lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s), **PLAIN),
    Variant("+ pixel unshuffle / shuffle stem", lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s, stem="pixel"),
            **PLAIN),
    Variant("+ peak rate 6e-3 (AdamW defaults)",
            lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s, stem="pixel"), max_lr=6e-3, **PLAIN),
    Variant("+ beta2 0.99, gradient norm clipped to 0.3",
            lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s, stem="pixel"), max_lr=6e-3, refine=20),
    Variant("the same at a 4e-3 peak, patches as they are",   # which of the two changes below does the work
            lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s, stem="pixel"), max_lr=studies.SPATIAL_PEAK_LR),
    Variant("+ patches turned and mirrored (peak 6e-3)",
            lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s, stem="pixel"), max_lr=6e-3, augment=True),
    Variant("+ peak rate 4e-3 (notebook 08's model)",
            lambda s, p, w: SpatialAutoencoder(4, w, 1, seed=s, stem="pixel"), max_lr=studies.SPATIAL_PEAK_LR,
            augment=True, refine=20),
    Variant("PCA-64 + learnt correction (depth 0)",
            lambda s, p, w: spatial.PCAInitAutoencoder(_truncate(p, CODE_VALUES), w, 0, seed=s)),
)


def _truncate(pca: baselines.PCAModel, k: int) -> baselines.PCAModel:
    return baselines.PCAModel(pca.mean, pca.components[:k], pca.explained_variance[:k], pca.n_train, pca.solver)


def _pca_psnr(pca: baselines.PCAModel, test, ks) -> dict[int, float]:
    return {k: float(baselines.score_reconstructions("PCA", k, _truncate(pca, k).reconstruct(test), test,
                                                     bits_per_image=1)["psnr_of_mean_mse"].iloc[0]) for k in ks}


def study(profile: str | None = None, *, seeds: int = 3, dataset: str | None = None, train_size: int | None = None,
          epochs: int | None = None, only: str | Sequence[str] | None = None, progress: bool = True) -> pd.DataFrame:
    """One row per (variant, seed): the columns of :func:`convae_utils.codecs.curves.ablation_row`, plus seed,
    parameters, images/s (training throughput of this run) and seconds."""
    config = from_env(profile, **({"dataset": dataset} if dataset else {}))
    budget = dict(BUDGETS[config.profile])
    if train_size is not None:
        budget["train_size"] = train_size
    if epochs is not None:
        budget["num_epochs"] = epochs
    config = config.replace(**budget)
    width = studies.SPATIAL_WIDTHS[config.profile]
    wanted = [only] if isinstance(only, str) else list(only or [])   # several: the variants matching any of them
    variants = [v for v in VARIANTS if not wanted or any(text.lower() in v.name.lower() for text in wanted)]
    unmatched = [text for text in wanted if not any(text.lower() in v.name.lower() for v in VARIANTS)]
    if unmatched:
        raise ValueError(f"--only {unmatched[0]!r} matches no variant; the variants are: "
                         + "; ".join(v.name for v in VARIANTS))
    rows = []
    for seed in range(seeds):
        bundle = prepare_data(**config.replace(seed=seed).data_options())
        pca_patches = bundle.train.head(min(len(bundle.train), studies.PCA_FIT_IMAGES))
        pca = baselines.fit_pca(pca_patches, min(studies.PCA_COMPONENTS, len(bundle.train) - 1))
        pca_psnr = _pca_psnr(pca, bundle.test, sorted({50, CODE_VALUES}))
        turned_gain = None   # the fairness check of augmentation: PCA fitted on the same patches turned
        if any(v.augment for v in variants):
            turned = baselines.fit_pca(augment_dihedral(pca_patches, seed=seed), CODE_VALUES)
            turned_gain = _pca_psnr(turned, bundle.test, [CODE_VALUES])[CODE_VALUES] - pca_psnr[CODE_VALUES]
        fit_on = bundle.train.head(min(len(bundle.train), studies.CODEC_FIT_IMAGES))
        pca_best = codec_curves.pca_best_codec_curve(pca, fit_on, bundle.test, PCA_STEPS, studies.PCA_BEST_COMPONENTS)
        for variant in variants:
            seed_everything(seed)
            model = variant.build(seed, pca, width)
            controls = []
            if isinstance(model, spatial.PCAInitAutoencoder):  # untrained it is PCA-64: the control row
                controls.append((f"{variant.name}, untrained (control)", copy.deepcopy(model).eval(), None, None))
            train = bundle.train.head(len(bundle.train) // variant.epochs_scale)
            if variant.augment:
                train = augment_dihedral(train, seed=seed)
            num_epochs = config.num_epochs * variant.epochs_scale
            history = fit(model, train, bundle.val, config.replace(num_epochs=num_epochs, lr=variant.max_lr, seed=seed),
                          optimizer=OPTIMIZERS[variant.optimizer], callbacks=[OneCycle()] if variant.schedule else [],
                          progress=False)
            model.eval()
            seconds = sum(history.epoch_seconds)  # the training passes (the validation after each is not counted)
            train_codes = codec_curves.codes_of(model, fit_on)
            scored = [*controls, (variant.name, model, train_codes, None)]
            if variant.refine:  # the refined codes use the encoder's entropy models (the decoder is the same)
                refined = models.RefinedCodes(model, steps=variant.refine)
                scored.append((f"{variant.name}, code refined ({variant.refine} steps)", refined, train_codes,
                               codec_curves.codes_of(refined, bundle.test)))
            # a PCA-initialised code is PCA's plus a correction, on PCA's scale: PCA's own steps (as notebook 08)
            steps = studies.PCA_INIT_STEPS if isinstance(model, spatial.PCAInitAutoencoder) else None
            for name, scored_model, fit_codes, test_codes in scored:
                row, _ = codec_curves.ablation_row(name, scored_model, fit_on, bundle.test, pca_curve=pca_best,
                                                   pca_psnr=pca_psnr, steps=steps, step_factors=studies.CODEC_STEP_FACTORS,
                                                   train_codes=fit_codes, test_codes=test_codes)
                untrained = any(scored_model is control for _, control, _, _ in controls)
                row[PCA_TURNED] = turned_gain if variant.augment else float("nan")
                row.update(seed=seed, parameters=count_parameters(model),
                           **{"images/s": float("nan") if untrained else len(train) * num_epochs / seconds,
                              "seconds": 0.0 if untrained else seconds})
                rows.append(row)
                if progress:
                    print(f"seed {seed}: {name}: {row['test dB']:.2f} dB "
                          f"({row['vs PCA, equal values (dB)']:+.2f} vs PCA), {row['bits']:.0f} bits -> "
                          f"{row['dB at those bits']:.2f} dB ({row['vs PCA, equal bits (dB)']:+.2f} vs PCA's best codec), "
                          f"{seconds:.0f} s training", flush=True)
    return pd.DataFrame(rows).assign(dataset=bundle.dataset, profile=config.profile,
                                     train_size=len(bundle.train), num_epochs=config.num_epochs)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (standard deviation over seeds) of each variant's numbers, variants in study order."""
    numbers = ["test dB", "vs PCA, equal values (dB)", "bits", "dB at those bits", "vs PCA, equal bits (dB)",
               "images/s", PCA_TURNED]
    numbers = [column for column in numbers if column in results]   # tables written before a column existed
    grouped = results.groupby("model", sort=False)
    table = grouped[numbers].mean()
    for column in ("test dB", "vs PCA, equal values (dB)", "vs PCA, equal bits (dB)"):
        table[f"{column} spread"] = grouped[column].std(ddof=1).fillna(0.0)
    table["values"] = grouped["values"].first()
    table["parameters"] = grouped["parameters"].first()
    table["rates won (per seed)"] = grouped["rates won"].agg(lambda s: ", ".join(s))
    table["seeds"] = grouped["seed"].nunique()
    return table


def main(argv=None, prog: str = "python -m tools study 08") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0], formatter_class=RawDescriptionHelpFormatter,
                           epilog="variants (rows), in order:\n" + "\n".join(f"  {v.name}" for v in VARIANTS))
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None, help="default: $CONVAE_PROFILE or auto")
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="default: $CONVAE_DATASET or the profile's")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default: 3)")
    parser.add_argument("--train-size", type=int, default=None, help="training patches (default: the profile's budget)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's budget)")
    parser.add_argument("--only", action="append", default=None,
                        help="run only the variants whose name contains this text (repeat it for several; the "
                             "names are listed below)")
    parser.add_argument("--csv", default=None, help="also write every (variant, seed) row as CSV")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    try:
        results = study(args.profile, seeds=args.seeds, dataset=args.dataset, train_size=args.train_size,
                        epochs=args.epochs, only=args.only)
    except (ConvaeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    first = results.iloc[0]
    print(f"\nnotebook 08's ablation: {first['profile']} profile, {first['dataset']}, {first['train_size']:,} training "
          f"patches x {first['num_epochs']} epoch(s), {results['seed'].nunique()} seed(s); dB = PSNR of the mean MSE "
          "on the test images; 'bits' = the middle of each model's entropy-coded sweep (mean real bitstream size)")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary(results).round(2).to_string())
    if first["dataset"] != "cifar10":
        print("These are stand-in results, not CIFAR-10 results.")
    if args.csv:
        results.to_csv(args.csv, index=False)
        print(f"rows written to {args.csv}")
    return 0

