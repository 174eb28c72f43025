r"""Skip updates whose gradients hold a NaN or an Inf, up to a limit (``apply_if_finite``).

The inner update is computed on every step and selected with ``jnp.where``: no host
callback and no ``lax.cond``, so the wrapper works under ``jit``, ``pmap`` and
``shard_map``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _state, _tree
from optjx._hyper import check_int
from optjx._tree import select_tree


class ApplyIfFiniteState(NamedTuple):
    """The non-finite streak and total, the last flag, the inner state (optax's fields)."""

    notfinite_count: jax.Array
    total_notfinite: jax.Array
    last_finite: jax.Array
    inner_state: optax.OptState


def apply_if_finite(
    inner: optax.GradientTransformation, *, max_consecutive_errors: int
) -> optax.GradientTransformationExtraArgs:
    r"""Zero the update and keep ``inner``'s state when the gradients are not all finite.

    One scalar flag (every element of every gradient leaf finite) decides the step:

    * finite: the inner update and new state are used; the streak of consecutive
      non-finite steps restarts at 0.
    * not finite, fewer than ``max_consecutive_errors`` in a row so far: the update is zero
      and the inner state (its step count included) is kept exactly as it was.
    * not finite with the streak at the limit: the update is applied anyway (a diverged
      run fails visibly instead of skipping forever) and the streak restarts at 0.

    ``total_notfinite`` in the state counts every non-finite step; ``last_finite`` records
    the latest flag. On many devices put it after the cross-replica mean so that every
    replica takes the same decision.

    Args:
      inner: the guarded optimizer.
      max_consecutive_errors: an int $\ge 1$ (required), the longest run of non-finite
        steps that is skipped.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with an ``ApplyIfFiniteState`` (optax's
      fields); extra keyword arguments of ``update`` are passed to ``inner``.

    Differences from PyTorch and optax:
      ``optax.apply_if_finite`` (0.2.8) keeps counting after it gives up, so once past the
      limit every later non-finite step is applied until a finite one comes (optax PR 1746
      proposes the reset); it also chooses with ``lax.cond``. PyTorch's ``GradScaler``
      skips non-finite steps in mixed precision only.

    Examples:
      >>> tx = optjx.apply_if_finite(optjx.adam(1e-3), max_consecutive_errors=5)
    """
    check_int("max_consecutive_errors", max_consecutive_errors, 1)
    _state.require_transformation("apply_if_finite", inner)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(
            notfinite_count=_state.zero_count(),
            total_notfinite=_state.zero_count(),
            last_finite=jnp.asarray(True),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        finite = _tree.all_finite(updates)
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        give_up = ~finite & (state.notfinite_count >= max_consecutive_errors)
        apply = finite | give_up
        out = jax.tree.map(lambda u: jnp.where(apply, u, jnp.zeros_like(u)), new_updates)
        inner_state = select_tree(apply, new_inner, state.inner_state)
        streak = jnp.where(apply, 0, _state.next_count(state.notfinite_count))
        total = jnp.where(finite, state.total_notfinite, _state.next_count(state.total_notfinite))
        return out, ApplyIfFiniteState(
            notfinite_count=streak.astype(jnp.int32),
            total_notfinite=total,
            last_finite=finite,
            inner_state=inner_state,
        )

    return _state.transformation(init_fn, update_fn, extra_args=True)
