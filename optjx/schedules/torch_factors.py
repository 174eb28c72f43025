r"""``ConstantLR``, ``LinearLR`` and ``PolynomialLR``: the base rate times a factor that
moves for ``total_iters`` steps, then holds.

Every torch-named schedule is evaluated at the number of ``scheduler.step()`` calls
already made (the number of updates applied when it is stepped per update; wrap it in
``per_epoch`` when torch steps it per epoch).
"""

from __future__ import annotations

import jax.numpy as jnp

from optjx import _hyper
from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule


@public
def constant_lr(lr: float, factor: float = 1.0 / 3, total_iters: int = 5) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.ConstantLR``: the rate scaled by ``factor`` at first.

    $$
    \eta_k = \eta_0 \cdot \begin{cases} f & k < n \\ 1 & k \ge n \end{cases}
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate (torch's ``base_lrs``), finite,
        $\ge 0$ (required).
      factor: $f \in [0, 1]$ (default 1/3), torch's range.
      total_iters: $n$, an int $\ge 1$ (default 5): the steps at the reduced rate.

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor`` for
      ``sequential_lr`` and ``chained_scheduler``.

    Raises:
      TypeError: ``lr`` or ``factor`` is not a real number or array, or ``total_iters``
        is not an int.
      ValueError: a value is out of range, or ``total_iters`` is not positive.

    Differences from PyTorch and optax:
      The same rates as torch's ``step()`` (golden-tested to 1e-12). torch accepts
      ``total_iters=0``, and its recursive form then keeps the reduced rate forever
      while its closed form does not; optjx requires $n \ge 1$. optax: a
      ``piecewise_constant_schedule``.

    Examples:
      >>> lr = optjx.schedules.constant_lr(0.1, factor=0.5, total_iters=4)
      >>> [round(float(lr(k)), 3) for k in (0, 3, 4)]
      [0.05, 0.05, 0.1]
    """
    T.rate("lr", lr)
    C.value("factor", factor, _hyper.UNIT)
    n = float(C.steps("total_iters", total_iters))

    def scale(count):
        return jnp.where(C.as_float(count) >= n, 1.0, factor)

    return T.TorchSchedule("ConstantLR", lr, factor=scale)


@public
def linear_lr(
    lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.LinearLR``: the factor moves linearly, then holds.

    $$
    \eta_k = \eta_0 \Big(a + (b - a)\,\frac{\min(k, n)}{n}\Big)
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      start_factor: $a \in (0, 1]$ (default 1/3), torch's range.
      end_factor: $b \in [0, 1]$ (default 1), torch's range.
      total_iters: $n$, an int $\ge 1$ (default 5).

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: a value argument is not a real number or array, or ``total_iters`` is
        not an int.
      ValueError: a value is out of range, or ``total_iters`` is not positive.

    Differences from PyTorch and optax:
      torch's recursive form, golden-tested to 1e-12 (it equals this closed form up to
      rounding). ``linear(a * lr, b * lr, n)`` computes the same rates, without the
      factor that ``chained_scheduler`` needs. optax: ``linear_schedule``.

    Examples:
      >>> lr = optjx.schedules.linear_lr(0.1, start_factor=0.1, total_iters=10)  # warm-up
      >>> round(float(lr(5)), 6)
      0.055
    """
    T.rate("lr", lr)
    C.value("start_factor", start_factor, _hyper.Range(low=0.0, low_inclusive=False, high=1.0))
    C.value("end_factor", end_factor, _hyper.UNIT)
    n = float(C.steps("total_iters", total_iters))

    def scale(count):
        progress = jnp.minimum(C.as_float(count), n) / n
        return start_factor + (end_factor - start_factor) * progress

    return T.TorchSchedule("LinearLR", lr, factor=scale)


@public
def polynomial_lr(lr: float, total_iters: int = 5, power: float = 1.0) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.PolynomialLR``: polynomial decay to 0 in ``total_iters``.

    $$
    \eta_k = \eta_0 \Big(1 - \frac{\min(k, n)}{n}\Big)^p
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      total_iters: $n$, an int $\ge 1$ (default 5).
      power: $p \ge 0$, finite (default 1).

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: a value argument is not a real number or array, or ``total_iters`` is
        not an int.
      ValueError: a value is out of range, or ``total_iters`` is not positive.

    Differences from PyTorch and optax:
      torch's recursive form multiplies ratios of this factor; golden-tested to 1e-12.
      ``polynomial(lr, 0.0, p, n)`` computes the same rates. optax:
      ``polynomial_schedule(lr, 0, p, n)``.

    Examples:
      >>> lr = optjx.schedules.polynomial_lr(0.1, total_iters=100, power=2.0)
      >>> round(float(lr(50)), 6)
      0.025
    """
    T.rate("lr", lr)
    n = float(C.steps("total_iters", total_iters))
    C.value("power", power, _hyper.NONNEGATIVE)

    def scale(count):
        remaining = 1.0 - jnp.minimum(C.as_float(count), n) / n
        # Exactly 0 from n on: the reciprocal multiply can leave an ulp (see decay.linear).
        return jnp.where(C.as_float(count) >= n, 0.0**power, remaining**power)

    return T.TorchSchedule("PolynomialLR", lr, factor=scale)
