"""A convolutional autoencoder whose code is a small feature map: the model that wins (notebook 08).

Also here: :class:`PCAInitAutoencoder`, PCA's code plus a learnt correction made of these layers.

Contract (stable; notebook 09's variational autoencoder builds on it):
- ``SpatialEncoder(code_channels, width)``: images (B, 3, 32, 32) in [-1, 1] -> code (B, code_channels, 4, 4), linear (no activation).
- ``SpatialDecoder(code_channels, width)``: code (B, code_channels, 4, 4) -> images (B, 3, 32, 32) in [-1, 1] (tanh).
- ``SpatialAutoencoder(code_channels, width)``: ``encode``, ``decode``, ``forward`` and ``latent_dim`` (= 16 x code_channels values per image).
- Strided 3x3 convolutions down (32 -> 16 -> 8 -> 4), GELU between layers, no BatchNorm; upsampling by
  nearest-neighbour x2 + 3x3 conv (``upsample="transposed"`` gives the article's checkerboard-prone layer).
- ``stem="pixel"`` (notebook 08's winner): the first halving is a pixel unshuffle (each 2x2 block of
  pixels becomes 12 channels at 16x16, nothing lost, no multiply) and the last doubling a conv to 12
  channels + pixel shuffle, so no layer works at 32x32 and the 16x16 stage gets ``2 * width`` channels.
- Constructor arguments only ever gain new ones with defaults; the defaults are the notebook's reference model.

Why this shape beats the article's model (measured in notebook 08): the article puts about 92 % of its
parameters into two Linear layers between a flat 4,096-value feature vector and the code, so every code
value depends on every pixel through one huge matrix that 10 epochs cannot fit. Here the code keeps its
spatial layout: each of the 4 x 4 positions describes an 8 x 8 patch and its surroundings, the
convolutions are shared across positions, and the parameters go into filters that see every image many
times per batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_choice, check_image_batch, check_int
from .codecs.bits import IMAGE_VALUES
from .models import EncoderDecoder, make_activation

CODE_SIZE = 4  # the code's side: 32 -> 16 -> 8 -> 4 after three stride-2 convolutions
UPSAMPLING = ("nearest", "pixelshuffle", "transposed")
STEMS = ("conv", "pixel")
OUTPUT_ACTIVATIONS = ("tanh", "clamp", None)


def _stage_channels(width: int, stem: str = "conv") -> tuple[int, int, int, int]:
    """Channels at 32x32, 16x16, 8x8 and 4x4: cheap where the map is large, wide where it is small.

    With the pixel stem nothing works at 32x32 (0 channels there) and 16x16 is as wide as 8x8."""
    if stem == "pixel":
        return 0, 2 * width, 2 * width, 2 * width
    return width, width, 2 * width, 2 * width


class ResidualBlock(nn.Module):
    """``x + conv(act(conv(act(x))))`` at one resolution; starts near the identity (second conv scaled down)."""

    def __init__(self, channels: int, activation: str = "gelu"):
        super().__init__()
        self.body = nn.Sequential(
            make_activation(activation), nn.Conv2d(channels, channels, 3, padding=1),
            make_activation(activation), nn.Conv2d(channels, channels, 3, padding=1),
        )
        with torch.no_grad():
            self.body[-1].weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Clamp(nn.Module):
    """Clamp to [-1, 1]: bounded outputs without tanh's flat tails (gradients pass inside the range)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(-1.0, 1.0)


def _output_activation(name: str | None) -> nn.Module:
    check_choice("output_activation", name, OUTPUT_ACTIVATIONS)
    if name == "clamp":
        return Clamp()
    return make_activation(name)


