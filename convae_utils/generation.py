"""Generating images from a code space, and measuring the results offline.

Defined in notebook 09 (from rebuilding to generating).

**Sampling a plain autoencoder's code space.** A plain autoencoder has no prior: to generate, fit a
density to the codes of the training images and decode draws from it ("ex-post density estimation",
Ghosh et al., ICLR 2020). :func:`fit_code_density` fits three:

- ``"independent"``: each code value its own Gaussian (mean and spread per unit), correlations
  ignored: what notebook 05's "random codes" did;
- ``"gaussian"``: one Gaussian with a full covariance matrix;
- ``"mixture"``: a small Gaussian mixture (scikit-learn's ``GaussianMixture``, full covariances).

**Measuring generated images without Inception.** The usual score, FID, compares Inception-v3
features of samples and real images; its weights cannot be downloaded here, so :class:`GenerationScorer`
measures what can be computed offline, with a small classifier trained on the training split
(:func:`yardstick_classifier`, through the series' one harness) standing in for Inception:

- ``confidence``: the classifier's mean top-class probability on the samples (recognisable as *some* class);
- ``class_entropy_bits``: entropy of the histogram of predicted classes (log2(10) = 3.32 bits when the
  classes come out evenly; 0 when every sample is the same class);
- ``nearest_train_rmse``: median distance ([0, 1] pixels, RMSE) from each sample to its nearest
  training image; far below the real held-out images' value means copying, or blur (a smooth picture
  lies near many smooth training images);
- ``mmd``: the kernel two-sample distance (squared MMD, unbiased) between samples and real test
  images in the classifier's feature space, with KID's fixed cubic kernel; about 0 for real images.

These numbers depend on this classifier and this data: they are **not comparable with published FIDs**
or with numbers from another classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .checks import check_choice, check_int, describe_shape
from .data import DataBundle
from .images import ImageSet, denormalize, normalize
from .inference import batched, evaluating, model_device
from .runs import Recipe, train_or_load
from .settings import RunSettings
from .training import classification_step

DENSITIES = ("independent", "gaussian", "mixture")
DENSITY_LABELS = {"independent": "independent per unit (as notebook 05)",
                  "gaussian": "full-covariance Gaussian", "mixture": "Gaussian mixture"}


# -- densities over codes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeDensity:
    """A Gaussian mixture over codes: weights (K,), means (K, D), Cholesky factors of the covariances (K, D, D).

    ``kind`` says how it was fitted; one component with a diagonal factor is the per-unit model.
    """

    kind: str
    weights: torch.Tensor
    means: torch.Tensor
    scales: torch.Tensor

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """``n`` codes (n, D), float32; the same ``seed`` gives the same codes."""
        n = check_int("n", n)
        gen = torch.Generator().manual_seed(seed)
        component = torch.multinomial(self.weights, n, replacement=True, generator=gen)   # (n,)
        eps = torch.randn(n, self.dim, generator=gen, dtype=self.means.dtype)            # (n, D)
        codes = self.means[component].clone()                                            # (n, D)
        for k in component.unique().tolist():     # one matrix product per component, not an (n, D, D) gather
            chosen = component == k
            codes[chosen] += eps[chosen] @ self.scales[k].T
        return codes.float()


def _flat_codes(codes) -> torch.Tensor:
    if not isinstance(codes, torch.Tensor) or codes.ndim < 2 or len(codes) < 2:
        got = describe_shape(codes) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"expected codes of shape (N, ...) with N >= 2 (from metrics.encode), got {got}")
    flat = codes.detach().flatten(1).double().cpu()
    if not bool(torch.isfinite(flat).all()):
        raise ValueError("codes contain NaN or infinite values")
    return flat


def fit_code_density(codes: torch.Tensor, kind: str = "gaussian", *, components: int = 10, seed: int = 0,
                     max_images: int = 5_000, ridge: float = 1e-4) -> CodeDensity:
    """Fit a density of ``kind`` (``independent``, ``gaussian``, ``mixture``) to codes (N, ...) of training images.

    Codes of any shape are flattened to (N, D). ``ridge`` (times the mean variance) is added to each
    covariance's diagonal, so a code with a dead or constant unit still has a usable factor. The
    mixture has ``components`` full-covariance Gaussians, fitted by EM on at most ``max_images``
    codes (a seeded subset: EM's cost grows with N x K x D^2), seeded by ``seed``.
    """
    kind = check_choice("kind", kind, DENSITIES)
    flat = _flat_codes(codes)
    n, dim = flat.shape
    jitter = ridge * float(flat.var(dim=0).mean().clamp_min(1e-12))
    if kind == "independent":
        std = flat.std(dim=0).clamp_min(math.sqrt(jitter))
        return CodeDensity(kind, torch.ones(1, dtype=torch.float64), flat.mean(dim=0, keepdim=True),
                           torch.diag(std).unsqueeze(0))
    if kind == "gaussian":
        cov = torch.cov(flat.T) + jitter * torch.eye(dim, dtype=torch.float64)
        return CodeDensity(kind, torch.ones(1, dtype=torch.float64), flat.mean(dim=0, keepdim=True),
                           torch.linalg.cholesky(cov).unsqueeze(0))
    from sklearn.mixture import GaussianMixture

    components = check_int("components", components, maximum=max(1, n))
    max_images = check_int("max_images", max_images, minimum=2)
    if n > max_images:
        flat = flat[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_images]]
    mixture = GaussianMixture(components, covariance_type="full", reg_covar=jitter, random_state=seed,
                              max_iter=100).fit(flat.numpy())
    return CodeDensity(kind, torch.from_numpy(mixture.weights_), torch.from_numpy(mixture.means_),
                       torch.linalg.cholesky(torch.from_numpy(mixture.covariances_)))


def sample_codes(codes: torch.Tensor, n: int, *, seed: int = 0, **fit_options) -> dict[str, torch.Tensor]:
    """Codes drawn three ways from densities fitted to ``codes``: {kind: (n, *code shape)} in :data:`DENSITIES` order."""
    shape = tuple(codes.shape[1:])
    return {kind: fit_code_density(codes, kind, seed=seed, **fit_options).sample(n, seed=seed).view(n, *shape)
            for kind in DENSITIES}


# -- a small classifier: the stand-in for Inception -------------------------------------------------

class SmallClassifier(nn.Module):
    """Image (N, 3, 32, 32) in [-1, 1] -> class logits (N, K); ``features(x)`` -> (N, 4 x width) before the last layer.

    Three strided convolutions (32 -> 16 -> 8 -> 4) and an average: small enough to train in seconds
    on a CPU, which is all a yardstick for generated images needs here.
    """

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        c = check_int("width", width, maximum=512)
        self.body = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),              # 16x16
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),      # 8x8
            nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True),  # 4x4
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),                                                         # (N, 4c)
        )
        self.head = nn.Linear(4 * c, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_classifier(settings) -> SmallClassifier:
    """The yardstick's builder for ``runs.train_or_load``: a :class:`SmallClassifier`, seeded by ``settings.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return SmallClassifier()


def mirrored(images: ImageSet) -> ImageSet:
    """``images`` followed by their left-right mirror images (twice as many): the classifier sees each
    photograph both ways, fixed in the data so that a stopped run resumes exactly."""
    return ImageSet(torch.cat([images.images, images.images.flip(-1)]), torch.cat([images.labels, images.labels]),
                    images.classes, images.name, images.split)


@torch.inference_mode()
def classify(classifier: SmallClassifier, pixels: torch.Tensor, *, batch_size: int = 500
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, K) and features (N, F) of images in [-1, 1] (N, 3, 32, 32) or uint8 pixels.

    Both float32 on the CPU; each batch runs on the classifier's device, in eval mode."""
    x = _model_scale(pixels)

    def probabilities_and_features(batch: torch.Tensor) -> torch.Tensor:
        features = classifier.features(batch)                                   # (B, F)
        return torch.cat([classifier.head(features).softmax(dim=1), features], dim=1)  # (B, K + F)

    with evaluating(classifier):
        both = batched(probabilities_and_features, x, device=model_device(classifier), batch_size=batch_size)
    classes = both.shape[1] - classifier.head.in_features
    return both[:, :classes], both[:, classes:]


CLASSIFIER_IMAGES, CLASSIFIER_VAL_IMAGES = 4_000, 500   # the yardstick of notebook 09 and tools.vae_sweep
CLASSIFIER = Recipe("classifier", build=build_classifier, step=classification_step)


def classifier_settings(profile: str, dataset: str, *, seed: int = 0) -> RunSettings:
    """The yardstick's run settings: Adam at 3e-3, batches of 128, 3 epochs over ``CLASSIFIER_IMAGES``
    training images and their mirror images (the autoencoder fields keep their defaults, unused)."""
    return RunSettings(profile=profile, dataset=dataset, train_size=CLASSIFIER_IMAGES, val_size=CLASSIFIER_VAL_IMAGES,
                       num_epochs=3, batch_size=128, lr=3e-3, seed=seed)


def yardstick_classifier(data: DataBundle, profile: str, *, seed: int = 0, progress: bool = True) -> SmallClassifier:
    """The classifier notebook 09 scores generated images with, trained once through ``runs.train_or_load``
    (run folder ``<profile>-<dataset>-latent200-classifier``) and loaded afterwards; in eval mode, on the CPU.

    Trained on the first ``CLASSIFIER_IMAGES`` training images of ``data`` and their mirror images,
    validated on its first ``CLASSIFIER_VAL_IMAGES`` validation images.
    """
    splits = data.replace(train=mirrored(data.train.head(CLASSIFIER_IMAGES)), val=data.val.head(CLASSIFIER_VAL_IMAGES),
                          test=None, exemplars=None)
    run = train_or_load(classifier_settings(profile, data.dataset, seed=seed), CLASSIFIER, splits, progress=progress)
    if not run.complete:
        raise RuntimeError("Training the yardstick classifier was interrupted: run the same cell again to resume it.")
    return run.model.cpu().eval()


def accuracy(classifier: SmallClassifier, dataset: ImageSet) -> float:
    """Share of ``dataset``'s images the classifier labels correctly, in [0, 1]."""
    probs, _ = classify(classifier, dataset.images)
    return float((probs.argmax(dim=1) == dataset.labels).float().mean())


# -- the measures ------------------------------------------------------------------------------------------

def _model_scale(pixels) -> torch.Tensor:
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or tuple(pixels.shape[1:]) != (3, 32, 32):
        got = describe_shape(pixels) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        raise ValueError(f"expected images of shape (N, 3, 32, 32), got {got}")
    x = normalize(pixels) if pixels.dtype == torch.uint8 else pixels.float()
    return x.cpu().clamp(-1.0, 1.0)   # a generated pixel beyond [-1, 1] is shown (and scored) clipped


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KID's fixed kernel ``(x . y / d + 1) ** 3`` between rows of (N, d) and (M, d): (N, M)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd_squared(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased squared maximum mean discrepancy between feature sets (N, d) and (M, d), N, M >= 2.

    About 0 (it can be slightly negative) when both come from one distribution; larger the more they
    differ. Kernel: :func:`polynomial_kernel` (as KID, Binkowski et al. 2018).
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"expected two feature sets (N, d) and (M, d) with N, M >= 2, got "
                         f"{describe_shape(x)} and {describe_shape(y)}")
    x, y = x.double(), y.double()
    n, m = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def nearest_rmse(samples: torch.Tensor, reference: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """For each sample, the RMSE ([0, 1] pixels) to its nearest image of ``reference``: (N,).

    Both are images (uint8 or [-1, 1] floats) of shape (N, 3, 32, 32).
    """
    # float32 is enough: squared distances of ~10-1,000 from norms of ~1,000 keep 4 significant digits
    a = denormalize(_model_scale(samples)).flatten(1)
    b = denormalize(_model_scale(reference)).flatten(1)
    b_norms = b.pow(2).sum(dim=1)
    nearest = []
    for part in a.split(batch_size):
        d2 = part.pow(2).sum(dim=1, keepdim=True) - 2 * part @ b.T + b_norms       # (n, M) squared distances
        nearest.append(d2.min(dim=1).values.clamp_min(0.0))
    return (torch.cat(nearest) / a.shape[1]).sqrt().float()


def class_entropy_bits(probs: torch.Tensor) -> float:
    """Entropy, in bits, of the histogram of predicted classes (argmax of ``probs`` (N, K)); 0..log2(K)."""
    counts = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1]).double()
    share = counts / counts.sum()
    share = share[share > 0]
    return max(0.0, float(-(share * share.log2()).sum()))  # max: no "-0.0" for a single class


