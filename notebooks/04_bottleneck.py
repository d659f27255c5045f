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
# convae · [← 03 Training](03_training.ipynb) · **04 Bottleneck** · [05 Beyond →](05_beyond.ipynb) · [all notebooks](../README.md#the-series)
#
# # 04 · The bottleneck: does a bigger code give better pictures?
#
# The code is the only thing the decoder gets to see. A code of 200 numbers summarises an image of
# 3,072; a code of 1,000 has five times the room. In this notebook we train the same network with both
# bottlenecks and compare them fairly: same data, same epochs, same seed, numbers on the same test set.
#
# **What you will learn**
#
# - how to compare two models side by side: loss curves, reconstructions epoch by epoch, test metrics
#   overall and per class;
# - what the larger bottleneck buys, and what it costs in parameters;
# - why both models still produce blurry pictures: what this run's numbers point to (too little training
#   for this architecture), and what the MSE loss adds on top (it rewards the average of plausible pictures);
# - what autoencoders are good for despite the blur.
#
# **Run time** (the latent-200 model from notebook 03 is reused; only latent 1000 is trained here)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | 11 s (measured by `python -m convae_utils series` on a 2-core CPU, stand-in data; see the README) |
# | `workshop` | a CPU laptop: 12,000 images, 5 epochs | 4.8 min (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's experiment | not measured on a CPU (about 20 min: latent 1000 trained at ~380 images/s in the workshop run, before scoring); seconds on a GPU: see the README's GPU section |
#
# The workshop figures were measured on a quiet 2-core machine (about 530 images per second for
# latent 200); a machine shared with other jobs can take several times longer.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import pandas as pd
import torch
from IPython.display import HTML, display

from convae_utils import data, exercises, images, metrics, models, plotting, runs, settings, widgets
from convae_utils.codecs import bits

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0
LATENT_DIMS = (200, 1000)                  # the article's two bottlenecks
config = settings.from_env(seed=SEED)      # the profile's settings (see notebook 01)
run_configs = {f"latent {latent_dim}": config.replace(latent_dim=latent_dim) for latent_dim in LATENT_DIMS}
MAX_SHIFT = 2                              # pixels, for the blur experiment at the end

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)

# %% [markdown]
# ## Two models, one recipe
#
# `runs.train_or_load` finds the latent-200 run that notebook 03 saved and loads it; if it is not there
# (you started here, or changed the profile), it trains it. The latent-1000 model is trained the first
# time and loaded afterwards. As in notebook 03, you can press ■ Stop at any time and re-run the cell
# later: training resumes where it stopped. The package shows a `CodeSizeWarning` for latent 1000 (its
# float32 code holds more bits than the image): expected here, since that larger bottleneck is the
# comparison this notebook makes on purpose.

# %%
trained = {}
for name, run_config in run_configs.items():
    run = runs.train_or_load(run_config, data=bundle)
    trained[name] = run
    print(f"{name}: {'loaded from' if run.loaded else 'trained into'} {run.run_dir}")
    if not run.complete:
        print(f"{name} was interrupted: re-run this cell to resume it (and train the rest).")
        break
all_complete = len(trained) == len(run_configs) and all(run.complete for run in trained.values())
histories = {name: run.history for name, run in trained.items()}

# %% [markdown]
# ## What each bottleneck buys, and costs
#
# The compression factor is the number of values in an image divided by the code size; the code size
# in bits is what storing it as float32 costs (an image is 24,576 bits: latent 1000 is larger). The
# price of a larger code is paid almost entirely in the two `Linear` layers next to it (notebook 02).

# %%
values_per_image = bundle.test.images[0].numel()          # 3 x 32 x 32 = 3,072
costs = pd.DataFrame({
    name: {"latent_dim": run.settings.latent_dim,
           "compression": f"{values_per_image / run.settings.latent_dim:.1f}x",
           "code size": bits.bits_summary(run.settings.latent_dim)["text"],
           "parameters": f"{models.count_parameters(run.model):,}",
           "training time (s)": f"{sum(run.history.epoch_seconds):,.0f}"}
    for name, run in trained.items()
}).T
costs

# %% [markdown]
# ## Loss curves, overlaid
#
# One colour per model; light lines per batch, dots for the epoch means (in the middle of each epoch),
# squares for validation (at each epoch's end).

# %%
fig = plotting.loss_curves(histories)

# %% [markdown]
# In the article's experiment the larger bottleneck reaches a lower loss and keeps falling more steeply:
# with more room in the code, there is more detail left to learn, and neither curve has flattened by the
# last epoch. Check whether your curves tell the same story.
#
# ## Reconstructions, epoch by epoch, one model above the other
#
# One slider moves both models together, one above the other, so you can compare them at the same
# point in training.

# %%
if all_complete:
    display(widgets.epoch_scrubber(histories))
else:
    print("A run is unfinished: re-run the training cell above to resume it.")

# %% [markdown]
# The same without widgets (offline, or in a viewer that shows none): a static strip (one row per
# epoch, the two models side by side) and a small player that needs no kernel and no network. (A
# reopened notebook whose kernel has gone shows "Error displaying widget: model not found" in the
# slider's place: re-run the cell above to bring it back.)

