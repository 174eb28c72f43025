"""Helpers shared by the wrappers: find a wrapper's state inside any state, select states.

* :func:`find_unique` walks an optimizer state of any shape (``optax.chain`` tuples,
  nested chains, NamedTuples, dicts, optax's masked and multi-transform states, other
  wrappers' states) and returns the one node of a given state class. It backs the
  accessors ``slow_params`` and ``averaged_params``.
* :func:`select_tree` picks a whole state by one scalar flag, leaf by leaf with
  ``jnp.where``, including typed PRNG key and bool leaves: the wrappers use it instead
  of ``lax.cond`` over trees.
* :func:`copy_params` and :func:`check_int`: the params copy kept in a state, and the
  validation of integer arguments (``sync_period``, ``every_k``, ``patience``, ...).
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import optax


def _find_all(tree, cls) -> list:
    # Matching nodes come back as leaves of the flattening; their own children are then
    # searched too, so that a wrapper nested inside another of the same kind is counted.
    found = []
    for node in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, cls)):
        if isinstance(node, cls):
            found.append(node)
            found.extend(_find_all(tuple(node), cls))
    return found


def find_unique(state, cls, accessor: str, wrapper: str):
    """The single ``cls`` node inside ``state``; ``ValueError`` when there is none or several."""
    found = _find_all(state, cls)
    if not found:
        raise ValueError(
            f"{accessor} found no {wrapper} state in the optimizer state: pass the state "
            f"of an optimizer built with {wrapper}(...)."
        )
    if len(found) > 1:
        raise ValueError(
            f"{accessor} found {len(found)} {wrapper} states in the optimizer state; "
            "it needs exactly one. Pass the sub-state of the one you mean."
        )
    return found[0]


def _not_owned(x) -> bool:
    return x is None or isinstance(x, optax.MaskedNode)


def fill_from(tree, params):
    """``tree`` with its ``MaskedNode``/``None`` leaves (leaves a wrapper does not own)
    taken from ``params``; ``tree`` itself when ``params`` is ``None``."""
    if params is None:
        return tree
    return jax.tree.map(lambda t, p: p if _not_owned(t) else t, tree, params, is_leaf=_not_owned)


def _is_key(leaf) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _select_leaf(pred, on_true, on_false):
    if _is_key(on_true):
        # Select the raw key bits and re-wrap them: older JAX versions have no `where`
        # on typed key arrays.
        impl = jax.random.key_impl(on_true)
        bits = jnp.where(pred, jax.random.key_data(on_true), jax.random.key_data(on_false))
        return jax.random.wrap_key_data(bits, impl=impl)
    return jnp.where(pred, on_true, on_false)


def select_tree(pred, on_true, on_false):
    """``on_true`` where the scalar ``pred`` holds, else ``on_false``, leaf by leaf.

    Both trees must have the same structure; leaf dtypes are kept (``jnp.where`` of two
    arrays of one dtype), so the state dtypes fixed at ``init`` do not drift.
    """
    return jax.tree.map(lambda a, b: _select_leaf(pred, a, b), on_true, on_false)


def copy_params(params):
    """A fresh copy of ``params``: never the same buffers, so that a jitted step can donate
    the params and the state that holds the copy together."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise ValueError(
                "This wrapper keeps a copy of the params' values, and the params at key path "
                f"{jax.tree_util.keystr(path)} are abstract (jax.ShapeDtypeStruct). For an "
                "abstract state use jax.eval_shape(tx.init, params) instead of tx.init(params)."
            )
    return jax.tree.map(lambda p: jnp.array(p, dtype=p.dtype, copy=True), params)


def check_int(name: str, value, minimum: int) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is an int ``>= minimum`` (not a bool)."""
    try:
        as_int = operator.index(value)
    except TypeError:
        as_int = None
    if isinstance(value, bool) or as_int is None or as_int < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
