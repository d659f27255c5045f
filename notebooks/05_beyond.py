# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# convae · [← 04 Bottleneck](04_bottleneck.ipynb) · **05 Beyond** · [06 Rate and distortion →](06_rate_distortion.ipynb) · [all notebooks](../README.md#the-series)
#
# # 05 · Beyond the article: better activations, anomalies, and walks through the code space
#
# The article stops at blurry reconstructions. This notebook goes three steps further with the
# latent-200 model from notebook 03:
#
# 1. **Fixing the activations.** The article puts a ReLU on the code and nothing on the output. We
#    measure what that costs (dead code units, outputs outside the valid range), train a fixed variant,
#    and compare the two.
# 2. **Anomaly detection.** An autoencoder rebuilds typical images well and unusual ones badly, so its
#    reconstruction error can flag inputs that do not belong. We test that idea, and show where it fails.
# 3. **Interpolation.** We walk in a straight line from one image's code to another's and decode every
#    step, to see why a plain autoencoder is not a generator of new images.
#
# **What you will learn**
#
# - what a dead ReLU unit is and how to count them;
# - why the output activation should match the range of the targets;
# - how to turn reconstruction error into an anomaly detector, with a threshold chosen on validation data,
#   and why "simple" outliers fool it;
# - what the code space of a plain autoencoder looks like between and around real images.
#
# **Run time** (one extra model is trained; the article's model is reused from notebook 03)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | 9 s (measured by `python -m convae_utils series` on a 2-core CPU, stand-in data; see the README) |
# | `workshop` | a CPU laptop: 12,000 images, 5 epochs | 1.6 min (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's experiment | not measured on a CPU (about 14 min per model at the workshop speed, before scoring); seconds on a GPU: see the README's GPU section |
#
# The workshop figures were measured on a quiet 2-core machine (about 530 images per second for
# latent 200); a machine shared with other jobs can take several times longer.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from convae_utils import data, exercises, images, metrics, plotting, runs, settings

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0
LATENT_DIM = 200                              # the model from notebook 03
config = article_config = settings.from_env(latent_dim=LATENT_DIM, seed=SEED)
fixed_config = article_config.replace(code_activation=None, output_activation="tanh")   # the fixes
ENCODE_BATCH = 8 * config.batch_size         # images per forward pass when encoding a whole split
FALSE_ALARM_RATE = 0.05                       # share of normal (validation) images the detector may flag
INTERPOLATION_STEPS = 9                       # pictures along each walk through the code space
ENDPOINTS = (1, 7)                            # exemplar indices to walk between (automobile, horse on CIFAR-10)

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)

# %% [markdown]
# ## Part 1: the activations around the code and at the output
#
# ### Two questionable choices
#
# - **A ReLU on the code.** ReLU replaces every negative number by zero. If, during training, a code
#   unit's input becomes negative for every image, the unit outputs zero for all of them and its gradient is
#   zero too, so its own weights no longer change: a **dead unit**. It can only come back if the layers
#   before it change enough to make its input positive for some image again; often that does not happen.
#   Each dead unit is a slot of the bottleneck that carries no information, so a "200-number" code may
#   really be smaller.
# - **No activation on the output.** The targets lie in [-1, 1], but a final convolution can output any
#   number. Values outside the range are wasted effort (they are clipped when displayed), and the
#   network has to learn the limits itself. `tanh` builds them in.
#
# First the article's model, reused from notebook 03 (or trained now if you start here):

# %%
article_run = runs.train_or_load(article_config, data=bundle)
print(f"article model: {'loaded from' if article_run.loaded else 'trained into'} {article_run.run_dir}")
if not article_run.complete:
    print("Training was interrupted: re-run this cell to resume.")

# %% [markdown]
# To look inside, we encode every test image and keep both the codes and the reconstructions.
#
# **Your turn (exercise 05.6, about 3 minutes).** Write the count of dead units: given the codes of many
# images, one row per image and one column per code unit, how many units are zero for *every* image? The
# check tries your function on a small table of codes with a known answer; the next cell then uses it on
# the test set's codes.

