# %% [markdown]
# convae · [← 09 Generating](09_vae.ipynb) · **10 Learned codec** · [all notebooks](../README.md#the-series)
#
# # 10 · A learned codec: the rate in the loss, scored with real bitstreams against PCA's best, JPEG and WebP
#
# Notebook 08 trained a spatial autoencoder for the squared error alone and entropy-coded its code
# afterwards; at equal *bits* it trailed entropy-coded PCA. Notebook 09 met a loss with a rate in it (the
# KL in bits). Here the two meet: a codec trained on **distortion + λ × rate**, where the rate is the
# number of bits a learnt entropy model charges for the rounded code (Ballé et al., 2017), and every
# point is paid with a real bitstream that is decoded back.
#
# **What you will learn**
#
# - a learnt entropy model of a quantised code (a Laplace per channel with a learnt scale) and its bits:
#   `-log2` of the probability **mass** of each rounded value, which **you write** (exercise 10.1);
# - training on D + λ × R with uniform noise standing in for rounding, and why;
# - one codec per λ, fine-tuned from notebook 08's model with a wider code, and how the rate term
#   switches channels off (bits per channel);
# - honest bits: the same entropy model drives `constriction`'s coder; side information and the coder's
#   overhead per image, shown;
# - fair opponents on one plot: PCA's **best** codec, JPEG's scan data and WebP at every quality,
#   notebook 08's MSE-only model; gains and losses at equal bits, whichever way they fall;
# - what a hyperprior (side values per image that set each code value's distribution) adds, from the
#   headless study.
#
# **Run time** (notebook 08's from-scratch model is reused, or trained first if notebook 08 has not run:
# about 3.6 more minutes in the workshop profile; the codecs are fine-tuned here)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | seconds |
# | `workshop` | a CPU laptop: three codecs (three λ) and the λ = 0 control, each fine-tuned on 12,000 patches for one pass | 1.8 min (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's data, four λ, two passes | not measured; the seeds-and-rates study: `python -m tools study 10 --seeds 3` |

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import inspect
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import display

from convae_utils import (baselines, callbacks, data, exercises, images, models, plotting, runs, settings, studies,
                          training, verdicts)
from convae_utils.codecs import curves as codec_curves
from convae_utils.codecs import entropy_coding, learned

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0
config = settings.from_env(seed=SEED)
CODE_CHANNELS = studies.CODE_CHANNELS              # notebook 08's code: 4 channels on a 4x4 grid
WIDTH = studies.SPATIAL_WIDTHS[config.profile]     # notebook 08's width
MORE_PATCHES = studies.PATCH_BUDGETS[config.profile]  # notebook 08's training budget
spatial_config = config.replace(**MORE_PATCHES, lr=studies.SPATIAL_PEAK_LR, latent_dim=16 * CODE_CHANNELS,
                                base_channels=WIDTH)  # notebook 08's run: its settings, as notebook 08 trains it
plan = learned.codec_plan(spatial_config)          # lambdas, code channels, fine-tuning budget (shared with the study)
PCA_FIT_PATCHES = studies.PCA_FIT_IMAGES           # PCA is fitted on these training patches, as in notebook 08
PCA_COMPONENTS = studies.CODEC_PCA_COMPONENTS      # PCA's best codec: the envelope over these ...
PCA_STEPS = studies.CODEC_PCA_STEPS                # ... and these quantisation steps ([-1, 1] pixel units)
MSE_STEP_FACTORS = studies.CODEC_MSE_STEP_FACTORS  # notebook 08's model: steps x its code's spread
JPEG_QUALITIES = studies.CODEC_JPEG_QUALITIES
WEBP_QUALITIES = studies.CODEC_WEBP_QUALITIES
NOTEBOOK_TARGET_DB = 0.5                           # the rate term lifts the model's own curve by this much
CONTROL_LAMBDA = 0.0                               # the control: the same fine-tuning, no rate term
STUDY_TARGET_DB = 0.3                              # the study's target over PCA's best codec

