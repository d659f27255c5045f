# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# convae · [← 01 Data](01_data.ipynb) · **02 Architecture** · [03 Training →](03_training.ipynb) · [all notebooks](../README.md#the-series)
#
# # 02 · The architecture: encoder, bottleneck, decoder
#
# In [01 Data](01_data.ipynb) we turned CIFAR-10 into batches of shape `(N, 3, 32, 32)` with values in
# [-1, 1]. Now we build the network that squeezes each of those images into a short code and paints it
# back. We will follow one image through every layer, count every weight, and check the arithmetic that
# makes the picture shrink from 32×32 to 8×8 and grow back again.
#
# **What you will learn**
#
# - how the encoder and decoder are put together, layer by layer, with the shape after each layer;
# - where the parameters are (spoiler: almost all in two layers) and how the bottleneck size changes them;
# - why a 3×3 convolution with stride 2 and padding 1 halves the picture, and why the transposed
#   convolution that undoes it needs `output_padding=1`;
# - how much each bottleneck compresses an image;
# - why the model checks the shape of its input instead of reshaping whatever it is given.
#
# **Run time** (no training here)
#
# | profile | for | time |
# |---|---|---|
# | `smoke` | automated tests: stand-in data, a few hundred images | 7 s (measured by `python -m convae_utils series` on a 2-core CPU, stand-in data; see the README) |
# | `workshop` | a CPU laptop: 12,000 images, 5 epochs | 12 s (measured by `python -m convae_utils series` on a 2-core CPU, photos10 stand-in; see the README) |
# | `full` | the article's experiment | about the same (no training) |

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import inspect
import math

import pandas as pd
import torch
from torch import nn

from convae_utils import data, exercises, images, models, plotting, settings
from convae_utils.codecs import bits
from convae_utils.checks import IMAGE_SHAPE

# %% [markdown]
# ## Parameters
#
# The one cell that sets sizes; the profile comes from `CONVAE_PROFILE` (see notebook 01).

# %% tags=["parameters"]
# Parameters: set the profile with CONVAE_PROFILE (full | workshop | smoke | auto), not by editing sizes here.
SEED = 0
config = settings.from_env(seed=SEED)    # the profile's settings (see notebook 01)
LATENT_DIMS = (200, 1000)                # the article's two bottlenecks
LATENT_DIM = LATENT_DIMS[0]              # the model we trace layer by layer
CHANNELS, HEIGHT, WIDTH = IMAGE_SHAPE    # CIFAR-10's picture size, fixed by the data: 3 x 32 x 32
DEMO_BATCH = 4                           # images in the dummy batches below
WRONG_SIZE = 2 * HEIGHT                  # a picture size the model was not built for

# %%
settings.seed_everything(SEED)
device = settings.pick_device()
bundle = data.prepare_data(**config.data_options())
banner = settings.banner(config, bundle.dataset, device)

# %% [markdown]
# ## The plan
#
# The encoder is a stack of six 3×3 convolutions, each followed by a ReLU. Two of them use
# **stride 2**, which halves the height and width; every time the picture shrinks, the number of
# channels doubles, so the network trades *where* for *what*: 16 channels at 32×32, 32 at 16×16,
# 64 at 8×8. The final 64×8×8 block (4,096 numbers) is flattened and a fully connected `Linear`
# layer maps it to the **code**, `latent_dim` numbers long.
#
# The decoder mirrors this: a `Linear` layer grows the code back to 4,096 numbers, they are reshaped
# to 64×8×8, and six **transposed convolutions** undo the encoder's steps, two of them doubling the
# size, until three channels at 32×32 come out.
#
# **Your turn (exercise 02.7, about 10 minutes).** Write the encoder yourself before reading the
# package's: complete `build_encoder` below and run the cell. The check builds your encoder with a
# code of 50, sends two images through it and compares every layer's output shape with the article's
# encoder; it says which layer differs and why. Until yours passes, the notebook goes on with the
# worked solution (`exercises.solution("02.7")` prints it).