class SpatialEncoder(nn.Module):
    """Images (B, 3, 32, 32) in [-1, 1] -> linear code (B, code_channels, 4, 4).

    Args:
        code_channels: channels of the 4x4 code; the code holds ``16 * code_channels`` values.
        width: channels of the first layer (the 8x8 and 4x4 stages use ``2 * width``); with
            ``stem="pixel"`` every stage (16x16, 8x8, 4x4) has ``2 * width``.
        depth: residual blocks at each of the 8x8 and 4x4 stages (0 = plain strided convs).
        activation: between layers (``"gelu"``; any name of :data:`convae_utils.models.ACTIVATIONS`).
        stem: ``"conv"`` (a 3x3 conv at 32x32, then a stride-2 conv) or ``"pixel"`` (a pixel unshuffle to
            12 x 16 x 16, then a 3x3 conv: notebook 08's winner; see the module docstring).
    """

    def __init__(self, code_channels: int = 4, width: int = 32, depth: int = 1, activation: str = "gelu",
                 stem: str = "conv"):
        super().__init__()
        self.code_channels = check_int("code_channels", code_channels, maximum=1024)
        self.width = check_int("width", width, maximum=1024)
        self.depth = check_int("depth", depth, minimum=0, maximum=16)
        self.stem = check_choice("stem", stem, STEMS)
        c32, c16, c8, c4 = _stage_channels(self.width, self.stem)
        act = lambda: make_activation(activation)  # noqa: E731
        if self.stem == "pixel":
            first = [nn.PixelUnshuffle(2), nn.Conv2d(12, c16, 3, padding=1), act()]  # 3x32x32 -> 12x16x16 -> c16
        else:
            first = [nn.Conv2d(3, c32, 3, padding=1), act(),              # 3x32x32 -> c32 x32x32
                     nn.Conv2d(c32, c16, 3, stride=2, padding=1), act()]  # 32x32 -> 16x16
        self.features = nn.Sequential(
            *first,
            nn.Conv2d(c16, c8, 3, stride=2, padding=1),          # 16x16 -> 8x8
            *[ResidualBlock(c8, activation) for _ in range(self.depth)],
            act(), nn.Conv2d(c8, c4, 3, stride=2, padding=1),    # 8x8 -> 4x4
            *[ResidualBlock(c4, activation) for _ in range(self.depth)],
            act(),
        )
        self.to_code = nn.Conv2d(c4, self.code_channels, 3, padding=1)  # c4 x4x4 -> code x4x4, linear

    @property
    def latent_dim(self) -> int:
        return self.code_channels * CODE_SIZE * CODE_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        return self.to_code(self.features(x))


def upsample_layers(c_in: int, c_out: int, how: str) -> list[nn.Module]:
    """Double the side: 4 -> 8, 8 -> 16 or 16 -> 32."""
    if how == "nearest":  # every output pixel sees the same number of inputs: no checkerboard
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
    if how == "pixelshuffle":  # a conv makes 4 sub-pixel maps at low resolution, then they interleave
        return [nn.Conv2d(c_in, 4 * c_out, 3, padding=1), nn.PixelShuffle(2)]
    # the article's layer: 3x3 kernel, stride 2 -> output pixels covered by 1, 2 or 4 kernel taps
    return [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)]


