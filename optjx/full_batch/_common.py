"""Pieces shared by the full-batch methods: stop reasons, tree algebra, the update wrapper.

The tree algebra works on any tree: the loops of :mod:`optjx.full_batch._iteration` apply
it to the params tree and to the packed vectors of :mod:`optjx.full_batch._packing` (one
per dtype). Inner products are sums of per-group sums taken in the *scalar dtype*: the
widest float dtype of the params, at least float32.
"""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp
import optax

from optjx import _tree
from optjx._hyper import check_int as check_int


class StopReason(enum.IntEnum):
    """Why the last ``update`` stopped (``state.stop_reason``), in torch's order of tests."""

    NOT_STARTED = 0  # no update yet
    TOLERANCE_GRAD_AT_START = 1  # max|g| <= tolerance_grad before any iteration
    DIRECTIONAL_DERIVATIVE = 2  # g.d > -tolerance_change: no descent left along d
    MAX_ITER = 3  # max_iter iterations in this update
    MAX_EVAL = 4  # max_eval evaluations in this update
    TOLERANCE_GRAD = 5  # max|g| <= tolerance_grad after a step
    TOLERANCE_CHANGE_STEP = 6  # max|t d| <= tolerance_change
    TOLERANCE_CHANGE_VALUE = 7  # |f - f_prev| < tolerance_change
    NON_FINITE = 8  # a NaN or Inf value or gradient: update zeroed, state kept
    LINE_SEARCH_FAILED = 9  # bfgs: no step found (scipy's "precision loss"); params kept
    NO_PREDICTED_DECREASE = 10  # trust_region_newton: the model predicts no decrease
    INNER_CG_NOT_CONVERGED = 11  # newton_cg: the inner CG used its 20 n products


def stop_reason(state: Any) -> str:
    r"""The name of the reason ``state``'s last update stopped, e.g. ``"MAX_ITER"``.

    The tests are torch's, in torch's order; after a step of length $t$ along $d$:

    $$
    \max_i |g_i| \le \tau_{grad}, \qquad \max_i |t d_i| \le \tau_{change}, \qquad
    |f - f_{prev}| < \tau_{change}
    $$

    The names: ``NOT_STARTED``, ``TOLERANCE_GRAD_AT_START``, ``DIRECTIONAL_DERIVATIVE``
    ($g^\top d > -\tau_{change}$), ``MAX_ITER``, ``MAX_EVAL``, ``TOLERANCE_GRAD``,
    ``TOLERANCE_CHANGE_STEP``, ``TOLERANCE_CHANGE_VALUE``, ``NON_FINITE``,
    ``LINE_SEARCH_FAILED`` (:func:`optjx.bfgs`, :func:`optjx.newton_cg`),
    ``NO_PREDICTED_DECREASE`` (:func:`optjx.trust_region_newton`), ``INNER_CG_NOT_CONVERGED``
    (:func:`optjx.newton_cg`).

    References:
      ``torch.optim.LBFGS.step`` (torch 2.13), its break tests.

    Args:
      state: an ``LbfgsState`` or ``ConjugateGradientState`` (concrete, not traced).

    Returns:
      The :class:`StopReason` member's name, a ``str``.

    Differences from PyTorch and optax:
      torch does not report why ``step`` returned, optax's ``lbfgs`` runs one iteration
      per update and has no stopping tests; ``NON_FINITE`` is optjx's own.

    Examples:
      >>> import jax.numpy as jnp, optjx
      >>> optjx.stop_reason(optjx.lbfgs().init({"x": jnp.zeros(2)}))
      'NOT_STARTED'
    """
    return StopReason(int(state.stop_reason)).name


# ------------------------------------------------------------------ tree algebra


def scalar_dtype(params) -> jnp.dtype:
    """The dtype of the line-search scalars: the widest float of the params, >= float32."""
    dtypes = [leaf.dtype for leaf in jax.tree.leaves(params)]
    if not dtypes:
        return jnp.dtype(jnp.float32)
    wide = _tree.widest_float(*dtypes)
    return wide if jnp.finfo(wide).bits >= 32 else jnp.dtype(jnp.float32)


def _accumulator(dtype) -> jnp.dtype:
    # Half-precision products are summed in float32: a bf16 inner product of 1M terms
    # would keep about two significant digits.
    return dtype if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)


def dot(a, b, dtype) -> jax.Array:
    """``sum_i a_i b_i`` over every leaf, as a ``dtype`` scalar."""
    total = jnp.zeros([], dtype)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        acc = _accumulator(x.dtype)
        total = total + jnp.sum(x.astype(acc) * y.astype(acc)).astype(dtype)
    return total