# %%
def build_encoder(latent_dim: int) -> nn.Module:
    """The article's encoder: image (N, 3, 32, 32) in [-1, 1] -> code (N, latent_dim)."""
    # Six nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), each followed by nn.ReLU(); the 3rd and 5th
    # with stride=2. Channels: 3 -> 16 -> 16 -> 32 -> 32 -> 64 -> 64. Then nn.Flatten() and
    # nn.Linear(64 * 8 * 8, latent_dim) followed by nn.ReLU(), the code.
    ...
    raise NotImplementedError("Exercise 02.7: return nn.Sequential(...) holding the encoder's layers, in order")


build_encoder = exercises.check_code("02.7", build_encoder)
print("your encoder (or the solution):", tuple(build_encoder(LATENT_DIM)(torch.zeros(1, CHANNELS, HEIGHT, WIDTH)).shape))

# %% [markdown]
# Here is the code of both halves, straight from the package:

# %%
print(inspect.getsource(models.Encoder))

# %%
print(inspect.getsource(models.Decoder))

# %% [markdown]
# The two halves are joined by `Autoencoder`, which also applies the article's initialisation
# (Xavier-uniform weights, biases of 0.01), and `build_autoencoder` builds one with a fixed seed so
# that the starting weights are the same on every run.
#
# Xavier (Glorot) initialisation keeps the spread of the signal steady for layers *without* a ReLU;
# a ReLU zeroes half of it, and **He (Kaiming) initialisation**, twice Xavier's variance, is the usual
# choice for ReLU networks. We keep the article's choice, and measured what He would change
# (`PYTHONPATH=. python experiments/init/he_vs_xavier.py --epochs 4 --seeds 0 1 2`: photos10, 2,000
# training images, latent 200, seeds 0-2, a shared 2-core CPU). At initialisation the code's spread
# over validation images was 0.03-0.04 with Xavier and 0.29-0.39 with He, about ten times larger, while
# the untrained output's spread was the same for both (the transposed convolutions keep PyTorch's default
# initialisation in both cases). After 4 epochs the validation MSE ([-1, 1] scale) was 0.075-0.084 with
# Xavier (mean 0.080) and 0.066-0.096 with He (mean 0.079): on this budget the seed moves the result
# more than the initialisation does. Deeper ReLU networks feel it more: He et al. ("Delving Deep into
# Rectifiers", 2015) trained a 30-layer ReLU network from their initialisation that stalled from Xavier's.

# %%
print(inspect.getsource(models.Autoencoder))
print(inspect.getsource(models.build_autoencoder))

# %%
model = models.build_autoencoder(LATENT_DIM, seed=SEED)
model

# %% [markdown]
# ## One image, layer by layer
#
# `models.layer_table` sends one blank image through the model and records, for every layer, the
# shape of what comes out and how many parameters the layer owns. Because it measures the real
# model, this table cannot drift away from the code.

# %%
layers = pd.DataFrame(models.layer_table(model)).set_index("layer")
layers

# %%
total = models.count_parameters(model)
print(f"parameters in the table: {layers['parameters'].sum():,}")
print(f"count_parameters(model): {total:,}")

# %% [markdown]
# Read the `output shape` column from top to bottom: 3×32×32 in, 16×32×32, down to 32×16×16 and
# 64×8×8, flat at 4,096, the code, back to 4,096, and up again to 3×32×32. The `values` column is the
# same story in one number per layer: the code is the narrowest point of the whole network.
#
# Now look at the `parameters` column. The convolutions are cheap: a 3×3 filter is shared across every
# position of the picture. The two `Linear` layers connect every one of the 4,096 values to every code
# unit, and that is where nearly all the weights live, which is also why the bottleneck size changes
# the parameter count so much. (Building latent 1,000 shows the package's `CodeSizeWarning`: we build
# it on purpose, as the article did; what such a code costs in bits is the next section's point.)

