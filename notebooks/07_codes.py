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
# convae · [← 06 Rate and distortion](06_rate_distortion.ipynb) · **07 Codes** · [08 Winning →](08_winning.ipynb) · [all notebooks](../README.md#the-series)
#
# # 07 · What the codes are for: denoising, anomaly detection, retrieval and probes
#
# The article ends by saying that autoencoders stay useful "for anomaly detection, denoising and so on",
# and shows neither. This notebook does, and measures each claim:
#
# 1. **Denoising.** The same architecture, trained to turn a corrupted image into the clean one.
# 2. **Anomaly detection, done properly.** ROC curves and AUROC instead of one threshold, a threshold
#    chosen on validation data only, and what happens when the training data itself holds anomalies.
# 3. **Do the codes mean something?** Nearest neighbours in code space against pixel space, and how well
#    a simple classifier reads the class off the codes, against PCA features and raw pixels.
#
# **What you will learn**
#
# - how a denoising autoencoder is trained (corrupted input, clean target) and how to score it fairly;
# - how to read a ROC curve and an AUROC, and why precision depends on how rare anomalies are;
# - how contamination of the training data weakens a reconstruction-error detector;
# - how to test whether a representation carries meaning: retrieval and linear probes.
#
# **Run time** (notebook 03's latent-200 model is reused; the six small extra models of this notebook
# are trained on a reduced budget, set in the parameters cell)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | seconds |
# | `workshop` | a CPU laptop: extra models on 4,000 images, 2-3 epochs | 1.5 min (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's data | not measured on a CPU; seconds on a GPU: see the README's GPU section |

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import torch
import pandas as pd
from IPython.display import display

from convae_utils import (anomaly, baselines, corruptions, data, denoising, exercises, metrics, plotting, probes,
                          runs, settings, training)

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0
config = settings.from_env(latent_dim=200, seed=SEED)   # notebook 03's model, reused from its run folder
# The extra models here get a reduced budget, derived from the profile: (training images, epochs).
EXTRA_BUDGET = {"full": (20_000, 5), "workshop": (4_000, 3), "smoke": (128, 1)}[config.profile]
DENOISE_EPOCHS = {"full": 3, "workshop": 2, "smoke": 1}[config.profile]  # fine-tuning epochs per denoiser
PROBE_IMAGES = {"full": 10_000, "workshop": 2_000, "smoke": 200}[config.profile]  # probe training images
PROBE_ITERATIONS = 10 if config.profile == "smoke" else 100   # L-BFGS steps of the linear probe (capped for time)
NOISE_LEVELS = (0.1, 0.2)        # Gaussian noise, standard deviation on the [0, 1] pixel scale
MASK_FRACTION = 0.5              # share of pixels set to grey
FALSE_ALARM_RATE = 0.05          # share of normal validation images the detector may flag
CONTAMINATION = (0.01, 0.05)     # shares of anomalies mixed into the detector's training data
HELD_OUT_CLASS = 0               # the class left out of the detector's training: an anomaly to find
OTHER_DATASET = {"photos10": "shapes10", "shapes10": "photos10", "cifar10": "photos10"}  # anomalies from elsewhere
NEIGHBOURS = 5                   # neighbours per query (retrieval, kNN)
QUERIES = 6                      # query images in the retrieval gallery

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)
extra_images, extra_epochs = EXTRA_BUDGET
extra_train = bundle.train.head(extra_images)
print(f"extra models: {len(extra_train):,} training images, {extra_epochs} epochs "
      f"(denoisers: {DENOISE_EPOCHS} fine-tuning epochs)")

# %% [markdown]
# The model of notebook 03 (the article's latent-200 autoencoder), loaded from its run folder, or trained
# now if you start here:

# %%
plain_run = runs.train_or_load(config, data=bundle)
plain = plain_run.model
print(f"plain autoencoder: {'loaded from' if plain_run.loaded else 'trained into'} {plain_run.run_dir}")

# %% [markdown]
# ## Part 1: denoising
#
# A **denoising autoencoder** is the same network with one change in training: the encoder sees a
# *corrupted* image, and the loss compares the output with the *clean* one. It cannot copy its input any
# more; it has to know what images look like to undo the damage. Only the model's *step* changes (notebook
# 03's loop does not): `training.denoising_step(corrupt)` makes one that feeds the corrupted batch to the
# model and scores the output against the clean batch (the validation loss, too, scores corrupted inputs
# against clean targets):

