r"""``torch.optim.swa_utils.SWALR`` (Izmailov et al. 2018): anneal from the rate at which
stochastic weight averaging starts to a constant SWA rate."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule


@public
def swa_lr(
    lr: float,
    swa_lr: float,
    anneal_epochs: int = 10,
    anneal_strategy: Literal["cos", "linear"] = "cos",
) -> TorchSchedule:
    r"""``torch.optim.swa_utils.SWALR``: from ``lr`` to ``swa_lr`` in ``anneal_epochs``
    steps, then constant.

    $$
    \eta_k = \alpha_k\, \eta_{swa} + (1 - \alpha_k)\, \eta_{start}, \qquad
    t_k = \min(k / A, 1), \qquad
    \alpha_k = \begin{cases} \tfrac12\big(1 - \cos(\pi t_k)\big) & \texttt{"cos"} \\
    t_k & \texttt{"linear"} \end{cases}
    $$

    ($A = 0$: $\eta_{swa}$ from the first step.) $\eta_{start}$ is the rate the
    optimizer has when SWALR takes over; torch reads it from the optimizer, optjx
    takes it as follows:

    * alone (or first in ``sequential_lr``), from ``lr``, with $k$ counted from
      the start of the schedule;
    * later in ``sequential_lr``, from the rate of the schedule before the
      milestone at the step before it, as torch's ``SequentialLR`` does (``lr`` is not
      used then);
    * for the loop of torch's SWA recipe (``scheduler.step()`` up to epoch
      ``swa_start``, ``swa_scheduler.step()`` after), the rate after ``swa_start + 1``
      steps of the first schedule ``s``: ``join([s, swa_lr(float(s(swa_start + 1)),
      swa_lr=...)], [swa_start + 1])``, stepped per epoch with ``per_epoch``.

    References:
      Izmailov, Podoprikhin, Garipov, Vetrov & Wilson (2018), "Averaging weights leads
      to wider optima and better generalization", section 3.2 (the SWA learning rate).

    Args:
      lr: $\eta_{start}$, the rate when SWALR takes over, finite, $\ge 0$ (required).
      swa_lr: $\eta_{swa}$, finite, $\ge 0$ (required).
      anneal_epochs: $A$, an int $\ge 0$ (default 10).
      anneal_strategy: ``"cos"`` (default) or ``"linear"``.

    Returns:
      A ``TorchSchedule``: the jittable schedule ``count -> rate`` (values at JAX's
      default float precision), with its ``base_lr``, ``factor`` and ``resume``.

    Raises:
      TypeError: a value argument is not a real number or array, or ``anneal_epochs``
        is not an int.
      ValueError: a value is out of range, ``anneal_epochs`` is negative, or
        ``anneal_strategy`` is not one of the two.

    Differences from PyTorch and optax:
      torch recovers $\eta_{start}$ at each step by inverting its previous step; the
      closed form is the same up to rounding (golden-tested to 1e-12, alone, after a
      ``CosineAnnealingLR`` in ``SequentialLR``, and in the SWA recipe's loop). One rate,
      not one per parameter group. The averaged weights themselves:
      ``optjx.polyak_averaging`` and ``optjx.averaged_params``. optax has no
      counterpart.

    Examples:
      >>> S = optjx.schedules
      >>> lr = S.sequential_lr([S.cosine_annealing_lr(0.1, 75), S.swa_lr(0.1, swa_lr=0.05)],
      ...                      milestones=[75])
      >>> lr = S.per_epoch(lr, steps_per_epoch=500)                  # stepped per epoch
    """
    T.rate("lr", lr)
    T.rate("swa_lr", swa_lr)
    steps = C.step("anneal_epochs", anneal_epochs)
    strategy = T.choice("anneal_strategy", anneal_strategy, ("cos", "linear"))

    def weight(count):
        """$\\alpha_k$, torch's ``anneal_func(t)``."""
        k = C.as_float(count)
        t = jnp.minimum(jnp.maximum(k, 1.0 if steps == 0 else 0.0) / max(1, steps), 1.0)
        return (1.0 - jnp.cos(jnp.pi * t)) / 2.0 if strategy == "cos" else t

    def resume(start, count):
        alpha = weight(count)
        return swa_lr * alpha + start * (1.0 - alpha)

    return T.TorchSchedule("SWALR", lr, value=lambda count: resume(lr, count), resume=resume)
