r"""Weight decay (``add_decayed_weights``): coupled L2 or decoupled, by its place in a chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Union

import jax
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


def add_decayed_weights(
    weight_decay: Hyperparameter,
    *,
    mask: Optional[Union[Any, Callable[[Any], Any]]] = None,
) -> optax.GradientTransformation:
    r"""Add $\lambda_k w$ to the updates.

    $$
    u_t = g_t + \lambda_k w_t
    $$

    Placed *before* a preconditioner (``chain(add_decayed_weights(l), scale_by_adam())``)
    this is coupled L2 regularisation, the ``weight_decay`` of ``torch.optim.SGD`` and
    ``Adam``. Placed *after* it and before the learning rate
    (``chain(scale_by_adam(), add_decayed_weights(l), scale_by_learning_rate(lr))``) it is
    the decoupled weight decay of Loshchilov & Hutter (2019), $w \leftarrow w - \eta\lambda w$,
    as in ``torch.optim.AdamW``.

    References:
      Loshchilov & Hutter (2019), "Decoupled weight decay regularization".

    Args:
      weight_decay: $\lambda \ge 0$ (required); a number, an array or a schedule.
      mask: a tree of Python bools shaped like the params, or a function of the params
        returning one (default ``None``: decay everything); decay only where ``True``.
        Typically excludes biases and norms.

    Returns:
      An ``optax.GradientTransformation`` whose state is its step counter (for a
      schedule); its ``update`` needs ``params`` (not for ``None`` updates).

    Raises:
      ValueError: a negative ``weight_decay``; ``update`` called without ``params``.

    Differences from PyTorch and optax:
      As ``optax.add_decayed_weights``, with validation and schedules. In PyTorch the decay
      is an argument of each optimizer, not a stage.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adam(), optjx.add_decayed_weights(1e-2),
      ...                  optjx.scale_by_learning_rate(1e-3))  # AdamW
    """
    return _state.stateless(decay_rule(weight_decay, mask=mask))


def decay_rule(weight_decay: Hyperparameter, *, mask=None) -> _state.Rule:
    """What ``add_decayed_weights`` does, for an alias's chain (``_state.chain``)."""
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

    return _state.Rule(hypers, decayed, needs_params="add_decayed_weights")
