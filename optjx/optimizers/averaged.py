r"""Optimizers that keep an average of their iterates: ``asgd`` (averaged SGD), a chain of
optjx building blocks inside ``polyak_averaging``."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _tree
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.transforms.weight_decay import add_decayed_weights
from optjx.typing import Hyperparameter
from optjx.wrappers.polyak import polyak_averaging


def _previous(count: jax.Array) -> jax.Array:
    """The update before this one (0 on the first): where torch read the group's values
    for this update's $\\eta$ and $\\mu$, at the end of the previous ``step``."""
    return jnp.maximum(count - 1, 0)


def asgd_step_size(learning_rate, lambd, alpha) -> _hyper.Schedule:
    r"""ASGD's $\eta$ as a schedule: $\eta_k = \gamma / (1 + \lambda \gamma k)^\alpha$ after
    $k$ updates, each hyperparameter read one update earlier (PyTorch's order)."""

    def step_size(count):
        earlier = _previous(count)
        rate = _tree.default_float(_hyper.value_at(learning_rate, earlier))
        decay = _tree.default_float(_hyper.value_at(lambd, earlier))
        power = _tree.default_float(_hyper.value_at(alpha, earlier))
        return rate / jnp.power(1.0 + decay * rate * _tree.default_float(count), power)

    return step_size


def asgd_average_decay(t0) -> _hyper.Schedule:
    r"""ASGD's averaging as ``polyak_averaging``'s decay: $1 - \mu_k$ with
    $\mu_0 = 1$ and $\mu_k = 1 / \max(1, k - t_0)$ after $k$ updates."""

    def decay(count):
        start = _tree.default_float(_hyper.value_at(t0, _previous(count)))
        k = _tree.default_float(count)
        weight = 1.0 / jnp.maximum(1.0, k - start)
        return jnp.where(count == 0, jnp.zeros_like(weight), 1.0 - weight)

    return decay


@torch_twin("asgd")
def asgd(
    learning_rate: Hyperparameter = 1e-2,
    lambd: Hyperparameter = 1e-4,
    alpha: Hyperparameter = 0.75,
    t0: Hyperparameter = 1e6,
    weight_decay: Optional[Hyperparameter] = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Averaged SGD, as ``torch.optim.ASGD``; ``optjx.averaged_params(state)`` is torch's ``ax``.

    $$
    g_t \leftarrow g_t + \lambda_{wd}\, w_{t-1}, \qquad
    w_t = w_{t-1} - \eta_{t-1} \big( g_t + \lambda w_{t-1} \big), \qquad
    \bar w_t = \bar w_{t-1} + \mu_{t-1} (w_t - \bar w_{t-1})
    $$

    $$
    \eta_0 = \gamma, \quad \eta_k = \frac{\gamma}{(1 + \lambda \gamma k)^{\alpha}}, \qquad
    \mu_0 = 1, \quad \mu_k = \frac{1}{\max(1, k - t_0)}
    $$

    after $k$ updates: the step size decays as $k^{-\alpha}$, and $\bar w$ is the
    iterate itself until $t_0$ updates have been made, then the uniform average of the
    iterates since. The chain is ``add_decayed_weights`` ($\lambda_{wd}$, if any),
    ``add_decayed_weights`` ($\lambda$), ``scale_by_learning_rate`` ($\eta$), inside
    ``polyak_averaging`` with decay $1 - \mu$.

    References:
      Polyak & Juditsky (1992), "Acceleration of stochastic approximation by averaging";
      Bottou (2012), "Stochastic gradient descent tricks", section 5.3 (the $\eta_k$).

    Args:
      learning_rate: $\gamma \ge 0$ (default 1e-2).
      lambd: $\lambda \ge 0$, the decay term (default 1e-4).
      alpha: $\alpha \ge 0$, the power of the step-size decay (default 0.75).
      t0: $t_0$, the update from which the average starts (default 1e6).
      weight_decay: coupled L2 $\lambda_{wd} \ge 0$, or ``None`` (default) for no stage
        (PyTorch's default 0; an explicit 0 keeps the stage).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (``polyak_averaging`` around a chain);
      its ``update`` needs ``params``.

    Differences from PyTorch and optax:
      ``torch.optim.ASGD`` step for step, the average included. As in PyTorch, $\eta$ and
      $\mu$ of an update are computed from the hyperparameters of the update before (the
      first update uses $\gamma$ as given): a scheduled ``learning_rate``, ``lambd``,
      ``alpha`` or ``t0`` enters one update late, exactly as a torch scheduler does;
      the decay term uses the current ``lambd``. ``maximize=True``: chain
      ``optjx.scale(-1.0)`` before it. optax has no ASGD.

    Examples:
      >>> tx = optjx.asgd(0.05, t0=1000)
      >>> evaluation_params = optjx.averaged_params(opt_state)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    _hyper.check_nonnegative("lambd", lambd)
    _hyper.check_nonnegative("alpha", alpha)
    _hyper.check_range("t0", t0)
    step = _stages.chain(
        _stages.decay(weight_decay),
        add_decayed_weights(lambd),
        _stages.learning_rate(asgd_step_size(learning_rate, lambd, alpha)),
    )
    return polyak_averaging(step, decay=asgd_average_decay(t0))