# %%
import inspect

print(inspect.getsource(training.denoising_step).split('"""')[2])

# %% [markdown]
# Three corruptions, each seeded so that a run repeats: Gaussian noise at two levels (the standard
# deviation on the [0, 1] pixel scale, clipped to the valid range) and random masking (half of the
# pixel positions set to grey).
#
# To keep within the workshop's time, each denoiser **starts from the plain model's weights** and is
# fine-tuned for a few epochs on corrupted images (a reduced budget, see the parameters cell). Each lives
# in a run folder of its own (`runs.train_or_load` with a named `runs.Recipe`, the same harness as every model in
# the series), so running the notebook again loads it.

# %%
corruption_list = [*(corruptions.gaussian_noise(sigma, seed=SEED) for sigma in NOISE_LEVELS),
                   corruptions.random_mask(MASK_FRACTION, seed=SEED)]
denoise_config = config.replace(num_epochs=DENOISE_EPOCHS)
denoisers = {}
for corruption in corruption_list:
    recipe = runs.Recipe(f"denoise-{corruption.tag}", step=training.denoising_step(corruption))
    run = runs.train_or_load(denoise_config, recipe, bundle.replace(train=extra_train, test=None, exemplars=None),
                             start_from=plain)
    denoisers[corruption.label] = run.model

# %% [markdown]
# The evaluation corrupts the **test** images once, with a fixed seed, and scores three things against
# the clean images: the corrupted input itself, the denoiser's output, and the plain autoencoder's output
# for the same corrupted input.

# %%
outputs = {c.label: denoising.denoise(denoisers[c.label], plain, bundle.test, c, seed=SEED + 1)
           for c in corruption_list}
denoise_table = pd.DataFrame([denoising.summary_row(out, label) for label, out in outputs.items()]).set_index("corruption")
clean_psnr = -10 * torch.log10(torch.tensor(plain_run.per_image["mse"].mean())).item()
print(f"for reference, the plain model on clean test images: {clean_psnr:.2f} dB (PSNR of the mean MSE, as in the table)")
display(denoise_table.round(2))

# %%
SHOW = 8
rows, row_labels = [], []
for label, out in outputs.items():
    rows += [out["input"][:SHOW], out["denoiser"][:SHOW].clamp(-1, 1), out["plain"][:SHOW].clamp(-1, 1)]
    row_labels += [f"{label}: input", "denoiser", "plain AE"]
rows.append(next(iter(outputs.values()))["clean"][:SHOW])
row_labels.append("clean (target)")
fig = plotting.labelled_grid(torch.cat(rows), nrow=SHOW, row_labels=row_labels,
                             title=f"Denoising test images ({bundle.dataset})")

# %% [markdown]
# How to read it. The plain autoencoder fed a noisy image rebuilds a blurred version of it: being a
# smoothing bottleneck, it removes some noise by accident, but it was never asked to. The denoiser was,
# and gains most where the corruption is heavy; at light noise the plain model's own smoothing can be
# as good (in our workshop runs on two machines, an AMD EPYC and an Intel Xeon, the denoiser was about
# level at sigma 0.1, 0.8 to 1.2 dB ahead at 0.2 and 6.1 to 6.8 dB ahead at 50% masking). The table says
# how it went on this run. Two cautions:
#
# - The plain model had the full budget of notebook 03 on clean images; each denoiser had that *plus* a
#   few fine-tuning epochs on a few thousand corrupted images. A denoiser trained longer does better.
# - PSNR rewards blur (notebook 04). A denoiser can beat the noisy input in PSNR while looking smoother
#   than the clean image: compare the pictures, not only the numbers.
#
# **A classical denoiser beside them.** "The denoiser helps" needs a yardstick that learnt nothing: a
# Gaussian blur, whose strength (sigma, in pixels) is chosen for each corruption on the corrupted
# **validation** images, then scored once on the same corrupted test images as the models. A blur knows
# nothing about images, and nothing about which pixels a mask hid; whether the learnt denoiser beats it
# on this run is printed below (on the smoke profile, with its barely trained models, the blur wins).

