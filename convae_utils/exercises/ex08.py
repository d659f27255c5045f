"""Notebook 08's exercise (an autoencoder that wins): write the spatial-code encoder and decoder.

What the check requires is what notebook 08's text asks (section 3); what it leaves free is said in
:data:`FREE` and in the notebook: the upsampling mode, more residual blocks than one per stage (the
package's ``ResidualBlock`` or the learner's own, if it is ``x + body(x)``), extra layers at 16x16.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..spatial import ResidualBlock
from .core import CodeExercise, Wrong, layer_name

NUMBERS = []
FREE = ("nearest or bilinear upsampling; more than one residual block per stage, and blocks of your own "
        "class (x + body(x)); extra layers at 16x16")


def build_spatial_autoencoder(code_channels: int = 4, width: int = 32) -> tuple[nn.Sequential, nn.Sequential]:
    """The worked solution of exercise 08.1: the winning spatial-code encoder and decoder.

    ``c = 2 * width`` channels at every stage (16x16, 8x8, 4x4). Encoder: (B, 3, 32, 32) in [-1, 1] ->
    pixel unshuffle to (B, 12, 16, 16) -> convolutions and residual blocks -> a linear code
    (B, code_channels, 4, 4). Decoder: back up with upsample + conv, then a conv to 12 channels at
    16x16 and a pixel shuffle to (B, 3, 32, 32), tanh. The same layers as
    ``spatial.SpatialAutoencoder(depth=1, stem="pixel")``, written out: its state dict loads into that
    class, which the tests check.
    """
    c = 2 * width                                              # channels at every stage
    encoder = nn.Sequential(
        nn.PixelUnshuffle(2),                                  # 3x32x32 -> 12x16x16: each 2x2 block of pixels
        nn.Conv2d(12, c, 3, padding=1), nn.GELU(),             # -> c x16x16
        nn.Conv2d(c, c, 3, stride=2, padding=1),               # 16x16 -> 8x8
        ResidualBlock(c), nn.GELU(),                           # x + conv(gelu(conv(gelu(x))))
        nn.Conv2d(c, c, 3, stride=2, padding=1),               # 8x8 -> 4x4
        ResidualBlock(c), nn.GELU(),
        nn.Conv2d(c, code_channels, 3, padding=1),             # the code: code_channels x4x4, linear
    )
    decoder = nn.Sequential(
        nn.Conv2d(code_channels, c, 3, padding=1),             # code -> c x4x4
        ResidualBlock(c), nn.GELU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(c, c, 3, padding=1),   # 4x4 -> 8x8
        ResidualBlock(c), nn.GELU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(c, c, 3, padding=1), nn.GELU(),  # 8x8 -> 16x16
        nn.Conv2d(c, 12, 3, padding=1), nn.PixelShuffle(2),    # 12x16x16 -> 3x32x32
        nn.Tanh(),                                             # outputs in [-1, 1], like the images
    )
    return encoder, decoder


def check_spatial_autoencoder(candidate) -> None:
    """Run ``candidate(code_channels=3, width=8)`` on a batch; raise :class:`Wrong` at the first problem.

    Checks, in this order: an (encoder, decoder) pair of modules; an encoder (nn.Sequential) that ends in
    its code's Conv2d; a code of shape (4, 3, 4, 4) for 4 images, linear (negative values occur); images
    (4, 3, 32, 32) back, in [-1, 1] even for a large code; no ConvTranspose2d, BatchNorm, Linear or
    pooling layer; GELU as the only activation (Tanh at the decoder's end); residual blocks in the
    encoder and the decoder; a pixel unshuffle in and a pixel shuffle out; ``2 * width`` channels; two
    stride-2 convolutions; an activation between any two convolutions; each of the two x2 upsamples
    followed by a convolution; a residual block at 8x8 and at 4x4 in both halves; each block
    ``x + body(x)``. Free: :data:`FREE`.
    """
    result = candidate(3, 8)  # code_channels=3, width=8
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(m, nn.Module) for m in result)):
        raise Wrong(f"return two modules, (encoder, decoder); got {type(result).__name__}")
    encoder, decoder = result
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    try:
        _check_shapes_and_ranges(encoder, decoder, x)
    except NotImplementedError:  # a RuntimeError too, but the learner's own (a misspelt forward): said as it is
        raise
    except RuntimeError as error:  # layers that do not fit together: PyTorch's message, in the learner's terms
        raise Wrong(f"running your model on 4 images (4, 3, 32, 32) failed: {str(error).splitlines()[0]}. "
                    "The check builds it with code_channels=3 and width=8: use those arguments (c = 2 * width) "
                    "rather than fixed numbers, and make each layer take the channels the previous one gives") from None
    encoder_steps, encoder_blocks = _stage_trace(encoder, x)
    with torch.no_grad():
        code = encoder(x)
    decoder_steps, decoder_blocks = _stage_trace(decoder, code)
    _check_layer_kinds(encoder, decoder, final=decoder_steps[-1] if decoder_steps else None)
    _check_downsampling(encoder_steps)
    for part, steps in (("encoder", encoder_steps), ("decoder", decoder_steps)):
        _check_activations_between(part, steps)
    _check_upsampling(decoder_steps)
    for part, sides in (("encoder", encoder_blocks), ("decoder", decoder_blocks)):
        missing = [side for side in (8, 4) if side not in sides]
        if missing:
            where = " and ".join(f"{side}x{side}" for side in missing)
            found = ", ".join(sorted({f"{s}x{s}" for s in sides}, reverse=True))
            raise Wrong(f"the {part} has no residual block at {where} (yours: at {found}): the text puts one "
                        f"{'after the convolution that reaches' if part == 'encoder' else 'at'} 8x8 and 4x4 "
                        "(more blocks elsewhere are your choice)")
    _check_blocks_are_residual(encoder, decoder, x)


def _last_module(module: nn.Module) -> nn.Module:
    """The last layer that does something: through nested nn.Sequential, past nn.Identity."""
    while isinstance(module, nn.Sequential):
        layers = [m for m in module if not isinstance(m, nn.Identity)]
        if not layers:
            break
        module = layers[-1]
    return module


def _own_blocks(module: nn.Module) -> list[nn.Module]:
    """Modules inside ``module`` from neither PyTorch nor a plain container: spatial.ResidualBlock or the learner's."""
    return [m for m in module.modules() if m is not module and not type(m).__module__.startswith("torch.")]


def _check_shapes_and_ranges(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> None:
    # an nn.Sequential (what the exercise asks for) must end in its code's Conv2d, which catches any
    # activation on the code; an encoder of another class is judged by its codes alone (below)
    last = _last_module(encoder)
    if isinstance(encoder, nn.Sequential) and not isinstance(last, nn.Conv2d):
        raise Wrong(f"the encoder ends in {type(last).__name__}: end it with the code's plain nn.Conv2d, so the "
                    "code is linear (no activation after the last convolution: a linear code cannot die)")
    with torch.no_grad():
        code = encoder(x)
        if tuple(code.shape) != (4, 3, 4, 4):
            raise Wrong(f"the encoder should turn 4 images (4, 3, 32, 32) into a code of shape (4, 3, 4, 4) "
                        f"(code_channels=3 on a 4x4 grid: a pixel unshuffle to 16x16, then two stride-2 convolutions), "
                        f"got {tuple(code.shape)}")
        spread = encoder(torch.cat([x, -x, 10 * x, -10 * x]))  # a linear code goes below 0 somewhere
        if not isinstance(encoder, nn.Sequential) and float(spread.min()) >= 0:  # a Sequential's end is checked above
            raise Wrong("every code value is >= 0: the encoder seems to end in an activation (ReLU?). "
                        "End it with a plain convolution, so the code is linear and no code unit can die")
        out = decoder(code)
        if tuple(out.shape) == (4, 12, 16, 16):
            raise Wrong("the decoder ends at 12 x 16 x 16: add nn.PixelShuffle(2) after the conv to 12 channels "
                        "(it turns each 12-channel position into a 2x2 block of 3 colours: 3 x 32 x 32)")
        if tuple(out.shape) != (4, 3, 32, 32):
            raise Wrong(f"the decoder should turn the code (4, 3, 4, 4) back into images (4, 3, 32, 32), "
                        f"got {tuple(out.shape)}: two upsample + conv steps take 4x4 to 16x16, then a conv to 12 channels "
                        "and nn.PixelShuffle(2) make 3 x 32 x 32")
        large = decoder(code * 1e4)
        if float(large.abs().max()) > 1.0 + 1e-6:
            raise Wrong(f"for a large code the output reaches {float(large.abs().max()):.3g}, outside [-1, 1] where "
                        "the images lie: end the decoder with nn.Tanh()")
        if float(torch.cat([out, large, decoder(-code * 1e4)]).min()) >= 0:
            raise Wrong("the output never goes below 0, but the images lie in [-1, 1]: end the decoder with "
                        "nn.Tanh(), not a Sigmoid or ReLU")


_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
_OTHER_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.SiLU, nn.Mish,
                      nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Hardtanh, nn.Hardswish)


def _check_layer_kinds(encoder: nn.Module, decoder: nn.Module, final: nn.Module | None) -> None:
    """Kinds of layer the text rules out or asks for; ``final`` is the decoder's last step (its Tanh)."""
    layers = [*encoder.modules(), *decoder.modules()]
    kinds = {type(m).__name__ for m in layers}
    if "ConvTranspose2d" in kinds:
        raise Wrong("the decoder uses ConvTranspose2d: upsample with nn.Upsample(scale_factor=2) followed by a "
                    "3x3 Conv2d instead (the checkerboard picture in notebook 08 shows why)")
    if kinds & {"BatchNorm2d", "BatchNorm1d"}:
        raise Wrong("the model uses BatchNorm: leave it out here (a reconstruction should not depend on the "
                    "other images of the batch; notebook 08 explains)")
    if "Linear" in kinds:
        raise Wrong("the model has a Linear layer: keep the code a 4x4 feature map, made and read by convolutions")
    pooling = next((m for m in layers if isinstance(m, _POOLING)), None)
    if pooling is not None:
        raise Wrong(f"the model uses {type(pooling).__name__}: halve the map with a stride-2 convolution, as the "
                    "text asks (a pooling layer keeps a fixed summary of each 2x2 block; the strided convolution "
                    "learns what to keep)")
    other = next((m for m in layers if isinstance(m, _OTHER_ACTIVATIONS) and m is not final), None)
    if other is not None:
        raise Wrong(f"the model uses {type(other).__name__} where the text asks for nn.GELU() between layers "
                    "(smooth, no dead units; the only other activation is the decoder's final nn.Tanh())")
    for part, module in (("encoder", encoder), ("decoder", decoder)):
        if not _own_blocks(module):  # spatial.ResidualBlock, or the learner's own block (any module not from torch.nn)
            raise Wrong(f"the {part} has no residual block: put ResidualBlock(c) after the convolution "
                        "that reaches 8x8 and after the one that reaches 4x4, in the encoder and in the decoder")
    if "PixelUnshuffle" not in kinds or "PixelShuffle" not in kinds:
        missing = "nn.PixelUnshuffle(2) at the encoder's start" if "PixelUnshuffle" not in kinds else \
            "nn.PixelShuffle(2) at the decoder's end"
        raise Wrong(f"the model has no {missing}: the exercise's model works at 16x16 and below "
                    "(pixel unshuffle in, pixel shuffle out)")
    first = next((m for m in encoder.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.out_channels != 16:
        raise Wrong(f"the encoder's first convolution gives {first.out_channels} channels; the check builds with "
                    "width=8, so it should give c = 2 * width = 16")


def _stage_trace(module: nn.Module, x: torch.Tensor) -> tuple[list[nn.Module], list[int]]:
    """The layers in the order they run, each residual block as one step (its insides unseen); and the side
    of the map each block receives."""
    blocks = _own_blocks(module)
    inside = {id(m) for block in blocks for m in block.modules() if m is not block}
    outer = [b for b in blocks if id(b) not in inside]
    steps, sides, hooks = [], [], []
    for leaf in module.modules():
        if id(leaf) in inside or (list(leaf.children()) and leaf not in outer):
            continue
        hooks.append(leaf.register_forward_hook(lambda m, _i, _o: steps.append(m)))
    for block in outer:
        hooks.append(block.register_forward_pre_hook(lambda m, args: sides.append(int(args[0].shape[-1]))))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return steps, sides


def _is_block(module: nn.Module) -> bool:
    return not type(module).__module__.startswith("torch.")


def _check_downsampling(steps: list[nn.Module]) -> None:
    strided = [m for m in steps if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    if len(strided) != 2 or any(m.stride != (2, 2) for m in strided):
        found = ", ".join(layer_name(m) for m in strided) or "none"
        raise Wrong(f"the encoder should halve 16x16 -> 8x8 -> 4x4 with two stride-2 convolutions; its strided "
                    f"convolutions: {found}")


def _check_activations_between(part: str, steps: list[nn.Module]) -> None:
    previous, activated = None, False
    for module in steps:
        if isinstance(module, nn.GELU):
            activated = True
        elif isinstance(module, nn.Conv2d) or _is_block(module):
            # a block begins with its own activation; a convolution after a convolution or a block needs one
            if isinstance(module, nn.Conv2d) and previous is not None and not activated:
                before = "a residual block" if _is_block(previous) else layer_name(previous)
                raise Wrong(f"in the {part}, {layer_name(module)} follows {before} with no activation between them: "
                            "put nn.GELU() between layers, as the text asks (two linear layers in a row are one "
                            "linear map: the depth is wasted)")
            previous, activated = module, False


def _check_upsampling(steps: list[nn.Module]) -> None:
    upsamples = [i for i, m in enumerate(steps) if isinstance(m, nn.Upsample)]
    for i in upsamples:
        following = steps[i + 1] if i + 1 < len(steps) else None
        if not isinstance(following, nn.Conv2d):
            after = type(following).__name__ if following is not None else "nothing"
            raise Wrong(f"an nn.Upsample is followed by {after}: the text asks for a 3x3 convolution after every "
                        "upsample (upsample x2, conv; twice), so each doubling gets a learnt filter")
        scale = steps[i].scale_factor
        if scale not in (2, 2.0, (2, 2), (2.0, 2.0)):
            raise Wrong(f"an nn.Upsample scales by {scale}: double twice (scale_factor=2), with a convolution "
                        "after each, as the text asks")
    if len(upsamples) != 2:
        raise Wrong(f"the decoder has {len(upsamples)} nn.Upsample layer(s): the text goes 4x4 -> 8x8 -> 16x16 with "
                    "two of them (scale_factor=2), each followed by a 3x3 convolution")


def _check_blocks_are_residual(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> None:
    """Each own block returns x + body(x): with every weight zeroed it passes x through unchanged, and it has
    weights of its own (a block that only returns x does nothing)."""
    inputs: dict[int, torch.Tensor] = {}
    blocks = _own_blocks(encoder) + _own_blocks(decoder)
    hooks = [b.register_forward_pre_hook(lambda m, args: inputs.setdefault(id(m), args[0])) for b in blocks]
    try:
        with torch.no_grad():
            decoder(encoder(x))
    finally:
        for hook in hooks:
            hook.remove()
    for block in blocks:
        name = type(block).__name__
        if id(block) not in inputs:
            continue
        if not any(True for _ in block.parameters()):
            raise Wrong(f"your {name} has no weights of its own: a residual block is x + body(x), where body is "
                        "(GELU, Conv2d, GELU, Conv2d)")
        zeroed = copy.deepcopy(block)
        with torch.no_grad():
            for parameter in zeroed.parameters():
                parameter.zero_()
            kept = zeroed(inputs[id(block)])
        if kept.shape != inputs[id(block)].shape or not torch.allclose(kept, inputs[id(block)], atol=1e-6):
            raise Wrong(f"your {name} is not residual: with its body's weights at zero it should hand its input "
                        "through unchanged. Return x + body(x), not body(x)")


CODE = [CodeExercise(
    "08.1", "Write build_spatial_autoencoder(code_channels, width) -> (encoder, decoder): the stages of the "
            "skeleton, filled as section 3 says.", build_spatial_autoencoder, check_spatial_autoencoder,
    imports="from torch import nn\n\nfrom convae_utils.spatial import ResidualBlock")]
