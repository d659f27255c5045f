"""Notebook 02's exercises (architecture): layer sizes and parameter counts, and the article's encoder to write."""

from __future__ import annotations

import torch
from torch import nn

from .. import models
from ..codecs.bits import IMAGE_BITS, IMAGE_VALUES
from .core import ACTIVATIONS, WEIGHTED, CodeExercise, Exercise, Wrong, check_number, layer_name, shape_text, trace


def conv_output_size(size: int, *, kernel: int = 3, stride: int = 1, padding: int = 1) -> int:
    """Side of a Conv2d's output: ``floor((size + 2 padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size: int, *, kernel: int = 3, stride: int = 1, padding: int = 1,
                               output_padding: int = 0) -> int:
    """Side of a ConvTranspose2d's output: ``(size - 1) stride - 2 padding + kernel + output_padding``."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


NUMBERS = [
    Exercise(
        "02.2", "Side of a 33x33 image after the encoder's two stride-2 convolutions (3x3, padding 1)?",
        conv_output_size(conv_output_size(33, stride=2), stride=2),
        "Apply floor((n + 2p - k) / s) + 1 twice, with k = 3, p = 1, s = 2; floor rounds down.",
        "33 -> floor((33 + 2 - 3) / 2) + 1 = 17 -> floor((17 + 2 - 3) / 2) + 1 = 9. The encoder gives 64 x 9 x 9, "
        "so Flatten yields 5,184 values, not 4,096, and the Linear layer refuses it: the model only takes 32x32.",
        unit="pixels"),
    Exercise(
        "02.4", "How large would latent_dim have to be for a *linear* code (encoder and decoder without "
                "non-linearities, like PCA) to copy every 32x32 colour image exactly?",
        IMAGE_VALUES,
        "A linear map cannot pass more independent directions than the code has numbers. How many numbers "
        "does one image hold: channels x height x width?",
        "3 x 32 x 32 = 3,072: a linear code needs one number per independent direction of the images, and "
        "photographs use all 3,072. That answers the linear question only. Counted in bits, 768 float32 values "
        "(exercise 02.4b) already hold all 24,576 bits of a uint8 image, so a non-linear encoder could copy it "
        "through a code of 768; and in principle a single real number of unlimited precision can hold any "
        "image (digits interleaved). So the count of code numbers alone does not stop a network from copying; "
        "what a real encoder can learn depends on its architecture and training.", unit="values"),
    Exercise(
        "02.4b", "How many float32 code values hold as many bits as one uint8 32x32 colour image?",
        IMAGE_BITS / 32,
        "An image is 3,072 values of 8 bits; a float32 value is 32 bits.",
        "3,072 x 8 = 24,576 bits; / 32 = 768 float32 values. A code of 768 or more float32 values can hold "
        "every bit of the image (the package warns when you build one), although it is four times fewer "
        "numbers than the image's 3,072.", unit="values"),
    Exercise(
        "02.5", "Parameters of nn.Linear(4096, 200) (weights plus biases)?",
        4096 * 200 + 200,
        "A Linear layer has one weight per (input, output) pair and one bias per output.",
        "4,096 x 200 weights + 200 biases = 819,400, nearly half of the latent-200 model's 1.79 M parameters.",
        unit="parameters"),
    Exercise(
        "02.6", "Side of the output of ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1) on an 8x8 input?",
        conv_transpose_output_size(8, stride=2, padding=1, output_padding=1),
        "The transposed convolution runs the convolution formula backwards: (n - 1) s - 2p + k + output_padding.",
        "(8 - 1) x 2 - 2 x 1 + 3 + 1 = 16: the decoder doubles 8x8 to 16x16. Without output_padding it would be 15, "
        "because a stride-2 convolution maps both 15 and 16 to 8 and the transposed one must be told which.",
        unit="pixels"),
]
_BY_ID = {e.id: e for e in NUMBERS}


def check_conv_output_size(answer) -> bool:
    """Notebook 02, exercise 2: a 33x33 image after two stride-2 convolutions."""
    return check_number(_BY_ID["02.2"], answer)


def check_copy_latent_dim(answer) -> bool:
    """Notebook 02, exercise 4: the size of a *linear* code that could copy the image exactly."""
    return check_number(_BY_ID["02.4"], answer)


def check_float32_values_for_image_bits(answer) -> bool:
    """Notebook 02, exercise 4b: float32 values that hold the image's 24,576 bits."""
    return check_number(_BY_ID["02.4b"], answer)


def check_linear_parameters(answer) -> bool:
    """Notebook 02, exercise 5: parameters of nn.Linear(4096, 200)."""
    return check_number(_BY_ID["02.5"], answer)


