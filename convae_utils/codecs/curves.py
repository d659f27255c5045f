"""Codec curves: a model (or PCA) as a codec at a sweep of quantisation steps, and curves compared at equal bits.

Defined in notebook 08 (an autoencoder that wins); notebook 10 scores its learned codec the same way.
A codec's point is (bits per image, PSNR): the code is quantised with one step
(:func:`convae_utils.codecs.quantizers.quantize`), entropy-coded into real bitstreams that are decoded
back (:mod:`convae_utils.codecs.entropy_coding`), decoded by the model and scored
(:func:`convae_utils.baselines.score_reconstructions`).

- :func:`codes_of`, :func:`decode_codes`: a model's codes of many images and its reconstructions of
  codes, batch by batch on the model's own device;
- :func:`codec_curve` (a model), :func:`pca_codec_curve` (PCA's coefficients, one step for all);
- :func:`pca_best_codec_curve`: **PCA's best codec**, the upper envelope (:func:`upper_envelope`) over
  the number of components and the step, the opponent a learned codec must beat at equal bits (its
  points chosen on ideal bits, then only they coded into bitstreams);
- :func:`compare_at_equal_bits`: one curve read off another at the same bits per image;
- :func:`relative_steps`, :func:`ablation_row`: steps set relative to a code's spread, and one row of
  notebook 08's ablation table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..baselines import PCAModel, check_sweep, score_reconstructions
from ..checks import check_int
from ..images import ImageSet, normalize
from ..inference import batched, evaluating, model_device
from ..models import code_shape_of
from . import entropy_coding
from .bits import bits_per_pixel
from .quantizers import dequantize, quantize

CODEC_FIT_IMAGES = 8_000  # training images whose codes fit an entropy model
STEP_FACTORS = (0.05, 0.1, 0.2, 0.4, 0.8)
PCA_BEST_COMPONENTS = (8, 16, 32, 64, 128, 256)  # numbers of components PCA's best codec chooses among


# -- a model's codes, and its reconstructions of codes ----------------------------------------------------

@torch.no_grad()  # not inference_mode: a RefinedCodes model needs gradients inside its encode
def codes_of(model: nn.Module, images: ImageSet, batch_size: int = 500) -> torch.Tensor:
    """The model's codes of every image, (N, D) float32 on the CPU (a spatial code is flattened).

    Each batch goes to the model's device (:func:`convae_utils.inference.batched`); the model is in eval
    mode for the call and keeps the mode it had.
    """
    with evaluating(model):
        return batched(lambda part: model.encode(normalize(part)).flatten(1), images.images,
                       device=model_device(model), batch_size=batch_size)


@torch.no_grad()
def decode_codes(model: nn.Module, codes: torch.Tensor, code_shape: tuple[int, ...], batch_size: int = 500
                 ) -> torch.Tensor:
    """Decode flat codes (N, D) reshaped to ``code_shape`` per image; reconstructions (N, 3, 32, 32) in
    [-1, 1], float32 on the CPU (each batch decoded on the model's device, in eval mode)."""
    with evaluating(model):
        return batched(lambda part: model.decode(part.view(-1, *code_shape)).float().clamp(-1, 1), codes,
                       device=model_device(model), batch_size=batch_size)


# -- curves -------------------------------------------------------------------------------------------------

def _curve_rows(name: str, train_codes: torch.Tensor, test_codes: torch.Tensor, decode, steps, test: ImageSet,
                ssim: bool = True) -> pd.DataFrame:
    rows = []
    for step in steps:
        model = entropy_coding.fit_entropy_model(quantize(train_codes, step))
        coded = entropy_coding.code_images(model, quantize(test_codes, step))
        reconstructions = decode(dequantize(coded.symbols, step))
        row = score_reconstructions(name, f"step={step:g}", reconstructions, test,
                                    bits_per_image=max(coded.bits_per_image, 1e-9), ssim=ssim)
        rows.append(row.assign(step=step, information_bits=float(coded.information_bits.mean()),
                               side_bits=coded.side_bits, clipped=coded.clipped, bitstream=not coded.ideal))
    return pd.concat(rows, ignore_index=True)


def _ideal_rows(name: str, train_codes: torch.Tensor, test_codes: torch.Tensor, decode, steps, test: ImageSet
                ) -> pd.DataFrame:
    """:func:`_curve_rows` on ideal bits, for choosing points: no bitstream, no SSIM.

    The same entropy model and the same clipped symbols as :func:`_curve_rows` (a bitstream decodes to
    exactly those), so the same PSNR; ``bits_per_image`` is the mean ideal bits (``information_bits``).
    """
    rows = []
    for step in steps:
        model = entropy_coding.fit_entropy_model(quantize(train_codes, step))
        symbols = model.clip(quantize(test_codes, step))
        bits = float(model.information_bits(symbols).mean())
        row = score_reconstructions(name, f"step={step:g}", decode(dequantize(symbols, step)), test,
                                    bits_per_image=max(bits, 1e-9), ssim=False)
        rows.append(row.assign(step=step, information_bits=bits))
    return pd.concat(rows, ignore_index=True)


def codec_curve(name: str, model: nn.Module, train: ImageSet, test: ImageSet, steps) -> pd.DataFrame:
    """A model as a codec at each quantisation step: entropy-coded bits per image and PSNR, one row per step.

    The entropy model of each step is fitted on the codes of ``train``; every test image's bitstream
    is decoded back (and checked) before it is reconstructed. Columns: those of
    :func:`convae_utils.baselines.score_reconstructions` (``bits_per_image`` = mean real bitstream
    size), plus ``step``, ``information_bits`` (the ideal), ``side_bits`` (once, for all images),
    ``clipped`` (test symbols outside the coded range) and ``bitstream`` (False where no entropy coder
    is installed and the bits are the ideal ones: :data:`convae_utils.codecs.entropy_coding.NO_CODER_NOTE`).
    """
    shape = code_shape_of(model)
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


def pca_codec_curves(pca: PCAModel, train: ImageSet, test: ImageSet, steps,
                     components=PCA_BEST_COMPONENTS, *, ssim: bool = True, ideal: bool = False) -> list[pd.DataFrame]:
    """One :func:`pca_codec_curve` per number of components ``k`` (PCA truncated to its first ``k``).

    ``components`` larger than ``pca.n_components`` are left out (a PCA of 64 components cannot offer
    128); at least one must remain, else ValueError. Each curve's ``method`` is ``"PCA-<k>"``, its
    ``setting`` ``"k=<k>, step=<step>"``, and a column ``components`` holds ``k``. The entropy models
    are fitted on the codes of ``train`` (the same training images for every ``k``). ``ssim=False``
    leaves the ``ssim`` column NaN (PSNR and bits are the same; SSIM costs most of the scoring).
    ``ideal=True`` writes no bitstream and scores no SSIM: ``bits_per_image`` is then the entropy model's
    ideal bits (``information_bits``, the same column), PSNR is what the bitstream would give (it decodes
    to the same symbols), and the columns are those of :func:`score_reconstructions` plus ``step``,
    ``information_bits``, ``components`` (what :func:`pca_best_codec_curve` chooses its points on).
    """
    wanted = check_sweep("components", components)
    ks = sorted(k for k in wanted if k <= pca.n_components)
    if not ks:
        raise ValueError(f"components {list(wanted)} are all larger than the PCA's {pca.n_components} components; "
                         "fit PCA with more components or ask for fewer")
    train_all, test_all = pca.encode(train.images), pca.encode(test.images)  # the first k columns are PCA-k's
    return [_pca_k_curve(pca, k, train_all, test_all, steps, test, ssim, ideal=ideal) for k in ks]


def _pca_k_curve(pca: PCAModel, k: int, train_all: torch.Tensor, test_all: torch.Tensor, steps, test: ImageSet,
                 ssim: bool = True, *, ideal: bool = False) -> pd.DataFrame:
    """PCA truncated to ``k`` components as a codec at ``steps``, from all components' codes (N, >= k).

    ``ideal=True``: scored on ideal bits (:func:`_ideal_rows`) instead of bitstreams.
    """
    truncated = PCAModel(pca.mean, pca.components[:k], pca.explained_variance[:k], pca.n_train, pca.solver)
    args = (f"PCA-{k}", train_all[:, :k], test_all[:, :k], lambda codes: truncated.decode(codes).clamp(-1, 1),
            steps, test)
    curve = _ideal_rows(*args) if ideal else _curve_rows(*args, ssim=ssim)
    return curve.assign(setting=f"k={k}, " + curve["setting"], components=k)


def upper_envelope(curves, name: str | None = None) -> pd.DataFrame:
    """The best of several codec curves at every rate: the points that no curve beats at their bits.

    A point is kept when its PSNR is at least every curve's PSNR interpolated (linearly in log2 of the
    bits, as :func:`compare_at_equal_bits` reads curves) at its bits. Between two kept points each
    curve is linear or absent, so the envelope's straight line lies on or above every curve: read at any
    bits, the envelope is **never below any single curve**. The chord between points of two different
    curves is not a codec anyone can run (it stands for switching between them per image, about what
    such a mix would give), so the envelope is, if anything, a slightly stronger opponent than any
    real one. Rows keep their curve's columns (``method`` set to ``name`` when given), sorted by bits.
    """
    parts = [c.sort_values("bits_per_image") for c in curves]
    if not parts:
        raise ValueError("curves is empty: give at least one codec curve")
    rows = pd.concat(parts, ignore_index=True)
    at = np.log2(rows["bits_per_image"].to_numpy(dtype=float))
    best = np.full(len(rows), -np.inf)
    for curve in parts:
        x = np.log2(curve["bits_per_image"].to_numpy(dtype=float))
        y = curve["psnr_of_mean_mse"].to_numpy(dtype=float)
        best = np.fmax(best, np.interp(at, x, y, left=np.nan, right=np.nan))
    kept = rows[rows["psnr_of_mean_mse"].to_numpy(dtype=float) >= best - 1e-9]
    kept = kept.sort_values(["bits_per_image", "psnr_of_mean_mse"], ascending=[True, False])
    kept = kept.drop_duplicates("bits_per_image").reset_index(drop=True)
    return kept if name is None else kept.assign(method=name)


def pca_best_codec_curve(pca: PCAModel, train: ImageSet, test: ImageSet, steps, components=PCA_BEST_COMPONENTS,
                         name: str = "PCA's best codec") -> pd.DataFrame:
    """PCA's best codec: the upper envelope (:func:`upper_envelope`) over the number of components and the step.

    Each ``k`` of ``components`` (truncating ``pca``; those above ``pca.n_components`` are left out, as
    in :func:`pca_codec_curves`) is swept over ``steps``, its entropy models fitted on the codes of
    ``train`` and scored on ``test``; the envelope keeps, at each rate, what the best choice of ``k`` and
    step gives. This is the opponent a learned codec must beat at equal bits (one step for all 256
    components is not PCA's best: at low rates fewer components do better). Rows: the kept points,
    sorted by bits, each exactly the row :func:`pca_codec_curves` gives for its ``(k, step)`` (real
    bitstreams, each decoded back and checked, and SSIM), ``method`` ``name``, ``setting``
    ``"k=<k>, step=<step>"``, ``components``.

    **The points are chosen on ideal bits.** Every ``(k, step)`` is first scored on the entropy model's
    ideal bits (``-log2 p`` of its symbols, :meth:`~convae_utils.codecs.entropy_coding.EntropyModel.information_bits`)
    and PSNR, with no bitstream and no SSIM; the envelope is taken there, and only the kept points are
    then entropy-coded into real bitstreams and scored with SSIM. A bitstream decodes to the very symbols
    the ideal bits count, so the PSNR is the same; its size is the ideal bits plus the coder's overhead,
    a nearly constant few bytes per image (19-25 bits on the workshop grids), which shifts every point
    alike and does not change which ``(k, step)`` wins at a rate (where two points lie within those few
    bits of each other it can: notebook 08's workshop grid keeps 13 points instead of 14, and no point
    of the grid is above the envelope on real bits either). What it saves: the bitstreams (each image
    encoded and decoded back) of every point that is dropped, 16 of notebook 10's 24 and 35 of notebook
    08's 48 in the workshop profile, about a third of the call's time
    (``benchmarks/results/pca-best-codec-2core.txt``). ``tests/test_codecs.py`` checks that, on ideal
    bits, no single ``k``'s curve is ever above the envelope, and that each row is the one coding its
    point alone gives. Where the coder is missing, every bit count is the ideal one and the result is
    the envelope of the whole grid (:data:`~convae_utils.codecs.entropy_coding.NO_CODER_NOTE`).
    """
    chosen = upper_envelope(pca_codec_curves(pca, train, test, steps, components, ideal=True))
    train_all, test_all = pca.encode(train.images), pca.encode(test.images)
    rows = [_pca_k_curve(pca, int(k), train_all, test_all, [step], test)  # as pca_codec_curves codes it
            for k, step in zip(chosen["components"], chosen["step"])]
    best = pd.concat(rows, ignore_index=True).sort_values("bits_per_image", kind="stable")
    return best.reset_index(drop=True).assign(method=name)


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


# -- steps relative to a code, and notebook 08's ablation row -------------------------------------------------

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
                 pca_psnr: dict[int, float], steps=None, step_factors=STEP_FACTORS,
                 fit_images: int = CODEC_FIT_IMAGES, train_codes: torch.Tensor | None = None,
                 test_codes: torch.Tensor | None = None) -> tuple[dict, pd.DataFrame]:
    """One row of notebook 08's ablation table, and the model's codec curve.

    The entropy models are fitted on the codes of the first ``fit_images`` training images (their
    parameters settle long before ``CODEC_FIT_IMAGES``; a :class:`~convae_utils.models.RefinedCodes`
    model, whose codes cost ``steps`` decoder passes each, can use fewer). The test images are encoded once.
    Row: ``model``, ``values`` (per image), ``test dB`` (float32 code), ``vs PCA, equal values (dB)``
    (``pca_psnr[values]``), and at the model's codec points (entropy-coded, :func:`codec_curve`):
    ``bits`` and ``dB`` of the middle point, ``vs PCA, equal bits (dB)`` there (``pca_curve``
    interpolated, :func:`compare_at_equal_bits`) and ``rates won`` (points of the curve above
    ``pca_curve``, of those inside its range of bits); ``bpp`` beside ``bits`` (bits per pixel, / 1,024).

    Codes computed elsewhere can be handed in instead of encoding again: ``train_codes`` (N, D), the
    codes the entropy models are fitted on (then ``train`` and ``fit_images`` are not used), and
    ``test_codes`` (len(test), D), the codes scored. Notebook 08 passes a refined code's test codes
    with the *encoder's* training codes: the decoder is the same, so its entropy models can be too, and
    no training code has to be refined. Without ``steps``, the steps are ``step_factors`` x the spread
    of the training codes.
    """
    shape = code_shape_of(model)
    if train_codes is None:
        fit_images = check_int("fit_images", fit_images, minimum=1)
        train_codes = codes_of(model, train.head(min(len(train), fit_images)))
    if test_codes is None:
        test_codes = codes_of(model, test)
    elif len(test_codes) != len(test):
        raise ValueError(f"test_codes has {len(test_codes)} rows for {len(test)} test images: give one code per image")
    steps = _steps_of(train_codes, step_factors) if steps is None else steps  # relative to the code's spread
    decode = lambda codes: decode_codes(model, codes, shape)  # noqa: E731
    psnr = float(score_reconstructions(name, "float32", decode(test_codes), test, bits_per_image=1,
                                       ssim=False)["psnr_of_mean_mse"].iloc[0])
    values = int(model.latent_dim)
    curve = _curve_rows(name, train_codes, test_codes, decode, steps, test)
    gains = compare_at_equal_bits(curve, pca_curve)
    middle = len(curve) // 2
    inside = gains["gain_db"].notna()
    row = {"model": name, "values": values, "test dB": psnr,
           "vs PCA, equal values (dB)": psnr - pca_psnr[values] if values in pca_psnr else float("nan"),
           "bits": float(curve["bits_per_image"].iloc[middle]), "bpp": bits_per_pixel(curve["bits_per_image"].iloc[middle]),
           "dB at those bits": float(curve["psnr_of_mean_mse"].iloc[middle]),
           "vs PCA, equal bits (dB)": float(gains["gain_db"].iloc[middle]),
           "rates won": f"{int((gains['gain_db'][inside] > 0).sum())} of {int(inside.sum())}"}
    return row, curve
