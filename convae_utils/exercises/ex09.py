"""Notebook 09's exercises (the variational autoencoder): the reparameterised draw and the KL of a Gaussian.

The worked solutions are the package's own :func:`convae_utils.vae.reparameterize` and
:func:`convae_utils.vae.kl_divergence` (the ones the VAE's step uses by default). The checks compare
with formulas written here, not with those functions.
"""

from __future__ import annotations

import math

import torch

from .. import vae
from .core import CodeExercise, Wrong

NUMBERS = []

DRAWS = 20_000          # copies of one probe image: each code value gets 20,000 draws
KS_LIMIT = 0.01         # largest distance between the draws' distribution and N(0, 1) (240,000 values: ~0.003 by chance)
SHARED_CORRELATION = 0.5  # draws of two values (or two calls) correlated beyond this share one epsilon


def _probe(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(4, 3, 2, 2, generator=gen, dtype=torch.float64)
    logvar = torch.randn(4, 3, 2, 2, generator=gen, dtype=torch.float64) * 1.5
    return mean, logvar


def _max_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |correlation| between matching columns of a and b (draws in rows)."""
    a, b = a - a.mean(0), b - b.mean(0)
    return float(((a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-12)).abs().max())


def _ks_distance(values: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance between the values' empirical distribution and N(0, 1)."""
    ordered = values.flatten().double().sort().values
    n = ordered.numel()
    normal = torch.special.ndtr(ordered)
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - normal
    below = normal - torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(above, below).max())


def check_reparameterize(candidate) -> None:
    """Does ``candidate(mean, logvar)`` draw N(mean, exp(logvar)), independently, with gradients?

    On 20,000 copies of one (3, 2, 2) code: the shape; gradients to mean and logvar; noise at all;
    fresh noise on every call (a ``torch.manual_seed`` inside the function gives the same draw twice);
    one epsilon per image and per value (``torch.randn(N, 1, 1, 1)`` shares one across an image's values);
    the draws' centre and spread (named: the variance or logvar used as the spread); their shape
    (a Kolmogorov-Smirnov distance to N(0, 1) at most :data:`KS_LIMIT`; uniform noise is named).
    The global random generator is seeded inside and restored after, so the check is deterministic.
    """
    mean, logvar = _probe()
    mean = mean[:1].expand(DRAWS, -1, -1, -1).clone().requires_grad_(True)
    logvar = logvar[:1].expand(DRAWS, -1, -1, -1).clone().requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        z = candidate(mean, logvar)
        if not isinstance(z, torch.Tensor) or z.shape != mean.shape:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise Wrong(f"it should return one draw per value, shape {tuple(mean.shape)} like mean; got {got}")
        again = candidate(mean, logvar)
    if not z.requires_grad:
        raise Wrong("no gradient reaches mean and logvar: build z from them (mean + std * eps), "
                    "with only eps drawn at random; do not detach or draw z with torch.normal(mean, std)")
    if torch.allclose(z, mean):
        raise Wrong("z equals the mean: the noise eps ~ N(0, I) times the spread is missing")
    grads = torch.autograd.grad(z.sum(), (mean, logvar), allow_unused=True)
    reached = [g is not None and bool(g.abs().sum() > 0) for g in grads]
    if not any(reached):
        raise Wrong("no gradient reaches mean or logvar although z is attached to them (torch.normal(mean, std) "
                    "draws without a path back): write z = mean + std * eps, with only eps drawn at random")
    if not all(reached):
        cut = "logvar" if reached[0] else "mean"
        raise Wrong(f"no gradient reaches {cut}: is it (or what you compute from it) detached? Only eps is drawn "
                    "at random; mean and the spread stay in the graph, so both can learn")
    z, again = z.detach().double(), again.detach().double()
    want_std = torch.exp(0.5 * logvar[0].detach())
    eps = ((z - mean.detach()) / want_std).flatten(1)                # (DRAWS, 12): the noise as drawn
    if torch.allclose(z, again) or _max_correlation(eps, ((again - mean.detach()) / want_std).flatten(1)) > SHARED_CORRELATION:
        raise Wrong("two calls gave the same draw: is there a torch.manual_seed (or a fixed generator) inside your "
                    "function? Each call must draw fresh noise; seed once, outside, if at all")
    if bool((eps.std(dim=0) < 1e-6).all()):
        raise Wrong("every image got the same draw: eps is shared across the batch (shaped like one image?); "
                    "draw one eps per value of every image, torch.randn_like(mean)")
    centred = eps - eps.mean(0)
    correlation = (centred.T @ centred) / (centred.norm(dim=0)[:, None] * centred.norm(dim=0)[None, :]).clamp_min(1e-12)
    off_diagonal = correlation - torch.diag(torch.diag(correlation))
    if float(off_diagonal.abs().max()) > SHARED_CORRELATION:
        raise Wrong("the values of one image move together: they share one eps (torch.randn(N, 1, 1, 1)?). Each "
                    "code value needs its own independent eps, shaped like mean: torch.randn_like(mean)")
    got_mean, got_std = z.mean(dim=0), z.std(dim=0)
    if not torch.allclose(got_mean, mean[0].detach(), atol=0.05 * float(want_std.max()) + 0.03):
        raise Wrong("the draws are not centred on mean: z should be mean + (spread) * eps, with eps of mean 0")
    ratio = got_std / want_std
    if not bool(((ratio - 1).abs() < 0.05).all()):
        if bool(((got_std / torch.exp(logvar[0].detach()) - 1).abs() < 0.05).all()):
            raise Wrong("the spread is exp(logvar), the variance: the standard deviation is its square root, "
                        "sigma = exp(logvar / 2)")
        if bool(((got_std / logvar[0].detach().abs().clamp_min(1e-6) - 1).abs() < 0.05).all()):
            raise Wrong("the spread is logvar itself: logvar is log(sigma^2); sigma = exp(logvar / 2)")
        raise Wrong(f"the draws' spread is off by a factor {float(ratio.median()):.2f} (median over values): "
                    "sigma = exp(logvar / 2), eps from torch.randn_like(mean)")
    standardised = (z - got_mean) / got_std
    distance = _ks_distance(standardised)
    if distance > KS_LIMIT:
        excess_kurtosis = float(standardised.pow(4).mean()) - 3.0
        if abs(excess_kurtosis + 1.2) < 0.1:
            raise Wrong("the noise is uniform (flat, no tails), rescaled to the right spread; eps must be Gaussian, "
                        "N(0, 1): torch.randn_like(mean), not torch.rand_like")
        raise Wrong(f"the right mean and spread, but the draws are not Gaussian (their distribution is {distance:.3f} "
                    "from N(0, 1) at its farthest): eps from torch.randn_like(mean)")


