"""Exercises that check themselves: right or wrong, with a hint, and a worked solution one call away.

Used in the Exercises sections of notebooks 01, 02, 06 and 07. Where an exercise has a definite
answer (a number), the learner writes it into a ``check_...`` call (or :func:`check` with the
exercise's id, e.g. ``"02.2"`` = notebook 02, exercise 2) and is told whether it is right; a wrong
answer gets a hint, not the answer. :func:`solution` prints the worked solution, so it stays hidden
until asked for (as in Neuromatch Academy's tutorials).

The answers are computed here from the formulas the exercises teach (the convolution arithmetic, the
bit counts, the PSNR definition); ``tests/test_exercises.py`` checks each against an independent
reference (running the layer, torchmetrics, ``baselines.convert_units``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

IMAGE_VALUES = 3 * 32 * 32  # values of one image (kept here: this module imports nothing of the package)


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
    "02.4", "How large would latent_dim have to be for the network to be able to copy a 32x32 colour image "
            "exactly, in principle?",
    IMAGE_VALUES,
    "Count the numbers one image holds: channels x height x width.",
    "3 x 32 x 32 = 3,072. With a code of 3,072 numbers (or more) the bottleneck no longer forces any "
    "compression, and the network could learn the identity.", unit="values"))
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
        raise KeyError(f"no checked exercise {exercise_id!r}; known: {', '.join(EXERCISES)}")
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
    """Print and return the worked solution of an exercise (hidden until you ask)."""
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
    """Notebook 02, exercise 4: the code size that could copy the image exactly."""
    return check("02.4", answer)


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
            "02.5": check_linear_parameters, "02.6": check_transposed_output_size, "06.2": check_code_bits,
            "06.3": check_psnr_conversion, "07.1": check_perfect_auroc, "07.2": check_random_auroc,
            "07.3": check_noise_psnr, "07.4": check_precision}
