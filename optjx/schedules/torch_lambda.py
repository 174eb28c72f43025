r"""``LambdaLR`` and ``MultiplicativeLR``: the base rate times a user's function of the
count, or times the running product of one.

The function must be jittable (written with ``jnp``, no Python ``if`` on the count): it
receives the count as an integer array of JAX's default int type (int64 under x64, traced
under ``jit``), or a Python int for a Python int count.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from optjx import _tree
from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule


def _wide(count):
    """The count as JAX's default int (int64 under x64), so that ``(k + 1) / 5`` in a
    user's function is computed at the default float precision, not int32's float32."""
    if isinstance(count, int):
        return count
    return jnp.asarray(count, dtype=jnp.asarray(0).dtype)


@public
def lambda_lr(lr: float, lr_lambda: Callable) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.LambdaLR``: the base rate times ``lr_lambda(count)``.

    $$
    \eta_k = \eta_0\, \lambda(k)
    $$

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      lr_lambda: $\lambda$, a jittable function of the count (required), e.g.
        ``lambda k: 0.95 ** k`` or ``lambda k: jnp.minimum(1.0, (k + 1) / 500)``.

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor`` ($\lambda$).

    Raises:
      TypeError: ``lr`` is not a real number or array, or ``lr_lambda`` is not a
        function.
      ValueError: ``lr`` is NaN, infinite or negative.

    Differences from PyTorch and optax:
      torch calls ``lr_lambda`` with a Python int and accepts any Python code; here the
      function is traced once, so branches on the count must be ``jnp.where``. One
      function, not one per parameter group (groups take their own schedules in
      ``optjx.param_groups``). optax: a plain function of the count.

    Examples:
      >>> lr = optjx.schedules.lambda_lr(0.1, lambda k: 1.0 / (1.0 + 0.01 * k))
      >>> round(float(lr(100)), 6)
      0.05
    """
    T.rate("lr", lr)
    T.function("lr_lambda", lr_lambda)
    return T.TorchSchedule("LambdaLR", lr, factor=lambda count: lr_lambda(_wide(count)))


@public
def multiplicative_lr(
    lr: float, lr_lambda: Callable, *, total_iters: int | None = None
) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.MultiplicativeLR``: the rate multiplied by
    ``lr_lambda(k)`` at each step $k \ge 1$.

    $$
    \eta_k = \eta_0 \prod_{j=1}^{\min(k, n)} \lambda(j)
    $$

    The running product has no closed form for a general $\lambda$: one evaluation
    multiplies $\min(k, n)$ factors in a ``lax.fori_loop``. That is cheap stepped per
    epoch (``per_epoch``: $k$ is the epoch); per update over a long run, give
    ``total_iters`` or write the product in closed form with ``lambda_lr``
    (a constant $\lambda = \gamma$ is ``exponential_lr``).

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      lr_lambda: $\lambda$, a jittable function of the step (required); $\lambda(0)$ is
        used only when ``sequential_lr`` hands over to this schedule.
      total_iters: $n$, an int $\ge 0$, or ``None`` (default): multiply no factor
        after step $n$ (the rate is held). Not a torch argument: ``None`` is torch's
        behaviour.

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr``, ``factor`` and ``resume``.

    Raises:
      TypeError: ``lr`` is not a real number or array, ``lr_lambda`` is not a
        function, or ``total_iters`` is not an int.
      ValueError: ``lr`` is out of range, or ``total_iters`` is negative.

    Differences from PyTorch and optax:
      torch multiplies the optimizer's current rate, so after a milestone of
      ``SequentialLR`` it continues from the rate the previous scheduler left, times
      $\lambda(0)$; ``sequential_lr`` does the same (``resume``). Golden-tested to
      1e-12. optax has no counterpart.

    Examples:
      >>> lr = optjx.schedules.multiplicative_lr(0.1, lambda k: 0.9 + 0.0 * k)
      >>> round(float(lr(2)), 6)
      0.081
    """
    T.rate("lr", lr)
    T.function("lr_lambda", lr_lambda)
    limit = None if total_iters is None else C.step("total_iters", total_iters)

    def product(start, count):
        """``start`` times ``lr_lambda(j)`` for ``j`` from 1 to ``min(count, n)``."""
        steps = _wide(jnp.asarray(count))
        if limit is not None:
            steps = jnp.minimum(steps, min(limit, int(jnp.iinfo(steps.dtype).max)))

        def one(last):  # a loop has one trip count: one loop per count of an array
            return jax.lax.fori_loop(
                jnp.ones((), last.dtype),
                last + 1,
                lambda j, acc: acc * _tree.default_float(lr_lambda(j)),
                _tree.default_float(start),
            )

        return jnp.vectorize(one)(steps)

    def resume(previous, count):
        return product(previous * _tree.default_float(lr_lambda(0)), count)

    return T.TorchSchedule(
        "MultiplicativeLR", lr, factor=lambda count: product(1.0, count), resume=resume
    )