class GenerationScorer:
    """Scores sets of images against fixed real references: the classifier, the test images, the training images.

    Build once per notebook (the reference features are computed here), then call :meth:`score` on each
    set: real held-out images give the ceiling; samples are judged against them.

    Args:
        classifier: from :func:`yardstick_classifier`.
        real: real images the samples are compared with (the test split), uint8 (N, 3, 32, 32) or an ImageSet.
        train: the training images, for the nearest-neighbour distance.
    """

    def __init__(self, classifier: SmallClassifier, real, train):
        self.classifier = classifier.eval()
        self.real = real.images if isinstance(real, ImageSet) else real
        self.train = train.images if isinstance(train, ImageSet) else train
        _, self.real_features = classify(classifier, self.real)

    def score(self, images: torch.Tensor) -> dict[str, float]:
        """``confidence``, ``class_entropy_bits``, ``nearest_train_rmse`` (median) and ``mmd`` for (N, 3, 32, 32) images."""
        probs, features = classify(self.classifier, images)
        return {
            "images": len(probs),
            "confidence": float(probs.max(dim=1).values.mean()),
            "class_entropy_bits": class_entropy_bits(probs),
            "nearest_train_rmse": float(nearest_rmse(images, self.train).median()),
            "mmd": mmd_squared(features, self.real_features),
        }

    def mmd_spread(self, images: torch.Tensor, *, size: int, repeats: int = 5, seed: int = 0) -> torch.Tensor:
        """MMD to the real images of ``repeats`` random subsets of ``size`` of ``images``: (repeats,) float64.

        Real held-out images give the measure's floor with its spread: the values of :meth:`score` on
        ``size`` generated images are read against it.
        """
        size, repeats = check_int("size", size, minimum=2), check_int("repeats", repeats, minimum=2)
        if len(images) < size:
            raise ValueError(f"expected at least size={size} images, got {len(images)}")
        _, features = classify(self.classifier, images)
        gen = torch.Generator().manual_seed(seed)
        return torch.tensor([mmd_squared(features[torch.randperm(len(features), generator=gen)[:size]],
                                         self.real_features) for _ in range(repeats)], dtype=torch.float64)

    def split_half_mmd(self, *, repeats: int = 5, seed: int = 0) -> torch.Tensor:
        """MMD between two random halves of the real images themselves: (repeats,) float64, about 0.

        Beside :meth:`mmd_spread` of another split it says how much of that split's MMD is a difference
        between the splits (photos10: validation patches come from the training region of each photograph,
        test patches from a band kept apart) rather than the measure's noise.
        """
        repeats = check_int("repeats", repeats, minimum=2)
        gen = torch.Generator().manual_seed(seed)
        half = len(self.real_features) // 2
        values = []
        for _ in range(repeats):
            order = torch.randperm(len(self.real_features), generator=gen)
            values.append(mmd_squared(self.real_features[order[:half]], self.real_features[order[half:2 * half]]))
        return torch.tensor(values, dtype=torch.float64)

    def table(self, sets: dict[str, torch.Tensor]):
        """One row per named set of images (a pandas DataFrame indexed by name)."""
        import pandas as pd

        return pd.DataFrame({name: self.score(images) for name, images in sets.items()}).T.rename_axis("images of")


