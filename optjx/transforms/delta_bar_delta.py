r"""Delta-bar-delta (``scale_by_delta_bar_delta``): a learning rate per weight.

``scale_by_delta_bar_delta`` gives the descent direction $+\epsilon g$; the
``optjx.delta_bar_delta`` alias returns $-\epsilon g$ directly, with no second stage.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByDeltaBarDeltaState(NamedTuple):
    """The step count, the learning rate of every weight and the gradient average
    ``dbar``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax

    learning_rates: optax.Updates
    delta_bar: optax.Updates


def scale_by_delta_bar_delta(
    initial_learning_rate: float | jax.Array,
    *,
    kappa: Hyperparameter,
    phi: Hyperparameter,
    gamma: Hyperparameter,
) -> optax.GradientTransformation:
    r"""Delta-bar-delta's direction $\epsilon_{t-1} \odot g_t$ (a descent direction).

    $$
    u_t = \epsilon_{t-1} \odot g_t, \qquad
    \bar\delta_t = (1 - \gamma) g_t + \gamma \bar\delta_{t-1}
    $$

    $$
    \epsilon_t = \begin{cases}
      \epsilon_{t-1} + \kappa & \bar\delta_{t-1} g_t > 0 \\
      \epsilon_{t-1} - \phi\, \epsilon_{t-1} & \bar\delta_{t-1} g_t < 0 \\
      \epsilon_{t-1} & \text{otherwise}
    \end{cases}
    $$

    elementwise, with $\epsilon_0$ = ``initial_learning_rate`` and $\bar\delta_0 = 0$ (so
    the rates first change on the second step). The step uses the rate *before* this step's
    adaptation. A gradient that keeps its sign grows the rate linearly; a sign flip shrinks
    it geometrically. Chain ``scale(-1)`` after it, or use ``optjx.delta_bar_delta``.

    ``kappa``, ``phi`` and ``gamma`` have no defaults: Jacobs gives none that fits every
    problem, and ``kappa`` is in the units of the learning rate.

    References:
      Jacobs (1988), "Increased rates of convergence through learning rate adaptation";
      Goodfellow, Bengio & Courville (2016), section 8.5.

    Args:
      initial_learning_rate: $\epsilon_0 \ge 0$, every weight's rate at ``init``: a number
        or a scalar array (read once at ``init``, so not a schedule).
      kappa: $\kappa \ge 0$, added to a rate when the gradient keeps its sign.
      phi: $\phi \in [0, 1]$, the fraction of a rate removed when the gradient flips sign.
      gamma: $\gamma \in [0, 1)$, the decay of the gradient average $\bar\delta$.

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByDeltaBarDeltaState``.

    Differences from PyTorch and optax:
      Neither has this algorithm.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_delta_bar_delta(0.01, kappa=1e-3, phi=0.1, gamma=0.7),
      ...                  optjx.scale(-1.0))
    """
    return delta_bar_delta_transformation(initial_learning_rate, kappa, phi, gamma, descent=True)


def delta_bar_delta_transformation(initial_learning_rate, kappa, phi, gamma, *, descent: bool):
    """The transformation, giving ``+eps*g`` (``descent``) or the update ``-eps*g``."""
    if callable(initial_learning_rate) and not hasattr(initial_learning_rate, "dtype"):
        raise TypeError(
            "initial_learning_rate must be a number or an array, not a schedule: it is "
            "read only at init (the rates then adapt by kappa and phi)"
        )
    _hyper.check_nonnegative("initial_learning_rate", initial_learning_rate)
    hypers = _hyper.Hyperparameters(
        kappa=(kappa, _hyper.NONNEGATIVE), phi=(phi, _hyper.UNIT), gamma=(gamma, _hyper.DECAY)
    )

    def init_fn(params):
        _tree.require_real(params, "delta_bar_delta")
        return ScaleByDeltaBarDeltaState(
            count=_state.zero_count(),
            learning_rates=_tree.full_like(params, initial_learning_rate),
            delta_bar=_tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.learning_rates)
        h = hypers.at(state.count)
        kappa_t, phi_t, gamma_t = h.kappa, h.phi, h.gamma
        gain = _tree.default_float(1.0 - gamma_t)  # in double for a Python number
        at = _hyper.per_dtype(kappa=kappa_t, phi=phi_t, gamma=gamma_t, gain=gain)

        def step(g, rate):
            move = rate.astype(g.dtype) * g
            return move if descent else -move

        def adapt(g, rate, dbar):
            # The sign of dbar * g from the signs of each: the product itself can
            # underflow to 0 in low precision and would read as "no information".
            agreement = jnp.sign(dbar) * jnp.sign(g.astype(dbar.dtype))
            k = at(rate.dtype)
            grown = rate + k.kappa
            shrunk = rate - k.phi * rate
            return jnp.where(agreement > 0, grown, jnp.where(agreement < 0, shrunk, rate))

        def average(g, dbar):
            k = at(dbar.dtype)
            return k.gain * g.astype(dbar.dtype) + k.gamma * dbar

        out = jax.tree.map(step, updates, state.learning_rates)
        rates = jax.tree.map(adapt, updates, state.learning_rates, state.delta_bar)
        delta_bar = jax.tree.map(average, updates, state.delta_bar)
        return out, _state.advance(state, learning_rates=rates, delta_bar=delta_bar)

    return _state.transformation(init_fn, update_fn)