def check_transposed_output_size(answer) -> bool:
    """Notebook 02, exercise 6: a stride-2 transposed convolution on 8x8."""
    return check_number(_BY_ID["02.6"], answer)


# 02.7: the encoder, checked layer by layer ------------------------------------------------------------

def build_encoder(latent_dim: int) -> nn.Sequential:
    """The article's encoder: image (N, 3, 32, 32) in [-1, 1] -> code (N, latent_dim)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=3, padding=1), nn.ReLU(),              # 3x32x32 -> 16x32x32
        nn.Conv2d(16, 16, kernel_size=3, padding=1), nn.ReLU(),             # 16x32x32
        nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1), nn.ReLU(),   # 32x32 -> 16x16
        nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(),             # 32x16x16
        nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1), nn.ReLU(),   # 16x16 -> 8x8
        nn.Conv2d(64, 64, kernel_size=3, padding=1), nn.ReLU(),             # 64x8x8
        nn.Flatten(),                                                       # 64 x 8 x 8 = 4,096
        nn.Linear(64 * 8 * 8, latent_dim), nn.ReLU(),                       # the code (ReLU, as in the article)
    )


def check_encoder(candidate) -> None:
    """Run ``candidate(50)`` on two images and compare it layer by layer with the article's encoder."""
    latent_dim = 50  # not the article's 200, so a hard-coded size shows
    encoder = candidate(latent_dim)
    if not isinstance(encoder, nn.Module):
        raise Wrong(f"build_encoder({latent_dim}) should return an nn.Module such as nn.Sequential(...), "
                    f"got {type(encoder).__name__}")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference, _ = trace(models.Encoder(latent_dim), x)
    steps, error = trace(encoder, x)
    want = [(m, shape) for m, shape in reference if isinstance(m, WEIGHTED)]
    got = [(m, shape) for m, shape in steps if isinstance(m, WEIGHTED)]
    for number, ((ref, ref_shape), (mine, shape)) in enumerate(zip(want, got), start=1):
        if type(mine) is not type(ref) or shape != ref_shape:
            hint = ""
            if len(shape) == 3 and len(ref_shape) == 3 and shape[1] == 2 * ref_shape[1]:
                hint = " Did you forget stride=2 here? It halves the height and width."
            elif len(shape) == 3 and len(ref_shape) == 3 and shape[1] == ref_shape[1] - 2:
                hint = " Did you forget padding=1? Without it a 3x3 convolution loses a pixel on each side."
            elif len(shape) == 3 and len(ref_shape) == 3 and shape[0] != ref_shape[0]:
                hint = f" The channels here should be {ref_shape[0]}."
            elif len(shape) == 1 and len(ref_shape) == 1 and shape[0] != ref_shape[0]:
                hint = f" The code should have latent_dim = {latent_dim} values: use the argument, not a fixed number."
            raise Wrong(f"layer {number} with weights, {layer_name(mine)}, gives {shape_text(shape)}; the article's "
                        f"encoder has {layer_name(ref)} giving {shape_text(ref_shape)} there.{hint}")
    if error is not None:
        last = f"after {layer_name(got[-1][0])} giving {shape_text(got[-1][1])}" if got else "at the first layer"
        flat = "; nn.Flatten() turns 64 x 8 x 8 into 4,096 values for nn.Linear(64 * 8 * 8, latent_dim)"
        raise Wrong(f"the forward pass failed {last}: {type(error).__name__}: {error}"
                    f"{flat if isinstance(error, RuntimeError) else ''}")
    if len(got) != len(want):
        raise Wrong(f"your encoder has {len(got)} layers with weights; the article's has {len(want)} "
                    "(six 3x3 convolutions, then one Linear layer to the code)")
    for position, (module, _) in enumerate(steps):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            following = steps[position + 1][0] if position + 1 < len(steps) else None
            if not isinstance(following, ACTIVATIONS):
                where = "the code's Linear layer" if isinstance(module, nn.Linear) else layer_name(module)
                raise Wrong(f"{where} is not followed by an activation: the article puts a ReLU after every layer "
                            "(without one between them, stacked layers collapse into one linear map)")
    mine, theirs = models.count_parameters(encoder), models.count_parameters(models.Encoder(latent_dim))
    if mine != theirs:
        raise Wrong(f"the shapes are right, but your encoder has {mine:,} parameters and the article's "
                    f"{theirs:,}: check kernel_size=3 and the biases")


CODE = [CodeExercise(
    "02.7", "Build the article's encoder: six 3x3 convolutions with ReLUs (two of them stride 2), Flatten, "
            "and a Linear layer to latent_dim values.", build_encoder, check_encoder, imports="from torch import nn")]