# %%
blur = {c.label: denoising.tune_blur(bundle.val, c, seed=SEED + 2) for c in corruption_list}
baseline_rows = {}
for label, out in outputs.items():
    blurred = denoising.psnr_of_mean_mse(denoising.gaussian_blur(out["input"], blur[label]["sigma"]), out["clean"])
    baseline_rows[label] = {"blur sigma (chosen on validation)": blur[label]["sigma"], "blur PSNR (dB)": blurred,
                            "denoiser PSNR (dB)": denoise_table.loc[label, "denoiser PSNR (dB)"],
                            "denoiser - blur (dB)": denoise_table.loc[label, "denoiser PSNR (dB)"] - blurred}
blur_table = pd.DataFrame(baseline_rows).T
display(blur_table.round(2))
for label, row in blur_table.iterrows():
    better = "the denoiser" if row["denoiser - blur (dB)"] > 0 else "the tuned blur"
    print(f"{label}: {better} is ahead by {abs(row['denoiser - blur (dB)']):.2f} dB")

# ## Part 2: anomaly detection, done properly
#
# Notebook 05 set one threshold on reconstruction error and counted what it flagged. Here we measure the
# detector over *all* thresholds at once.
#
# **The setup.** Normal = the dataset in use, **without one class**, which we hold out of training: a
# realistic anomaly (something new but similar). A detector model is trained on the other classes (the
# reduced budget again, from scratch). The anomalies:
#
# - images of the **other stand-in** dataset;
# - **uniform noise**;
# - normal test images turned **upside down**, and **colour-inverted** (255 − pixel);
# - the **held-out class**.

# %%
other_name = OTHER_DATASET[bundle.dataset]
normal_train, held_train = anomaly.hold_out_class(extra_train, HELD_OUT_CLASS)
normal_val, _ = anomaly.hold_out_class(bundle.val, HELD_OUT_CLASS)
normal_test, held_test = anomaly.hold_out_class(bundle.test, HELD_OUT_CLASS)
other_test = data.load_dataset(other_name, "test", size=len(normal_test), seed=SEED)
test_anomalies = anomaly.anomaly_sets(normal_test, other=other_test, held_out=held_test, seed=SEED)
print(f"normal: {bundle.dataset} without class {bundle.test.classes[HELD_OUT_CLASS]!r}; "
      f"other dataset: {other_name}")
display(pd.Series({kind: len(pixels) for kind, pixels in test_anomalies.items()}, name="test images"))

# %%
detector_config = config.replace(num_epochs=extra_epochs)
detector_recipe = runs.Recipe(f"detector-no{HELD_OUT_CLASS}", options={"held_out_class": HELD_OUT_CLASS})
normal_splits = bundle.replace(train=normal_train, val=normal_val, test=None, exemplars=None)
detector = runs.train_or_load(detector_config, detector_recipe, normal_splits).model

# %% [markdown]
# Each image's **anomaly score** is its reconstruction error (MSE on [0, 1] pixels). The ROC curve plots,
# for every possible threshold, the share of anomalies flagged (true-positive rate) against the share of
# normal test images flagged (false-positive rate). **AUROC**, the area under it, is the probability
# that a random anomaly scores higher than a random normal image: 1.0 is perfect, 0.5 a coin toss, and
# below 0.5 the anomalies look *more* normal than normal images.

# %%
val_scores = anomaly.reconstruction_errors(detector, normal_val)
normal_scores = anomaly.reconstruction_errors(detector, normal_test)
anomaly_scores = {kind: anomaly.reconstruction_errors(detector, pixels) for kind, pixels in test_anomalies.items()}
curves = {kind: anomaly.roc(normal_scores, scores) for kind, scores in anomaly_scores.items()}
fig = plotting.roc_curves(curves, title=f"Reconstruction error as anomaly score ({bundle.dataset})")

# %% [markdown]
# **A threshold, chosen on validation data only.** We accept false alarms on `FALSE_ALARM_RATE` of the
# normal *validation* images and read the threshold off their scores; the test images are only used to
# report how it does. Precision is given for a test mix of all normal test images and one kind of
# anomaly (the table's last two columns give the counts: most kinds as many as the normal images, the
# held-out class far fewer): with rarer anomalies, precision falls (exercise 4).
#
# **Your turn (exercise 07.7, about 5 minutes).** Write that threshold: given the anomaly scores of the
# normal validation images and the share of them you accept as false alarms, return the score above which
# exactly that share lies. The check tries it on scores whose answer it knows, for two rates; the cell
# after it uses your function to set this detector's threshold.

