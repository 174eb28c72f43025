"""Small pytree helpers shared by every transform: moments, dtypes, structure checks,
reductions, selection.

The stage machinery (the leaf filter every stage is built with, counters) is in
``optjx._state``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from optjx import _hyper


def zeros_like(params, dtype=None):
    """Zero moments shaped like ``params`` (never an alias of them, so donation works).

    Works on concrete arrays and on ``jax.ShapeDtypeStruct`` leaves alike.
    """
    return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype or p.dtype), params)


def full_like(params, fill_value, dtype=None):
    """Moments shaped like ``params`` filled with ``fill_value``."""
    return jax.tree.map(lambda p: jnp.full_like(p, fill_value, dtype=dtype or p.dtype), params)


def default_float(x) -> jax.Array:
    """``x`` as JAX's default float type (float64 when x64 is on, else float32)."""
    return jnp.asarray(x, dtype=jnp.asarray(0.0).dtype)


def widest_float(*dtypes) -> jnp.dtype:
    """The widest of some float dtypes; float32 where bfloat16 meets float16 (neither
    holds the other). Explicit, so strict dtype promotion accepts it. Transforms divide
    in it when the state is wider than the gradient (float32 state, float16 gradients),
    then cast the result back to the gradient's dtype."""
    unique = {jnp.dtype(d) for d in dtypes}
    bits = max(jnp.finfo(d).bits for d in unique)
    widest = [d for d in unique if jnp.finfo(d).bits == bits]
    return widest[0] if len(widest) == 1 else jnp.dtype(jnp.float32)


def power_complement(decay, t) -> jax.Array:
    """``1 - decay**t`` at the default float precision (the Adam bias correction).

    Computed as ``-expm1(t * log(decay))`` with the logarithm of a Python ``decay`` taken
    in double precision: ``1 - 0.999**t`` in float32 loses about three digits at small
    ``t`` (and rounding ``0.9999`` to float32 first moves ``1 - decay`` by 2e-4).
    """
    if isinstance(decay, (int, float, np.floating, np.integer)):
        log_decay = default_float(math.log(decay) if decay > 0 else -math.inf)
    else:
        log_decay = jnp.log(default_float(decay))
    return -jnp.expm1(default_float(t) * log_decay)


def update_moment(updates, moments, decay, *, order: int = 1):
    """Exponential moving average of ``g**order`` (order 1 or 2), leaf by leaf.

    ``m <- decay * m + (1 - decay) * g**order`` in each moment's own dtype: the gradient
    is cast first, so float16 gradients are not squared in float16 (inf above 256).
    ``1 - decay`` is taken before rounding (exact for a Python number, as in PyTorch) and
    each scalar is cast once per dtype, not once per leaf.
    """
    at = _hyper.per_dtype(decay=decay, keep=default_float(1.0 - decay))

    def one(g, m):
        k = at(m.dtype)
        g = g.astype(m.dtype)
        return k.decay * m + k.keep * (jnp.square(g) if order == 2 else g)

    return jax.tree.map(one, updates, moments)


# ------------------------------------------------------------------ reductions
# Every reduction over a tree sums (or compares) each leaf in the leaf's accumulator dtype,
# then adds the per-leaf results in the caller's ``dtype``: one rule for the norms of
# clipping, monitor and NovoGrad and for the inner products of the full-batch methods.


def accumulator_dtype(dtype) -> jnp.dtype:
    """The dtype in which a reduction sums the elements of a leaf of ``dtype``.

    The leaf's own dtype when it is a float of 32 bits or more, else float32: a bfloat16
    sum of a million squares would keep about two significant digits.
    """
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.inexact) and jnp.finfo(dtype).bits >= 32:
        return dtype
    return jnp.dtype(jnp.float32)


def reduction_dtype(tree) -> jnp.dtype:
    """The dtype of a scalar reduced from every leaf of ``tree``: the widest of their
    accumulator dtypes (float32 for an empty tree)."""
    dtypes = [accumulator_dtype(leaf.dtype) for leaf in jax.tree.leaves(tree)]
    return widest_float(*dtypes) if dtypes else jnp.dtype(jnp.float32)


def _squares(x) -> jax.Array:
    """``|x_i|^2`` elementwise in ``x``'s accumulator dtype (real for a complex leaf)."""
    x = x.astype(accumulator_dtype(x.dtype))
    if jnp.iscomplexobj(x):
        return jnp.square(x.real) + jnp.square(x.imag)
    return jnp.square(x)


