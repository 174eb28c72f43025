"""Line-search Newton-CG, iterate for iterate as ``scipy.optimize.minimize(method="Newton-CG")``."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _tree
from optjx.full_batch import _calling
from optjx.full_batch import _common as c
from optjx.full_batch import _scipy_loop as scipy_loop
from optjx.full_batch import more_thuente as mt
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._hvp import linearized_gradient
from optjx.full_batch._packing import Packing
from optjx.full_batch._truncated_cg import newton_direction
from optjx.full_batch._wolfe import along
from optjx.typing import Hyperparameter

StopTest = c.StopTest  # the detailed test; the state reports its coarse c.StopReason


class NewtonCgState(NamedTuple):
    r"""Newton-CG state: scipy's loop variables between updates, and counters.

    Attributes:
      n_iter: scipy's ``nit``, iterations (steps taken) over all updates.
      func_evals: scipy's ``nfev``: the first update's given value and every call of the
        loss since (later updates' given values repeat the last evaluation: not counted).
      grad_evals: scipy's ``njev``, counted likewise.
      hessian_products: scipy's ``nhev``: Hessian-vector products of the inner CG.
      iterations: iterations in the last update.
      evaluations: calls of ``value_fn``'s value and gradient in the last update.
      count: updates applied (the argument of a scheduled hyperparameter).
      stop_reason: an ``optjx.StopReason``, why the last update stopped.
      stop_test: the detailed test that stopped it (a ``StopTest``).
      step_size: $t$ of the last iteration.
      direction: $p$ of the last iteration, a tree like the params.
      value: $f$ at the returned params (scipy's ``old_fval``); $+\infty$ before the first
        update, as optax's ``value_and_grad_from_state`` expects.
      grad: $\nabla f$ at the returned params, a tree like the params.
      prev_value: $f$ before the last step (scipy's ``old_old_fval``), from which the next
        line search takes its first trial step.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    n_iter: jax.Array
    func_evals: jax.Array
    grad_evals: jax.Array
    hessian_products: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    stop_reason: jax.Array
    stop_test: jax.Array
    step_size: jax.Array
    direction: Any
    value: jax.Array
    grad: Any
    prev_value: jax.Array


class Carry(NamedTuple):
    """The loop state: scipy's ``xk, gfk, old_fval, old_old_fval`` and the counters."""

    x: Any  # the point, a tree like the params
    g: Any  # packed gradient at x
    f: Any
    f_prev: Any  # scipy's old_old_fval
    first: Any  # bool: old_old_fval is scipy's None (no step taken yet)
    t: Any
    d_tree: Any
    n_local: Any
    evals: Any
    grad_evals: Any
    products: Any
    reason: Any  # -1 while going on, else a StopReason


def iterate(carry: Carry, value_and_grad, packing: Packing, dtype, *, xtol, max_iter: int,
            max_eval, c1: float, c2: float) -> Carry:  # fmt: skip
    """Iterations of scipy's ``_minimize_newtoncg`` from ``carry`` until a stop reason."""
    n = sum(packing.lengths)
    max_products = max(1, 20 * n)  # scipy's cg_maxiter

    def iteration(s: Carry) -> Carry:
        hvp = linearized_gradient(value_and_grad, s.x, packing)
        cg = newton_direction(hvp, s.g, dtype, max_products)
        d = cg.direction
        d_tree = packing.unpack(d)
        slope = c.dot(s.g, d, dtype)
        # scipy passes old_old_fval=None on its first iteration: the first trial step is 1.
        t0 = jnp.where(s.first, 1.0, mt.first_step(s.f, s.f_prev, slope)).astype(dtype)
        # scipy's line_search_wolfe1 bounds the step by 50; its fallback by nothing.
        ls = mt.search(along(value_and_grad, s.x, d_tree, d, dtype, packing.pack), s.f, s.g, slope, t0, c1=c1, c2=c2,
                       fallback_max_step=float("inf"))  # fmt: skip
        # A zero direction (the inner CG's flat-curvature exit at its first step) makes
        # the trial point x itself: scipy's function cache answers, nothing is counted.
        counted = cg.converged & ~(c.max_abs(d, dtype) == 0)
        found = ls.success & cg.converged
        t = ls.step_size
        x = c.axpy(t, d_tree, s.x)  # the point the search evaluated, to the bit
        n_local = s.n_local + found.astype(jnp.int32)
        evals = s.evals + jnp.where(counted, ls.evaluations, 0)
        # scipy's test: the mean absolute update, sum |t p| <= n xtol.
        small = c.sum_abs(c.scale(t, d), dtype) <= n * xtol
        reason = c.budget_test(n_local, evals, max_iter, max_eval)
        reason = jnp.where(small, StopTest.TOLERANCE_CHANGE_STEP, reason)
        reason = jnp.where(ls.success, reason, StopTest.LINE_SEARCH_FAILED)
        reason = jnp.where(ls.non_finite, StopTest.NON_FINITE, reason)
        reason = jnp.where(cg.converged, reason, StopTest.INNER_CG_NOT_CONVERGED)
        return Carry(
            x=c.select(found, x, s.x), g=c.select(found, ls.grad, s.g),
            f=jnp.where(found, ls.value, s.f), f_prev=jnp.where(found, s.f, s.f_prev),
            first=s.first & ~found, t=jnp.where(found, t, s.t),
            d_tree=c.select(found, d_tree, s.d_tree), n_local=n_local, evals=evals,
            grad_evals=s.grad_evals + jnp.where(counted, ls.gradient_evaluations, 0),
            products=s.products + cg.products, reason=reason.astype(jnp.int32),
        )  # fmt: skip

    return scipy_loop.run(iteration, carry)


@compiled_when_eager
def newton_cg(
    *,
    max_iter: int = 20,
    max_eval: Optional[int] = None,
    xtol: Hyperparameter = 1e-5,
) -> optax.GradientTransformationExtraArgs:
    r"""Truncated Newton (line-search Newton-CG): updates repeated to convergence are one
    ``scipy.optimize.minimize(method="Newton-CG")`` run.

    At $x_k$ with gradient $g$ and Hessian $H$ (never formed: only products $H v$, by
    forward-over-reverse differentiation of ``value_fn``), the direction $p_k$ solves
    the Newton equation $H p = -g$ approximately, by conjugate gradients from $p = 0$
    stopped at the residual

    $$
    \lVert H p + g \rVert_1 \le \min\bigl(\tfrac12, \sqrt{\lVert g \rVert_1}\bigr)
    \lVert g \rVert_1
    $$

    (a forcing sequence: superlinear convergence near a minimiser; Nocedal & Wright,
    Algorithm 7.1), or at a direction of non-positive curvature (see below); then
    $x_{k+1} = x_k + t_k p_k$ with $t_k$ from ``optjx.more_thuente`` ($c_1$, $c_2$,
    scipy's strong-Wolfe fallback), first trial $1$ at the first iteration and
    $\min(1, 2.02 (f_k - f_{k-1}) / g^\top p_k)$ after. This is scipy 1.17.1's
    ``_minimize_newtoncg``, test for test: a run converges when the mean absolute
    update $\frac1n \sum_i |t_k p_{k,i}| \le$ ``xtol`` (``TOLERANCE_CHANGE_STEP``; scipy
    has no gradient test); it stops without a step when the line search finds none
    (``LINE_SEARCH_FAILED``) or the inner CG has used $20 n$ products
    (``INNER_CG_NOT_CONVERGED``). One ``update`` runs up to ``max_iter`` iterations;
    $f_{k-1}$ and the counters carry over, so updates repeated until
    ``TOLERANCE_CHANGE_STEP`` give scipy's iterates, values and ``nfev``/``njev``/``nhev``.
    In float32 the loss's rounding (about $10^{-7}$ of its value) hides the small
    decreases near a minimiser, so a run there often ends with ``LINE_SEARCH_FAILED``
    before its updates fall below ``xtol``: the params are then as close as float32
    resolves (scipy in float64 does the same with a tight ``xtol``).

    **Saddle points.** Newton's method jumps to the stationary point of its quadratic
    model, and near a saddle of $f$ that is the saddle: it is attracted to it
    (Goodfellow et al., section 8.6). Newton-CG sees the negative curvature inside its
    CG loop ($d^\top H d < 0$) and stops there: at the first CG step it takes the
    steepest-descent direction (scaled by $g^\top g / |g^\top H g|$), later the CG
    iterate so far, which is a descent direction; the line search then decreases $f$,
    so the iterates move away from the saddle instead of towards it. At a point with
    $g = 0$ exactly (a saddle itself) there is no direction to follow: the step is zero
    and the run stops, as scipy's.

    | ``scipy.optimize.minimize`` | ``optjx.newton_cg`` |
    |---|---|
    | ``method="Newton-CG"``, ``hessp`` | ``update(grads, state, params, value=, value_fn=)`` |
    | ``xtol=1e-5`` | ``xtol=1e-5`` (mean absolute update) |
    | ``maxiter=200 n`` | the number of updates times ``max_iter`` |
    | ``c1=1e-4``, ``c2=0.9`` | fixed |
    | ``res.nit, nfev, njev, nhev`` | ``state.n_iter, func_evals, grad_evals, hessian_products`` |

    References:
      Dembo & Steihaug (1983), "Truncated-Newton algorithms for large-scale
      unconstrained optimization", Math. Programming 26; Nocedal & Wright (2006),
      "Numerical Optimization", Algorithm 7.1; Goodfellow, Bengio & Courville (2016),
      "Deep Learning", section 8.6; scipy 1.17.1 ``scipy/optimize/_optimize.py``
      (``_minimize_newtoncg``).

    Args:
      max_iter: iterations per update, int $\ge 1$, default 20.
      max_eval: stop the update after the iteration in which its evaluations reach this
        (int $\ge 1$); default ``None``, no limit (scipy has none). The line search itself
        is never cut short, so the iterates stay scipy's.
      xtol: $\ge 0$ (number, array or schedule of the update count), default ``1e-5``:
        the run converges when the mean absolute update is at most this.

    Returns:
      A ``GradientTransformationExtraArgs`` with a ``NewtonCgState``;
      ``update(grads, state, params, *, value, value_fn)`` as ``optjx.lbfgs``
      (``value_fn`` deterministic and twice differentiable, the loss of the params
      alone). A NaN or Inf value or gradient stops the update: the update is zero, the
      state keeps its counters, ``stop_reason`` is ``NON_FINITE``.

    Raises:
      ValueError: a hyperparameter out of range, a missing ``value_fn`` or params, a
        non-scalar loss, gradients that do not match the state.
      TypeError: a hyperparameter of the wrong type.

    Differences from scipy and optax:
      Every evaluation computes the value and the gradient together (the counts are
      scipy's, its function cache included). A NaN stops the update (scipy would end
      with status 3).
      Sums run in another order than NumPy's: iterates agree to about ``1e-12``, not to
      the bit. optax has no second-order method.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optjx
      >>> loss = lambda p: jnp.sum((p["x"] - 1.0) ** 2) + jnp.sum(p["x"] ** 4)
      >>> params = {"x": jnp.zeros(3)}
      >>> opt = optjx.newton_cg()
      >>> state = opt.init(params)
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
      >>> params = optax.apply_updates(params, updates)
      >>> [round(float(v), 4) for v in params["x"]], int(state.n_iter) < 20
      ([0.5898, 0.5898, 0.5898], True)
    """
    hypers = _hyper.Hyperparameters(xtol=(xtol, _hyper.NONNEGATIVE))
    c.check_budget(max_iter, max_eval)

    def init_fn(params):
        _tree.require_real(params, "newton_cg")
        scalar = jnp.zeros([], c.scalar_dtype(params))
        return NewtonCgState(
            **c.not_started(NewtonCgState), step_size=scalar,
            direction=_tree.zeros_like(params), value=jnp.full([], jnp.inf, scalar.dtype),
            grad=_tree.zeros_like(params), prev_value=scalar,
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        hp = hypers.at(state.count)
        packing = Packing(params)
        # The loop runs in the params' dtypes (value_fn's gradients come in them).
        g = packing.pack(jax.tree.map(lambda d, x: d.astype(x.dtype), grads, params))
        reason = c.start_test(value, g, False)  # scipy has no gradient test
        zero = jnp.zeros([], jnp.int32)
        carry = Carry(params, g, value, state.prev_value, state.n_iter == 0, state.step_size,
                      state.direction, zero, zero, zero, zero, reason)  # fmt: skip
        s = iterate(carry, value_and_grad, packing, dtype, xtol=jnp.asarray(hp.xtol, dtype),
                    max_iter=max_iter, max_eval=max_eval, c1=1e-4, c2=0.9)  # fmt: skip
        kept = dict(step_size=s.t, direction=s.d_tree, grad=packing.unpack(s.g))
        return scipy_loop.finish(state, params, s, kept=kept, like=grads)

    return _calling.transformation("newton_cg", init_fn, step_fn)
