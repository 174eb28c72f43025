r"""Schedules given by one formula of the count: constant, linear, polynomial and cosine
(those that fall by a rate or a power of the count are in ``rates.py``).

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
from optjx.typing import Schedule

_POSITIVE = _hyper.POSITIVE
_RATE = _hyper.Range(low=0.0, low_inclusive=False, high=math.inf, high_inclusive=False)


@public
def constant(value: float) -> Schedule:
    r"""The same value at every step: $\eta_k = v$.

    Args:
      value: $v$, a finite real number or array (required).

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: ``value`` is not a real number or array (a string, ``None``, a list).
      ValueError: ``value`` is NaN or infinite.

    Differences from PyTorch and optax:
      ``optax.constant_schedule(v)``; PyTorch: no scheduler (or ``ConstantLR(factor=1)``).
      A plain number works as well anywhere a schedule is accepted; this is for code
      that wants a function.

    Examples:
      >>> lr = optjx.schedules.constant(0.1)
      >>> round(float(lr(1_000)), 6)
      0.1
    """
    C.value("value", value)
    return public(lambda count: jnp.broadcast_to(_tree.default_float(value), jnp.shape(count)))


@public
def linear(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    r"""Linear interpolation from ``init_value`` to ``end_value``, then constant.

    $$
    \eta_k = (1 - a_k)\,\eta_0 + a_k\,\eta_\tau, \qquad
    a_k = \min(\max(k - b, 0), \tau) / \tau
    $$

    With $\eta_\tau = \eta_0 / 100$ this is the rule of Goodfellow et al. (2016),
    section 8.3.1: decay linearly until step $\tau$, then hold. With
    $\eta_\tau > \eta_0$ it is a ramp up (momentum annealed from 0.5 to 0.9:
    ``linear(0.5, 0.9, 1000)``). $\eta_\tau$ is held exactly from $k - b = \tau$ on.

    References:
      Goodfellow, Bengio & Courville (2016), *Deep Learning*, section 8.3.1.

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      end_value: $\eta_\tau$, a finite number or array (required).
      transition_steps: $\tau$, an int $\ge 1$ (required): the length of the ramp.
      transition_begin: $b$, an int $\ge 0$ (default 0): ``init_value`` is held for the
        first $b$ counts.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: a value argument is not a real number or array, or a step argument
        not an int.
      ValueError: a value is NaN or infinite, or a step argument is out of range.

    Differences from PyTorch and optax:
      ``optax.linear_schedule(init, end, tau, b)`` computes the same (it also accepts
      ``transition_steps <= 0``; optjx raises). ``torch.optim.lr_scheduler.LinearLR(
      start_factor=a, end_factor=c, total_iters=n)`` is ``linear(a * lr, c * lr, n)``,
      in factors of the optimizer's ``lr``; wrap in ``per_epoch`` if it is stepped
      per epoch.

    Examples:
      >>> lr = optjx.schedules.linear(0.1, 0.001, 10_000)       # Goodfellow et al.'s rule
      >>> momentum = optjx.schedules.linear(0.5, 0.9, 1_000)    # annealed momentum
      >>> tx = optjx.sgd(lr, momentum=momentum)
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
) -> Schedule:
    r"""Polynomial decay from ``init_value`` to ``end_value``, then constant.

    $$
    \eta_k = (\eta_0 - \eta_\tau)\,(1 - a_k)^p + \eta_\tau, \qquad
    a_k = \min(\max(k - b, 0), \tau) / \tau
    $$

    $p = 1$ is ``linear``; $p = 2$ decays fast, then flattens; $p = 0.5$ the
    reverse. $\eta_\tau$ is held exactly from $k - b = \tau$ on.

    References:
      Chen, Papandreou, Kokkinos, Murphy & Yuille (2018), "DeepLab: semantic image
      segmentation with deep convolutional nets, atrous convolution, and fully connected
      CRFs" (the "poly" policy, $p = 0.9$, $\eta_\tau = 0$).

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      end_value: $\eta_\tau$, a finite number or array (required).
      power: $p > 0$, finite (required).
      transition_steps: $\tau$, an int $\ge 1$ (required).
      transition_begin: $b$, an int $\ge 0$ (default 0): ``init_value`` is held for the
        first $b$ counts.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: a value argument is not a real number or array, or a step argument
        not an int.
      ValueError: a value is NaN or infinite, ``power <= 0``, or a step argument is out
        of range.

    Differences from PyTorch and optax:
      ``torch.optim.lr_scheduler.PolynomialLR(total_iters=tau, power=p)`` is
      ``polynomial(lr, 0.0, p, tau)`` (stepped per update; wrap in ``per_epoch``
      for a per-epoch scheduler). ``optax.polynomial_schedule`` computes the same; it
      accepts ``transition_steps <= 0`` (a constant) and any power, where optjx raises
      ``ValueError``.

    Examples:
      >>> lr = optjx.schedules.polynomial(0.1, 0.001, 2.0, 10_000)
      >>> round(float(lr(5_000)), 6)    # (0.1 - 0.001) * 0.5**2 + 0.001
      0.02575
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
) -> Schedule:
    r"""Cosine decay (Loshchilov & Hutter 2017, without restarts), held at the end.

    $$
    c_k = \tfrac12\Big(1 + \cos\big(\pi \min(\max(k - b, 0), T)/T\big)\Big), \qquad
    \eta_k = \eta_0\big(\alpha + (1 - \alpha)\, c_k^{\,p}\big)
    \ \text{ or } \ \eta_T + (\eta_0 - \eta_T)\, c_k^{\,p}
    $$

    The first form with ``alpha``, the second with ``end_value``.

    References:
      Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm
      restarts", equation 5.

    Args:
      init_value: $\eta_0$, a finite number or array (required).
      decay_steps: $T$, an int $\ge 1$ (required).
      alpha: $\alpha \in [0, 1]$ (default 0): the final value as a fraction of
        ``init_value``.
      end_value: the final value $\eta_T$ itself (default ``None``: use ``alpha``), a
        finite number the decay reaches at $T$; give it or ``alpha``, not both.
      exponent: $p > 0$ (default 1): $c_k^p$, as optax's ``exponent``; $p > 1$ decays
        earlier.
      transition_begin: $b$, an int $\ge 0$ (default 0): ``init_value`` is held that
        long first.

    Returns:
      A schedule: a jittable function ``count -> value`` of the number of updates
      already applied (an int or an integer array, traced too), with values at JAX's
      default float precision (float64 under x64) and the shape of ``count``.

    Raises:
      TypeError: a value argument is not a real number or array, or a step argument
        not an int.
      ValueError: a value is NaN, infinite or out of range, a step argument is out of
        range, or both ``alpha`` (non-zero) and ``end_value`` are given.

    Differences from PyTorch and optax:
      optax's ``cosine_decay_schedule(init, T, alpha, exponent)`` is the first form;
      ``warmup_cosine_decay_schedule(0, init, 0, T, end_value, exponent)`` the second.
      ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=m)`` is
      ``cosine(lr, T, end_value=m)`` up to $T$; after $T$ torch climbs back up, optjx
      holds.

    Examples:
      >>> lr = optjx.schedules.cosine(0.1, 10_000, end_value=1e-4, transition_begin=500)
      >>> tx = optjx.sgd(optjx.schedules.warmup(optjx.schedules.cosine(0.1, 9_500), 500))
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
