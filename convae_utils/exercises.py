"""Exercises that check themselves: numbers to work out, and code to write (Neuromatch style).

Used in the Exercises sections of notebooks 01-09, and inline where a notebook asks you to write code.
Two kinds, one module:

**Numbers.** Where an exercise has a definite answer, the learner writes it into a ``check_...`` call
(or :func:`check` with the exercise's id, e.g. ``"02.2"`` = notebook 02, exercise 2) and is told
whether it is right; a wrong answer gets a hint, not the answer. The answers are computed here from
the formulas the exercises teach; ``tests/test_exercises.py`` checks each against an independent
reference (running the layer, torchmetrics, ``baselines.convert_units``).

**Code.** The learner completes a function in a notebook cell, which ships unfinished::

    def count_dead_units(codes: torch.Tensor) -> int:
        ...
        raise NotImplementedError("Exercise 05.6: count the code units that are zero for every image")

    count_dead_units = exercises.check_code("05.6", count_dead_units)

:func:`check_code` runs the learner's function on a small input, compares it with the package's own
answer and says what is wrong in the learner's terms (which layer has the wrong shape, "you summed
instead of averaging", ...). It returns the function the rest of the notebook should use: the
learner's once it passes, otherwise the worked solution, and it says which. A cell left as shipped
raises ``NotImplementedError``; the check then says "not written yet" and hands back the solution,
so an unattended run (``pytest --nbmake``, ``make run``) goes through the whole notebook on the
solutions. :func:`solution` prints a solution's source, one call away.

Adding a code exercise (notebooks 08 and 09 do it the same way): write the worked solution as a plain
function, and a check ``check(candidate) -> None`` that runs ``candidate`` on a small input and raises
:class:`Wrong` with a message in the learner's terms at the first problem; register both with
:func:`add_code_exercise`. Give the learner's cell the solution's name and signature, and a test in
``tests/test_exercises.py`` that the check accepts the solution and rejects a typical mistake.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import anomaly, baselines, metrics, models, training, vae
from .codecs.bits import IMAGE_BITS, IMAGE_VALUES


# -- the formulas the exercises teach ------------------------------------------------------------

def conv_output_size(size: int, *, kernel: int = 3, stride: int = 1, padding: int = 1) -> int:
    """Side of a Conv2d's output: ``floor((size + 2 padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size: int, *, kernel: int = 3, stride: int = 1, padding: int = 1,
                               output_padding: int = 0) -> int:
    """Side of a ConvTranspose2d's output: ``(size - 1) stride - 2 padding + kernel + output_padding``."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def _shifted_pixel(pixel: int, shift: float) -> int:
    """normalize -> + shift -> to_uint8, for one pixel (the arithmetic of notebook 01's conversions)."""
    value = pixel / 127.5 - 1.0 + shift
    return round(min(max((value + 1.0) / 2.0, 0.0), 1.0) * 255.0)


# -- the exercises ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Exercise:
    """One exercise with a definite answer: ``answer`` within ``tolerance`` (absolute) is right."""

    id: str
    question: str
    answer: float
    hint: str
    solution: str
    tolerance: float = 0.0
    unit: str = ""


EXERCISES: dict[str, Exercise] = {}


def _add(exercise: Exercise) -> None:
    EXERCISES[exercise.id] = exercise


_add(Exercise(
    "01.2", "Normalise a pixel of value 200, add 0.5, convert back with images.to_uint8: which value comes out?",
    _shifted_pixel(200, 0.5),
    "200 / 127.5 - 1 is about 0.57; add 0.5. What does images.denormalize do with values above 1?",
    "200 / 127.5 - 1 = 0.569; + 0.5 = 1.069, outside [-1, 1]. `denormalize` maps it to (1.069 + 1) / 2 = 1.03 "
    "and clamps it to 1.0, so `to_uint8` gives 255: every pixel from about 191 upwards ends at 255, and the "
    "brightest details are lost (clipped).", unit="(pixel value)"))
_add(Exercise(
    "02.2", "Side of a 33x33 image after the encoder's two stride-2 convolutions (3x3, padding 1)?",
    conv_output_size(conv_output_size(33, stride=2), stride=2),
    "Apply floor((n + 2p - k) / s) + 1 twice, with k = 3, p = 1, s = 2; floor rounds down.",
    "33 -> floor((33 + 2 - 3) / 2) + 1 = 17 -> floor((17 + 2 - 3) / 2) + 1 = 9. The encoder gives 64 x 9 x 9, "
    "so Flatten yields 5,184 values, not 4,096, and the Linear layer refuses it: the model only takes 32x32.",
    unit="pixels"))
_add(Exercise(
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
    "what a real encoder can learn depends on its architecture and training.", unit="values"))
_add(Exercise(
    "02.4b", "How many float32 code values hold as many bits as one uint8 32x32 colour image?",
    IMAGE_BITS / 32,
    "An image is 3,072 values of 8 bits; a float32 value is 32 bits.",
    "3,072 x 8 = 24,576 bits; / 32 = 768 float32 values. A code of 768 or more float32 values can hold "
    "every bit of the image (the package warns when you build one), although it is four times fewer "
    "numbers than the image's 3,072.", unit="values"))
_add(Exercise(
    "02.5", "Parameters of nn.Linear(4096, 200) (weights plus biases)?",
    4096 * 200 + 200,
    "A Linear layer has one weight per (input, output) pair and one bias per output.",
    "4,096 x 200 weights + 200 biases = 819,400, nearly half of the latent-200 model's 1.79 M parameters.",
    unit="parameters"))
_add(Exercise(
    "02.6", "Side of the output of ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1) on an 8x8 input?",
    conv_transpose_output_size(8, stride=2, padding=1, output_padding=1),
    "The transposed convolution runs the convolution formula backwards: (n - 1) s - 2p + k + output_padding.",
    "(8 - 1) x 2 - 2 x 1 + 3 + 1 = 16: the decoder doubles 8x8 to 16x16. Without output_padding it would be 15, "
    "because a stride-2 convolution maps both 15 and 16 to 8 and the transposed one must be told which.",
    unit="pixels"))
_add(Exercise(
    "06.2", "Bits of one latent-200 code quantised to 2 bits per value?",
    200 * 2,
    "Bits of a code = latent_dim x bits per value (bits.code_bits).",
    "200 x 2 = 400 bits, 1.6% of the 24,576-bit image (float32 would be 6,400 bits).", unit="bits"))
_add(Exercise(
    "06.3", "UvA's reconstruction error of 50 (squared error summed over an image, [-1, 1] scale): how many dB of PSNR?",
    -10.0 * math.log10(50 / IMAGE_VALUES / 4),
    "Divide by the 3,072 values of an image to get the MSE on [-1, 1], by 4 more for [0, 1]; PSNR = 10 log10(1 / MSE).",
    "50 / 3,072 = 0.0163 per value on [-1, 1]; / 4 = 0.00407 on [0, 1]; 10 log10(1 / 0.00407) = 23.9 dB. "
    "`baselines.convert_units(sse_pm1=50)` gives the same.", tolerance=0.1, unit="dB"))
_add(Exercise(
    "07.1", "AUROC of a detector that scores every anomaly above every normal image?",
    1.0,
    "AUROC is the probability that a random anomaly scores above a random normal image.",
    "1.0: every threshold between the two groups flags all anomalies and no normal image, so the ROC curve "
    "goes straight up to (0, 1) and then along the top.", tolerance=1e-6))
_add(Exercise(
    "07.2", "AUROC of a detector whose scores are random numbers, unrelated to the images (expected value)?",
    0.5,
    "A random anomaly scores above a random normal image how often, if scores are coin tosses?",
    "0.5: the ROC curve follows the diagonal (flagging a share p of the normal images also flags a share p of "
    "the anomalies). Below 0.5 the detector is worse than chance: the anomalies look *more* normal.",
    tolerance=0.01))
_add(Exercise(
    "07.3", "PSNR (dB, [0, 1] scale) of an image with Gaussian noise of sigma 0.1 added, ignoring clipping?",
    -10.0 * math.log10(0.1 ** 2),
    "The MSE of added noise is its variance, sigma squared; PSNR = 10 log10(1 / MSE).",
    "MSE = 0.1^2 = 0.01, so PSNR = 10 log10(100) = 20 dB. Clipping to [0, 1] removes a little of the noise, "
    "so the measured value is slightly higher. For sigma 0.2: 14 dB.", tolerance=0.05, unit="dB"))
_add(Exercise(
    "07.4", "A detector flags 45 of 50 anomalies and 50 of 1,000 normal images. What is its precision?",
    45 / (45 + 50),
    "Precision = true alarms / all alarms. How many alarms are there in total?",
    "45 / (45 + 50) = 0.47: more than half of the alarms are false, although only 5% of normal images are "
    "flagged and 90% of anomalies are caught (recall 0.9). When anomalies are rare, precision is low unless "
    "false alarms are very rare.", tolerance=0.005))


# -- checking ------------------------------------------------------------------------------------------

def _exercise(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise KeyError(f"no checked exercise {exercise_id!r}; known: {', '.join([*EXERCISES, *CODE_EXERCISES])}")
    return EXERCISES[exercise_id]


def is_right(exercise_id: str, answer) -> bool:
    """True when ``answer`` (a number) equals the exercise's answer within its tolerance; no printing."""
    exercise = _exercise(exercise_id)
    if isinstance(answer, bool) or not isinstance(answer, Real) or not math.isfinite(answer):
        return False
    return abs(float(answer) - exercise.answer) <= exercise.tolerance + 1e-9 * abs(exercise.answer)


def check(exercise_id: str, answer) -> bool:
    """Print whether ``answer`` is right (with a hint when it is not); returns True when right.

    ``answer`` None means "not answered yet" (the notebooks ship so). Never raises for a wrong or
    malformed answer: it says what was expected instead.
    """
    exercise = _exercise(exercise_id)
    if answer is None:
        print(f"[{exercise_id}] Not answered yet: {exercise.question}")
        return False
    if isinstance(answer, bool) or not isinstance(answer, Real):
        print(f"[{exercise_id}] Expected a number, got {answer!r} ({type(answer).__name__}). Hint: {exercise.hint}")
        return False
    if is_right(exercise_id, answer):
        print(f"[{exercise_id}] ✓ Right: {answer:g} {exercise.unit}".rstrip())
        return True
    print(f"[{exercise_id}] ✗ Not yet: {answer:g} is not it. Hint: {exercise.hint} "
          f"(exercises.solution({exercise_id!r}) shows the worked answer.)")
    return False


def solution(exercise_id: str) -> str:
    """Print and return the worked solution of an exercise (hidden until you ask): text, or code."""
    if exercise_id in CODE_EXERCISES:
        exercise = CODE_EXERCISES[exercise_id]
        text = f"# [{exercise_id}] {exercise.task}\n{inspect.getsource(exercise.solution)}"
    else:
        exercise = _exercise(exercise_id)
        text = f"[{exercise_id}] {exercise.question}\nSolution: {exercise.solution}"
    print(text)
    return text


def check_to_uint8_clipping(answer) -> bool:
    """Notebook 01, exercise 2: pixel 200, normalised, + 0.5, back to uint8."""
    return check("01.2", answer)


def check_conv_output_size(answer) -> bool:
    """Notebook 02, exercise 2: a 33x33 image after two stride-2 convolutions."""
    return check("02.2", answer)


def check_copy_latent_dim(answer) -> bool:
    """Notebook 02, exercise 4: the size of a *linear* code that could copy the image exactly."""
    return check("02.4", answer)


def check_float32_values_for_image_bits(answer) -> bool:
    """Notebook 02, exercise 4b: float32 values that hold the image's 24,576 bits."""
    return check("02.4b", answer)


def check_linear_parameters(answer) -> bool:
    """Notebook 02, exercise 5: parameters of nn.Linear(4096, 200)."""
    return check("02.5", answer)


def check_transposed_output_size(answer) -> bool:
    """Notebook 02, exercise 6: a stride-2 transposed convolution on 8x8."""
    return check("02.6", answer)


def check_code_bits(answer) -> bool:
    """Notebook 06, exercise 2: bits of a latent-200 code at 2 bits per value."""
    return check("06.2", answer)


def check_psnr_conversion(answer) -> bool:
    """Notebook 06, exercise 3: UvA's summed error of 50 in dB of PSNR."""
    return check("06.3", answer)


def check_perfect_auroc(answer) -> bool:
    """Notebook 07, exercise 1: AUROC of a perfect detector."""
    return check("07.1", answer)


def check_random_auroc(answer) -> bool:
    """Notebook 07, exercise 2: AUROC of a random detector."""
    return check("07.2", answer)


def check_noise_psnr(answer) -> bool:
    """Notebook 07, exercise 3: PSNR of sigma-0.1 Gaussian noise."""
    return check("07.3", answer)


def check_precision(answer) -> bool:
    """Notebook 07, exercise 4: precision of a detector with rare anomalies."""
    return check("07.4", answer)


CHECKERS = {"01.2": check_to_uint8_clipping, "02.2": check_conv_output_size, "02.4": check_copy_latent_dim,
            "02.4b": check_float32_values_for_image_bits,
            "02.5": check_linear_parameters, "02.6": check_transposed_output_size, "06.2": check_code_bits,
            "06.3": check_psnr_conversion, "07.1": check_perfect_auroc, "07.2": check_random_auroc,
            "07.3": check_noise_psnr, "07.4": check_precision}


# -- code to write ------------------------------------------------------------------------------------

class Wrong(Exception):
    """Raised by a code exercise's check at the first problem; the message is shown to the learner."""


@dataclass(frozen=True)
class CodeExercise:
    """A function the learner writes: what to write, the worked solution, and the check that runs it.

    ``check(candidate)`` runs ``candidate`` on a small input and raises :class:`Wrong` (a message in
    the learner's terms) at the first problem; it returns None when the candidate is right. A
    ``NotImplementedError`` from the candidate means "not written yet".
    """

    id: str
    task: str
    solution: Callable
    check: Callable[[Callable], None]


CODE_EXERCISES: dict[str, CodeExercise] = {}


def add_code_exercise(exercise_id: str, task: str, solution: Callable, check: Callable[[Callable], None]) -> None:
    """Register a code exercise (ids as for the number exercises: ``"NN.k"``)."""
    if exercise_id in CODE_EXERCISES or exercise_id in EXERCISES:
        raise ValueError(f"exercise {exercise_id!r} is registered already")
    CODE_EXERCISES[exercise_id] = CodeExercise(exercise_id, task, solution, check)


def code_problem(exercise_id: str, candidate: Callable) -> str | None:
    """The first problem the check finds in ``candidate`` (None: it passes). No printing.

    A ``NotImplementedError`` raised by the candidate propagates: the exercise is not written yet.
    Any other error the candidate raises is a problem, reported with its type and message.
    """
    if exercise_id not in CODE_EXERCISES:
        raise KeyError(f"no code exercise {exercise_id!r}; known: {', '.join(CODE_EXERCISES)}")
    if not callable(candidate):
        return f"expected a function, got {type(candidate).__name__}: pass the function itself, not its result"
    try:
        CODE_EXERCISES[exercise_id].check(candidate)
    except (Wrong, NotImplementedError) as problem:
        if isinstance(problem, NotImplementedError):
            raise
        return str(problem)
    except Exception as error:  # the learner's code failed: say how, in its own words
        return f"your code raised {type(error).__name__}: {error}"
    return None


def check_code(exercise_id: str, candidate: Callable) -> Callable:
    """Check the learner's function and return the one the notebook should go on with.

    Prints one line: right (the learner's function is returned), not written yet (it still raises
    ``NotImplementedError``: the worked solution is returned, and the line says so, which is what
    unattended runs see), or what is wrong (the solution is returned, so the cells below still run,
    until the learner's version passes).
    """
    exercise = CODE_EXERCISES.get(exercise_id)
    try:
        problem = code_problem(exercise_id, candidate)
    except NotImplementedError:
        print(f"[{exercise_id}] Not written yet: {exercise.task} The cells below use the worked solution "
              f"(exercises.solution({exercise_id!r}) shows it); write yours and run this cell again.")
        return exercise.solution
    if problem is None:
        print(f"[{exercise_id}] ✓ Right: the cells below use your {getattr(candidate, '__name__', 'function')}.")
        return candidate
    print(f"[{exercise_id}] ✗ Not yet: {problem}\n"
          f"The cells below use the worked solution until yours passes (exercises.solution({exercise_id!r})).")
    return exercise.solution


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


def _tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a tensor, got {type(value).__name__}")
    return value.detach()


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


_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid)


def _trace(module: nn.Module, x: torch.Tensor) -> tuple[list[tuple[nn.Module, tuple]], BaseException | None]:
    """The leaf layers in the order they run, with each output's shape (without N); and the error, if any."""
    steps, hooks = [], []
    for leaf in module.modules():
        if not list(leaf.children()):
            hooks.append(leaf.register_forward_hook(lambda m, _i, out: steps.append((m, tuple(out.shape[1:])))))
    error = None
    try:
        with torch.no_grad():
            module(x)
    except Exception as caught:  # reported layer by layer below
        error = caught
    finally:
        for hook in hooks:
            hook.remove()
    return steps, error


def _layer(module: nn.Module) -> str:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return f"{type(module).__name__}({module.in_channels} -> {module.out_channels}, stride {module.stride[0]})"
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features:,} -> {module.out_features:,})"
    return type(module).__name__


