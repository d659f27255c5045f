"""Do two training paths run the same algorithm? One step from the same state, judged against float noise.

Introduced for issue 14 (the benchmark's agreement check). Comparing losses after many steps cannot
answer the question: two correct paths that sum in another order (channels_last picks other
kernels; ToTensor+Normalize rounds differently from ``x / 127.5 - 1``) drift apart as training goes
on, so any fixed tolerance is either too tight for long runs or too loose for short ones.

What is compared instead, for each path, from the SAME weights on the SAME batches, a few steps
(``STEPS``, default 2: too few for orderings to drift apart):

- the loss of each step (the forward pass: normalisation, layers, the loss function);
- the update each parameter received over the steps (``after - before``; the backward pass, the optimiser, the
  learning rate). For every parameter tensor the median over its elements of
  ``|update_a - update_b| / max(|update_a|, |update_b|)`` is taken, and the worst tensor is reported.
  The median ignores the few elements whose gradient is so close to zero that rounding flips its
  sign; a wrong learning rate, a wrong scale of the input, a skipped layer move every element.
  Two steps rather than one, because Adam's first update is about ``lr * sign(grad)``, blind to a
  gradient that is wrong but has the right sign; the second update depends on two gradients' ratio.

The tolerance is not a guess: the reference path is run a second time with another summation order
(``noise`` steps, e.g. the same loop in another memory layout) and the tolerance is ``NOISE_FACTOR``
times the difference that produces, but never below ``FLOOR`` (a few float32 epsilons). Because
every path starts from the same state, the check means the same whether the benchmark ran 30 steps or
10,000: give it the weights of a trained model as ``state`` to check a later point of training.

What it cannot see: a gradient that is wrong only by a constant factor (Adam divides it out), or an
error that only shows after many steps (e.g. a shuffle that repeats batches); those need their own
tests.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from convae_utils.images import ImageSet

FLOAT32_EPS = float(torch.finfo(torch.float32).eps)  # 1.19e-7
# Tolerance = NOISE_FACTOR x the reference's own difference under another summation order ...
NOISE_FACTOR = 10.0
# ... but at least this: 64 float32 epsilons (7.6e-6). A 1% error in the learning rate moves every
# update by 1e-2, a normalisation off by 1/255 moves the loss by ~1e-3: both far above it.
FLOOR = 64 * FLOAT32_EPS

# A few training steps: takes a model (already holding the starting weights), uint8 images and a
# batch size, trains the model in place for len(images) // batch_size optimiser steps on the images
# in the order given by training.epoch_order(len(images), seed, 0), returns each step's loss.
StepFn = Callable[[nn.Module, ImageSet, int], Sequence[float]]
# Steps compared by default. Adam's first update is about lr * sign(grad), blind to how large the
# gradient is; the second divides a mix of two gradients by their root mean square, so a gradient
# that is wrong by more than a sign shows there.
STEPS = 2


@dataclass
class StepOutcome:
    """What one path did in its steps: the losses and each parameter's total update (float64, contiguous)."""

    losses: list[float]
    updates: dict[str, torch.Tensor]


@dataclass
class Difference:
    """How far apart two step outcomes are.

    Attributes:
        loss: largest relative difference of the two paths' losses at the same step.
        update: worst parameter tensor's median elementwise relative difference of the updates.
        update_tensor: the parameter with that worst median.
    """

    loss: float
    update: float
    update_tensor: str


@dataclass
class Agreement:
    """The verdict of :func:`check_agreement`; ``ok`` is False for a real disagreement."""

    ok: bool
    difference: Difference
    noise: Difference
    tolerance: dict[str, float]
    reference_losses: list[float]
    candidate_losses: list[float]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        d, t = self.difference, self.tolerance
        return (f"{len(self.reference_losses)} steps from the same state: loss rel. diff {d.loss:.1e} (tolerance {t['loss']:.1e}), "
                f"update rel. diff {d.update:.1e} in {d.update_tensor} (tolerance {t['update']:.1e}); "
                f"reference vs itself in another summation order: {self.noise.loss:.1e} / {self.noise.update:.1e}"
                f" -> {'agree' if self.ok else 'DISAGREE'}")


def run_step(step: StepFn, model_factory: Callable[[], nn.Module], state: Mapping[str, torch.Tensor] | None,
             images: ImageSet, batch_size: int) -> StepOutcome:
    """Build a model, load ``state`` (if given), run ``step`` on ``images``; return losses and updates."""
    model = model_factory()
    if state is not None:
        model.load_state_dict(state)
    before = {k: v.detach().to("cpu", torch.float64, copy=True).contiguous() for k, v in model.named_parameters()}
    losses = [float(x) for x in step(model, images, batch_size)]
    after = {k: v.detach().to("cpu", torch.float64).contiguous() for k, v in model.named_parameters()}
    if len(losses) != len(images) // batch_size:
        raise ValueError(f"the step function ran {len(losses)} steps, expected {len(images) // batch_size} "
                         f"({len(images)} images in batches of {batch_size})")
    if not all(map(math.isfinite, losses)):
        raise ValueError(f"a step returned a non-finite loss ({losses}); the path diverged")
    return StepOutcome(losses, {k: after[k] - before[k] for k in before})


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def compare(a: StepOutcome, b: StepOutcome) -> Difference:
    """The :class:`Difference` between two outcomes of a step from the same state."""
    if a.updates.keys() != b.updates.keys():
        raise ValueError(f"the two paths trained different parameters: {sorted(a.updates.keys() ^ b.updates.keys())}")
    worst, worst_name = 0.0, ""
    for name, ua in a.updates.items():
        ub = b.updates[name]
        if ua.shape != ub.shape:
            raise ValueError(f"parameter {name} has shape {tuple(ua.shape)} in one path, {tuple(ub.shape)} in the other")
        scale = torch.maximum(ua.abs(), ub.abs())
        moved = scale > 0  # elements neither path moved (a dead unit's bias) agree exactly
        if not bool(moved.any()):
            continue
        rel = float(((ua - ub).abs()[moved] / scale[moved]).median())
        if rel > worst or not worst_name:
            worst, worst_name = rel, name
    return Difference(max(_relative(x, y) for x, y in zip(a.losses, b.losses)), worst, worst_name)


