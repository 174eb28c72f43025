"""Pieces shared by the full-batch methods: tree algebra, stop reasons, the update wrapper.

The iteration runs on the params packed into one flat vector per dtype
(:mod:`optjx.full_batch._packing`): the tree algebra below works on any tree, and the
loops see a tuple of one or two vectors, so the compiled program does not grow with the
number of leaves. Inner products are sums of per-group sums taken in the *scalar dtype*:
the widest float dtype of the params, at least float32.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _state, _tree
from optjx.full_batch._packing import Packing
from optjx.wrappers._find import check_int as check_int


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


def stop_reason(state: Any) -> str:
    r"""The name of the reason ``state``'s last update stopped, e.g. ``"MAX_ITER"``.

    The tests are torch's, in torch's order; after a step of length $t$ along $d$:

    $$
    \max_i |g_i| \le \tau_{grad}, \qquad \max_i |t d_i| \le \tau_{change}, \qquad
    |f - f_{prev}| < \tau_{change}
    $$

    The names: ``NOT_STARTED``, ``TOLERANCE_GRAD_AT_START``, ``DIRECTIONAL_DERIVATIVE``
    ($g^\top d > -\tau_{change}$), ``MAX_ITER``, ``MAX_EVAL``, ``TOLERANCE_GRAD``,
    ``TOLERANCE_CHANGE_STEP``, ``TOLERANCE_CHANGE_VALUE``, ``NON_FINITE``.

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


def break_reason(*, n_iter, max_iter, evals, max_eval, opt_cond, step_max, tolerance_change,
                 value, prev_value):  # fmt: skip
    """torch's five break tests after a step, in torch's order; ``-1`` when none holds."""
    reason = jnp.where(jnp.abs(value - prev_value) < tolerance_change,
                       StopReason.TOLERANCE_CHANGE_VALUE, -1)  # fmt: skip
    reason = jnp.where(step_max <= tolerance_change, StopReason.TOLERANCE_CHANGE_STEP, reason)
    reason = jnp.where(opt_cond, StopReason.TOLERANCE_GRAD, reason)
    reason = jnp.where(evals >= max_eval, StopReason.MAX_EVAL, reason)
    return jnp.where(n_iter == max_iter, StopReason.MAX_ITER, reason).astype(jnp.int32)


# ------------------------------------------------------------------ the iteration


class Carry(NamedTuple):
    """One update's loop state: torch's local variables of ``LBFGS.step``.

    ``x`` and ``d_tree`` are trees like the params; ``g``, ``d`` and ``prev_g`` are packed
    (:class:`Packing`). Keeping the point a tree means a trial point ``x + t d`` is built
    leaf by leaf from ``d_tree``, unpacked once per iteration: the leaves' slices of the
    packed ``d`` are the only per-leaf code XLA compiles for each leaf (the rest, the
    same for every leaf of a shape, is compiled once). For the same reason the step is
    applied to ``x`` lazily: ``x`` is the point *before* the last iteration's step, and
    the current point is ``x + t d_tree`` when ``moved``, else ``x`` (:func:`point`), so
    that the step reads ``d_tree`` from the carry instead of from a second copy of the
    slices.
    """

    x: Any
    moved: Any
    g: Any
    f: Any
    d: Any
    d_tree: Any
    t: Any
    prev_g: Any
    prev_f: Any
    memory: Any  # the method's own: L-BFGS pairs, CG's previous slope
    n_local: Any
    n_iter: Any
    evals: Any
    opt_cond: Any
    reason: Any