def _shape(shape: tuple) -> str:
    return " x ".join(f"{n:,}" for n in shape)


def _check_encoder(candidate: Callable) -> None:
    latent_dim = 50  # not the article's 200, so a hard-coded size shows
    encoder = candidate(latent_dim)
    if not isinstance(encoder, nn.Module):
        raise Wrong(f"build_encoder({latent_dim}) should return an nn.Module such as nn.Sequential(...), "
                    f"got {type(encoder).__name__}")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference, _ = _trace(models.Encoder(latent_dim), x)
    steps, error = _trace(encoder, x)
    want = [(m, shape) for m, shape in reference if isinstance(m, _WEIGHTED)]
    got = [(m, shape) for m, shape in steps if isinstance(m, _WEIGHTED)]
    for number, ((ref, ref_shape), (mine, shape)) in enumerate(zip(want, got), start=1):
        if type(mine) is not type(ref) or shape != ref_shape:
            hint = ""
            if len(shape) == 3 and len(ref_shape) == 3 and shape[1] == 2 * ref_shape[1]:
                hint = " Did you forget stride=2 here? It halves the height and width."
            elif len(shape) == 3 and len(ref_shape) == 3 and shape[1] == ref_shape[1] - 2:
                hint = " Did you forget padding=1? Without it a 3x3 convolution loses a pixel on each side."
            elif len(shape) == 3 and len(ref_shape) == 3 and shape[0] != ref_shape[0]:
                hint = f" The channels here should be {ref_shape[0]}."
            raise Wrong(f"layer {number} with weights, {_layer(mine)}, gives {_shape(shape)}; the article's "
                        f"encoder has {_layer(ref)} giving {_shape(ref_shape)} there.{hint}")
    if error is not None:
        last = f"after {_layer(got[-1][0])} giving {_shape(got[-1][1])}" if got else "at the first layer"
        flat = "; nn.Flatten() turns 64 x 8 x 8 into 4,096 values for nn.Linear(64 * 8 * 8, latent_dim)"
        raise Wrong(f"the forward pass failed {last}: {type(error).__name__}: {error}"
                    f"{flat if isinstance(error, RuntimeError) else ''}")
    if len(got) != len(want):
        raise Wrong(f"your encoder has {len(got)} layers with weights; the article's has {len(want)} "
                    "(six 3x3 convolutions, then one Linear layer to the code)")
    for position, (module, _) in enumerate(steps):
        if isinstance(module, nn.Conv2d):
            following = steps[position + 1][0] if position + 1 < len(steps) else None
            if not isinstance(following, _ACTIVATIONS):
                raise Wrong(f"{_layer(module)} is not followed by an activation: without a ReLU between them, "
                            "stacked convolutions collapse into one linear map")
    mine, theirs = models.count_parameters(encoder), models.count_parameters(models.Encoder(latent_dim))
    if mine != theirs:
        raise Wrong(f"the shapes are right, but your encoder has {mine:,} parameters and the article's "
                    f"{theirs:,}: check kernel_size=3 and the biases")