def decode_codes(model: nn.Module, codes: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Decode codes (N, ...) with ``model.decode`` in eval mode: images (N, 3, 32, 32) in [-1, 1] on the CPU."""
    with torch.inference_mode(), evaluating(model):
        return batched(model.decode, codes, device=model_device(model), batch_size=batch_size)


def codes_vary(codes: torch.Tensor) -> bool:
    """Whether any code value differs between the images of ``codes`` (N, ...), up to float32 resolution.

    An all-dead ReLU code (every unit 0 for every image, e.g. the article's model trained at too high
    a learning rate) does not vary: a t-SNE or a PCA of it has no direction to find.
    """
    flat = _flat_codes(codes)
    spread = flat.std(dim=0).max()
    return bool(spread > 1e-6 * max(1.0, float(flat.abs().max())))


def tsne_map(codes: torch.Tensor, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D t-SNE map (scikit-learn) of codes (N, ...): (N, 2). PCA-initialised and seeded.

    Codes that do not vary (:func:`codes_vary`) never reach scikit-learn, whose PCA initialisation
    divides by their zero spread and whose Barnes-Hut step then crashes the kernel (a segmentation
    fault): every image gets the point (0, 0) and a warning says why. t-SNE's picture depends on the
    perplexity and the seed, and it does not keep cluster sizes or the distances between clusters
    (Wattenberg et al., "How to use t-SNE effectively", Distill 2016): read it beside a number
    (:func:`convae_utils.probes.probe_accuracy` with ``method="knn"``).
    """
    import warnings

    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    flat = _flat_codes(codes).float().numpy()
    if not codes_vary(codes):
        warnings.warn(f"every one of the {len(flat)} codes is the same (no code value varies: e.g. a ReLU code "
                      "whose units are all dead): the map puts every image at one point; retrain the model "
                      "(a smaller learning rate) before reading a map of its codes", stacklevel=2)
        return np.zeros((len(flat), 2), dtype=np.float32)
    perplexity = min(perplexity, (len(flat) - 1) / 3)
    # One thread: Barnes-Hut's OpenMP threads contend on a small or busy CPU (600 codes on a loaded
    # 2-core machine: 207 s with the default threads, 28 s with one).
    with threadpool_limits(1):
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(flat)


# -- a VAE measured as a compressor and as a generator (notebook 09, tools.vae_sweep) ----------------------

SAMPLED_CODE = "VAE: KL rate, drawn code decoded"       # the distortion the KL pays for
MEAN_CODE = "VAE: KL rate, posterior mean decoded"       # a second marker: a code the KL does not pay for
DRAWS_PER_IMAGE = 4                                       # codes drawn from q(z | x) per test image


@torch.inference_mode()
def sampled_reconstructions(model, mean: torch.Tensor, logvar: torch.Tensor, *, draws: int = DRAWS_PER_IMAGE,
                            seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Decode ``draws`` codes z ~ q(z | x) = N(mean, exp(logvar)) per image: (draws * N, 3, 32, 32) in [-1, 1].

    ``mean`` and ``logvar`` are (N, D) from :func:`convae_utils.vae.posterior_stats`; draw ``d`` of
    every image comes first, then draw ``d + 1`` (so row ``d * N + i`` belongs to image ``i``). Seeded:
    the noise is drawn on the CPU.
    """
    from .vae import reparameterize

    draws = check_int("draws", draws)
    gen = torch.Generator().manual_seed(seed)
    codes = torch.cat([reparameterize(mean, logvar, generator=gen) for _ in range(draws)])   # (draws * N, D)
    return decode_codes(model, codes.view(len(codes), *model.code_shape), batch_size=batch_size)


def vae_measures(model, test: ImageSet, *, label: str, scorer: GenerationScorer | None = None,
                 samples: int = 500, seed: int = 0, threshold_nats: float = 0.01,
                 draws: int = DRAWS_PER_IMAGE) -> dict:
    """One row about a trained VAE: rate, distortion, collapse, and (with a ``scorer``) its prior samples.

    ``rate_bits``: mean KL per test image, in bits: what sending a code *drawn* from q(z | x) costs with
    relative-entropy coding, about KL + log2(KL + 1) + O(1) bits (see :mod:`convae_utils.vae`); for a real
    coder the KL is a lower bound. The distortion that goes with it is the drawn code's:
    ``psnr_of_mean_mse`` / ``mean_psnr`` / ``ssim`` / ``mse`` score ``draws`` decoded draws per test image
    (E_q[d(x, g(z))], [0, 1] scale, as notebook 06 scores a codec), under ``method`` :data:`SAMPLED_CODE`.
    ``posterior_mean_psnr`` / ``posterior_mean_ssim`` score the decoded posterior *mean*, a code the KL does
    not pay for (usually better: the mean is the least noisy code). ``inactive_dims``: code values whose
    mean KL is below ``threshold_nats`` (posterior collapse). The generation measures are those of
    :meth:`GenerationScorer.score` on ``samples`` draws from the prior (seeded).
    """
    from .baselines import score_reconstructions
    from .vae import inactive_dimensions, kl_divergence, posterior_stats

    mean, logvar = posterior_stats(model, test.images)                     # (N, D) each
    rate_bits = float(kl_divergence(mean, logvar).mean()) / math.log(2.0)
    bits = max(rate_bits, 1e-6)
    drawn = sampled_reconstructions(model, mean, logvar, draws=draws, seed=seed)       # (draws * N, 3, 32, 32)
    row = score_reconstructions(SAMPLED_CODE, label, drawn, test.images.repeat(draws, 1, 1, 1),
                                bits_per_image=bits).iloc[0].to_dict()
    row["images"] = len(test)
    at_mean = decode_codes(model, mean.view(len(mean), *model.code_shape))
    scored = score_reconstructions(MEAN_CODE, label, at_mean, test.images, bits_per_image=bits).iloc[0]
    row.update(rate_bits=rate_bits, draws_per_image=draws, latent_dim=model.latent_dim,
               inactive_dims=inactive_dimensions(mean, logvar, threshold_nats=threshold_nats),
               **{f"posterior_mean_{k}": float(scored[k]) for k in ("mse", "psnr_of_mean_mse", "mean_psnr", "ssim")})
    row["posterior_mean_psnr"] = row.pop("posterior_mean_psnr_of_mean_mse")
    if scorer is not None:
        row.update({f"sample_{k}": v for k, v in scorer.score(model.sample(samples, seed=seed)).items()
                    if k != "images"})
    return row


def vae_codec_rows(sweep) -> "pd.DataFrame":
    """The rate-distortion rows of a sweep of :func:`vae_measures` rows (a DataFrame, one row per beta).

    Two curves on the rate of the KL: :data:`SAMPLED_CODE`, each point the distortion of decoded draws
    from q(z | x) (what the KL pays for), and :data:`MEAN_CODE`, the decoded posterior mean (labelled as
    such: nothing pays for it). Columns of :data:`convae_utils.baselines.TABLE_COLUMNS`.
    """
    import pandas as pd

    from .baselines import TABLE_COLUMNS

    sampled = sweep.reset_index(drop=True)[list(TABLE_COLUMNS)].assign(method=SAMPLED_CODE)
    at_mean = sampled.assign(method=MEAN_CODE, mse=sweep["posterior_mean_mse"].to_numpy(),
                             psnr_of_mean_mse=sweep["posterior_mean_psnr"].to_numpy(),
                             mean_psnr=sweep["posterior_mean_mean_psnr"].to_numpy(),
                             ssim=sweep["posterior_mean_ssim"].to_numpy())
    return pd.concat([sampled, at_mean], ignore_index=True)


def vae_against_opponents(sweep, *, pca_curve, jpeg_rows) -> "pd.DataFrame":
    """Notebook 09's rate-distortion table: the VAE's two curves (:func:`vae_codec_rows`), PCA entropy-coded
    (notebook 08's strongest opponent: ``pca_curve`` from ``pca_codec_curve``) and JPEG's scan data.

    Both opponents are required: a VAE point is only worth what it beats at equal bits.
    """
    from .baselines import TABLE_COLUMNS, rate_distortion_table

    if pca_curve is None or not len(pca_curve) or jpeg_rows is None or not len(jpeg_rows):
        raise ValueError("the VAE's curve needs its opponents: PCA's entropy-coded curve (pca_codec_curve) and JPEG "
                         "(baselines.jpeg_sweep), each with at least one point")
    jpeg = jpeg_rows[jpeg_rows["method"] == "JPEG (scan data only)"] if "JPEG (scan data only)" in set(
        jpeg_rows["method"]) else jpeg_rows
    return rate_distortion_table([vae_codec_rows(sweep), pca_curve[list(TABLE_COLUMNS)], jpeg[list(TABLE_COLUMNS)]])