# %%
def threshold_from_validation(val_scores, false_alarm_rate):
    """val_scores: 1-D scores of normal validation images (higher = less normal). Returns the alarm threshold."""
    # The threshold is a quantile of the validation scores: which one leaves `false_alarm_rate` of them above it?
    ...
    raise NotImplementedError("Exercise 07.7: return the score above which false_alarm_rate of val_scores lie")


threshold_from_validation = exercises.check_code("07.7", threshold_from_validation)

# %%
threshold = threshold_from_validation(val_scores, FALSE_ALARM_RATE)
report_rows = {kind: {"AUROC": curves[kind].auroc,
                      **anomaly.detection_report(normal_scores, scores, threshold)}
               for kind, scores in anomaly_scores.items()}
detection = pd.DataFrame(report_rows).T[["AUROC", "precision", "recall", "false_alarm_rate", "anomalies", "normal"]]
print(f"threshold: MSE > {threshold:.4f} (chosen on {len(val_scores):,} validation images, "
      f"{FALSE_ALARM_RATE:.0%} false alarms there)")
display(detection.astype({"anomalies": int, "normal": int}).round(3))

# %% [markdown]
# Read the AUROC column first: it does not depend on any threshold. Noise is usually easy. The held-out
# class is the hard, realistic case: it looks like the training data. An AUROC near 0.5 means the score
# cannot tell the two apart; *below* 0.5, the anomalies look more normal than normal images. That happens
# to inputs that are simpler than the training data: a model that paints smooth pictures can paint simple
# ones well, and reconstruction error measures complexity as much as unfamiliarity (notebook 05 looked for
# this with flat colours; for likelihoods of much stronger models, Nalisnick et al., ICLR 2019, and Serrà
# et al., ICLR 2020). A change that keeps an image's textures and colours, such as turning it upside down,
# can also leave the error unchanged. The cell below sorts this run's AUROCs into these groups.

# %%
def auroc_groups(aurocs: pd.Series) -> dict[str, list[str]]:
    """Anomaly kinds by AUROC: caught (>= 0.9), partly (0.55-0.9), chance (0.45-0.55), more normal than normal (< 0.45)."""
    bands = {"caught (AUROC >= 0.9)": aurocs >= 0.9, "partly (0.55 to 0.9)": (aurocs >= 0.55) & (aurocs < 0.9),
             "no better than chance (0.45 to 0.55)": (aurocs >= 0.45) & (aurocs < 0.55),
             "look more normal than normal (< 0.45)": aurocs < 0.45}
    return {band: aurocs.index[mask].tolist() for band, mask in bands.items()}


for band, kinds in auroc_groups(detection["AUROC"].astype(float)).items():
    print(f"{band:<40s} {', '.join(kinds) or '-'}")

# %% [markdown]
# **A classical detector beside it.** Is the autoencoder's score better than what a linear code gives?
# PCA fitted on the same normal training images, with as many components as the autoencoder's code has
# values (fewer if there are fewer training images), scores each image by its round-trip error, exactly
# as the autoencoder does. Same normal test images, same anomalies:

# %%
pca_components = min(config.latent_dim, len(normal_train))
pca_detector = baselines.fit_pca(normal_train, pca_components, seed=SEED)
pca_normal = baselines.pca_reconstruction_errors(pca_detector, normal_test)
pca_auroc = {kind: anomaly.roc(pca_normal, baselines.pca_reconstruction_errors(pca_detector, pixels)).auroc
             for kind, pixels in test_anomalies.items()}
detectors_side_by_side = pd.DataFrame({"autoencoder AUROC": detection["AUROC"].astype(float),
                                       f"PCA ({pca_components} components) AUROC": pd.Series(pca_auroc)})
display(detectors_side_by_side.round(3))
pca_better = [kind for kind in pca_auroc if pca_auroc[kind] > float(detection.loc[kind, "AUROC"])]
print(f"PCA's error separates better for {len(pca_better)} of {len(pca_auroc)} kinds"
      f"{': ' + ', '.join(pca_better) if pca_better else ''}")

