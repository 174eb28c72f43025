r"""Weight decay: add ``lambda * w`` to the updates.

.. math::  u_t = g_t + \lambda_k w_t

Placed *before* a preconditioner (``chain(add_decayed_weights(l), scale_by_adam())``)
this is coupled L2 regularisation, the ``weight_decay`` of ``torch.optim.SGD``/``Adam``.
Placed *after* it and before the learning rate
(``chain(scale_by_adam(), add_decayed_weights(l), scale_by_learning_rate(lr))``) it is
the decoupled weight decay of Loshchilov & Hutter (2019), ``w <- w - lr*l*w``, as in
``torch.optim.AdamW``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import optax

from optjx import _hyper, _tree


class AddDecayedWeightsState(NamedTuple):
    """The number of updates applied, kept only for a scheduled decay (else ``None``)."""

    count: jax.Array | None


def add_decayed_weights(
    weight_decay: _hyper.Hyper,
    *,
    mask: Optional[Union[Any, Callable[[Any], Any]]] = None,
) -> optax.GradientTransformation:
    """Add ``weight_decay * params`` to the updates.

    Args:
      weight_decay: ``lambda >= 0``; a number, an array or a schedule.
      mask: a tree of Python bools shaped like the params (or a function of the params
        returning one): decay only where ``True``. Typically excludes biases and norms.
    """
    _hyper.check_nonnegative("weight_decay", weight_decay)

    def init_fn(params):
        del params
        return AddDecayedWeightsState(count=_tree.schedule_count(weight_decay))

    def update_fn(updates, state, params=None):
        _tree.require_params(params, "add_decayed_weights")
        _tree.check_matching(updates, params, against="the params")
        at = _hyper.per_dtype(decay=_hyper.value_at(weight_decay, state.count))

        def decayed(u, p):
            return u + at(u.dtype).decay * p.astype(u.dtype)

        if mask is None:
            updates = jax.tree.map(decayed, updates, params)
        else:
            keep = mask(params) if callable(mask) else mask
            updates = jax.tree.map(lambda u, p, k: decayed(u, p) if k else u, updates, params, keep)
        return updates, AddDecayedWeightsState(count=_tree.next_count(state.count))

    return optax.GradientTransformation(init_fn, update_fn)
