"""L-BFGS-B, as ``scipy.optimize.minimize(method="L-BFGS-B")`` computes it."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _tree
from optjx.full_batch import _calling
from optjx.full_batch import _common as c
from optjx.full_batch import _lbfgsb_bounds as box
from optjx.full_batch import _lbfgsb_loop as loop
from optjx.full_batch import _lbfgsb_memory as memory
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._packing import Packing, flat, split


class LbfgsBState(NamedTuple):
    r"""L-BFGS-B state: the memory of pairs, counters and diagnostics.

    Attributes:
      n_iter: scipy's ``nit``, iterations over all updates.
      func_evals: scipy's ``nfev`` (the first update's starting point, evaluated or given,
        and every call of the loss since).
      iterations: iterations in the last update.
      evaluations: calls of the loss (value and gradient) in the last update.
      stop_reason: a ``optjx.StopReason``, why the last update stopped.
      stop_test: a ``StopTest``: ``TOLERANCE_GRAD_AT_START``, ``TOLERANCE_GRAD``
        (projected gradient), ``TOLERANCE_CHANGE_RELATIVE`` (scipy's ``ftol``),
        ``MAX_ITER``, ``MAX_EVAL``, ``LINE_SEARCH_FAILED`` (scipy's "ABNORMAL"),
        ``NON_FINITE``.
      step_size: the line search's step of the last iteration.
      direction: $d = \bar x - x$ of the last iteration, a tree like the params.
      value: $f$ at the returned params ($+\infty$ before the first update).
      grad: $\nabla f$ there, a tree like the params.
      prev_value: $f$ before the last step.
      s_history, y_history: the stored pairs, ``(history_size, n)``, a ring buffer: the
        ``k``-th oldest pair in row ``(history_start + k) % history_size``.
      history_start: the row of the oldest pair.
      history_count: how many pairs are stored (rows past them are not read).
      theta: $\theta = y^\top y / s^\top y$ of the newest pair (1 without pairs).
      s_dot_s, s_dot_y, y_dot_y: ``(history_size, history_size)``, oldest first:
        $s_i^\top s_j$, $s_i^\top y_j$, $y_i^\top y_j$ of the stored pairs.
    """

    n_iter: jax.Array
    func_evals: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    stop_reason: jax.Array
    stop_test: jax.Array
    step_size: jax.Array
    direction: Any
    value: jax.Array
    grad: Any
    prev_value: jax.Array
    s_history: jax.Array
    y_history: jax.Array
    history_start: jax.Array
    history_count: jax.Array
    theta: jax.Array
    s_dot_s: jax.Array
    s_dot_y: jax.Array
    y_dot_y: jax.Array


@compiled_when_eager
def lbfgs_b(
    *,
    lower: Any = None,
    upper: Any = None,
    history_size: int = 10,
    max_iter: int = 20,
    max_eval: Optional[int] = None,
    tolerance_grad: float = 1e-5,
    tolerance_change: float = 2.2e-9,
    max_line_search: int = 20,
) -> optax.GradientTransformationExtraArgs:
    r"""L-BFGS-B: limited-memory BFGS in a box $l \le x \le u$, as scipy runs it.

    Each iteration (Byrd, Lu, Nocedal & Zhu 1995, with Morales & Nocedal 2011), from
    $x$ with gradient $g$ and the compact limited-memory matrix $B = \theta I - W M
    W^\top$ of the last ``history_size`` pairs $s = x_{k+1} - x_k$,
    $y = g_{k+1} - g_k$:

    1. **the generalised Cauchy point** $x^c$: the first local minimiser of the quadratic
       model $m(x + p) = f + g^\top p + \frac12 p^\top B p$ along the projected
       steepest-descent path $P(x - t g)$, found by walking its breakpoints in order
       (each variable stops at its bound at $t_i$; on each segment the model is a
       one-dimensional quadratic);
    2. **the subspace step**: the model minimised over the variables not at a bound at
       $x^c$ (the others fixed), by the Sherman-Morrison-Woodbury form of the reduced
       inverse; the result is projected onto the box and kept when it descends from
       $x$ (Morales & Nocedal), else cut back at the first bound;
    3. **the projected line search** along $d = \bar x - x$: MINPACK-2's ``dcsrch``
       (``optjx.more_thuente``'s) with $c_1 = 10^{-3}$, $c_2 = 0.9$, ``xtol`` 0.1 on
       $[0, t_{max}]$, $t_{max}$ the largest feasible step; the first trial is
       $\min(1/\lVert d \rVert, 1)$ on the first iteration (unless every variable has
       both bounds), then $1$;
    4. stop when $\max_i |P(x - g)_i - x_i| \le$ ``tolerance_grad`` or
       $(f_k - f_{k+1}) / \max(|f_k|, |f_{k+1}|, 1) \le$ ``tolerance_change``; else store
       the pair (skipped when $s^\top y \le \epsilon\,|g^\top s|$).

    A line search that fails with pairs stored drops them and the iteration restarts
    from steepest descent; without pairs the update stops (``LINE_SEARCH_FAILED``).
    Every point the loss is evaluated at is clipped into the box, and the updates are
    nudged (``nextafter``) so that ``optax.apply_updates(params, updates)`` is inside it
    to the last bit. An infeasible start is projected onto the box first (as scipy
    does), and the loss is evaluated there. A non-finite trial in the line search
    shrinks the step halfway toward the last finite one.

    | ``scipy.optimize.minimize(method="L-BFGS-B")`` | ``optjx.lbfgs_b`` |
    |---|---|
    | ``bounds`` | ``lower``, ``upper`` (trees like the params, or scalars) |
    | ``maxcor=10`` | ``history_size=10`` |
    | ``gtol=1e-5`` | ``tolerance_grad=1e-5`` |
    | ``ftol=2.22e-9`` | ``tolerance_change=2.2e-9`` |
    | ``maxls=20`` | ``max_line_search=20`` |
    | ``maxiter=15000`` | updates times ``max_iter`` |
    | ``maxfun=15000`` | ``max_eval`` per update |
    | ``res.nit, nfev`` | ``state.n_iter, func_evals`` |

    References:
      Byrd, Lu, Nocedal & Zhu (1995), "A limited memory algorithm for bound constrained
      optimization", SIAM J. Sci. Comput. 16(5); Zhu, Byrd, Lu & Nocedal (1997),
      Algorithm 778; Morales & Nocedal (2011), "Remark on Algorithm 778", ACM TOMS 38(1);
      Byrd, Nocedal & Schnabel (1994), the compact representation; scipy 1.17.1
      ``scipy/optimize/_lbfgsb_py.py``.

    Args:
      lower: lower bounds: ``None`` (free), a scalar, or a tree like the params whose
        leaves are arrays of the leaf's shape, scalars, ``-inf`` or ``None``.
      upper: upper bounds, likewise (``inf`` or ``None`` free).
      history_size: pairs kept, int $\ge 1$ (scipy's ``maxcor``).
      max_iter: iterations per update, int $\ge 1$.
      max_eval: stop after the iteration in which this update's evaluations reach it.
      tolerance_grad: projected-gradient tolerance $\ge 0$ (scipy's ``gtol``).
      tolerance_change: relative-reduction tolerance $\ge 0$ (scipy's ``ftol``).
      max_line_search: evaluations per line search, int $\ge 1$ (scipy's ``maxls``).

    Returns:
      A ``GradientTransformationExtraArgs`` with a ``LbfgsBState``; ``update`` takes
      the calling conventions of ``optjx.lbfgs`` (``value_fn=`` or
      ``value_and_grad_fn=``, ``grads=None``).

    Raises:
      ValueError: a hyperparameter out of range, ``lower > upper``, a bound whose shape
        or keys differ from the params (naming the key path). TypeError: a wrong type.

    Examples:
      >>> import jax.numpy as jnp, optax, optjx
      >>> loss = lambda p: jnp.sum((p["x"] - jnp.array([2.0, -1.0])) ** 2)
      >>> opt = optjx.lbfgs_b(lower=0.0, upper={"x": jnp.array([1.0, 5.0])})
      >>> params = {"x": jnp.array([0.5, 0.5])}
      >>> updates, state = opt.update(None, opt.init(params), params, value_fn=loss)
      >>> optax.apply_updates(params, updates)["x"].tolist(), optjx.stop_reason(state)
      ([1.0, 0.0], 'CONVERGED')
    """
    c.check_int("history_size", history_size, 1)
    c.check_budget(max_iter, max_eval)
    c.check_int("max_line_search", max_line_search, 1)
    for name, v in (("tolerance_grad", tolerance_grad), ("tolerance_change", tolerance_change)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"lbfgs_b: {name} must be a number, got {v!r}")
        if not v >= 0:
            raise ValueError(f"lbfgs_b: {name} must be >= 0, got {v}")
    box.check_bound(lower, "lower")
    box.check_bound(upper, "upper")
    try:
        box.check_order_at_construction(lower, upper)
    except (ValueError, TypeError) as error:  # shapes that do not broadcast: left to init
        if "lower > upper" in str(error):
            raise

    unbounded = box.surely_free(lower) and box.surely_free(upper)

    def boxes(params):
        lo_tree = box.bound_tree(lower, params, "lower", -jnp.inf)
        hi_tree = box.bound_tree(upper, params, "upper", jnp.inf)
        return lo_tree, hi_tree

    def init_fn(params):
        lo_tree, hi_tree = boxes(params)  # the checks at init: shapes, keys, order
        box.check_order(lo_tree, hi_tree)
        dtype = c.scalar_dtype(params)
        n = sum(Packing(params).lengths)
        scalar = jnp.zeros([], dtype)
        return LbfgsBState(
            **c.not_started(LbfgsBState), step_size=scalar, direction=_tree.zeros_like(params), value=jnp.full([], jnp.inf, dtype),
            grad=_tree.zeros_like(params), prev_value=scalar,
            **_memory_fields(memory.empty(history_size, n, dtype)),
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        packing = Packing(params)
        lo_tree, hi_tree = boxes(params)
        # Packed per dtype: the box, the given point, and later the updates, nudged on
        # these vectors in each leaf's dtype (one kernel per dtype, not one per leaf).
        lo_groups, hi_groups = packing.pack(lo_tree), packing.pack(hi_tree)
        params_groups = packing.pack(params)
        lo, hi = flat(lo_groups, dtype), flat(hi_groups, dtype)
        x_given = flat(params_groups, dtype)
        x0 = box.project(x_given, lo, hi)

        def vg(x):
            f, g = value_and_grad(packing.unpack(split(x, packing)))
            return jnp.asarray(f, dtype), flat(packing.pack(g), dtype)

        infeasible = jnp.any(x0 != x_given)
        # scipy projects the start, then evaluates: the given value is not at x0 then.
        f0, g0 = jax.lax.cond(infeasible, vg, lambda _: (jnp.asarray(value, dtype),
                              flat(packing.pack(grads), dtype)), x0)  # fmt: skip
        first_call = state.func_evals == 0
        eps = float(jnp.finfo(dtype).eps)
        at_start = box.projected_gradient_norm(x0, g0, lo, hi) <= tolerance_grad
        reason = c.start_test(f0, g0, at_start)
        mem = memory.Memory(state.s_history, state.y_history, state.history_start,
                            state.history_count, state.theta, state.s_dot_s, state.s_dot_y,
                            state.y_dot_y)  # fmt: skip
        zero = jnp.zeros([], jnp.int32)
        carry = loop.Carry(x0, g0, f0, mem, state.n_iter, zero, zero, reason,
                           state.step_size, flat(packing.pack(state.direction), dtype))  # fmt: skip
        tol_rel = (tolerance_change / 2.220446049250313e-16) * 2.220446049250313e-16
        if packing.lengths:
            carry = loop.iterate(carry, vg, lo, hi, max_iter=max_iter, max_eval=max_eval,
                                 max_ls=max_line_search, tol_grad=tolerance_grad,
                                 tol_rel=tol_rel, eps=eps,
                                 unbounded=unbounded)  # fmt: skip
        failed = carry.reason == c.StopTest.NON_FINITE
        x = jnp.where(failed, x0, carry.x)
        nudged = box.inside_updates(params_groups, split(x, packing), lo_groups, hi_groups)
        updates = packing.unpack(nudged)
        evals = carry.evals + infeasible.astype(jnp.int32)
        given = first_call.astype(jnp.int32) * (1 - infeasible.astype(jnp.int32))
        mem = carry.mem
        new_state = state._replace(
            n_iter=carry.n_iter, func_evals=state.func_evals + given + evals,
            iterations=carry.n_local, evaluations=evals,
            **c.stopped_by(carry.reason),
            step_size=carry.t, direction=packing.unpack(split(carry.d, packing)),
            value=jnp.where(failed, state.value, carry.f),
            grad=packing.unpack(split(jnp.where(failed, g0, carry.g), packing)),
            prev_value=f0, **_memory_fields(mem),
        )  # fmt: skip
        return updates, new_state

    return _calling.transformation("lbfgs_b", init_fn, step_fn)


def _memory_fields(mem: memory.Memory) -> dict:
    return dict(s_history=mem.s, y_history=mem.y, history_start=mem.start,
                history_count=mem.count, theta=mem.theta, s_dot_s=mem.ss, s_dot_y=mem.sy,
                y_dot_y=mem.yy)  # fmt: skip
