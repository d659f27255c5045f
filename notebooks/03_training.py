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
# convae · [← 02 Architecture](02_architecture.ipynb) · **03 Training** · [04 Bottleneck →](04_bottleneck.ipynb) · [all notebooks](../README.md#the-series)
#
# # 03 · Training: teaching the network to rebuild its input
#
# We have the data (notebook 01) and the network (notebook 02). Now we train the article's model,
# with a bottleneck of 200, and watch it go from a featureless patch to recognisable pictures.
#
# **What you will learn**
#
# - what one training step does, and how the training loop fixes three mistakes in the article's
#   loop (no shuffling, a misleading "epoch loss", validating on the test set);
# - how a *run folder* saves the trained model so later notebooks reuse it instead of training again,
#   and how to stop training and resume it later without losing anything;
# - how to read the loss curves, per batch and per epoch, for training and validation;
# - how to watch the reconstructions improve epoch by epoch, with a slider or a static picture;
# - how to measure the finished model on the test set (MSE, PSNR, SSIM).
#
# **Run time** (one model is trained here; a second run of the notebook loads it in seconds)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | 10 s (measured by `python -m convae_utils series` on a 2-core CPU, stand-in data; see the README) |
# | `workshop` | a CPU laptop: 12,000 images, 5 epochs | 3.4 min (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's experiment | not measured on a CPU (about 14 min per model at the workshop speed, before scoring); seconds on a GPU: see the README's GPU section |
#
# The workshop figures were measured on a quiet 2-core machine (about 530 images per second for
# latent 200); a machine shared with other jobs can take several times longer.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import inspect

import pandas as pd
from IPython.display import HTML, display

from convae_utils import colour, data, exercises, images, metrics, models, plotting, runs, settings, training, widgets

# %% [markdown]
# ## Parameters
#
# Everything about the run comes from the profile (`CONVAE_PROFILE`): how many images, how many
# epochs, the batch size. `settings.from_env` returns them as one record, a `RunSettings`: the profile is
# a preset of a few overrides, and the learning rate (1e-3) and the other defaults are the article's.

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0                                   # seeds the weights, the validation split and the shuffling
LATENT_DIM = 200                           # the article's first bottleneck
config = settings.from_env(latent_dim=LATENT_DIM, seed=SEED)   # the profile's settings, one record

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)
print()
print(config)
print(f"{len(bundle.train):,} training images, {len(bundle.val):,} validation images, "
      f"{len(bundle.test):,} test images")

# %% [markdown]
# ## What one training step does
#
# 1. take a batch of images (64 of them), normalise them to [-1, 1];
# 2. run them through encoder and decoder to get reconstructions;
# 3. measure the **mean squared error** (MSE) between reconstructions and originals: the average,
#    over every pixel and channel, of the squared difference;
# 4. let autograd compute how each weight affects that error, and let the **Adam** optimiser nudge
#    every weight a little in the direction that lowers it.
#
# One pass over all training images is an **epoch**. After each epoch the loop measures the loss on
# the validation images (without learning from them) and reconstructs the ten exemplars, so we can
# watch progress.

# %% [markdown]
# **Your turn (exercise 03.6, about 5 minutes).** The loop does the bookkeeping (zero the gradients,
# `backward()`, the optimiser's step); what is specific to *this* model is only how a batch becomes a
# loss. Write that part as a **step**, `step(model, batch) -> (loss, logs)`: the MSE between the model's
# reconstruction of the batch and the batch itself, and a dict of anything else worth logging (nothing
# here: `{}`). Written this way, another model with another loss (a denoiser, a VAE) brings its own step
# and the loop stays as it is. The check runs your step on a tiny model and a random batch, and compares
# it with the package's loss; the package's own step is printed right after.