# %% [markdown]
#
# ### Contamination: anomalies in the training data
#
# A detector is trained on data *believed* to be normal. If that data holds some anomalies, the model
# learns to rebuild them too, and the detector gets worse at flagging them. We replace 1% and 5% of the
# detector's training images by anomalies of every kind above (made from *training* images and a separate
# draw of noise, never from the test images) and train the same model again, with the same budget.

# %%
other_train = data.load_dataset(other_name, "train", size=len(normal_train), seed=SEED)
train_anomalies = anomaly.anomaly_sets(normal_train, other=other_train, held_out=held_train, seed=SEED + 1)
pool = torch.cat(list(train_anomalies.values()))
detectors = {"clean training data": detector}
for share in CONTAMINATION:
    dirty = anomaly.contaminate(normal_train, pool, share, seed=SEED)
    recipe = runs.Recipe(f"detector-no{HELD_OUT_CLASS}-dirty{share:g}",
                         options={"held_out_class": HELD_OUT_CLASS, "contamination": share})
    run = runs.train_or_load(detector_config, recipe, normal_splits.replace(train=dirty))
    detectors[f"{share:.0%} anomalies"] = run.model
contamination_table = anomaly.auroc_table(detectors, normal_test, test_anomalies)
display(contamination_table.round(3))

# %% [markdown]
# Compare the columns row by row. What to expect: anomalies the model saw during training can lose AUROC,
# because it learns to rebuild them too, and most for kinds that are easy to learn (a handful of examples
# can teach it noise or inverted colours). What this run shows is printed below: the change of each AUROC
# against the detector trained on clean data. With these small budgets, changes of a few hundredths, in
# either direction, can be training noise: train with another seed (exercise 5) before trusting them.

# %%
changes = contamination_table.sub(contamination_table["clean training data"], axis=0).drop(columns="clean training data")
display(changes.round(3).rename(columns=lambda c: f"AUROC change, {c}"))
print(f"largest change: {changes.abs().max().max():.3f}")

# %% [markdown]
#
# ## Part 3: do the codes mean something?
#
# The autoencoder never saw a label. If its codes still place images of the same class near each other,
# they carry meaning beyond the pixels. Two tests, both on the plain model of notebook 03.
#
# **Retrieval.** For a few test images, the five nearest other test images by Euclidean distance between
# codes, and between raw pixels. The labels played no part in the search; they only colour the frames:
# a solid blue frame marks a neighbour of the query's class, a dashed orange one a neighbour of another
# class, and each panel's title counts the blue ones.

# %%
test_codes = metrics.encode(plain, bundle.test)                     # (N, 200)
test_pixels = probes.pixel_features(bundle.test)                     # (N, 3072)
labels = bundle.test.labels
query_index = torch.stack([torch.nonzero(labels == c).flatten()[0] for c in labels.unique()[:QUERIES]])
found = {"code space": probes.nearest_neighbours(test_codes[query_index], test_codes, NEIGHBOURS, exclude=query_index),
         "pixel space": probes.nearest_neighbours(test_pixels[query_index], test_pixels, NEIGHBOURS, exclude=query_index)}
fig = plotting.retrieval_gallery(bundle.test.images[query_index],
                                 {name: bundle.test.images[index] for name, index in found.items()},   # (Q, k, 3, 32, 32)
                                 query_labels=labels[query_index],
                                 neighbour_labels={name: labels[index] for name, index in found.items()},  # (Q, k)
                                 classes=bundle.test.classes,
                                 title=f"Nearest neighbours among {len(labels):,} test images ({bundle.dataset})")

# %% [markdown]
# **Probes.** How well can a simple classifier read the class off each representation? Fitted on
# training images, scored on the test images, the same split for every feature set:
#
# - a **linear probe**: logistic regression on standardised features (scikit-learn);
# - **kNN**: the majority class of the `NEIGHBOURS` nearest training images;
# - **neighbour agreement**: the share of each test image's nearest test images with its class.
#
# The codes (200 values) face PCA features of the same size (notebook 06) and the raw pixels (3,072).
#
# A caution for the stand-in `photos10`: its test patches are cut from one region of each photograph,
# so neighbouring test patches overlap and are near-duplicates. That makes kNN and neighbour agreement
# look better than they would on independent photographs; the comparison *between* feature sets
# still holds, the absolute numbers less so.