add_code_exercise(
    "02.7", "Build the article's encoder: six 3x3 convolutions with ReLUs (two of them stride 2), Flatten, "
            "and a Linear layer to latent_dim values.", build_encoder, _check_encoder)


# 03.6: the training step ---------------------------------------------------------------------------

def mse_step(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one batch: the MSE between the model's reconstruction and the batch itself.

    batch: float (B, 3, 32, 32) in [-1, 1]. Returns the loss to minimise (a 0-d tensor with a
    gradient) and what to log. The training loop does zero_grad, backward and the optimiser step.
    """
    reconstruction = model(batch)                      # (B, 3, 32, 32)
    loss = F.mse_loss(reconstruction, batch)           # the mean over every value of the batch
    return loss, {}                                    # the loss is all there is to log here


def _reference_mse(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    return training.mse_step(model, batch)[0]  # the package's own step is the reference


def _check_step(candidate: Callable) -> None:
    model = models.build_autoencoder(8, base_channels=2, seed=0)
    batch = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = candidate(model, batch)
    if any(p.grad is not None for p in model.parameters()):
        raise Wrong("your step called backward(): the step only computes the loss; the training loop calls "
                    "zero_grad(), backward() and optimizer.step()")
    if not isinstance(result, tuple) or len(result) != 2:
        raise Wrong(f"return a pair (loss, logs), e.g. `return loss, {{'mse': loss.detach()}}`, got "
                    f"{type(result).__name__}")
    loss, logs = result
    if not isinstance(loss, torch.Tensor):
        raise Wrong(f"the loss should be a tensor, got {type(loss).__name__}: did you call .item()? The loop needs "
                    "the tensor to call backward() on")
    if loss.ndim != 0:
        raise Wrong(f"the loss should be one number (a 0-d tensor), got shape {tuple(loss.shape)}: average over "
                    "every value of the batch (F.mse_loss does, with its default reduction='mean')")
    if not loss.requires_grad:
        raise Wrong("the loss has no gradient: was it computed under torch.no_grad(), or detached? "
                    "backward() could not train anything")
    with torch.no_grad():
        expected = float(_reference_mse(model, batch))
    value = float(loss.detach())
    if not math.isclose(value, expected, rel_tol=1e-4):
        if math.isclose(value, expected * batch.numel(), rel_tol=1e-4):
            raise Wrong(f"your loss {value:.4g} is the sum of the squared errors; the step averages them "
                        f"({expected:.4g}): reduction='mean', F.mse_loss's default")
        if math.isclose(value, expected * batch[0].numel(), rel_tol=1e-4):
            raise Wrong(f"your loss {value:.4g} is {batch[0].numel():,} times the MSE ({expected:.4g}): you summed the "
                        "squared errors of each image and averaged over the batch; average over every value")
        if math.isclose(value, expected / 4, rel_tol=1e-4):
            raise Wrong(f"your loss {value:.4g} is the MSE on the [0, 1] scale; training compares the batch "
                        f"and its reconstruction as they are, on [-1, 1] ({expected:.4g})")
        if math.isclose(value, math.sqrt(expected), rel_tol=1e-4):
            raise Wrong(f"your loss {value:.4g} is the root of the MSE ({expected:.4g}): drop the square root")
        raise Wrong(f"your loss is {value:.4g}, the MSE between model(batch) and batch is {expected:.4g}: the target "
                    "of an autoencoder is its own input")
    if not isinstance(logs, dict) or not all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in logs.values()):
        raise Wrong(f"logs should be a dict of names to 0-d tensors (an empty dict {{}} is fine here), got {logs!r}")


add_code_exercise(
    "03.6", "Write the training step step(model, batch) -> (loss, logs): the MSE between model(batch) and the "
            "batch, and a dict of what else to log (nothing here: {}).", mse_step, _check_step)


# 04.5: PSNR per image ------------------------------------------------------------------------------

def psnr_per_image(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, [0, 1] pixel scale, peak 1) of each image; inputs (N, 3, 32, 32) in [-1, 1]; returns (N,)."""
    reconstructions01 = (reconstructions.clamp(-1, 1) + 1) / 2        # [-1, 1] -> [0, 1]
    originals01 = (originals + 1) / 2
    mse = (reconstructions01 - originals01).pow(2).flatten(1).mean(dim=1)   # (N,): one MSE per image
    return 10 * torch.log10(1 / mse)


def _check_psnr(candidate: Callable) -> None:
    generator = torch.Generator().manual_seed(0)
    originals = torch.rand(5, 3, 32, 32, generator=generator) * 2 - 1
    noise = torch.randn(5, 1, 1, 1, generator=generator).abs() * 0.2 + 0.05
    reconstructions = (originals + noise * torch.randn(5, 3, 32, 32, generator=generator)).clamp(-1, 1)
    got = _tensor(candidate(reconstructions, originals), "the PSNRs").double()
    expected = metrics.per_image_psnr(reconstructions, originals).double()
    if got.ndim == 0 or got.numel() == 1:
        raise Wrong("you returned one number for the whole batch; return one PSNR per image, shape (N,): "
                    "average the squared error over each image's values only (dims 1, 2, 3)")
    if got.shape != expected.shape:
        raise Wrong(f"expected one PSNR per image, shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
    if _close(got, expected, 1e-3):
        return
    difference = got - expected
    if _close(difference, torch.full_like(difference, -10 * math.log10(4)), 1e-3):
        raise Wrong("every value is 6.02 dB too low: you computed the MSE on the [-1, 1] scale, where it is 4 times "
                    "larger; map both images to [0, 1] first ((x + 1) / 2)")
    if _close(got, 2 * expected, 1e-3):
        raise Wrong("every value is twice too large: PSNR is 10 log10(1 / MSE), or 20 log10(1 / RMSE), "
                    "not 20 log10(1 / MSE)")
    if _close(got, -expected, 1e-3):
        raise Wrong("the signs are flipped: PSNR = 10 log10(1 / MSE) = -10 log10(MSE), higher is better")
    raise Wrong(f"for images with per-image PSNRs {', '.join(f'{v:.2f}' for v in expected.tolist())} dB you gave "
                f"{', '.join(f'{v:.2f}' for v in got.tolist())}")


add_code_exercise(
    "04.5", "Write psnr_per_image(reconstructions, originals): one PSNR in dB per image, on the [0, 1] pixel "
            "scale, from images on [-1, 1].", psnr_per_image, _check_psnr)


# 05.6: dead code units -----------------------------------------------------------------------------

def count_dead_units(codes: torch.Tensor) -> int:
    """Code units (columns of ``codes``, (N, latent_dim)) that are zero for every image (row)."""
    return int((codes == 0).all(dim=0).sum())


def _check_dead_units(candidate: Callable) -> None:
    codes = torch.tensor([[0.0, 0.0, 1.5, 0.0, 0.2, 0.0],
                          [0.0, 0.0, 0.0, 0.3, 0.0, 0.0],
                          [0.0, 0.7, 0.4, 0.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])        # units 0 and 5 are dead; image 3 is all zeros
    got = candidate(codes)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, np.integer, float)):
        raise Wrong(f"return a whole number (the count of dead units), got {type(got).__name__}")
    if got == count_dead_units(codes):
        return
    if got == int((codes == 0).any(dim=0).sum()):
        raise Wrong(f"you counted {got} units that are zero for *some* image; a dead unit is zero for *every* "
                    "image: .all(dim=0), not .any(dim=0)")
    if got == int((codes == 0).all(dim=1).sum()):
        raise Wrong(f"you counted the {got} image(s) (rows) whose whole code is zero; count the units (columns): "
                    "reduce over dim=0, the images")
    raise Wrong(f"in a batch of 4 codes of 6 units where units 0 and 5 are zero throughout, you counted {got}")


add_code_exercise(
    "05.6", "Write count_dead_units(codes): how many code units are zero for every image.",
    count_dead_units, _check_dead_units)


# 06.5: PCA, encode and decode ----------------------------------------------------------------------

def pca_round_trip(x: torch.Tensor, mean: torch.Tensor,
                   components: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA codes and reconstructions of flattened images.

    x: (N, 3072) images on [-1, 1]; mean: (3072,) the mean training image; components: (k, 3072)
    orthonormal rows. Returns codes (N, k) and reconstructions (N, 3072).
    """
    codes = (x - mean) @ components.T                  # (N, 3072) -> (N, k): centre, then project
    reconstructions = codes @ components + mean        # (N, k) -> (N, 3072): back, then un-centre
    return codes, reconstructions


def _check_pca(candidate: Callable) -> None:
    generator = torch.Generator().manual_seed(0)
    pixels = (torch.rand(40, 3, 32, 32, generator=generator) * 120 + 60).to(torch.uint8)
    pca = baselines.fit_pca(pixels[:32], 5, solver="exact")
    x = (pixels[32:].float() / 127.5 - 1).flatten(1)               # (8, 3072) on [-1, 1]
    result = candidate(x, pca.mean, pca.components)
    if not isinstance(result, tuple) or len(result) != 2:
        raise Wrong(f"return a pair (codes, reconstructions), got {type(result).__name__}")
    codes, reconstructions = (_tensor(value, what) for value, what in zip(result, ("codes", "reconstructions")))
    want_codes = pca.encode(pixels[32:])
    want_reconstructions = pca.decode(want_codes).flatten(1)
    if codes.shape != want_codes.shape:
        raise Wrong(f"codes should have shape (N, k) = {tuple(want_codes.shape)}, got {tuple(codes.shape)}: "
                    "components holds one component per row, so project with x @ components.T")
    if not _close(codes, want_codes):
        if _close(codes, x @ pca.components.T):
            raise Wrong("your codes skip the centring: subtract the mean image before projecting, (x - mean) @ components.T")
        raise Wrong("your codes differ from PCA's: codes = (x - mean) @ components.T")
    if reconstructions.shape != want_reconstructions.shape:
        raise Wrong(f"reconstructions should have shape (N, 3072) = {tuple(want_reconstructions.shape)}, got "
                    f"{tuple(reconstructions.shape)}: go back with codes @ components")
    if not _close(reconstructions, want_reconstructions):
        if _close(reconstructions + pca.mean, want_reconstructions):
            raise Wrong("your reconstructions lack the mean image: add it back after codes @ components")
        raise Wrong("your reconstructions differ from PCA's: codes @ components + mean")


add_code_exercise(
    "06.5", "Write pca_round_trip(x, mean, components) -> (codes, reconstructions): PCA's encoder and decoder.",
    pca_round_trip, _check_pca)


# 07.7: an alarm threshold from validation scores -------------------------------------------------------

def threshold_from_validation(val_scores: torch.Tensor, false_alarm_rate: float) -> float:
    """The anomaly score above which a share ``false_alarm_rate`` of the normal validation images lie."""
    return float(np.quantile(np.asarray(val_scores, dtype=np.float64), 1 - false_alarm_rate))


def _check_threshold(candidate: Callable) -> None:
    scores = torch.rand(1000, generator=torch.Generator().manual_seed(0)).pow(3) * 0.05   # MSE-like, skewed
    for rate in (0.05, 0.2):
        value = candidate(scores.clone(), rate)
        if isinstance(value, (torch.Tensor, np.ndarray)) and np.size(value) == 1:
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise Wrong(f"return one number, the threshold; got {type(value).__name__}")
        flagged = float((scores > value).double().mean())
        if abs(flagged - rate) <= 2 / len(scores):
            continue
        if abs(flagged - (1 - rate)) <= 2 / len(scores):
            raise Wrong(f"with false_alarm_rate={rate} your threshold flags {flagged:.0%} of the validation images: "
                        f"take the (1 - rate) quantile, so that only {rate:.0%} lie above it")
        reference = anomaly.false_alarm_threshold(scores, rate)
        raise Wrong(f"with false_alarm_rate={rate} your threshold {value:.4g} flags {flagged:.1%} of the validation "
                    f"images, not {rate:.0%} (a threshold near {reference:.4g} does)")


add_code_exercise(
    "07.7", "Write threshold_from_validation(val_scores, false_alarm_rate): the score above which that share of "
            "the normal validation images lie.", threshold_from_validation, _check_threshold)


# 09.1 and 09.2: the variational autoencoder's two new pieces (the checks live beside the model in vae.py) ------

def _raising(check: Callable[[Callable], tuple[bool, str]]) -> Callable[[Callable], None]:
    """A ``(ok, message)`` check of :mod:`convae_utils.vae` as this module's kind: raise Wrong at a problem."""
    def run(candidate: Callable) -> None:
        ok, message = check(candidate)
        if not ok:
            raise Wrong(message)
    return run


add_code_exercise(
    "09.1", "Write reparameterize(mean, logvar): a draw z = mean + sigma * eps, sigma from the log-variance, "
            "eps ~ N(0, I) shaped like mean.", vae.reparameterize, _raising(vae.check_reparameterize))
add_code_exercise(
    "09.2", "Write kl_divergence(mean, logvar): KL(N(mean, exp(logvar)) || N(0, I)) of each image in nats, "
            "summed over its code values.", vae.kl_divergence, _raising(vae.check_kl_divergence))
