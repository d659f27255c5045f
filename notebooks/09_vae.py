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
# convae · [← 08 Winning](08_winning.ipynb) · **09 Generating** · [all notebooks](../README.md#the-series)
#
# # 09 · From rebuilding to generating: a variational autoencoder, and a fair test of the plain one
#
# Notebook 05 decoded random codes, got noise, and named the **variational autoencoder** (VAE) as the fix.
# This notebook builds one, and first gives the plain autoencoder a fairer chance than 05 did.
#
# 1. **The fair test.** 05 drew each code unit on its own, ignoring how units vary together. Fitting a
#    proper density to the codes (a full-covariance Gaussian, a small mixture) and sampling from it is the
#    fair way to generate with a plain autoencoder ("ex-post density estimation", Ghosh et al., ICLR 2020).
# 2. **The VAE.** The encoder gives a mean and a spread per code value; the code is *sampled*; the loss
#    adds a KL term that pulls the codes towards a standard normal. You write the two new pieces.
# 3. **The KL is a rate.** Measured in bits per image, the KL term is what the code costs. Sweeping its
#    weight traces a rate-distortion curve on the axes of notebook 06: a VAE is a compression model.
# 4. **Generation, measured.** Samples, interpolations and numbers computed here, offline, and a map of
#    the codes; then what a VAE is *not* good at, in this run.
#
# **What you will learn**
#
# - how to sample a plain autoencoder's code space fairly, and what that gives;
# - the reparameterisation trick and the KL term of a VAE, written by you and checked;
# - why the KL term is a bit count, and how its weight beta trades bits for quality;
# - how to measure generated images without the Inception network, and what such numbers can and cannot say;
# - posterior collapse and blur: the VAE's known weaknesses, counted in this run.
#
# **Run time** (the fixed model of notebook 05 is reused, or trained first if notebook 05 has not run: about
# 2.4 more minutes in the workshop profile; the VAEs are trained here, on a reduced budget)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | seconds |
# | `workshop` | a CPU laptop: the VAE sweep on 4,000 images, 3 epochs per beta, narrower layers | 54 s (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | 45,000 images, 10 epochs, six betas, notebook 08's width | hours on a CPU; run the sweep on a GPU with `python -m tools study 09 --profile full` |

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import inspect

import pandas as pd
import torch
from IPython.display import display

from convae_utils import baselines, data, exercises, generation, images, metrics, plotting, runs, settings, vae

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0
config = settings.from_env(seed=SEED)
fixed_config = config.replace(latent_dim=200, code_activation=None, output_activation="tanh")  # notebook 05's fixed model
plan = vae.sweep_plan(config)                 # betas, width and the reduced training budget of the VAE sweep
SHOWN = 10                                    # pictures per row
VAL_IMAGES = 500                              # validation images scored after each epoch of a VAE
SCORED = 500 if config.profile != "smoke" else 128   # generated images per row of the measures table
MAP_IMAGES = 500 if config.profile != "smoke" else 128  # test images on the 2-D maps of the codes
MIXTURE_COMPONENTS = 5                        # Gaussians in the mixture fitted to the plain codes
ENDPOINTS = (1, 7)                            # exemplar indices to interpolate between (as in notebook 05)
COLLAPSE_NATS = 0.01                          # a code value whose mean KL is below this carries nothing

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)

# %% [markdown]
# ## Part 1: a fair test of the plain autoencoder as a generator
#
# A plain autoencoder has no rule for what a "typical" code is, so to generate we must supply one: fit a
# probability density to the codes of the training images, draw new codes from it, decode them. Three
# densities, from crude to careful:
#
# - **independent per unit**: each of the 200 code values gets its own mean and spread, as in notebook 05;
#   how units vary *together* is thrown away;
# - **a full-covariance Gaussian**: one bell shape in 200 dimensions, with all the correlations;
# - **a Gaussian mixture** of a few such bells (scikit-learn's `GaussianMixture`), for codes that form clusters.
#
# The model is notebook 05's fixed one (linear code, tanh output), loaded from its run folder (or trained
# now if you start here).

# %%
plain_run = runs.train_or_load(fixed_config, data=bundle)
if not plain_run.complete:
    raise RuntimeError("Training was interrupted: run this cell again to resume it.")
