"""Notebook 07's exercises (what codes are good for): AUROC, noise PSNR, precision, and an alarm threshold."""

from __future__ import annotations

import math

import numpy as np
import torch

from .core import CodeExercise, Exercise, Wrong, check_number

NUMBERS = [
    Exercise(
        "07.1", "AUROC of a detector that scores every anomaly above every normal image?",
        1.0,
        "AUROC is the probability that a random anomaly scores above a random normal image.",
        "1.0: every threshold between the two groups flags all anomalies and no normal image, so the ROC curve "
        "goes straight up to (0, 1) and then along the top.", tolerance=1e-6),
    Exercise(
        "07.2", "AUROC of a detector whose scores are random numbers, unrelated to the images (expected value)?",
        0.5,
        "A random anomaly scores above a random normal image how often, if scores are coin tosses?",
        "0.5: the ROC curve follows the diagonal (flagging a share p of the normal images also flags a share p of "
        "the anomalies). Below 0.5 the detector is worse than chance: the anomalies look *more* normal.",
        tolerance=0.01),
    Exercise(
        "07.3", "PSNR (dB, [0, 1] scale) of an image with Gaussian noise of sigma 0.1 added, ignoring clipping?",
        -10.0 * math.log10(0.1 ** 2),
        "The MSE of added noise is its variance, sigma squared; PSNR = 10 log10(1 / MSE).",
        "MSE = 0.1^2 = 0.01, so PSNR = 10 log10(100) = 20 dB. Clipping to [0, 1] removes a little of the noise, "
        "so the measured value is slightly higher. For sigma 0.2: 14 dB.", tolerance=0.05, unit="dB"),
    Exercise(
        "07.4", "A detector flags 45 of 50 anomalies and 50 of 1,000 normal images. What is its precision?",
        45 / (45 + 50),
        "Precision = true alarms / all alarms. How many alarms are there in total?",
        "45 / (45 + 50) = 0.47: more than half of the alarms are false, although only 5% of normal images are "
        "flagged and 90% of anomalies are caught (recall 0.9). When anomalies are rare, precision is low unless "
        "false alarms are very rare.", tolerance=0.005),
]
_BY_ID = {e.id: e for e in NUMBERS}


def check_perfect_auroc(answer) -> bool:
    """Notebook 07, exercise 1: AUROC of a perfect detector."""
    return check_number(_BY_ID["07.1"], answer)


def check_random_auroc(answer) -> bool:
    """Notebook 07, exercise 2: AUROC of a random detector."""
    return check_number(_BY_ID["07.2"], answer)


def check_noise_psnr(answer) -> bool:
    """Notebook 07, exercise 3: PSNR of sigma-0.1 Gaussian noise."""
    return check_number(_BY_ID["07.3"], answer)


def check_precision(answer) -> bool:
    """Notebook 07, exercise 4: precision of a detector with rare anomalies."""
    return check_number(_BY_ID["07.4"], answer)


def threshold_from_validation(val_scores: torch.Tensor, false_alarm_rate: float) -> float:
    """The anomaly score above which a share ``false_alarm_rate`` of the normal validation images lie."""
    return float(np.quantile(np.asarray(val_scores, dtype=np.float64), 1 - false_alarm_rate))


def check_threshold(candidate) -> None:
    """Run ``candidate`` on 1,000 skewed scores at two rates; count the share of scores above its threshold."""
    scores = torch.rand(1000, generator=torch.Generator().manual_seed(0)).pow(3) * 0.05   # MSE-like, skewed
    for rate in (0.05, 0.2):
        value = candidate(scores.clone(), rate)
        if (isinstance(value, torch.Tensor) and value.numel() == 1) or (isinstance(value, np.ndarray) and value.size == 1):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise Wrong(f"return one number, the threshold; got {type(value).__name__}")
        flagged = float((scores > value).double().mean())
        if abs(flagged - rate) <= 2 / len(scores):
            continue
        if abs(flagged - (1 - rate)) <= 2 / len(scores):
            raise Wrong(f"with false_alarm_rate={rate} your threshold flags {flagged:.0%} of the validation images: "
                        f"take the (1 - rate) quantile, so that only {rate:.0%} lie above it")
        if math.isclose(value, float(scores.mean() + 2 * scores.std()), rel_tol=1e-3):
            raise Wrong(f"your threshold is the mean + 2 standard deviations, which flags {flagged:.1%}, not "
                        f"{rate:.0%}: the scores are skewed, not Gaussian; take the (1 - rate) quantile")
        if flagged == 0.0:
            raise Wrong(f"with false_alarm_rate={rate} your threshold {value:.4g} flags no validation image (is it "
                        "the largest score?): take the (1 - rate) quantile")
        reference = float(np.quantile(scores.double().numpy(), 1 - rate))
        raise Wrong(f"with false_alarm_rate={rate} your threshold {value:.4g} flags {flagged:.1%} of the validation "
                    f"images, not {rate:.0%} (a threshold near {reference:.4g} does)")


CODE = [CodeExercise(
    "07.7", "Write threshold_from_validation(val_scores, false_alarm_rate): the score above which that share of "
            "the normal validation images lie.", threshold_from_validation, check_threshold,
    imports="import numpy as np\nimport torch")]
