"""Trials for notebook 10's codec: which change closes the gap to PCA's best codec at equal bits.

``python -m tools study codec-variants [--seed 0] [--lambdas 0.1 0.01] [--variants base mixed ...]``

Each variant fine-tunes notebook 08's from-scratch model (the same run the study of notebook 10 starts
from) into a codec on distortion + lambda x rate, with the study plan's patches and schedule, and is
read against PCA's best codec at equal **ideal** bits on both sides (the entropy models' -log2 p, no
coder overhead: the variants' hyperprior has no bitstream here). Variants:

- ``base``: :func:`convae_utils.codecs.learned.rate_distortion_step` as notebook 10 trains it
  (uniform noise for the decoder and the rate);
- ``mixed``: noise for the rate, the rounded code (straight-through) for the decoder, so the decoder
  trains on what it will decode (Minnen & Singh, 2020);
- ``warm``: ``mixed`` with lambda ramped from 0 over the first ``WARM`` share of the steps, so the
  added channels learn to carry something before the rate term prices them;
- ``hyper``: ``mixed`` with a hyperprior (:class:`convae_utils.codecs.learned.HyperpriorCodec`, Ballé et
  al., 2018): per image, a few side values ``z`` (coded with their own factorised prior, their bits
  counted) predict a location and scale for every code value. The plan ``study-hyper`` of
  ``python -m tools study 10`` trains this codec, with twice the patches.

Prints one row per (variant, lambda): ideal bits, PSNR, the gain over PCA's best (ideal bits), the
channels with at least half a bit, and the training time.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from convae_utils import studies
from convae_utils.arguments import OneLineParser, setting

WARM = 0.3          # share of the steps over which lambda ramps up ("warm", "hyper")
VARIANTS = ("base", "mixed", "warm", "hyper")


def variant_step(variant: str, lmbda: float, total_steps: int):
    """``step(model, batch) -> (loss, logs)`` for the harness: distortion + lambda x bpp, per the variant.

    ``base``, ``mixed`` and ``hyper`` are :func:`convae_utils.codecs.learned.rate_distortion_step` (noisy,
    rounded, rounded); ``warm`` ramps lambda up over the first ``WARM`` share of the steps (a counter in
    the step: a resumed run would restart the ramp, acceptable for a trial, not for the package).
    """
    from convae_utils.codecs import learned

    if variant != "warm":
        return learned.rate_distortion_step(lmbda, "noisy" if variant == "base" else "rounded")
    seen = {"steps": 0}

    def step(model, batch):
        y = model.latents(batch)
        if model.training:
            noisy = y + torch.rand_like(y) - 0.5
            decoded_from = y + (torch.round(y) - y).detach()
            seen["steps"] += 1
            ramp = min(1.0, seen["steps"] / max(1, WARM * total_steps))
        else:
            noisy = decoded_from = torch.round(y)
            ramp = 1.0
        mse = F.mse_loss(model.decode(decoded_from).float(), batch)
        bpp = model.rate(y, noisy).mean() / learned.PIXELS
        return mse + ramp * lmbda * bpp, {"mse": mse.detach(), "bpp": bpp.detach()}

    step.__qualname__ = step.__name__ = f"variant_step({variant},{lmbda:g})"
    return step


@torch.no_grad()
def score(model, test) -> tuple[float, float, int]:
    """(ideal bits per image, PSNR of the mean MSE in dB, channels whose symbols vary: spread above 0.3 steps)."""
    from convae_utils import images

    model.eval()
    x = images.normalize(test.images)
    y = model.latents(x)
    y_hat = torch.round(y)
    bits = model.rate(y, y_hat)
    mse = F.mse_loss(model.decode(y_hat).clamp(-1, 1), x, reduction="none").flatten(1).mean(1)
    # [-1, 1] scale: PSNR = 10 log10(4 / MSE)
    psnr = 10 * math.log10(4 / float(mse.mean()))
    on = int((y_hat.transpose(0, 1).flatten(1).std(dim=1) > 0.3).sum())   # channels whose symbols vary
    return float(bits.mean()), psnr, on


def main(argv: list[str] | None = None, prog: str = "python -m tools study codec-variants") -> int:
    from convae_utils import baselines, callbacks, data, exercises, images, models, runs, settings, training
    from convae_utils.codecs import curves, learned

    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, choices=settings.DATASETS,
                        help="cifar10 or a stand-in (default: $CONVAE_DATASET, else the profile's)")
    parser.add_argument("--seed", type=setting("seed"), default=0,
                        help="the seed of notebook 08's model and the codecs (default 0)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.01], help="lambdas (default 0.1 0.01)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--train-size", type=setting("train_size"), default=None,
                        help="patches per codec (default: the study plan's)")
    parser.add_argument("--base-channels", type=int, default=studies.CODE_CHANNELS,
                        help="code channels of the MSE-trained model the codecs start from (default: notebook 08's; "
                             "another number trains that model first)")
    parser.add_argument("--base-runs", type=Path, default=None, help="where notebook 08's runs are (default: $CONVAE_RUNS_DIR)")
    args = parser.parse_args(argv)
    bad = [f"--lambdas must be at least 0, got {min(args.lambdas):g}" if min(args.lambdas) < 0 else "",
           f"--base-channels must be at least 1, got {args.base_channels}" if args.base_channels < 1 else "",
           f"--base-runs must be an existing folder holding notebook 08's runs, got {args.base_runs}"
           if args.base_runs is not None and not args.base_runs.is_dir() else ""]
    if any(bad):
        parser.error("; ".join(b for b in bad if b))

    config = settings.from_env("workshop", seed=args.seed, **({"dataset": args.dataset} if args.dataset else {}))
    width = studies.SPATIAL_WIDTHS[config.profile]
    spatial_config = config.replace(**studies.PATCH_BUDGETS[config.profile], lr=studies.PLAIN_PEAK_LR,
                                    latent_dim=16 * args.base_channels, base_channels=width)
    plan = learned.codec_plan(spatial_config.replace(latent_dim=studies.CODE_VALUES), "study")
    plan = type(plan)(plan.lambdas, max(plan.code_channels, args.base_channels), plan.settings.replace(
        latent_dim=16 * max(plan.code_channels, args.base_channels), base_channels=width), plan.step_factor, plan.name)
    codec_settings = plan.settings if args.train_size is None else plan.settings.replace(train_size=args.train_size)
    bundle = data.prepare_data(**spatial_config.data_options())
    codec_bundle = data.prepare_data(**codec_settings.data_options())
    test = bundle.test

    def build_spatial(run_settings):
        torch.manual_seed(run_settings.seed)
        return models.SequentialAutoencoder(*exercises.ex08.build_spatial_autoencoder(args.base_channels, width))

    build_spatial.__module__, build_spatial.__qualname__ = "__main__", "build_spatial"
    one_cycle = dict(optimizer=training.make_adamw(), callbacks=[callbacks.OneCycle()])
    # notebook 08's model as it was trained before it saw turned and mirrored patches (data.augment_dihedral):
    # benchmarks/results/codec-variants-seed0.txt started from it, and so do these trials
    base = runs.train_or_load(spatial_config, runs.Recipe("spatial" if args.seed == 0 else f"spatial-seed{args.seed}",
                                                          build=build_spatial, **one_cycle), bundle,
                              runs_root=args.base_runs, progress=False)
    fit_on = bundle.train.head(min(len(bundle.train), 24_000))
    components = (16,) + studies.CODEC_PCA_COMPONENTS
    t = time.perf_counter()
    pca = baselines.fit_pca(fit_on, max(components))
    grid = curves.pca_codec_curves(pca, fit_on.head(curves.CODEC_FIT_IMAGES), test, studies.CODEC_PCA_STEPS,
                                   components, ssim=False)
    pca_best = curves.upper_envelope([c.assign(bits_per_image=c["information_bits"]) for c in grid],
                                     name="PCA's best (ideal bits)")
    print(f"PCA's best codec (ideal bits): {time.perf_counter() - t:.0f} s", flush=True)
    sample = images.normalize(codec_bundle.train.images[:512])
    batch = codec_settings.batch_size
    total = max(1, len(codec_bundle.train) // batch) * codec_settings.num_epochs
    rows = []
    for variant in args.variants:
        for lmbda in args.lambdas:
            def build(run_settings, variant=variant):
                codec = learned.codec_from_autoencoder(base.model, sample, code_channels=plan.code_channels,
                                                       step_factor=plan.step_factor, seed=run_settings.seed)
                return learned.with_hyperprior(codec, seed=run_settings.seed) if variant == "hyper" else codec

            build.__qualname__ = build.__name__ = f"build_{variant}"
            name = f"variant-{variant}-c{plan.code_channels}-lambda{lmbda:g}-from{learned.weights_digest(base.model)[:8]}"
            t = time.perf_counter()
            run = runs.train_or_load(codec_settings, runs.Recipe(name, build=build,
                                                                 step=variant_step(variant, lmbda, total), **one_cycle),
                                     codec_bundle, progress=False)
            bits, psnr, on = score(run.model, test)
            point = pd.DataFrame({"bits_per_image": [bits], "psnr_of_mean_mse": [psnr]})
            gain = float(curves.compare_at_equal_bits(point, pca_best)["gain_db"].iloc[0])
            rows.append({"variant": variant, "lambda": lmbda, "ideal bits": bits, "dB": psnr,
                         "vs PCA's best (ideal, dB)": gain, "channels on": on,
                         "train s": sum(run.history.epoch_seconds), "wall s": time.perf_counter() - t})
            print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