# %%
if all_complete:
    fig = plotting.reconstruction_strip(histories)

# %%
if all_complete:
    display(HTML(widgets.animation_html(histories)))

# %% [markdown]
# With CIFAR-10, the latent-1000 column shows more of each object's outline and colour patches; with a
# stand-in (`photos10`: patches of ten photographs; `shapes10`: drawn shapes) the pictures are not
# CIFAR-10 classes, but the comparison reads the same way.
#
# ## Test metrics: overall and per class
#
# `metrics.compare_models` lines up the per-image scores of both models on the same test images: one row
# for the whole set (`all`), then one per class.

# %%
if all_complete:
    comparison = metrics.compare_models({name: run.per_image for name, run in trained.items()})
    display(comparison.round(4))
else:
    print("A run is unfinished, so there is nothing to compare yet: re-run the training cell above.")

# %%
if all_complete:
    fig = plotting.metrics_by_class(comparison, metric="psnr")

# %%
if all_complete:
    fig = plotting.metrics_by_class(comparison, metric="ssim")

# %% [markdown]
# **Your turn (exercise 04.5, about 5 minutes).** The PSNR column is computed per image and then
# averaged. Write that per-image PSNR yourself: the images arrive on the model's [-1, 1] scale, and PSNR
# is quoted on the [0, 1] pixel scale with a peak of 1. The check compares your function with
# `metrics.per_image_psnr` on a few images and names the usual slips (the scale, one number for the
# whole batch). The cell then scores the ten exemplars with your function, for both models.

# %%
def psnr_per_image(reconstructions, originals):
    """reconstructions, originals: (N, 3, 32, 32) on [-1, 1]. Returns (N,): PSNR in dB on the [0, 1] scale."""
    # 1. map both to [0, 1]; 2. the MSE of each image (mean over its channels and pixels);
    # 3. PSNR = 10 * log10(1 / MSE).
    ...
    raise NotImplementedError("Exercise 04.5: return one PSNR (dB) per image, on the [0, 1] pixel scale")


psnr_per_image = exercises.check_code("04.5", psnr_per_image)
if all_complete:
    exemplar_inputs = images.normalize(bundle.exemplars.images)                   # (10, 3, 32, 32)
    for name, run in trained.items():
        model_device = next(run.model.parameters()).device
        with torch.inference_mode():
            rebuilt = run.model.eval()(exemplar_inputs.to(model_device)).cpu()
        print(f"{name}: mean PSNR over the 10 exemplars {psnr_per_image(rebuilt, exemplar_inputs).mean():.2f} dB")

# %% [markdown]
# In words, computed from the table above:

# %%
if all_complete:
    small, large = list(trained)
    psnr = comparison.xs("psnr", axis=1, level="metric")
    ssim = comparison.xs("ssim", axis=1, level="metric")
    gain = (psnr[large] - psnr[small]).drop("all").sort_values()
    parameter_ratio = models.count_parameters(trained[large].model) / models.count_parameters(trained[small].model)
    print(f"On {bundle.dataset} ({len(bundle.test):,} test images):")
    print(f"  PSNR {psnr.loc['all', small]:.2f} dB -> {psnr.loc['all', large]:.2f} dB "
          f"({psnr.loc['all', large] - psnr.loc['all', small]:+.2f} dB), "
          f"SSIM {ssim.loc['all', small]:.3f} -> {ssim.loc['all', large]:.3f}, "
          f"for {parameter_ratio:.1f}x the parameters.")
    print(f"  largest PSNR change: {gain.index[-1]} ({gain.iloc[-1]:+.2f} dB); "
          f"smallest: {gain.index[0]} ({gain.iloc[0]:+.2f} dB)")
    print(f"  hardest class for both: {psnr.drop('all').mean(axis=1).idxmin()}; "
          f"easiest: {psnr.drop('all').mean(axis=1).idxmax()}")
    ssim_gain = (ssim[large] - ssim[small]).drop("all")
    print(f"  {large} has the higher PSNR in {int((gain > 0).sum())} of {len(gain)} classes "
          f"and the higher SSIM in {int((ssim_gain > 0).sum())} of {len(ssim_gain)}")

# %% [markdown]
# ## Why are both still blurry?
#
# Even the larger code gives soft pictures. First, what this run says: a code five times larger gained
# the PSNR printed above, however large or small that is on your run, while PCA, the best *linear* code,
# reconstructs these images far better with the same number of values: notebook 06 measures the gap on
# your run, and the README quotes it for the workshop run with the command that prints it again
# (`python -m convae_utils.tools.rate_distortion --profile workshop --dataset photos10`). A loss cannot
# explain a gap that PCA, trained on the same squared error, does not have. On this budget the network is **under-fitted**: five epochs are far from
# enough for this architecture (notebook 03's losses were still falling), and the fully connected
# bottleneck makes its code hard to learn. More room in the code cannot help a model that has not yet
# learnt to use the room it has.
#
# The loss still matters, for the blur that would remain in a model that did fit well. A code of a few
# hundred numbers cannot pin down every detail of the image: many
# slightly different pictures (the edge one pixel further left, the fur a little lighter) are
# consistent with the same code. Faced with that uncertainty, the prediction that minimises the
# *squared* error is the **average** of all those plausible pictures, and an average of slightly
# different pictures is a blurry picture. The decoder is doing exactly what we asked.
#
# We can see this without any network. Take one exemplar and make a few copies shifted left and right by
# a pixel or two: stand-ins for "the same picture, detail uncertain". Which single guess has the lowest
# MSE against all of them, one of the sharp copies or their blurry average?

