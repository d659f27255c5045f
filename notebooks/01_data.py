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
# convae · **01 Data** · [02 Architecture →](02_architecture.ipynb) · [all notebooks](../README.md#the-series)
#
# # 01 · Preparing the data: CIFAR-10 for an autoencoder
#
# This series builds a **convolutional autoencoder**: a network that squeezes a picture through a
# narrow opening and then tries to paint it again from what got through. Before any network,
# we need pictures, and we need them in a shape and a numeric range the network can work with.
# That is this notebook.
#
# **What you will learn**
#
# - what an autoencoder is, and why its "label" is the image itself;
# - what CIFAR-10 contains, and how to look at it class by class;
# - how pixels become model inputs (normalisation to [-1, 1]) and why we keep the raw pixels as
#   compact `uint8` tensors and normalise one batch at a time;
# - why we split the data three ways (train, validation, test) and what goes wrong when the test
#   set doubles as the validation set.
#
# **Run time** (whole notebook, no training here)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | 9 s (measured by `python -m convae_utils series` on a 2-core CPU, stand-in data; see the README) |
# | `workshop` | a CPU laptop: 12,000 images, 5 epochs | 13 s (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's experiment | about the same (no training) |

# %% [markdown]
# ## The idea
#
# A trained image classifier such as VGG-16 turns a 224×224 photograph into a block of
# 7×7×512 = 25,088 numbers, a *feature vector* that describes what is in the picture. If a network
# can learn that road from pixels to features, another network can learn the road back. Put the two
# end to end and you have an autoencoder:
#
# - the **encoder** reads an image and produces a short list of numbers, the **code**;
# - the **bottleneck** is that code: deliberately much smaller than the image, so the network cannot
#   simply copy pixels through and must keep only what matters most;
# - the **decoder** takes the code and rebuilds the image.
#
# Training asks for one thing only: the rebuilt image should be as close as possible to the input.
# No one has to label anything; every picture is its own target. That is why, in this series, the
# class labels are only used to *look* at the data and to break results down per class.
#
# ## CIFAR-10
#
# CIFAR-10 is a classic collection of small colour photographs: **60,000 images of 32×32 pixels with
# three colour channels (RGB)**, in **10 classes** (airplane, automobile, bird, cat, deer, dog, frog,
# horse, ship, truck), 6,000 per class. It comes already divided into a **training split of 50,000**
# and a **test split of 10,000** images. At 32×32 the pictures are tiny, which makes them quick to
# train on and also hard to reconstruct crisply: there is not much detail to begin with.
#
# > **Stand-in data.** When CIFAR-10 is not on disk and cannot be downloaded (an offline laptop, a
# > workshop with bad wifi), the series switches to **`photos10`**: real colour photographs that ship
# > inside scikit-image and scikit-learn, cut into 32×32 patches at several scales so they look like
# > thumbnails, one class per photograph (the table below credits each one). Training and test patches
# > come from **separate regions** of each photograph, so no test pixel was ever seen in training.
# > Everything runs the same way; the pictures then show these ten photographs, not CIFAR-10 classes,
# > and the numbers are **stand-in numbers**, not CIFAR-10 numbers. Each notebook prints which dataset
# > it is using. A second stand-in, `shapes10` (drawn shapes), is what the automated tests use, and
# > notebook 07 uses it as out-of-distribution input.

# %% [markdown]
# ## Setup
#
# Every helper lives in the small package `convae_utils` that comes with this project. We import it
# rather than re-typing code, and whenever a notebook introduces a helper it prints the helper's
# source so you can read exactly what runs.

# %%
# %matplotlib inline
import inspect
import timeit

import pandas as pd
import torch

from IPython.display import display

from convae_utils import article, data, images, photos, plotting, settings

# %% [markdown]
# ## Parameters
#
# This is the only cell that decides sizes. It reads the **profile** from the environment variable
# `CONVAE_PROFILE`, so the same notebook serves a laptop and a GPU machine without edits:
#
# - `full`: the article's experiment (all 50,000 training images, 5,000 of them held out for validation);
# - `workshop`: a CPU-friendly cut, so the whole series fits a 2-core laptop;
# - `smoke`: a few seconds on stand-in data, for automated tests;
# - `auto` (the default): `full` if there is a GPU, otherwise `workshop`.
#
# A second switch, `CONVAE_DATASET` (`cifar10`, `photos10`, `shapes10` or `auto`), picks the data. Set both before
# starting Jupyter, for example `CONVAE_PROFILE=workshop jupyter lab` (in Windows PowerShell:
# `$env:CONVAE_PROFILE = "workshop"; jupyter lab`).

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0                                   # seeds the validation split (and the stand-in's drawing)
config = settings.from_env(seed=SEED)      # the profile's settings: one record (printed below)
IMAGES_PER_CLASS = 8                       # columns of the class grid
TIMING_IMAGES = 10 * config.batch_size     # images in the PIL-versus-tensor timing below

