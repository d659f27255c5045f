"""Makes tests/data/runs-<release>: small finished run folders, one of each kind the series trains.

Run it with the release's own code (a checkout of that revision), writing into an empty folder:

    cd <checkout of the release> && PYTHONPATH=. python <this file> /tmp/runs-out

The folders of revision b1e4154 (main before the recipe, ``Recipe``) are kept in tests/data/runs-b1e4154;
``tests/test_runs.py`` loads each with today's code and checks that no file changed.
"""

import sys
from pathlib import Path

import torch

from convae_utils import corruptions, runs, settings, vae, winning
from convae_utils.data import prepare_data
from convae_utils.training import denoising_step

root = Path(sys.argv[1])
config = settings.preset("smoke", train_size=64, val_size=16, test_size=32, num_epochs=1, latent_dim=8,
                         base_channels=2)
bundle = prepare_data(**config.data_options())
main = runs.train_or_load(config, data=bundle, runs_root=root, progress=False)
runs.train_or_load(config, name="denoise-test", train=bundle.train, val=bundle.val, evaluate=False,
                   step=denoising_step(corruptions.gaussian_noise(0.1, seed=0)), start_from=main.model,
                   runs_root=root, progress=False)
runs.train_or_load(config, name="detector-no3", train=bundle.train, val=bundle.val, evaluate=False,
                   details={"held_out_class": 3}, runs_root=root, progress=False)


def build_spatial(run_settings):  # notebook 08's builder, as the notebook defines it (module __main__)
    torch.manual_seed(run_settings.seed)
    return winning.SequentialAutoencoder(*winning.build_spatial_autoencoder(1, 2))


win = config.replace(lr=6e-3, latent_dim=16, base_channels=2)
winning.train_or_load(win, name="spatial", build=build_spatial, data=bundle, progress=False)  # runs_root: env
vae_settings = config.replace(latent_dim=16, lr=2e-3)
runs.train_or_load(vae_settings, name="vae-beta1", data=bundle, train=bundle.train, val=bundle.val,
                   build=vae.vae_builder(1, 2), step=vae.vae_step(1.0), runs_root=root, progress=False)
print("made", sorted(p.name for p in root.iterdir()))