# %%
rows = []
for latent_dim in LATENT_DIMS:
    candidate = models.build_autoencoder(latent_dim, seed=SEED)
    table = pd.DataFrame(models.layer_table(candidate))
    in_linear = table.loc[table["type"] == "Linear", "parameters"].sum()
    n_params = models.count_parameters(candidate)
    rows.append({"latent_dim": latent_dim, "parameters": n_params,
                 "in the two Linear layers": in_linear,
                 "share in Linear layers": f"{in_linear / n_params:.0%}"})
parameter_counts = pd.DataFrame(rows).set_index("latent_dim")
parameter_counts

# %% [markdown]
# ## Why the picture halves, and how it grows back
#
# For a convolution, the output size along one side is
#
# $$\text{out} = \left\lfloor \frac{\text{in} + 2\cdot\text{padding} - \text{kernel}}{\text{stride}} \right\rfloor + 1 .$$
#
# With a 3×3 kernel and padding 1, the padding exactly pays for the kernel's overhang, so stride 1
# keeps the size (32 → 32) and stride 2 keeps every other position (32 → 16, 16 → 8). Let us compute
# it and check it on the real layers of the encoder:

# %%
def conv_output_size(size: int, layer: nn.Conv2d) -> int:
    """The formula above, with the layer's own kernel, stride and padding."""
    (kernel, _), (stride, _), (padding, _) = layer.kernel_size, layer.stride, layer.padding
    return math.floor((size + 2 * padding - kernel) / stride) + 1


size = HEIGHT
for layer in model.encoder.features:
    if isinstance(layer, nn.Conv2d):
        dummy = torch.zeros(DEMO_BATCH, layer.in_channels, size, size)   # (N, C_in, size, size)
        measured = layer(dummy).shape[-1]
        predicted = conv_output_size(size, layer)
        print(f"Conv2d {layer.in_channels:>2}->{layer.out_channels:<2} stride {layer.stride[0]}: "
              f"{size:>2} -> formula {predicted:>2}, measured {measured:>2}")
        size = measured

# %% [markdown]
# The floor in that formula throws information away: a 15-pixel side also becomes 8 under a stride-2
# convolution, since ⌊(15 + 2 − 3) / 2⌋ + 1 = 8. Going backwards, a transposed convolution therefore
# cannot know whether 8 came from 15 or from 16. Its own formula is
#
# $$\text{out} = (\text{in} - 1)\cdot\text{stride} - 2\cdot\text{padding} + \text{kernel} + \text{output\_padding},$$
#
# which gives (8 − 1)·2 − 2 + 3 + 0 = **15** without help. `output_padding=1` adds the missing row
# and column and gives **16**, and the same again takes 16 to 32. We check this on the decoder's first
# upsampling layer and on a copy of it without `output_padding`:

# %%
def transposed_output_size(size: int, layer: nn.ConvTranspose2d) -> int:
    """The transposed-convolution formula above, with the layer's own settings."""
    (kernel, _), (stride, _), (padding, _) = layer.kernel_size, layer.stride, layer.padding
    return (size - 1) * stride - 2 * padding + kernel + layer.output_padding[0]


upsample = model.decoder.features[2]                 # ConvTranspose2d(64 -> 32, stride 2, output_padding 1)
without = nn.ConvTranspose2d(upsample.in_channels, upsample.out_channels, kernel_size=upsample.kernel_size,
                             stride=upsample.stride, padding=upsample.padding, output_padding=0)
small = HEIGHT // 4                                  # the 8x8 bottom of the network
dummy = torch.zeros(DEMO_BATCH, upsample.in_channels, small, small)   # (N, 64, 8, 8)
for name, layer in (("output_padding=1", upsample), ("output_padding=0", without)):
    print(f"{name}: {small} -> formula {transposed_output_size(small, layer)}, "
          f"measured {tuple(layer(dummy).shape)}")        # (N, 32, 16, 16) versus (N, 32, 15, 15)

# %% [markdown]
# ## How much does the bottleneck compress?
#
# An image holds 3 × 32 × 32 = 3,072 numbers. The code holds `latent_dim`. The ratio says how hard the
# network must work to summarise: it has to rebuild 3,072 values from far fewer.

