r"""``ExponentialLR``, ``StepLR`` and ``MultiStepLR``: the base rate times a power of
``gamma``.

Evaluated at the number of ``scheduler.step()`` calls already made (wrap in
``per_epoch`` when torch steps the scheduler once per epoch).
"""

from __future__ import annotations

from collections.abc import Iterable

import jax.numpy as jnp

from optjx import _hyper
from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule


@public
def exponential_lr(lr: float, gamma: float) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.ExponentialLR``: multiplied by ``gamma`` every step.

    $$
    \eta_k = \eta_0\, \gamma^{k}
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      gamma: $\gamma \ge 0$, finite (required).

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: a value argument is not a real number or array.
      ValueError: a value is NaN, infinite or negative.

    Differences from PyTorch and optax:
      torch multiplies the rate by $\gamma$ at each ``step()``; the power is the same
      up to rounding (golden-tested to 1e-12). ``exponential(lr, gamma, 1)`` computes
      the same rates. optax: ``exponential_decay(lr, 1, gamma)``.

    Examples:
      >>> lr = optjx.schedules.exponential_lr(0.1, gamma=0.5)
      >>> round(float(lr(3)), 6)
      0.0125
    """
    T.rate("lr", lr)
    C.value("gamma", gamma, _hyper.NONNEGATIVE)
    return T.TorchSchedule("ExponentialLR", lr, factor=lambda count: gamma ** C.as_float(count))


@public
def step_lr(lr: float, step_size: int, gamma: float = 0.1) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.StepLR``: multiplied by ``gamma`` every ``step_size``
    steps.

    $$
    \eta_k = \eta_0\, \gamma^{\lfloor k / s \rfloor}
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      step_size: $s$, an int $\ge 1$ (required).
      gamma: $\gamma \ge 0$, finite (default 0.1).

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: a value argument is not a real number or array, or ``step_size`` is
        not an int.
      ValueError: a value is out of range, or ``step_size`` is not positive.

    Differences from PyTorch and optax:
      The same rates as torch (golden-tested to 1e-12); the floor is exact at
      multiples of $s$ for any count. ``exponential(lr, gamma, s, staircase=True)``
      computes the same rates. optax: ``exponential_decay(lr, s, gamma,
      staircase=True)``.

    Examples:
      >>> lr = optjx.schedules.per_epoch(optjx.schedules.step_lr(0.1, 30), 500)
      >>> round(float(lr(30 * 500)), 6)      # StepLR(step_size=30) stepped per epoch
      0.01
    """
    T.rate("lr", lr)
    size = C.steps("step_size", step_size)
    C.value("gamma", gamma, _hyper.NONNEGATIVE)

    def scale(count):
        return gamma ** C.floor_div(C.as_float(count), size)

    return T.TorchSchedule("StepLR", lr, factor=scale)


@public
def multi_step_lr(lr: float, milestones: Iterable[int], gamma: float = 0.1) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.MultiStepLR``: multiplied by ``gamma`` at each
    milestone.

    $$
    \eta_k = \eta_0\, \gamma^{\#\{i:\ m_i \le k\}}
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      milestones: an iterable of ints $m_i \ge 0$ in any order (required); a repeated
        milestone counts as often as it is given, as in torch.
      gamma: $\gamma \ge 0$, finite (default 0.1).

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: ``milestones`` is not an iterable, a milestone is not an int, or a
        value argument is not a real number.
      ValueError: a value is out of range, or a milestone is negative.

    Differences from PyTorch and optax:
      The same rates as torch (golden-tested to 1e-12). optax:
      ``piecewise_constant_schedule(lr, {m: gamma for m in milestones})`` (no repeated
      milestones); optjx: also ``piecewise_constant``.

    Examples:
      >>> lr = optjx.schedules.multi_step_lr(0.1, milestones=[30, 80], gamma=0.1)
      >>> [round(float(lr(k)), 6) for k in (29, 30, 80)]
      [0.1, 0.01, 0.001]
    """
    T.rate("lr", lr)
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
        raise TypeError(f"milestones must be an iterable of ints, got {milestones!r}")
    points = sorted(C.step("milestones", m) for m in milestones)
    C.value("gamma", gamma, _hyper.NONNEGATIVE)

    def scale(count):
        k = C.as_float(count)
        passed = sum((jnp.where(k >= float(m), 1.0, 0.0) for m in points), jnp.zeros_like(k))
        return gamma**passed

    return T.TorchSchedule("MultiStepLR", lr, factor=scale)
