r"""Schedules built from other schedules or from fixed points: piecewise constant, join,
warm-up, and per-epoch stepping."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from optjx import _state, _tree
from optjx.schedules import _checks as C
from optjx.schedules._checks import public
from optjx.schedules.decay import constant

Schedule = Callable[[jax.Array], jax.Array]


@public
def piecewise_constant(init_value: float, boundaries_and_scales: Mapping[int, float]) -> Schedule:
    """``init_value`` times every ``scale`` whose ``boundary <= count``.

    ``piecewise_constant(0.1, {30_000: 0.1, 60_000: 0.1, 90_000: 0.1})`` is the ResNet
    rule: divide by 10 at fixed points. The boundaries are *update counts*: milestones
    given in epochs need :func:`per_epoch` (or multiplying by the steps per epoch).
    """
    C.value("init_value", init_value)
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            "boundaries_and_scales must be a dict {boundary: scale}, got "
            f"{type(boundaries_and_scales).__name__}"
        )
    items = sorted(
        (C.integer("boundaries", boundary, minimum=0), C.value("scale", factor))
        for boundary, factor in boundaries_and_scales.items()
    )

    def schedule(count):
        k = C.as_float(count)
        value = _tree.default_float(init_value)
        for boundary, factor in items:
            value = jnp.where(k >= float(boundary), value * factor, value)
        return value

    return public(schedule)


def _shifted(count, start: int):
    """``count - start`` in the count's own type while that cannot overflow int32 (a
    user's schedule may expect an integer count), else as a float."""
    if start <= _state.INT32_MAX or isinstance(count, int):
        return count - start
    return C.as_float(count) - float(start)


@public
def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at count 0.

    ``boundaries`` has one entry fewer than ``schedules`` and increases strictly.
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("schedules must not be empty")
    for piece in schedules:
        if not callable(piece):
            raise TypeError(f"schedules must be functions count -> value, got {piece!r}")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have len(schedules) - 1 = {len(schedules) - 1} entries, "
            f"got {len(boundaries)}"
        )
    boundaries = [C.integer("boundaries", b, minimum=0) for b in boundaries]
    if any(a >= b for a, b in zip(boundaries[:-1], boundaries[1:], strict=True)):
        raise ValueError(f"boundaries must increase strictly, got {boundaries}")

    def schedule(count):
        k = C.as_float(count)
        value = _tree.default_float(schedules[0](count))
        for start, piece in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(
                k >= float(start), _tree.default_float(piece(_shifted(count, start))), value
            )
        return value

    return public(schedule)


@public
def warmup(schedule: Schedule | float, warmup_steps: int, *, init_value: float = 0.0) -> Schedule:
    """Linear warm-up from ``init_value`` to ``schedule(0)`` over ``warmup_steps``, then
    ``schedule`` restarted at 0 (``schedule(k - warmup_steps)``).

    ``warmup_steps=0`` returns the schedule unchanged. A number is a constant schedule.
    """
    base: Schedule = schedule if callable(schedule) else constant(C.value("schedule", schedule))
    warmup_steps = C.integer("warmup_steps", warmup_steps, minimum=0)
    C.value("init_value", init_value)
    if warmup_steps == 0:
        return base
    steps = float(warmup_steps)

    def ramp(count):
        a = jnp.minimum(C.as_float(count), steps) / steps
        return (1.0 - a) * init_value + a * _tree.default_float(base(jnp.zeros_like(count)))

    return join([ramp, base], [warmup_steps])


@public
def per_epoch(schedule: Schedule, steps_per_epoch: int) -> Schedule:
    r"""``schedule`` of the epoch index: ``eta_k = schedule(floor(k / steps_per_epoch))``.

    PyTorch's epoch schedulers (``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ...) are
    stepped once per epoch: during epoch ``e`` (0-based) the rate is the scheduler's value
    after ``e`` calls of ``scheduler.step()``. optjx evaluates a schedule at the number of
    *updates* applied, so a schedule written in epochs must be wrapped:
    ``per_epoch(piecewise_constant(0.1, {30: 0.1, 60: 0.1}), steps_per_epoch)`` is
    ``MultiStepLR(milestones=[30, 60], gamma=0.1)``. Without the wrapper the milestones
    fire after 30 and 60 *updates*, in the first epoch.

    Args:
      schedule: a function ``epoch -> value`` (it receives an integer epoch index: an
        int32/int64 array, or a Python int for a Python int count).
      steps_per_epoch: an int ``>= 1``, the updates in one epoch (``len(loader)``; with
        gradient accumulation, the optimizer steps per epoch).

    Not in optax or PyTorch as such (optax has no notion of epochs).
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a function epoch -> value, got {schedule!r}")
    period = C.steps("steps_per_epoch", steps_per_epoch)

    def epoch_schedule(count):
        if isinstance(count, int):
            return schedule(count // period)
        count = jnp.asarray(count)
        if jnp.issubdtype(count.dtype, jnp.integer) and period <= jnp.iinfo(count.dtype).max:
            # Counts are never negative, so integer floor division is the epoch index.
            return schedule(count // jnp.asarray(period, count.dtype))
        epoch = C.floor_div(C.as_float(count), period)
        return schedule(epoch.astype(jnp.int64 if epoch.dtype == jnp.float64 else jnp.int32))

    return public(epoch_schedule)
