r"""Block coordinate descent around any optimizer (``block_coordinate``).

Goodfellow, Bengio & Courville 2016, *Deep Learning*, section 8.7.2: minimise over one
block of the parameters at a time, holding the others fixed. Each block keeps its own
inner state; an update moves one block and leaves every other block's params and inner
state exactly as they were (bit for bit). All blocks' candidate updates are computed and
one is selected with ``jnp.where`` (no ``lax.cond`` over trees, DESIGN.md convention 5):
an update costs as much as one inner update per block.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _state, _tree
from optjx.training.param_groups import key_path

_ORDERS = ("cyclic", "random")
# Keyword arguments of update that are functions of the (whole) params.
_LOSS_FUNCTIONS = ("value_fn", "value_and_grad_fn", "residual_fn")


class BlockCoordinateState(NamedTuple):
    """The update count, the last block moved, the PRNG key, one inner state per block.

    Attributes:
      count: int32, updates so far (saturating).
      block: int32, the position (in ascending label order) of the block the last update
        moved; ``-1`` before the first update.
      key: the PRNG key of ``order="random"``; ``None`` for ``"cyclic"``.
      inner_states: a tuple, the inner optimizer's state of each block (in ascending
        label order), each initialised on the params with the other blocks' leaves
        ``None``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    block: jax.Array
    key: Any
    inner_states: tuple


def _is_int(label) -> bool:
    return isinstance(label, int | np.integer) and not isinstance(label, bool)


class _Blocks:
    """The label of each leaf of the params, and the masks built from them."""

    treedef: Any  # jax's stubs lack PyTreeDef.unflatten and flatten_up_to

    def __init__(self, blocks, params):
        with_path, self.treedef = jax.tree_util.tree_flatten_with_path(params)
        if callable(blocks):
            labels = [blocks(key_path(path), leaf) for path, leaf in with_path]
            where = [jax.tree_util.keystr(path) for path, _ in with_path]
        else:
            try:
                labels = self.treedef.flatten_up_to(blocks)
            except (ValueError, TypeError) as error:
                raise ValueError(
                    "block_coordinate: blocks must be a tree of ints like the params "
                    f"({self.treedef}) or a function (path, leaf) -> int; got {blocks!r}: "
                    f"{error}"
                ) from error
            where = [jax.tree_util.keystr(path) for path, _ in with_path]
        for label, path in zip(labels, where, strict=True):
            if not _is_int(label):
                raise ValueError(
                    f"block_coordinate: the block of the leaf at {path} must be an int, got "
                    f"{label!r}."
                )
        self.labels = [int(label) for label in labels]
        self.order = sorted(set(self.labels))

    def flat(self, tree) -> list:
        return self.treedef.flatten_up_to(tree)

    def only(self, tree, block: int):
        """``tree`` with ``None`` at every leaf outside ``block``."""
        if tree is None:
            return None
        return self.treedef.unflatten(
            [
                x if lab == block else None
                for x, lab in zip(self.flat(tree), self.labels, strict=True)
            ]
        )

    def merged(self, block_tree, full, block: int):
        """``full`` with the leaves of ``block`` taken from ``block_tree``."""
        return self.treedef.unflatten(
            [
                b if lab == block else f
                for b, f, lab in zip(
                    self.flat(block_tree), self.flat(full), self.labels, strict=True
                )
            ]
        )


def _block_extra_args(extra: dict, blocks: _Blocks, params, block: int) -> dict:
    """The loss functions of ``extra`` as functions of one block's leaves."""
    out = dict(extra)
    for name in _LOSS_FUNCTIONS:
        fn = extra.get(name)
        if fn is None:
            continue
        if name == "value_and_grad_fn":

            def block_fn(p, fn=fn):
                value, grads = fn(blocks.merged(p, params, block))
                return value, blocks.only(grads, block)

        else:

            def block_fn(p, fn=fn):
                return fn(blocks.merged(p, params, block))

        out[name] = block_fn
    return out


