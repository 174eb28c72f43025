"""One update's iterations, shared by the full-batch methods: torch's loop of ``LBFGS.step``.

The method gives the direction (``iterate``'s ``direction_fn``); this module runs the
iterations to a stop (torch's break tests, in torch's order), with the strong-Wolfe line
search or a fixed step, and turns the final loop state into updates and a new state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx import _state
from optjx.full_batch._common import (
    StopReason,
    all_finite,
    axpy,
    dot,
    max_abs,
    select,
)
from optjx.full_batch._packing import Packing
from optjx.full_batch.line_search import checked, search


def break_reason(*, n_iter, max_iter, evals, max_eval, opt_cond, step_max, tolerance_change,
                 value, prev_value):  # fmt: skip
    """torch's five break tests after a step, in torch's order; ``-1`` when none holds."""
    reason = jnp.where(jnp.abs(value - prev_value) < tolerance_change,
                       StopReason.TOLERANCE_CHANGE_VALUE, -1)  # fmt: skip
    reason = jnp.where(step_max <= tolerance_change, StopReason.TOLERANCE_CHANGE_STEP, reason)
    reason = jnp.where(opt_cond, StopReason.TOLERANCE_GRAD, reason)
    reason = jnp.where(evals >= max_eval, StopReason.MAX_EVAL, reason)
    return jnp.where(n_iter == max_iter, StopReason.MAX_ITER, reason).astype(jnp.int32)


class Carry(NamedTuple):
    """One update's loop state: torch's local variables of ``LBFGS.step``.

    ``x`` and ``d_tree`` are trees like the params; ``g``, ``d`` and ``prev_g`` are packed
    (``Packing``). Keeping the point a tree means a trial point ``x + t d`` is built
    leaf by leaf from ``d_tree``, unpacked once per iteration: the leaves' slices of the
    packed ``d`` are the only per-leaf code XLA compiles for each leaf (the rest, the
    same for every leaf of a shape, is compiled once). For the same reason the step is
    applied to ``x`` lazily: ``x`` is the point *before* the last iteration's step, and
    the current point is ``x + t d_tree`` when ``moved``, else ``x`` (``point``), so
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
    the previous iteration; packed). ``line_search``: ``None`` for a fixed step, else the
    keyword arguments of the strong-Wolfe ``search`` (``c1``, ``c2``,
    ``respect_max_eval``). The search's own ``tolerance_change`` (its zoom stops on a
    bracket shorter than that, relative to ``max|d|``) keeps its default ``1e-9`` whatever
    the method's, as ``torch.optim.LBFGS.step`` calls ``_strong_wolfe``: with the method's,
    a ``tolerance_change`` of 0 would let the zoom spend the whole evaluation budget once
    the loss no longer changes in its precision. ``pack``: the methods' keyword (one group
    per dtype, or per leaf). Returns the final ``Carry``.
    """
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
                **line_search)  # fmt: skip
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
            moved=moved, g=select(moved, g, s.g), f=jnp.where(moved, f, s.f), d=d,
            d_tree=d_tree, t=jnp.where(moved, t_new, t), prev_g=s.g, prev_f=s.f,
            memory=memory, evals=evals, opt_cond=jnp.where(moved, opt, s.opt_cond),
            reason=reason.astype(jnp.int32),
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
