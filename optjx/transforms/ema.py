r"""Exponential moving average of the updates, optionally bias-corrected.

.. math::

   m_0 = 0, \qquad m_t = \beta_k m_{t-1} + (1 - \beta_k) g_t,
   \qquad \hat m_t = \frac{m_t}{1 - \beta_k^{\,t}}

with ``beta`` evaluated at ``k = t - 1`` applied updates. Starting from zero biases
``m_t`` towards zero by the factor ``1 - beta**t`` (for a constant input ``g``,
``m_t = (1 - beta**t) g``); dividing it out is the bias correction of Kingma & Ba
(2015), section 3. ``chain(ema(b), bias_correction(b))`` equals ``ema(b, debias=True)``.

With a scheduled ``beta`` the correction uses the current value, ``1 - beta_k**t``:
exact only for a constant decay.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from optjx import _hyper, _tree


class EmaState(NamedTuple):
    """Step count and the running average."""

    count: jax.Array | None  # kept only where read (see _tree.schedule_count)
    ema: optax.Updates


def ema(
    decay: _hyper.Hyper, *, debias: bool = False, accumulator_dtype=None
) -> optax.GradientTransformation:
    """Exponential moving average of the incoming updates.

    Args:
      decay: ``beta`` in ``[0, 1)``; a number, an array or a schedule.
      debias: divide by ``1 - beta**t`` (``t = 1`` on the first update).
      accumulator_dtype: dtype of the average; defaults to each parameter's dtype.
    """
    _hyper.check_decay("decay", decay)

    def init_fn(params):
        return EmaState(
            count=_tree.schedule_count(decay, needed=debias),
            ema=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.ema)
        beta = _hyper.value_at(decay, state.count)
        average = _tree.update_moment(updates, state.ema, beta)
        count = _tree.next_count(state.count)
        if debias:
            correction = _tree.power_complement(beta, count)
            out = jax.tree.map(
                lambda g, m: (m / _hyper.cast_like(correction, m)).astype(g.dtype), updates, average
            )
        else:
            out = jax.tree.map(lambda g, m: m.astype(g.dtype), updates, average)
        return out, EmaState(count=count, ema=average)

    return optax.GradientTransformation(init_fn, update_fn)
