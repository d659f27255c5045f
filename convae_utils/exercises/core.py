"""The machinery every exercise shares: what a check raises, how a result is printed, how a solution is shown.

One convention for every exercise of the series:

- a **number exercise** is data (:class:`Exercise`): the answer, its tolerance, a hint and a worked
  solution; :func:`check_number` prints whether the learner's number is right and returns True or False;
- a **code exercise** is data too (:class:`CodeExercise`): the worked solution (a plain function), and a
  check ``check(candidate) -> None`` that runs the candidate on a small input and **raises** :class:`Wrong`
  with a message in the learner's terms at the first problem. :func:`check_code_exercise` runs it, prints
  one verdict and returns the function the notebook goes on with (the learner's once it passes, else the
  worked solution).

A cell ships unfinished with ``raise NotImplementedError("Exercise NN.k: ...")``: that placeholder, and
only that one (:func:`is_placeholder`: a ``NotImplementedError`` whose message starts with its own
exercise's id), means "not written yet". Any other error, a ``NotImplementedError`` from inside the
learner's own code included (``torch.distributions.kl_divergence`` on a pair it has no formula for, an
``nn.Module`` whose ``forward`` is misspelt), is the learner's, reported in their terms.

Everything printed goes through :func:`convae_utils.console.say`, which survives a console whose
encoding lacks a character (a Windows console in cp1252 has no ✓ or ✗): it falls back to ASCII there.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..console import say

LINE = 100  # messages are wrapped at word boundaries to this width (JupyterLab wraps long lines mid-word)


class Wrong(Exception):
    """Raised by a code exercise's check at the first problem; its message is shown to the learner."""


def wrap(text: str) -> str:
    """Each line of ``text`` wrapped at word boundaries to :data:`LINE` characters."""
    return "\n".join(textwrap.fill(line, LINE, break_long_words=False, break_on_hyphens=False) or line
                     for line in text.split("\n"))


# -- number exercises ------------------------------------------------------------------------------------

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


def is_right(exercise: Exercise, answer) -> bool:
    """True when ``answer`` (a number) equals the exercise's answer within its tolerance; no printing."""
    if isinstance(answer, bool) or not isinstance(answer, Real) or not math.isfinite(answer):
        return False
    return abs(float(answer) - exercise.answer) <= exercise.tolerance + 1e-9 * abs(exercise.answer)


def check_number(exercise: Exercise, answer) -> bool:
    """Print whether ``answer`` is right (with a hint when it is not); True when right.

    ``answer`` None means "not answered yet" (the notebooks ship so). Never raises for a wrong or
    malformed answer: it says what was expected instead.
    """
    tag = f"[{exercise.id}]"
    if answer is None:
        say(wrap(f"{tag} Not answered yet: {exercise.question}"))
    elif isinstance(answer, bool) or not isinstance(answer, Real):
        say(wrap(f"{tag} Expected a number, got {answer!r} ({type(answer).__name__}). Hint: {exercise.hint}"))
    elif is_right(exercise, answer):
        say(f"{tag} ✓ Right: {answer:g} {exercise.unit}".rstrip())
        return True
    else:
        say(wrap(f"{tag} ✗ Not yet: {answer:g} is not it. Hint: {exercise.hint} "
                 f"(exercises.solution({exercise.id!r}) shows the worked answer.)"))
    return False


# -- code exercises --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeExercise:
    """A function the learner writes: what to write, the worked solution, and the check that runs it.

    ``check(candidate)`` runs ``candidate`` on a small input and raises :class:`Wrong` at the first
    problem; it returns None when the candidate is right. ``imports`` are the lines the solution needs
    when pasted into a notebook cell (shown above it by :func:`solution_text`).
    """

    id: str
    task: str
    solution: Callable
    check: Callable[[Callable], None]
    imports: str = "import torch"


def is_placeholder(error: BaseException, exercise_id: str) -> bool:
    """True for the shipped placeholder of this exercise: ``NotImplementedError("Exercise <id>: ...")``."""
    return isinstance(error, NotImplementedError) and str(error).startswith(f"Exercise {exercise_id}")


def is_worked_solution(exercise: CodeExercise, candidate) -> bool:
    """True when ``candidate`` is the package's worked solution (as the name holds after a first run)."""
    code = getattr(candidate, "__code__", None)
    return candidate is exercise.solution or (code is not None and code is getattr(exercise.solution, "__code__", None))


