"""Python calls per training step of ``training.fit`` (the loop's own overhead), a count a busy machine cannot blur.

Counts every Python function call (``cProfile``) in two runs of a tiny model that differ only by their
number of steps, and prints the difference per step: what the loop, its callbacks, the progress bar
and the history add around the model's own calls. Run it on each revision to compare:

    PYTHONPATH=. python benchmarks/loop_calls.py
    git archive b80bae7 | tar -x -C /tmp/b80bae7 && PYTHONPATH=/tmp/b80bae7 python benchmarks/loop_calls.py

Result (2026-12-06): b80bae7 908, b1e4154 838, after the recipe 864-894 calls per step (tqdm refreshes vary) (the model's own
forward, backward and Adam included), about 0.1-0.3 ms of Python per step against ~80 ms of a
workshop step: the loop's overhead is not where a 7 % difference can come from.
"""

import cProfile
import pstats

import torch

from convae_utils.models import build_autoencoder
from convae_utils.shapes import make_shapes10
from convae_utils.training import fit

torch.set_num_threads(1)
VAL = make_shapes10(64, seed=1)


def calls(n_images: int) -> int:
    model = build_autoencoder(4, base_channels=1, seed=0)
    profile = cProfile.Profile()
    profile.enable()
    fit(model, make_shapes10(n_images, seed=0), VAL, num_epochs=1, batch_size=4, progress=True, device="cpu")
    profile.disable()
    return pstats.Stats(profile).total_calls


calls(64)  # warm-up: imports and first-call work are not the loop's
print(f"Python calls per training step: {(calls(1024) - calls(512)) / 128:.0f}")
