"""Self-checking exercises: each number checker accepts the answer a trusted reference computes and rejects a
wrong one; the code exercises' shared behaviour (the placeholder, the worked solution, solutions that run as
pasted, consoles without the characters). The mutation tables of the code exercises: test_exercise_mutations.py."""

import contextlib
import io
import math
import sys
import warnings

import pytest
import torch
from torch import nn
from torchmetrics.functional.classification import binary_auroc

from convae_utils import baselines, console, corruptions, exercises, images, models, training
from convae_utils.codecs import bits
from convae_utils.exercises import core


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
        out = " ".join(capsys.readouterr().out.split())  # messages are wrapped at word boundaries
        assert "Hint" in out and exercise.hint in out
        assert exercise.solution not in out, "a wrong answer must not give the solution away"


@pytest.mark.parametrize("exercise_id", sorted(exercises.EXERCISES))
def test_unanswered_is_not_right_and_the_solution_is_one_call_away(exercise_id, capsys):
    assert exercises.check(exercise_id, None) is False
    assert "Not answered yet" in capsys.readouterr().out
    assert exercises.solution(exercise_id) is None
    shown = " ".join(capsys.readouterr().out.split())  # wrapped at word boundaries
    assert exercises.EXERCISES[exercise_id].solution in shown


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


# -- code exercises: what every one of them shares ------------------------------------------------------