class SpatialDecoder(nn.Module):
    """Code (B, code_channels, 4, 4) -> images (B, 3, 32, 32) in [-1, 1].

    Args mirror :class:`SpatialEncoder`, plus ``upsample`` (``"nearest"`` + conv, ``"pixelshuffle"``,
    or ``"transposed"``: stride-2 transposed convolutions, as in the article) and
    ``output_activation`` (``"tanh"``, ``"clamp"`` or ``None``) and ``stem`` (``"pixel"``: the last
    doubling is a 3x3 conv to 12 channels at 16x16 + a pixel shuffle, as the encoder's pixel stem).
    """

    def __init__(self, code_channels: int = 4, width: int = 32, depth: int = 1, activation: str = "gelu",
                 upsample: str = "nearest", output_activation: str | None = "tanh", stem: str = "conv"):
        super().__init__()
        self.code_channels = check_int("code_channels", code_channels, maximum=1024)
        self.width = check_int("width", width, maximum=1024)
        self.depth = check_int("depth", depth, minimum=0, maximum=16)
        self.upsample = check_choice("upsample", upsample, UPSAMPLING)
        self.stem = check_choice("stem", stem, STEMS)
        _, c16, c8, c4 = _stage_channels(self.width, self.stem)
        act = lambda: make_activation(activation)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(self.code_channels, c4, 3, padding=1),     # code x4x4 -> c4 x4x4
            *[ResidualBlock(c4, activation) for _ in range(self.depth)],
            act(), *upsample_layers(c4, c8, upsample),                 # 4x4 -> 8x8
            *[ResidualBlock(c8, activation) for _ in range(self.depth)],
            act(), *upsample_layers(c8, c16, upsample), act(),         # 8x8 -> 16x16
            # 16x16 -> 32x32 straight to the 3 colour channels: a conv with c32 channels at full
            # resolution would cost more than the rest of the decoder together (9.4 M of 23 M
            # multiply-adds per image at width 32) and was not needed for PSNR.
            *([nn.Conv2d(c16, 12, 3, padding=1), nn.PixelShuffle(2)] if self.stem == "pixel"
              else upsample_layers(c16, 3, upsample)),
        )
        self.output_activation = _output_activation(output_activation)

    @property
    def latent_dim(self) -> int:
        return self.code_channels * CODE_SIZE * CODE_SIZE

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        expected = (self.code_channels, CODE_SIZE, CODE_SIZE)
        if not isinstance(z, torch.Tensor) or z.ndim != 4 or tuple(z.shape[1:]) != expected:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"expected codes of shape (B, {self.code_channels}, {CODE_SIZE}, {CODE_SIZE}), "
                             f"got {got}")
        return self.output_activation(self.features(z))


class SpatialAutoencoder(EncoderDecoder):
    """Encoder + decoder with a (code_channels, 4, 4) code; ``forward`` returns the reconstruction.

    ``encode(x)`` -> (B, code_channels, 4, 4); ``decode(z)`` -> (B, 3, 32, 32) in [-1, 1];
    ``latent_dim`` = values per image (16 x code_channels: 64 for the default 4 channels).
    With a ``seed`` the initial weights are the same on every run (the global generator is untouched).
    """

    def __init__(self, code_channels: int = 4, width: int = 32, depth: int = 1, activation: str = "gelu",
                 upsample: str = "nearest", output_activation: str | None = "tanh", seed: int | None = 0,
                 stem: str = "conv"):
        super().__init__()
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.encoder = SpatialEncoder(code_channels, width, depth, activation, stem)
            self.decoder = SpatialDecoder(code_channels, width, depth, activation, upsample, output_activation, stem)

    @property
    def code_shape(self) -> tuple[int, int, int]:
        return (self.encoder.code_channels, CODE_SIZE, CODE_SIZE)


# -- a model that starts as PCA (notebook 08) ---------------------------------------------------------

class PCAInitAutoencoder(EncoderDecoder):
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
    ``pca`` is a :class:`convae_utils.baselines.PCAModel` (``baselines.fit_pca``) or anything with its
    ``components`` (k, 3072) and ``mean`` (3072,) tensors. Defined in notebook 08.
    """

    def __init__(self, pca, width: int = 32, depth: int = 1, correction_channels: int = 4,
                 seed: int | None = 0, train_linear: bool = False):
        super().__init__()
        components, mean = getattr(pca, "components", None), getattr(pca, "mean", None)
        if not (isinstance(components, torch.Tensor) and components.ndim == 2 and components.shape[1] == IMAGE_VALUES
                and isinstance(mean, torch.Tensor) and tuple(mean.shape) == (IMAGE_VALUES,)):
            raise TypeError(f"pca must be a convae_utils.baselines.PCAModel (baselines.fit_pca), with components "
                            f"(k, {IMAGE_VALUES}) and mean ({IMAGE_VALUES},), got {type(pca).__name__}")
        self.k = int(components.shape[0])
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
