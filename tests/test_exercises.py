"""Self-checking exercises: each checker accepts the answer a trusted reference computes and rejects a wrong one."""

import math

import pytest
import torch
from torch import nn
from torchmetrics.functional.classification import binary_auroc

from convae_utils import baselines, bits, exercises, images


def _after_two_stride2_convs(side: int) -> int:
    encoder = nn.Sequential(nn.Conv2d(3, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 3, stride=2, padding=1))
    return encoder(torch.zeros(1, 3, side, side)).shape[-1]


def _noise_psnr(sigma: float) -> float:
    noise = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigma
    return -10 * math.log10(float(noise.pow(2).mean()))


# Each reference is computed independently of exercises.py: by running the layer, the library, the definition.
REFERENCES = {
    "01.2": lambda: int(images.to_uint8(images.normalize(torch.tensor([200], dtype=torch.uint8)) + 0.5)),
    "02.2": lambda: _after_two_stride2_convs(33),
    "02.4": lambda: torch.zeros(3, 32, 32).numel(),
    "02.5": lambda: sum(p.numel() for p in nn.Linear(4096, 200).parameters()),
    "02.6": lambda: nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)(torch.zeros(1, 1, 8, 8)).shape[-1],
    "06.2": lambda: bits.code_bits(200, 2),
    "06.3": lambda: baselines.convert_units(sse_pm1=50)["psnr_db"],
    "07.1": lambda: float(binary_auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1]))),
    "07.2": lambda: float(binary_auroc(torch.rand(20_000, generator=torch.Generator().manual_seed(0)),
                                       torch.arange(20_000) % 2)),
    "07.3": lambda: _noise_psnr(0.1),
    "07.4": lambda: 45 / (45 + 50),
}


def test_every_exercise_has_a_reference_and_a_checker():
    assert set(REFERENCES) == set(exercises.EXERCISES) == set(exercises.CHECKERS)


@pytest.mark.parametrize("exercise_id", sorted(exercises.EXERCISES))
def test_checker_accepts_the_reference_answer(exercise_id, capsys):
    reference = REFERENCES[exercise_id]()
    assert exercises.CHECKERS[exercise_id](reference) is True
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", sorted(exercises.EXERCISES))
def test_checker_rejects_a_wrong_answer_with_a_hint(exercise_id, capsys):
    exercise = exercises.EXERCISES[exercise_id]
    for wrong in (REFERENCES[exercise_id]() + 1, REFERENCES[exercise_id]() * 2 + 0.5, "nine"):
        assert exercises.CHECKERS[exercise_id](wrong) is False
        out = capsys.readouterr().out
        assert "Hint" in out and exercise.hint in out
        assert exercise.solution not in out, "a wrong answer must not give the solution away"


@pytest.mark.parametrize("exercise_id", sorted(exercises.EXERCISES))
def test_unanswered_is_not_right_and_the_solution_is_one_call_away(exercise_id, capsys):
    assert exercises.check(exercise_id, None) is False
    assert "Not answered yet" in capsys.readouterr().out
    text = exercises.solution(exercise_id)
    assert exercises.EXERCISES[exercise_id].solution in text


def test_conv_formulas_match_the_layers_for_many_sizes():
    for side in range(5, 40):
        conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)(torch.zeros(1, 1, side, side)).shape[-1]
        assert exercises.conv_output_size(side, stride=2) == conv
        up = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)(torch.zeros(1, 1, side, side)).shape[-1]
        assert exercises.conv_transpose_output_size(side, stride=2, output_padding=1) == up


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(KeyError, match="known"):
        exercises.check("99.9", 1)