# %%
def mse_step(model, batch):
    """batch: float (B, 3, 32, 32) in [-1, 1]. Returns (loss: a 0-d tensor to minimise, logs: a dict)."""
    # 1. reconstruct the batch with the model; 2. the mean squared error against the batch itself;
    # 3. return the loss and an empty dict (nothing else to log). No backward() here: the loop does it.
    ...
    raise NotImplementedError("Exercise 03.6: compute the MSE between model(batch) and batch, return (loss, logs)")


mse_step = exercises.check_code("03.6", mse_step)
first_batch = images.normalize(bundle.train.images[:config.batch_size])       # (B, 3, 32, 32) in [-1, 1]
loss, logs = mse_step(models.build_autoencoder(LATENT_DIM, seed=SEED), first_batch)
print(f"an untrained model's loss on one batch: {loss.item():.4f} (the start of the loss curve below)")

# %% [markdown]
# Here it is, whole, as the package runs it, in two parts. The model's **step** says what to minimise
# on one batch: for the article, the MSE between reconstruction and original (`training.mse_step`). It
# returns the loss and anything else worth logging (nothing here; later models log more).

# %%
print(inspect.getsource(training.mse_step))

# %% [markdown]
# `training.train_step` does the rest of the four points: normalise the batch, ask the step for the
# loss, compute the gradients, let Adam update the weights. It works for any step: notebook 07's
# denoisers, notebook 08's model and notebook 09's variational autoencoder each bring their own step,
# and this code does not change.

# %%
print(inspect.getsource(training.train_step))

# %% [markdown]
# An epoch is nothing more than that update over every batch of a shuffled order, `training.train_epoch`:

# %%
print(inspect.getsource(training.train_epoch))

# %% [markdown]
# And `training.fit` is the whole loop: epochs of updates, the validation loss after each, and
# **callbacks**: small objects called at fixed moments (the start, after each step, after each
# epoch, on interruption) that add what a real run needs without changing what a step does:
# checkpoints and exact resume, the Stop button, NaN checks, progress bars, the exemplars' pictures
# after each epoch (`convae_utils.callbacks`, `convae_utils.checkpoints`). What only makes it faster
# (memory layout, the fused Adam, GPU graphs) lives apart, in `convae_utils.speed`.

# %%
print(inspect.getsource(training.fit))

# %% [markdown]
# Three things in it differ from the article, on purpose:
#
# - **Shuffling.** The article's data loader served the images in the same order every epoch, so
#   every epoch was made of exactly the same batches in the same sequence. The updates are then no
#   longer random samples: the same batches always come last and pull the weights their way, and data
#   stored sorted by class would train very badly. Here `epoch_order` draws a fresh random order each
#   epoch. It depends only on the seed and the epoch number, which is also what lets an interrupted run
#   resume with exactly the same batches (its source is printed below).
#
# - **The epoch loss is the mean over the epoch.** The article printed the loss of the *last batch*
#   of each epoch and called it the epoch's loss. One batch of 64 images is a noisy sample; the mean
#   over all batches describes the whole epoch. (The weights change during the epoch, so the mean runs a
#   little behind the end-of-epoch model; the validation loss, measured after the epoch, does not.) We
#   compare both below.
#
# - **Validation uses held-out training images, never the test set** (see notebook 01).
#
# And one for speed: the images stay as `uint8` and each batch is normalised right before the
# forward pass, instead of running PIL conversions for every image in every epoch.

# %%
print(inspect.getsource(training.epoch_order))

