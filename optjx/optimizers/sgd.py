r"""Stochastic gradient descent: ``sgd``, with heavy-ball or Nesterov momentum, a chain of
optjx building blocks."""

from __future__ import annotations

from typing import Any

import optax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.typing import Hyperparameter


@torch_twin("sgd")
def sgd(
    learning_rate: Hyperparameter,
    momentum: Hyperparameter | None = None,
    *,
    dampening: Hyperparameter = 0.0,
    nesterov: bool = False,
    weight_decay: Hyperparameter | None = None,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with optional heavy-ball or Nesterov momentum.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad
    b_1 = g_1, \quad b_t = \mu b_{t-1} + (1 - \tau) g_t
    $$

    $$
    w_t = w_{t-1} - \eta_k \cdot \begin{cases} b_t & \\ g_t + \mu b_t & \text{(Nesterov)} \end{cases}
    $$

    Without momentum the update is $w_t = w_{t-1} - \eta_k g_t$. The chain is
    ``add_decayed_weights`` (unless ``None``), ``trace`` (unless ``None``),
    ``scale_by_learning_rate``.

    References:
      Robbins & Monro (1951); Polyak (1964); Sutskever et al. (2013) for Nesterov.

    Args:
      learning_rate: $\eta \ge 0$ (required).
      momentum: $\mu \ge 0$ (default ``None``: no momentum stage, as in optax; ``0.0``
        keeps a buffer, which holds the last gradient: the numbers of no momentum).
      dampening: $\tau \ge 0$ (default 0), from the second step on.
      nesterov: Nesterov momentum (default ``False``); needs $\mu > 0$ and $\tau = 0$.
      weight_decay: coupled L2 $\lambda \ge 0$
        (default ``None``: no decay stage; ``0.0`` keeps the stage).
      accumulator_dtype: dtype of the momentum buffer (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Raises:
      ValueError: a negative hyperparameter, or ``nesterov=True`` with zero momentum.

    Differences from PyTorch and optax:
      ``torch.optim.SGD`` step for step (``lr``, ``momentum``, ``dampening``,
      ``nesterov``, ``weight_decay``). ``optax.sgd`` starts its momentum from zero and has no
      dampening or weight decay; with ``dampening=0`` the trajectories agree.

    Examples:
      >>> tx = optjx.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _stages.chain(
        _stages.decay(weight_decay),
        _stages.momentum(momentum, dampening, nesterov, accumulator_dtype),
        _stages.learning_rate(learning_rate),
    )
