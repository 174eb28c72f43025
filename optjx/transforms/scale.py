r"""Multiplication by a constant or scheduled step size.

.. math::  u_t = s_k \, g_t, \qquad k = \text{updates already applied}

``scale_by_learning_rate`` is the same with the sign flipped, turning the descent
directions that optjx's building blocks produce into updates for
``optax.apply_updates`` (``w \leftarrow w - \eta_k d_t``).
"""

from __future__ import annotations

import jax
import optax

from optjx import _hyper, _state, _tree


ScaleState = _state.ScheduleState  # a scheduled step size's counter; EmptyState without


def scale(step_size: _hyper.Hyper) -> optax.GradientTransformation:
    """Multiply updates by ``step_size`` (a number, an array, or a schedule ``count -> value``).

    Any real value is allowed here, negative included: this is plain arithmetic.
    """

    hypers = _hyper.Hyperparameters(step_size=(step_size, _hyper.REAL))
    return _tree.stateless(hypers, lambda updates, h, params: _scaled(updates, h.step_size))


def _scaled(updates, factor):
    at = _hyper.per_dtype(factor=factor)
    return jax.tree.map(lambda u: u * at(u.dtype).factor, updates)


def scale_by_learning_rate(
    learning_rate: _hyper.Hyper, *, flip_sign: bool = True
) -> optax.GradientTransformation:
    r"""Multiply updates by ``-learning_rate`` (or ``+learning_rate`` with ``flip_sign=False``).

    Args:
      learning_rate: ``>= 0``; a number, an array, or a schedule ``count -> value``
        evaluated at the number of updates already applied.
      flip_sign: negate, so that descent directions become parameter updates.

    Where it sits in a chain matters for momentum: ``chain(trace(a), scale_by_learning_rate(lr))``
    is PyTorch's SGD (``b = a b + g; w -= lr_k b``), ``chain(scale_by_learning_rate(lr), trace(a))``
    is the velocity form (``v = a v - lr_k g; w += v``). They agree for a constant rate and
    differ once it changes: the velocity form keeps old steps at the rate they were taken with.
    """
    _hyper.Hyperparameters(learning_rate=(learning_rate, _hyper.NONNEGATIVE))
    step_size: _hyper.Hyper
    if callable(learning_rate):
        step_size = (lambda count: -learning_rate(count)) if flip_sign else learning_rate
    else:
        step_size = -learning_rate if flip_sign else learning_rate
    return scale(step_size)