# %% [markdown]
# ## Loading the data
#
# One call, `data.prepare_data(**config.data_options())`, gives us everything the series trains and
# evaluates on, as a `DataBundle`:
#
# - `train` and `val`: the training split, with a seeded, random validation set held out of it;
# - `test`: the test split, kept aside for the final numbers;
# - `exemplars`: one test image per class, which later notebooks reconstruct after every epoch;
# - `dataset`: which dataset this really is (`cifar10` or the stand-in).
#
# If CIFAR-10 is missing and you asked for it explicitly (`CONVAE_DATASET=cifar10`), the call
# stops with a `DataError` that says what is missing and how to get it.

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)

# %%
if bundle.dataset == "cifar10":
    print("Using CIFAR-10.")
else:
    print(f"Using the stand-in '{bundle.dataset}': the pictures below are not CIFAR-10 classes, "
          "and no number here is a CIFAR-10 number.")
if bundle.dataset == "photos10":
    # Where the stand-in's pictures come from, and under which licence.
    display(pd.DataFrame([vars(p) for p in photos.PHOTO_CREDITS])[["label", "subject", "credit", "licence", "source"]])
print("classes:", ", ".join(bundle.train.classes))
print("one split's images:", tuple(bundle.train.images.shape), bundle.train.images.dtype)  # (N, 3, 32, 32) uint8

# %% [markdown]
# Each split is an `ImageSet`: a `uint8` tensor of pixels with shape `(N, 3, 32, 32)` (channels
# first, as PyTorch expects) and a tensor of `N` integer labels, plus the class names.
#
# ## The ten classes
#
# Always look at your data before modelling it. Here are the first few training images of each class,
# one row per class.

# %%
fig = plotting.class_grid(bundle.train, per_class=IMAGES_PER_CLASS)

# %% [markdown]
# On CIFAR-10 you will notice how varied a class is: a "bird" may be a close-up of a head or a
# speck in the sky, a "cat" may be any colour. Also notice how little 32×32 pixels hold; whatever
# our autoencoder reconstructs, it will never look sharper than these originals.
#
# ## One picture per class: the exemplars
#
# To watch training progress we will reconstruct the same ten pictures after every epoch: **the
# first test image of each class, classes in order**. The article found them with a hand-written
# loop over indices; the package asks NumPy for the position of each label's first occurrence
# instead, and fails with a clear message if a class is missing.

# %%
print(inspect.getsource(data.class_exemplars))

# %%
exemplars = data.class_exemplars(bundle.test)
print("exemplar labels:", exemplars.labels.tolist())                               # 0, 1, ..., 9
print("same as bundle.exemplars:", torch.equal(exemplars.images, bundle.exemplars.images))

fig = plotting.labelled_grid(exemplars.images, nrow=len(exemplars), column_labels=exemplars.classes,
                             title=f"{bundle.dataset}: the first test image of each class")

# %% [markdown]
# ## From pixels to model inputs: normalisation
#
# Pixels arrive as whole numbers from 0 to 255. Networks train more easily on small numbers centred
# around zero, so we rescale every value to the range **[-1, 1]**. The classic recipe does this in two
# steps: `ToTensor` divides by 255 (giving [0, 1]) and `Normalize(mean=0.5, std=0.5)` then computes
# `(x - 0.5) / 0.5` (giving [-1, 1]). Both steps together are a single line of arithmetic,
# `x / 127.5 - 1`, and that is all `images.normalize` does, on a whole batch of `uint8` pixels at once:

# %%
print(inspect.getsource(images.normalize))

# %%
batch = bundle.train.images[:config.batch_size]          # (B, 3, 32, 32) uint8, 0..255
inputs = images.normalize(batch)                            # (B, 3, 32, 32) float32, -1..1
print(f"before: {batch.dtype}, min {int(batch.min())}, max {int(batch.max())}")
print(f"after : {inputs.dtype}, min {float(inputs.min()):.3f}, max {float(inputs.max()):.3f}")
print("round trip back to uint8 is exact:", torch.equal(images.to_uint8(inputs), batch))

