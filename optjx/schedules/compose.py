r"""Schedules built from other schedules or from fixed points: piecewise constant, join,
warm-up, and per-epoch stepping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import jax.numpy as jnp

from optjx import _state, _tree
from optjx.schedules import _checks as C
from optjx.schedules._checks import public
from optjx.schedules.decay import constant
from optjx.typing import Schedule, ScheduleLike


@public
def piecewise_constant(init_value: float, boundaries_and_scales: Mapping[int, float]) -> Schedule:
    r"""``init_value`` multiplied by every scale whose boundary has been reached.

    $$
    \eta_k = \eta_0 \prod_{i:\ b_i \le k} s_i
    $$

    ``piecewise_constant(0.1, {30_000: 0.1, 60_000: 0.1, 90_000: 0.1})`` is the ResNet
    rule: divide by 10 at fixed points. The boundaries are **update counts**: milestones
    given in epochs need ``per_epoch`` (or multiplying by the steps per epoch).

    References:
      He, Zhang, Ren & Sun (2016), "Deep residual learning for image recognition",
      section 3.4 (the rate divided by 10 at fixed iterations).

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      boundaries_and_scales: a dict ``{boundary: scale}`` (required): each boundary
        $b_i$ an int $\ge 0$, each scale $s_i$ a finite number; the order does not
        matter. ``{}`` is a constant.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64).

    Raises:
      TypeError: ``boundaries_and_scales`` is not a mapping, a value is not a real
        number, or a boundary is not an int.
      ValueError: a value is NaN or infinite, or a boundary is negative.

    Differences from PyTorch and optax:
      ``optax.piecewise_constant_schedule(init, {b: s})`` computes the same.
      ``torch.optim.lr_scheduler.MultiStepLR(milestones=[30, 60], gamma=g)`` stepped
      per epoch is ``per_epoch(piecewise_constant(lr, {30: g, 60: g}),
      steps_per_epoch)``.

    Examples:
      >>> lr = optjx.schedules.piecewise_constant(0.1, {30_000: 0.1, 60_000: 0.1})
      >>> round(float(lr(45_000)), 6)
      0.01
    """
    C.value("init_value", init_value)
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            "boundaries_and_scales must be a dict {boundary: scale}, got "
            f"{type(boundaries_and_scales).__name__}"
        )
    items = sorted(
        (C.step("boundaries", boundary), C.value("scale", factor))
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
def join(schedules: Sequence[ScheduleLike], boundaries: Sequence[int]) -> Schedule:
    r"""Run ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at count 0.

    $$
    \eta_k = s_i(k - b_i) \quad \text{for } b_i \le k < b_{i+1}, \qquad b_0 = 0
    $$

    Args:
      schedules: a non-empty list of schedules ``count -> value`` (required).
      boundaries: ``len(schedules) - 1`` ints $\ge 0$, strictly increasing (required):
        where each schedule after the first takes over.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64).

    Raises:
      TypeError: an entry of ``schedules`` is not a function, or of ``boundaries`` not an
        int.
      ValueError: ``schedules`` is empty, ``boundaries`` has the wrong length, is not
        strictly increasing, or holds a negative number.

    Differences from PyTorch and optax:
      ``optax.join_schedules(schedules, boundaries)`` computes the same;
      ``torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers, milestones)`` is
      the PyTorch counterpart (stepped per epoch or per update as the loop decides).

    Examples:
      >>> S = optjx.schedules
      >>> lr = S.join([S.linear(0.0, 0.1, 100), S.constant(0.1), S.exponential(0.1, 0.1, 400)],
      ...             [100, 500])
    """
    schedules = list(schedules)
    if not schedules:
        raise ValueError("schedules must not be empty")
    for piece in schedules:
        if not callable(piece):
            raise TypeError(f"schedules must be functions count -> value, got {piece!r}")
    boundaries = C.increasing_steps(
        "boundaries", boundaries, "schedules", len(schedules), minimum=0
    )

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
def warmup(
    schedule: ScheduleLike | float, warmup_steps: int, *, init_value: float = 0.0
) -> Schedule:
    r"""Linear warm-up from ``init_value`` to ``schedule(0)``, then ``schedule`` restarted.

    $$
    \eta_k = \begin{cases}
      \big(1 - \tfrac{k}{W}\big)\,\eta_{init} + \tfrac{k}{W}\, s(0) & k < W \\
      s(k - W) & k \ge W
    \end{cases}
    $$

    References:
      Goyal et al. (2017), "Accurate, large minibatch SGD: training ImageNet in 1 hour",
      section 2.2 (gradual linear warm-up).

    Args:
      schedule: $s$, the schedule after the warm-up (required); a number is a constant
        schedule.
      warmup_steps: $W$, an int $\ge 0$ (required); 0 returns ``schedule`` unchanged.
      init_value: $\eta_{init}$, a finite number (default 0): the value at count 0.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64).

    Raises:
      TypeError: ``schedule`` or ``init_value`` is neither a function nor a real number,
        or ``warmup_steps`` is not an int.
      ValueError: a value is NaN or infinite, or ``warmup_steps`` is negative.

    Differences from PyTorch and optax:
      optax has ``warmup_cosine_decay_schedule`` and friends, one per decay; here any
      schedule takes a warm-up. PyTorch: ``SequentialLR([LinearLR(...), ...])``.
      ``OneCycleLR``'s warm-up is a cosine, this one is linear.

    Examples:
      >>> S = optjx.schedules
      >>> lr = S.warmup(S.cosine(3e-4, 9_500), 500)            # 10_000 steps in all
      >>> lr = S.warmup(0.1, 250, init_value=0.02)             # then constant
    """
    if callable(schedule):
        base = cast(Schedule, schedule)  # a function of the user's is used as given
    else:
        base = constant(C.value("schedule", schedule))
    warmup_steps = C.step("warmup_steps", warmup_steps)
    C.value("init_value", init_value)
    if warmup_steps == 0:
        return base
    steps = float(warmup_steps)

    def ramp(count):
        a = jnp.minimum(C.as_float(count), steps) / steps
        return (1.0 - a) * init_value + a * _tree.default_float(base(jnp.zeros_like(count)))

    return join([ramp, base], [warmup_steps])


@public
def per_epoch(schedule: ScheduleLike, steps_per_epoch: int) -> Schedule:
    r"""A schedule written in epochs, evaluated at the epoch index of the update count.

    $$
    \eta_k = s\big(\lfloor k / E \rfloor\big)
    $$

    PyTorch's epoch schedulers (``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ...) are
    stepped once per epoch: during epoch $e$ (0-based) the rate is the scheduler's
    value after $e$ calls of ``scheduler.step()``. optjx evaluates a schedule at the
    number of *updates* applied, so a schedule written in epochs must be wrapped:
    ``per_epoch(piecewise_constant(0.1, {30: 0.1, 60: 0.1}), steps_per_epoch)`` is
    ``MultiStepLR(milestones=[30, 60], gamma=0.1)``. Without the wrapper the milestones
    fire after 30 and 60 *updates*, in the first epoch: the epoch trap. The floor is
    exact at multiples of $E$ for any count (checked against torch's ``MultiStepLR``
    and ``StepLR``).

    References:
      PyTorch documentation, ``torch.optim``, "How to adjust learning rate" (schedulers
      stepped once per epoch, after the optimizer).

    Args:
      schedule: $s$, a function ``epoch -> value`` (required). It receives an integer
        epoch index: an int32/int64 array, or a Python int for a Python int count.
      steps_per_epoch: $E$, an int $\ge 1$ (required): the updates in one epoch
        (``len(loader)``; with gradient accumulation, the optimizer steps per epoch).

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64).

    Raises:
      TypeError: ``schedule`` is not a function, or ``steps_per_epoch`` not an int.
      ValueError: ``steps_per_epoch`` is not positive.

    Differences from PyTorch and optax:
      Not in optax, which has no notion of epochs. PyTorch steps the scheduler by hand
      once per epoch; here the epoch is computed from the update count, so the schedule
      stays a pure function of the optimizer state (checkpoints, ``jit``, ``scan``).

    Examples:
      >>> S = optjx.schedules
      >>> lr = S.per_epoch(S.piecewise_constant(0.1, {30: 0.1, 60: 0.1}), 500)   # MultiStepLR
      >>> round(float(lr(30 * 500 - 1)), 6), round(float(lr(30 * 500)), 6)
      (0.1, 0.01)
      >>> step_lr = S.per_epoch(S.exponential(0.1, 0.5, 10, staircase=True), 500)  # StepLR
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a function epoch -> value, got {schedule!r}")
    period = C.steps("steps_per_epoch", steps_per_epoch)

    def epoch_schedule(count):
        if isinstance(count, int):  # stays a Python int: exact past int32
            return schedule(count // period)  # type: ignore[arg-type]
        count = jnp.asarray(count)
        if jnp.issubdtype(count.dtype, jnp.integer) and period <= jnp.iinfo(count.dtype).max:
            # Counts are never negative, so integer floor division is the epoch index.
            return schedule(count // jnp.asarray(period, count.dtype))
        epoch = C.floor_div(C.as_float(count), period)
        return schedule(epoch.astype(jnp.int64 if epoch.dtype == jnp.float64 else jnp.int32))

    return public(epoch_schedule)
