r"""Schedules given by one formula of the count: constant, linear, polynomial, cosine,
exponential, inverse square root and inverse time.

Every decaying schedule takes ``transition_begin`` (default 0): the value is held at
``init_value`` for the first ``transition_begin`` counts, and the formula then runs on
``k - transition_begin``, as optax's schedules of the same name do.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from optjx import _hyper, _tree
from optjx.schedules import _checks as C
from optjx.schedules._checks import public

_POSITIVE = _hyper.POSITIVE
_RATE = _hyper.Range(low=0.0, low_inclusive=False, high=math.inf, high_inclusive=False)


@public
def constant(value: float):
    """``value`` at every step."""
    C.value("value", value)
    return public(lambda count: jnp.broadcast_to(_tree.default_float(value), jnp.shape(count)))


@public
def linear(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0):
    r"""Linear interpolation, then constant.

    .. math:: \eta_k = (1 - a) \eta_0 + a \eta_\tau, \quad
              a = \min(\max(k - b, 0), \tau) / \tau

    With ``end_value = init_value / 100`` this is the rule of Goodfellow et al. (2016),
    section 8.3.1: decay linearly until step ``tau``, then hold. ``transition_begin``
    (``b``) holds ``init_value`` first (optax's ``linear_schedule``).
    """
    C.value("init_value", init_value)
    C.value("end_value", end_value)
    tau = float(C.steps("transition_steps", transition_steps))
    start = C.begin(transition_begin)

    def schedule(count):
        k = C.delayed(count, start)
        a = jnp.minimum(k, tau) / tau
        ramp = (1.0 - a) * init_value + a * end_value
        # XLA turns the division into a multiply by 1/tau and fuses 1 - a into an FMA, so
        # at k >= tau the ramp can miss end_value by an ulp: a decay to 0 would hold at
        # -1.5e-8 in float32, a tiny negative learning rate. Hold end_value exactly.
        return jnp.where(k >= tau, _tree.default_float(end_value), ramp)

    return public(schedule)


@public
def polynomial(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
):
    r"""Polynomial decay from ``init_value`` to ``end_value``, then constant.

    .. math:: \eta_k = (\eta_0 - \eta_\tau)\,(1 - a)^p + \eta_\tau, \quad
              a = \min(\max(k - b, 0), \tau) / \tau

    ``power`` (``p > 0``): 1 is :func:`linear`, 2 decays fast then flattens, 0.5 the
    reverse. ``torch.optim.lr_scheduler.PolynomialLR(total_iters=tau, power=p)`` is
    ``polynomial(lr, 0.0, p, tau)``. optax's ``polynomial_schedule`` computes the same;
    it accepts ``transition_steps <= 0`` (a constant) and any power, optjx raises
    ``ValueError`` instead. Example: ``polynomial(0.1, 0.001, 2.0, 10_000)``.
    """
    C.value("init_value", init_value)
    C.value("end_value", end_value)
    C.value("power", power, _POSITIVE)
    tau = float(C.steps("transition_steps", transition_steps))
    start = C.begin(transition_begin)

    def schedule(count):
        k = C.delayed(count, start)
        remaining = 1.0 - jnp.minimum(k, tau) / tau
        value = (init_value - end_value) * remaining**power + end_value
        # Held exactly (see linear): the reciprocal multiply can leave remaining at 1 ulp.
        return jnp.where(k >= tau, _tree.default_float(end_value), value)

    return public(schedule)


@public
def cosine(
    init_value: float,
    decay_steps: int,
    alpha: float = 0.0,
    *,
    end_value: float | None = None,
    exponent: float = 1.0,
    transition_begin: int = 0,
):
    r"""Cosine decay (Loshchilov & Hutter 2017, without restarts), held at the end.

    .. math:: c_k = \tfrac12\big(1 + \cos(\pi \min(\max(k - b, 0), T)/T)\big), \qquad
              \eta_k = \eta_0\big(\alpha + (1 - \alpha) c_k^{\,p}\big)
              \ \text{ or } \ \eta_T + (\eta_0 - \eta_T) c_k^{\,p}

    Args:
      init_value: ``eta_0``, a finite number or array.
      decay_steps: ``T``, an int ``>= 1``.
      alpha: in ``[0, 1]``: the final value as a fraction of ``init_value``.
      end_value: the final value ``eta_T`` itself (the second form), a floor the decay
        reaches at ``T``; give it or ``alpha``, not both.
      exponent: ``p > 0``; ``c_k ** p`` (optax's ``exponent``): ``p > 1`` decays earlier.
      transition_begin: ``b``, an int ``>= 0``: ``init_value`` is held that long first.

    optax's ``cosine_decay_schedule(init, T, alpha, exponent)`` is the first form;
    ``warmup_cosine_decay_schedule(0, init, 0, T, end_value, exponent)`` the second.
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=m)`` is
    ``cosine(lr, T, end_value=m)`` up to ``T`` (torch goes back up after ``T``; optjx
    holds). Example: ``cosine(0.1, 10_000, end_value=1e-4, transition_begin=500)``.
    """
    C.value("init_value", init_value)
    T = float(C.steps("decay_steps", decay_steps))
    C.value("alpha", alpha, _hyper.UNIT)
    C.finite_or_none("end_value", end_value)
    C.value("exponent", exponent, _POSITIVE)
    start = C.begin(transition_begin)
    if end_value is not None and not _hyper.is_python_zero(alpha):
        raise ValueError(
            f"give alpha or end_value, not both: alpha={alpha!r}, end_value={end_value!r}"
        )
    plain = C.is_one(exponent)

    def schedule(count):
        progress = jnp.minimum(C.delayed(count, start), T) / T
        c = 0.5 * (1.0 + jnp.cos(math.pi * progress))
        c = c if plain else c**exponent
        if end_value is None:
            return init_value * (alpha + (1.0 - alpha) * c)
        return end_value + (init_value - end_value) * c

    return public(schedule)


@public
def inverse_sqrt(init_value: float, *, transition_begin: int = 0):
    r"""``eta_0 / sqrt(k - b + 1)`` (``eta_0`` until ``b``): the classic rate for convex
    stochastic problems."""
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
):
    r"""``eta_0 * decay_rate ** (j / T)`` with ``j = max(k - b, 0)``, or ``** floor(j / T)``
    with ``staircase``.

    Args:
      init_value: ``eta_0``, finite.
      decay_rate: in ``(0, inf)``: below 1 decays, above 1 grows.
      transition_steps: ``T``, an int ``>= 1``.
      staircase: step the exponent at multiples of ``T`` only.
      transition_begin: ``b``, an int ``>= 0``: ``init_value`` is held that long first.
      end_value: a floor when ``decay_rate < 1``, a ceiling when ``decay_rate >= 1``
        (optax's rule); ``None`` for neither.

    optax's ``exponential_decay(init, T, rate, b, staircase, end_value)`` computes the
    same (note its argument order); it accepts a rate of 0 (a constant), optjx raises.
    ``torch.optim.lr_scheduler.ExponentialLR(gamma)`` stepped per epoch is
    ``per_epoch(exponential(lr, gamma, 1), steps_per_epoch)``.
    Example: ``exponential(0.1, 0.5, 1000, end_value=1e-4)``.
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
):
    r"""``eta_0 / (1 + decay_rate * j / T)`` with ``j = max(k - b, 0)`` (``floor(j / T)``
    with ``staircase``).

    The Robbins & Monro (1951) rate: ``sum eta_k = inf`` and ``sum eta_k^2 < inf``, the
    conditions under which SGD converges (Goodfellow et al. 2016, section 8.3.1); the
    ``inverse_time_decay`` of TensorFlow. Not in optax or PyTorch (there, a
    ``LambdaLR(lambda e: 1 / (1 + r e))``).

    Args:
      init_value: ``eta_0``, finite.
      decay_rate: ``>= 0`` (0 is a constant).
      transition_steps: ``T``, an int ``>= 1``: the count is measured in units of ``T``.
      staircase: decay at multiples of ``T`` only.
      transition_begin: ``b``, an int ``>= 0``: ``init_value`` is held that long first.

    Example: ``inverse_time(0.1, 1.0, 1000)`` halves the rate after 1000 steps.
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