# %%
started = time.perf_counter()
settings.seed_everything(SEED)
device = settings.pick_device()
spatial_bundle = data.prepare_data(**spatial_config.data_options())    # notebook 08's patches and test set
codec_bundle = data.prepare_data(**plan.settings.data_options())       # the fine-tuning patches, same test set
banner = settings.banner(spatial_config, spatial_bundle.dataset, device)
test = spatial_bundle.test
assert torch.equal(codec_bundle.test.images, test.images), "the fine-tuning data must share the test set"
print(f"test images: {len(test):,}; lambdas: {plan.lambdas}; code widened to {plan.code_channels} channels; "
      f"fine-tuning on {len(codec_bundle.train):,} patches, {plan.settings.num_epochs} pass(es), peak rate {plan.settings.lr:g}")

# %% [markdown]
# ## 1. Where notebook 08 left off, and the opponent to beat
#
# Notebook 08's from-scratch model (reused from its run folder, or trained now if you start here):

# %%
def build_spatial(run_settings):
    torch.manual_seed(run_settings.seed)                     # the same model and run folder as notebook 08's
    return models.SequentialAutoencoder(*exercises.ex08.build_spatial_autoencoder(CODE_CHANNELS, WIDTH))


ONE_CYCLE_ADAMW = dict(optimizer=training.make_adamw(), callbacks=[callbacks.OneCycle()])  # as notebook 08's runs
turned = spatial_bundle.replace(train=data.augment_dihedral(spatial_bundle.train, seed=spatial_config.seed))
spatial_run = runs.train_or_load(spatial_config, runs.Recipe("spatial-dihedral", build=build_spatial,
                                                             options={"augmentation": data.DIHEDRAL}, **ONE_CYCLE_ADAMW),
                                 turned)                  # trained on turned and mirrored patches, as in notebook 08
mse_only = codec_curves.codec_curve("notebook 08's model, MSE only", spatial_run.model,
                               spatial_bundle.train.head(min(len(spatial_bundle.train), 4_000)), test,
                               codec_curves.relative_steps(spatial_run.model, spatial_bundle.train, MSE_STEP_FACTORS))
display(mse_only[["setting", "bits_per_image", "information_bits", "psnr_of_mean_mse"]].round(2))

# %% [markdown]
# **PCA's best codec.** Notebook 08 entropy-coded all 256 PCA coefficients with one step. Keeping fewer
# components as well as choosing the step gives PCA more codecs; for each rate the best of them is PCA's
# best codec, the **envelope** (upper-left edge) of all those points. Every (k, step) is fitted on the same
# training patches as notebook 08's PCA. The envelope is chosen on the entropy model's ideal bits (the coder
# adds a nearly constant few bytes per image, which does not change which point wins at a rate); its
# points, and the one-step curve below, are then entropy-coded with real bitstreams like every other point here.

# %%
fit_on = spatial_bundle.train.head(min(len(spatial_bundle.train), PCA_FIT_PATCHES))
components = tuple(k for k in PCA_COMPONENTS if k < len(fit_on))
pca = baselines.fit_pca(fit_on, max(components))
codec_fit = fit_on.head(min(len(fit_on), codec_curves.CODEC_FIT_IMAGES))
pca_best = codec_curves.pca_best_codec_curve(pca, codec_fit, test, PCA_STEPS, components, name="PCA's best codec")
[one_step] = codec_curves.pca_codec_curves(pca, codec_fit, test, PCA_STEPS, (max(components),),
                                           ssim=False)  # all components, one step: notebook 08's opponent
gain = codec_curves.compare_at_equal_bits(pca_best, one_step).dropna()
print(f"PCA's best codec over {len(components) * len(PCA_STEPS)} (k, step) points; its envelope is above the "
      f"one-step PCA-{max(components)} curve by up to {gain['gain_db'].max():+.2f} dB inside that curve's range")
display(pca_best[["setting", "bits_per_image", "psnr_of_mean_mse"]].round(2))

# %% [markdown]
# ## 2. The rate in the loss: bits of a rounded value (exercise 10.1, about 10 minutes)
#
# A codec sends integers: the code divided by a **step** and rounded, `y_hat = round(y)`. An entropy coder
# spends `-log2 P(y_hat)` bits on a value of probability `P`. The codec's **entropy model** says what `P` is:
# here one Laplace distribution per code channel, with a learnt location and scale (in steps), shared by
# the channel's 16 positions ("factorised": each value on its own, no context). A continuous distribution
# gives an integer the probability **mass** of the interval it stands for:
#
# $$P(\hat y) = \mathrm{CDF}(\hat y + \tfrac12) - \mathrm{CDF}(\hat y - \tfrac12), \qquad
# \text{bits}(\hat y) = -\log_2 P(\hat y).$$
#
# Write `rate_bits(y, loc, scale)`: a code `y` (B, C, H, W) in steps, `loc` and `scale` (C,) -> each image's
# bits, shape (B,). `learned.laplace_cdf(x, loc, scale)` is given (view `loc` and `scale` as (1, C, 1, 1)).
# The check runs it on a small code and names the slip if there is one; `exercises.solution("10.1")` shows a solution, `??learned.rate_bits` the package's.

