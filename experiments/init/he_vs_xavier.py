"""Xavier (the article's) against He initialisation for the article's ReLU autoencoder: a short, seeded study.

Run from the project root:

    PYTHONPATH=. python experiments/init/he_vs_xavier.py [--train-size 2000] [--epochs 2] [--seeds 0 1]

Both initialisations are applied to the same layers the article initialises (Conv2d and Linear, bias
0.01); the transposed convolutions keep PyTorch's default in both. For each it prints (1) the spread
(standard deviation) of the code and of the output of the untrained model on validation images, and
(2) the validation loss (MSE on [-1, 1]) after each epoch of the package's ``fit`` on photos10,
batch 64, Adam 1e-3, for every seed. Everything is seeded: the same machine prints the same numbers.
Quoted in notebook 02.
"""

from __future__ import annotations


import torch
from torch import nn

from convae_utils import data, images, models, training
from convae_utils.arguments import OneLineParser


def he_init(module: nn.Module) -> None:
    """He (Kaiming) uniform weights for ReLU, bias 0.01, on the layers the article initialises."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.constant_(module.bias, 0.01)


def build(init: str, seed: int) -> nn.Module:
    model = models.build_autoencoder(200, seed=seed)          # Xavier, as in the article
    if init == "he":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.apply(he_init)
    return model


def main(argv=None) -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    bundle = data.prepare_data("photos10", train_size=args.train_size, val_size=500, test_size=500, seed=0)
    x = images.normalize(bundle.val.images)
    print(f"photos10, {len(bundle.train):,} training images, {len(bundle.val):,} validation images, "
          f"{args.epochs} epochs, latent 200, seeds {args.seeds}")
    for init in ("xavier", "he"):
        for seed in args.seeds:
            model = build(init, seed)
            with torch.no_grad():
                code = model.encode(x)
                out = model.decode(code)
            history = training.fit(model, bundle.train, bundle.val, num_epochs=args.epochs, batch_size=64,
                                   seed=seed, device="cpu", progress=False)
            losses = " ".join(f"{v:.4f}" for v in history.val_epoch_loss)
            print(f"{init:<7} seed {seed}: at init code std {code.std():.3f}, output std {out.std():.3f} "
                  f"(targets {x.std():.3f}); validation MSE per epoch: {losses}")


if __name__ == "__main__":
    main()
