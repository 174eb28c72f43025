r"""Adam's bias correction as a building block of its own (``bias_correction``)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class BiasCorrectionState(NamedTuple):
    """The number of updates seen."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax


def bias_correction(decay: Hyperparameter) -> optax.GradientTransformation:
    r"""Divide updates by $1 - \beta_k^{\,t}$ ($t = 1$ on the first update).

    $$
    u_t = \frac{g_t}{1 - \beta_k^{\,t}}
    $$

    An average started at zero underestimates its input by $1 - \beta^t$. Placed after
    ``ema(beta)`` this reproduces ``ema(beta, debias=True)``; it can follow any
    zero-started average (``trace`` with dampening $1 - \beta$, say). The correction is
    computed at the default float precision and only then cast to the update's dtype, so
    bf16 updates keep the small early divisors.

    References:
      Kingma & Ba (2015), "Adam: A method for stochastic optimization", section 3.

    Args:
      decay: $\beta \in [0, 1)$ of the average being corrected (required); a number, an
        array or a schedule.

    Returns:
      An ``optax.GradientTransformation`` whose state is the step count.

    Differences from PyTorch and optax:
      Neither has it as a separate stage (both fold it into Adam).

    Examples:
      >>> tx = optjx.chain(optjx.ema(0.9), optjx.bias_correction(0.9))
    """
    hypers = _hyper.Hyperparameters(decay=(decay, _hyper.DECAY))

    def init_fn(params):
        del params
        return BiasCorrectionState(count=_state.zero_count())

    def update_fn(updates, state, params=None):
        del params
        beta = hypers.at(state.count).decay
        count = _state.next_count(state.count)
        correction = _tree.power_complement(beta, count)
        at = _hyper.per_dtype(correction=correction)
        updates = jax.tree.map(lambda u: u / at(u.dtype).correction, updates)
        return updates, BiasCorrectionState(count=count)

    return _state.transformation(init_fn, update_fn)
