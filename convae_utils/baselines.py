"""Is the autoencoder any good? The obvious baselines at equal bits per image, and the units to compare them.

Defined in the rate-distortion notebook (issue 11, after notebook 05). Every baseline takes the uint8
images of an :class:`~convae_utils.data.ImageSet` (``ImageSet.images``, shape (N, 3, 32, 32), pixels
0..255) and returns reconstructions the metrics can score, with the bits one image costs:

- **PCA** (:func:`fit_pca`): the best *linear* code of ``k`` values, fitted on the training images.
  A float32 code costs ``32 k`` bits; quantised
  (:func:`convae_utils.codecs.quantizers.fit_quantizer`) 8 or 4 bits per value.
- **JPEG** (:func:`jpeg_roundtrip`): Pillow's encoder over a quality sweep; bytes are counted with
  and without the file's header (see that function for what the header is).
- **Downsampling** (:func:`resample_roundtrip`): keep a ``size x size`` uint8 thumbnail
  (``size * size * 3 * 8`` bits) and enlarge it again with bicubic interpolation.

:func:`score_reconstructions` turns reconstructions into one row of a rate-distortion table (PSNR two
ways, SSIM, bits), the ``*_sweep`` functions build whole tables, :func:`convert_units` and
:func:`published_references` put our numbers beside published ones. The sizes of codes themselves
are in :mod:`convae_utils.codecs.bits`, quantisers in :mod:`convae_utils.codecs.quantizers`. Figures: :func:`convae_utils.plotting.rate_distortion_plot`.

All pixel metrics are on the [0, 1] scale, as in :mod:`convae_utils.metrics`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image, features

from .checks import IMAGE_SHAPE, check_choice, check_int, describe_shape
from .codecs.bits import IMAGE_BITS, IMAGE_VALUES, code_bits
from .codecs.quantizers import QUANTIZER_BITS, fit_quantizer
from .images import ImageSet, normalize
from .inference import batched, evaluating, model_device
from .metrics import MAX_PSNR_DB, per_image_mse, per_image_ssim

__all__ = [
    "PCAModel", "fit_pca", "jpeg_roundtrip", "JPEG_QUALITIES", "resample_roundtrip", "resample_bits", "RESAMPLE_SIZES",
    "check_sweep", "score_reconstructions",
    "rate_distortion_table", "pca_sweep", "jpeg_sweep", "resample_sweep", "TABLE_COLUMNS",
    "convert_units", "psnr_two_ways", "units_card", "published_references",
]

JPEG_QUALITIES = (5, 10, 20, 30, 50, 75, 90, 95)  # a sweep from barely recognisable to near-lossless
RESAMPLE_SIZES = (4, 8, 12, 16, 24)
TABLE_COLUMNS = ("method", "setting", "bits_per_image", "share_of_image", "images", "mse",
                 "psnr_of_mean_mse", "mean_psnr", "ssim")
_SCORE_BATCH = 1000  # images scored at once: bounds the float copies SSIM makes


# -- input checks ---------------------------------------------------------------------------------

def _uint8_images(images, name: str = "images") -> torch.Tensor:
    """An ImageSet or a uint8 tensor (N, 3, 32, 32) -> the uint8 tensor on the CPU."""
    if isinstance(images, ImageSet):
        images = images.images
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a uint8 tensor of shape (N, 3, 32, 32) or an ImageSet, "
                        f"got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 pixels 0..255 (ImageSet.images), got dtype {images.dtype}; "
                         "convert [-1, 1] floats with convae_utils.images.to_uint8")
    if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE or len(images) == 0:
        raise ValueError(f"expected {name} of shape (N, 3, 32, 32) with N >= 1, got {describe_shape(images)}")
    return images.detach().cpu()


def _model_scale(images, name: str) -> torch.Tensor:
    """uint8 pixels (or an ImageSet) or floats in [-1, 1] -> float32 [-1, 1] on the CPU."""
    if isinstance(images, ImageSet) or (isinstance(images, torch.Tensor) and images.dtype == torch.uint8):
        return normalize(_uint8_images(images, name))
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"{name} must be uint8 pixels or floats in [-1, 1] of shape (N, 3, 32, 32), got {got}")
    if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE or len(images) == 0:
        raise ValueError(f"expected {name} of shape (N, 3, 32, 32) with N >= 1, got {describe_shape(images)}")
    return images.detach().cpu().float()


def check_sweep(name: str, values: Iterable, *, minimum: int = 1, maximum: int | None = None) -> tuple[int, ...]:
    """The values of a sweep (latent sizes, components, qualities ...) as a tuple, checked before any work.

    Raises ValueError when it is empty, names a value twice, or a value lies outside
    ``[minimum, maximum]``; TypeError when a value is not a whole number.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of whole numbers, got {type(values).__name__}")
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} is empty: give at least one value")
    checked = tuple(check_int(f"{name} entry", v, minimum=minimum, maximum=maximum) for v in values)
    twice = sorted({v for v in checked if checked.count(v) > 1})
    if twice:
        raise ValueError(f"{name} names {', '.join(map(str, twice))} more than once ({list(checked)}); "
                         "give each value once")
    return checked


