"""Exercises that check themselves: numbers to work out, and code to write (Neuromatch style).

One file per notebook (``ex01`` ... ``ex09``), each holding its exercises as data; :mod:`.core` holds
the one convention they share. No lesson module imports this package, and nothing registers itself on
import: the catalogue below is the list of the notebooks' files.

**Numbers.** The learner writes a number into ``exercises.check("02.2", answer)`` (or the notebook's
named call, e.g. ``exercises.check_conv_output_size(answer)``) and is told whether it is right; a wrong
answer gets a hint, not the answer. ``tests/test_exercises.py`` checks each answer against an
independent reference (running the layer, torchmetrics, ``baselines.convert_units``).

**Code.** The learner completes a function in a notebook cell, which ships unfinished::

    def count_dead_units(codes: torch.Tensor) -> int:
        ...
        raise NotImplementedError("Exercise 05.6: count the code units that are zero for every image")

    count_dead_units = exercises.check_code("05.6", count_dead_units)

:func:`check_code` runs the learner's function on a small input and says what is wrong in the
learner's terms; it returns the function the rest of the notebook uses: the learner's once it passes,
otherwise the worked solution, and it says which. The shipped placeholder (a ``NotImplementedError``
whose message starts with ``"Exercise <id>"``) means "not written yet": the notebook then runs on the
solution, so an unattended run (``pytest --nbmake``, ``make run``) goes through. :func:`solution`
prints a solution, ready to paste into the cell.

Adding an exercise: in the notebook's ``exNN.py``, write the worked solution as a plain function and a
check ``check(candidate) -> None`` that raises :class:`Wrong` (a message in the learner's terms) at the
first problem; add a :class:`CodeExercise` to that file's ``CODE`` (or an :class:`Exercise` to
``NUMBERS``), and a row per plausible wrong answer to the mutation table in ``tests/test_exercises.py``.
"""

from __future__ import annotations

from typing import Callable

from . import ex01, ex02, ex03, ex04, ex05, ex06, ex07, ex08, ex09
from .core import (CodeExercise, Exercise, Wrong, check_code_exercise, check_number, is_placeholder, say,
                   solution_text)
from .core import code_problem as _code_problem
from .core import is_right as _is_right
from .core import is_worked_solution as _is_worked_solution
from .ex01 import check_to_uint8_clipping
from .ex02 import (check_conv_output_size, check_copy_latent_dim, check_float32_values_for_image_bits,
                   check_linear_parameters, check_transposed_output_size, conv_output_size,
                   conv_transpose_output_size)
from .ex06 import check_code_bits, check_psnr_conversion
from .ex07 import check_noise_psnr, check_perfect_auroc, check_precision, check_random_auroc

_NOTEBOOKS = (ex01, ex02, ex03, ex04, ex05, ex06, ex07, ex08, ex09)
EXERCISES: dict[str, Exercise] = {e.id: e for notebook in _NOTEBOOKS for e in notebook.NUMBERS}
CODE_EXERCISES: dict[str, CodeExercise] = {e.id: e for notebook in _NOTEBOOKS for e in notebook.CODE}
CHECKERS: dict[str, Callable] = {
    "01.2": check_to_uint8_clipping, "02.2": check_conv_output_size, "02.4": check_copy_latent_dim,
    "02.4b": check_float32_values_for_image_bits, "02.5": check_linear_parameters,
    "02.6": check_transposed_output_size, "06.2": check_code_bits, "06.3": check_psnr_conversion,
    "07.1": check_perfect_auroc, "07.2": check_random_auroc, "07.3": check_noise_psnr, "07.4": check_precision}


def _unknown(exercise_id: str) -> KeyError:
    return KeyError(f"no exercise {exercise_id!r}; known: {', '.join([*EXERCISES, *CODE_EXERCISES])}")


def _number(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise _unknown(exercise_id)
    return EXERCISES[exercise_id]


def _code(exercise_id: str) -> CodeExercise:
    if exercise_id not in CODE_EXERCISES:
        raise _unknown(exercise_id)
    return CODE_EXERCISES[exercise_id]


def check(exercise_id: str, answer) -> bool:
    """Print whether ``answer`` (a number; None: not answered yet) is right, with a hint when not; True when right."""
    return check_number(_number(exercise_id), answer)


def is_right(exercise_id: str, answer) -> bool:
    """True when ``answer`` equals the exercise's answer within its tolerance; no printing."""
    return _is_right(_number(exercise_id), answer)


def check_code(exercise_id: str, candidate: Callable) -> Callable:
    """Check the learner's function, print one verdict, return the function the notebook goes on with."""
    return check_code_exercise(_code(exercise_id), candidate)


def code_problem(exercise_id: str, candidate: Callable) -> str | None:
    """The first problem the check finds in ``candidate`` (None: it passes); no printing.

    The exercise's shipped placeholder propagates as ``NotImplementedError`` (not written yet).
    """
    return _code_problem(_code(exercise_id), candidate)


def is_worked_solution(exercise_id: str, candidate: Callable) -> bool:
    """True when ``candidate`` is the exercise's worked solution (what the check hands back until yours passes)."""
    return _is_worked_solution(_code(exercise_id), candidate)


def solution(exercise_id: str) -> None:
    """Print the worked solution of an exercise (hidden until you ask); code comes with the imports it needs.

    Returns None, so a notebook shows it once; :func:`solution_of` gives the text.
    """
    say(solution_of(exercise_id))


def solution_of(exercise_id: str) -> str:
    """The worked solution of an exercise as text (for code: imports and source, ready to paste into a cell)."""
    if exercise_id in CODE_EXERCISES:
        return solution_text(CODE_EXERCISES[exercise_id])
    return solution_text(_number(exercise_id))


__all__ = ["CHECKERS", "CODE_EXERCISES", "EXERCISES", "CodeExercise", "Exercise", "Wrong", "check", "check_code",
           "code_problem", "conv_output_size", "conv_transpose_output_size", "is_placeholder", "is_right",
           "is_worked_solution", "say", "solution", "solution_of", *(f.__name__ for f in CHECKERS.values())]
