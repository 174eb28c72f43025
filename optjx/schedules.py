r"""Schedules: jittable functions ``count -> value``, evaluated at the number of updates
already applied (0 on the first update).

Any float hyperparameter of any optjx transform accepts one of these (or any function
of the same shape): learning rates, momentum (the 0.5 -> 0.9 annealing of the course
notes is ``linear(0.5, 0.9, 1000)``), betas, weight decay. Values are computed at JAX's
default float precision (float64 when x64 is enabled). The count is converted to a
float first, so counts past $2^{31}$ stay finite.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from optjx import _tree

Schedule = Callable[[jax.Array], jax.Array]


def _integer(name: str, value, *, minimum: int) -> int:
    """``value`` as a Python int. NumPy integers are accepted (step counts are often
    computed with NumPy); bools and floats are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    return int(value)


def _positive_steps(name: str, steps) -> int:
    return _integer(name, steps, minimum=1)


def _finite(name: str, value) -> None:
    # numbers.Real covers NumPy floating scalars too (np.float32 is not a Python float).
    if isinstance(value, numbers.Real) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def constant(value: float) -> Schedule:
    r"""``value`` at every step.

    Args:
      value: any finite number.

    Returns:
      A schedule ``count -> value``.
    """
    _finite("value", value)
    return lambda count: jnp.broadcast_to(_tree.default_float(value), jnp.shape(count))


def linear(init_value: float, end_value: float, transition_steps: int) -> Schedule:
    r"""Linear interpolation from ``init_value`` to ``end_value``, then constant.

    $$
    \eta_k = (1 - a)\,\eta_0 + a\,\eta_\tau, \qquad a = \min(k, \tau) / \tau
    $$

    With ``end_value = init_value / 100`` this is the rule of Goodfellow et al. (2016),
    section 8.3.1: decay linearly until step $\tau$, then hold.

    Args:
      init_value: $\eta_0$, finite.
      end_value: $\eta_\tau$, finite.
      transition_steps: $\tau$, an int $\ge 1$.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> momentum = optjx.schedules.linear(0.5, 0.9, 1000)
    """
    _finite("init_value", init_value)
    _finite("end_value", end_value)
    transition_steps = _positive_steps("transition_steps", transition_steps)

    def schedule(count):
        k = _tree.default_float(count)
        a = jnp.minimum(k, transition_steps) / transition_steps
        ramp = (1.0 - a) * init_value + a * end_value
        # XLA turns the division into a multiply by 1/tau and fuses 1 - a into an FMA, so
        # at k >= tau the ramp can miss end_value by an ulp: a decay to 0 would hold at
        # -1.5e-8 in float32, a tiny negative learning rate. Hold end_value exactly.
        return jnp.where(k >= transition_steps, _tree.default_float(end_value), ramp)

    return schedule


def cosine(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    r"""Cosine decay, without restarts, held at the end.

    $$
    \eta_k = \eta_0 \Big(\alpha + (1 - \alpha)\,\frac{1 + \cos(\pi \min(k, T)/T)}{2}\Big)
    $$

    References:
      Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm restarts".

    Args:
      init_value: $\eta_0$, finite.
      decay_steps: $T$, an int $\ge 1$.
      alpha: the final value as a fraction of ``init_value`` (default 0).

    Returns:
      A schedule ``count -> value``.

    Differences from PyTorch and optax:
      ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=alpha * lr)`` stepped
      once per update; ``optax.cosine_decay_schedule``.

    Examples:
      >>> lr = optjx.schedules.cosine(1e-3, 10_000, alpha=0.01)
    """
    _finite("init_value", init_value)
    decay_steps = _positive_steps("decay_steps", decay_steps)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0.0, 1.0], got {alpha!r}")

    def schedule(count):
        progress = jnp.minimum(_tree.default_float(count), decay_steps) / decay_steps
        return init_value * (alpha + (1.0 - alpha) * 0.5 * (1.0 + jnp.cos(math.pi * progress)))

    return schedule


def inverse_sqrt(init_value: float) -> Schedule:
    r"""$\eta_k = \eta_0 / \sqrt{k + 1}$: the classic rate for convex stochastic problems.

    Args:
      init_value: $\eta_0$, finite.

    Returns:
      A schedule ``count -> value``.
    """
    _finite("init_value", init_value)
    return lambda count: init_value / jnp.sqrt(_tree.default_float(count) + 1.0)


def piecewise_constant(init_value: float, boundaries_and_scales: Mapping[int, float]) -> Schedule:
    r"""``init_value`` times every scale whose boundary is $\le$ ``count``.

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: ``{boundary: scale}``, int boundaries $\ge 0$.

    Returns:
      A schedule ``count -> value``.

    Differences from PyTorch and optax:
      ``torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)`` stepped once per update
      is ``{m: gamma for m in milestones}``; as ``optax.piecewise_constant_schedule``.

    Examples:
      >>> lr = optjx.schedules.piecewise_constant(0.1, {30_000: 0.1, 60_000: 0.1})  # ResNet
    """
    _finite("init_value", init_value)
    items = sorted(
        (_integer("boundaries", boundary, minimum=0), factor)
        for boundary, factor in boundaries_and_scales.items()
    )
    for _, factor in items:
        _finite("scale", factor)

    def schedule(count):
        k = _tree.default_float(count)
        value = _tree.default_float(init_value)
        for boundary, factor in items:
            value = jnp.where(k >= boundary, value * factor, value)
        return value

    return schedule