def test_no_lesson_module_imports_the_exercises():
    """Issue 27: exercises sit on top; importing the lessons registers nothing and loads no exercise."""
    import subprocess

    code = ("import sys, convae_utils, pkgutil, importlib\n"
            "names = [m.name for m in pkgutil.iter_modules(convae_utils.__path__) if m.name not in "
            "('exercises', 'tools', '__main__')]\n"
            "for n in names: importlib.import_module('convae_utils.' + n)\n"
            "print([m for m in sys.modules if m.startswith('convae_utils.exercises')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_notebook_has_a_file_and_the_catalogue_is_complete():
    from convae_utils.exercises import ex01, ex02, ex03, ex04, ex05, ex06, ex07, ex08, ex09

    files = (ex01, ex02, ex03, ex04, ex05, ex06, ex07, ex08, ex09)
    assert {e.id for f in files for e in f.CODE} == set(exercises.CODE_EXERCISES)
    assert {e.id for f in files for e in f.NUMBERS} == set(exercises.EXERCISES)
    for number, f in enumerate(files, start=1):
        assert all(e.id.startswith(f"{number:02d}.") for e in (*f.CODE, *f.NUMBERS)), f.__name__


@pytest.mark.parametrize("exercise_id", sorted(exercises.CODE_EXERCISES))
def test_a_right_answer_is_handed_back_and_named_as_the_learners(exercise_id, capsys):
    solution = exercises.CODE_EXERCISES[exercise_id].solution

    def learners(*args):
        return solution(*args)

    assert exercises.code_problem(exercise_id, learners) is None
    assert exercises.check_code(exercise_id, learners) is learners
    out = capsys.readouterr().out
    assert "Right" in out and "your learners" in out


@pytest.mark.parametrize("exercise_id", sorted(exercises.CODE_EXERCISES))
def test_the_shipped_placeholder_falls_back_to_the_solution_in_a_short_message(exercise_id, capsys):
    def unwritten(*args):
        ...
        raise NotImplementedError(f"Exercise {exercise_id}: write this")

    assert exercises.check_code(exercise_id, unwritten) is exercises.CODE_EXERCISES[exercise_id].solution
    out = capsys.readouterr().out
    assert "Not written yet" in out and f"exercises.solution({exercise_id!r})" in out
    lines = out.strip().splitlines()
    assert len(lines) <= 2 and all(len(line) <= core.LINE for line in lines), out   # issue 29: no four-line repeat
    assert out.count(exercise_id) == 2, out                                        # the tag and the solution call


@pytest.mark.parametrize("exercise_id", sorted(exercises.CODE_EXERCISES))
def test_a_check_run_again_on_the_worked_solution_says_so(exercise_id, capsys):
    """Issue 30, item 11: after "Run all" the name holds the worked solution; it is not "your" function."""
    solution = exercises.CODE_EXERCISES[exercise_id].solution
    assert exercises.is_worked_solution(exercise_id, solution)
    assert exercises.check_code(exercise_id, solution) is solution
    out = " ".join(capsys.readouterr().out.split())
    assert "worked solution, not yours" in out and "Right" not in out and "your " + solution.__name__ not in out


@pytest.mark.parametrize("exercise_id", sorted(exercises.CODE_EXERCISES))
def test_a_shown_solution_is_shown_once_and_runs_as_pasted(exercise_id, capsys):
    """Issue 29: solution() prints once (returns None, no escaped Out[..]); the text runs in an empty cell."""
    assert exercises.solution(exercise_id) is None
    shown = capsys.readouterr().out
    assert shown == exercises.solution_of(exercise_id) + "\n"
    namespace = {"__name__": "__main__"}
    exec(compile(shown, f"<cell {exercise_id}>", "exec"), namespace)   # nothing but what the text imports
    pasted = namespace[exercises.CODE_EXERCISES[exercise_id].solution.__name__]
    assert exercises.code_problem(exercise_id, pasted) is None


def test_other_not_implemented_errors_are_the_learners_and_said_in_their_terms(capsys):
    """Issue 30, item 10: only the shipped placeholder counts as "not written yet"."""
    def kl_with_distributions(mean, logvar):  # torch has no KL formula for Normal || Cauchy
        q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
        return torch.distributions.kl_divergence(q, torch.distributions.Cauchy(0.0, 1.0)).flatten(1).sum(1)

    problem = exercises.code_problem("09.2", kl_with_distributions)
    assert problem.startswith("your code raised NotImplementedError")
    assert exercises.check_code("09.2", kl_with_distributions) is exercises.CODE_EXERCISES["09.2"].solution
    out = capsys.readouterr().out
    assert "Not yet" in out and "Not written yet" not in out

    class Misspelt(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)

        def foward(self, x):
            return x + self.conv(x)

    def with_misspelt_block(code_channels, width):
        encoder, decoder = exercises.CODE_EXERCISES["08.1"].solution(code_channels, width)
        return nn.Sequential(*encoder[:4], Misspelt(2 * width), *encoder[5:]), decoder

    problem = exercises.code_problem("08.1", with_misspelt_block)
    assert "NotImplementedError" in problem and "spelt `forward`" in problem

    def another_exercises_placeholder(codes):  # a placeholder of another id is not this one's
        raise NotImplementedError("Exercise 03.6: not this one")

    assert "NotImplementedError" in exercises.code_problem("05.6", another_exercises_placeholder)


def test_a_failing_learner_function_is_reported_not_raised(capsys):
    def broken(codes):
        return codes.no_such_method()

    assert exercises.check_code("05.6", broken) is exercises.CODE_EXERCISES["05.6"].solution
    assert "AttributeError" in capsys.readouterr().out


def _cp1252_console():
    return io.TextIOWrapper(io.BytesIO(), encoding="cp1252", errors="strict")


def test_every_message_survives_a_console_without_its_characters():
    """Issue 30, item 13: a Windows console in cp1252 has no ✓, ✗ or σ."""
    stream = _cp1252_console()
    with contextlib.redirect_stdout(stream):
        for exercise_id, checker in exercises.CHECKERS.items():
            checker(REFERENCES[exercise_id]())
            checker(REFERENCES[exercise_id]() + 1)
            checker(None)
            exercises.solution(exercise_id)
        for exercise_id, exercise in exercises.CODE_EXERCISES.items():
            exercises.check_code(exercise_id, lambda *args: exercise.solution(*args))
            exercises.check_code(exercise_id, lambda *args: None)
            exercises.check_code(exercise_id, exercise.solution)
            exercises.solution(exercise_id)
    stream.flush()
    text = stream.buffer.getvalue().decode("cp1252")
    assert "[ok] Right" in text and "[x] Not yet" in text
    sigma = corruptions.Corruption("gaussian", 0.1).label
    sigma.encode("cp1252")  # no UnicodeEncodeError
    console.say("σ ✓ ✗ — done", file=stream)


def test_the_console_fallback_keeps_what_the_encoding_has():
    stream = _cp1252_console()
    console.say("é ✓ σ", file=stream)
    stream.flush()
    assert stream.buffer.getvalue().decode("cp1252") == "é [ok] sigma\n"
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    console.say("✓ σ", file=utf8)
    utf8.flush()
    assert utf8.buffer.getvalue().decode("utf-8") == "✓ σ\n"


def test_every_text_file_the_package_opens_names_its_encoding():
    """Issue 30, item 13: open(), read_text() and write_text() in text mode name their encoding."""
    import ast
    import pathlib

    import convae_utils

    unnamed = []
    for path in pathlib.Path(convae_utils.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            keywords = {k.arg for k in node.keywords}
            if name in ("read_text", "write_text") or (name == "open" and isinstance(node.func, ast.Name)):
                mode = next((a.value for a in node.args[1:2] if isinstance(a, ast.Constant)), "r")
                if "b" not in str(mode) and "encoding" not in keywords:
                    unnamed.append(f"{path.name}:{node.lineno}")
    known_elsewhere: set[str] = set()  # runs.py names its encodings now too
    assert [u for u in unnamed if u.split(":")[0] not in known_elsewhere] == []


def test_encoder_solution_is_the_packages_encoder_layer_for_layer():
    ours, theirs = exercises.CODE_EXERCISES["02.7"].solution(200), models.Encoder(200)
    assert models.count_parameters(ours) == models.count_parameters(theirs)
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert ours(torch.zeros(2, 3, 32, 32)).shape == (2, 200)


def test_step_solution_trains_in_the_packages_loop():
    step = exercises.CODE_EXERCISES["03.6"].solution
    model = models.build_autoencoder(8, base_channels=2, seed=0)
    pixels = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    batch = pixels.float() / 127.5 - 1
    first, logs = step(model, batch)
    assert logs == {} and float(first.detach()) == pytest.approx(float(training.mse_step(model, batch)[0].detach()))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):  # the learner's step plugs into the package's update unchanged
        training.train_step(model, optimizer, pixels, step=step)
    assert float(step(model, batch)[0].detach()) < float(first.detach())


def test_threshold_solution_matches_the_package():
    from convae_utils import anomaly

    scores = torch.rand(500, generator=torch.Generator().manual_seed(2))
    assert exercises.CODE_EXERCISES["07.7"].solution(scores, 0.05) == pytest.approx(
        anomaly.false_alarm_threshold(scores, 0.05))


def test_the_spatial_solution_is_the_packages_model_and_passes_whatever_its_initial_weights():
    from convae_utils.spatial import SpatialAutoencoder

    build = exercises.CODE_EXERCISES["08.1"].solution
    encoder, decoder = build(4, 16)
    reference = SpatialAutoencoder(4, 16, depth=1, stem="pixel")
    reference.encoder.load_state_dict({("to_code." + k[2:]) if k.startswith("9.") else f"features.{k}": v
                                       for k, v in encoder.state_dict().items()})
    reference.decoder.load_state_dict({f"features.{k}": v for k, v in decoder.state_dict().items()})
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(decoder(encoder(x)), reference(x))
    for seed in range(10):  # the code's sign once depended on the learner's random init
        torch.manual_seed(seed)
        exercises.CODE_EXERCISES["08.1"].check(build)  # raises nothing (code_problem would seed it)


def test_the_reparameterize_check_leaves_the_learners_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    exercises.code_problem("09.1", exercises.CODE_EXERCISES["09.1"].solution)
    assert torch.equal(torch.rand(3), expected)


def test_every_notebook_cell_ships_its_exercises_own_placeholder():
    """The marker that "not written yet" relies on: each checked cell raises NotImplementedError("Exercise <id>...")."""
    import pathlib
    import re

    notebooks = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    checked, shipped = set(), set()
    for source in sorted(notebooks.glob("[0-9][0-9]_*.py")):
        text = source.read_text(encoding="utf-8")
        here = set(re.findall(r'exercises\.check_code\("([0-9.]+[a-z]?)"', text))
        placeholders = set(re.findall(r'raise NotImplementedError\("Exercise ([0-9.]+[a-z]?)[: ]', text))
        assert here == placeholders, source.name
        assert all(i.startswith(source.name[:2]) for i in here), source.name
        checked |= here
        shipped |= placeholders
    assert checked == set(exercises.CODE_EXERCISES)
