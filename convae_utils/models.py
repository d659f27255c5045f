"""Autoencoders: the article's, layer for layer with switches for its fixes, and what every model shares.

Defined in notebook 02 (architecture); trained in 03; compared across bottlenecks in 04.

Defaults reproduce the article: ``base_channels=16``, ``latent_dim=200``, ReLU everywhere, a ReLU
on the code and no activation on the output. Two switches fix its weak choices so later notebooks
can compare them: ``code_activation=None`` (a linear code, no dead units) and
``output_activation="tanh"`` (outputs bounded to [-1, 1] like the targets).

Every autoencoder of the series is an :class:`EncoderDecoder` (``encode``, ``decode``, ``forward`` =
decode(encode(x)), ``latent_dim``). Notebook 08 adds :class:`SequentialAutoencoder` (the learner's
encoder and decoder, two ``nn.Sequential``) and :class:`RefinedCodes` (a model whose code is refined
by gradient descent, :func:`refine_codes`); its spatial and PCA-initialised models are in
:mod:`convae_utils.spatial`.
"""

from __future__ import annotations

import math
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_choice, check_float, check_image_batch, check_int, check_matches_weights
from .codecs.bits import warn_if_code_not_smaller
from .inference import batched, evaluating, model_device
from .settings import LIMITS, check_limit

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    # In place: same numbers, less memory traffic (measured ~10% faster on CPU by the benchmark).
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}
MAX_LATENT_DIM = LIMITS["latent_dim"][1]


def make_activation(name: str | None) -> nn.Module:
    """Return a fresh activation module by name; ``None`` means identity (no activation)."""
    if name is None or name == "identity":
        return nn.Identity()
    check_choice("activation", name, tuple(ACTIVATIONS) + ("identity",))
    return ACTIVATIONS[name]()


def _conv(c_in: int, c_out: int, stride: int, act: str) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1), make_activation(act)]


def _deconv(c_in: int, c_out: int, stride: int) -> nn.ConvTranspose2d:
    # stride 2 maps 8 -> 15 without output_padding; the extra row/column brings it back to 16.
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=stride, padding=1,
                              output_padding=stride - 1)


