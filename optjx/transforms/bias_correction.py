r"""Adam's bias correction as a building block of its own.

.. math::  u_t = \frac{g_t}{1 - \beta_k^{\,t}}

Kingma & Ba (2015), section 3: an average started at zero underestimates its input
by ``1 - beta**t``. Placed after ``ema(beta)`` it reproduces ``ema(beta, debias=True)``;
it can follow any zero-started average (``trace`` with dampening ``1 - beta``, say).
The correction is computed at the default float precision and only then cast to
the update's dtype, so bf16 updates do not lose the small early divisors.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from optjx import _hyper, _tree


class BiasCorrectionState(NamedTuple):
    """The number of updates seen."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax


def bias_correction(decay: _hyper.Hyper) -> optax.GradientTransformation:
    """Divide updates by ``1 - decay**t`` (``t = 1`` on the first update).

    Args:
      decay: ``beta`` in ``[0, 1)`` of the average being corrected; a number, an array
        or a schedule.
    """
    hypers = _hyper.Hyperparameters(decay=(decay, _hyper.DECAY))

    def init_fn(params):
        del params
        return BiasCorrectionState(count=_tree.zero_count())

    def update_fn(updates, state, params=None):
        del params
        beta = hypers.at(state.count).decay
        count = _tree.next_count(state.count)
        correction = _tree.power_complement(beta, count)
        updates = jax.tree.map(lambda u: u / _hyper.cast_like(correction, u), updates)
        return updates, BiasCorrectionState(count=count)

    return _tree.transformation(init_fn, update_fn)
