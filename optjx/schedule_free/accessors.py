r"""The schedule-free accessors: the evaluation weights $x$ from the params $y$, and back.

The params a schedule-free optimizer trains are $y_t = (1 - \beta) z_t + \beta x_t$; its
state holds $z_t$ and the $\beta$ that formed $y_t$, so $x_t$ is computed on demand.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from optjx._find import fill_from, find_unique, not_owned
from optjx.schedule_free.core import ScheduleFreeState

_BUILT_WITH = "sgd_schedule_free, adamw_schedule_free, radam_schedule_free or schedule_free(...)"


def _find(state, accessor):
    return find_unique(state, (ScheduleFreeState,), accessor, "schedule-free", _BUILT_WITH)


def _check_params(z, params, accessor) -> None:
    """A ``ValueError`` naming the key path where ``params`` do not match the state's
    ``z`` (leaves the stage does not own, masked or integer, match anything)."""
    paths_and_leaves = jax.tree_util.tree_flatten_with_path(z, is_leaf=not_owned)[0]
    try:
        treedef: Any = jax.tree.structure(z, is_leaf=not_owned)  # stubs lack flatten_up_to
        given = treedef.flatten_up_to(params)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{accessor}: the params do not match the schedule-free state's z (containers "
            f"differ: {error}). Pass the params the optimizer was initialised with."
        ) from None
    for (path, z_leaf), p in zip(paths_and_leaves, given, strict=True):
        if not not_owned(z_leaf) and jnp.shape(p) != jnp.shape(z_leaf):
            raise ValueError(
                f"{accessor}: the params do not match the schedule-free state's z at key "
                f"path {jax.tree_util.keystr(path)}: shape {jnp.shape(p)} vs "
                f"{jnp.shape(z_leaf)}. Pass the params the optimizer was initialised with."
            )


def _move(state, params, toward_z, accessor):
    found = _find(state, accessor)
    _check_params(found.z, params, accessor)

    def one(z, p):
        if not_owned(z):
            return z
        weight = toward_z(found.momentum).astype(z.dtype)
        return (p.astype(z.dtype) + weight * (z - p.astype(z.dtype))).astype(p.dtype)

    moved = jax.tree.map(one, found.z, params, is_leaf=not_owned)
    return fill_from(moved, params)


def schedule_free_eval_params(state: optax.OptState, params: optax.Params) -> optax.Params:
    r"""The evaluation weights $x$ of a schedule-free optimizer, from the params $y$.

    $$
    x_t = y_t + \Big(1 - \frac{1}{\beta}\Big)(z_t - y_t)
    $$

    the inverse of $y_t = (1 - \beta) z_t + \beta x_t$, with $z_t$ and $\beta$ (the one
    that formed $y_t$) read from the state. $x$ is the weighted average of the $z$
    iterates: evaluate, report and export the model at $x$, keep training from $y$. With
    BatchNorm, the running statistics were collected at $y$: recompute them at $x$ (a few
    training batches through the model at $x$, statistics updated, params not) before
    evaluating. GroupNorm and LayerNorm have no running statistics and need nothing.

    References:
      Defazio et al. (2024), "The Road Less Scheduled", NeurIPS, Algorithm 1.

    Args:
      state: the schedule-free state itself, or any optimizer state that holds exactly
        one (chains, nested chains, ``optax.masked``, ``optax.inject_hyperparams``,
        ``optjx.apply_if_finite``, ``optjx.accumulate_gradients``, ...).
      params: the params $y$ being trained, the tree the optimizer was initialised with.

    Returns:
      $x$, a tree like ``params`` in its dtypes. Leaves the schedule-free stage does not
      own (masked out, integer leaves) come from ``params`` unchanged.

    Raises:
      ValueError: ``state`` holds no schedule-free state, or more than one.

    Differences from PyTorch and optax:
      The ``schedulefree`` reference swaps $y$ and $x$ inside the parameters in place
      (``optimizer.eval()`` / ``optimizer.train()``), so forgetting a call trains or
      evaluates at the wrong point; here the params stay $y$ and $x$ is a new tree.
      ``optax.contrib.schedule_free_eval_params`` accepts only the bare schedule-free
      state, not a chain or a wrapper around it.

    Examples:
      >>> x = optjx.schedule_free_eval_params(state.opt_state, state.params)
      >>> logits = state.apply_fn(x, x_test)
    """
    return _move(state, params, lambda beta: 1.0 - 1.0 / beta, "schedule_free_eval_params")


def schedule_free_train_params(state: optax.OptState, eval_params: optax.Params) -> optax.Params:
    r"""The training params $y$ from evaluation weights $x$: the inverse of the above.

    $$
    y_t = x_t + (1 - \beta)(z_t - x_t)
    $$

    with $z_t$ and $\beta$ read from the state, for resuming training from an exported
    $x$ (with the optimizer state saved beside it). Up to rounding,
    ``schedule_free_train_params(s, schedule_free_eval_params(s, y))`` is ``y``.

    References:
      Defazio et al. (2024), "The Road Less Scheduled", NeurIPS, Algorithm 1.

    Args:
      state: an optimizer state holding exactly one schedule-free state (as for
        [`schedule_free_eval_params`][optjx.schedule_free_eval_params]).
      eval_params: the evaluation weights $x$, a tree like the trained params.

    Returns:
      $y$, a tree like ``eval_params`` in its dtypes; leaves the schedule-free stage does
      not own come from ``eval_params`` unchanged.

    Raises:
      ValueError: ``state`` holds no schedule-free state, or more than one.

    Differences from PyTorch and optax:
      The reference's ``optimizer.train()`` does this in place; optax has no inverse.

    Examples:
      >>> y = optjx.schedule_free_train_params(state.opt_state, x)
    """
    return _move(state, eval_params, lambda beta: 1.0 - beta, "schedule_free_train_params")