def max_abs(tree, dtype) -> jax.Array:
    """``max_i |x_i|`` over every leaf (torch's ``abs().max()`` of the flat vector)."""
    out = jnp.zeros([], dtype)
    for x in jax.tree.leaves(tree):
        out = jnp.maximum(out, jnp.max(jnp.abs(x)).astype(dtype))
    return out


def sum_abs(tree, dtype) -> jax.Array:
    """``sum_i |x_i|`` over every leaf (the l1 norm of the flat vector)."""
    total = jnp.zeros([], dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.abs(x).astype(_accumulator(x.dtype))).astype(dtype)
    return total


def first_step(grad, lr, dtype) -> jax.Array:
    """torch's first trial step, ``min(1, 1 / ||g||_1) * lr`` (``LBFGS.step`` at ``n_iter == 1``)."""
    inv_l1 = 1 / sum_abs(grad, dtype)
    return jnp.where(inv_l1 < 1, inv_l1, 1) * lr


def axpy(alpha, x, y):
    """``y + alpha * x`` leaf by leaf, ``alpha`` a scalar cast to each leaf's dtype."""
    return jax.tree.map(lambda a, b: b + jnp.asarray(alpha, b.dtype) * a, x, y)


def scale(alpha, x):
    return jax.tree.map(lambda a: jnp.asarray(alpha, a.dtype) * a, x)


def sub(a, b):
    return jax.tree.map(jnp.subtract, a, b)


def neg(a):
    return jax.tree.map(jnp.negative, a)


def select(pred, on_true, on_false):
    """``on_true`` where the scalar ``pred`` holds, else ``on_false`` (no ``lax.cond``)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def all_finite(tree) -> jax.Array:
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


# ------------------------------------------------------------------ the wrapper


def check_max_eval(max_iter: int, max_eval) -> int:
    """torch's default ``max_iter * 5 // 4``; an explicit value must be an int >= 1."""
    check_int("max_iter", max_iter, 1)
    if max_eval is None:
        return max(1, max_iter * 5 // 4)
    check_int("max_eval", max_eval, 1)
    return int(max_eval)


def _value_and_grad(value_fn, who: str, dtype):
    """``x -> (value, grad)`` of the user's loss, the value checked scalar and cast."""

    def loss(x):
        out = value_fn(x)
        if jnp.shape(out) != ():
            raise ValueError(
                f"{who}: value_fn must return a scalar loss, got shape {jnp.shape(out)}."
            )
        return out

    def evaluate(x):
        value, grad = jax.value_and_grad(loss)(x)
        return jnp.asarray(value).astype(dtype), grad

    return evaluate


def full_batch_transformation(who: str, init_fn, step_fn) -> optax.GradientTransformationExtraArgs:
    """The public ``init``/``update`` pair around a method's ``step_fn``.

    ``step_fn(grads, state, params, value, value_and_grad)`` sees only the trained leaves
    (``_tree.transformation`` drops int, bool and ``None`` leaves); ``value_fn`` still gets
    the whole params tree: the trained leaves are put back into the user's params before
    each call.
    """

    def inner_update(grads, state, params, *, value, value_fn):
        _tree.check_matching(grads, state.direction)
        _tree.check_matching(params, state.direction, what="params")
        dtype = state.prev_value.dtype
        value = jnp.asarray(value).astype(dtype)
        return step_fn(grads, state, params, value, _value_and_grad(value_fn, who, dtype))

    inner = _tree.transformation(init_fn, inner_update, extra_args=True)

    def update(updates, state, params=None, *, value=None, value_fn=None, grad=None, **extra):
        # ``grad``: optax's lbfgs loops pass the raw gradient again; ours is ``updates``.
        # Other keywords are ignored, as optax's GradientTransformationExtraArgs do.
        del grad, extra
        if value_fn is None:
            raise ValueError(
                f"{who}.update needs value_fn=, the loss as a function of the params only: "
                "update(grads, state, params, value=loss, value_fn=loss_fn)."
            )
        if params is None:
            raise ValueError(f"{who}.update needs the current params (third argument).")
        leaves, treedef = jax.tree.flatten(params, is_leaf=_tree.is_none)

        def merged_value_fn(trained):
            try:
                new = treedef.flatten_up_to(trained)
            except (ValueError, TypeError):
                return value_fn(trained)
            return value_fn(
                treedef.unflatten([p if n is None else n for n, p in zip(new, leaves, strict=True)])
            )

        if value is None:  # one forward pass; torch's closure would have returned it
            value = value_fn(params)
        if jnp.shape(value) != ():
            raise ValueError(
                f"{who}.update: value= must be a scalar loss, got shape {jnp.shape(value)}."
            )
        return inner.update(updates, state, params, value=value, value_fn=merged_value_fn)

    return optax.GradientTransformationExtraArgs(inner.init, update)
