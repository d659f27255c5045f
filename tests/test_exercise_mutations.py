"""The mutation table of every code exercise (issue 29): plausible wrong answers, each refused with its own
message, and right answers written another way, each accepted. A row is (name, wrong function, words the
check's message must hold); the names are what a learner might write, not the check's own words."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convae_utils import exercises, models, spatial
from convae_utils.codecs import learned
from convae_utils.spatial import ResidualBlock

SOLUTION = {exercise_id: e.solution for exercise_id, e in exercises.CODE_EXERCISES.items()}


# -- 02.7 the article's encoder -----------------------------------------------------------------------

def _encoder_edit(change):
    def build(latent_dim):
        layers = list(SOLUTION["02.7"](latent_dim))
        return nn.Sequential(*change(layers, latent_dim))
    return build


def _replace(index, layer):
    return lambda layers, d: [layer(d) if i == index else m for i, m in enumerate(layers)]


ENCODER = [
    ("no stride", _encoder_edit(_replace(4, lambda d: nn.Conv2d(16, 32, 3, padding=1))), "stride=2"),
    ("no padding", _encoder_edit(_replace(0, lambda d: nn.Conv2d(3, 16, 3))), "padding=1"),
    ("channels", _encoder_edit(lambda ls, d: [nn.Conv2d(3, 32, 3, padding=1) if i == 0 else
                                              nn.Conv2d(32, 16, 3, padding=1) if i == 2 else m
                                              for i, m in enumerate(ls)]), "channels here should be 16"),
    ("hard-coded 200", _encoder_edit(_replace(13, lambda d: nn.Linear(4096, 200))), "use the argument"),
    ("no Flatten", _encoder_edit(lambda ls, d: [m for m in ls if not isinstance(m, nn.Flatten)]), "nn.Flatten()"),
    ("no ReLU after a conv", _encoder_edit(lambda ls, d: [m for i, m in enumerate(ls) if i != 1]),
     "Conv2d(3 -> 16, stride 1) is not followed by an activation"),
    ("no ReLU on the code", _encoder_edit(lambda ls, d: ls[:-1]), "the code's Linear layer is not followed"),
    ("5x5 kernels", _encoder_edit(_replace(2, lambda d: nn.Conv2d(16, 16, 5, padding=2))), "parameters"),
    ("a conv short", _encoder_edit(lambda ls, d: ls[:10] + ls[12:]), "layer 6 with weights"),
]
ENCODER_RIGHT = [
    ("the package's class", lambda latent_dim: models.Encoder(latent_dim)),
    ("a loop", lambda latent_dim: nn.Sequential(
        *[layer for c_in, c_out, stride in ((3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1))
          for layer in (nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1), nn.ReLU())],
        nn.Flatten(), nn.Linear(4096, latent_dim), nn.ReLU())),
]


# -- 03.6 the training step --------------------------------------------------------------------------

def _step(loss_of):
    def step(model, batch):
        return loss_of(model(batch), batch), {}
    return step


def _backward(model, batch):
    loss = F.mse_loss(model(batch), batch)
    loss.backward()
    return loss, {}


def _no_grad(model, batch):
    with torch.no_grad():
        return F.mse_loss(model(batch), batch), {}


STEP = [
    ("sum", _step(lambda r, b: F.mse_loss(r, b, reduction="sum")), "sum of the squared errors"),
    ("sum per image", _step(lambda r, b: (r - b).pow(2).flatten(1).sum(1).mean()), "3,072 times"),
    ("[0, 1] scale", _step(lambda r, b: F.mse_loss((r + 1) / 2, (b + 1) / 2)), "[0, 1] scale"),
    ("half", _step(lambda r, b: 0.5 * F.mse_loss(r, b)), "half the MSE"),
    ("root", _step(lambda r, b: F.mse_loss(r, b).sqrt()), "root of the MSE"),
    ("L1", _step(lambda r, b: F.l1_loss(r, b)), "(L1, F.l1_loss)"),
    ("Huber", _step(lambda r, b: F.smooth_l1_loss(r, b)), "Huber"),
    ("minus", _step(lambda r, b: -F.mse_loss(r, b)), "minus the MSE"),
    ("against zeros", _step(lambda r, b: r.pow(2).mean()), "its own input"),
    ("no model", lambda model, batch: (batch.pow(2).mean() + 0 * sum(p.sum() for p in model.parameters()), {}),
     "does not involve the model's output"),
    (".item()", lambda model, batch: (F.mse_loss(model(batch), batch).item(), {}), ".item()"),
    ("backward", _backward, "called backward()"),
    ("loss only", lambda model, batch: F.mse_loss(model(batch), batch), "return a pair"),
    ("one loss per image", _step(lambda r, b: (r - b).pow(2).flatten(1).mean(1)), "0-d tensor"),
    ("no_grad", _no_grad, "no gradient"),
    ("floats logged", lambda model, batch: (F.mse_loss(model(batch), batch), {"mse": 0.1}), "logs should be"),
]
STEP_RIGHT = [
    ("by hand", lambda model, batch: (((batch - model(batch)) ** 2).mean(), {"mse": torch.tensor(0.0)})),
    ("sum / count", _step(lambda r, b: F.mse_loss(r, b, reduction="sum") / b.numel())),
]


# -- 04.5 PSNR per image ------------------------------------------------------------------------------

def _mse01(r, o):
    return ((r - o) / 2).pow(2).flatten(1).mean(1)


PSNR = [
    ("[-1, 1] scale", lambda r, o: 10 * torch.log10(1 / (r - o).pow(2).flatten(1).mean(1)), "6.02 dB too low"),
    ("one for the batch", lambda r, o: 10 * torch.log10(4 / (r - o).pow(2).mean()), "one number for the whole batch"),
    ("20 log10 of the MSE", lambda r, o: 20 * torch.log10(1 / _mse01(r, o)), "twice too large"),
    ("10 log10 of the RMSE", lambda r, o: 10 * torch.log10(1 / _mse01(r, o).sqrt()), "half what it should be"),
    ("sign", lambda r, o: 10 * torch.log10(_mse01(r, o)), "signs are flipped"),
    ("natural log", lambda r, o: 10 * torch.log(1 / _mse01(r, o)), "natural logarithm"),
    ("0-255 with peak 1", lambda r, o: 10 * torch.log10(1 / (_mse01(r, o) * 255 ** 2)), "48.1 dB"),
    ("a list", lambda r, o: [float(v) for v in 10 * torch.log10(1 / _mse01(r, o))], "should be a tensor"),
    ("one image short", lambda r, o: 10 * torch.log10(1 / _mse01(r, o))[:-1], "shape (5,)"),
]
PSNR_RIGHT = [
    ("20 log10 of the RMSE", lambda r, o: 20 * torch.log10(1 / _mse01(r, o).sqrt())),
    ("numpy", lambda r, o: -10 * np.log10((((r.numpy() + 1) / 2 - (o.numpy() + 1) / 2) ** 2).mean(axis=(1, 2, 3)))),
]


# -- 05.6 dead units ----------------------------------------------------------------------------------

DEAD = [
    ("any", lambda codes: int((codes == 0).any(dim=0).sum()), "*every* image"),
    ("rows", lambda codes: int((codes == 0).all(dim=1).sum()), "columns"),
    ("alive", lambda codes: int((codes != 0).any(dim=0).sum()), "alive"),
    ("zeros", lambda codes: int((codes == 0).sum()), "zero values"),
    ("a mask", lambda codes: (codes == 0).all(dim=0), "a mask"),
    ("text", lambda codes: "2", "whole number"),
]
DEAD_RIGHT = [
    ("a tensor", lambda codes: (codes.abs().sum(dim=0) == 0).sum()),
    ("a loop", lambda codes: sum(bool((codes[:, j] == 0).all()) for j in range(codes.shape[1]))),
]


# -- 06.5 PCA round trip ------------------------------------------------------------------------------

PCA = [
    ("no centring", lambda x, m, c: (x @ c.T, x @ c.T @ c + m), "skip the centring"),
    ("mean added", lambda x, m, c: ((x + m) @ c.T, (x + m) @ c.T @ c + m), "add the mean"),
    ("no mean back", lambda x, m, c: ((x - m) @ c.T, (x - m) @ c.T @ c), "lack the mean image"),
    ("not transposed", lambda x, m, c: ((x - m) @ c, (x - m) @ c @ c.T + m), "RuntimeError"),
    ("the images back", lambda x, m, c: ((x - m) @ c.T, x), "images themselves"),
    ("codes only", lambda x, m, c: (x - m) @ c.T, "a pair"),
    ("scaled codes", lambda x, m, c: (2 * (x - m) @ c.T, (x - m) @ c.T @ c + m), "differ from PCA's"),
]
PCA_RIGHT = [
    ("einsum", lambda x, m, c: (torch.einsum("nd,kd->nk", x - m, c),
                                torch.einsum("nd,kd->nk", x - m, c) @ c + m)),
    ("numpy", lambda x, m, c: ((x.numpy() - m.numpy()) @ c.numpy().T,
                               (x.numpy() - m.numpy()) @ c.numpy().T @ c.numpy() + m.numpy())),
]


# -- 07.7 the alarm threshold -------------------------------------------------------------------------

THRESHOLD = [
    ("rate quantile", lambda s, rate: float(np.quantile(s, rate)), "(1 - rate) quantile"),
    ("fixed 95%", lambda s, rate: float(np.quantile(s, 0.95)), "not 20%"),
    ("mean + 2 sd", lambda s, rate: float(s.mean() + 2 * s.std()), "mean + 2 standard deviations"),
    ("the largest", lambda s, rate: float(s.max()), "flags no validation image"),
    ("several", lambda s, rate: np.quantile(s, [1 - rate, 1 - rate / 2]), "one number"),
]
THRESHOLD_RIGHT = [
    ("torch", lambda s, rate: torch.quantile(s, 1 - rate)),
    ("sorted", lambda s, rate: float(s.sort().values[int(len(s) * (1 - rate))])),
]


# -- 08.1 the spatial autoencoder ---------------------------------------------------------------------

def _spatial(change):
    def build(code_channels, width):
        encoder, decoder = SOLUTION["08.1"](code_channels, width)
        return change(list(encoder), list(decoder), code_channels, 2 * width)
    return build


def _seq(*layers):
    return nn.Sequential(*layers)


class _MyBlock(nn.Module):  # a learner's own residual block
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.GELU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class _NotResidual(_MyBlock):
    def forward(self, x):
        return self.body(x)


class _DoesNothing(nn.Module):
    def __init__(self, c):
        super().__init__()

    def forward(self, x):
        return x


class _Wrapped(nn.Module):  # an encoder written as a class of its own, not an nn.Sequential
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def _swap(kind):
    return lambda e, d, k, c: (_seq(*[kind(c) if isinstance(m, ResidualBlock) else m for m in e]),
                               _seq(*[kind(c) if isinstance(m, ResidualBlock) else m for m in d]))


def _no_blocks(e, d, k, c):
    return _seq(*[m for m in e if not isinstance(m, ResidualBlock)]), _seq(*[m for m in d if not isinstance(m, ResidualBlock)])


def _hard_coded(code_channels, width):  # a decoder written for 4 code channels, not the argument
    return SOLUTION["08.1"](code_channels, width)[0], SOLUTION["08.1"](4, width)[1]


def _max_pool(e, d, k, c):
    pooled = lambda: _seq(nn.Conv2d(c, c, 3, padding=1), nn.MaxPool2d(2))  # noqa: E731
    return _seq(*e[:3], pooled(), *e[4:6], pooled(), *e[7:]), _seq(*d)


def _blocks_at_16_only(e, d, k, c):
    gelu = nn.GELU
    encoder = _seq(e[0], e[1], gelu(), ResidualBlock(c), gelu(), e[3], gelu(), e[6], gelu(), e[9])
    decoder = _seq(d[0], gelu(), d[3], d[4], gelu(), d[7], d[8], ResidualBlock(c), gelu(), *d[10:])
    return encoder, decoder


SPATIAL = [
    ("ReLU on the code", _spatial(lambda e, d, k, c: (_seq(*e, nn.ReLU()), _seq(*d))), "ends in ReLU"),
    ("GELU on the code", _spatial(lambda e, d, k, c: (_seq(*e, nn.GELU()), _seq(*d))), "ends in GELU"),
    ("Tanh on the code", _spatial(lambda e, d, k, c: (_seq(*e, nn.Tanh()), _seq(*d))), "ends in Tanh"),
    ("Mish, hidden", _spatial(lambda e, d, k, c: (_seq(*e, nn.Mish(), nn.Identity()), _seq(*d))), "ends in Mish"),
    ("ReLU code in a class", _spatial(lambda e, d, k, c: (_Wrapped(_seq(*e, nn.ReLU())), _seq(*d))),
     "every code value is >= 0"),
    ("a halving short", _spatial(lambda e, d, k, c: (_seq(*e[:-4], e[-1]), _seq(*d))), "(4, 3, 4, 4)"),
    ("no Tanh", _spatial(lambda e, d, k, c: (_seq(*e), _seq(*d[:-1]))), "outside [-1, 1]"),
    ("Sigmoid out", _spatial(lambda e, d, k, c: (_seq(*e), _seq(*d[:-1], nn.Sigmoid()))), "never goes below 0"),
    ("no PixelShuffle", _spatial(lambda e, d, k, c: (_seq(*e), _seq(*d[:-2], d[-1]))), "nn.PixelShuffle(2)"),
    ("no conv to 12", _spatial(lambda e, d, k, c: (_seq(*e), _seq(*d[:-3], d[-2], d[-1]))), "(4, 3, 32, 32)"),
    ("transposed convs", _spatial(lambda e, d, k, c: (_seq(*e), _seq(nn.ConvTranspose2d(k, 3, 8, stride=8), nn.Tanh()))),
     "ConvTranspose2d"),
    ("BatchNorm", _spatial(lambda e, d, k, c: (_seq(nn.BatchNorm2d(3), *e), _seq(*d))), "BatchNorm"),
    ("MaxPool2d for the stride-2 convs", _spatial(_max_pool), "MaxPool2d"),
    ("ReLU for GELU", _spatial(lambda e, d, k, c: (_seq(*[nn.ReLU() if isinstance(m, nn.GELU) else m for m in e]),
                                                   _seq(*[nn.ReLU() if isinstance(m, nn.GELU) else m for m in d]))),
     "ReLU where the text asks for nn.GELU()"),
    ("no GELU at all", _spatial(lambda e, d, k, c: (_seq(*[m for m in e if not isinstance(m, nn.GELU)]),
                                                    _seq(*[m for m in d if not isinstance(m, nn.GELU)]))),
     "with no activation between them"),
    ("no blocks", _spatial(_no_blocks), "encoder has no residual block"),
    ("no blocks in the decoder", _spatial(lambda e, d, k, c: (_seq(*e), _no_blocks(e, d, k, c)[1])),
     "decoder has no residual block"),
    ("no PixelUnshuffle", _spatial(lambda e, d, k, c: (_seq(nn.Conv2d(3, 12, 3, stride=2, padding=1), *e[1:]), _seq(*d))),
     "PixelUnshuffle"),
    ("width for 2 * width", lambda k, width: SOLUTION["08.1"](k, width // 2), "2 * width = 16"),
    ("a stride-4 conv", _spatial(lambda e, d, k, c: (_seq(*e[:3], nn.Conv2d(c, c, 3, stride=4, padding=1), e[4], e[5],
                                                          e[9]), _seq(*d))), "two stride-2 convolutions"),
    ("two Upsamples in a row", _spatial(lambda e, d, k, c: (_seq(*e), _seq(*d[:3], nn.Upsample(scale_factor=2), d[3],
                                                                           d[4], d[5], d[6], *d[8:]))),
     "nn.Upsample is followed by Upsample"),
    ("one Upsample by 4", _spatial(lambda e, d, k, c: (_seq(*e), _seq(*d[:3], nn.Upsample(scale_factor=4), d[4], d[5],
                                                                      d[6], *d[8:]))), "scales by 4"),
    ("blocks at 16x16 only", _spatial(_blocks_at_16_only), "no residual block at 8x8 and 4x4 (yours: at 16x16)"),
    ("hard-coded channels", _hard_coded, "code_channels=3 and width=8"),
    ("a block that is not residual", _spatial(_swap(_NotResidual)), "not residual"),
    ("a block that does nothing", _spatial(_swap(_DoesNothing)), "no weights"),
]


def _package_classes(code_channels, width):
    return (spatial.SpatialEncoder(code_channels, width, stem="pixel"),
            spatial.SpatialDecoder(code_channels, width, stem="pixel"))


def _bilinear_and_more_blocks(e, d, k, c):
    decoder = [nn.Upsample(scale_factor=2, mode="bilinear") if isinstance(m, nn.Upsample) else m for m in d]
    return _seq(*e[:3], ResidualBlock(c), nn.GELU(), *e[3:5], ResidualBlock(c), *e[5:]), _seq(*decoder)


SPATIAL_RIGHT = [
    ("the package's classes", _package_classes),
    ("a block of one's own", _spatial(_swap(_MyBlock))),
    ("bilinear, more blocks", _spatial(_bilinear_and_more_blocks)),
    ("an encoder class of one's own", _spatial(lambda e, d, k, c: (_Wrapped(_seq(*e)), _seq(*d)))),
]


# -- 09.1 reparameterize ------------------------------------------------------------------------------

def _seeded(mean, logvar):
    torch.manual_seed(0)
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


REPARAMETERIZE = [
    ("variance as spread", lambda m, lv: m + torch.exp(lv) * torch.randn_like(m), "exp(logvar), the variance"),
    ("logvar as spread", lambda m, lv: m + lv * torch.randn_like(m), "logvar itself"),
    ("no noise", lambda m, lv: m, "z equals the mean"),
    ("torch.normal", lambda m, lv: torch.normal(m, torch.exp(0.5 * lv)), "torch.normal(mean, std) draws without"),
    ("everything detached", lambda m, lv: (m + torch.exp(0.5 * lv) * torch.randn_like(m)).detach(),
     "no gradient reaches mean and logvar"),
    ("spread detached", lambda m, lv: m + torch.exp(0.5 * lv).detach() * torch.randn_like(m), "no gradient reaches logvar"),
    ("one eps per image", lambda m, lv: m + torch.exp(0.5 * lv) * torch.randn(m.shape[0], 1, 1, 1, dtype=m.dtype),
     "share one eps"),
    ("one eps for the batch", lambda m, lv: m + torch.exp(0.5 * lv) * torch.randn(m.shape[1:], dtype=m.dtype),
     "every image got the same draw"),
    ("a seed inside", _seeded, "torch.manual_seed"),
    ("uniform noise", lambda m, lv: m + torch.exp(0.5 * lv) * (torch.rand_like(m) - 0.5) * math.sqrt(12), "uniform"),
    ("Laplace noise", lambda m, lv: m + torch.exp(0.5 * lv) * torch.distributions.Laplace(0.0, 2 ** -0.5).sample(m.shape),
     "not Gaussian"),
    ("off centre", lambda m, lv: m + torch.exp(0.5 * lv) * (torch.randn_like(m) + 1), "not centred"),
    ("twice the noise", lambda m, lv: m + torch.exp(0.5 * lv) * 2 * torch.randn_like(m), "factor 2.00"),
    ("a float", lambda m, lv: float((m + torch.exp(0.5 * lv) * torch.randn_like(m)).detach().sum()), "one draw per value"),
]
REPARAMETERIZE_RIGHT = [
    ("rsample", lambda m, lv: torch.distributions.Normal(m, torch.exp(0.5 * lv)).rsample()),
    ("minus", lambda m, lv: m - torch.randn(m.shape, dtype=m.dtype) * lv.mul(0.5).exp()),
    ("sqrt", lambda m, lv: m + lv.exp().sqrt() * torch.randn_like(lv)),
]


# -- 09.2 the KL --------------------------------------------------------------------------------------

def _per_value(m, lv):
    return 0.5 * (m.pow(2) + lv.exp() - 1 - lv)


def _image(terms):
    return 0.5 * terms.flatten(1).sum(dim=1)


KL = [
    ("no sum", _per_value, "sum them"),
    ("mean over values", lambda m, lv: _per_value(m, lv).flatten(1).mean(dim=1), "averages over the code values"),
    ("no 1/2", lambda m, lv: 2 * _per_value(m, lv).flatten(1).sum(dim=1), "factor 1/2"),
    ("summed over images", lambda m, lv: _per_value(m, lv).sum(), "sums over the images too"),
    ("mean over images", lambda m, lv: _per_value(m, lv).flatten(1).sum(dim=1).mean(), "averages over the images"),
    ("bits", lambda m, lv: _per_value(m, lv).flatten(1).sum(dim=1) / math.log(2), "in bits"),
    ("sign", lambda m, lv: -_per_value(m, lv).flatten(1).sum(dim=1), "sign is flipped"),
    ("missing -1", lambda m, lv: _image(m.pow(2) + lv.exp() - lv), "the -1 is missing"),
    ("KL(p || q)", lambda m, lv: _image((1 + m.pow(2)) / lv.exp() - 1 + lv), "reverse direction"),
    ("sigma for the variance", lambda m, lv: _image(m.pow(2) + (0.5 * lv).exp() - 1 - lv), "exp(logvar / 2), sigma"),
    ("+ logvar", lambda m, lv: _image(m.pow(2) + lv.exp() - 1 + lv), "wrong sign: it is - logvar"),
    ("- 2 logvar", lambda m, lv: _image(m.pow(2) + lv.exp() - 1 - 2 * lv), "not - 2 logvar"),
    ("no mean^2", lambda m, lv: _image(lv.exp() - 1 - lv), "mean^2 term is missing"),
    ("no - logvar", lambda m, lv: _image(m.pow(2) + lv.exp() - 1), "- logvar term is missing"),
    ("mean not squared", lambda m, lv: _image(m + lv.exp() - 1 - lv), "mean^2, not mean"),
    ("a float", lambda m, lv: float(_per_value(m, lv).sum()), "tensor of one KL per image"),
    ("one image short", lambda m, lv: _per_value(m, lv).flatten(1).sum(dim=1)[:-1], "shape (4,)"),
]
KL_RIGHT = [
    ("Kingma and Welling's form", lambda m, lv: -0.5 * torch.sum(1 + lv - m.pow(2) - lv.exp(), dim=(1, 2, 3))),
    ("torch.distributions", lambda m, lv: torch.distributions.kl_divergence(
        torch.distributions.Normal(m, (0.5 * lv).exp()), torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)),
]


# 10.1: the bits of a rounded code under a Laplace per channel (notebook 10)
def _rate_cdf(x, loc, scale):
    return learned.laplace_cdf(x, loc.view(1, -1, 1, 1), scale.view(1, -1, 1, 1))


def _rate_density(x, loc, scale):
    return learned.laplace_density(x, loc.view(1, -1, 1, 1), scale.view(1, -1, 1, 1))


def _rate_with_distributions(y, loc, scale):
    laplace = torch.distributions.Laplace(loc.view(1, -1, 1, 1).double(), scale.view(1, -1, 1, 1).double())
    mass = laplace.cdf(y.double() + 0.5) - laplace.cdf(y.double() - 0.5)
    return (-torch.log(mass) / math.log(2)).sum(dim=(1, 2, 3))


def _rate_closed_form(y, loc, scale):
    """The mass in closed form: the interval on one side of loc, or across it."""
    l, s = loc.view(1, -1, 1, 1).double(), scale.view(1, -1, 1, 1).double()
    a, b = (y.double() - 0.5 - l) / s, (y.double() + 0.5 - l) / s
    lower = lambda z: 0.5 * torch.exp(torch.clamp(z, max=0))  # noqa: E731  (CDF below loc)
    upper = lambda z: 0.5 * torch.exp(-torch.clamp(z, min=0))  # noqa: E731 (1 - CDF above loc)
    mass = torch.where(b <= 0, lower(b) - lower(a), torch.where(a >= 0, upper(a) - upper(b), 1 - lower(a) - upper(b)))
    return -torch.log2(mass).flatten(1).sum(1)


def _rate_by_integer(y, loc, scale):
    """Bits of the integer part only (y.long() truncates towards zero): right on integers, wrong between them."""
    k = y.long().double()
    l, s = loc.view(1, -1, 1, 1).double(), scale.view(1, -1, 1, 1).double()
    laplace = torch.distributions.Laplace(l, s)
    return (-torch.log2(laplace.cdf(k + 0.5) - laplace.cdf(k - 0.5))).flatten(1).sum(1)


RATE = [
    ("density", lambda y, l, s: -torch.log2(_rate_density(y, l, s)).flatten(1).sum(1), "you took -log2 of the density"),
    ("nats", lambda y, l, s: -torch.log(_rate_cdf(y + .5, l, s) - _rate_cdf(y - .5, l, s)).flatten(1).sum(1), "nats"),
    ("no +-1/2 (above)", lambda y, l, s: -torch.log2(_rate_cdf(y, l, s) - _rate_cdf(y - 1, l, s)).flatten(1).sum(1),
     "you took CDF(y) - CDF(y - 1)"),
    ("no +-1/2 (below)", lambda y, l, s: -torch.log2(_rate_cdf(y + 1, l, s) - _rate_cdf(y, l, s)).flatten(1).sum(1),
     "you took CDF(y + 1) - CDF(y)"),
    ("summed over the batch", lambda y, l, s: -torch.log2(_rate_cdf(y + .5, l, s) - _rate_cdf(y - .5, l, s)).sum(),
     "you summed over the batch"),
    ("averaged over the batch", lambda y, l, s: -torch.log2(_rate_cdf(y + .5, l, s) - _rate_cdf(y - .5, l, s)).flatten(1).sum(1).mean(),
     "you averaged over the batch"),
    ("per value, not per image", lambda y, l, s: -torch.log2(_rate_cdf(y + .5, l, s) - _rate_cdf(y - .5, l, s)),
     "sum each image's values"),
    ("cdf alone", lambda y, l, s: -torch.log2(_rate_cdf(y, l, s)).flatten(1).sum(1), "-log2 CDF(y)"),
    ("sign", lambda y, l, s: torch.log2(_rate_cdf(y + .5, l, s) - _rate_cdf(y - .5, l, s)).flatten(1).sum(1), "your bits are negative"),
    ("density in nats", lambda y, l, s: -torch.log(_rate_density(y, l, s)).flatten(1).sum(1), "you took -log of the density"),
    ("mean over an image's values", lambda y, l, s: -torch.log2(_rate_cdf(y + .5, l, s) - _rate_cdf(y - .5, l, s)).flatten(1).mean(1),
     "you averaged each image's values"),
    ("CDFs subtracted the wrong way", lambda y, l, s: -torch.log2(_rate_cdf(y - .5, l, s) - _rate_cdf(y + .5, l, s)).flatten(1).sum(1),
     "your bits are NaN"),
    ("the wrong way, clamped", lambda y, l, s: -torch.log2((_rate_cdf(y - .5, l, s) - _rate_cdf(y + .5, l, s)).clamp_min(2.0 ** -40)).flatten(1).sum(1),
     "your masses are negative or zero"),
    ("loc and scale not reshaped", lambda y, l, s: -torch.log2(learned.laplace_cdf(y + .5, l, s)
                                                               - learned.laplace_cdf(y - .5, l, s)).flatten(1).sum(1),
     "expected loc and scale of shape (1, C, 1, 1)"),
    ("y rounded inside", lambda y, l, s: -torch.log2(_rate_cdf(torch.round(y) + .5, l, s)
                                                     - _rate_cdf(torch.round(y) - .5, l, s)).flatten(1).sum(1),
     "you round y inside"),
    ("integers only (a table lookup by y.long())", lambda y, l, s: _rate_by_integer(y, l, s),
     "right on integers, but not on the noisy code"),
]
RATE_RIGHT = [("torch.distributions", _rate_with_distributions), ("closed form on each side of loc", _rate_closed_form)]


WRONG = {"02.7": ENCODER, "03.6": STEP, "04.5": PSNR, "05.6": DEAD, "06.5": PCA, "07.7": THRESHOLD,
         "08.1": SPATIAL, "09.1": REPARAMETERIZE, "09.2": KL, "10.1": RATE}
RIGHT = {"02.7": ENCODER_RIGHT, "03.6": STEP_RIGHT, "04.5": PSNR_RIGHT, "05.6": DEAD_RIGHT, "06.5": PCA_RIGHT,
         "07.7": THRESHOLD_RIGHT, "08.1": SPATIAL_RIGHT, "09.1": REPARAMETERIZE_RIGHT, "09.2": KL_RIGHT,
         "10.1": RATE_RIGHT}


def test_every_code_exercise_has_a_mutation_table_and_right_answers_written_another_way():
    assert set(WRONG) == set(RIGHT) == set(exercises.CODE_EXERCISES)
    assert all(len(WRONG[i]) >= 5 and len(RIGHT[i]) >= 2 for i in WRONG)


@pytest.mark.parametrize("exercise_id,name,wrong,words",
                         [(i, n, w, words) for i, rows in sorted(WRONG.items()) for n, w, words in rows],
                         ids=[f"{i}-{n}" for i, rows in sorted(WRONG.items()) for n, _, _ in rows])
def test_a_plausible_wrong_answer_is_refused_in_its_own_words(exercise_id, name, wrong, words):
    problem = exercises.code_problem(exercise_id, wrong)
    assert problem is not None, f"{exercise_id}: {name} passed the check"
    assert words in problem, f"{exercise_id}: {name} got: {problem}"


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_each_wrong_answer_gets_a_message_of_its_own(exercise_id):
    messages = [exercises.code_problem(exercise_id, wrong) for _, wrong, _ in WRONG[exercise_id]]
    assert len(set(messages)) == len(messages), [n for (n, _, _), m in zip(WRONG[exercise_id], messages)
                                                 if messages.count(m) > 1]


@pytest.mark.parametrize("exercise_id,name,right",
                         [(i, n, r) for i, rows in sorted(RIGHT.items()) for n, r in rows],
                         ids=[f"{i}-{n}" for i, rows in sorted(RIGHT.items()) for n, _ in rows])
def test_a_right_answer_written_another_way_passes(exercise_id, name, right):
    assert exercises.code_problem(exercise_id, right) is None