def _kl_reversed(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(0, I) || N(mean, exp(logvar))) per image: the other direction."""
    return 0.5 * ((1 + mean.pow(2)) / logvar.exp() - 1 + logvar).flatten(1).sum(dim=1)


def _kl_slips(mean: torch.Tensor, logvar: torch.Tensor, want: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    """Per-image values of plausible wrong KLs, each with what to say about it."""
    per_image = lambda terms: 0.5 * terms.flatten(1).sum(dim=1)  # noqa: E731
    return [
        (want / mean[0].numel(), "it averages over the code values: the KL of an image is their sum"),
        (want / math.log(2), "that is the KL in bits: the loss takes nats (natural log); leave out the / ln 2"),
        (2 * want, "twice the KL: the closed form has a factor 1/2 in front"),
        (-want, "the sign is flipped: a KL is never negative; it is 0.5 * (mean^2 + exp(logvar) - 1 - logvar)"),
        (per_image(mean.pow(2) + logvar.exp() - logvar),
         "the -1 is missing: each value's term is 0.5 * (mean^2 + exp(logvar) - 1 - logvar); without the -1 a "
         "posterior equal to the prior (mean 0, logvar 0) would cost 0.5 nat per value instead of 0"),
        (_kl_reversed(mean, logvar),
         "that is KL(N(0, I) || q), the reverse direction: the VAE's rate is KL(q || N(0, I)) = 0.5 * (mean^2 + "
         "exp(logvar) - 1 - logvar), with q = N(mean, exp(logvar)) first"),
        (per_image(mean.pow(2) + (0.5 * logvar).exp() - 1 - logvar),
         "you used exp(logvar / 2), sigma, where the formula has the variance sigma^2 = exp(logvar)"),
        (per_image(mean.pow(2) + logvar.exp() - 1 + logvar), "the log-variance term has the wrong sign: it is - logvar"),
        (per_image(mean.pow(2) + logvar.exp() - 1 - 2 * logvar),
         "the last term is - logvar (the log of the variance), not - 2 logvar"),
        (per_image(logvar.exp() - 1 - logvar), "the mean^2 term is missing: a posterior away from 0 costs nats too"),
        (per_image(mean.pow(2) + logvar.exp() - 1), "the - logvar term is missing"),
        (per_image(mean + logvar.exp() - 1 - logvar), "the mean term is mean^2, not mean"),
    ]


def check_kl_divergence(candidate) -> None:
    """Does ``candidate(mean, logvar)`` give KL(N(mean, exp(logvar)) || N(0, I)) per image, in nats?

    Compared with the closed form on 4 probe codes of (3, 2, 2) values; each slip of :func:`_kl_slips`
    (a missing -1, the reversed KL, sigma for the variance, bits, ...) is named.
    """
    mean, logvar = _probe(1)
    want = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(dim=1)
    got = candidate(mean.clone(), logvar.clone())
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"it should return a tensor of one KL per image, got {type(got).__name__}")
    got = got.detach().to(want.dtype)
    if got.shape != want.shape:
        if got.numel() == 1 and torch.allclose(got.reshape(()), want.sum()):
            raise Wrong("it sums over the images too: keep one KL per image (sum over dim 1 onwards only)")
        if got.numel() == 1 and torch.allclose(got.reshape(()), want.mean()):
            raise Wrong("it averages over the images: keep one KL per image, shape (N,)")
        if got.shape == mean.shape:
            raise Wrong("it returns one value per code value: sum them over each image (flatten(1).sum(dim=1))")
        raise Wrong(f"expected one KL per image, shape {tuple(want.shape)}; got {tuple(got.shape)}")
    if torch.allclose(got, want, rtol=1e-5, atol=1e-6):
        return
    for value, message in _kl_slips(mean, logvar, want):
        if torch.allclose(got, value, rtol=1e-5, atol=1e-6):
            raise Wrong(message)
    raise Wrong("the values differ from the closed form 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar) over each "
                f"image's values: for the probe's first image {float(want[0]):.4g} nats, yours {float(got[0]):.4g}")


CODE = [
    CodeExercise("09.1", "Write reparameterize(mean, logvar): a draw z = mean + sigma * eps, sigma from the "
                         "log-variance, eps ~ N(0, I) shaped like mean.", vae.reparameterize, check_reparameterize),
    CodeExercise("09.2", "Write kl_divergence(mean, logvar): KL(N(mean, exp(logvar)) || N(0, I)) of each image in "
                         "nats, summed over its code values.", vae.kl_divergence, check_kl_divergence),
]
