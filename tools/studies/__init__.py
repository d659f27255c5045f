"""The headless studies, one command for all: ``python -m tools study NAME [options]`` (``make study``).

Each study trains or loads what it needs and prints the table the README cites. A study that a
notebook also shows reads its parameters from :mod:`convae_utils.studies` (or, for notebook 09,
:data:`convae_utils.vae.SWEEPS`), the same values the notebook's parameters cell reads.
"""

from __future__ import annotations

import importlib

# name -> (module in this folder, what it measures). A notebook's number names the study it runs headless.
STUDIES: dict[str, tuple[str, str]] = {
    "06": ("rate_distortion", "notebook 06: the autoencoder against PCA, JPEG and a thumbnail at equal bits"),
    "08": ("winning", "notebook 08: the ablation of the spatial-code model over seeds"),
    "09": ("vae_sweep", "notebook 09: the VAE's beta sweep as rate and distortion"),
    "10": ("learned_codec", "notebook 10: learned codecs (one per lambda) against PCA's best codec and JPEG, over seeds"),
    "codec-variants": ("codec_variants", "notebook 10: trials of the codec's training (rounding, rate warm-up, a hyperprior)"),
    "colour": ("colour_check", "notebooks 03-05: is colour learnt (chroma kept, mean colour)"),
    "baselines": ("measure_baselines", "the time PCA and the JPEG sweep take on the stand-in"),
    "experiment": ("experiment", "the article's whole experiment through fit, timed (a GPU)"),
}


def run(name: str, argv: list[str]) -> int:
    """Run study ``name`` (a key of :data:`STUDIES`) with its own options ``argv``; its exit status."""
    module = importlib.import_module(f"{__name__}.{STUDIES[name][0]}")
    return module.main(argv, prog=f"python -m tools study {name}")
