r"""``CosineAnnealingLR`` and ``CosineAnnealingWarmRestarts`` (Loshchilov & Hutter 2017).

Both reduce the count to its place in the current period exactly (integer arithmetic in
floats) before taking the cosine, so the value stays accurate at any count.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule

_AFTER_T_MAX = ("rise", "hold")


def _cosine(eta_min, lr, position, period: float):
    return eta_min + (lr - eta_min) * (1.0 + jnp.cos(jnp.pi * position / period)) / 2.0


@public
def cosine_annealing_lr(
    lr: float, T_max: int, eta_min: float = 0.0, *, after_t_max: Literal["rise", "hold"] = "rise"
) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.CosineAnnealingLR``: a half cosine from ``lr`` to
    ``eta_min`` in ``T_max`` steps.

    $$
    \eta_k = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})\big(1 + \cos(\pi\, t_k / T)\big),
    \qquad t_k = \begin{cases} k & \texttt{"rise"} \\ \min(k, T) & \texttt{"hold"}
    \end{cases}
    $$

    torch's ``step()`` computes it recursively,
    $\eta_{k} = \eta_{min} + (\eta_{k-1} - \eta_{min})
    \frac{1 + \cos(\pi k / T)}{1 + \cos(\pi (k-1) / T)}$ (with a special step after each
    trough), and its closed form (``step(epoch)``) is the formula above with $t_k = k$:
    the two agree to rounding (about 1e-15 relative, measured), and both **rise again
    after** ``T_max``, with period $2T$. ``after_t_max="rise"`` gives that sequence;
    ``"hold"`` gives the single annealing of SGDR, held at $\eta_{min}$ from $T$ on (as
    ``cosine``).

    References:
      Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm
      restarts", equation 5.

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      T_max: $T$, an int $\ge 1$ (required): the steps from $\eta_0$ down to
        $\eta_{min}$.
      eta_min: $\eta_{min} \ge 0$, finite (default 0).
      after_t_max: ``"rise"`` (default, torch's ``step()``) or ``"hold"``.

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: a value argument is not a real number or array, or ``T_max`` is not
        an int.
      ValueError: a value is out of range, ``T_max`` is not positive, or
        ``after_t_max`` is not one of the two.

    Differences from PyTorch and optax:
      Golden-tested to 1e-12 against torch's ``step()``. In torch's
      ``ChainedScheduler`` the recursive step acts on the rate the other schedulers
      left, and at each trough it restarts from ``base_lr`` (the other factors are
      lost); ``chained_scheduler`` multiplies the factors, which is the same up to
      ``T_max`` when $\eta_{min} = 0$. optax's ``cosine_decay_schedule`` holds, as
      ``"hold"``.

    Examples:
      >>> lr = optjx.schedules.cosine_annealing_lr(0.1, T_max=100)
      >>> round(float(lr(100)), 6), round(float(lr(150)), 6)     # trough, rising again
      (0.0, 0.05)
    """
    T.rate("lr", lr)
    period = C.steps("T_max", T_max)
    T.rate("eta_min", eta_min)
    T.choice("after_t_max", after_t_max, _AFTER_T_MAX)

    def value(count):
        k = C.as_float(count)
        if after_t_max == "hold":
            position = jnp.minimum(k, float(period))
        else:
            # The cosine has period 2T: reduce exactly, so large counts keep their phase.
            position = k - 2.0 * period * C.floor_div(k, 2 * period)
        return _cosine(eta_min, lr, position, float(period))

    return T.TorchSchedule("CosineAnnealingLR", lr, value=value)


def _restart_starts(T_0: int, T_mult: int) -> list[int]:
    """The counts where each period begins, ``T_0 (T_mult^n - 1) / (T_mult - 1)``,
    exact Python ints, up to past the int64 range."""
    starts, start, length = [0], 0, T_0
    while start <= 2**63:
        start += length
        length *= T_mult
        starts.append(start)
    return starts


@public
def cosine_annealing_warm_restarts(
    lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``: cosine annealing
    restarted at ``lr`` every period, each period ``T_mult`` times the last (SGDR).

    $$
    \eta_k = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
    \big(1 + \cos(\pi\, T_{cur} / T_i)\big),
    \qquad T_i = T_0\, T_{mult}^{\,i}
    $$

    where period $i$ starts at $k_i = T_0 (T_{mult}^i - 1)/(T_{mult} - 1)$ ($i\,T_0$
    when $T_{mult} = 1$) and $T_{cur} = k - k_i$.

    References:
      Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm
      restarts", equation 5 and section 3.

    Args:
      lr: $\eta_0$, the optimizer's learning rate, finite, $\ge 0$ (required).
      T_0: the first period, an int $\ge 1$ (required).
      T_mult: an int $\ge 1$ (default 1), torch's range.
      eta_min: $\eta_{min} \ge 0$, finite (default 0).

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr`` and ``factor``.

    Raises:
      TypeError: a value argument is not a real number or array, or ``T_0`` or
        ``T_mult`` is not an int.
      ValueError: a value is out of range, or ``T_0`` or ``T_mult`` is not positive.

    Differences from PyTorch and optax:
      torch's ``step()`` (integer bookkeeping of $T_{cur}$ and $T_i$), golden-tested to
      1e-12 over several restarts; torch's ``step(epoch)`` finds the period with a
      floating-point logarithm, optjx with exact integer boundaries. torch also accepts
      fractional epochs in ``step(epoch)``; here the count is an integer. optax:
      ``sgdr_schedule`` with a list of cycles.

    Examples:
      >>> lr = optjx.schedules.cosine_annealing_warm_restarts(0.1, T_0=10, T_mult=2)
      >>> [round(float(lr(k)), 6) for k in (0, 10, 30)]      # each period restarts at lr
      [0.1, 0.1, 0.1]
    """
    T.rate("lr", lr)
    first = C.steps("T_0", T_0)
    mult = C.steps("T_mult", T_mult)
    T.rate("eta_min", eta_min)
    if mult == 1:

        def place(k):
            cycle = C.floor_div(k, first)
            return k - cycle * float(first), float(first)

    else:
        starts = _restart_starts(first, mult)
        lengths = [first * mult**i for i in range(len(starts))]

        def place(k):
            boundaries = jnp.asarray([float(s) for s in starts], k.dtype)
            index = jnp.searchsorted(boundaries, k, side="right") - 1
            periods = jnp.asarray([float(n) for n in lengths], k.dtype)
            return k - boundaries[index], periods[index]

    def value(count):
        position, period = place(C.as_float(count))
        return _cosine(eta_min, lr, position, period)

    return T.TorchSchedule("CosineAnnealingWarmRestarts", lr, value=value)