# %%
originals = images.normalize(bundle.exemplars.images)                    # (10, 3, 32, 32)
edges = (originals[..., 1:] - originals[..., :-1]).abs().mean(dim=(1, 2, 3))
chosen = int(edges.argmax())                                           # the exemplar with the most vertical edges
shifts = range(-MAX_SHIFT, MAX_SHIFT + 1)
copies = torch.stack([originals[chosen].roll(shift, dims=-1) for shift in shifts])   # (5, 3, 32, 32)
average = copies.mean(dim=0, keepdim=True)                             # (1, 3, 32, 32)

sharp_error = ((copies - originals[chosen]) ** 2).mean().item()
average_error = ((copies - average) ** 2).mean().item()
print(f"exemplar: {bundle.exemplars.classes[chosen]}, shifted by {list(shifts)} pixels")
print(f"MSE of the sharp original against all copies: {sharp_error:.4f}")
print(f"MSE of the blurry average against all copies: {average_error:.4f}  <- the lower one")

fig = plotting.labelled_grid(torch.cat([copies, average]), nrow=len(copies) + 1,
                             column_labels=[f"shift {shift:+d}" for shift in shifts] + ["average"],
                             title="plausible versions, and the guess MSE prefers")

# %% [markdown]
# The average wins on MSE, and it is the blurriest picture in the row. A bigger bottleneck narrows the
# uncertainty, so a well-trained model with a larger code can be sharper, but it never removes it, so
# the gain shrinks as the code grows. In the limit, a code as large as the image could just copy it, and
# would have learnt nothing worth having.
#
# Models built to produce *sharp* images replace the pixel-wise loss with something that rewards
# realism: **GANs** train a second network to tell real from generated pictures, and **diffusion
# models** learn to remove noise step by step. (Perceptual losses, comparing images in the feature space
# of a trained classifier, are a middle road.)
#
# ## So what are autoencoders for?
#
# Blurry reconstructions are not the point. An autoencoder learns, without any labels, a compact code
# that keeps what is typical of the data. That is useful for:
#
# - **denoising**: train it to rebuild clean images from corrupted ones;
# - **anomaly detection**: an input unlike the training data tends to be reconstructed badly, so a
#   large reconstruction error is a warning sign (notebook 05 tries this, including where it fails);
# - **compression and features**: the code is a small summary that other models can use, for search,
#   clustering or as a starting point for a classifier.

# %% [markdown]
# ## Summary
#
# - Both bottlenecks were trained with the same data, epochs and seed; latent 200 was reused from
#   notebook 03's run folder.
# - Latent 1000 compresses about 3x instead of about 15x, and pays for it with several times the
#   parameters (the table above), almost all in the two `Linear` layers.
# - What it gained on this run is printed above, overall and per class: a larger code need not win in
#   every class (the last line above counts the classes it won, by PSNR and by SSIM), and five times the
#   code can be set against the gap to PCA that notebook 06 measures.
# - Both stay blurry. On this budget mostly because the model is under-fitted (PCA does far better with
#   the same number of values, notebook 06); and even a model that fits well is pulled towards blur by
#   MSE, which rewards the average of all plausible images. Sharp generators use other losses (GANs,
#   diffusion).
# - Autoencoders earn their keep in denoising, anomaly detection and compact features.
#
# Next, [05 Beyond](05_beyond.ipynb) fixes the article's activations and puts the model to work.

# %% [markdown]
# ## Exercises
#
# 1. Train a third bottleneck, e.g. `config.replace(latent_dim=50)`, and
#    add it to `trained`. Plot PSNR against `latent_dim`. Where do the returns diminish? (About 2 minutes
#    on the workshop profile; notebook 06 trains it too. Look for how little the PSNR moves between 50,
#    200 and 1000 on this budget.)
# 2. Repeat the blur experiment with `MAX_SHIFT = 4`. How do the two errors change, and the picture?
# 3. Which class gains most from the larger bottleneck? Look at its exemplar: what kind of detail does it
#    have?
# 4. The comparison uses one seed. Train latent 200 with `seed=1` into its own folder
#    (`run_dir=settings.runs_dir() / "latent200-seed1"`). How much do the test numbers move? Is the
#    difference between the bottlenecks larger than that? (About 2 minutes on the workshop profile.
#    Look for: the overall PSNR change between seeds against the 200-to-1000 change above, and whether
#    the per-class ranking holds.)
# 5. (Code, in "Test metrics" above.) Write `psnr_per_image`; the check compares it with the package's.