def iterate(state, params, grads, value, value_and_grad, memory, direction_fn, *, lr,
            tolerance_grad, tolerance_change, max_iter: int, max_eval: int, line_search,
            pack: bool = True):  # fmt: skip
    """Run one update's iterations (torch's ``while n_iter < max_iter`` loop) to a stop.

    ``direction_fn(carry, first) -> (memory, d, t)`` gives the iteration's direction and
    first trial step (it sees ``carry.g``, ``carry.prev_g``, ``carry.d``, ``carry.t`` of
    the previous iteration). ``line_search``: ``None`` for a fixed step, else the keyword
    arguments of :func:`strong_wolfe` (its ``tolerance_change`` is the method's unless
    given there). ``pack``: the methods' keyword (one group per dtype,
    or per leaf). Returns the final :class:`Carry`.
    """
    from optjx.full_batch.line_search import checked, search

    dtype = state.prev_value.dtype
    packing = Packing(params, pack)

    def packed_value_and_grad(x):  # a tree in, the gradient packed out
        f, g = value_and_grad(x)
        return f, packing.pack(g)

    grads = packing.pack(grads)
    finite = jnp.isfinite(value) & all_finite(grads)
    opt_cond = max_abs(grads, dtype) <= tolerance_grad
    reason = jnp.where(~finite, StopReason.NON_FINITE,
                       jnp.where(opt_cond, StopReason.TOLERANCE_GRAD_AT_START, -1))  # fmt: skip
    one = jnp.ones([], jnp.int32)
    carry = Carry(params, jnp.asarray(False), grads, value, packing.pack(state.direction),
                  state.direction, state.step_size, state.prev_grad, state.prev_value, memory,
                  0 * one, state.n_iter, one, opt_cond, reason.astype(jnp.int32))  # fmt: skip

    def iteration(s: Carry) -> Carry:
        s = s._replace(x=point(s), n_local=s.n_local + 1, n_iter=s.n_iter + 1)
        memory, d, t = direction_fn(s, s.n_iter == 1)
        t = t.astype(dtype)
        d_tree = packing.unpack(d)
        gtd = dot(s.g, d, dtype)
        no_descent = gtd > -tolerance_change  # torch stops before moving; d, t are kept
        if line_search is not None:
            budget = jnp.where(no_descent, 0, max_eval - s.evals)  # skip: one wasted call

            def evaluate(t):
                f, g = packed_value_and_grad(axpy(t, d_tree, s.x))
                return checked(jnp.asarray(f).astype(dtype), g, d, dtype)

            f, g, t_new, used, bad = search(
                evaluate, s.f, s.g, gtd, t, max_abs(d, dtype), max_ls=budget,
                **{"tolerance_change": tolerance_change, **line_search})  # fmt: skip
            opt = max_abs(g, dtype) <= tolerance_grad
        elif max_iter == 1:  # torch never evaluates in the last iteration: nothing to do
            f, g, t_new, used, bad, opt = s.f, s.g, t, 0 * one, jnp.asarray(False), s.opt_cond
        else:
            # Only the last iteration skips its evaluation; a select would pay for it.
            call = (s.n_local != max_iter) & ~no_descent
            f, g = lax.cond(call, packed_value_and_grad, lambda _: (s.f, s.g),
                            axpy(t, d_tree, s.x))  # fmt: skip
            bad = call & ~(jnp.isfinite(f) & all_finite(g))
            used, t_new = jnp.where(call, 1, 0) * one, t
            opt = jnp.where(call, max_abs(g, dtype) <= tolerance_grad, s.opt_cond)
        evals = s.evals + jnp.where(no_descent, 0, used)
        reason = break_reason(n_iter=s.n_local, max_iter=max_iter, evals=evals,
                              max_eval=max_eval, opt_cond=opt,
                              step_max=max_abs(d, dtype) * jnp.abs(t_new),
                              tolerance_change=tolerance_change, value=f, prev_value=s.f)  # fmt: skip
        reason = jnp.where(bad, StopReason.NON_FINITE, reason)
        reason = jnp.where(no_descent, StopReason.DIRECTIONAL_DERIVATIVE, reason)
        moved = ~no_descent
        return s._replace(
            moved=moved, g=select(moved, g, s.g),
            f=jnp.where(moved, f, s.f), d=d, d_tree=d_tree, t=jnp.where(moved, t_new, t),
            prev_g=s.g,
            prev_f=s.f, memory=memory, evals=evals,
            opt_cond=jnp.where(moved, opt, s.opt_cond), reason=reason.astype(jnp.int32),
        )  # fmt: skip

    return lax.while_loop(lambda s: s.reason < 0, iteration, carry)


def point(s: Carry):
    """The current point of the iteration: ``x`` moved by the pending step, if any."""
    return select(s.moved, axpy(s.t, s.d_tree, s.x), s.x)


def finish(state, params, s: Carry, **memory):
    """The updates and new state of a finished loop; a NaN or Inf keeps the old state."""
    failed = s.reason == StopReason.NON_FINITE
    updates = jax.tree.map(
        lambda new, old: jnp.where(failed, jnp.zeros_like(old), new - old), point(s), params
    )
    kept = state._replace(n_iter=s.n_iter, step_size=s.t, direction=s.d_tree,
                          prev_grad=s.prev_g, prev_value=s.prev_f, **memory)  # fmt: skip
    new_state = select(failed, state, kept)._replace(
        func_evals=state.func_evals + s.evals,
        iterations=s.n_local,
        evaluations=s.evals,
        stop_reason=s.reason,
    )
    return updates, _state.advance(new_state)
