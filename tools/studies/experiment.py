"""Time the article's whole experiment for real: latent 200 and 1000, 10 epochs, 50,000 images.

``python -m tools study experiment [--device cuda] [--amp] [--compile] [--json PATH]``

Where ``bench`` measures throughput over a few dozen steps and extrapolates, this trains both of the
article's models end to end through the package's own ``fit``: 45,000 training images (5,000 held out
for validation after every epoch), batch 64, 10 epochs, the exemplars reconstructed after each epoch,
then the test set scored. The images are the offline stand-in (the same shapes and sizes as CIFAR-10,
so the same work); the wall time from the first step to the last score is what the GPU target of the
README refers to. No checkpoints are written (``fit`` without ``checkpoint``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from convae_utils.callbacks import ReconstructExemplars
from convae_utils.data import class_exemplars, split_train_val
from convae_utils.metrics import evaluate
from convae_utils.models import build_autoencoder
from convae_utils.settings import pick_device
from convae_utils.shapes import make_shapes10
from convae_utils.speed import Speed
from convae_utils.training import fit
from convae_utils.arguments import OneLineParser, whole_number

LATENT_DIMS = (200, 1000)
EPOCHS, TRAIN_POOL, VAL_SIZE, TEST_SIZE, BATCH_SIZE = 10, 50_000, 5_000, 10_000, 64


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_experiment(device: torch.device, *, amp: bool = False, compile: bool = False, epochs: int = EPOCHS,
                   train_pool: int = TRAIN_POOL, latent_dims=LATENT_DIMS, log=print) -> dict:
    """Train every model of ``latent_dims`` end to end; returns seconds per model and in all."""
    pool = make_shapes10(train_pool, seed=0, split="train")
    train, val = split_train_val(pool, min(VAL_SIZE, train_pool // 10), seed=0)
    test = make_shapes10(min(TEST_SIZE, train_pool // 5), seed=0, split="test")
    exemplars = class_exemplars(test)
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "torch": torch.__version__, "amp": amp, "compile": compile, "epochs": epochs,
              "train_images": len(train), "val_images": len(val), "test_images": len(test), "models": {}}
    total = 0.0
    for latent_dim in latent_dims:
        model = build_autoencoder(latent_dim, seed=0)
        _sync(device)
        start = time.perf_counter()
        history = fit(model, train, val, num_epochs=epochs, batch_size=BATCH_SIZE, device=device, progress=False,
                      callbacks=[ReconstructExemplars(exemplars)], speed=Speed(amp=amp, compile=compile))
        table = evaluate(model, test, device=device)
        _sync(device)
        seconds = time.perf_counter() - start
        total += seconds
        result["models"][f"latent {latent_dim}"] = {
            "seconds": round(seconds, 2), "epoch_seconds": [round(s, 2) for s in history.epoch_seconds],
            "final_train_loss": history.train_epoch_loss[-1], "final_val_loss": history.val_epoch_loss[-1],
            "test_psnr": float(table["psnr"].mean())}
        log(f"latent {latent_dim}: {seconds:.1f} s for {epochs} epochs of {len(train):,} images "
            f"(val loss {history.val_epoch_loss[-1]:.4f}, test PSNR {table['psnr'].mean():.2f} dB)")
    result["seconds"] = round(total, 2)
    return result


def main(argv=None, prog: str = "python -m tools study experiment") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward pass")
    parser.add_argument("--epochs", type=whole_number(1), default=EPOCHS, help=f"epochs (default {EPOCHS})")
    parser.add_argument("--train-pool", type=whole_number(100), default=TRAIN_POOL,
                        help=f"training images before the validation hold-out (default {TRAIN_POOL:,})")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    result = run_experiment(device, amp=args.amp, compile=args.compile, epochs=args.epochs,
                            train_pool=args.train_pool)
    print(f"whole experiment on {result['device_name']} (amp={args.amp}, compile={args.compile}): "
          f"{result['seconds']:.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0