def exponential(
    init_value: float, decay_rate: float, transition_steps: int, *, staircase: bool = False
) -> Schedule:
    r"""$\eta_k = \eta_0 \, r^{k / T}$, or $r^{\lfloor k / T \rfloor}$ with ``staircase``.

    Args:
      init_value: $\eta_0$, finite.
      decay_rate: $r$, finite.
      transition_steps: $T$, an int $\ge 1$.
      staircase: decay in steps (default ``False``).

    Returns:
      A schedule ``count -> value``.

    Differences from PyTorch and optax:
      ``torch.optim.lr_scheduler.ExponentialLR(gamma)`` stepped once per update is
      ``exponential(lr, gamma, 1)``; ``StepLR(step_size, gamma)`` is
      ``exponential(lr, gamma, step_size, staircase=True)``.
    """
    _finite("init_value", init_value)
    transition_steps = _positive_steps("transition_steps", transition_steps)
    if not (isinstance(decay_rate, numbers.Real) and math.isfinite(decay_rate) and decay_rate > 0):
        raise ValueError(f"decay_rate must be in (0, inf), got {decay_rate!r}")

    def schedule(count):
        k = _tree.default_float(count)
        exponent = k / transition_steps
        if staircase:
            # XLA computes k / T as k * (1/T); when 1/T rounds down, k = n*T lands just
            # below n and the floor would step one count late (T = 41, 47, 55, ... in
            # float32). Multiples of T are exact in floats, so correct the floor by one.
            exponent = jnp.floor(exponent)
            exponent = jnp.where((exponent + 1.0) * transition_steps <= k, exponent + 1.0, exponent)
            exponent = jnp.where(exponent * transition_steps > k, exponent - 1.0, exponent)
        return init_value * jnp.power(_tree.default_float(decay_rate), exponent)

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Run ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at count 0.

    Args:
      schedules: the pieces, in order.
      boundaries: one entry fewer than ``schedules``, strictly increasing ints.

    Returns:
      A schedule ``count -> value``.

    Differences from PyTorch and optax:
      ``torch.optim.lr_scheduler.SequentialLR``; ``optax.join_schedules``.

    Examples:
      >>> lr = optjx.schedules.join([optjx.schedules.constant(0.1), optjx.schedules.cosine(0.1, 900)], [100])
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("schedules must not be empty")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have len(schedules) - 1 = {len(schedules) - 1} entries, "
            f"got {len(boundaries)}"
        )
    boundaries = [_integer("boundaries", b, minimum=0) for b in boundaries]
    if any(a >= b for a, b in zip(boundaries[:-1], boundaries[1:], strict=True)):
        raise ValueError(f"boundaries must increase strictly, got {boundaries}")

    def schedule(count):
        k = _tree.default_float(count)
        value = _tree.default_float(schedules[0](count))
        for start, piece in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(k >= start, _tree.default_float(piece(count - start)), value)
        return value

    return schedule


def warmup(schedule: Schedule | float, warmup_steps: int, *, init_value: float = 0.0) -> Schedule:
    r"""Linear warm-up from ``init_value`` to ``schedule(0)``, then ``schedule`` restarted at 0.

    $$
    \eta_k = \begin{cases} \eta_{init} + \frac{k}{W}\,(s(0) - \eta_{init}) & k < W \\ s(k - W) & k \ge W \end{cases}
    $$

    Args:
      schedule: the schedule $s$ to warm up into, or a number (a constant schedule).
      warmup_steps: $W$, an int $\ge 0$; 0 returns the schedule unchanged.
      init_value: $\eta_{init}$ (default 0).

    Returns:
      A schedule ``count -> value``.

    Differences from PyTorch and optax:
      ``optax.warmup_cosine_decay_schedule`` is ``warmup(cosine(...), W)`` with the decay
      counted from step 0 instead of from the end of the warm-up.

    Examples:
      >>> lr = optjx.schedules.warmup(optjx.schedules.cosine(1e-3, 9_500), 500)
    """
    if not callable(schedule):
        schedule = constant(schedule)
    warmup_steps = _integer("warmup_steps", warmup_steps, minimum=0)
    _finite("init_value", init_value)
    if warmup_steps == 0:
        return schedule

    def ramp(count):
        a = jnp.minimum(_tree.default_float(count), warmup_steps) / warmup_steps
        return (1.0 - a) * init_value + a * _tree.default_float(schedule(jnp.zeros_like(count)))

    return join([ramp, schedule], [warmup_steps])
