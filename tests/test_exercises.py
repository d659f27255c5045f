"""Self-checking exercises: each checker accepts the answer a trusted reference computes and rejects a wrong one;
each code exercise's check accepts its solution, rejects a typical mistake in the learner's terms, and falls
back to the solution (saying so) while the learner's cell still raises NotImplementedError."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import binary_auroc

from convae_utils import baselines, exercises, images, winning  # winning registers exercise 08.1
from convae_utils.codecs import bits


def _after_two_stride2_convs(side: int) -> int:
    encoder = nn.Sequential(nn.Conv2d(3, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 3, stride=2, padding=1))
    return encoder(torch.zeros(1, 3, side, side)).shape[-1]


def _noise_psnr(sigma: float) -> float:
    noise = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigma
    return -10 * math.log10(float(noise.pow(2).mean()))


def _smallest_latent_that_warns() -> int:
    """The smallest float32 code that holds the image's bits, as the package's CodeSizeWarning decides it."""
    for latent_dim in range(700, 900):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bits.warn_if_code_not_smaller(latent_dim):
                return latent_dim
    raise AssertionError("no latent size from 700 to 899 warns")


# Each reference is computed independently of exercises.py: by running the layer, the library, the definition.
REFERENCES = {
    "01.2": lambda: int(images.to_uint8(images.normalize(torch.tensor([200], dtype=torch.uint8)) + 0.5)),
    "02.2": lambda: _after_two_stride2_convs(33),
    "02.4": lambda: torch.zeros(3, 32, 32).numel(),
    "02.4b": lambda: _smallest_latent_that_warns(),
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


def test_copy_question_says_which_code_it_asks_about():
    """Issue 20, item 3: 3,072 is the answer for a linear code only; 768 float32 values hold every bit."""
    linear, by_bits = exercises.EXERCISES["02.4"], exercises.EXERCISES["02.4b"]
    assert "linear" in linear.question and linear.answer == 3072
    assert "768" in linear.solution and "single real number" in linear.solution
    assert by_bits.answer == bits.IMAGE_BITS / 32 == 768


# -- code exercises ----------------------------------------------------------------------------------

def _encoder_without_stride(latent_dim):
    layers = list(exercises.build_encoder(latent_dim))
    layers[4] = nn.Conv2d(16, 32, kernel_size=3, padding=1)             # the first stride-2 conv, without stride
    return nn.Sequential(*layers)


def _encoder_without_relu(latent_dim):
    return nn.Sequential(*[m for i, m in enumerate(exercises.build_encoder(latent_dim)) if i != 1])


def _step_that_sums(model, batch):
    loss = F.mse_loss(model(batch), batch, reduction="sum")
    return loss, {"mse": loss}


def _step_with_item(model, batch):
    loss = F.mse_loss(model(batch), batch)
    return loss.item(), {"mse": loss.item()}


def _step_with_backward(model, batch):
    loss = F.mse_loss(model(batch), batch)
    loss.backward()
    return loss, {"mse": loss.detach()}


def _spatial_with_sigmoid_output(code_channels, width):
    encoder, decoder = winning.build_spatial_autoencoder(code_channels, width)
    decoder[-1] = nn.Sigmoid()  # outputs in [0, 1], the images in [-1, 1]
    return encoder, decoder


def _spatial_with_transposed_convs(code_channels, width):
    encoder, decoder = winning.build_spatial_autoencoder(code_channels, width)
    return encoder, nn.Sequential(nn.ConvTranspose2d(code_channels, 3, kernel_size=8, stride=8), nn.Tanh())


def _spatial_with_relu_code(code_channels, width):
    encoder, decoder = winning.build_spatial_autoencoder(code_channels, width)
    return nn.Sequential(*encoder, nn.ReLU()), decoder


def _spatial_without_tanh(code_channels, width):
    encoder, decoder = winning.build_spatial_autoencoder(code_channels, width)
    return encoder, nn.Sequential(*list(decoder)[:-1])


# id -> (a typical mistake, words the check must say about it)
MISTAKES = {
    "02.7": [(_encoder_without_stride, "stride=2"), (_encoder_without_relu, "activation")],
    "03.6": [(_step_that_sums, "sum"), (_step_with_item, ".item()"), (_step_with_backward, "backward"),
             (lambda model, batch: (((model(batch) - batch) ** 2).flatten(1).sum(1).mean(), {}), "3,072 times")],
    "04.5": [(lambda r, o: 10 * torch.log10(1 / (r - o).pow(2).flatten(1).mean(1)), "[-1, 1]"),
             (lambda r, o: 10 * torch.log10(4 / (r - o).pow(2).mean()), "one PSNR per image")],
    "05.6": [(lambda codes: int((codes == 0).any(dim=0).sum()), "*every* image"),
             (lambda codes: int((codes == 0).all(dim=1).sum()), "columns")],
    "06.5": [(lambda x, mean, c: (x @ c.T, x @ c.T @ c + mean), "mean image"),
             (lambda x, mean, c: ((x - mean) @ c.T, (x - mean) @ c.T @ c), "mean image")],
    "07.7": [(lambda scores, rate: float(np.quantile(scores, rate)), "(1 - rate) quantile"),
             (lambda scores, rate: float(np.quantile(scores, 0.95)), "20%")],
    "09.1": [(lambda mean, logvar: mean + torch.exp(logvar) * torch.randn_like(mean), "variance"),
             (lambda mean, logvar: mean, "noise"),
             (lambda mean, logvar: torch.normal(mean, torch.exp(0.5 * logvar)), "no gradient reaches")],
    "09.2": [(lambda mean, logvar: 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar), "sum them"),
             (lambda mean, logvar: (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1), "1/2")],
    "08.1": [(_spatial_with_relu_code, "linear"), (_spatial_without_tanh, "Tanh"),
             (_spatial_with_sigmoid_output, "never goes below 0"), (_spatial_with_transposed_convs, "ConvTranspose2d")],
}


def test_every_code_exercise_has_a_tested_mistake():
    assert set(MISTAKES) == set(exercises.CODE_EXERCISES)
    assert {i[:2] for i in exercises.CODE_EXERCISES} >= {"02", "03", "04", "05", "06", "07"}


@pytest.mark.parametrize("exercise_id", sorted(exercises.CODE_EXERCISES))
def test_code_check_accepts_the_solution_and_hands_back_the_learners_function(exercise_id, capsys):
    solution = exercises.CODE_EXERCISES[exercise_id].solution
    assert exercises.code_problem(exercise_id, solution) is None

    def learners(*args):
        return solution(*args)

    assert exercises.check_code(exercise_id, learners) is learners
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id,mistake,words",
                         [(i, m, w) for i, pairs in sorted(MISTAKES.items()) for m, w in pairs])
def test_code_check_rejects_a_typical_mistake_in_the_learners_terms(exercise_id, mistake, words, capsys):
    problem = exercises.code_problem(exercise_id, mistake)
    assert problem is not None and words in problem, problem
    assert exercises.check_code(exercise_id, mistake) is exercises.CODE_EXERCISES[exercise_id].solution
    out = capsys.readouterr().out
    assert "Not yet" in out and "worked solution" in out


@pytest.mark.parametrize("exercise_id", sorted(exercises.CODE_EXERCISES))
def test_unwritten_cell_falls_back_to_the_solution_and_says_so(exercise_id, capsys):
    def unwritten(*args):
        ...
        raise NotImplementedError("Exercise: write this")

    assert exercises.check_code(exercise_id, unwritten) is exercises.CODE_EXERCISES[exercise_id].solution
    out = capsys.readouterr().out
    assert "Not written yet" in out and f"exercises.solution({exercise_id!r})" in out
    shown = exercises.solution(exercise_id)
    assert f"def {exercises.CODE_EXERCISES[exercise_id].solution.__name__}(" in shown


def test_a_failing_learner_function_is_reported_not_raised(capsys):
    def broken(codes):
        return codes.no_such_method()

    assert exercises.check_code("05.6", broken) is exercises.count_dead_units
    assert "AttributeError" in capsys.readouterr().out


def test_encoder_solution_is_the_packages_encoder_layer_for_layer():
    from convae_utils import models

    ours, theirs = exercises.build_encoder(200), models.Encoder(200)
    assert models.count_parameters(ours) == models.count_parameters(theirs)
    mine = [tuple(p.shape) for p in ours.parameters()]
    assert mine == [tuple(p.shape) for p in theirs.parameters()]
    assert ours(torch.zeros(2, 3, 32, 32)).shape == (2, 200)


def test_step_solution_trains_in_the_packages_loop():
    from convae_utils import models, training

    model = models.build_autoencoder(8, base_channels=2, seed=0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    batch = images.float() / 127.5 - 1
    first, logs = exercises.mse_step(model, batch)
    assert logs == {} and float(first.detach()) == pytest.approx(float(training.mse_step(model, batch)[0].detach()))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):  # the learner's step plugs into the package's update unchanged
        training.train_step(model, optimizer, images, step=exercises.mse_step)
    assert float(exercises.mse_step(model, batch)[0].detach()) < float(first.detach())


def test_threshold_solution_matches_the_package():
    from convae_utils import anomaly

    scores = torch.rand(500, generator=torch.Generator().manual_seed(2))
    assert exercises.threshold_from_validation(scores, 0.05) == pytest.approx(anomaly.false_alarm_threshold(scores, 0.05))


def test_code_exercise_ids_are_unique():
    with pytest.raises(ValueError, match="registered already"):
        exercises.add_code_exercise("05.6", "again", exercises.count_dead_units, lambda f: None)