# -- PCA ------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PCAModel:
    """Principal components of flattened images on the [-1, 1] scale (the autoencoder's input scale).

    Attributes:
        mean: (3072,) float32, the mean training image, flattened.
        components: (k, 3072) float32, orthonormal rows, by decreasing explained variance.
        explained_variance: (k,) float32, variance of the training codes per component.
        n_train: number of training images it was fitted on.
        solver: ``"covariance"``, ``"exact"`` or ``"randomized"`` (see :func:`fit_pca`).
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance: torch.Tensor
    n_train: int
    solver: str

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def encode(self, images) -> torch.Tensor:
        """uint8 images (N, 3, 32, 32) or floats in [-1, 1] -> codes (N, k), float32."""
        x = _model_scale(images, "images").flatten(1)
        return (x - self.mean) @ self.components.T  # (N, 3072) -> (N, k)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (N, k) -> images (N, 3, 32, 32) on the [-1, 1] scale, unclamped (metrics clamp)."""
        if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[1] != self.n_components:
            got = describe_shape(codes) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"expected codes of shape (N, {self.n_components}), got {got}")
        return (codes.float() @ self.components + self.mean).reshape(-1, *IMAGE_SHAPE)

    def reconstruct(self, images) -> torch.Tensor:
        """decode(encode(images)): the orthogonal projection onto the k components, [-1, 1] scale."""
        return self.decode(self.encode(images))


