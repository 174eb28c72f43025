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

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree

ClipState = _state.ScheduleState  # a scheduled bound's counter; EmptyState without


def clip(max_delta: _hyper.Hyper) -> optax.GradientTransformation:
    """Clip every element to ``[-max_delta, max_delta]`` (``max_delta >= 0``)."""
    hypers = _hyper.Hyperparameters(max_delta=(max_delta, _hyper.NONNEGATIVE))

    def clipped(updates, values, params):
        del params
        at = _hyper.per_dtype(bound=values.max_delta)
        return jax.tree.map(lambda u: jnp.clip(u, -at(u.dtype).bound, at(u.dtype).bound), updates)

    return _tree.stateless(hypers, clipped)


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
    hypers = _hyper.Hyperparameters(max_norm=(max_norm, _hyper.POSITIVE))

    def rescaled(updates, values, params):
        del params
        _tree.require_real(updates, "clip_by_global_norm", what="gradients")
        norm = global_norm(updates)
        bound = jnp.asarray(values.max_norm, norm.dtype)
        factor = jnp.where(norm > bound, bound / norm, jnp.ones_like(norm))
        return jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)

    return _tree.stateless(hypers, rescaled)