# %%
probe_train = bundle.train.head(PROBE_IMAGES)
pca = baselines.fit_pca(probe_train, min(config.latent_dim, len(probe_train)), seed=SEED)
features = {"autoencoder codes": (metrics.encode(plain, probe_train), test_codes),
            f"PCA, {pca.n_components} components": (pca.encode(probe_train), pca.encode(bundle.test)),
            "raw pixels": (probes.pixel_features(probe_train), test_pixels)}
probe_results = probes.probe_table(features, probe_train.labels, labels, k=NEIGHBOURS, max_iter=PROBE_ITERATIONS,
                                   seed=SEED)
chance = float(torch.bincount(labels).max()) / len(labels)
print(f"{len(probe_train):,} training images, {len(labels):,} test images; always guessing the commonest "
      f"class scores {chance:.3f}")
display(probe_results.round(3))

# %% [markdown]
# What to look for: do the codes beat the pixels they were computed from, and do they beat PCA, the best
# *linear* code of the same size? Reconstruction asks the code to keep what is needed to *redraw* an
# image, which is not the same as what tells classes apart: a code can be good for one and poor for the
# other. On the stand-in data, classes differ in colour and texture, which raw pixels already show. We
# have not measured these probes on CIFAR-10 here: run the notebook with CIFAR-10 on disk to see how the
# three compare there. Methods that want codes for telling classes apart train for that directly
# (contrastive and masked-image methods).

# %% [markdown]
# ## Summary
#
# - A denoising autoencoder is the article's network trained with corrupted inputs and clean targets
#   (`training.denoising_step`); on corrupted test images it beats doing nothing, and beats the plain
#   autoencoder where the corruption is heavy (check the table: at light noise the gain can vanish).
# - Anomaly detection by reconstruction error is judged by ROC curves and AUROC, with the threshold
#   chosen on validation data; precision depends on how rare anomalies are, and inputs simpler than the
#   training data can look *more* normal than normal ones.
# - Anomalies in the training data can teach the model to rebuild them and so lower the AUROC; compare the
#   columns of the contamination table (in our workshop run, on an AMD EPYC CPU, 1% and 5% moved the AUROCs
#   by at most 0.03, in both directions: at this budget the effect was within run-to-run noise).
# - Classical baselines stand beside both uses: a Gaussian blur tuned on validation images for denoising,
#   PCA's round-trip error for anomaly detection; the cells above say which won on this run.
# - Nearest neighbours and probes test whether codes carry meaning; compare them with PCA and raw pixels
#   before claiming they do.
#
# Next, [08 Winning](08_winning.ipynb) builds a convolutional autoencoder that competes with PCA and JPEG,
# with the bits of a real entropy-coded bitstream.

# %% [markdown]
# ## Exercises
#
# Exercises 1-4 check themselves: write your answer in place of `None` and run the cell.
# `exercises.solution("07.1")` shows a worked solution.
#
# 1. What is the AUROC of a detector that scores every anomaly above every normal image?
# 2. What AUROC do you expect from a detector whose scores are random numbers?
# 3. What PSNR (dB) does an image have after Gaussian noise of σ = 0.1 is added (ignore clipping)? Compare
#    with the "input" column of the denoising table.
# 4. A detector flags 45 of 50 anomalies and 50 of 1,000 normal images. What is its precision?
# 5. Train the contaminated detectors with `seed=1` (`detector_config.replace(seed=1)`). Which AUROC
#    changes are larger than the change between seeds? (Three small runs, about 1-2 minutes on the
#    workshop profile. Look for AUROC changes bigger than the seed-to-seed change, kind by kind.)
# 6. Use the denoiser for σ = 0.2 on images with σ = 0.1 noise, and vice versa. Does a denoiser trained
#    on heavy noise cope with light noise? (Seconds: no training. Look for the PSNR against the matched
#    denoiser and against the tuned blur.)
# 7. (Code, in Part 2 above.) Write `threshold_from_validation`; the detector's threshold then comes from it.

# %%
exercises.check_perfect_auroc(None)
exercises.check_random_auroc(None)
exercises.check_noise_psnr(None)
exercises.check_precision(None);