def block_coordinate(
    inner: optax.GradientTransformation,
    blocks: Any,
    *,
    order: str = "cyclic",
    key: jax.Array | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Block coordinate descent: each update moves one block of leaves with ``inner``.

    The leaves are split into blocks by an integer label; update $t$ moves block
    $b_t$ only:

    $$\theta_{b_t} \leftarrow \theta_{b_t} + u_{b_t}(g_{b_t}, s_{b_t}), \qquad
    \theta_b,\ s_b \text{ unchanged for } b \ne b_t,$$

    with $s_b$ the inner state of block $b$ (one per block, so an inner step count or
    moment advances only on its block's turns). ``order="cyclic"``: $b_t$ runs through
    the labels in ascending order; ``"random"``: $b_t$ is drawn uniformly from the
    ``key`` in the state, split at every update (reproducible from ``key``).

    A full-batch inner method (``optjx.lbfgs()``, ...) gets ``value_fn`` /
    ``value_and_grad_fn`` / ``residual_fn`` wrapped so that it sees the whole params with
    only its block varying: one update minimises over one block (exact block coordinate
    minimisation when the inner method converges).

    Cost: every block's inner update is computed at each update and one is selected with
    ``jnp.where`` (no ``lax.cond``), so an update costs one inner update per block.

    Args:
      inner: the optimizer of each block (minibatch or full-batch).
      blocks: the block of each leaf: a tree of Python ints like the params, or a
        function ``(path, leaf) -> int`` with ``path`` the leaf's key names joined by
        ``"/"`` (as ``optjx.param_groups`` matches, e.g. ``"params/Dense_0/kernel"``).
      order: ``"cyclic"`` (default) or ``"random"``.
      key: a ``jax.random`` key, required for (and only for) ``order="random"``.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``BlockCoordinateState``;
      extra keyword arguments of ``update`` are passed to ``inner``.

    Raises:
      ValueError: a bad ``order``; ``key`` missing for ``"random"`` or given for
        ``"cyclic"``; at ``init``, ``blocks`` not a tree like the params or a label not an
        int. TypeError: ``inner`` not a transformation.

    References:
      Goodfellow, Bengio & Courville 2016, *Deep Learning*, section 8.7.2.

    Examples:
      >>> tx = optjx.block_coordinate(optjx.sgd(0.1), {"w": 0, "b": 1})
    """
    if not (hasattr(inner, "init") and hasattr(inner, "update")):
        raise TypeError(f"block_coordinate: inner must be an optimizer, got {inner!r}.")
    if order not in _ORDERS:
        raise ValueError(f"block_coordinate: order must be one of {_ORDERS}, got {order!r}.")
    if (order == "random") != (key is not None):
        raise ValueError(
            "block_coordinate: key= (a jax.random key) is required for order='random' and "
            f"only for it; got order={order!r}, key={key!r}."
        )
    inner = optax.with_extra_args_support(inner)
    if not callable(blocks):
        labels = jax.tree.leaves(blocks)
        if not labels or not all(_is_int(label) for label in labels):
            raise ValueError(
                "block_coordinate: blocks must be a non-empty tree of ints like the params or "
                f"a function (path, leaf) -> int, got {blocks!r}."
            )

    def init(params):
        split = _Blocks(blocks, params)
        return BlockCoordinateState(
            count=_state.zero_count(),
            block=jnp.full([], -1, jnp.int32),
            key=key,
            inner_states=tuple(inner.init(split.only(params, b)) for b in split.order),
        )

    def chosen_block(state):
        if order == "cyclic":
            return (state.count % len(state.inner_states)).astype(jnp.int32), None
        new_key, draw = jax.random.split(state.key)
        return jax.random.randint(draw, (), 0, len(state.inner_states), jnp.int32), new_key

    def update(updates, state, params=None, **extra):
        _tree.require_params(params, "block_coordinate")
        if updates is not None:
            _tree.check_matching(updates, params, against="the params")
        split = _Blocks(blocks, params)
        if len(split.order) != len(state.inner_states):
            raise ValueError(
                f"block_coordinate: the params have {len(split.order)} blocks, the state "
                f"{len(state.inner_states)}."
            )
        active, new_key = chosen_block(state)
        position = {label: i for i, label in enumerate(split.order)}
        per_block, inner_states = {}, []
        for i, label in enumerate(split.order):
            out, new_inner = inner.update(
                split.only(updates, label),
                state.inner_states[i],
                split.only(params, label),
                **_block_extra_args(extra, split, params, label),
            )
            per_block[label] = split.flat(out)
            inner_states.append(_tree.select_tree(active == i, new_inner, state.inner_states[i]))
        leaves = []
        for j, label in enumerate(split.labels):
            u = per_block[label][j]
            moved = (
                None if u is None else jnp.where(active == position[label], u, jnp.zeros_like(u))
            )
            leaves.append(moved)
        return split.treedef.unflatten(leaves), BlockCoordinateState(
            count=_state.next_count(state.count),
            block=active,
            key=new_key,
            inner_states=tuple(inner_states),
        )

    return optax.GradientTransformationExtraArgs(init, update)