# %%
def count_dead_units(codes):
    """codes: (N, latent_dim), one row per image. Returns how many units (columns) are zero in every row."""
    ...
    raise NotImplementedError("Exercise 05.6: count the columns of codes that are zero for every image (row)")


count_dead_units = exercises.check_code("05.6", count_dead_units)

# %%
@torch.inference_mode()
def encode_split(model, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (N, latent_dim) and raw reconstructions (N, 3, 32, 32) of uint8 images, batch by batch."""
    model.eval()
    model_device = next(model.parameters()).device
    codes, outputs = [], []
    for batch in pixels.split(ENCODE_BATCH):
        code = model.encode(images.normalize(batch.to(model_device)))       # (B, latent_dim)
        codes.append(code.cpu())
        outputs.append(model.decode(code).cpu())                         # (B, 3, 32, 32)
    return torch.cat(codes), torch.cat(outputs)


article_codes, article_outputs = encode_split(article_run.model, bundle.test.images)
active_share = (article_codes > 0).float().mean(dim=0)                   # per unit: share of images where it is non-zero
dead = count_dead_units(article_codes)
print(f"codes of {len(article_codes):,} test images: {tuple(article_codes.shape)}")
print(f"dead code units (zero for every test image): {dead} of {LATENT_DIM} ({dead / LATENT_DIM:.0%})")
print(f"output values outside [-1, 1]: {(article_outputs.abs() > 1).float().mean().item():.2%}")

# %%
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
ax.bar(np.arange(LATENT_DIM), active_share.sort(descending=True).values, width=1.0)
ax.set_xlabel("code unit (sorted by activity)")
ax.set_ylabel("share of test images\nwith a non-zero value")
ax.set_title(f"Article model (ReLU code): {dead} of {LATENT_DIM} units never fire");

# %% [markdown]
# Units on the right that reach zero are dead. How many there are depends on the data, the seed and how
# long you train, but with a ReLU on the code the risk is built in.
#
# ### The fixed variant
#
# The fix is two switches (notebook 02): `code_activation=None` keeps the code linear, so a unit can
# be negative, positive, anything, and always passes gradient; `output_activation="tanh"` maps the output
# into [-1, 1]. Everything else (data, epochs, seed, initial weights of the shared layers) stays the same,
# so the comparison is fair. This is the one model this notebook trains.

# %%
fixed_run = (runs.train_or_load(fixed_config, data=bundle) if article_run.complete else None)
ready = fixed_run is not None and fixed_run.complete
if ready:
    print(f"fixed model: {'loaded from' if fixed_run.loaded else 'trained into'} {fixed_run.run_dir}")
else:
    print("A run is unfinished: re-run the training cells above to resume.")

# %%
if ready:
    fixed_codes, fixed_outputs = encode_split(fixed_run.model, bundle.test.images)
    health = pd.DataFrame({
        "article (ReLU code, no output activation)": {
            "dead code units": count_dead_units(article_codes),
            "outputs outside [-1, 1]": f"{(article_outputs.abs() > 1).float().mean().item():.2%}"},
        "fixed (linear code, tanh output)": {
            "dead code units": count_dead_units(fixed_codes),
            "outputs outside [-1, 1]": f"{(fixed_outputs.abs() > 1).float().mean().item():.2%}"},
    })
    display(health)

# %% [markdown]
# The fixed model has no dead units and no out-of-range pixels, by construction. Does it also
# reconstruct better? Loss curves, pictures and test metrics, side by side:

# %%
names = {"article": article_run, "fixed": fixed_run}
if ready:
    fig = plotting.loss_curves({name: run.history for name, run in names.items()})

# %%
if ready:
    fig = plotting.reconstruction_strip({name: run.history for name, run in names.items()})

# %%
if ready:
    comparison = metrics.compare_models({name: run.per_image for name, run in names.items()})
    display(comparison.round(4))
    overall = comparison.loc["all"]
    print(f"PSNR: article {overall[('article', 'psnr')]:.2f} dB, fixed {overall[('fixed', 'psnr')]:.2f} dB "
          f"({overall[('fixed', 'psnr')] - overall[('article', 'psnr')]:+.2f} dB); "
          f"SSIM: article {overall[('article', 'ssim')]:.3f}, fixed {overall[('fixed', 'ssim')]:.3f}")

# %% [markdown]
# Read the difference with care: one seed, one training length. The fixed model's advantage is first of
# all that it cannot lose code units or waste effort outside the target range; whether that shows up as a
# large gain in PSNR depends on how many units the article's model lost. Training both with a few seeds
# (an exercise below) tells you how much of the difference is noise.
#
# From here on we use the fixed model.
#
# ## Part 2: anomaly detection with reconstruction error
#
# An autoencoder learns to rebuild what it was trained on. Feed it something different and it tends to
# rebuild it badly. So: compute each input's reconstruction error, and raise an alarm above a threshold.
#
# **Choosing the threshold.** We allow a small share of false alarms on *normal* images, and we pick the
# threshold on the **validation** set, not the test set, for the same reason as in notebook 01: the test
# set must stay an unbiased check of how the detector behaves.
#
# **The suspicious inputs** are made from the test set:
#
# - **uniform noise**: every pixel random, nothing like a photograph;
# - **colour-inverted** test images: the same shapes and edges, every colour flipped (255 − pixel);
# - **flat colours**: each image a single random colour, with no structure at all.

# %%
def unusual_set(pixels: torch.Tensor, name: str) -> images.ImageSet:
    """Wrap generated images as an ImageSet (one class, named after the set) so metrics.evaluate can score them."""
    return images.ImageSet(pixels, torch.zeros(len(pixels), dtype=torch.long), (name,), name, "ood")


if ready:
    detector = fixed_run.model
    generator = torch.Generator().manual_seed(SEED)
    test_images = bundle.test.images                                              # (N, 3, 32, 32) uint8
    suspects = {
        "uniform noise": torch.randint(0, 256, test_images.shape, dtype=torch.uint8, generator=generator),
        "colour-inverted": 255 - test_images,
        "flat colours": torch.randint(0, 256, (len(test_images), 3, 1, 1), dtype=torch.uint8,
                                      generator=generator).expand_as(test_images).contiguous(),
    }
    test_scores = fixed_run.per_image                     # per-image test metrics, computed after training
    errors = {"validation (normal)": metrics.evaluate(detector, bundle.val)["mse"].to_numpy(),
              "test (normal)": test_scores["mse"].to_numpy()}
    for name, pixels in suspects.items():
        errors[name] = metrics.evaluate(detector, unusual_set(pixels, name))["mse"].to_numpy()
    threshold = float(np.quantile(errors["validation (normal)"], 1 - FALSE_ALARM_RATE))
    alarms = pd.DataFrame({
        "images": {name: len(values) for name, values in errors.items()},
        "median MSE": {name: float(np.median(values)) for name, values in errors.items()},
        "flagged": {name: f"{(values > threshold).mean():.1%}" for name, values in errors.items()},
    })
    print(f"threshold: MSE > {threshold:.4f} (exceeded by {FALSE_ALARM_RATE:.0%} of validation images)")
    display(alarms.round(4))

# %%
if ready:
    all_errors = np.concatenate(list(errors.values()))
    bins = np.logspace(np.log10(all_errors.min()), np.log10(all_errors.max()), 60)
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    for name, values in errors.items():
        if name != "validation (normal)":
            ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), histtype="step",
                    linewidth=1.8, label=name)
    ax.axvline(threshold, color="black", linestyle="--", label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("reconstruction MSE per image ([0, 1] pixels, log scale)")
    ax.set_ylabel("share of the set's images")
    ax.set_title(f"Reconstruction error of normal and unusual inputs ({bundle.dataset})")
    ax.legend(fontsize="small")

# %% [markdown]
# Read the table and the histogram together. Three effects decide what gets caught:
#
# - **Noise is rebuilt as a smooth blur**, close to its average grey. Its error is therefore roughly the
#   spread of the noise itself, whatever the model (computed below). It is flagged only if that is more
#   than the error of the worst-reconstructed *normal* images.
# - **The hardest normal images set the threshold.** If the model reconstructs some normal class badly
#   (the cell below prints which classes lie above the threshold on your run), those images make up the
#   top of the validation errors, the threshold rises to their level, and unusual inputs with a similar
#   error slip under it. A better-trained model, or one threshold per kind of image, helps.
# - **Simple inputs can look *more* normal than normal.** Flat colours are as far from a photograph as
#   noise is, yet they carry almost no information: a model that has learnt to paint smooth pictures
#   can paint a flat one easily, so their error *can* end up below that of real images, and then an error
#   threshold waves them through. Whether it does depends on the model: one that has not learnt colours
#   well, as after a short run, still flags many of them. The cell below says which way your run fell.
#   The failure itself is well documented for much stronger models: deep generative models can give
#   *higher* likelihood to simpler out-of-distribution images than to their own test images (Nalisnick et
#   al., "Do Deep Generative Models Know What They Don't Know?", ICLR 2019), and the score tracks the
#   input's complexity (Serrà et al., "Input Complexity and Out-of-distribution Detection with
#   Likelihood-based Generative Models", ICLR 2020).
#
# Inverted images depend on the data: on photographs (CIFAR-10 or `photos10`) a colour-flipped picture
# looks odd, while on `shapes10` light-on-dark and dark-on-light shapes are both normal, so inversion
# changes little there.

# %%
if ready:
    noise01 = suspects["uniform noise"].float() / 255
    print(f"spread of the noise (its variance): {noise01.var().item():.4f}; "
          f"median error on noise: {np.median(errors['uniform noise']):.4f}; threshold: {threshold:.4f}")
    above = test_scores.loc[test_scores["mse"] > threshold, "class"].astype(str).value_counts(normalize=True)
    print("normal test images above the threshold, by class:",
          ", ".join(f"{name} {share:.0%}" for name, share in above.head(3).items()))
    flat_flagged = float((errors["flat colours"] > threshold).mean())
    flat_verdict = ("most are waved through" if flat_flagged < 0.5 else "most are still flagged: this model has "
                    "not learnt to paint them better than real images")
    print(f"flat colours flagged: {flat_flagged:.0%} ({flat_verdict}); median error {np.median(errors['flat colours']):.4f} "
          f"against {np.median(errors['test (normal)']):.4f} for normal test images")

# %% [markdown]
# So reconstruction error is a useful signal, cheap to compute, but not a complete detector: test it
# against the kinds of anomaly you actually care about, and expect simple inputs to slip through.
#
# ## Part 3: walking through the code space
#
# Every image has a code. What lies *between* two codes? We take two test images, encode them, walk in a
# straight line from one code to the other, and decode each step. For comparison, the first row simply
# cross-fades the two pictures pixel by pixel.
#
# A third row decodes **random codes**, drawn with the same mean and spread per unit as the codes of the
# training images (fitted on the training split, as any generator's density is: the test images stay
# unseen): if the autoencoder were a generator, these would look like new pictures. This test is
# rough: it draws every unit on its own and so ignores how code units vary together; a code drawn this
# way can be far from every real code even when the code space holds good pictures. Notebook 09 gives
# the fair test, with a model trained so that its codes follow a known distribution.

# %%
if ready:
    first, second = (bundle.exemplars.subset([index]) for index in ENDPOINTS)
    detector_device = next(detector.parameters()).device
    fractions = torch.linspace(0, 1, INTERPOLATION_STEPS).view(-1, 1)            # (S, 1)
    with torch.inference_mode():
        ends = images.normalize(torch.cat([first.images, second.images]).to(detector_device))   # (2, 3, 32, 32)
        code_a, code_b = detector.encode(ends)                                    # (latent_dim,) each
        walk = detector.decode((1 - fractions.to(detector_device)) * code_a
                               + fractions.to(detector_device) * code_b).cpu()    # (S, 3, 32, 32)
        train_codes = metrics.encode(detector, bundle.train)                     # (N, latent_dim): fit on training codes
        mean, spread = train_codes.mean(dim=0), train_codes.std(dim=0)            # per unit, over the training set
        random_codes = mean + spread * torch.randn(INTERPOLATION_STEPS, LATENT_DIM, generator=generator)
        dreamt = detector.decode(random_codes.to(detector_device)).cpu()          # (S, 3, 32, 32)
    blend = (1 - fractions.view(-1, 1, 1, 1)) * ends[0].cpu() + fractions.view(-1, 1, 1, 1) * ends[1].cpu()

    rows = {"pixel cross-fade": blend, "straight line\nin code space": walk, "random codes": dreamt}
    fig = plotting.labelled_grid(
        torch.cat(list(rows.values())), nrow=INTERPOLATION_STEPS, row_labels=list(rows),
        column_labels=[f"{fraction:.2f}" for fraction in fractions.flatten().tolist()],
        xlabel="position along the walk (0 = first image, 1 = second)",
        title=f"{first.classes[int(first.labels)]} → {second.classes[int(second.labels)]} ({bundle.dataset})")

# %% [markdown]
# The middle of the code-space walk is rarely a convincing picture of anything: often a murky mix, much
# like the pixel cross-fade, sometimes a shape that belongs to neither end. The random codes usually look
# worse (notebook 09 puts numbers on that, and on fairer ways to draw them).
#
# The reason is what the training asked for. The encoder only ever had to place *real* images somewhere
# useful for the decoder, and nothing asked it to fill the space between them. The codes of real images
# occupy a thin, oddly shaped region of the 200-dimensional space; a straight line between two of them,
# or a random point, soon leaves it, and the decoder has never learnt what to do there.
#
# Making the code space something you can sample from takes an extra ingredient: a **variational
# autoencoder** (VAE, notebook 09) pushes the codes to follow a known distribution, so that random draws
# and paths between images decode to pictures of the data's kind; on CIFAR-like images those are still
# blurry, for the reasons of notebook 04. GANs and diffusion models, mentioned in notebook 04, are
# the other route to generating images.

# %% [markdown]
# ## Summary
#
# - The article's ReLU on the code can leave units dead (zero for every image), shrinking the bottleneck
#   in practice; without an output activation, outputs spill outside the targets' range [-1, 1]. Fixed here
#   with `code_activation=None` and `output_activation="tanh"`; the tables above compare both models.
# - Reconstruction error flags inputs unlike the training data, with a threshold chosen on validation
#   images. Noise is caught; simple inputs such as flat colours *can* be reconstructed well enough to slip
#   through (the cell above says how many did on your run: a model that has learnt colours well lets more
#   through).
# - Decoding a straight line between two codes, or random codes, rarely gives realistic pictures: a plain
#   autoencoder organises its codes for reconstruction, not for generation. VAEs, GANs and diffusion models
#   are built for that.
#
# Next, [06 Rate and distortion](06_rate_distortion.ipynb) asks whether the autoencoder is any good as a
# compressor: at equal bits per image, against PCA, JPEG and a thumbnail.

# %% [markdown]
# ## Exercises
#
# 1. Train the article model and the fixed variant with two more seeds each
#    (`article_config.replace(seed=1)`, and `seed=1` for
#    `fixed_config`'s settings). Is the PSNR difference between them larger than the spread across seeds?
#    (Four runs, about 9 minutes on the workshop profile. Look for: the seed-to-seed spread of each model
#    against the article-to-fixed difference, and the dead-unit count per seed.)
# 2. Try `code_activation=None` with `output_activation=None` (only one fix at a time). Which of the two
#    fixes matters more on your data? (One run, about 2 minutes. Look for the dead units and the PSNR.)
# 3. Add another set of unusual inputs to the anomaly table: test images rotated by 90° (`torch.rot90`),
#    or the test images of one class only. Which are caught?
# 4. Lower `FALSE_ALARM_RATE` to 0.01. How many noise images are still flagged? What is the trade-off?
# 5. Change `ENDPOINTS` to two exemplars of very different colour. Does the code-space walk pass through
#    anything the pixel cross-fade does not?
# 6. (Code, in Part 1 above.) Write `count_dead_units`; the check tries it on codes with a known answer.