plain = plain_run.model.to(device).eval()
train_codes = metrics.encode(plain, bundle.train)                      # (N, 200)
plain_samples = {kind: generation.decode_codes(plain, generation.fit_code_density(
                     train_codes, kind, components=MIXTURE_COMPONENTS, seed=SEED).sample(SCORED, seed=SEED))
                 for kind in generation.DENSITIES}                        # {kind: (SCORED, 3, 32, 32)}
rows = {"real test images": images.normalize(bundle.test.images[:SHOWN]),
        **{generation.DENSITY_LABELS[kind]: samples[:SHOWN] for kind, samples in plain_samples.items()}}
fig = plotting.labelled_grid(torch.cat(list(rows.values())), nrow=SHOWN, row_labels=list(rows),
                             title=f"Plain autoencoder (notebook 05's fixed model): codes drawn three ways ({bundle.dataset})")

# %% [markdown]
# Look at the rows from top to bottom. Drawing each unit on its own ignores that real codes come in
# combinations, so its draws land where no training image ever put a code. The full-covariance Gaussian
# keeps those combinations, and the mixture can also keep clusters apart. Whether their pictures look like
# photographs to you on this run is the first verdict; Part 4 puts numbers on it. Notebook 05's verdict
# ("random codes look worse") was about the crude sampler, not about the autoencoder.
#
# ## Part 2: the variational autoencoder
#
# A VAE changes the objective, not the architecture. Its encoder and decoder are those of notebook 08's
# model (`convae_utils.spatial`: a 4 × 4 code with a few channels), with one change: the encoder's last
# layer gives **two** numbers per code value, a mean $\mu$ and a log-variance $\log\sigma^2$. The code of
# an image is not one point any more but a small cloud, $q(z\mid x) = \mathcal N(\mu, \sigma^2)$, and
# training decodes a random draw from it.
#
# **The reparameterisation trick.** "Draw $z$ at random" has no gradient. Written as
# $z = \mu + \sigma \cdot \varepsilon$ with $\varepsilon \sim \mathcal N(0, 1)$ drawn outside the network,
# $z$ is an ordinary function of $\mu$ and $\sigma$, and gradients flow through it.
#
# **The loss.** Reconstruction plus the KL divergence of $q(z\mid x)$ from the prior $\mathcal N(0, I)$:
#
# $$\text{loss} = \underbrace{\text{MSE}}_{\text{per value, }[-1, 1]\text{ scale}} + \beta \cdot \frac{\mathrm{KL}}{3072},\qquad
#   \mathrm{KL} = \tfrac12 \sum_{j} \left(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\right)\ \text{nats per image}$$
#
# The KL is summed over every value of an image's code, and divided by the 3,072 values of an image so
# that both terms are "per value". With $\beta = 1$ this is the VAE's evidence bound for a decoder whose
# pixels carry Gaussian noise of variance 1/2 (a very noisy decoder); smaller $\beta$ trusts the pixels more.
#
# ### Your turn: write the two new pieces
#
# Complete the two functions (about three lines each). The check below each runs yours on a small input
# and says what is wrong; a cell left as it is falls back to the package's solution and says so.