# %% [markdown]
# The histograms show the same distribution of values before and after: normalisation only moves
# and stretches the axis. It does not change the shape of the distribution, and it loses nothing.
# The reverse, `images.denormalize`, maps model outputs back to [0, 1] for display.

# %%
fig = plotting.pixel_histograms(bundle.train)

# %% [markdown]
# ## Why keep `uint8` and normalise per batch?
#
# The article loaded CIFAR-10 the textbook way: each time the training loop asks for an image,
# the dataset turns the stored array into a PIL image, runs `ToTensor` and `Normalize` on it, and the
# loader stacks those images into a batch. That happens for every image, **in every epoch**. On a
# CPU, this per-image Python work can cost as much as the training step itself, and on a GPU it
# leaves the accelerator waiting for data.
#
# The series keeps the whole split as one `uint8` tensor and calls `images.normalize` on each batch just
# before the model sees it. Let us time both routes on the same images and check that they agree.

# %%
timing_images = bundle.train.images[:TIMING_IMAGES]       # (n, 3, 32, 32) uint8
# The article's Dataset, from the package (the benchmark measures training with the same class):
# HWC uint8 arrays, one PIL image and one ToTensor + Normalize per item.
article_images = article.ArticleImages(timing_images.permute(0, 2, 3, 1).numpy())
print(inspect.getsource(article.ArticleImages.__getitem__))


def article_route() -> torch.Tensor:
    """What the article's loader did for every image of every epoch: array -> PIL -> tensor, then stack."""
    return torch.stack([article_images[i][0] for i in range(len(article_images))])


def series_route() -> torch.Tensor:
    return images.normalize(timing_images)


# A fair race: both routes on one CPU thread (as in a DataLoader worker), best of three runs each,
# so a busy machine's hiccups do not decide the comparison.
threads = torch.get_num_threads()
torch.set_num_threads(1)
try:
    per_item_seconds = min(timeit.repeat(article_route, number=1, repeat=3))
    per_batch_seconds = min(timeit.repeat(series_route, number=1, repeat=3))
finally:
    torch.set_num_threads(threads)
print(f"{len(timing_images):,} images")
print(f"per image, PIL + ToTensor + Normalize: {per_item_seconds * 1e3:8.1f} ms")
print(f"per batch, images.normalize            : {per_batch_seconds * 1e3:8.1f} ms "
      f"({per_item_seconds / per_batch_seconds:,.0f}x faster)")
print("same values:", torch.allclose(article_route(), series_route(), atol=1e-6))

# %% [markdown]
# Memory is the other half of the story. A `uint8` pixel takes one byte; the same pixel as a
# `float32` takes four. Keeping the data as bytes and converting only the current batch costs a
# quarter of the memory of a float copy of the whole split, which matters on a laptop and even more
# when the data lives on a GPU.

# %%
def megabytes(tensor: torch.Tensor) -> float:
    return tensor.numel() * tensor.element_size() / 1e6


as_bytes = megabytes(bundle.train.images)
as_floats = megabytes(bundle.train.images.float())        # a float32 copy, made here only to be measured
print(f"training images as uint8  : {as_bytes:8.1f} MB")
print(f"the same as float32 copies: {as_floats:8.1f} MB")
print(f"one normalised batch      : {megabytes(inputs):8.2f} MB")

# %% [markdown]
# ## Train, validation and test
#
# We use three disjoint sets of images, each with one job:
#
# - **train**: the network's weights are fitted to these;
# - **validation**: held out of the training split; we watch its loss during training to notice
#   over-fitting and to compare settings (learning rate, bottleneck size...);
# - **test**: looked at only at the end, to report how well the finished model does on images it
#   has never influenced.
#
# The article used the test set as its validation set. That looks harmless, but every decision
# made while watching those curves (when to stop, which variant looks better) quietly tunes the
# model to those very images. The test numbers then stop being an unbiased check of new data. The
# fix costs nothing: hold a random slice of the training split out as validation, and keep the test
# split for the end. Here is how the split is made; the seed makes it identical on every run and
# every machine:

# %%
print(inspect.getsource(data.split_train_val))