def fit_pca(train_images, n_components: int, *, solver: str = "auto", seed: int = 0) -> PCAModel:
    """Fit PCA with ``n_components`` components on uint8 training images (N, 3, 32, 32) or an ImageSet.

    Pixels are put on the [-1, 1] scale (:func:`~convae_utils.images.normalize`), flattened to 3,072
    values and centred on the mean training image. ``solver``:

    - ``"covariance"``: scikit-learn's ``PCA(svd_solver="covariance_eigh")`` in float64: the
      eigenvectors of the 3,072 x 3,072 covariance matrix. Exact, and its cost grows with N only
      through one matrix product: about 7 s for 12,000 images on 2 CPU cores, whatever ``k``.
      Needs N >= 3,072 (more images than pixel values), else it is refused.
    - ``"exact"``: ``torch.linalg.svd`` of the centred data (the closed form). Exact, but about a
      minute for 20,000 images on 2 CPU cores.
    - ``"randomized"``: ``torch.svd_lowrank`` (Halko et al.'s randomized SVD) with
      ``k + max(20, k // 4)`` oversampled directions and 4 power iterations, truncated to ``k``.
      Seconds for small ``k`` (2 s for k = 200 on 12,000 images), slower than the covariance for
      large ``k`` (15 s for k = 1,000); its training MSE is a fraction of a percent above the exact
      solution's (``python -m tools study baselines`` measures both).
      The random start is seeded by ``seed`` without touching the global random state.
    - ``"auto"`` (default): randomized while the oversampled size is at most 384 (k <= 307) and
      below half of ``min(N, 3072)``; otherwise the covariance when N >= 3,072, else exact.

    Raises ValueError when ``n_components`` exceeds ``min(N, 3072)``, or for ``"covariance"`` with
    fewer than 3,072 images, before any work. Introduced in notebook 06.
    """
    images = _uint8_images(train_images, "train_images")
    n_train = len(images)
    limit = min(n_train, IMAGE_VALUES)
    if isinstance(n_components, Real) and not isinstance(n_components, bool) and n_components > limit:
        raise ValueError(f"n_components must be at most min(training images, pixel values) = "
                         f"min({n_train:,}, {IMAGE_VALUES:,}) = {limit:,}, got {n_components:,}; "
                         "use fewer components or more training images")
    k = check_int("n_components", n_components, maximum=limit)
    check_choice("solver", solver, ("auto", "covariance", "exact", "randomized"))
    check_int("seed", seed, minimum=0)
    oversampled = min(k + max(20, k // 4), limit)
    if solver == "auto":
        if 2 * oversampled < limit and oversampled <= IMAGE_VALUES // 8:
            solver = "randomized"
        else:
            solver = "covariance" if n_train >= IMAGE_VALUES else "exact"
    if solver == "covariance" and n_train < IMAGE_VALUES:
        raise ValueError(f"solver='covariance' needs at least as many training images as pixel values "
                         f"({IMAGE_VALUES:,}), got {n_train:,}; use solver='exact' or 'auto'")
    x = normalize(images).flatten(1)  # (N, 3072) on [-1, 1]
    mean = x.mean(dim=0)
    x -= mean
    if solver == "covariance":
        from sklearn.decomposition import PCA  # imported here: scikit-learn is slow to import

        fitted = PCA(k, svd_solver="covariance_eigh", copy=False).fit(x.double().numpy())
        components = torch.from_numpy(fitted.components_).float()
        variance = torch.from_numpy(fitted.explained_variance_).float()
        return PCAModel(mean.contiguous(), components.contiguous(), variance.contiguous(), n_train, solver)
    if solver == "exact":
        _, singular, vh = torch.linalg.svd(x, full_matrices=False)
        components = vh[:k]
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, singular, v = torch.svd_lowrank(x, q=oversampled, niter=4)
        components = v[:, :k].T
    variance = singular[:k].pow(2) / max(n_train - 1, 1)
    return PCAModel(mean.contiguous(), components.contiguous(), variance.contiguous(), n_train, solver)


def pca_reconstruction_errors(pca: PCAModel, images, *, batch_size: int = 1000) -> torch.Tensor:
    """Each image's MSE ([0, 1] pixel scale) after PCA's round trip: float32 (N,), an anomaly score.

    The classical counterpart of ``anomaly.reconstruction_errors`` (notebook 07): fit PCA on the
    normal training images with as many components as the autoencoder's code has values, and an
    image far from the normal images' subspace gets a high score.
    """
    pixels = _uint8_images(images, "images")
    check_int("batch_size", batch_size)
    scores = [per_image_mse(pca.reconstruct(part), normalize(part)) for part in pixels.split(batch_size)]
    return torch.cat(scores).float()


# -- JPEG -----------------------------------------------------------------------------------------

def _check_quality(quality) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be a whole number from 1 to 95 (Pillow: above 95 only "
                         f"grows the file), got {quality!r}")
    return int(quality)


def _scan_bytes(data: bytes) -> int:
    """Bytes of entropy-coded scan data in a baseline JPEG file: between the SOS header and EOI."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        raise ValueError("not a complete JPEG file (no SOI/EOI marker)")
    position = 2
    while position + 4 <= len(data):  # every segment before the scan has a 2-byte length
        if data[position] != 0xFF:
            raise ValueError(f"malformed JPEG: expected a marker at byte {position}")
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2:position + 4], "big")  # counts itself, not the marker
        position += 2 + length
        if marker == 0xDA:  # start of scan: the entropy-coded data follows its header
            return len(data) - 2 - position  # minus the 2-byte EOI marker at the end
    raise ValueError("malformed JPEG: no start-of-scan marker")


def jpeg_roundtrip(images, quality: int, *, subsampling: str = "4:2:0"
                   ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Encode every image as a JPEG file with Pillow and decode it again.

    Args:
        images: uint8 tensor (N, 3, 32, 32) or an ImageSet.
        quality: Pillow's quality, a whole number 1..95 (checked before any work).
        subsampling: chroma subsampling, ``"4:2:0"`` (the default of Pillow and of most JPEG
            files: colour kept at half resolution both ways), ``"4:2:2"`` or ``"4:4:4"`` (none).

    Returns:
        ``(reconstructions, bytes_with_header, bytes_without_header)``: uint8 (N, 3, 32, 32), and two
        int64 arrays (N,). ``bytes_with_header`` is the whole file, ``len`` of what Pillow writes.
        ``bytes_without_header`` is only the entropy-coded scan data: the file minus its header
        (SOI marker, JFIF APP0 segment, two quantisation tables, frame header, four Huffman tables,
        scan header: 623 bytes for a baseline colour JPEG from Pillow) and the 2-byte EOI marker.

    The header is what a stored *collection* of images could share (same quality, same standard
    tables), so the scan data is the fairer per-image cost to set beside a code; the whole file is
    what one image costs on its own. Files are baseline JPEG with the standard Huffman tables
    (``optimize=False``, not progressive), encoded by Pillow's libjpeg(-turbo).
    """
    quality = _check_quality(quality)
    sampling = check_choice("subsampling", subsampling, ("4:2:0", "4:2:2", "4:4:4"))
    pixels = _uint8_images(images).permute(0, 2, 3, 1).contiguous().numpy()  # (N, 32, 32, 3) for PIL
    out = np.empty_like(pixels)
    with_header = np.empty(len(pixels), dtype=np.int64)
    scan = np.empty(len(pixels), dtype=np.int64)
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image, mode="RGB").save(buffer, format="JPEG", quality=quality, optimize=False,
                                                progressive=False, subsampling=sampling)
        data = buffer.getvalue()
        with_header[i] = len(data)
        scan[i] = _scan_bytes(data)
        with Image.open(io.BytesIO(data)) as decoded:
            out[i] = np.asarray(decoded.convert("RGB"))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), with_header, scan



