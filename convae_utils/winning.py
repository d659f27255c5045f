"""Notebook 08's models, steps and measurements: from the article's autoencoder to one that beats PCA.

Defined in notebook 08 (an autoencoder that wins). What is here:

- :class:`PCAInitAutoencoder`: starts as PCA's solution and learns a non-linear correction on top,
  so at step 0 it *is* PCA, and training moves it from there (not necessarily upwards);
- its training (AdamW with two guards, the one-cycle schedule, the noisy-code step) lives in
  :mod:`convae_utils.training` and :mod:`convae_utils.callbacks`, and its runs go through
  ``runs.train_or_load`` with a :class:`~convae_utils.runs.Recipe` like every other model;
- the honest comparison: :func:`codec_curve` entropy-codes a model's quantised code at a sweep of
  steps (:mod:`convae_utils.entropy`), :func:`pca_codec_curve` does the same for PCA's coefficients,
  and :func:`compare_at_equal_bits` reads one curve off the other at equal bits per image;
- :func:`article_parameter_shares`: where the article's parameters sit (92 % in two Linear layers).

The spatial-code model itself is :mod:`convae_utils.spatial`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import entropy
from .baselines import PCAModel, score_reconstructions
from .checks import check_float, check_image_batch, check_int
from .images import ImageSet, normalize
from .models import Autoencoder
from .spatial import CODE_SIZE, SpatialDecoder, SpatialEncoder

CODEC_FIT_IMAGES = 8_000  # training images whose codes fit an entropy model


# -- why the article's model loses ----------------------------------------------------------------

def article_parameter_shares(model: Autoencoder) -> pd.DataFrame:
    """Parameters of the article's autoencoder by kind of layer: rows Linear / Conv2d / ConvTranspose2d.

    Columns ``parameters`` and ``share`` (of all). With latent 50 the two Linear layers (4,096 -> 50
    and 50 -> 4,096) hold about 74 % of the parameters; with the article's latent 200, about 92 %.
    """
    counts: dict[str, int] = {}
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            kind = type(module).__name__
            counts[kind] = counts.get(kind, 0) + sum(p.numel() for p in module.parameters(recurse=False))
    total = sum(counts.values())
    frame = pd.DataFrame({"parameters": counts}).assign(share=lambda f: f["parameters"] / total)
    frame.index.name = "layer kind"
    return frame.sort_values("parameters", ascending=False)


# -- a model that starts as PCA -------------------------------------------------------------------

class PCAInitAutoencoder(nn.Module):
    """PCA's linear code and reconstruction, plus a learnt non-linear correction that starts at zero.

    ``encode(x) = W (x - mean) + e(x)`` and ``decode(z) = W^T z + mean + d(z)``: ``W`` (k, 3072) and
    ``mean`` are PCA's components and mean, kept fixed unless ``train_linear`` (Adam moves every weight
    by about the learning rate per step, large beside components of size ~0.02: in a trial here
    the training loss rose above PCA's in the first hundred steps), ``e`` is a
    :class:`~convae_utils.spatial.SpatialEncoder` followed by a Linear layer, ``d`` a Linear layer
    followed by a :class:`~convae_utils.spatial.SpatialDecoder`; the last layer of each correction
    starts at zero, so before training the model reconstructs exactly as PCA does.

    Images (B, 3, 32, 32) in [-1, 1] -> code (B, k) -> reconstruction (B, 3, 32, 32); clamped to
    [-1, 1] in eval mode (in training the output is left unclamped so every pixel has a gradient).
    """

    def __init__(self, pca: PCAModel, width: int = 32, depth: int = 1, correction_channels: int = 4,
                 seed: int | None = 0, train_linear: bool = False):
        super().__init__()
        if not isinstance(pca, PCAModel):
            raise TypeError(f"pca must be a convae_utils.baselines.PCAModel (baselines.fit_pca), got {type(pca).__name__}")
        self.k = pca.n_components
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            components = pca.components.detach().clone().float()  # (k, 3072)
            mean = pca.mean.detach().clone().float()              # (3072,)
            if train_linear:
                self.components, self.mean = nn.Parameter(components), nn.Parameter(mean)
            else:  # buffers: saved with the model, never moved by the optimiser
                self.register_buffer("components", components)
                self.register_buffer("mean", mean)
            self.encoder_correction = SpatialEncoder(correction_channels, width, depth)
            self.to_code = nn.Linear(correction_channels * CODE_SIZE * CODE_SIZE, self.k)
            self.from_code = nn.Linear(self.k, correction_channels * CODE_SIZE * CODE_SIZE)
            self.decoder_correction = SpatialDecoder(correction_channels, width, depth, output_activation=None)
        self.correction_channels = correction_channels
        for layer in (self.to_code, self.decoder_correction.features[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def latent_dim(self) -> int:
        return self.k

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        linear = (x.flatten(1) - self.mean) @ self.components.T                 # (B, k)
        return linear + self.to_code(self.encoder_correction(x).flatten(1))     # (B, k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.k:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"expected codes of shape (B, {self.k}), got {got}")
        linear = (z @ self.components + self.mean).view(-1, 3, 32, 32)          # PCA's reconstruction
        hidden = self.from_code(z).view(-1, self.correction_channels, CODE_SIZE, CODE_SIZE)
        out = linear + self.decoder_correction(hidden)
        return out if self.training else out.clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# -- the honest comparison ---------------------------------------------------------------------------

@torch.no_grad()  # not inference_mode: a RefinedCodes model needs gradients inside its encode
def codes_of(model: nn.Module, images: ImageSet, batch_size: int = 500) -> torch.Tensor:
    """The model's codes of every image, (N, D) float32 on the CPU (a spatial code is flattened)."""
    was = model.training
    model.eval()
    try:
        return torch.cat([model.encode(normalize(b)).flatten(1).float().cpu() for b in images.images.split(batch_size)])
    finally:
        model.train(was)