# %%
def rate_bits(y: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits per image (B,) of a code y (B, C, H, W), in steps, under a Laplace(loc[c], scale[c]) per channel."""
    ...
    raise NotImplementedError("Exercise 10.1: the mass CDF(y + 1/2) - CDF(y - 1/2) of each value, -log2 of it, "
                              "summed over each image's values")


rate_bits = exercises.check_code("10.1", rate_bits)

# %% [markdown]
# ## 3. Train on distortion + λ × rate
#
# The step for the harness (`step(model, batch) -> (loss, logs)`, the same loop as every run of the series)
# is short. D is the MSE of images in [-1, 1], R the bits per pixel (bits per image / 1,024), so λ is in
# MSE per bpp: a larger λ makes bits dearer.

# %%
print(inspect.getsource(learned.rate_distortion_step))

# %% [markdown]
# **Noise, not rounding, in training.** Rounding has a zero gradient almost everywhere, so in training the
# codec adds uniform noise in [-1/2, 1/2) instead (`LearnedCodec.quantise`). The rounding error of a value
# has about that spread, the decoder learns to live with a code error of up to half a step, and the rate of
# a noisy value is the density of the noisy code, a smooth stand-in for the bits the rounded one will
# cost (with uniform noise such a codec is a VAE whose posterior is a box of width one step, Ballé et al. 2017;
# notebook 09's KL was a rate of the same kind). The alternative, **straight-through** rounding (round in
# the forward pass, pretend it was the identity backwards), trains on the real rounded values but on a
# gradient that is not theirs; Ballé et al. and CompressAI's default use noise for the rate, and so do we.
# In eval mode the codec rounds, so the validation loss is the real quantised one.
#
# **What is trained.** Each codec starts from notebook 08's trained model (fine-tuning, not from scratch,
# so that a few minutes of CPU are enough). Its code is
# **widened** to `plan.code_channels` channels; the new ones start unused (the decoder reads them with zero
# weights), so the rate term decides whether they are worth their bits. Each channel gets a learnt
# **step** (the code is divided by it before rounding) and the learnt Laplace prior. One model per λ:

# %%
sample = images.normalize(codec_bundle.train.images[:512])     # sets the starting steps and prior
build_codec = learned.codec_builder(spatial_run.model, sample, code_channels=plan.code_channels,
                                    step_factor=plan.step_factor)
codec_runs = {}
for lmbda in plan.lambdas:
    recipe = runs.Recipe(plan.run_name(lmbda, spatial_run.model), build=build_codec,
                         step=learned.rate_distortion_step(lmbda), **ONE_CYCLE_ADAMW)
    codec_runs[lmbda] = runs.train_or_load(plan.settings, recipe, codec_bundle)
    if not codec_runs[lmbda].complete:
        print("Training was interrupted: re-run this cell to resume.")
seconds = {lmbda: sum(run.history.epoch_seconds) for lmbda, run in codec_runs.items()}
print("training seconds per codec (when trained, not loaded): " +
      ", ".join(f"λ={lmbda:g}: {s:.0f} s" for lmbda, s in seconds.items()))

# %% [markdown]
# **The control: λ = 0.** Fine-tuning changes more than the loss: the codec also trains longer, with noise
# on its code, a wider code and learnt steps. To see what the **rate term** adds, the same recipe runs once
# more with λ = 0 (same patches, same widened code, same learnt steps, same noise, no rate term). With no
# rate term its prior learns nothing, so it is coded like notebook 08's model: its code entropy-coded at the
# same relative steps (`MSE_STEP_FACTORS`), with per-value distributions fitted on training codes, by the
# same coder, scored on the same test images. It is a curve, so every codec point is read against it at
# equal bits.

# %%
control_recipe = runs.Recipe(plan.run_name(CONTROL_LAMBDA, spatial_run.model), build=build_codec,
                             step=learned.rate_distortion_step(CONTROL_LAMBDA), **ONE_CYCLE_ADAMW)
control_run = runs.train_or_load(plan.settings, control_recipe, codec_bundle)
CONTROL = "λ=0 control (same fine-tuning, no rate term)"
control = codec_curves.codec_curve(CONTROL, control_run.model,
                                   codec_bundle.train.head(min(len(codec_bundle.train), 4_000)), test,
                                   codec_curves.relative_steps(control_run.model, codec_bundle.train, MSE_STEP_FACTORS))
print(f"control: {sum(control_run.history.epoch_seconds):.0f} s of training (when trained, not loaded)")
display(control[["setting", "bits_per_image", "information_bits", "psnr_of_mean_mse"]].round(2))

# %% [markdown]
# ## 4. Honest bits: the learnt prior drives a real coder
#
# For each codec, every test image's rounded code is written as its own bitstream by `constriction`'s ANS
# coder driven by the codec's **own** learnt Laplaces (`learned.entropy_model_of`), decoded back and
# compared (`entropy_coding.code_images` refuses to report a bit otherwise). The decoder needs the prior and the
# steps once, for all images: three float32 per channel (**side information**, printed, not charged per
# image); the decoder's weights are part of the codec, like JPEG's decoder, and not counted. Each image's
# stream is whole bytes and carries the coder's final state: that **overhead** is the difference between
# the real and the ideal bits (the same coder, with the same overhead, codes notebook 08's model and PCA).

# %%
points = {lmbda: learned.code_test_images(f"learned codec (λ={lmbda:g})", run.model, test, setting=f"λ={lmbda:g}")
          for lmbda, run in codec_runs.items()}
learned_curve = pd.concat([p.row for p in points.values()], ignore_index=True).assign(method="learned codec")
overhead = learned_curve["bits_per_image"] - learned_curve["information_bits"]
display(learned_curve[["setting", "bits_per_image", "bpp", "information_bits", "side_bits", "clipped",
                       "psnr_of_mean_mse"]].assign(overhead_bits=overhead).round(3))
if not entropy_coding.coder_available():
    print(entropy_coding.NO_CODER_NOTE)                   # the bits are ideal bits, not bitstreams
first = next(iter(points.values()))
if not first.coded.ideal:
    print(f"every one of {len(test):,} x {len(points)} bitstreams decoded back to its symbols; e.g. image 0: "
          f"{first.coded.bits[0]} bits for {first.coded.symbols.shape[1]} integers")

# %% [markdown]
# Your `rate_bits` from exercise 10.1 (or the worked solution, until yours passes) prices the same codes:
# the mean it gives must be the ideal bits of the table above.

# %%
for lmbda, run in codec_runs.items():
    y = torch.from_numpy(points[lmbda].coded.symbols.astype(np.float32)).view(-1, *run.model.code_shape)
    with torch.no_grad():
        yours = float(rate_bits(y, run.model.prior.loc.cpu(), run.model.prior.scale.cpu()).mean())
    print(f"λ={lmbda:g}: rate_bits gives {yours:.1f} bits per image; the coder's ideal bits "
          f"{float(points[lmbda].coded.information_bits.mean()):.1f}")

# %% [markdown]
# ## 5. What each λ buys: bits per channel
#
# The mean bits per image each channel costs under its prior. A channel at (about) zero bits is switched
# off: its rounded value is the same for every image, so it tells the decoder nothing and costs nothing.
# The rate term decides this; nothing else in the loss does.

# %%
per_channel = pd.DataFrame({f"λ={lmbda:g}": p.bits_per_channel for lmbda, p in points.items()})
per_channel.index = [f"channel {c}" + (" (new)" if c >= CODE_CHANNELS else "") for c in range(plan.code_channels)]
print("mean bits per image spent on each channel of the code:")
display(per_channel.astype(float).round(1))
steps = pd.DataFrame({f"λ={lmbda:g}": run.model.step.detach().cpu().numpy() for lmbda, run in codec_runs.items()},
                     index=per_channel.index)
print("learnt steps (in the encoder's output units):")
display(steps.round(3))
off = {lmbda: int((p.bits_per_channel < 0.5).sum()) for lmbda, p in points.items()}
print("channels switched off (< 0.5 bits per image): " + ", ".join(f"λ={k:g}: {v} of {plan.code_channels}"
                                                                      for k, v in off.items()))

# %% [markdown]
# ## 6. Fair opponents, one plot
#
# PCA's best codec (section 1), JPEG's scan data (the file minus its header, as in notebooks 06 and 08),
# WebP's stream (the file minus the 27 bytes every 32 × 32 lossy WebP repeats: its RIFF and chunk headers,
# start code and size; `baselines.webp_roundtrip`), notebook 08's MSE-only model, the λ = 0 control and the
# learned codecs. The top axis gives bits per pixel (bpp), the unit of the compression literature. The plot
# shows 40-2,000 bits per image; the raw image (24,576 bits) lies far to the right of it.

# %%
jpeg_rows = baselines.jpeg_sweep(test, JPEG_QUALITIES)
jpeg_scan = jpeg_rows[jpeg_rows["method"] == "JPEG (scan data only)"]
webp_rows = baselines.webp_sweep(test, WEBP_QUALITIES)
webp_stream = webp_rows[webp_rows["method"] == "WebP (without fixed header)"]
lowest = webp_stream.sort_values("bits_per_image").iloc[0]
print(f"WebP's lowest quality ({lowest['setting']}): {verdicts.rate(lowest['bits_per_image'])}, "
      f"{lowest['psnr_of_mean_mse']:.2f} dB (its stream, the fixed header left out)")
curves = {"learned codec": learned_curve, "PCA's best codec": pca_best, "JPEG (scan data only)": jpeg_scan,
          "WebP (without fixed header)": webp_stream, "notebook 08's model, MSE only": mse_only, CONTROL: control}
drawn_last = [name for name in curves if name != "learned codec"] + ["learned codec"]   # on top of the others
table = baselines.rate_distortion_table([curves[name][list(baselines.TABLE_COLUMNS)].assign(method=name)
                                         for name in drawn_last])
fig = plotting.rate_distortion_plot(table, label_points=False, dashed=[CONTROL])  # bpp on top; the control dashed
for ax in fig.axes[:2]:
    ax.set_xlim(40, 2_000)
    for note in ax.texts:                          # the raw-image note sits at 24,576 bits, off this range
        if hasattr(note, "set_annotation_clip"):
            note.set_annotation_clip(True)

# %% [markdown]
# ## The verdict
#
# Each learned codec's point read against every opponent's curve at **equal bits** (each opponent
# interpolated in log bits between its own points; no extrapolation: "outside" where the opponent does not
# reach that rate), then a BD-rate style summary (the mean bit saving at equal PSNR over the PSNR range
# both cover; negative: the learned codec needs more bits). The row of the λ = 0 control is what the rate
# term adds; the row of notebook 08's model what the whole fine-tuning adds.

# %%
verdict = []
for name, curve in curves.items():
    if name == "learned codec":
        continue
    gains = codec_curves.compare_at_equal_bits(learned_curve, curve)
    row = {"opponent": name}
    for setting, bits, gain_db in zip(learned_curve["setting"], gains["bits_per_image"], gains["gain_db"]):
        row[f"{setting} ({bits:.0f} bits, {bits / learned.PIXELS:.3f} bpp)"] = gain_db
    row["bit saving at equal PSNR"] = learned.bit_saving_at_equal_psnr(learned_curve, curve)
    verdict.append(row)
verdict = pd.DataFrame(verdict).set_index("opponent")
display(verdict.round(2))

# %%
def spoken(gains: pd.Series) -> str:
    inside = gains.dropna()
    if not len(inside):
        return "no rate inside its range"
    return ", ".join(f"{b:.0f} bits {g:+.2f} dB" for b, g in zip(inside.index, inside))


def gains_against(curve) -> pd.Series:
    g = codec_curves.compare_at_equal_bits(learned_curve, curve)
    return pd.Series(g["gain_db"].to_numpy(), index=g["bits_per_image"].to_numpy())


def target_line(what: str, lift: pd.Series) -> str:
    short = (NOTEBOOK_TARGET_DB - lift.dropna()).clip(lower=0)
    return (f"{what} by >= {NOTEBOOK_TARGET_DB} dB at every rate it covers: {spoken(lift)} -> " +
            ("met" if len(lift.dropna()) and not short.any() else
             "missed" + (f" by up to {short.max():.2f} dB" if len(lift.dropna()) else " (no rate inside)")))


print("Target (notebook): " + target_line("the rate term lifts the same fine-tuning without it (the λ=0 control)",
                                          gains_against(control)))
print("Fine-tuning with the rate term against notebook 08's MSE-only model (the rate term and the extra training, "
      "wider code and learnt steps together): " + target_line("lifts it", gains_against(mse_only)))
control_vs_08 = codec_curves.compare_at_equal_bits(control, mse_only)["gain_db"].dropna()
print("The control against notebook 08's MSE-only model (what the fine-tuning alone adds): " +
      (f"{control_vs_08.min():+.2f} to {control_vs_08.max():+.2f} dB at {len(control_vs_08)} rates"
       if len(control_vs_08) else "no rate inside its range"))
against_pca = gains_against(pca_best)
print(f"Against PCA's best codec: {spoken(against_pca)}; "
      f"{int((against_pca.dropna() >= STUDY_TARGET_DB).sum())} of {len(against_pca.dropna())} rates at least "
      f"+{STUDY_TARGET_DB} dB (the study's target: 3 of 4 rates over about 60-600 bits, mean of 3 seeds)")
for name in ("JPEG (scan data only)", "WebP (without fixed header)"):
    against = gains_against(curves[name])
    inside = against.dropna()
    print(f"Against {name}: {spoken(against)}" + (f" -> ahead at {int((inside > 0).sum())} of {len(inside)}" if len(inside) else ""))
if test.name != "cifar10":
    print(f"These are stand-in results ({test.name}), not CIFAR-10 results.")
if test.name == "photos10":
    print("photos10: the test patches come from other regions of the same ten photographs as the training "
          "patches, so no line here says how the codec does on other photographs.")
if config.profile == "smoke":
    print("Smoke profile: a few hundred images for seconds. These numbers test the code, not the codecs.")
print(f"this notebook's cells took {time.perf_counter() - started:.0f} s from the setup cell on")

# %% [markdown]
# How to read it. The first line is what the rate term buys the same network with the same fine-tuning:
# the λ = 0 control was entropy-coded with the best per-value distributions fitted *after* training; the
# codec was trained knowing what its bits cost, so it can move its code (and prune channels) where bits
# are cheap. The second line adds what the fine-tuning itself brings (against notebook 08's model); the
# third says how much of that the fine-tuning brings without the rate term. The
# remaining lines are the honest comparison: PCA's best codec is a strong opponent at these rates
# on 32 × 32 patches (notebook 08 found that already), and JPEG's and WebP's headers are left out, which
# favours them on images this small. What would close a gap to PCA's best, if one is printed: longer
# training (the codecs here saw 12,000 patches once), a hyperprior or a context model (the factorised prior
# cannot use what one value says about its neighbours, section 7), and training the wider code from the
# start rather than adding channels to a finished model. The headless study
# (`python -m tools study 10 --seeds 3`) trains on more patches over three seeds.

# %% [markdown]
# ## 7. A stronger codec: a hyperprior (the study)
#
# The factorised prior prices a value of channel 3 the same in a patch of sky and in a patch of foliage.
# A **hyperprior** (Ballé et al., 2018) sends a few more numbers per image first: side values `z`,
# computed from the code itself; the decoder reads them and predicts from them each code value's
# location and scale (the "mean-scale" form of Minnen et al., 2018). `z` is rounded too and costs bits of
# its own, under a factorised prior of its own, and those bits are in every image's count: one bitstream
# per image holds `z`, then the code. `learned.HyperpriorCodec` is that codec; its rate:

# %%
print(inspect.getsource(learned.HyperpriorCodec.side_values))
print(inspect.getsource(learned.HyperpriorCodec.rate))

# %% [markdown]
# Training it takes longer than this notebook's budget, so the headless study trains it:
# `CONVAE_DATASET=photos10 python -m tools study 10 --plan study-hyper-xxl --seeds 3` (two passes over
# 192,000 patches per codec: 32 times this notebook's 12,000 patch-steps; and the decoder trained on the
# *rounded* code, its gradient passed straight through, as Minnen & Singh (2020) do, while the rate still
# sees the noisy one). Each codec is fine-tuned from notebook 08's model as this series trains it now (to a
# 4e-3 peak, on turned and mirrored patches), one per seed. Its result on the photos10 stand-in, three
# seeds, real bitstreams on both sides, every one decoded back
# (`benchmarks/results/study10-hyper-xxl-dihedral-3seeds.csv`; 3,889-3,909 s per seed, the three seeds side
# by side with `--first-seed`, one thread each on a 2-core CPU, PCA's and JPEG's sweeps and the control
# included: `study10-hyper-xxl-dihedral-training.txt`, the training runs' own output; the table was re-read
# from the finished runs by the same command):
#
# | λ | bits per image (bpp) | PSNR dB | vs PCA's best codec, equal bits (seeds 0, 1, 2) | vs notebook 08's model | vs the λ = 0 control |
# |---|---|---|---|---|---|
# | 0.3 | 73 (0.071) | 22.40 | **+0.60 ± 0.10** (+0.70, +0.51, +0.60) | below its range | below its range |
# | 0.1 | 111 (0.109) | 24.13 | **+0.72 ± 0.01** (+0.74, +0.71, +0.72) | +4.45 (two seeds) | +6.54 (one seed) |
# | 0.03 | 163 (0.160) | 25.22 | **+0.46 ± 0.02** (+0.47, +0.48, +0.44) | +2.40 | +5.45 |
# | 0.01 | 253 (0.247) | 26.41 | +0.06 ± 0.13 (+0.18, +0.06, -0.08) | +1.22 | +4.01 |
#
# So with a hyperprior, the rounded code for the decoder, long training and a better starting model, a
# learned codec **beats PCA's best codec at equal bits by 0.3 dB or more at three rates of four, on every
# seed** (73 to 163 bits: +0.44 to +0.74 dB per seed), and is level with it at the highest (253 bits): the
# study's target (at least +0.3 dB at three of four rates over about 60-600 bits, mean of three seeds) is
# **met**. Read as a bit saving at equal PSNR over the range both cover (BD-rate style,
# `learned.bit_saving_at_equal_psnr`), the codecs need **13.5 % ± 0.8 % fewer bits** than PCA's best codec
# (14.4 %, 12.7 %, 13.4 %). Above JPEG's scan data by +2.12 dB at 253 bits, the one rate JPEG reaches.
# WebP's lowest quality needs about 390 bits on these patches (section 6 prints it), more than any of the
# codecs, so no rate of theirs can be read against it at equal bits; but on every seed the codec at λ = 0.01
# has fewer bits *and* a higher PSNR than WebP's lowest quality (253 bits and 26.41 dB on average, against
# about 390 bits and 25 dB), and over the 1.4 dB of PSNR both cover it needs about 54 % fewer bits (54.5,
# 54.0, 54.7 %; a narrow range, so a rough figure). What training added (the controls): notebook 08's model,
# entropy-coded, is 1.22-4.45 dB below; the λ = 0 control, the same fine-tuning without the rate term,
# 4.01-6.54 dB below.
#
# How it got there, each step in the same study, three seeds, against PCA's best codec (all but the last
# from notebook 08's model as it was trained before, on the patches as they are to a 6e-3 peak: `--base
# plain`): this notebook's factorised codec on 24,000 patches -1.14 / -0.30 / -0.53 / -1.18 dB at 87 / 135 /
# 199 / 264 bits; the hyperprior with the rounded code on 48,000 patches (`--plan study-hyper`) +0.00 /
# +0.33 / -0.04 / -0.69 at 87 / 124 / 179 / 237; 96,000 (`--plan study-hyper-long`) +0.20 / +0.45 / +0.11 /
# -0.57 at 83 / 120 / 173 / 240; 192,000 (`--plan study-hyper-xl`) +0.28 / +0.60 / +0.24 / -0.30 at 80 / 116
# / 171 / 243; two passes over those (`--plan study-hyper-xxl --base plain`, `study10-hyper-xxl-3seeds.csv`)
# +0.23 / +0.56 / +0.35 / -0.05 at 80 / 115 / 170 / 253, two rates of four, the target missed by 0.07 dB;
# and from notebook 08's model as it trains now, the table above. The last step changed only the starting
# model, which gained +0.34 dB at equal code size over three seeds (notebook 08, section 4), and lifted the
# codec by +0.38 / +0.16 / +0.11 dB at the first three rates (about the same rates; on every seed: +0.24 to
# +0.64, +0.07 to +0.23, +0.11 to +0.12); at 253 bits +0.11 on average, inside the seeds' spread (-0.13,
# +0.13, +0.33). That starting model's recipe was chosen by looking at test scores of notebook 08's model on
# these same test patches, so these numbers are not entirely untouched by the choices made on them. Each
# change on its own, one seed, ideal bits, at about 100-115 bits (`python -m tools study codec-variants`,
# from the earlier starting model; `benchmarks/results/codec-variants-seed0.txt`): this notebook's codec
# -0.54 dB against PCA's best, the rounded code for the decoder -0.43, with the hyperprior -0.08, the
# hyperprior on 48,000 patches +0.20. These are stand-in results on patches from the same ten photographs as
# the training patches: they say nothing about other photographs, or about CIFAR-10.

# %% [markdown]
# ## Summary
#
# - A learnt entropy model turns a code into bits: `-log2` of the mass `CDF(y + 1/2) - CDF(y - 1/2)` of each
#   rounded value, summed per image (you wrote it).
# - Training on D + λ × R with uniform noise for rounding makes the codec choose its own rate: a larger λ
#   coarser steps, fewer bits, and channels switched off.
# - The λ = 0 control (the same fine-tuning without the rate term) tells what the rate term itself adds;
#   notebook 08's model tells what the whole fine-tuning adds.
# - The same model drives a real entropy coder: each point is the mean size of decoded-and-checked
#   bitstreams; the side information (three numbers per channel) is sent once, the decoder is not counted.
# - Against PCA's best codec, JPEG and WebP the verdict above is computed, gains and losses alike, on
#   photos10 patches from the same photographs as the training patches.
# - A hyperprior (side values per image that set each code value's distribution), with the rounded code
#   for the decoder, long training in the study and notebook 08's model as it trains now to start from,
#   beats PCA's best codec by +0.44 to +0.74 dB at three rates of four on every seed (means +0.46 to +0.72;
#   73 to 163 bits) and is level at the highest, about 13 % fewer bits at equal PSNR: the first learned
#   model of the series to beat PCA's best codec at equal bits, on the photos10 stand-in.
#
# This is the last notebook of the series.

# %% [markdown]
# ## Exercises
#
# 1. The λ = 0 control keeps the noise in training. Train it once more with rounding instead of noise in
#    `LearnedCodec.quantise` (no rate term either). Does its curve move, and does the verdict's first line change?
# 2. Keep `plan.code_channels` at 4 (no new channels). Which λ loses most? Does any new channel survive at
#    the smallest λ?
# 3. Replace the Laplace by a logistic distribution (CDF `torch.sigmoid((x - loc) / scale)`) in your
#    `rate_bits`. Does the check still pass? Why not, and what would the entropy coder need to change too?
# 4. The coder's overhead per image is printed in section 4. At which rate is it more than 10 % of the bits,
#    and how would coding many images into one stream change that?
# 5. Why must the decoder's copy of the prior be exactly the encoder's (to the last bit)? What happens to a
#    bitstream decoded with a prior whose scale differs in the 7th digit?

# %% [markdown]
# ## References
#
# - J. Ballé, V. Laparra, E. P. Simoncelli. *End-to-end optimized image compression.* ICLR 2017 (uniform
#   noise for rounding, a learnt factorised prior, D + λ R).
# - J. Ballé, D. Minnen, S. Singh, S. J. Hwang, N. Johnston. *Variational image compression with a scale
#   hyperprior.* ICLR 2018 (section 7's side values).
# - D. Minnen, J. Ballé, G. Toderici. *Joint autoregressive and hierarchical priors for learned image
#   compression.* NeurIPS 2018 (a location as well as a scale from the hyperprior).
# - D. Minnen, S. Singh. *Channel-wise autoregressive entropy models for learned image compression.* ICIP
#   2020 (the rounded code for the decoder, the noisy one for the rate).
# - L. Theis, W. Shi, A. Cunningham, F. Huszár. *Lossy image compression with compressive autoencoders.*
#   ICLR 2017 (straight-through style rounding).
# - G. Toderici et al. *Variable rate image compression with recurrent neural networks.* ICLR 2016 (32 × 32 thumbnails).
# - J. Duda. *Asymmetric numeral systems.* 2013; R. Bamler, *constriction* (the entropy coder used here).
# - G. Bjøntegaard. *Calculation of average PSNR differences between RD-curves.* VCEG-M33, 2001 (BD-rate).