def sum_of_squares(tree, dtype) -> jax.Array:
    """``sum_i |x_i|^2`` over every leaf of ``tree``, as a ``dtype`` scalar."""
    total = jnp.zeros([], dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(_squares(x)).astype(dtype)
    return total


def dot(a, b, dtype) -> jax.Array:
    """``sum_i a_i b_i`` over every pair of leaves, as a ``dtype`` scalar."""
    total = jnp.zeros([], dtype)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        acc = accumulator_dtype(x.dtype)
        total = total + jnp.sum(x.astype(acc) * y.astype(acc)).astype(dtype)
    return total


def sum_abs(tree, dtype) -> jax.Array:
    """``sum_i |x_i|`` over every leaf (the l1 norm of the flat vector), as ``dtype``."""
    total = jnp.zeros([], dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.abs(x).astype(accumulator_dtype(x.dtype))).astype(dtype)
    return total


def max_abs(tree, dtype) -> jax.Array:
    """``max_i |x_i|`` over every leaf, as ``dtype``; NaN if any element is NaN, so
    ``isfinite`` of the result is also the test that every element is finite."""
    # max |x| as max(max x, -min x): two reductions that read x itself, where max(abs(x))
    # made XLA's CPU backend write |x| to memory first. The initial values make zero-size
    # leaves harmless.
    largest = jnp.zeros([], dtype)
    for x in jax.tree.leaves(tree):
        if jnp.iscomplexobj(x):
            x = jnp.abs(x)
        top = jnp.max(x, initial=-jnp.inf).astype(dtype)
        bottom = jnp.min(x, initial=jnp.inf).astype(dtype)
        largest = jnp.maximum(largest, jnp.maximum(top, -bottom))
    return largest


def all_finite(tree) -> jax.Array:
    """A bool scalar: every element of every leaf is finite (``True`` for an empty tree)."""
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


def _paths(tree) -> dict[str, object]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def check_matching(
    tree, reference, *, what: str = "gradients", against: str = "the optimizer state"
) -> None:
    """Raise ``ValueError`` naming the key path where ``tree`` and ``reference`` differ.

    Runs on Python structure only (at trace time under ``jit``), so it costs nothing
    in a compiled step. Checks the tree structure and each leaf's shape.
    """
    if jax.tree.structure(tree) != jax.tree.structure(reference):  # type: ignore[operator]
        got, want = _paths(tree), _paths(reference)
        missing = [p for p in want if p not in got]
        extra = [p for p in got if p not in want]
        container = _container_mismatch(
            jax.tree.structure(tree, is_leaf=is_none),
            jax.tree.structure(reference, is_leaf=is_none),
            "",
        )
        if container:
            path, got_type, want_type = container
            detail = (
                f"container mismatch at key path {path or '(the root)'}: {got_type} in the "
                f"{what} where {against} has {want_type}; pass the {what} as the same "
                "containers"
            )
        elif missing:
            detail = f"key path {missing[0]} is missing from the {what}"
        elif extra:
            detail = f"key path {extra[0]} of the {what} is not in {against}"
        else:
            detail = (
                f"containers differ: {jax.tree.structure(tree)} vs {jax.tree.structure(reference)}"
            )
        raise ValueError(f"The {what} do not match {against}: {detail}.")
    for leaf, ref in zip(jax.tree.leaves(tree), jax.tree.leaves(reference), strict=True):
        if np.shape(leaf) != np.shape(ref):
            for (path, leaf2), ref2 in zip(
                jax.tree_util.tree_flatten_with_path(tree)[0],
                jax.tree.leaves(reference),
                strict=True,
            ):
                if np.shape(leaf2) != np.shape(ref2):
                    raise ValueError(
                        f"The {what} do not match {against} at key path "
                        f"{jax.tree_util.keystr(path)}: shape {np.shape(leaf2)} vs "
                        f"{np.shape(ref2)}."
                    )


def _node_name(treedef) -> str:
    if treedef.num_nodes == 1 and treedef.num_leaves == 1:
        return "a leaf"
    node = treedef.node_data()
    return f"a {node[0].__name__}" if node else "a node"


def _container_mismatch(got, want, path: str):
    """The first key path where the two tree structures have different container types
    (a list where a dict is expected), with both type names; ``None`` if none."""
    if got.num_leaves == 1 and got.num_nodes == 1 or want.num_leaves == 1 and want.num_nodes == 1:
        if (got.num_nodes == 1) != (want.num_nodes == 1):
            return path, _node_name(got), _node_name(want)
        return None
    got_node, want_node = got.node_data(), want.node_data()
    if got_node is None or want_node is None or got_node[0] is not want_node[0]:
        if got_node == want_node:
            return None
        return path, _node_name(got), _node_name(want)
    children = got.children()
    if got_node != want_node or len(children) != len(want.children()):
        return None  # the same container with other keys: a missing or extra key path
    keys = got_node[1] if isinstance(got_node[1], (list, tuple)) else None
    for i, (a, b) in enumerate(zip(children, want.children(), strict=True)):
        key = f"[{keys[i]!r}]" if keys is not None and len(keys) == len(children) else f"[{i}]"
        found = _container_mismatch(a, b, path + key)
        if found:
            return found
    return None


def require_real(params, who: str, *, what: str = "params") -> None:
    """Raise a clear error for complex params in a transform that is not linear in them.

    Squares, norms, clipping and signs of a complex number are not those of its two real
    parts, so such a transform would silently compute something else.
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            raise ValueError(
                f"{who} does not support complex {what} (key path "
                f"{jax.tree_util.keystr(path)} is {leaf.dtype}): complex params: split them "
                "into real and imaginary parts, e.g. {'re': x.real, 'im': x.imag}."
            )


def require_params(params, who: str) -> None:
    """Raise a clear error when a transform that reads params was not given them."""
    if params is None:
        raise ValueError(f"{who} needs the current params: call update(grads, state, params).")


def is_none(x) -> bool:
    return x is None


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