# %%
values_per_image = CHANNELS * HEIGHT * WIDTH
compression = pd.DataFrame({
    "latent_dim": LATENT_DIMS,
    "values in": values_per_image,
    "compression": [f"{values_per_image / latent_dim:.1f}x" for latent_dim in LATENT_DIMS],
    "code bits (float32)": [f"{bits.code_bits(latent_dim):,}" for latent_dim in LATENT_DIMS],
    "share of the image's bits": [f"{bits.bits_summary(latent_dim)['share_of_image']:.0%}" for latent_dim in LATENT_DIMS],
    "parameters": [parameter_counts.loc[latent_dim, "parameters"] for latent_dim in LATENT_DIMS],
}).set_index("latent_dim")
compression

# %% [markdown]
# Count **bits**, not values, and the picture changes. An image is 3,072 values of 8 bits each:
# 24,576 bits. A code value is a 32-bit float, so a code of 200 values is 6,400 bits (26% of the
# image) and a code of 1,000 values is 32,000 bits: **more than the image it claims to compress**.
# (The package warns when you build such a model.) The code is not a compressed *file*, and the
# decoder that reads it weighs megabytes. What the value ratio measures is the squeeze the network is
# forced through, which is what makes it learn structure instead of copying pixels. Whether the code
# is a *good* compression, at equal bits, against PCA and JPEG, is the question of notebook 06.
#
# ## A first pass through the untrained model
#
# Let us push the ten exemplars from notebook 01 through the freshly initialised model and look at
# the shapes on the way. Notice one thing in the cell: the model does not move itself to a device.
# It is built on the CPU, and putting it on a GPU (`model.to(device)`) is the caller's job; the
# training loop in notebook 03 does exactly that. (The article moved the model inside its constructor,
# which hides where it lives and breaks on machines without that device.)

# %%
print("model lives on:", next(model.parameters()).device, "| this machine's best device:", device)
model.to(device).eval()
with torch.no_grad():
    inputs = images.normalize(bundle.exemplars.images.to(device))   # (10, 3, 32, 32) in [-1, 1]
    codes = model.encode(inputs)                                   # (10, latent_dim)
    rebuilt = model.decode(codes)                                  # (10, 3, 32, 32)
print("images :", tuple(inputs.shape))
print("codes  :", tuple(codes.shape))
print("rebuilt:", tuple(rebuilt.shape), f"values in [{float(rebuilt.min()):.2f}, {float(rebuilt.max()):.2f}]")

# %%
fig = plotting.reconstruction_grid(bundle.exemplars.images, rebuilt.cpu(), classes=bundle.exemplars.classes,
                                   title=f"untrained model, latent {LATENT_DIM} ({bundle.dataset})")

# %% [markdown]
# Before training, every "reconstruction" is the same featureless patch, whatever went in: the
# random weights have not learnt anything about images yet. Notebook 03 changes that.
#
# ## A shape check instead of a silent reshape
#
# The article's model started its forward pass with `x.view(-1, 3, 32, 32)`. That line accepts a tensor
# of *any* size, as long as its number of elements divides by 3,072, and quietly reinterprets it.
# Feed it four 64×64 images and it does not complain: it cuts them into sixteen "images" that are each a
# scrambled slice of the originals, and trains or evaluates on those. Here is what `view` does:

# %%
big = torch.zeros(DEMO_BATCH, CHANNELS, WRONG_SIZE, WRONG_SIZE)     # (4, 3, 64, 64)
silently = big.view(-1, CHANNELS, HEIGHT, WIDTH)
print(f"{tuple(big.shape)} viewed as (-1, 3, 32, 32) -> {tuple(silently.shape)}: "
      f"{len(big)} real images became {len(silently)} bogus ones")

# %% [markdown]
# Our encoder checks its input instead, and stops with a message that says what it expected, what it
# got, and often how to fix it:

