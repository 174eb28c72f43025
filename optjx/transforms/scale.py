r"""Multiplication by a step size: ``scale`` and ``scale_by_learning_rate``.

Both evaluate a scheduled step size at the number of updates already applied, so both
keep a step counter whatever the step size is (DESIGN.md, convention 1); inside an alias
the learning rate reads the alias's counter instead (``learning_rate_rule``).
"""

from __future__ import annotations

import jax
import optax

from optjx import _hyper, _state
from optjx.typing import Hyperparameter


def scale(step_size: Hyperparameter) -> optax.GradientTransformation:
    r"""Multiply updates by a constant or scheduled step size.

    $$
    u_t = s_k \, g_t, \qquad k = t - 1 \text{ updates already applied}
    $$

    Args:
      step_size: any real number, array, or schedule ``count -> value``; negative values
        are allowed (this is plain arithmetic, unlike a learning rate).

    Returns:
      An ``optax.GradientTransformation`` whose state is its step counter
      (``optax.scale``'s is empty: its step size cannot be a schedule).

    Differences from PyTorch and optax:
      Same as ``optax.scale`` (and ``optax.scale_by_schedule`` for a schedule) in one
      factory. PyTorch has no counterpart: it multiplies by ``lr`` inside each optimizer.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adam(), optjx.scale(-1e-3))
    """

    return _state.stateless(_scale_rule(step_size))


def _scale_rule(step_size: Hyperparameter) -> _state.Rule:
    hypers = _hyper.Hyperparameters(step_size=(step_size, _hyper.REAL))
    return _state.Rule(hypers, lambda updates, h, params: _scaled(updates, h.step_size))


def _scaled(updates, factor):
    at = _hyper.per_dtype(factor=factor)
    return jax.tree.map(lambda u: u * at(u.dtype).factor, updates)


def scale_by_learning_rate(
    learning_rate: Hyperparameter, *, flip_sign: bool = True
) -> optax.GradientTransformation:
    r"""Multiply updates by $-\eta_k$: turn a descent direction into a parameter update.

    $$
    u_t = -\eta_k \, d_t, \qquad w_t = w_{t-1} + u_t
    $$

    with $\eta_k$ the learning rate after $k = t - 1$ applied updates. Every optjx alias
    ends with this stage; building blocks produce descent directions, as in optax.

    Where it sits in a chain matters for momentum: ``chain(trace(mu), scale_by_learning_rate(lr))``
    is PyTorch's SGD ($b = \mu b + g$, $w \leftarrow w - \eta_k b$), while
    ``chain(scale_by_learning_rate(lr), trace(mu))`` is the velocity form of Goodfellow
    et al. (2016), Algorithm 8.2 ($v = \mu v - \eta_k g$, $w \leftarrow w + v$). They
    agree for a constant rate and differ once it changes: the velocity form keeps old steps at the rate they were taken with.

    Args:
      learning_rate: $\eta \ge 0$; a number, an array, or a schedule ``count -> value``.
      flip_sign: negate (default ``True``); ``False`` multiplies by $+\eta$.

    Returns:
      An ``optax.GradientTransformation`` whose state is its step counter.

    Raises:
      ValueError: a concrete negative ``learning_rate``.

    Differences from PyTorch and optax:
      ``optax.scale_by_learning_rate`` does the same and does not validate the rate.

    Examples:
      >>> tx = optjx.chain(optjx.trace(0.9), optjx.scale_by_learning_rate(0.1))  # torch SGD
    """
    return _state.stateless(learning_rate_rule(learning_rate, flip_sign=flip_sign))


def learning_rate_rule(learning_rate: Hyperparameter, *, flip_sign: bool = True) -> _state.Rule:
    """What ``scale_by_learning_rate`` does, for an alias's chain (``_state.chain``)."""
    _hyper.Hyperparameters(learning_rate=(learning_rate, _hyper.NONNEGATIVE))
    step_size: Hyperparameter
    if callable(learning_rate):
        step_size = (
            (lambda count: -_checked_rate(learning_rate, count)) if flip_sign else learning_rate
        )
    else:
        step_size = -learning_rate if flip_sign else learning_rate
    return _scale_rule(step_size)


def _checked_rate(learning_rate, count):
    # Checked before the negation, so that a bad value is named as the learning rate.
    value = learning_rate(count)
    _hyper.check_schedule_value("learning_rate", value)
    return value
