r"""Schedules that fall with a rate or a power of the count: inverse square root,
exponential and inverse time (the Robbins-Monro rate).

Each takes ``transition_begin`` (default 0): the value is held at ``init_value`` for the
first ``transition_begin`` counts, and the formula then runs on ``k - transition_begin``,
as optax's schedules of the same name do.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from optjx import _hyper, _tree
from optjx.schedules import _checks as C
from optjx.schedules._checks import public
from optjx.typing import Schedule

_POSITIVE = _hyper.POSITIVE
_RATE = _hyper.Range(low=0.0, low_inclusive=False, high=math.inf, high_inclusive=False)


@public
def inverse_sqrt(init_value: float, *, transition_begin: int = 0) -> Schedule:
    r"""The inverse square root of the count, the classic rate for convex problems.

    $$
    \eta_k = \frac{\eta_0}{\sqrt{\max(k - b, 0) + 1}}
    $$

    References:
      Nemirovski, Juditsky, Lan & Shapiro (2009), "Robust stochastic approximation
      approach to stochastic programming" ($\eta \propto 1/\sqrt{k}$ for convex
      problems).

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      transition_begin: $b$, an int $\ge 0$ (default 0): ``init_value`` is held that
        long first.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: ``init_value`` is not a real number or array, or ``transition_begin``
        not an int.
      ValueError: ``init_value`` is NaN or infinite, or ``transition_begin`` is negative.

    Differences from PyTorch and optax:
      Neither has it as such: PyTorch ``LambdaLR(lambda k: 1 / math.sqrt(k + 1))``
      stepped per update; optax ``lambda k: v / jnp.sqrt(k + 1)``.

    Examples:
      >>> lr = optjx.schedules.inverse_sqrt(0.1)
      >>> round(float(lr(3)), 6)
      0.05
    """
    C.value("init_value", init_value)
    start = C.begin(transition_begin)
    return public(lambda count: init_value / jnp.sqrt(C.delayed(count, start) + 1.0))


@public
def exponential(
    init_value: float,
    decay_rate: float,
    transition_steps: int,
    *,
    staircase: bool = False,
    transition_begin: int = 0,
    end_value: float | None = None,
) -> Schedule:
    r"""Exponential decay (or growth), continuous or in steps.

    $$
    \eta_k = \eta_0\, r^{\,j / T} \quad\text{or, with staircase,}\quad
    \eta_0\, r^{\lfloor j / T \rfloor}, \qquad j = \max(k - b, 0)
    $$

    then clipped at ``end_value`` when one is given.

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      decay_rate: $r \in (0, \infty)$ (required): below 1 decays, above 1 grows.
      transition_steps: $T$, an int $\ge 1$ (required): the rate is multiplied by $r$
        every $T$ counts.
      staircase: step the exponent at multiples of $T$ only (default ``False``).
      transition_begin: $b$, an int $\ge 0$ (default 0): ``init_value`` is held that
        long first.
      end_value: a finite floor when $r < 1$, a ceiling when $r \ge 1$, as optax's rule
        (default ``None``: neither).

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: a value argument is not a real number or array, or a step argument
        not an int.
      ValueError: a value is NaN or infinite, ``decay_rate <= 0``, or a step argument is
        out of range.

    Differences from PyTorch and optax:
      ``optax.exponential_decay(init, T, rate, b, staircase, end_value)`` computes the
      same (note its argument order); it accepts a rate of 0 (a constant), optjx raises.
      ``torch.optim.lr_scheduler.ExponentialLR(gamma)`` stepped per epoch is
      ``per_epoch(exponential(lr, gamma, 1), steps_per_epoch)``; ``StepLR(step_size=s,
      gamma=g)`` stepped per epoch is ``per_epoch(exponential(lr, g, s,
      staircase=True), steps_per_epoch)``.

    Examples:
      >>> lr = optjx.schedules.exponential(0.1, 0.5, 1000, end_value=1e-4)
      >>> round(float(lr(2000)), 6)     # halved twice
      0.025
    """
    C.value("init_value", init_value)
    C.value("decay_rate", decay_rate, _RATE)
    T = C.steps("transition_steps", transition_steps)
    start = C.begin(transition_begin)
    C.finite_or_none("end_value", end_value)

    def schedule(count):
        k = C.delayed(count, start)
        exponent = C.floor_div(k, T) if staircase else k / float(T)
        rate = _tree.default_float(decay_rate)
        value = init_value * jnp.power(rate, exponent)
        if end_value is None:
            return value
        return jnp.where(rate < 1.0, jnp.maximum(value, end_value), jnp.minimum(value, end_value))

    return public(schedule)


@public
def inverse_time(
    init_value: float,
    decay_rate: float,
    transition_steps: int = 1,
    *,
    staircase: bool = False,
    transition_begin: int = 0,
) -> Schedule:
    r"""Inverse-time decay, the Robbins-Monro rate.

    $$
    \eta_k = \frac{\eta_0}{1 + r\, j / T} \quad\text{or, with staircase,}\quad
    \frac{\eta_0}{1 + r \lfloor j / T \rfloor}, \qquad j = \max(k - b, 0)
    $$

    $\sum_k \eta_k = \infty$ and $\sum_k \eta_k^2 < \infty$: the conditions under which
    SGD converges (Goodfellow et al. 2016, section 8.3.1).

    References:
      Robbins & Monro (1951), "A stochastic approximation method"; Goodfellow, Bengio &
      Courville (2016), *Deep Learning*, section 8.3.1.

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      decay_rate: $r \ge 0$, finite (required); 0 is a constant.
      transition_steps: $T$, an int $\ge 1$ (default 1): the count is measured in units
        of $T$.
      staircase: decay at multiples of $T$ only (default ``False``).
      transition_begin: $b$, an int $\ge 0$ (default 0): ``init_value`` is held that
        long first.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: a value argument is not a real number or array, or a step argument
        not an int.
      ValueError: a value is NaN or infinite, ``decay_rate < 0``, or a step argument is
        out of range.

    Differences from PyTorch and optax:
      Not in either: PyTorch writes it ``LambdaLR(lambda k: 1 / (1 + r * k / T))``,
      optax a lambda. TensorFlow's ``InverseTimeDecay(init, T, r, staircase)`` is the
      same rule.

    Examples:
      >>> lr = optjx.schedules.inverse_time(0.1, 1.0, 1000)
      >>> round(float(lr(1000)), 6)     # halved after 1000 steps
      0.05
    """
    C.value("init_value", init_value)
    C.value("decay_rate", decay_rate, _hyper.NONNEGATIVE)
    T = C.steps("transition_steps", transition_steps)
    start = C.begin(transition_begin)

    def schedule(count):
        k = C.delayed(count, start)
        units = C.floor_div(k, T) if staircase else k / float(T)
        return init_value / (1.0 + _tree.default_float(decay_rate) * units)

    return public(schedule)
