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
from typing import Any, Optional, Union

import jax
import optax

from optjx import _hyper, _state, _tree

AddDecayedWeightsState = _state.ScheduleState  # a scheduled decay's counter; else EmptyState


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
    hypers = _hyper.Hyperparameters(weight_decay=(weight_decay, _hyper.NONNEGATIVE))

    def decayed(updates, values, params):
        _tree.check_matching(updates, params, against="the params")
        at = _hyper.per_dtype(decay=values.weight_decay)
        keep = (mask(params) if callable(mask) else mask) if mask is not None else None

        def one(u, p, k=True):
            # A None update (a frozen leaf) stays None, as in optax.
            if u is None or not k:
                return u
            return u + at(u.dtype).decay * p.astype(u.dtype)

        if keep is None:
            return jax.tree.map(one, updates, params, is_leaf=_tree.is_none)
        return jax.tree.map(one, updates, params, keep, is_leaf=_tree.is_none)

    return _tree.stateless(hypers, decayed, needs_params="add_decayed_weights")