@torch.no_grad()
def decode_codes(model: nn.Module, codes: torch.Tensor, code_shape: tuple[int, ...], batch_size: int = 500
                 ) -> torch.Tensor:
    """Decode flat codes (N, D) reshaped to ``code_shape`` per image; reconstructions (N, 3, 32, 32)."""
    was = model.training
    model.eval()
    try:
        return torch.cat([model.decode(c.view(-1, *code_shape)).float().clamp(-1, 1)
                          for c in codes.split(batch_size)])
    finally:
        model.train(was)


def _code_shape(model: nn.Module) -> tuple[int, ...]:
    return tuple(getattr(model, "code_shape", (model.latent_dim,)))


def _curve_rows(name: str, train_codes: torch.Tensor, test_codes: torch.Tensor, decode, steps, test: ImageSet
                ) -> pd.DataFrame:
    rows = []
    for step in steps:
        model = entropy.fit_entropy_model(entropy.quantize(train_codes, step))
        coded = entropy.code_images(model, entropy.quantize(test_codes, step))
        reconstructions = decode(entropy.dequantize(coded.symbols, step))
        row = score_reconstructions(name, f"step={step:g}", reconstructions, test,
                                    bits_per_image=max(coded.bits_per_image, 1e-9))
        rows.append(row.assign(step=step, information_bits=float(coded.information_bits.mean()),
                               side_bits=coded.side_bits, clipped=coded.clipped))
    return pd.concat(rows, ignore_index=True)


def codec_curve(name: str, model: nn.Module, train: ImageSet, test: ImageSet, steps) -> pd.DataFrame:
    """A model as a codec at each quantisation step: entropy-coded bits per image and PSNR, one row per step.

    The entropy model of each step is fitted on the codes of ``train``; every test image's bitstream
    is decoded back (and checked) before it is reconstructed. Columns: those of
    :func:`convae_utils.baselines.score_reconstructions` (``bits_per_image`` = mean real bitstream
    size), plus ``step``, ``information_bits`` (the ideal), ``side_bits`` (once, for all images),
    ``clipped`` (test symbols outside the coded range).
    """
    shape = _code_shape(model)
    return _curve_rows(name, codes_of(model, train), codes_of(model, test),
                       lambda codes: decode_codes(model, codes, shape), steps, test)


