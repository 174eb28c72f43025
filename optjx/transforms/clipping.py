r"""Clipping: element-wise (``clip``) and by the global norm of the update tree.

optjx writes its own instead of re-exporting optax's to validate the bound at
construction, accept a schedule, and scale with one multiply per element (a scalar
factor instead of a per-element select). The norm is a sum of per-leaf reductions, so
it is exact under sharded ``jit`` too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


def clip(max_delta: Hyperparameter) -> optax.GradientTransformation:
    r"""Clip every element to $[-c, c]$.

    $$
    u_i = \min(\max(g_i, -c), c)
    $$

    Args:
      max_delta: $c \ge 0$ (required); a number, an array or a schedule.

    Returns:
      An ``optax.GradientTransformation`` whose state is its step counter (for a schedule).

    Differences from PyTorch and optax:
      As ``optax.clip`` and ``torch.nn.utils.clip_grad_value_``.

    Examples:
      >>> tx = optjx.chain(optjx.clip(1.0), optjx.sgd(0.1))
    """
    hypers = _hyper.Hyperparameters(max_delta=(max_delta, _hyper.NONNEGATIVE))

    def clipped(updates, values, params):
        del params
        at = _hyper.per_dtype(bound=values.max_delta)
        return jax.tree.map(lambda u: jnp.clip(u, -at(u.dtype).bound, at(u.dtype).bound), updates)

    return _state.stateless(_state.Rule(hypers, clipped))


def global_norm(tree: optax.Updates) -> jax.Array:
    r"""Euclidean norm of all leaves of ``tree`` together, accumulated in at least float32.

    Each leaf's squares are summed in its own dtype (float32 for narrower floats), as
    ``torch.nn.utils.clip_grad_norm_`` takes per-tensor norms; the per-leaf sums are added
    in the widest of those dtypes, the dtype of the result.

    Args:
      tree: a pytree of arrays.

    Returns:
      A scalar array $\lVert g \rVert_2$ (float32, or float64 when a leaf is float64).
    """
    return jnp.sqrt(_tree.sum_of_squares(tree, _tree.reduction_dtype(tree)))


def clip_by_global_norm(max_norm: Hyperparameter) -> optax.GradientTransformation:
    r"""Rescale the whole tree so that its global norm is at most $c$.

    $$
    u = g \cdot \min\!\Big(1, \frac{c}{\lVert g \rVert_2}\Big)
    $$

    with $\lVert g \rVert_2$ the Euclidean norm of all leaves concatenated.

    References:
      Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural
      networks".

    Args:
      max_norm: $c > 0$ (required); a number, an array or a schedule.

    Returns:
      An ``optax.GradientTransformation`` whose state is its step counter (for a schedule).

    Differences from PyTorch and optax:
      ``torch.nn.utils.clip_grad_norm_`` divides by $\lVert g \rVert + 10^{-6}$; optjx and
      ``optax.clip_by_global_norm`` do not.

    Examples:
      >>> tx = optjx.chain(optjx.clip_by_global_norm(1.0), optjx.adam(1e-3))
    """
    hypers = _hyper.Hyperparameters(max_norm=(max_norm, _hyper.POSITIVE))

    def rescaled(updates, values, params):
        del params
        _tree.require_real(updates, "clip_by_global_norm", what="gradients")
        norm = global_norm(updates)
        bound = jnp.asarray(values.max_norm, norm.dtype)
        factor = jnp.where(norm > bound, bound / norm, jnp.ones_like(norm))
        return jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)

    return _state.stateless(_state.Rule(hypers, rescaled))
