r"""Gradient accumulation: one optimizer step from the mean of ``k`` micro-batch gradients.

.. math::

   S \leftarrow S + g_t; \qquad
   \text{if } t \bmod k = 0: \ u_t = \text{inner}(S / k),\ S \leftarrow 0;
   \quad \text{else } u_t = 0

The inner optimizer's state advances once per ``k`` calls, so ``k`` micro-batches of
size ``B`` give the same step as one batch of size ``kB`` (for a loss that is a mean over
the batch), up to floating-point rounding of the sum.

The inner update is computed on every call and selected with ``jnp.where`` on one
scalar: no ``lax.cond`` over trees, so it compiles once, fuses and works under
``shard_map``. The price is one inner update's arithmetic per micro-batch, small next
to the forward and backward pass that produced the gradient.

Differences: ``optax.MultiSteps`` wraps the optimizer in an object of its own with its
``lax.cond`` and keeps a running (Welford) mean; this is a plain transformation that composes in a
chain, keeps the sum and divides once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _tree
from optjx.wrappers._find import check_int, select_tree


class AccumulateGradientsState(NamedTuple):
    """Calls seen, the position in the current group, the gradient sum, the inner state."""

    count: jax.Array
    micro_step: jax.Array
    gradient_sum: optax.Updates
    inner_state: optax.OptState


def accumulate_gradients(
    inner: optax.GradientTransformation, every_k: int, *, accumulator_dtype=None
) -> optax.GradientTransformationExtraArgs:
    """Apply ``inner`` to the mean of every ``every_k`` consecutive gradients.

    Args:
      inner: the optimizer to step once per group.
      every_k: an int ``>= 1``, the number of micro-batches per step; ``1`` is ``inner``.
      accumulator_dtype: dtype of the gradient sum; defaults to each parameter's dtype.

    Returns zero updates on the first ``every_k - 1`` calls of each group. Extra keyword
    arguments of ``update`` are passed to ``inner`` on every call (its state is kept only
    from the last call of each group).
    """
    check_int("every_k", every_k, 1)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return AccumulateGradientsState(
            count=_tree.zero_count(),
            micro_step=_tree.zero_count(),
            gradient_sum=_tree.zeros_like(params, accumulator_dtype),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _tree.check_matching(updates, state.gradient_sum)
        total = jax.tree.map(lambda s, g: s + g.astype(s.dtype), state.gradient_sum, updates)
        mean = jax.tree.map(
            lambda s, g: (s / jnp.asarray(every_k, s.dtype)).astype(g.dtype), total, updates
        )
        step_updates, new_inner = inner.update(mean, state.inner_state, params, **extra_args)
        last = state.micro_step == every_k - 1
        out = jax.tree.map(lambda u: jnp.where(last, u, jnp.zeros_like(u)), step_updates)
        return out, AccumulateGradientsState(
            count=_tree.next_count(state.count),
            micro_step=jnp.where(last, 0, state.micro_step + 1).astype(jnp.int32),
            gradient_sum=jax.tree.map(lambda s: jnp.where(last, jnp.zeros_like(s), s), total),
            inner_state=select_tree(last, new_inner, state.inner_state),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