def pca_codec_curve(pca: PCAModel, train: ImageSet, test: ImageSet, steps, name: str = "PCA (entropy-coded)"
                    ) -> pd.DataFrame:
    """PCA's coefficients as a codec: one uniform step for every component (what suits MSE, since the
    components are orthonormal: each coefficient's rounding error adds to the pixels' squared error
    unchanged), entropy-coded like :func:`codec_curve`. Components that round to zero cost almost nothing,
    so the step, not ``k``, sets the rate."""
    return _curve_rows(name, pca.encode(train.images), pca.encode(test.images),
                       lambda codes: pca.decode(codes).clamp(-1, 1), steps, test)


def compare_at_equal_bits(curve: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """For each point of ``curve``, the reference's PSNR at the same bits per image and the difference.

    The reference's PSNR (of the mean MSE) is interpolated linearly in log2(bits); points outside the
    reference's range of bits get NaN (no extrapolation). Columns ``bits_per_image``, ``psnr``,
    ``reference_psnr``, ``gain_db``.
    """
    ref = reference.sort_values("bits_per_image")
    x, y = np.log2(ref["bits_per_image"].to_numpy()), ref["psnr_of_mean_mse"].to_numpy()
    bits = curve["bits_per_image"].to_numpy()
    at = np.interp(np.log2(bits), x, y, left=np.nan, right=np.nan)
    return pd.DataFrame({"bits_per_image": bits, "psnr": curve["psnr_of_mean_mse"].to_numpy(),
                         "reference_psnr": at, "gain_db": curve["psnr_of_mean_mse"].to_numpy() - at})


# -- a better code for the same decoder: refine it by gradient descent ---------------------------------

def refine_codes(model: nn.Module, images: torch.Tensor, *, steps: int = 20, lr: float = 0.05,
                 batch_size: int = 500) -> torch.Tensor:
    """Codes the decoder reconstructs better: the encoder's codes moved by ``steps`` Adam steps on the MSE.

    The encoder is a fast *guess* of the code; nothing made it the best code for its decoder (for PCA
    it is: its projection is exactly the best code for its linear decoder). Here each image's code
    starts at the encoder's and descends the reconstruction's squared error, the decoder's weights
    fixed (only the codes get gradients), as in the "amortization gap" of learned codecs (Cremer et
    al. 2018; Yang et al. 2020). The code keeps its size and the decoder is unchanged; encoding costs
    ``steps`` decoder passes forward and back per image. Defined in notebook 08.

    Args:
        model: has ``encode`` and ``decode`` (notebook 08's models); put in eval mode for the call.
        images: floats (N, 3, 32, 32) in [-1, 1].
        steps: Adam steps (0 returns the encoder's codes). On notebook 08's model (photos10 stand-in,
            workshop budget) 20 steps gained 0.63 dB in the notebook's run and 0.63-0.67 dB on each of
            three seeds of ``python -m convae_utils.tools.winning --profile workshop --only "notebook 08"``.
        lr: Adam's step as a share of the standard deviation of each image's code from the encoder (a
            code's scale is the model's choice); each image is refined on its own, whatever the batch.
        batch_size: images per pass (memory only; the result does not depend on it).

    Returns the codes, float32, shaped as ``model.encode`` returns them. Raises RuntimeError under
    ``torch.inference_mode`` (which forbids the gradients this needs; ``torch.no_grad`` is fine).
    """
    check_image_batch(images)
    steps = check_int("steps", steps, minimum=0, maximum=10_000)
    lr = check_float("lr", lr, low=0.0, high=math.inf)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if torch.is_inference_mode_enabled():
        raise RuntimeError("refine_codes takes gradients with respect to the codes: call it outside "
                           "torch.inference_mode() (torch.no_grad() is fine)")
    was = model.training
    model.eval()
    out = []
    try:
        for batch in images.split(batch_size):
            with torch.no_grad():
                start = model.encode(batch).float()
            if steps == 0:
                out.append(start)
                continue
            # code = start + scale * delta, scale the spread of each image's own code: Adam moves every
            # element of delta by about lr per step, so each code by about lr x its own spread
            scale = start.flatten(1).std(dim=1).clamp_min(1e-8).view(-1, *[1] * (start.ndim - 1))
            delta = torch.zeros_like(start, requires_grad=True)
            optimizer = torch.optim.Adam([delta], lr=lr)
            with torch.enable_grad():
                for _ in range(steps):
                    loss = F.mse_loss(model.decode(start + scale * delta).float(), batch, reduction="sum")
                    (grad,) = torch.autograd.grad(loss, delta)  # the decoder's weights get no gradient
                    delta.grad = grad
                    optimizer.step()
            out.append((start + scale * delta).detach())
    finally:
        model.train(was)
    return torch.cat(out)


class RefinedCodes(nn.Module):
    """A model whose ``encode`` refines the encoder's code (:func:`refine_codes`); the decoder is the model's.

    ``encode`` (B, 3, 32, 32) in [-1, 1] -> the refined code, shaped as ``model.encode``'s;
    ``decode`` and ``latent_dim``/``code_shape`` are the wrapped model's, so every measurement of
    notebook 08 (PSNR, entropy-coded bits) applies unchanged. The parameters are the model's.
    """

    def __init__(self, model: nn.Module, steps: int = 20, lr: float = 0.05):
        super().__init__()
        self.model = model
        self.steps = check_int("steps", steps, minimum=0, maximum=10_000)
        self.lr = check_float("lr", lr, low=0.0, high=math.inf)

    @property
    def latent_dim(self) -> int:
        return int(self.model.latent_dim)

    @property
    def code_shape(self) -> tuple[int, ...]:
        return _code_shape(self.model)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return refine_codes(self.model, x, steps=self.steps, lr=self.lr)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# -- the learner's model: an encoder and a decoder as two nn.Sequential ------------------------------

class SequentialAutoencoder(nn.Module):
    """Any encoder and decoder (e.g. two ``nn.Sequential``) as an autoencoder the harness can train.

    ``encode``/``decode``/``forward`` as the series' models; ``latent_dim`` and ``code_shape`` are
    read off one probe image when it is built. Inputs are checked like the other models' (N, 3, 32, 32).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        with torch.no_grad():
            was = encoder.training
            encoder.eval()
            probe = encoder(torch.zeros(1, 3, 32, 32))
            encoder.train(was)
        self.code_shape = tuple(probe.shape[1:])
        self.latent_dim = int(probe[0].numel())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(check_image_batch(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(check_image_batch(x)))




# -- pictures and tables of notebook 08 ---------------------------------------------------------------

def upsampling_coverage(upsample: str, stages: int = 2, size: int = 4) -> torch.Tensor:
    """How many kernel taps reach each output pixel after ``stages`` x2 upsamplings: (size * 2**stages,)^2.

    Every weight is 1 and the input a constant map, so any pattern in the output comes from the layer's
    geometry alone. A stride-2 3x3 transposed convolution (``"transposed"``, the article's layer) covers
    output pixels alternately by 1, 2 and 4 taps: the checkerboard of Odena et al. (2016); nearest
    upsampling + a 3x3 convolution (``"nearest"``) covers every inner pixel alike.
    """
    from .spatial import _upsample

    x = torch.ones(1, 1, size, size)
    with torch.no_grad():
        for _ in range(stages):
            layers = nn.Sequential(*_upsample(1, 1, upsample))
            for module in layers.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
            x = layers(x)
    return x[0, 0]


def checkerboard_figure(decoded: dict[str, torch.Tensor] | None = None):
    """One picture: the tap coverage of each upsampling (:func:`upsampling_coverage`), and optionally images.

    ``decoded`` maps a label to one image (3, 32, 32) in [-1, 1] to show beside the coverage maps
    (e.g. what an untrained or briefly trained decoder of each kind draws). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    maps = {"stride-2 transposed conv": upsampling_coverage("transposed"),
            "upsample + 3x3 conv": upsampling_coverage("nearest")}
    panels = len(maps) + len(decoded or {})
    fig, axes = plt.subplots(1, panels, figsize=(2.4 * panels, 2.6))
    for ax, (label, coverage) in zip(axes, maps.items()):
        inner = coverage[4:-4, 4:-4]  # the borders see fewer taps in both layers (zero padding)
        # each map relative to its own mean, on one grey scale (0 to twice the mean): an even layer is a
        # flat mid-grey, not a blank panel
        ax.imshow((inner / inner.mean()).numpy(), cmap="gray", vmin=0, vmax=2)
        ax.set_title(f"{label}\ntaps per pixel {int(inner.min())}..{int(inner.max())}", fontsize=8)
    for ax, (label, image) in zip(axes[len(maps):], (decoded or {}).items()):
        ax.imshow(((image.detach().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy())
        ax.set_title(label, fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


STEP_FACTORS = (0.05, 0.1, 0.2, 0.4, 0.8)


def _steps_of(codes: torch.Tensor, factors=STEP_FACTORS) -> tuple[float, ...]:
    sigma = float(codes[:4000].std())
    return tuple(round(f * sigma, 6) for f in factors)


def relative_steps(model: nn.Module, train: ImageSet, factors=STEP_FACTORS) -> tuple[float, ...]:
    """Quantisation steps for a model's code: ``factor x`` the standard deviation of its training codes.

    A code's scale is the model's choice, so steps are set relative to it; the factors set the rate
    (0.05 is about 6 bits per value, 0.8 about 2, for a Gaussian code).
    """
    return _steps_of(codes_of(model, train.head(min(len(train), 4000))), factors)


def ablation_row(name: str, model: nn.Module, train: ImageSet, test: ImageSet, *, pca_curve: pd.DataFrame,
                 pca_psnr: dict[int, float], steps=None, fit_images: int = CODEC_FIT_IMAGES) -> tuple[dict, pd.DataFrame]:
    """One row of notebook 08's ablation table, and the model's codec curve.

    The entropy models are fitted on the codes of the first ``fit_images`` training images (their
    parameters settle long before ``CODEC_FIT_IMAGES``; a :class:`RefinedCodes` model, whose codes cost
    ``steps`` decoder passes each, can use fewer). The test images are encoded once.
    Row: ``model``, ``values`` (per image), ``test dB`` (float32 code), ``vs PCA, equal values (dB)``
    (``pca_psnr[values]``), and at the model's codec points (entropy-coded, :func:`codec_curve`):
    ``bits`` and ``dB`` of the middle point, ``vs PCA, equal bits (dB)`` there (PCA's entropy-coded
    curve interpolated, :func:`compare_at_equal_bits`) and ``rates won`` (points of the curve above
    PCA's, of those inside PCA's range of bits).
    """
    fit_images = check_int("fit_images", fit_images, minimum=1)
    fit_on = train.head(min(len(train), fit_images))
    shape = _code_shape(model)
    train_codes, test_codes = codes_of(model, fit_on), codes_of(model, test)
    steps = _steps_of(train_codes) if steps is None else steps  # relative to the code's spread
    decode = lambda codes: decode_codes(model, codes, shape)  # noqa: E731
    psnr = float(score_reconstructions(name, "float32", decode(test_codes), test, bits_per_image=1)["psnr_of_mean_mse"].iloc[0])
    values = int(model.latent_dim)
    curve = _curve_rows(name, train_codes, test_codes, decode, steps, test)
    gains = compare_at_equal_bits(curve, pca_curve)
    middle = len(curve) // 2
    inside = gains["gain_db"].notna()
    row = {"model": name, "values": values, "test dB": psnr,
           "vs PCA, equal values (dB)": psnr - pca_psnr[values] if values in pca_psnr else float("nan"),
           "bits": float(curve["bits_per_image"].iloc[middle]), "dB at those bits": float(curve["psnr_of_mean_mse"].iloc[middle]),
           "vs PCA, equal bits (dB)": float(gains["gain_db"].iloc[middle]),
           "rates won": f"{int((gains['gain_db'][inside] > 0).sum())} of {int(inside.sum())}"}
    return row, curve
