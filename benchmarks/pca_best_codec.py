"""PCA's best codec, timed on notebook 10's workshop data: ``PYTHONPATH=. python benchmarks/pca_best_codec.py``.

Builds what notebook 10 and its study (``tools/studies/learned_codec.py``) build in the workshop profile
(photos10 unless ``$CONVAE_DATASET`` says otherwise: notebook 08's 96,000 patches, 2,000 test images; PCA
fitted on the first 24,000 patches, its entropy models on the first 8,000), then times
``codecs.curves.pca_best_codec_curve`` with notebook 10's components and steps (``--call study``: its
study's, which add k=16; ``--call notebook08``: notebook 08's six truncations and eight steps, on the
same data) and prints the seconds and the envelope's rows, so two revisions can be compared number for
number. ``--grid`` times notebook 10's former cell instead: every (k, step) point
coded and scored in full (``pca_codec_curves``), then ``upper_envelope``; ``--one-step`` adds what
notebook 10's cell does now besides the envelope: the one-step curve of all components, coded without SSIM.
The load average is printed beside the times: on a shared machine, compare runs made one after the other.
Used to measure the envelope's selection on ideal bits before and after it came in.
"""

from __future__ import annotations

import os
import sys
import time

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    from convae_utils import baselines, data, settings, studies
    from convae_utils.arguments import OneLineParser
    from convae_utils.codecs import curves, entropy_coding

    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call", choices=("notebook10", "study", "notebook08"), default="notebook10")
    parser.add_argument("--grid", action="store_true", help="code and score every point, then the envelope")
    parser.add_argument("--one-step", action="store_true", help="also code the one-step curve of all components")
    args = parser.parse_args(argv)
    config = settings.from_env("workshop").replace(**studies.PATCH_BUDGETS["workshop"])
    started = time.perf_counter()
    bundle = data.prepare_data(**config.data_options())
    fit_on = bundle.train.head(min(len(bundle.train), studies.PCA_FIT_IMAGES))
    wanted, steps = {"notebook10": (studies.CODEC_PCA_COMPONENTS, studies.CODEC_PCA_STEPS),
                     "study": ((16,) + studies.CODEC_PCA_COMPONENTS, studies.CODEC_PCA_STEPS),
                     "notebook08": (studies.PCA_BEST_COMPONENTS, studies.PCA_STEPS)}[args.call]
    components = tuple(k for k in wanted if k < len(fit_on))
    pca = baselines.fit_pca(fit_on, max(components))
    codec_fit = fit_on.head(min(len(fit_on), curves.CODEC_FIT_IMAGES))
    print(f"{bundle.dataset}: {len(bundle.train):,} patches, {len(bundle.test):,} test images; data and PCA "
          f"{time.perf_counter() - started:.0f} s; coder installed: {entropy_coding.coder_available()}", flush=True)
    started, cpu = time.perf_counter(), time.process_time()
    if args.grid:
        grid = curves.pca_codec_curves(pca, codec_fit, bundle.test, steps, components)
        best = curves.upper_envelope(grid, name="PCA's best codec")
    else:
        best = curves.pca_best_codec_curve(pca, codec_fit, bundle.test, steps, components)
    if args.one_step:
        curves.pca_codec_curves(pca, codec_fit, bundle.test, steps, (max(components),), ssim=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"PCA's best codec ({args.call}), components {components}, steps {steps}"
          f"{' (every point in full, then the envelope)' if args.grid else ''}"
          f"{' and the one-step curve' if args.one_step else ''}: {seconds:.1f} s wall, {cpu:.1f} s CPU "
          f"(load average {os.getloadavg()[0]:.1f} at the end)")
    columns = ["setting", "bits_per_image", "information_bits", "psnr_of_mean_mse", "ssim", "clipped"]
    with pd.option_context("display.precision", 4, "display.width", 160):
        print(best[columns].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