# %%
try:
    model(big.to(device))
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## Two switches for later
#
# The architecture above copies two choices from the article that we will question in
# [05 Beyond](05_beyond.ipynb):
#
# - a **ReLU on the code** (`code_activation="relu"`). ReLU outputs zero for every negative input, so
#   a code unit can end up zero for *every* image: a dead unit that carries no information.
#   `code_activation=None` leaves the code linear.
# - **no activation on the output** (`output_activation=None`), although the targets lie in [-1, 1].
#   `output_activation="tanh"` bounds the output to exactly that range.
#
# Activations have no parameters, so the switches change the behaviour, not the size:

# %%
variant = models.build_autoencoder(LATENT_DIM, code_activation=None, output_activation="tanh", seed=SEED)
switches = pd.DataFrame({
    name: {"code activation": type(m.encoder.code_activation).__name__,
           "output activation": type(m.decoder.output_activation).__name__,
           "parameters": models.count_parameters(m)}
    for name, m in (("article", model), ("variant", variant))
})
switches

# %% [markdown]
# ## Summary
#
# - The encoder's six 3×3 convolutions shrink 3×32×32 to 64×8×8 (two of them with stride 2), and a
#   `Linear` layer maps those 4,096 values to the code; the decoder mirrors it with transposed
#   convolutions.
# - `models.layer_table` traces the real model, so the shapes and parameter counts above come from the
#   code itself; nearly all parameters sit in the two `Linear` layers around the code.
# - Stride 2 with padding 1 halves a side; the transposed convolution needs `output_padding=1` to get
#   back to an even size, because the halving's rounding lost that information.
# - Compression is 3,072 divided by `latent_dim`: the table above shows both bottlenecks.
# - The model checks input shapes instead of `view(-1, 3, 32, 32)`, which silently turned a wrong
#   batch into a wrong number of wrong images. Fixed here, as is the model that moved itself to a device.
#
# Next, [03 Training](03_training.ipynb) teaches this network to reconstruct.

# %% [markdown]
# ## Exercises
#
# 1. Build a model with `base_channels=32` (`models.build_autoencoder(LATENT_DIM, base_channels=32)`).
#    How do the shapes and the parameter count change? Which layers grow the most?
# 2. Using the convolution formula, what size would a 33×33 image have after the encoder's two stride-2
#    layers? Check it by running `model.encoder.features` on a dummy tensor of that size.
# 3. Call `model(bundle.exemplars.images)` without `images.normalize`. Read the error. Why is it better
#    to fail here than to train on `uint8` values from 0 to 255?
# 4. The code of the latent-200 model is 15 times smaller than the image. How large would `latent_dim`
#    have to be to copy the input exactly? The answer depends on the question: (a) for a *linear* code
#    (no activation anywhere, like PCA in notebook 06)? (b) counted in bits: how many float32 values
#    hold all the bits of a uint8 image? (c) in principle, with real numbers of unlimited precision?
# 5. Count the parameters of `nn.Linear(4096, latent_dim)` by hand (weights plus biases) and compare
#    with the table.
# 6. What size does the decoder's `ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)` give
#    an 8×8 input? Why is `output_padding` needed?
# 7. (Code, in "The plan" above.) Write the encoder, `build_encoder(latent_dim)`; the check compares it
#    with the article's layer by layer.
#
# Exercises 2, 4 (a and b), 5 and 6 check themselves: put your numbers in place of `None` in the next cell
# and run it. `exercises.solution("02.2")` (and so on) shows a worked solution.

# %%
from convae_utils import exercises

exercises.check_conv_output_size(None)        # 2: the side of a 33x33 image after the encoder's two stride-2 convs
exercises.check_copy_latent_dim(None)         # 4a: the latent_dim of a linear code that could copy the image exactly
exercises.check_float32_values_for_image_bits(None)  # 4b: float32 values that hold the image's 24,576 bits
exercises.check_linear_parameters(None)       # 5: parameters of nn.Linear(4096, 200)
exercises.check_transposed_output_size(None);  # 6: the side of the transposed convolution's output