class Encoder(nn.Module):
    """Image (N, 3, 32, 32) in [-1, 1] -> code (N, latent_dim). Its sizes are checked by :func:`build_autoencoder`."""

    def __init__(self, latent_dim: int = 200, base_channels: int = 16, activation: str = "relu",
                 code_activation: str | None = "relu"):
        super().__init__()
        self.latent_dim = latent_dim
        c = base_channels
        self.features = nn.Sequential(
            *_conv(3, c, 1, activation),            # 3x32x32  -> c x32x32
            *_conv(c, c, 1, activation),            # c x32x32 -> c x32x32
            *_conv(c, 2 * c, 2, activation),        # 32x32 -> 16x16
            *_conv(2 * c, 2 * c, 1, activation),    # 2c x16x16
            *_conv(2 * c, 4 * c, 2, activation),    # 16x16 -> 8x8
            *_conv(4 * c, 4 * c, 1, activation),    # 4c x8x8
            nn.Flatten(),                           # 4c*8*8 (4,096 for c=16)
        )
        self.to_code = nn.Linear(4 * c * 8 * 8, self.latent_dim)  # 4,096 -> latent_dim
        self.code_activation = make_activation(code_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float64 images or another device: said here, not by torch from inside conv.py
        check_matches_weights(check_image_batch(x), self.features[0].weight)
        return self.code_activation(self.to_code(self.features(x)))


class Decoder(nn.Module):
    """Code (N, latent_dim) -> image (N, 3, 32, 32). Its sizes are checked by :func:`build_autoencoder`."""

    def __init__(self, latent_dim: int = 200, base_channels: int = 16, activation: str = "relu",
                 output_activation: str | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        c = self.base_channels = base_channels
        self.from_code = nn.Sequential(nn.Linear(self.latent_dim, 4 * c * 8 * 8), make_activation(activation))
        self.features = nn.Sequential(
            _deconv(4 * c, 4 * c, 1), make_activation(activation),  # 4c x8x8
            _deconv(4 * c, 2 * c, 2), make_activation(activation),  # 8x8 -> 16x16
            _deconv(2 * c, 2 * c, 1), make_activation(activation),  # 2c x16x16
            _deconv(2 * c, c, 2), make_activation(activation),      # 16x16 -> 32x32
            _deconv(c, c, 1), make_activation(activation),          # c x32x32
            _deconv(c, 3, 1),                                       # c -> 3 channels, 32x32
        )
        self.output_activation = make_activation(output_activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"expected codes of shape (N, {self.latent_dim}), got {got}")
        if not z.is_floating_point():
            raise ValueError(f"expected codes as floats, got dtype {z.dtype}; convert them with codes.float()")
        check_matches_weights(z, self.from_code[0].weight, "codes")
        c = self.base_channels
        x = self.from_code(z).view(z.shape[0], 4 * c, 8, 8)  # (N, 4c, 8, 8): N comes from z, never guessed
        return self.output_activation(self.features(x))


def init_weights(module: nn.Module) -> None:
    """The article's initialisation: Xavier-uniform weights and bias 0.01 for Conv2d and Linear."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0.01)


class EncoderDecoder(nn.Module):
    """What the series asks of any autoencoder: ``forward`` reconstructs, ``encode``/``decode`` expose the
    latent code, ``latent_dim`` counts its values per image. Subclasses set ``encoder`` and ``decoder``
    (the article's :class:`Autoencoder`, notebook 08's ``spatial.SpatialAutoencoder`` and
    :class:`SequentialAutoencoder`) or write ``encode``/``decode`` of their own
    (``spatial.PCAInitAutoencoder``, :class:`RefinedCodes`); ``forward`` is always decode(encode(x))."""

    @property
    def latent_dim(self) -> int:
        return self.encoder.latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def code_shape_of(model: nn.Module) -> tuple[int, ...]:
    """The shape of one image's code: ``model.code_shape`` where the model has one, else ``(latent_dim,)``."""
    return tuple(getattr(model, "code_shape", (model.latent_dim,)))


class Autoencoder(EncoderDecoder):
    """Encoder + decoder. ``forward`` returns the reconstruction; ``encode``/``decode`` expose the code."""

    def __init__(self, encoder: Encoder, decoder: Decoder, *, article_init: bool = True):
        super().__init__()
        if encoder.latent_dim != decoder.latent_dim:
            raise ValueError(
                f"encoder and decoder disagree on latent_dim: {encoder.latent_dim} vs {decoder.latent_dim}"
            )
        self.encoder, self.decoder = encoder, decoder
        if article_init:
            self.apply(init_weights)


def build_autoencoder(latent_dim: int = 200, *, base_channels: int = 16, activation: str = "relu",
                      code_activation: str | None = "relu", output_activation: str | None = None,
                      seed: int | None = 0) -> Autoencoder:
    """Build an autoencoder; with a ``seed`` the initial weights are the same on every run.

    Warns (:class:`~convae_utils.codecs.bits.CodeSizeWarning`) when a float32 code of ``latent_dim`` values
    holds as many bits as the 24,576-bit image or more (latent 768 and up): such a "compression" is none.
    Raises ValueError/TypeError for sizes outside ``settings.LIMITS`` or an unknown activation name:
    checked here, where a learner's values enter; the layers trust them.
    """
    latent_dim, base_channels = check_limit("latent_dim", latent_dim), check_limit("base_channels", base_channels)
    for name in (activation, code_activation, output_activation):
        check_choice("activation", name, (*ACTIVATIONS, "identity", None))
    warn_if_code_not_smaller(latent_dim)
    return assemble_autoencoder(latent_dim, base_channels=base_channels, activation=activation,
                                code_activation=code_activation, output_activation=output_activation, seed=seed)


def assemble_autoencoder(latent_dim: int, *, base_channels: int, activation: str = "relu",
                         code_activation: str | None = "relu", output_activation: str | None = None,
                         seed: int | None = 0) -> Autoencoder:
    """:func:`build_autoencoder` for sizes already checked where they entered (``RunSettings``): no check here."""
    def make() -> Autoencoder:
        return Autoencoder(
            Encoder(latent_dim, base_channels, activation, code_activation),
            Decoder(latent_dim, base_channels, activation, output_activation),
        )
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def article_parameter_shares(model: Autoencoder) -> pd.DataFrame:
    """Parameters of the article's autoencoder by kind of layer: rows Linear / Conv2d / ConvTranspose2d.

    Columns ``parameters`` and ``share`` (of all). With latent 50 the two Linear layers (4,096 -> 50
    and 50 -> 4,096) hold about 74 % of the parameters; with the article's latent 200, about 92 %.
    Shown in notebook 08 (why the article's model loses).
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


def layer_table(model: Autoencoder) -> list[dict]:
    """Trace one image through every leaf layer: name, type, output shape and parameter count.

    Computed by forward hooks, so the table in notebook 02 cannot drift from the code.
    """
    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, _inp, out, name=name):
                rows.append({
                    "layer": name,
                    "type": type(mod).__name__,
                    "output shape": tuple(out.shape[1:]),
                    "values": int(out[0].numel()),
                    "parameters": sum(p.numel() for p in mod.parameters(recurse=False)),
                })
            hooks.append(module.register_forward_hook(hook))
    param = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32, device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
    return rows


# -- a better code for the same decoder: refine it by gradient descent ---------------------------------

REFINE_BATCH = 500  # images refined per pass (memory only: the result does not depend on it)


def refine_codes(model: nn.Module, images: torch.Tensor, *, steps: int = 20, lr: float = 0.05,
                 batch_size: int = REFINE_BATCH) -> torch.Tensor:
    """Codes the decoder reconstructs better: the encoder's codes moved by ``steps`` Adam steps on the MSE.

    The encoder is a fast *guess* of the code; nothing made it the best code for its decoder (for PCA
    it is: its projection is exactly the best code for its linear decoder). Here each image's code
    starts at the encoder's and descends the reconstruction's squared error, the decoder's weights
    fixed (only the codes get gradients), as in the "amortization gap" of learned codecs (Cremer et
    al. 2018; Yang et al. 2020). The code keeps its size and the decoder is unchanged; encoding costs
    ``steps`` decoder passes forward and back per image. Defined in notebook 08.

    Args:
        model: has ``encode`` and ``decode`` (notebook 08's models); put in eval mode for the call.
        images: floats (N, 3, 32, 32) in [-1, 1], on any device (each batch goes to the model's).
        steps: Adam steps (0 returns the encoder's codes). On notebook 08's model (photos10 stand-in,
            workshop budget) 20 steps gained 0.63 dB in the notebook's run and 0.63-0.67 dB on each of
            three seeds of ``python -m tools study 08 --profile workshop --only "notebook 08"``.
        lr: Adam's step as a share of the standard deviation of each image's code from the encoder (a
            code's scale is the model's choice); each image is refined on its own, whatever the batch.
        batch_size: images per pass (memory only; the result does not depend on it).

    Returns the codes, float32 on the CPU, shaped as ``model.encode`` returns them (each batch is refined
    on the model's device, in eval mode; the model keeps the mode it had). Raises RuntimeError under
    ``torch.inference_mode`` (which forbids the gradients this needs; ``torch.no_grad`` is fine), and
    ValueError for images that are not (N, 3, 32, 32) floats in [-1, 1] (0..255 pixels, NaN; [0, 1] floats
    lie inside the range and cannot be told apart here: use ``images.normalize`` on uint8 pixels).
    """
    check_image_batch(images, check_values=True)  # a wrong scale would refine towards the wrong targets, silently
    steps = check_int("steps", steps, minimum=0, maximum=10_000)
    lr = check_float("lr", lr, low=0.0, high=math.inf)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    return _refine_codes(model, images, steps, lr, batch_size)


def _refine_codes(model: nn.Module, images: torch.Tensor, steps: int, lr: float, batch_size: int) -> torch.Tensor:
    """:func:`refine_codes` with its arguments already checked (``RefinedCodes.encode`` checks a batch's shape
    only: reading its values would stop a GPU on every batch, and its callers hand it normalised ImageSets)."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError("refine_codes takes gradients with respect to the codes: call it outside "
                           "torch.inference_mode() (torch.no_grad() is fine)")

    def refine(batch: torch.Tensor) -> torch.Tensor:  # one batch, on the model's device
        with torch.no_grad():
            start = model.encode(batch).float()
        if steps == 0:
            return start
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
        return (start + scale * delta).detach()

    with evaluating(model):
        return batched(refine, images, device=model_device(model), batch_size=batch_size)


class RefinedCodes(EncoderDecoder):
    """A model whose ``encode`` refines the encoder's code (:func:`refine_codes`); the decoder is the model's.

    ``encode`` (B, 3, 32, 32) in [-1, 1] -> the refined code, shaped as ``model.encode``'s;
    ``decode`` and ``latent_dim``/``code_shape`` are the wrapped model's, so every measurement of
    notebook 08 (PSNR, entropy-coded bits) applies unchanged. The parameters are the model's.
    ``encode`` returns the code on the device ``x`` came from (refined on the model's). Defined in notebook 08.
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
        return code_shape_of(self.model)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return _refine_codes(self.model, check_image_batch(x), self.steps, self.lr, REFINE_BATCH).to(x.device)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


# -- the learner's model: an encoder and a decoder as two nn.Sequential ------------------------------

class SequentialAutoencoder(EncoderDecoder):
    """Any encoder and decoder (e.g. two ``nn.Sequential``) as an autoencoder the harness can train.

    ``encode``/``decode``/``forward`` as the series' models; ``latent_dim`` and ``code_shape`` are
    read off one probe image when it is built. Inputs are checked like the other models' (N, 3, 32, 32).
    Defined in notebook 08 (exercise 08.1 builds the pair).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        with torch.no_grad(), evaluating(encoder):
            probe = encoder(torch.zeros(1, 3, 32, 32, device=model_device(encoder)))
        self.code_shape = tuple(probe.shape[1:])

    @property
    def latent_dim(self) -> int:
        return math.prod(self.code_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(check_image_batch(x))
