r"""Delta-bar-delta (Jacobs 1988): a learning rate per weight, as a user-facing optimizer."""

from __future__ import annotations

import jax
import optax

from optjx.transforms.delta_bar_delta import delta_bar_delta_transformation
from optjx.typing import Hyperparameter


def delta_bar_delta(
    initial_learning_rate: float | jax.Array,
    *,
    kappa: Hyperparameter,
    phi: Hyperparameter,
    gamma: Hyperparameter,
) -> optax.GradientTransformation:
    r"""Delta-bar-delta: one learning rate per weight, $w_t = w_{t-1} - \epsilon_{t-1} \odot g_t$.

    Each rate grows by $\kappa$ while the gradient keeps the sign of its running average
    $\bar\delta$ and shrinks by the fraction $\phi$ when it flips; see
    ``scale_by_delta_bar_delta``. Returns $-\epsilon \odot g$ directly (no learning-rate
    stage: the rates live in the state).

    References:
      Jacobs (1988); Goodfellow, Bengio & Courville (2016), section 8.5.

    Args:
      initial_learning_rate: $\epsilon_0 \ge 0$, a number or scalar array (not a schedule).
      kappa: $\kappa \ge 0$, the additive increase (required).
      phi: $\phi \in [0, 1]$, the multiplicative decrease (required).
      gamma: $\gamma \in [0, 1)$, the decay of $\bar\delta$ (required).

    Returns:
      An ``optax.GradientTransformation``.

    Differences from PyTorch and optax:
      Neither has this algorithm.

    Examples:
      >>> tx = optjx.delta_bar_delta(0.01, kappa=1e-3, phi=0.1, gamma=0.7)
    """
    return delta_bar_delta_transformation(initial_learning_rate, kappa, phi, gamma, descent=False)