# %% [markdown]
# ## Train, or load what was trained before
#
# `runs.train_or_load` wraps `fit` with a **run folder** under `runs/` (or `$CONVAE_RUNS_DIR`). It
# does one of three things:
#
# - the folder holds a **finished** run with these settings: it loads it in seconds and trains nothing
#   (notebooks 04 and 05 rely on this to reuse the model trained here);
# - the folder holds an **interrupted** run: it resumes where it stopped;
# - otherwise it trains from scratch, saving a checkpoint after every epoch.
#
# > **Stopping and resuming.** Training on a laptop takes a while. You can press the ■ Stop button
# > (or *Kernel → Interrupt*) at any time: the loop finishes the batch it is on, saves a checkpoint
# > and the cell ends with a message. Nothing is lost. **Run the cell again** and it continues from that
# > exact batch; the final model is the same as if you had never stopped. The cells after it notice an
# > unfinished run and tell you to come back here.
# >
# > Preparing a workshop? Train the series' three models ahead of time, headless, and copy the `runs/`
# > folder to each laptop:
# >
# > ```bash
# > python -m convae_utils train --profile workshop --latent-dim 200     # notebook 03
# > python -m convae_utils train --profile workshop --latent-dim 1000    # notebook 04
# > python -m convae_utils train --profile workshop --latent-dim 50      # notebook 06 (with 200 and 1000)
# > python -m convae_utils train --profile workshop --latent-dim 200 --code-activation none --output-activation tanh   # notebook 05
# > ```

# %%
run = runs.train_or_load(config, data=bundle)

# %%
seconds = sum(run.history.epoch_seconds)
if run.complete:
    trained = (f"{run.history.epochs_done} epochs on {bundle.dataset}, {seconds:,.0f} s of training "
               f"({run.history.epochs_done * len(bundle.train) / max(seconds, 1e-9):,.0f} images/s, "
               f"on {run.history.meta.get('device', '?')})")
    # a loaded run says when its training happened: earlier, not in this cell
    print(f"Trained earlier and loaded now: {trained}." if run.loaded else f"Trained now: {trained}.")
else:
    print(f"Training was interrupted after {run.history.epochs_done} of {config.num_epochs} epochs. "
          f"The progress is saved in {run.run_dir}.\n"
          "Re-run the training cell above to resume; the cells below show what exists so far.")

# %% [markdown]
# ## Reading the loss curves
#
# The light line is the loss of every single batch: jumpy, because each batch holds different images.
# The x axis counts epochs completed, so epoch 2's batches lie between 1 and 2. The dots are the mean of
# each epoch's batches, drawn in the middle of the epoch (at 1.5 for epoch 2), because they average the
# network as it was throughout the epoch. The squares are the validation loss, measured once on the
# network at the end of each epoch, so they sit at the epoch's end (at 2). Early on a square can lie
# below its own epoch's dot: the network at the end of an epoch is better than it was on average during it.

# %%
if run.history.train_batch_loss:
    fig = plotting.loss_curves(run.history)
else:
    print("No batch has finished yet: re-run the training cell.")

# %% [markdown]
# A few things to look for:
#
# - the steep drop in the first epoch: the network learns the average colours and rough layout fast;
# - the slow decline afterwards: detail is much harder to learn than layout, and with the article's
#   settings the loss is usually still falling when training stops, so more epochs would help;
# - the validation loss close to the training loss: the network is not memorising its training
#   images. A validation curve that turns upward while training keeps falling would be the sign of
#   over-fitting.
#
# Here is the difference between the article's "epoch loss" (the last batch) and the epoch mean:

# %%
per_epoch = run.history.batches_per_epoch
losses = pd.DataFrame({
    "last batch (the article's number)": [run.history.train_batch_loss[(epoch + 1) * per_epoch - 1]
                                          for epoch in range(run.history.epochs_done)],
    "epoch mean": run.history.train_epoch_loss,
    "validation": run.history.val_epoch_loss,
}, index=pd.RangeIndex(1, run.history.epochs_done + 1, name="epoch"))
losses.round(4)

# %% [markdown]
# The last batch lands above or below the mean by chance. In the first epoch the two differ most,
# because the mean still includes the very first batches, when the network knew nothing. The epoch mean
# is the honest summary of an epoch, and the validation loss the honest measure of the model at the end
# of it; when you compare models or epochs, compare those, not single batches.
#
# ## Watching the reconstructions improve
#
# After every epoch the loop rebuilt the ten exemplars. Drag the slider, or press ▶ to play the
# epochs as a film: the top row holds the originals, the bottom row the reconstructions after that
# epoch.

