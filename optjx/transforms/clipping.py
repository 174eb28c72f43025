r"""Clipping: element-wise, and by the global norm of the whole update tree.

.. math::

   \mathrm{clip}(g)_i = \min(\max(g_i, -c), c), \qquad
   \mathrm{clip\_by\_global\_norm}(g) = g \cdot \min\!\Big(1, \frac{c}{\lVert g \rVert_2}\Big)

with ``||g||_2`` the Euclidean norm of all leaves concatenated (Pascanu et al. 2013,
as ``torch.nn.utils.clip_grad_norm_`` without its ``1e-6``). optjx writes its own
instead of re-exporting optax's to validate the bound at construction, accept a
schedule, and scale with one multiply per element (a scalar factor instead of a
per-element select). The norm is a sum of per-leaf reductions, so it is exact under
sharded ``jit`` too.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _tree


class ClipState(NamedTuple):
    """The number of updates applied, kept only for a scheduled bound (else ``None``)."""

    count: jax.Array | None


def clip(max_delta: _hyper.Hyper) -> optax.GradientTransformation:
    """Clip every element to ``[-max_delta, max_delta]`` (``max_delta >= 0``)."""
    _hyper.check_nonnegative("max_delta", max_delta)

    def init_fn(params):
        del params
        return ClipState(count=_tree.schedule_count(max_delta))

    def update_fn(updates, state, params=None):
        del params
        bound = _hyper.value_at(max_delta, state.count)

        def clipped(u):
            c = _hyper.cast_like(bound, u)
            return jnp.clip(u, -c, c)

        return jax.tree.map(clipped, updates), ClipState(_tree.next_count(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def global_norm(tree) -> jax.Array:
    """Euclidean norm of all leaves together, accumulated in at least float32."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    wide = jnp.float64 if any(leaf.dtype == jnp.float64 for leaf in leaves) else jnp.float32
    total = sum(jnp.sum(jnp.square(leaf.astype(wide))) for leaf in leaves)
    return jnp.sqrt(total)


def clip_by_global_norm(max_norm: _hyper.Hyper) -> optax.GradientTransformation:
    """Rescale the whole tree so its global norm is at most ``max_norm`` (``> 0``)."""
    _hyper.check_range("max_norm", max_norm, low=0.0, low_inclusive=False)

    def init_fn(params):
        _tree.require_real(params, "clip_by_global_norm")
        return ClipState(count=_tree.schedule_count(max_norm))

    def update_fn(updates, state, params=None):
        del params
        bound = _hyper.value_at(max_norm, state.count)
        norm = global_norm(updates)
        bound = jnp.asarray(bound, norm.dtype)
        factor = jnp.where(norm > bound, bound / norm, jnp.ones_like(norm))
        updates = jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)
        return updates, ClipState(_tree.next_count(state.count))

    return optax.GradientTransformation(init_fn, update_fn)
