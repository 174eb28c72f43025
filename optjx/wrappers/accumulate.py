r"""Gradient accumulation (``accumulate_gradients``) as a plain transformation.

The inner update is computed on every call and selected with ``jnp.where`` on one
scalar: no ``lax.cond`` over trees, so it compiles once, fuses and works under
``shard_map``. The price is one inner update's arithmetic per micro-batch, small next
to the forward and backward pass that produced the gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _state, _tree
from optjx._hyper import check_int
from optjx._tree import select_tree


class AccumulateGradientsState(NamedTuple):
    """The number of inner steps taken (what an ``every_k`` schedule and the skip function
    receive, as the ``gradient_step`` of ``optax.MultiSteps``), the position in the current
    group, the gradient sum, the inner state and the skip function's state (``None``
    without one)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    micro_step: jax.Array
    gradient_sum: optax.Updates
    inner_state: optax.OptState
    skip_state: Any = None


def accumulate_gradients(
    inner: optax.GradientTransformation,
    every_k: int | Callable[[jax.Array], jax.Array],
    *,
    accumulator_dtype: Any = None,
    should_skip_update_fn: Callable | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Apply ``inner`` to the mean of every ``every_k`` consecutive gradients.

    $$
    S \leftarrow S + g_t; \qquad
    \text{if } t \bmod k = 0:\ u_t = \text{inner}(S / k),\ S \leftarrow 0;
    \quad \text{else } u_t = 0
    $$

    The inner optimizer's state advances once per $k$ calls, so $k$ micro-batches of size
    $B$ give the same step as one batch of size $kB$ (for a loss that is a mean over the
    batch), up to the rounding of the sum.

    Args:
      inner: the optimizer to step once per group.
      every_k: an int $\ge 1$, the number of micro-batches per step (``1`` is ``inner``);
        or a schedule ``inner_step -> k`` of the number of inner steps already taken, as
        ``optax.MultiSteps``' ``every_k_schedule`` (read at the start of each group; its
        value must be an int $\ge 1$). Under ``optax.inject_hyperparams`` list it in
        ``static_args``: an array is refused.
      accumulator_dtype: dtype of the gradient sum (default: each parameter's dtype).
      should_skip_update_fn: ``fn(updates, gradient_step, params) -> (skip, skip_state)``
        with ``skip`` a scalar bool (default ``None``), the signature of
        ``optax.MultiSteps``' argument, so ``optax.skip_not_finite`` works: a skipped
        micro-batch is left out of the sum and does not count towards $k$.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with an ``AccumulateGradientsState``:
      zero updates on the first $k - 1$ calls of each group. Extra keyword arguments of
      ``update`` are passed to ``inner`` on every call.

    Differences from PyTorch and optax:
      ``optax.MultiSteps`` wraps the optimizer in an object of its own with a ``lax.cond``
      and keeps a running (Welford) mean; this is a plain transformation that composes in a
      chain, keeps the sum and divides once. In PyTorch one calls ``step()`` every $k$
      ``backward()`` calls.

    Examples:
      >>> tx = optjx.accumulate_gradients(optjx.adamw(3e-4), every_k=4)
    """
    if should_skip_update_fn is not None and not callable(should_skip_update_fn):
        raise TypeError(
            "should_skip_update_fn must be None or a function (updates, gradient_step, "
            f"params) -> (skip, skip_state), got {type(should_skip_update_fn).__name__}"
        )
    scheduled = callable(every_k)
    if not scheduled:
        check_int("every_k", every_k, 1)
    _state.require_transformation("accumulate_gradients", inner)
    inner = optax.with_extra_args_support(inner)

    def group_size(state):
        if not callable(every_k):
            return every_k
        return jnp.maximum(jnp.asarray(every_k(state.count), jnp.int32), 1)

    def init_fn(params):
        skip_state = None
        if should_skip_update_fn is not None:
            zeros = _tree.zeros_like(params)
            _, skip_state = should_skip_update_fn(zeros, _state.zero_count(), params)
        return AccumulateGradientsState(
            count=_state.zero_count(),
            micro_step=_state.zero_count(),
            gradient_sum=_tree.zeros_like(params, accumulator_dtype),
            inner_state=inner.init(params),
            skip_state=skip_state,
        )

    def update_fn(updates, state, params=None, **extra_args):
        _tree.check_matching(updates, state.gradient_sum)
        k = group_size(state)
        skip, skip_state = jnp.asarray(False), None
        if should_skip_update_fn is not None:
            skip, skip_state = should_skip_update_fn(updates, state.count, params)
            skip = jnp.asarray(skip)
            if skip.shape != () or skip.dtype != jnp.bool_:
                raise ValueError(
                    "should_skip_update_fn must return a scalar bool as its first output, "
                    f"got dtype {skip.dtype} and shape {skip.shape}"
                )
        if should_skip_update_fn is None:
            total = jax.tree.map(lambda s, g: s + g.astype(s.dtype), state.gradient_sum, updates)
        else:
            total = jax.tree.map(
                lambda s, g: jnp.where(skip, s, s + g.astype(s.dtype)), state.gradient_sum, updates
            )
        mean = jax.tree.map(
            lambda s, g: (s / jnp.asarray(k, s.dtype)).astype(g.dtype), total, updates
        )
        step_updates, new_inner = inner.update(mean, state.inner_state, params, **extra_args)
        last = (state.micro_step == k - 1) & jnp.logical_not(skip)
        out = jax.tree.map(lambda u: jnp.where(last, u, jnp.zeros_like(u)), step_updates)
        micro_step = jnp.where(skip, state.micro_step, jnp.where(last, 0, state.micro_step + 1))
        return out, state._replace(
            count=jnp.where(last, _state.next_count(state.count), state.count),
            micro_step=micro_step.astype(jnp.int32),
            gradient_sum=jax.tree.map(lambda s: jnp.where(last, jnp.zeros_like(s), s), total),
            inner_state=select_tree(last, new_inner, state.inner_state),
            skip_state=skip_state,
        )

    return _state.transformation(init_fn, update_fn, extra_args=True)