# %%
if run.history.reconstructions:
    display(widgets.epoch_scrubber(run.history))
else:
    print("No epoch has finished yet: re-run the training cell.")

# %% [markdown]
# The slider switches the pictures in your browser, not in the kernel, so it also works in the HTML
# copy that `make run` writes, as long as that page can load the widget library from the internet.
# Reopened later, once its kernel has gone, the slider's place says "Error displaying widget: model not
# found": re-run the cell above to bring it back (the player below works without a kernel).
# For a page read offline, or a viewer that shows no widgets, here is the same story as one static
# picture, one row per epoch (with the original on top), and as a small player that needs no kernel,
# no widget library and no network:

# %%
if run.history.reconstructions:
    fig = plotting.reconstruction_strip({f"latent {LATENT_DIM}": run.history})

# %%
if run.history.reconstructions:
    display(HTML(widgets.animation_html(run.history)))

# %% [markdown]
# In the article (CIFAR-10, the `full` profile) the reconstructions already show the right colours and
# rough shapes after the first epoch, and later epochs sharpen edges and bring back some detail. Compare
# with your strip: on a shorter run, what is learnt first can differ. Either way the pictures stay
# soft. Notebook 04 asks whether a bigger bottleneck helps, and why even a very good autoencoder trained
# with MSE gives blurry pictures.
#
# On the stand-in `photos10` these pictures are patches of ten photographs, not CIFAR-10 photos; run
# the notebook with CIFAR-10 on disk to see the real thing.
#
# > **Why colour can be learnt here, and was not on an earlier stand-in.** An earlier version of `shapes10`
# > painted every shape in random colours, and the same model returned its pictures in *grey*: nothing in
# > such an image predicts its colours, and colour carried little of the pixel error, so on a short
# > budget the model spent its updates on edges and returned the average colour. Dead code units,
# > initialisation and the code's ReLU made no difference when we tested them. In photographs, colour
# > goes with content (a blue sky, an orange retina), so it is learnt along with the shapes; `shapes10`
# > now gives each class its own hue for the same reason. The cell below measures whether it was learnt on
# > your run: how much of the originals' colour (chroma) the last epoch's reconstructions keep.

# %%
if run.history.reconstructions:
    colour_check = colour.colour_report(run.history.exemplars, run.history.last_reconstructions)
    print(colour.format_colour_report(colour_check))
    if config.profile == "smoke":
        print("Smoke profile: a few hundred images for seconds. These numbers test the code, not the model "
              "(the workshop and full runs are the ones whose colour the text describes).")
    elif not colour_check["passes"]:
        print("On this run colour was not learnt well enough yet: the pictures above say how far it got.")

# %% [markdown]
# ## What the run folder holds
#
# Everything this run produced is on disk, so you can look at it without this notebook, copy it to
# another machine, or load it later with `runs.load_run(folder)`:
#
# | file | contents |
# |---|---|
# | `config.json` | the settings, and the library versions that produced the run |
# | `checkpoint.pt` | weights, optimiser state and history (written after every epoch) |
# | `history.json` | all losses and timings as plain JSON |
# | `metrics.json`, `per_image.csv` | test-set metrics, overall, per class and per image |
# | `epochs/epoch_NN.png` | the exemplar grid after each epoch |
# | `loss_curves.png`, `reconstruction_strip.png` | the figures above |

# %%
print(run.run_dir)
for path in sorted(run.run_dir.rglob("*")):
    if path.is_file() and not path.name.startswith("."):
        print(f"  {path.relative_to(run.run_dir).as_posix():<28} {path.stat().st_size / 1e3:8.1f} kB")

