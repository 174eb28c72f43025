r"""Multiplication by a constant or scheduled step size.

.. math::  u_t = s_k \, g_t, \qquad k = \text{updates already applied}

``scale_by_learning_rate`` is the same with the sign flipped, turning the descent
directions that optjx's building blocks produce into updates for
``optax.apply_updates`` (``w \leftarrow w - \eta_k d_t``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from optjx import _hyper, _tree


class ScaleState(NamedTuple):
    """The number of updates applied, kept only for a scheduled step size (else ``None``)."""

    count: jax.Array | None


def scale(step_size: _hyper.Hyper) -> optax.GradientTransformation:
    """Multiply updates by ``step_size`` (a number, an array, or a schedule ``count -> value``).

    Any real value is allowed here, negative included: this is plain arithmetic.
    """

    def init_fn(params):
        del params
        return ScaleState(count=_tree.schedule_count(step_size))

    def update_fn(updates, state, params=None):
        del params
        factor = _hyper.value_at(step_size, state.count)
        at = _hyper.per_dtype(factor=factor)
        updates = jax.tree.map(lambda u: u * at(u.dtype).factor, updates)
        return updates, ScaleState(count=_tree.next_count(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


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
    _hyper.check_nonnegative("learning_rate", learning_rate)
    if callable(learning_rate):
        step_size = (lambda count: -learning_rate(count)) if flip_sign else learning_rate
    else:
        step_size = -learning_rate if flip_sign else learning_rate
    return scale(step_size)
