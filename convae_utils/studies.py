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
# The from-scratch model's training budget: more patches than the profile's images, one epoch (None: the profile's).
PATCH_BUDGETS = {"full": {}, "workshop": dict(train_size=96_000, num_epochs=1), "smoke": {}}
# The PCA-initialised model starts at PCA: fewer patches (and a gentler rate) than the one from scratch.
PCA_INIT_BUDGETS = {"full": {}, "workshop": dict(train_size=24_000), "smoke": {}}
PCA_FIT_IMAGES = 24_000                   # the first training patches PCA is fitted on (the floor)
PCA_COMPONENTS = 256                      # PCA's largest code; the entropy coder zeroes the rest
PCA_STEPS = (0.2, 0.45, 0.7, 1.0, 1.5, 2.5, 4.0, 6.0)  # PCA's quantisation steps, [-1, 1] pixel units
REFINE_FIT_IMAGES = 1_000                 # training codes refined to fit a refined code's entropy model