# %% [markdown]
# ## How good is it? Test-set metrics
#
# Once training has finished, `train_or_load` scored every test image once, with three measures on
# the usual [0, 1] pixel scale:
#
# - **MSE**: mean squared error per pixel; lower is better. (The training loss is the same quantity on
#   the [-1, 1] scale, hence four times larger.)
# - **PSNR**: peak signal-to-noise ratio, `10 · log10(1 / MSE)` in decibels, computed **per image** and
#   then averaged (the mean per-image PSNR); higher is better, and every 3 dB more means half the MSE.
#   The PSNR of the *mean* MSE, which papers often quote, is lower: notebook 06 gives both.
# - **SSIM**: structural similarity, which compares local brightness, contrast and structure in small
#   windows; 1 means identical. It tracks what people notice (edges, textures) better than MSE does.
#
# The first row is the whole test set; the others break it down by class.

# %%
if run.complete:
    test_metrics = metrics.summarize(run.per_image)        # "all" first, then classes in label order
    overall = test_metrics.loc["all"]
    print(f"{bundle.dataset}, {int(overall['images']):,} test images, latent {LATENT_DIM}: "
          f"MSE {overall['mse']:.4f}, PSNR {overall['psnr']:.2f} dB, SSIM {overall['ssim']:.3f}")
    display(test_metrics.round(4))
else:
    print("The run is not finished, so it has no test metrics yet: re-run the training cell to resume.")

# %% [markdown]
# Per class, the numbers usually differ a lot: smooth, uniform pictures tend to reconstruct well and busy
# textures badly. Check which classes lead and trail in your table. These are the numbers the article
# never reported; notebook 04 uses them to compare two bottlenecks.

# %% [markdown]
# ## Summary
#
# - Training minimises the MSE between each image and its reconstruction, with Adam at a learning rate
#   of 1e-3 and batches of 64.
# - `training.fit` shuffles every epoch from a seeded order, reports the *mean* loss of each epoch, and
#   validates on held-out training images. Fixed here: the article did not shuffle, printed the last
#   batch's loss, and validated on its test set.
# - `runs.train_or_load` saves everything in a run folder, loads a finished run instead of retraining,
#   and resumes an interrupted one exactly: press Stop whenever you need to, re-run the cell later.
# - The loss curves drop fast, then slowly; the validation loss follows the training loss.
# - The epoch slider (with a static strip and an animation for readers without a kernel) shows
#   reconstructions sharpening, but staying soft.
# - The test-set table gives MSE, PSNR and SSIM overall and per class.
#
# Next, [04 Bottleneck](04_bottleneck.ipynb) trains a second model with a code five times larger.

# %% [markdown]
# ## Exercises
#
# 1. Stop the training cell halfway through an epoch (■ Stop), run the next cell to see the message,
#    then re-run the training cell. Where does the progress bar start?
# 2. In the loss table, how far is the last batch's loss from the epoch mean, at most? Would you have
#    drawn a different conclusion from the last-batch numbers?
# 3. Train with a learning rate ten times higher, into a folder of its own so it does not clash with
#    the run above:
#    `runs.train_or_load(config.replace(lr=1e-2), data=bundle, run_dir=settings.runs_dir() / "lr-1e-2")`. Compare the loss curves. What happens with
#    `lr=1e-1`? (About 2 minutes per run on the workshop profile. Look for: does the loss fall faster at
#    first, then level off higher or jump about? Does it still fall at all at `lr=1e-1`, and do the
#    reconstructions still differ from image to image, or collapse to one flat colour?)
# 4. Which class has the lowest PSNR in the test table? Look at its exemplar in the strip and explain
#    why it might be hard to reconstruct.
# 5. Open `epochs/epoch_01.png` and the last epoch's PNG from the run folder side by side. Which
#    details appear only late in training?
# 6. (Code, above the training cell.) Write the training step `mse_step(model, batch) -> (loss, logs)`;
#    the check compares it with the package's loss and tells you what differs.