def check_agreement(reference: StepFn, candidate: StepFn, model_factory: Callable[[], nn.Module],
                    images: ImageSet, *, batch_size: int | None = None, noise: Sequence[StepFn] = (),
                    state: Mapping[str, torch.Tensor] | None = None,
                    noise_factor: float = NOISE_FACTOR, floor: float = FLOOR) -> Agreement:
    """Run a few steps (default 2) of ``reference`` and ``candidate`` from the same state; compare.

    Args:
        reference: the trusted path (e.g. the article's loop), as a :data:`StepFn`.
        candidate: the path under test (e.g. the package's ``fit``).
        model_factory: builds the model both start from (seeded: the same weights every call).
        images: uint8 images, ``STEPS`` batches' worth (any whole number of batches works).
        batch_size: images per step (default ``len(images) // STEPS``).
        noise: the reference again with another summation order (e.g. another memory layout); their
            differences from ``reference`` set the tolerance. Without any, the tolerance is ``floor``.
        state: weights to start from instead of the factory's (e.g. a trained model's state_dict), so
            that a later point of training can be checked; every path gets a fresh optimiser.
        noise_factor, floor: tolerance = max(noise_factor x the noise's difference, floor).

    Returns:
        an :class:`Agreement`; ``ok`` is False when the loss or the updates differ by more than the
        tolerance.

    Raises:
        ValueError: when a path returns a non-finite loss or trains other parameters than the reference.
    """
    if not isinstance(images, ImageSet):
        raise TypeError(f"images must be a convae_utils ImageSet, got {type(images).__name__}")
    batch_size = len(images) // STEPS if batch_size is None else int(batch_size)
    if not 1 <= batch_size <= len(images) or len(images) % batch_size:
        raise ValueError(f"images ({len(images)}) must be a whole number of batches of batch_size={batch_size}; "
                         f"pass e.g. {STEPS} x the batch size")
    if state is not None:
        state = copy.deepcopy(dict(state))
    ref = run_step(reference, model_factory, state, images, batch_size)
    cand = run_step(candidate, model_factory, state, images, batch_size)
    noise_diffs = [compare(ref, run_step(step, model_factory, state, images, batch_size)) for step in noise]
    if noise_diffs:
        worst_loss = max(noise_diffs, key=lambda d: d.loss)
        worst_update = max(noise_diffs, key=lambda d: d.update)
        noise_diff = Difference(worst_loss.loss, worst_update.update, worst_update.update_tensor)
    else:
        noise_diff = Difference(0.0, 0.0, "")
    tolerance = {"loss": max(noise_factor * noise_diff.loss, floor),
                 "update": max(noise_factor * noise_diff.update, floor)}
    diff = compare(ref, cand)
    notes = [] if noise_diffs else ["no noise path given: tolerance is the floor alone"]
    ok = diff.loss <= tolerance["loss"] and diff.update <= tolerance["update"]
    return Agreement(ok, diff, noise_diff, tolerance, ref.losses, cand.losses, notes)


# ---------------------------------------------------------------------------------------------
# Steps for the benchmark's two paths (the article's loop and the package's fit)
# ---------------------------------------------------------------------------------------------

def package_step(*, seed: int = 0, channels_last: bool = True, device: str | torch.device = "cpu",
                 lr: float = 1e-3, **fit_options) -> StepFn:
    """The package's real ``fit`` for a few steps: the images are the training set of one epoch.

    ``fit_options`` (e.g. ``amp``, ``compile``) are passed on to ``fit``.
    """
    from convae_utils.speed import Speed
    from convae_utils.training import fit

    def step(model: nn.Module, images: ImageSet, batch_size: int) -> list[float]:
        history = fit(model, images, images, num_epochs=1, batch_size=batch_size, lr=lr, seed=seed, device=device,
                      progress=False, speed=Speed(channels_last=channels_last, **fit_options))
        return history.train_batch_loss

    return step


def article_step(*, seed: int = 0, channels_last: bool = False, device: str | torch.device = "cpu") -> StepFn:
    """The article's loop (as the benchmark replays it) for one epoch of ``images``, in ``fit``'s batch order.

    ``channels_last=True`` is the same loop in another memory layout: another summation order, the
    noise reference for the article's path.
    """
    # The article's loop lives in the benchmark today (convae_utils/article.py after the refactor).
    from convae_utils.article import article_loader, article_train, as_article_model
    from convae_utils.training import epoch_order

    def step(model: nn.Module, images: ImageSet, batch_size: int) -> list[float]:
        model = as_article_model(model).to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        loader = article_loader(images, batch_size, epoch_order(len(images), seed, 0, "cpu").tolist())
        return article_train(model, loader, torch.device(device))

    return step
