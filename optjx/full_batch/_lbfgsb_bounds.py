"""The box of ``lbfgs_b``: bounds as trees, checks naming the argument, projections.

A bound is ``None`` (free), a scalar, or a tree like the params whose leaves are arrays
(the leaf's shape, or a scalar), numbers, ``-inf``/``inf`` or ``None``. They become one
flat vector per side over the packed params (the order of
``optjx.full_batch._packing.Packing``), ``-inf``/``inf`` where free.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optjx import _tree


def _leaves_by_path(bound, name: str) -> dict[str, Any]:
    flat, _ = jax.tree_util.tree_flatten_with_path(bound, is_leaf=_tree.is_none)
    return {jax.tree_util.keystr(path): leaf for path, leaf in flat}


def _is_scalar_bound(bound) -> bool:
    return bound is None or (not isinstance(bound, dict | list | tuple) and np.ndim(bound) == 0)


def check_bound(bound, name: str) -> None:
    """At construction: the types, no NaN (a tree's leaves numbers, arrays or ``None``)."""
    for path, leaf in _leaves_by_path(bound, name).items() if not _is_scalar_bound(bound) else [("", bound)]:  # fmt: skip
        if leaf is None:
            continue
        if isinstance(leaf, bool) or not isinstance(
            leaf, int | float | np.ndarray | jax.Array | np.generic
        ):
            raise TypeError(f"lbfgs_b: {name}{path} must be a number, an array or None, got {type(leaf).__name__}")  # fmt: skip
        if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.number) or isinstance(
            leaf, jax.core.Tracer
        ):
            continue
        if np.isnan(np.asarray(leaf, np.float64)).any():
            raise ValueError(f"lbfgs_b: {name}{path} contains NaN")


def _cast_inward(value, shape, dtype, fill: float):
    """``value`` broadcast to ``shape`` in ``dtype``, rounded toward the inside of the box.

    A float64 bound 0.8 is float32 0.800000012 (above 0.8): an upper bound rounds down, a
    lower one up, so that a point in the cast box is in the given one too. Traced bounds
    are cast as they come.
    """
    if isinstance(value, jax.core.Tracer):
        return jnp.broadcast_to(value, shape).astype(dtype)
    exact = np.broadcast_to(np.asarray(value, np.float64), shape)
    cast = exact.astype(dtype)
    toward = np.inf if fill < 0 else -np.inf
    outside = cast < exact if fill < 0 else cast > exact
    if np.any(outside):
        cast = np.where(outside, np.nextafter(cast, np.asarray(toward, dtype)), cast)
    return jnp.asarray(cast, dtype)


def bound_tree(bound, params, name: str, fill: float):
    """``bound`` as a tree like ``params`` of float arrays (``fill`` where free).

    Raises ``ValueError`` naming the key path where a leaf's shape differs from its
    param's, where ``bound`` has a key the params lack or lacks one they have.
    """
    if _is_scalar_bound(bound):
        value = fill if bound is None else bound
        return jax.tree.map(
            lambda p: _cast_inward(value, jnp.shape(p), jnp.result_type(p), fill), params
        )
    by_path = _leaves_by_path(bound, name)
    param_paths = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
    ]
    extra = sorted(set(by_path) - set(param_paths))
    if extra:
        raise ValueError(f"lbfgs_b: {name} has {name}{extra[0]}, which the params do not have")

    def one(path, p):
        key = jax.tree_util.keystr(path)
        if key not in by_path:
            raise ValueError(f"lbfgs_b: {name} has no entry {name}{key} for the params' leaf {key} (None: free)")  # fmt: skip
        leaf = by_path[key]
        value = fill if leaf is None else leaf
        if np.shape(value) not in ((), jnp.shape(p)):
            raise ValueError(f"lbfgs_b: {name}{key} has shape {np.shape(value)}, the param {jnp.shape(p)}")  # fmt: skip
        return _cast_inward(value, jnp.shape(p), jnp.result_type(p), fill)

    return jax.tree_util.tree_map_with_path(one, params)