# %%
_, held_out = data.split_train_val(bundle.train, val_fraction=0.1, seed=SEED)
_, held_out_again = data.split_train_val(bundle.train, val_fraction=0.1, seed=SEED)
print("same seed, same split:", torch.equal(held_out.images, held_out_again.images))

splits = pd.DataFrame([
    {"split": "train", "images": len(bundle.train), "comes from": f"{bundle.dataset} training split",
     "used for": "fitting the weights"},
    {"split": "validation", "images": len(bundle.val), "comes from": f"{bundle.dataset} training split (seeded hold-out)",
     "used for": "watching training, comparing settings"},
    {"split": "test", "images": len(bundle.test), "comes from": f"{bundle.dataset} test split",
     "used for": "the final numbers, once"},
    {"split": "exemplars", "images": len(bundle.exemplars), "comes from": "first test image of each class",
     "used for": "pictures after every epoch"},
]).set_index("split")
splits

# %% [markdown]
# With the `full` profile these are the article's sizes: 45,000 images to train on, 5,000 to
# validate, 10,000 to test. The smaller profiles take a cut of each. The classes stay balanced in every
# split:

# %%
counts = pd.DataFrame({"train": bundle.train.class_counts(), "validation": bundle.val.class_counts(),
                       "test": bundle.test.class_counts()}, index=pd.Index(bundle.train.classes, name="class"))
counts

# %% [markdown]
# ## Getting CIFAR-10 before a workshop
#
# Thirty laptops downloading 163 MB over one conference Wi-Fi is a recipe for a slow start. Fetch
# the data once, ahead of time, from the project folder:
#
# ```bash
# python -m convae_utils download          # into ./data, checked against its published md5
# ```
#
# then copy the `data/` folder to each machine (or point `CONVAE_DATA_DIR` at a shared copy). A
# half-finished download is never mistaken for the real thing: the archive is only kept once its
# checksum matches.

# %% [markdown]
# ## Summary
#
# - An autoencoder learns to rebuild its input through a small code; the image is its own target.
# - CIFAR-10 has 50,000 training and 10,000 test images, 32×32 RGB, 10 balanced classes. Without it,
#   the stand-in `photos10` (patches of real photographs) keeps the series running, and every notebook
#   says which one is in use.
# - `data.prepare_data(**config.data_options())` returns train, validation and test splits plus one exemplar
#   per class (the first test image of each class, found without a hand-written loop).
# - Pixels are stored once as `uint8` and normalised to [-1, 1] per batch by `images.normalize`:
#   the same values as `ToTensor` + `Normalize(0.5, 0.5)`, a fraction of the time, a quarter of the memory.
# - Validation comes from a seeded hold-out of the training split; the test set is kept for the end.
#   Fixed here: the article validated on its test set.
#
# Next, in [02 Architecture](02_architecture.ipynb), we build the network that will squeeze these
# 3,072 numbers per image into a code of 200.

# %% [markdown]
# ## Exercises
#
# 1. Show the class grid of the **test** split instead of the training split. Do the classes look
#    alike across the two?
# 2. Normalise a batch, add 0.5 to every value, and convert it back with `images.to_uint8`. What happened
#    to the brightest pixels, and why? (Hint: read `images.denormalize`.)
# 3. Change `SEED` in the parameters cell and re-run the notebook. Which numbers change, and which do
#    not? Why is it important that the validation split depends only on the seed?
# 4. Raise `TIMING_IMAGES` tenfold. Does the speed-up of per-batch normalisation grow, shrink or stay
#    the same? What does that tell you about where the per-image route spends its time?
# 5. Ask for CIFAR-10 outright, without restarting Jupyter: the cell below overrides the dataset for
#    this cell only (`settings.from_env(dataset="cifar10")` wins over `$CONVAE_DATASET`). On a machine
#    without the data, read the error message. Does it tell you what to do next? (A few seconds; with
#    CIFAR-10 on disk it simply loads it.)

# %%
# Exercise 2 checks itself: which value does a pixel of 200 have after the round trip (normalise, + 0.5,
# back to uint8)? Put it in place of None and run the cell; exercises.solution("01.2") shows the worked answer.
from convae_utils import exercises

exercises.check_to_uint8_clipping(None);

# %%
# Exercise 5: the same call as in Setup, with the dataset overridden here instead of in the environment.
# Remove the `#` and run the cell (offline it raises a DataError, whose message is the point).
# data.prepare_data(**settings.from_env(seed=SEED, dataset="cifar10").data_options())
