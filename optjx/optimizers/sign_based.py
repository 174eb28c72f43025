r"""Optimizers that use only the gradient's sign: ``rprop``, a chain of optjx building
blocks."""

from __future__ import annotations

import jax
import optax

from optjx._twin import torch_twin
from optjx.transforms.rprop import scale_by_rprop
from optjx.transforms.scale import scale
from optjx.typing import Hyperparameter


@torch_twin("rprop")
def rprop(
    learning_rate: float | jax.Array = 1e-2,
    etas: tuple[Hyperparameter, Hyperparameter] = (0.5, 1.2),
    step_sizes: tuple[Hyperparameter, Hyperparameter] = (1e-6, 50.0),
) -> optax.GradientTransformation:
    r"""Rprop, as ``torch.optim.Rprop``: $w_t = w_{t-1} - \Delta_t \odot \operatorname{sign}(\tilde g_t)$.

    Each weight's step size $\Delta$ grows by $\eta_+$ while its gradient keeps its sign,
    shrinks by $\eta_-$ when it flips (and the weight then waits one step), and stays in
    $[\Delta_{\min}, \Delta_{\max}]$; see ``scale_by_rprop``. The chain is
    ``scale_by_rprop``, ``scale(-1.0)``: the step sizes live in the state, so there is no
    learning-rate stage. Meant for full-batch training: with noisy gradients the signs
    flip at random.

    References:
      Riedmiller & Braun (1993), "A direct adaptive method for faster backpropagation
      learning: the RPROP algorithm".

    Args:
      learning_rate: $\Delta_0 \ge 0$, the first step size of every weight (default 1e-2);
        a number or a scalar array read once at ``init``, not a schedule.
      etas: $(\eta_-, \eta_+)$, $0 < \eta_- < 1 < \eta_+$ (default (0.5, 1.2)).
      step_sizes: $(\Delta_{\min}, \Delta_{\max})$ (default (1e-6, 50)).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.Rprop`` step for step (``maximize=True``: chain ``optjx.scale(-1.0)``
      before it). Changing ``lr`` after the first step does nothing in PyTorch either.
      ``optax.rprop`` takes the etas and step-size bounds as four arguments and keeps the
      previous step in its state where this keeps the previous gradient (as torch).

    Examples:
      >>> tx = optjx.rprop(0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 1.0))
    """
    return optax.chain(scale_by_rprop(learning_rate, etas=etas, step_sizes=step_sizes), scale(-1.0))