def check_order_at_construction(lower, upper) -> None:
    """``lower <= upper`` where both are known without the params (concrete values)."""
    lo = {"": lower} if _is_scalar_bound(lower) else _leaves_by_path(lower, "lower")
    hi = {"": upper} if _is_scalar_bound(upper) else _leaves_by_path(upper, "upper")
    for key_lo, a in lo.items():
        for key_hi, b in hi.items():
            same = key_lo == key_hi or "" in (key_lo, key_hi)
            if not same or a is None or b is None:
                continue
            if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
                continue
            a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
            if np.broadcast_shapes(a64.shape, b64.shape) is not None and np.any(a64 > b64):
                raise ValueError(f"lbfgs_b: lower > upper at {key_lo or key_hi or 'the scalar bounds'}")  # fmt: skip


def check_order(lower_tree, upper_tree) -> None:
    """``lower <= upper`` everywhere (concrete values only), naming the first key path."""
    pairs = zip(
        jax.tree_util.tree_flatten_with_path(lower_tree)[0],
        jax.tree.leaves(upper_tree),
        strict=True,
    )
    for (path, lo), hi in pairs:
        if isinstance(lo, jax.core.Tracer) or isinstance(hi, jax.core.Tracer):
            continue
        if np.any(np.asarray(lo) > np.asarray(hi)):
            raise ValueError(f"lbfgs_b: lower > upper at {jax.tree_util.keystr(path)}")


def surely_free(bound) -> bool:
    """Whether the bound, as given, bounds nothing: ``None`` or infinite values only (a
    traced value may be finite: not surely free)."""
    leaves = [bound] if _is_scalar_bound(bound) else _leaves_by_path(bound, "").values()
    for leaf in leaves:
        if leaf is None:
            continue
        if isinstance(leaf, jax.core.Tracer) or np.isfinite(np.asarray(leaf)).any():
            return False
    return True


def project(x, lo, hi):
    """$P(x)$ onto the box, to the bit: ``clip``."""
    return jnp.minimum(jnp.maximum(x, lo), hi)


def projected_gradient_norm(x, g, lo, hi):
    r"""L-BFGS-B's ``projgr``: $\max_i |P(x - g)_i - x_i|$ with the sign rules of MINPACK."""
    gi = jnp.where((g < 0) & jnp.isfinite(hi), jnp.maximum(x - hi, g), g)
    gi = jnp.where((g >= 0) & jnp.isfinite(lo), jnp.minimum(x - lo, gi), gi)
    return jnp.max(jnp.abs(gi), initial=0.0)


def max_feasible_step(x, d, lo, hi, big):
    r"""The largest $t \le$ ``big`` with $l \le x + t d \le u$ (``lnsrlb``'s ``stpmx``)."""
    to_lo = lo - x
    to_hi = hi - x
    down = (d < 0) & jnp.isfinite(lo)
    up = (d > 0) & jnp.isfinite(hi)
    ratio = jnp.where(down, jnp.where(to_lo >= 0, 0.0, to_lo / jnp.where(down, d, 1.0)),
                      jnp.where(up, jnp.where(to_hi <= 0, 0.0, to_hi / jnp.where(up, d, 1.0)), big))  # fmt: skip
    return jnp.minimum(big, jnp.min(ratio, initial=big))


def inside_updates(params, new, lo_tree, hi_tree):
    """``new - params``, nudged by ``nextafter`` until ``params + updates`` is in the box.

    ``optax.apply_updates`` adds the updates back; the sum rounds, and may leave the box
    by an ulp where ``new`` sits on a bound. Two nudges toward the inside always suffice.
    Elementwise, in the arrays' own dtype: trees of leaves, or the packed vectors of
    each dtype (one kernel for all the leaves of a dtype), give the same numbers.
    """

    def one(p, x, lo, hi):
        u = x - p
        for _ in range(2):
            y = p + u
            u = jnp.where(y > hi, jnp.nextafter(u, -jnp.inf), jnp.where(y < lo, jnp.nextafter(u, jnp.inf), u))  # fmt: skip
        return u

    return jax.tree.map(one, params, new, lo_tree, hi_tree)