def _in_learners_terms(error: BaseException) -> str:
    message = f"your code raised {type(error).__name__}: {error}"
    if isinstance(error, NotImplementedError) and "forward" in str(error):
        message += " (is the method spelt `forward` in your class?)"
    return message


def code_problem(exercise: CodeExercise, candidate) -> str | None:
    """The first problem the check finds in ``candidate`` (None: it passes). No printing.

    The exercise's own placeholder propagates (the cell is not written yet); any other error the
    candidate raises, ``NotImplementedError`` included, is a problem, reported with its type and message.
    The check runs with the global random generator seeded (and restored after), so a verdict is the same
    on every run.
    """
    if not callable(candidate):
        return f"expected a function, got {type(candidate).__name__}: pass the function itself, not its result"
    try:
        with torch.random.fork_rng(devices=[]):  # the same verdict on every run; the learner's stream untouched
            torch.manual_seed(0)
            exercise.check(candidate)
    except Wrong as problem:
        return str(problem)
    except Exception as error:  # the learner's code failed: say how, in its own words
        if is_placeholder(error, exercise.id):
            raise
        return _in_learners_terms(error)
    return None


def check_code_exercise(exercise: CodeExercise, candidate) -> Callable:
    """Check the learner's function; print one verdict; return the function the notebook should go on with.

    Right: the learner's function is returned. The package's worked solution itself (the name holds it
    after a first "Run all"): it is returned and the verdict says so. Not written yet (the shipped
    placeholder): the worked solution is returned, which is what unattended runs see. Wrong: the worked
    solution is returned until the learner's version passes.
    """
    tag, show = f"[{exercise.id}]", f"exercises.solution({exercise.id!r})"
    if is_worked_solution(exercise, candidate):
        say(wrap(f"{tag} That is the worked solution, not yours: the cells below use it. "
                 f"Write yours in the exercise's cell and run that cell again."))
        return exercise.solution
    try:
        problem = code_problem(exercise, candidate)
    except NotImplementedError:
        say(wrap(f"{tag} Not written yet: the cells below use the worked solution ({show} shows it)."))
        return exercise.solution
    if problem is None:
        say(wrap(f"{tag} ✓ Right: your {getattr(candidate, '__name__', 'function')} passed the check."))
        return candidate
    say(wrap(f"{tag} ✗ Not yet: {problem}\nThe cells below use the worked solution until yours passes ({show})."))
    return exercise.solution


def solution_text(exercise: Exercise | CodeExercise) -> str:
    """The worked solution as text: for code, the imports it needs and its source, ready to paste into a cell."""
    if isinstance(exercise, CodeExercise):
        imports = f"{exercise.imports}\n\n\n" if exercise.imports else ""
        task = textwrap.fill(exercise.task, LINE, initial_indent=f"# [{exercise.id}] ", subsequent_indent="# ",
                             break_long_words=False, break_on_hyphens=False)
        return f"{task}\n{imports}{inspect.getsource(exercise.solution)}"
    return wrap(f"[{exercise.id}] {exercise.question}\nSolution: {exercise.solution}")


# -- helpers the checks share ----------------------------------------------------------------------------

def close(a, b, tol: float = 1e-4) -> bool:
    """Same shape and equal within ``tol`` (relative and absolute), compared in float64."""
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


def as_tensor(value, what: str):
    """``value`` as a detached tensor (a NumPy array is converted); :class:`Wrong` for anything else."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a tensor, got {type(value).__name__}")
    return value.detach()


WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Mish, nn.Tanh, nn.Sigmoid)


def trace(module: nn.Module, x: torch.Tensor) -> tuple[list[tuple[nn.Module, tuple]], BaseException | None]:
    """The leaf layers in the order they run, with each output's shape (without N); and the error, if any."""
    steps, hooks = [], []
    for leaf in module.modules():
        if not list(leaf.children()):
            hooks.append(leaf.register_forward_hook(lambda m, _i, out: steps.append((m, tuple(out.shape[1:])))))
    error = None
    try:
        with torch.no_grad():
            module(x)
    except Exception as caught:  # reported layer by layer by the caller
        error = caught
    finally:
        for hook in hooks:
            hook.remove()
    return steps, error


def layer_name(module: nn.Module) -> str:
    """A layer as the learner wrote it, e.g. ``Conv2d(16 -> 32, stride 2)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return f"{type(module).__name__}({module.in_channels} -> {module.out_channels}, stride {module.stride[0]})"
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features:,} -> {module.out_features:,})"
    return type(module).__name__


def shape_text(shape: tuple) -> str:
    return " x ".join(f"{n:,}" for n in shape)
