"""Studies' plans: the parameters a notebook's parameters cell and its headless study share.

A notebook shows a study on the laptop's budget; ``python -m tools study NN`` (``make study STUDY=NN``,
the repository's ``tools/``) runs the same study headless, e.g. over seeds or on a GPU, to print the
numbers the README cites. Both read the values here, so a change made once reaches both. Notebook 09's
plan (the beta sweep) lives with the VAE: :data:`convae_utils.vae.SWEEPS` and :func:`~convae_utils.vae.sweep_plan`.

Values per profile are dicts keyed by ``"full"``, ``"workshop"`` and ``"smoke"``
(:attr:`convae_utils.settings.RunSettings.profile`).
"""

from __future__ import annotations

# -- notebook 06, rate and distortion (python -m tools study 06) -----------------------------------------

# The article's model at these latent sizes, against PCA with as many components (values per image).
LATENT_SWEEPS = {"full": (25, 50, 100, 200, 500, 1000), "workshop": (50, 200, 1000), "smoke": (50, 200, 1000)}
QUANTIZE_BITS = (8, 4)                    # bits per code value, besides float32's 32
JPEG_QUALITIES = (5, 10, 20, 50, 75, 90)  # Pillow's quality, 1..95
THUMBNAIL_SIZES = (8, 12, 16, 24)         # pixels per side of the stored thumbnail

# -- notebook 08, an autoencoder built to compete (python -m tools study 08) ------------------------------

CODE_CHANNELS = 4                         # a 4x4 code with 4 channels
CODE_VALUES = 16 * CODE_CHANNELS          # 64 values per image; the article's nearest model is latent 50
SPATIAL_WIDTHS = {"full": 32, "workshop": 32, "smoke": 8}  # the model has 2 * width channels at every stage
# The from-scratch model's peak learning rate (one-cycle, AdamW with two guards; on turned and mirrored patches,
# data.augment_dihedral). Before the augmentation it was 6e-3 (PLAIN_PEAK_LR: study 10 --base plain, the start of
# its tables in benchmarks/results but study10-hyper-xxl-dihedral-3seeds.csv).
SPATIAL_PEAK_LR = 4e-3
PLAIN_PEAK_LR = 6e-3
# The from-scratch model's training budget: more patches than the profile's images, one epoch (None: the profile's).
PATCH_BUDGETS = {"full": {}, "workshop": dict(train_size=96_000, num_epochs=1), "smoke": {}}
# The PCA-initialised model starts at PCA: fewer patches (and a gentler rate) than the one from scratch.
PCA_INIT_BUDGETS = {"full": {}, "workshop": dict(train_size=24_000), "smoke": {}}
PCA_FIT_IMAGES = 24_000                   # the first training patches PCA is fitted on (the floor)
PCA_COMPONENTS = 256                      # PCA's largest code; the entropy coder zeroes the rest
PCA_STEPS = (0.2, 0.45, 0.7, 1.0, 1.5, 2.5, 4.0, 6.0)  # PCA's quantisation steps, [-1, 1] pixel units

REFINE_STEPS = {"full": 20, "workshop": 20, "smoke": 3}  # gradient steps that refine each code for its decoder
# Scoring at equal bits: every model's code is quantised with steps of these factors x its training codes'
# spread, entropy-coded with models fitted on CODEC_FIT_IMAGES training codes; the opponents are PCA's best
# codec (the envelope over these truncations and PCA_STEPS, fitted on the same patches) and JPEG's scan data.
CODEC_STEP_FACTORS = (0.05, 0.1, 0.2, 0.4, 0.8)
PCA_INIT_STEPS = (0.45, 0.7, 1.0, 1.5, 2.5)  # the PCA-initialised model and its control: PCA's own steps (its scale)
CODEC_FIT_IMAGES = 8_000
PCA_BEST_COMPONENTS = (8, 16, 32, 64, 128, 256)

# -- notebook 10, a learned codec (python -m tools study 10) -----------------------------------------------

# One codec per lambda (MSE in [-1, 1] per bit per pixel), fine-tuned from notebook 08's from-scratch model
# with its code widened to code_channels; train_size None: the profile's own. "study" is the headless
# study's plan (more patches, four lambdas); the others are the notebook's per profile.
CODEC_PLANS = {
    "full": dict(lambdas=(0.3, 0.1, 0.03, 0.01), code_channels=8, train_size=None, num_epochs=2, lr=2e-3),
    "workshop": dict(lambdas=(0.1, 0.03, 0.01), code_channels=8, train_size=12_000, num_epochs=1, lr=2e-3),
    "study": dict(lambdas=(0.3, 0.1, 0.03, 0.01), code_channels=8, train_size=24_000, num_epochs=1, lr=2e-3),
    "smoke": dict(lambdas=(0.05,), code_channels=6, train_size=None, num_epochs=1, lr=2e-3),
    # the study's stronger codec: a hyperprior (side values per image set each code value's Laplace) and the
    # decoder trained on the rounded code (tools/studies/codec_variants.py measured each change on one seed)
    "study-hyper": dict(lambdas=(0.3, 0.1, 0.03, 0.01), code_channels=8, train_size=48_000, num_epochs=1, lr=2e-3,
                        hyperprior=True, decoder_input="rounded"),
    # the same, trained on twice the patches again (one seed's trials: +0.16 to +0.23 dB at 60-100 ideal bits)
    "study-hyper-long": dict(lambdas=(0.3, 0.1, 0.03, 0.01), code_channels=8, train_size=96_000, num_epochs=1,
                             lr=2e-3, hyperprior=True, decoder_input="rounded"),
    # and on twice that again (96,000 -> 192,000 patches: does the trend of doubling go on?)
    "study-hyper-xl": dict(lambdas=(0.3, 0.1, 0.03, 0.01), code_channels=8, train_size=192_000, num_epochs=1,
                           lr=2e-3, hyperprior=True, decoder_input="rounded"),
    # two passes over those (photos10 holds at most 200,000 patches): the next doubling of the steps; from notebook
    # 08's model as it trains now (study 10 --base dihedral), the first plan to meet the study's target
    "study-hyper-xxl": dict(lambdas=(0.3, 0.1, 0.03, 0.01), code_channels=8, train_size=192_000, num_epochs=2,
                            lr=2e-3, hyperprior=True, decoder_input="rounded"),
}
CODEC_PCA_COMPONENTS = (32, 64, 128, 256)       # PCA's best codec: the envelope over these components ...
CODEC_PCA_STEPS = (0.7, 1.0, 1.5, 2.5, 4.0, 6.0)  # ... and these steps ([-1, 1] pixel units): 47-420 bits
CODEC_MSE_STEP_FACTORS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6)  # notebook 08's model: steps x its code's spread
CODEC_JPEG_QUALITIES = (5, 10, 20, 30, 50)
CODEC_WEBP_QUALITIES = (0, 10, 30)
