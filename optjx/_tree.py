"""Small pytree helpers shared by every transform: counters, moments, structure checks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from optjx import _hyper

INT32_MAX = np.iinfo(np.int32).max


def zero_count() -> jax.Array:
    """A fresh int32 step counter."""
    return jnp.zeros([], jnp.int32)


def next_count(count: jax.Array | None) -> jax.Array | None:
    """``count + 1``, saturating at the int32 maximum instead of wrapping negative.

    ``None`` (a stage that keeps no counter, see :func:`schedule_count`) stays ``None``.
    """
    if count is None:
        return None
    return jnp.where(count < INT32_MAX, count + 1, count)


def schedule_count(*hypers, needed: bool = False) -> jax.Array | None:
    """A fresh counter where something reads it, else ``None`` (no counter kept).

    Many stages read the count only to evaluate a schedule (``scale``, the clips, weight
    decay, ``trace`` without dampening, RMSProp, AdaGrad, AdaDelta, an EMA without bias
    correction). With constant hyperparameters they keep no counter: nothing would read
    it, and each counter in a chain costs compile time (measured: a quarter of a one-leaf
    SGD-with-momentum step's compile time). ``needed=True`` for a stage that reads the
    count itself (a first-step rule, a bias correction).
    """
    return zero_count() if needed or any(callable(h) for h in hypers) else None


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
    if jax.tree.structure(tree) != jax.tree.structure(reference):
        got, want = _paths(tree), _paths(reference)
        missing = [p for p in want if p not in got]
        extra = [p for p in got if p not in want]
        if missing:
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


def require_real(params, who: str) -> None:
    """Raise a clear error for complex params in a transform that is not linear in them.

    Squares, norms, clipping and signs of a complex number are not those of its two real
    parts, so such a transform would silently compute something else.
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            raise ValueError(
                f"{who} does not support complex params (key path "
                f"{jax.tree_util.keystr(path)} is {leaf.dtype}): complex params: split them "
                "into real and imaginary parts, e.g. {'re': x.real, 'im': x.imag}."
            )


def require_params(params, who: str) -> None:
    """Raise a clear error when a transform that reads params was not given them."""
    if params is None:
        raise ValueError(f"{who} needs the current params: call update(grads, state, params).")
