"""Time the rate-distortion baselines on the stand-in: PCA on 20,000 training images and the JPEG sweep.

Run: python -m tools study baselines [--threads 2] [--train 20000] [--test 10000] [--components 200]
Prints wall-clock seconds per step (load on the machine counts: run it on an idle machine).
"""

from __future__ import annotations

import time

import torch

from convae_utils.arguments import OneLineParser
from convae_utils import baselines as bl
from convae_utils.codecs.bits import IMAGE_VALUES
from convae_utils.codecs.quantizers import fit_quantizer
from convae_utils.shapes import make_shapes10


def main(argv=None, prog: str = "python -m tools study baselines") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--components", type=int, default=200)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = make_shapes10(args.train, seed=0).images
    test = make_shapes10(args.test, seed=0, split="test").images
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, train {len(train):,}, test {len(test):,}")

    def timed(label, fn):
        start = time.perf_counter()
        result = fn()
        print(f"{label:<48s} {time.perf_counter() - start:7.2f} s", flush=True)
        return result

    k = args.components
    fast = timed(f"fit_pca(k={k}, auto)", lambda: bl.fit_pca(train, k))
    print(f"    auto chose the {fast.solver} solver")
    codes = timed(f"encode {len(test):,} test images", lambda: fast.encode(test))
    recon = timed("decode", lambda: fast.decode(codes))
    row = timed("score_reconstructions (MSE, PSNR, SSIM)",
                lambda: bl.score_reconstructions("PCA (float32)", f"k={k}", recon, test, bits_per_image=32 * k))
    quantizer = fit_quantizer(fast.encode(train), 8)
    recon8 = timed("8-bit quantise + decode", lambda: fast.decode(quantizer.roundtrip(codes)))
    row8 = bl.score_reconstructions("PCA (8-bit)", f"k={k}", recon8, test, bits_per_image=quantizer.bits_per_image())
    print(bl.rate_distortion_table([row, row8]).to_string(index=False))
    for q in (10, 50, 90):
        recon_q, whole, scan = timed(f"jpeg_roundtrip(q={q}) over {len(test):,} images",
                                     lambda: bl.jpeg_roundtrip(test, q))
        print(f"    q={q}: mean bytes {whole.mean():.1f} whole file, {scan.mean():.1f} scan data")
    sweep = timed(f"jpeg_sweep {bl.JPEG_QUALITIES} (incl. scoring)", lambda: bl.jpeg_sweep(test))
    print(sweep.to_string(index=False))
    sizes = timed(f"resample_sweep {bl.RESAMPLE_SIZES} (incl. scoring)", lambda: bl.resample_sweep(test))
    print(sizes.to_string(index=False))
    target = bl.normalize(train)
    fitted = {fast.solver: fast}
    if len(train) >= IMAGE_VALUES:
        fitted["covariance"] = timed(f"fit_pca(k={k}, covariance: scikit-learn)",
                                     lambda: bl.fit_pca(train, k, solver="covariance"))
    fitted["exact"] = timed(f"fit_pca(k={k}, exact: torch.linalg.svd)", lambda: bl.fit_pca(train, k, solver="exact"))
    mse = {name: float(bl.per_image_mse(model.reconstruct(train), target).mean()) for name, model in fitted.items()}
    print("training MSE [0,1]: " + ", ".join(
        f"{name} {value:.6f} ({100 * (value / mse['exact'] - 1):+.3f}% vs exact)" for name, value in mse.items()))
    return 0