# %%
def reparameterize(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A draw of N(mean, exp(logvar)) as mean + sigma * eps, eps ~ N(0, I); same shape as mean."""
    # std = ...            (from the log-variance)
    # eps = ...            (standard normal noise, shaped like mean: torch.randn_like)
    # return ...
    raise NotImplementedError("Exercise 09.1: write z = mean + sigma * eps with sigma computed from logvar")


reparameterize = exercises.check_code("09.1", reparameterize)


# %%
def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) of each image in nats: (N, ...) -> (N,)."""
    # per_value = ...      (the closed form above, for every code value)
    # return ...           (one number per image: sum over all dimensions but the first)
    raise NotImplementedError("Exercise 09.2: write the closed-form KL, summed over each image's code values")


kl_divergence = exercises.check_code("09.2", kl_divergence)

# %% [markdown]
# <details><summary>Solutions (click)</summary>
#
# ```python
# def reparameterize(mean, logvar):
#     std = torch.exp(0.5 * logvar)          # sigma = exp(log sigma^2 / 2)
#     return mean + std * torch.randn_like(mean)
#
# def kl_divergence(mean, logvar):
#     return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)
# ```
# The package's versions: `exercises.solution("09.1")`, `exercises.solution("09.2")`.
# </details>
#
# The training step uses the package's copies of the two functions (the checks just compared yours with
# them). It follows the series' step seam, `step(model, batch) -> (loss, logs)`, so the training loop
# of notebook 03 trains a VAE unchanged; in evaluation mode it uses the mean, so validation is deterministic:

# %%
print(inspect.getsource(vae.vae_step))

# %% [markdown]
# ## Part 3: the KL is a rate
#
# The KL term has a unit: nats, or bits after dividing by $\ln 2$. It is what it costs, on average, to
# tell a receiver who knows the prior which code was drawn for this image (bits-back or relative-entropy
# coding): the VAE's own **bits per image**. It is an idealised count, not a file format, while notebook
# 06 counted the bits of real quantised codes; both sit on the same axes.
#
# The weight $\beta$ sets the exchange rate between the two terms. A small $\beta$ lets the code spend
# bits and buys sharp reconstructions; a large one makes bits dear. One VAE per $\beta$, on a **reduced
# budget**: the sweep trains several models, so each gets fewer images and epochs than notebook 08's model,
# and in the workshop profile half its channels (width 16 instead of 32; same layers, same 4 × 4 code). The
# plan is printed below; `python -m tools study 09 --profile full` trains the full one.

# %%
print(f"beta sweep: {plan.betas}; width {plan.width}; {plan.settings.latent_dim} code values per image; "
      f"{len(bundle.train.head(plan.settings.train_size)):,} training images x {plan.settings.num_epochs} epochs per beta")
vaes = {}
for beta in plan.betas:      # one named run per beta: trained once, loaded afterwards (re-run to resume)
    recipe = runs.Recipe(plan.run_name(beta), build=vae.vae_builder(plan.code_channels, plan.width),
                         step=vae.vae_step(beta))
    splits = bundle.replace(train=bundle.train.head(plan.settings.train_size), val=bundle.val.head(VAL_IMAGES),
                            exemplars=None)
    run = runs.train_or_load(plan.settings, recipe, splits)
    if not run.complete:
        raise RuntimeError("Training was interrupted: run this cell again to resume it.")
    vaes[beta] = run.model

# %% [markdown]
# Each VAE is scored as a codec: encode the test images, decode the posterior means, measure PSNR; the rate
# is the mean KL in bits. For reference on the same axes: JPEG (scan data only, as in notebook 06) and the
# plain model of Part 1 with its code quantised to 8 bits per value (a real bit count).

# %%
classifier = generation.yardstick_classifier(bundle, config.profile, seed=SEED)  # Part 4
scorer = generation.GenerationScorer(classifier, bundle.test, bundle.train)
sweep = pd.DataFrame([generation.vae_measures(model, bundle.test, label=f"beta={beta:g}", scorer=scorer,
                                              samples=SCORED, seed=SEED, threshold_nats=COLLAPSE_NATS)
                      for beta, model in vaes.items()], index=pd.Index(list(vaes), name="beta"))
display(sweep[["rate_bits", "psnr_of_mean_mse", "ssim", "inactive_dims"]].round(3))

# %%
jpeg_rows = baselines.jpeg_sweep(bundle.test, (5, 10, 20, 50))
plain_rows = baselines.autoencoder_sweep({"latent 200 (05)": plain}, bundle.train, bundle.test, quantize_bits=(8,))
table = baselines.rate_distortion_table([
    sweep.reset_index(drop=True)[list(baselines.TABLE_COLUMNS)],
    jpeg_rows[jpeg_rows["method"] == "JPEG (scan data only)"],
    plain_rows[plain_rows["method"] == "autoencoder (8-bit)"].assign(method="plain autoencoder (05), 8-bit code")])
fig = plotting.rate_distortion_plot(table)

# %%
extremes = sweep.sort_index().iloc[[0, -1]]                              # the smallest and the largest beta
print(f"From beta={extremes.index[0]:g} to beta={extremes.index[1]:g} the rate goes from "
      f"{extremes['rate_bits'].iloc[0]:.1f} to {extremes['rate_bits'].iloc[1]:.1f} bits per image, and the PSNR from "
      f"{extremes['psnr_of_mean_mse'].iloc[0]:.2f} to {extremes['psnr_of_mean_mse'].iloc[1]:.2f} dB.")
if bundle.dataset != "cifar10":
    print("These are stand-in results, not CIFAR-10 results.")

# %% [markdown]
# Read the VAE's curve like any codec's in notebook 06: up and to the left is better. Lowering $\beta$
# moves along the curve towards more bits and better pictures; no $\beta$ moves the curve itself, which
# depends on the architecture and the training budget (ours is reduced). Where the VAE's points sit against
# JPEG and the quantised plain code is this run's answer; its rate is a bound for an ideal coder, so treat
# a close race as a tie.
#
# ## Part 4: generation, measured offline
#
# A VAE generates by decoding draws from the prior $\mathcal N(0, I)$, with no density fitted afterwards.
# Prior samples of each $\beta$, beside the plain model's best sampler from Part 1:

# %%
rows = {f"VAE beta={beta:g}": model.sample(SHOWN, seed=SEED) for beta, model in vaes.items()}
rows["plain + mixture (Part 1)"] = plain_samples["mixture"][:SHOWN]
fig = plotting.labelled_grid(torch.cat(list(rows.values())), nrow=SHOWN, row_labels=list(rows),
                             title=f"Prior samples of each VAE, and the plain model's mixture samples ({bundle.dataset})")

# %% [markdown]
# And the walk of notebook 05, a straight line between the codes of two test images, for the plain model
# and for the VAE in the middle of the sweep:

# %%
main_beta = plan.betas[len(plan.betas) // 2]
first, second = (images.normalize(bundle.exemplars.images[[i]]) for i in ENDPOINTS)
steps = torch.linspace(0, 1, SHOWN).view(-1, 1)
with torch.inference_mode():
    ends = plain.encode(torch.cat([first, second]).to(device))                       # (2, 200)
    plain_walk = plain.decode((1 - steps.to(device)) * ends[0] + steps.to(device) * ends[1]).cpu()
walks = {"plain (05): straight line": plain_walk,
         f"VAE beta={main_beta:g}: straight line": vae.interpolate(vaes[main_beta], first, second, steps=SHOWN)}
fig = plotting.labelled_grid(torch.cat(list(walks.values())), nrow=SHOWN, row_labels=list(walks),
                             column_labels=[f"{s:.2f}" for s in steps.flatten().tolist()],
                             xlabel="position along the walk (0 = first image, 1 = second)",
                             title=f"{bundle.exemplars.classes[ENDPOINTS[0]]} → {bundle.exemplars.classes[ENDPOINTS[1]]}")

# %% [markdown]
# **Numbers, not only pictures.** Published work scores generated images with the FID, a distance between
# features of the Inception network. Its weights cannot be downloaded here, so we measure what can be
# computed offline, with a small classifier trained on our training split playing Inception's part:
#
# - **confidence**: its mean top-class probability on the samples (does a sample look like *some* class?);
# - **class entropy** (bits): how evenly the predicted classes come out (3.32 bits = all ten equally often);
# - **nearest training image** (RMSE, [0, 1] pixels): a sample much closer to a training image than real
#   held-out images are is a copy, *or* a blur (a smooth picture lies near many smooth training images):
#   look at the pictures before calling it copying;
# - **MMD**: a kernel two-sample distance between the samples' and the real test images' classifier features
#   (KID's fixed cubic kernel): about 0 for real images, larger the more the sets differ.
#
# These numbers depend on this classifier and this data. They rank the rows of *this* table; they are
# **not comparable with published FIDs** or with anyone else's numbers. The first row, real validation
# images, is the ceiling.

# %%
print(f"the classifier labels {generation.accuracy(classifier, bundle.test):.1%} of the test images correctly")
sets = {"real validation images": bundle.val.images[:SCORED],
        **{f"plain + {generation.DENSITY_LABELS[kind]}": samples for kind, samples in plain_samples.items()},
        **{f"VAE beta={beta:g}, prior samples": model.sample(SCORED, seed=SEED) for beta, model in vaes.items()}}
measures = scorer.table(sets).drop(columns="images")
display(measures.round(3))
best = measures.drop(index="real validation images")["mmd"].idxmin()
print(f"Closest to the real images by MMD on this run: {best}.")

# %% [markdown]
# ## Part 5: a map of the codes
#
# t-SNE (scikit-learn) places the codes of test images on a plane so that close codes stay close. Coloured
# by class, it shows how each model arranges its code space. Distances *between* far-apart groups on a
# t-SNE map mean little; look at what lies together.

# %%
subset = bundle.test.head(MAP_IMAGES)
vae_means, _ = vae.posterior_stats(vaes[main_beta], subset.images)
maps = {"plain (05), 200 values": generation.tsne_map(metrics.encode(plain, subset), seed=SEED),
        f"VAE beta={main_beta:g}, means, {vaes[main_beta].latent_dim} values": generation.tsne_map(vae_means, seed=SEED)}
fig = plotting.code_maps(maps, subset.labels.numpy(), subset.classes, title=f"t-SNE of test codes ({bundle.dataset})")

# %% [markdown]
# ## Part 6: what a VAE is not good at, in this run
#
# **Blur.** A VAE trained with MSE pays for every pixel it gets wrong, and under uncertainty the cheapest
# answer is the average of the possibilities: a blur. Its samples add the uncertainty of a random code on
# top. A simple sharpness number, the mean absolute response of a Laplacian filter (edges and texture),
# compares samples with real images:

# %%
def sharpness(pictures: torch.Tensor) -> float:
    """Mean absolute Laplacian of images in [-1, 1]: larger = more edges and texture."""
    kernel = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    return float(torch.nn.functional.conv2d(pictures.float().clamp(-1, 1), kernel, groups=3).abs().mean())


blur = pd.Series({name: sharpness(images.normalize(pictures) if pictures.dtype == torch.uint8 else pictures)
                  for name, pictures in sets.items()}, name="sharpness")
display(blur.round(4).to_frame())
print(f"VAE prior samples keep {blur.iloc[-len(vaes):].max() / blur.iloc[0]:.0%} of the real images' sharpness at most.")

# %% [markdown]
# **Posterior collapse.** The KL term charges for every code value that differs from the prior. When bits
# are dear (large $\beta$), the cheapest VAE leaves many values exactly at the prior for every image: they
# carry nothing, and the decoder learns to ignore them. Counting them per $\beta$ (a value is *inactive*
# when its mean KL is below 0.01 nats):

# %%
collapse = sweep[["rate_bits", "inactive_dims", "latent_dim"]].assign(
    inactive_share=lambda t: t["inactive_dims"] / t["latent_dim"])
display(collapse.round(3))
most = collapse["inactive_share"].idxmax()
print(f"Most inactive code values: beta={most:g}, {collapse.loc[most, 'inactive_dims']} of "
      f"{collapse.loc[most, 'latent_dim']} ({collapse.loc[most, 'inactive_share']:.0%}).")

# %% [markdown]
# With a large enough $\beta$ the whole code can collapse: every image gets the prior, the decoder outputs
# one average picture, and the rate is zero. Whether it went that far here is in the table. Remedies from
# the literature: KL warm-up (start with $\beta = 0$ and raise it), "free bits" (no charge below a few bits
# per value), or a smaller $\beta$.

# %% [markdown]
# ## Summary
#
# - A plain autoencoder can generate once a density is fitted to its codes; drawing each unit on its own
#   (notebook 05) is the crudest choice. The table of Part 4 ranks the three densities on this run.
# - A VAE's encoder gives a mean and a log-variance; the code is drawn as $\mu + \sigma\varepsilon$ (the
#   reparameterisation trick); the loss is the MSE plus $\beta$ times the KL from $\mathcal N(0, I)$.
# - The KL in bits per image is the code's rate: sweeping $\beta$ traces a rate-distortion curve on notebook
#   06's axes. The VAE is a compression model whose rate is counted by its own loss.
# - Generated images were measured offline with a classifier of our own (confidence, class balance, nearest
#   training image, MMD): useful to rank samplers here, not comparable with published FIDs.
# - The VAE's known weaknesses, measured in Part 6: how much sharpness its samples lose against real images
#   (blur), and how many code values go inactive as $\beta$ grows (posterior collapse).

# %% [markdown]
# ## Exercises
#
# 1. Train the VAE sweep with KL warm-up: write a step that uses `vae.vae_step(beta * min(1, step / 500))`
#    (hint: keep a counter). Does it change the number of inactive values at the largest beta?
# 2. Sample the VAE's prior at a lower temperature (`model.sample(10, temperature=0.7)`). Sharper or blander?
#    Check with the sharpness function and the measures table.
# 3. Fit the three densities of Part 1 to the VAE's posterior means instead of sampling its prior. Do
#    the samples improve? (This is Ghosh et al.'s point: even a VAE's prior is not where its codes are.)
# 4. Raise `MIXTURE_COMPONENTS` to 20. Does the mixture's nearest-training-image distance fall? When would
#    that be a warning sign rather than a success?
# 5. Run the full sweep headless (`python -m tools study 09 --profile full`, on a GPU) and put its
#    rate-distortion points beside this notebook's.
