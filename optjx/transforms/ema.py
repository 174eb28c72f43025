r"""Exponential moving average of the updates (``ema``), optionally bias-corrected."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class EmaState(NamedTuple):
    """The step count and the running average."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax

    ema: optax.Updates


def ema(
    decay: Hyperparameter, *, debias: bool = False, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    r"""Exponential moving average of the incoming updates, optionally bias-corrected.

    $$
    m_0 = 0, \qquad m_t = \beta_k m_{t-1} + (1 - \beta_k) g_t,
    \qquad \hat m_t = \frac{m_t}{1 - \beta_k^{\,t}}
    $$

    with $\beta$ evaluated at $k = t - 1$ applied updates. Starting from zero biases $m_t$
    towards zero by the factor $1 - \beta^t$ (for a constant input $g$,
    $m_t = (1 - \beta^t) g$); dividing it out is the bias correction of Kingma & Ba (2015),
    section 3. ``chain(ema(b), bias_correction(b))`` equals ``ema(b, debias=True)``. With a
    scheduled $\beta$ the correction uses the current value, exact only for a constant decay.

    References:
      Kingma & Ba (2015), "Adam: A method for stochastic optimization", section 3.

    Args:
      decay: $\beta \in [0, 1)$ (required); a number, an array or a schedule.
      debias: output $\hat m_t$ instead of $m_t$ (default ``False``).
      accumulator_dtype: dtype of the average (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` with an ``EmaState`` (count and average).

    Differences from PyTorch and optax:
      ``optax.ema`` computes the same average. PyTorch has none as an optimizer stage.

    Examples:
      >>> tx = optjx.chain(optjx.ema(0.9, debias=True), optjx.scale_by_learning_rate(0.1))
    """
    hypers = _hyper.Hyperparameters(decay=(decay, _hyper.DECAY))

    def init_fn(params):
        return EmaState(
            count=_state.zero_count(),
            ema=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.ema)
        beta = hypers.at(state.count).decay
        average = _tree.update_moment(updates, state.ema, beta)
        if debias:
            correction = _tree.power_complement(beta, _state.next_count(state.count))
            at = _hyper.per_dtype(correction=correction)
            out = jax.tree.map(
                lambda g, m: (m / at(m.dtype).correction).astype(g.dtype), updates, average
            )
        else:
            out = jax.tree.map(lambda g, m: m.astype(g.dtype), updates, average)
        return out, _state.advance(state, ema=average)

    return _state.transformation(init_fn, update_fn)