WEBP_FIXED_BYTES = 12 + 8 + 7  # RIFF header, 'VP8 ' chunk header, VP8 start code + width + height


def webp_roundtrip(images, quality: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Encode every image as a lossy WebP file with Pillow (``method=6``, its slowest and smallest) and decode it.

    Returns ``(reconstructions, bytes_whole_file, bytes_without_fixed_header)``: uint8 (N, 3, 32, 32) and two
    int64 arrays (N,). The second count leaves out what every 32 x 32 lossy WebP file repeats unchanged
    (:data:`WEBP_FIXED_BYTES`: the 12-byte RIFF header, the 8-byte VP8 chunk header, the 7 bytes of VP8 start
    code and image size) and the chunk's padding byte; the VP8 frame tag and headers, which vary, are kept.
    Like JPEG's scan data (:func:`jpeg_roundtrip`) it is the cost to set beside a code. Defined in notebook 10.
    """
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 0 <= quality <= 100:
        raise ValueError(f"WebP quality must be a whole number from 0 to 100, got {quality!r}")
    if not features.check("webp"):  # pragma: no cover - depends on how Pillow was built
        raise RuntimeError("this Pillow was built without WebP support; skip WebP or install a Pillow wheel")
    pixels = _uint8_images(images).permute(0, 2, 3, 1).contiguous().numpy()
    out = np.empty_like(pixels)
    whole = np.empty(len(pixels), dtype=np.int64)
    stream = np.empty(len(pixels), dtype=np.int64)
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image, mode="RGB").save(buffer, format="WEBP", quality=int(quality), method=6)
        data = buffer.getvalue()
        if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
            raise RuntimeError(f"expected a simple lossy WebP file (RIFF, WEBP, 'VP8 ' chunk), got {data[:16]!r}")
        payload = int.from_bytes(data[16:20], "little")
        whole[i] = len(data)
        stream[i] = payload - 7
        with Image.open(io.BytesIO(data)) as decoded:
            out[i] = np.asarray(decoded.convert("RGB"))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), whole, stream

# -- downsampling ---------------------------------------------------------------------------------

def resample_roundtrip(images, size: int) -> torch.Tensor:
    """Shrink each image to ``size x size`` (stored as uint8), enlarge it back to 32x32: uint8 (N, 3, 32, 32).

    Shrinking is bicubic with antialiasing (``torch.nn.functional.interpolate``, like Pillow's
    BICUBIC resize); the thumbnail is rounded to uint8, as it would be stored, so it costs
    ``size * size * 3 * 8`` bits; enlarging is bicubic (``align_corners=False``), rounded and clamped
    to 0..255. ``size`` is a whole number 1..32 (32 returns the images unchanged).
    """
    size = check_int("size", size, maximum=32)
    pixels = _uint8_images(images)
    if size == 32:
        return pixels.clone()
    small = F.interpolate(pixels.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    small = small.round().clamp(0, 255)  # the uint8 thumbnail that would be stored
    large = F.interpolate(small, size=(32, 32), mode="bicubic", align_corners=False)
    return large.round().clamp(0, 255).to(torch.uint8)


def resample_bits(size: int) -> int:
    """Bits of a ``size x size`` uint8 RGB thumbnail: ``size * size * 3 * 8``."""
    return check_int("size", size, maximum=32) ** 2 * 3 * 8


# -- scoring and tables ---------------------------------------------------------------------------

def _psnr(mse: float) -> float:
    return min(MAX_PSNR_DB, -10.0 * math.log10(mse)) if mse > 0 else MAX_PSNR_DB


def score_reconstructions(method: str, setting, reconstructions, originals, *, bits_per_image: float,
                          ssim: bool = True) -> pd.DataFrame:
    """One row of a rate-distortion table (columns ``TABLE_COLUMNS``).

    ``reconstructions`` and ``originals`` are uint8 (N, 3, 32, 32) (or an ImageSet) or floats in
    [-1, 1]; they are scored on the [0, 1] scale with :mod:`convae_utils.metrics`. Columns: ``mse``
    (mean per-image MSE), ``psnr_of_mean_mse`` (PSNR of that mean, the usual way to quote a test set),
    ``mean_psnr`` (mean of per-image PSNRs, never smaller: see :func:`psnr_two_ways`), ``ssim`` (mean;
    NaN with ``ssim=False``, for a caller that reads PSNR only: SSIM costs most of the scoring),
    ``bits_per_image`` and ``share_of_image`` (of 24,576).
    """
    if not isinstance(method, str) or not method:
        raise ValueError(f"method must be a non-empty name, got {method!r}")
    if isinstance(bits_per_image, bool) or not isinstance(bits_per_image, Real) or not bits_per_image > 0:
        raise ValueError(f"bits_per_image must be a positive number, got {bits_per_image!r}")
    pred = _model_scale(reconstructions, "reconstructions")
    target = _model_scale(originals, "originals")
    if pred.shape != target.shape:
        raise ValueError(f"expected one reconstruction per original, got {describe_shape(pred)} "
                         f"and {describe_shape(target)}")
    mse, similarity = [], []
    for start in range(0, len(target), _SCORE_BATCH):
        part = slice(start, start + _SCORE_BATCH)
        mse.append(per_image_mse(pred[part], target[part]).double())
        if ssim:
            similarity.append(per_image_ssim(pred[part], target[part]).double())
    mse_all = torch.cat(mse)
    mean_mse = float(mse_all.mean())
    row = {
        "method": method, "setting": str(setting), "bits_per_image": float(bits_per_image),
        "share_of_image": float(bits_per_image) / IMAGE_BITS, "images": len(target), "mse": mean_mse,
        "psnr_of_mean_mse": _psnr(mean_mse),
        "mean_psnr": float(torch.tensor([_psnr(float(m)) for m in mse_all], dtype=torch.float64).mean()),
        "ssim": float(torch.cat(similarity).mean()) if ssim else float("nan"),
    }
    return pd.DataFrame([row], columns=list(TABLE_COLUMNS))


def rate_distortion_table(rows: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Stack rows or tables from :func:`score_reconstructions` / the sweeps into one table.

    Raises ValueError when a (method, setting) pair appears twice or a part lacks the columns.
    """
    parts = [rows] if isinstance(rows, pd.DataFrame) else list(rows)
    if not parts:
        raise ValueError("rows is empty: give at least one scored row")
    for part in parts:
        if not isinstance(part, pd.DataFrame) or any(c not in part.columns for c in TABLE_COLUMNS):
            got = list(part.columns) if isinstance(part, pd.DataFrame) else type(part).__name__
            raise ValueError(f"every part must be a table from score_reconstructions, with columns "
                             f"{list(TABLE_COLUMNS)}; got {got}")
    table = pd.concat([p[list(TABLE_COLUMNS)] for p in parts], ignore_index=True)
    twice = table[table.duplicated(["method", "setting"], keep=False)]
    if len(twice):
        pairs = sorted(set(zip(twice["method"], twice["setting"])))
        raise ValueError(f"the table holds these (method, setting) rows more than once: {pairs}")
    return table


def pca_sweep(train_images, test_images, components: Sequence[int], *,
              quantize_bits: Sequence[int] = (8, 4), solver: str = "auto") -> pd.DataFrame:
    """PCA at each number of components: float32 codes, and codes quantised to ``quantize_bits``.

    Fitted on ``train_images``, scored on ``test_images`` (uint8 or ImageSets). Quantiser ranges
    come from the training codes (min/max per component). Method names: ``"PCA (float32)"`` and
    ``"PCA (8-bit)"`` etc.; ``setting`` is ``"k=<components>"``. One fit per sweep: the largest
    ``k`` is fitted once and truncated, since the first k principal components are the same.
    """
    train = _uint8_images(train_images, "train_images")
    limit = min(len(train), IMAGE_VALUES)
    ks = check_sweep("components", components, maximum=limit)
    bit_depths = check_sweep("quantize_bits", quantize_bits) if len(tuple(quantize_bits)) else ()
    for b in bit_depths:
        if b not in QUANTIZER_BITS:
            raise ValueError(f"quantize_bits must come from {QUANTIZER_BITS}, got {b}")
    test = _uint8_images(test_images, "test_images")
    full = fit_pca(train, max(ks), solver=solver)
    train_codes_all, test_codes_all = full.encode(train), full.encode(test)
    rows = []
    for k in sorted(ks):
        model = PCAModel(full.mean, full.components[:k], full.explained_variance[:k], full.n_train, full.solver)
        test_codes = test_codes_all[:, :k]
        rows.append(score_reconstructions("PCA (float32)", f"k={k}", model.decode(test_codes), test,
                                          bits_per_image=code_bits(k, 32)))
        for b in bit_depths:
            quantizer = fit_quantizer(train_codes_all[:, :k], b)
            rows.append(score_reconstructions(f"PCA ({b}-bit)", f"k={k}", model.decode(quantizer.roundtrip(test_codes)),
                                              test, bits_per_image=quantizer.bits_per_image()))
    return rate_distortion_table(rows)


@torch.inference_mode()
def autoencoder_sweep(models: dict, train_images, test_images, *, quantize_bits: Sequence[int] = (8, 4),
                      batch_size: int = 500) -> pd.DataFrame:
    """Score trained autoencoders as codecs: float32 codes, and codes quantised to ``quantize_bits``.

    ``models`` maps a label (e.g. ``"latent 200"``) to an autoencoder with ``encode``/``decode``.
    Quantiser ranges come from the codes of ``train_images`` (min/max per code unit); the test codes
    are quantised, dequantised and decoded, so each row says what a code of that many bits really
    gives. Method names ``"autoencoder (float32)"``, ``"autoencoder (8-bit)"`` ...; setting = the label.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict {{label: autoencoder}}, got {type(models).__name__}")
    bit_depths = check_sweep("quantize_bits", quantize_bits) if len(tuple(quantize_bits)) else ()
    for b in bit_depths:
        if b not in QUANTIZER_BITS:
            raise ValueError(f"quantize_bits must come from {QUANTIZER_BITS}, got {b}")
    train = _uint8_images(train_images, "train_images")
    test = _uint8_images(test_images, "test_images")
    rows = []
    for label, model in models.items():
        device = model_device(model)

        def codes_of(images: torch.Tensor) -> torch.Tensor:
            return batched(lambda part: model.encode(normalize(part)), images, device=device, batch_size=batch_size)

        def decode(codes: torch.Tensor) -> torch.Tensor:
            return batched(model.decode, codes, device=device, batch_size=batch_size)

        with evaluating(model):
            train_codes, test_codes = codes_of(train), codes_of(test)
            latent = test_codes.shape[1]
            rows.append(score_reconstructions("autoencoder (float32)", label, decode(test_codes), test,
                                              bits_per_image=code_bits(latent, 32)))
            for b in bit_depths:
                quantizer = fit_quantizer(train_codes, b)
                rows.append(score_reconstructions(f"autoencoder ({b}-bit)", label, decode(quantizer.roundtrip(test_codes)),
                                                  test, bits_per_image=quantizer.bits_per_image()))
    return rate_distortion_table(rows)


def jpeg_sweep(test_images, qualities: Sequence[int] = JPEG_QUALITIES, *, subsampling: str = "4:2:0") -> pd.DataFrame:
    """JPEG at each quality: two rows each, ``"JPEG (whole file)"`` and ``"JPEG (scan data only)"``.

    Same reconstructions, two ways of counting bits (mean bytes per image x 8): see
    :func:`jpeg_roundtrip`. ``setting`` is ``"q=<quality>"``.
    """
    qs = check_sweep("qualities", qualities)
    for q in qs:
        _check_quality(q)
    test = _uint8_images(test_images, "test_images")
    rows = []
    for q in qs:
        recon, whole, scan = jpeg_roundtrip(test, q, subsampling=subsampling)
        scored = score_reconstructions("JPEG (whole file)", f"q={q}", recon, test,
                                       bits_per_image=8 * float(whole.mean()))
        rows.append(scored)
        rows.append(scored.assign(method="JPEG (scan data only)", bits_per_image=8 * float(scan.mean()),
                                  share_of_image=8 * float(scan.mean()) / IMAGE_BITS))
    return rate_distortion_table(rows)


def webp_sweep(test_images, qualities: Sequence[int]) -> pd.DataFrame:
    """WebP at each quality: ``"WebP (whole file)"`` and ``"WebP (without fixed header)"`` rows
    (:func:`webp_roundtrip`); ``setting`` is ``"q=<quality>"``. Defined in notebook 10."""
    qs = check_sweep("qualities", qualities, minimum=0, maximum=100)
    test = _uint8_images(test_images, "test_images")
    rows = []
    for q in qs:
        recon, whole, stream = webp_roundtrip(test, q)
        scored = score_reconstructions("WebP (whole file)", f"q={q}", recon, test, bits_per_image=8 * float(whole.mean()))
        rows.append(scored)
        rows.append(scored.assign(method="WebP (without fixed header)", bits_per_image=8 * float(stream.mean()),
                                  share_of_image=8 * float(stream.mean()) / IMAGE_BITS))
    return rate_distortion_table(rows)


def resample_sweep(test_images, sizes: Sequence[int] = RESAMPLE_SIZES) -> pd.DataFrame:
    """Downsampling to each size and bicubic upsampling; method ``"bicubic"``, setting ``"16x16"`` etc."""
    sizes = check_sweep("sizes", sizes, maximum=32)
    test = _uint8_images(test_images, "test_images")
    return rate_distortion_table([
        score_reconstructions("bicubic", f"{s}x{s}", resample_roundtrip(test, s), test, bits_per_image=resample_bits(s))
        for s in sizes])


# -- units ----------------------------------------------------------------------------------------

_UNITS = ("mse_01", "mse_pm1", "sse_01", "sse_pm1", "psnr_db")


def convert_units(*, mse_01: float | None = None, mse_pm1: float | None = None, sse_01: float | None = None,
                  sse_pm1: float | None = None, psnr_db: float | None = None) -> dict[str, float]:
    """Give one reconstruction error in any unit (by keyword); get it in all of them.

    - ``mse_01``: mean squared error per pixel value on the [0, 1] scale (what :mod:`metrics` reports).
    - ``mse_pm1``: the same on the [-1, 1] scale, ``4 * mse_01``: the series' training loss.
    - ``sse_01`` / ``sse_pm1``: squared error summed over the 3,072 values of one image
      (``3072 * mse``); ``sse_pm1`` is UvA Tutorial 9's "reconstruction error"
      (``F.mse_loss(x, x_hat, reduction="none").sum(dim=[1,2,3]).mean(dim=[0])`` on images
      normalised to [-1, 1]).
    - ``psnr_db``: ``10 log10(1 / mse_01)``, peak 1 on the [0, 1] scale.

    Averaged over images, every unit but PSNR converts exactly; a PSNR computed from a *mean* MSE
    is not the mean of per-image PSNRs (see :func:`psnr_two_ways`).
    """
    given = {k: v for k, v in zip(_UNITS, (mse_01, mse_pm1, sse_01, sse_pm1, psnr_db)) if v is not None}
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(_UNITS)} by keyword, got {sorted(given) or 'none'}")
    (unit, value), = given.items()
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{unit} must be a finite number, got {value!r}")
    if unit != "psnr_db" and value < 0:
        raise ValueError(f"{unit} is a squared error and cannot be negative, got {value!r}")
    mse = {"mse_01": value, "mse_pm1": value / 4, "sse_01": value / IMAGE_VALUES,
           "sse_pm1": value / (4 * IMAGE_VALUES), "psnr_db": 10.0 ** (-value / 10.0)}[unit]
    return {"mse_01": mse, "mse_pm1": 4 * mse, "sse_01": IMAGE_VALUES * mse, "sse_pm1": 4 * IMAGE_VALUES * mse,
            "psnr_db": (-10.0 * math.log10(mse)) if mse > 0 else math.inf}


def psnr_two_ways(per_image_mse_01) -> dict[str, float]:
    """PSNR of the mean MSE and mean of per-image PSNRs, from per-image MSEs on [0, 1] (a tensor or array).

    Returns ``{"psnr_of_mean_mse", "mean_psnr", "gap_db"}``. PSNR is ``-10 log10(mse)``, a convex
    function, so by Jensen's inequality the mean of per-image PSNRs is never below the PSNR of the
    mean MSE; the gap grows with the spread of errors between images (a few badly reconstructed
    images pull the mean MSE up, while in dB they count like any other). Per-image PSNRs are capped
    at ``metrics.MAX_PSNR_DB`` like everywhere in the package. Say which one a number is.
    """
    mse = torch.as_tensor(np.asarray(per_image_mse_01, dtype=np.float64)).flatten()
    if mse.numel() == 0 or not bool(torch.isfinite(mse).all()) or bool((mse < 0).any()):
        raise ValueError("per_image_mse_01 must be a non-empty list of finite, non-negative MSEs")
    of_mean = _psnr(float(mse.mean()))
    mean = float(torch.tensor([_psnr(float(m)) for m in mse], dtype=torch.float64).mean())
    return {"psnr_of_mean_mse": of_mean, "mean_psnr": mean, "gap_db": mean - of_mean}


def units_card(mse_01_values: Sequence[float] = (0.02, 0.01, 0.005, 0.002, 0.001)) -> pd.DataFrame:
    """A small conversion table: one row per MSE on [0, 1], a column per unit of :func:`convert_units`."""
    values = list(mse_01_values)
    if not values:
        raise ValueError("mse_01_values is empty: give at least one MSE on the [0, 1] scale")
    card = pd.DataFrame([convert_units(mse_01=v) for v in values], columns=list(_UNITS))
    return card.rename(columns={"mse_01": "MSE [0,1]", "mse_pm1": "MSE [-1,1] (training loss)",
                                "sse_01": "summed SE per image [0,1]",
                                "sse_pm1": "summed SE per image [-1,1] (UvA T9)", "psnr_db": "PSNR dB"})


_UVA_URL = "https://github.com/phlippe/uvadlc_notebooks/blob/{commit}/docs/tutorial_notebooks/{path}"
_UVA_COMMON = ("CIFAR-10 normalised to [-1, 1]; GELU conv encoder/decoder, c_hid=32, Tanh output; "
               "45,000 training images, batch 256, 500 epochs, Adam lr 1e-3")
_UVA_POINTS = (
    # (version, path, commit, split, optimiser detail, ((latent_dim, value), ...)); values read from the
    # plotted line's coordinates in the published figure (see published_references)
    ("PyTorch", "tutorial9/AE_CIFAR10.ipynb", "1869d5257ba30b7e7e44f973bc3909a9f21d235b",
     "validation (5,000 held-out training images)", "ReduceLROnPlateau (factor 0.2, patience 20)",
     ((64, 87.10), (128, 50.23), (256, 25.42), (384, 15.76))),
    ("JAX", "JAX/tutorial9/AE_CIFAR10.ipynb", "5f7828ea71d43862554882106cf9c3b36b44ab88",
     "test (10,000 images)", "warm-up + cosine decay, gradients clipped at 1",
     ((64, 87.46), (128, 49.57), (256, 24.77), (384, 15.19))),
)


def published_references() -> pd.DataFrame:
    """Published reconstruction errors to set beside ours: never measured here, always with their setting.

    UvA Deep Learning Tutorial 9 ("Deep Autoencoders", Phillip Lippe) reports its reconstruction
    error (squared error summed over the 3,072 values of an image on the [-1, 1] scale, averaged
    over images) for latent 64, 128, 256, 384 only as a figure, not as printed numbers. The values
    here were recovered from that figure's SVG: the plotted line's vertex coordinates mapped through
    the axis (0 at y=240.66, 100 at y=23.22), so they carry about +-0.05 of reading error, not the
    tutorial's full precision. Columns: ``source`` (URL at the commit read), ``version``, ``split``,
    ``setting``, ``latent_dim``, ``code_bits`` (float32), ``reported`` (the published unit),
    ``unit``, ``mse_01`` and ``psnr_of_mean_mse`` (converted with :func:`convert_units`; the PSNR
    is of the mean MSE), ``how_obtained``.
    """
    rows = []
    for version, path, commit, split, schedule, points in _UVA_POINTS:
        for latent_dim, value in points:
            units = convert_units(sse_pm1=value)
            rows.append({
                "source": _UVA_URL.format(commit=commit, path=path), "version": f"UvA Tutorial 9 ({version})",
                "split": split, "setting": f"{_UVA_COMMON}, {schedule}", "latent_dim": latent_dim,
                "code_bits": code_bits(latent_dim, 32), "reported": value,
                "unit": "summed squared error per image, [-1, 1] scale", "mse_01": units["mse_01"],
                "psnr_of_mean_mse": units["psnr_db"],
                "how_obtained": "read from the published figure's SVG coordinates (+-0.05), not printed in the text",
            })
    return pd.DataFrame(rows)
