"""Trust-region Newton-CG, iterate for iterate as ``scipy.optimize.minimize(method="trust-ncg")``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _state, _tree
from optjx.full_batch import _calling
from optjx.full_batch import _common as c
from optjx.full_batch import _scipy_loop as scipy_loop
from optjx.full_batch import _steihaug as steihaug
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._hvp import linearized_gradient
from optjx.full_batch._packing import Packing
from optjx.typing import Hyperparameter

StopTest = c.StopTest  # the detailed test; the state reports its coarse c.StopReason
_MAX_ETA = 0.25  # scipy: 0 <= eta < 0.25


class TrustRegionNewtonState(NamedTuple):
    r"""Trust-region Newton state: scipy's loop variables between updates, and counters.

    Attributes:
      n_iter: scipy's ``nit``, iterations over all updates (rejected steps included).
      func_evals: scipy's ``nfev``: the first update's given value and one evaluation
        per iteration (the value at the proposed point).
      grad_evals: scipy's ``njev``: the first update's given gradient and one per
        accepted step (scipy evaluates the gradient only where it moves).
      hessian_products: scipy's ``nhev``: the Hessian-vector products of the inner CG,
        plus the products scipy spends evaluating the model (one per iteration, two more
        at negative curvature; here those come from the CG recurrences at no cost), plus
        one for the first update (scipy's initial call of its Hessian wrapper).
      iterations: iterations in the last update.
      evaluations: calls of ``value_fn``'s value and gradient in the last update.
      count: updates applied (the argument of a scheduled hyperparameter).
      stop_reason: an ``optjx.StopReason``, why the last update stopped.
      stop_test: the detailed test that stopped it (a ``StopTest``).
      trust_radius: $\Delta$, carried to the next update.
      direction: $p$, the last proposed step, a tree like the params.
      value: $f$ at the returned params (scipy's ``m.fun``); $+\infty$ before the first
        update, as optax's ``value_and_grad_from_state`` expects.
      grad: $\nabla f$ at the returned params, a tree like the params.
      prev_value: $f$ before the last accepted step.
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
    trust_radius: jax.Array
    direction: Any
    value: jax.Array
    grad: Any
    prev_value: jax.Array


class Carry(NamedTuple):
    """The loop state: scipy's ``x, m.fun, m.jac, trust_radius`` and the counters."""

    x: Any  # the point, a tree like the params
    g: Any  # packed gradient at x
    f: Any
    f_prev: Any
    radius: Any
    p_tree: Any  # the last proposed step, a tree
    n_local: Any  # iterations in this update
    evals: Any  # value_and_grad calls in this update (scipy's nfev)
    grad_evals: Any  # scipy's njev in this update
    products: Any  # scipy's nhev in this update
    reason: Any  # -1 while going on, else a StopReason


def iterate(carry: Carry, value_and_grad, packing: Packing, dtype, *, eta, max_radius,
            tolerance_grad, max_iter: int) -> Carry:  # fmt: skip
    """Iterations of scipy's ``_minimize_trust_region`` with the Steihaug subproblem."""
    max_products = max(1, 20 * sum(packing.lengths))

    def iteration(s: Carry) -> Carry:
        hvp = linearized_gradient(value_and_grad, s.x, packing)
        sub = steihaug.steihaug(hvp, s.f, s.g, c.norm(s.g, dtype), s.radius, dtype, max_products)
        predicted = steihaug.model_value(s.f, s.g, sub.step, sub.hessian_step, dtype)
        p_tree = packing.unpack(sub.step)
        x_new = jax.tree.map(jnp.add, s.x, p_tree)
        f_new, g_tree = value_and_grad(x_new)
        g_new = packing.pack(g_tree)
        bad = ~(jnp.isfinite(f_new) & c.all_finite(g_new))
        predicted_reduction = s.f - predicted
        no_decrease = ~(predicted_reduction > 0)  # scipy stops at <= 0 (NaN: stop too)
        ratio = (s.f - f_new) / jnp.where(no_decrease, 1, predicted_reduction)
        radius = steihaug.radius_update(s.radius, ratio, sub.hits_boundary, max_radius)
        accept = (ratio > eta) & ~no_decrease
        n_local = s.n_local + (~no_decrease).astype(jnp.int32)
        converged = accept & (c.norm(g_new, dtype) < tolerance_grad)
        reason = c.budget_test(n_local, s.evals, max_iter, None)
        reason = jnp.where(converged, StopTest.TOLERANCE_GRAD, reason)
        reason = jnp.where(no_decrease, StopTest.NO_PREDICTED_DECREASE, reason)
        reason = jnp.where(bad, StopTest.NON_FINITE, reason)
        products = s.products + sub.products + 1 + 2 * sub.negative_curvature.astype(jnp.int32)
        return Carry(
            x=c.select(accept, x_new, s.x), g=c.select(accept, g_new, s.g),
            f=jnp.where(accept, f_new, s.f), f_prev=jnp.where(accept, s.f, s.f_prev),
            radius=jnp.where(no_decrease, s.radius, radius).astype(dtype), p_tree=p_tree,
            n_local=n_local.astype(jnp.int32), evals=s.evals + 1,
            grad_evals=s.grad_evals + accept.astype(jnp.int32), products=products,
            reason=reason.astype(jnp.int32),
        )  # fmt: skip

    return scipy_loop.run(iteration, carry)


@compiled_when_eager
def trust_region_newton(
    *,
    max_iter: int = 20,
    initial_trust_radius: Hyperparameter = 1.0,
    max_trust_radius: Hyperparameter = 1000.0,
    eta: Hyperparameter = 0.15,
    tolerance_grad: Hyperparameter = 1e-4,
) -> optax.GradientTransformationExtraArgs:
    r"""Trust-region Newton-CG (Steihaug-Toint): updates repeated to convergence are one
    ``scipy.optimize.minimize(method="trust-ncg")`` run.

    At $x_k$ with gradient $g$ and Hessian $B$ (never formed: only products $B v$, by
    forward-over-reverse differentiation of ``value_fn``), the step $p$ approximately
    solves the subproblem

    $$
    \min_{\lVert p \rVert_2 \le \Delta_k} m(p) = f_k + g^\top p + \tfrac12 p^\top B p
    $$

    by Steihaug's truncated CG (Nocedal & Wright, Algorithm 7.2): CG on $B p = -g$ from
    $p = 0$, stopped at the residual $\lVert r \rVert < \min(\tfrac12,
    \sqrt{\lVert g \rVert}) \lVert g \rVert$, at the boundary when an iterate would leave
    the region ($z + t_b d$, $t_b > 0$ the root of $\lVert z + t d \rVert = \Delta$), or
    at a direction $d$ of curvature $d^\top B d \le 0$ (whichever boundary point along
    $d$ has the lower model value). With $\rho = (f(x_k) - f(x_k + p)) / (m(0) - m(p))$:

    $$
    \Delta_{k+1} = \begin{cases} \Delta_k / 4 & \rho < \tfrac14 \\
    \min(2 \Delta_k, \Delta_{max}) & \rho > \tfrac34,\ \lVert p \rVert = \Delta_k \\
    \Delta_k & \text{otherwise} \end{cases}, \qquad
    x_{k+1} = \begin{cases} x_k + p & \rho > \eta \\ x_k & \text{otherwise} \end{cases}
    $$

    A rejected step counts as an iteration, as in scipy. An update stops when
    $\lVert g \rVert_2 <$ ``tolerance_grad`` (before the first iteration:
    ``TOLERANCE_GRAD_AT_START``; after a step: ``TOLERANCE_GRAD``), after ``max_iter``
    iterations (``MAX_ITER``; $\Delta$ and the counters carry over, so updates repeated
    until ``TOLERANCE_GRAD`` give scipy's iterates, values and ``nfev``/``njev``/``nhev``),
    or when the model predicts no decrease, $m(0) - m(p) \le 0$ (``NO_PREDICTED_DECREASE``,
    scipy's status 2: params stay).

    **Saddle points.** Newton's method solves $B p = -g$ and so moves to the nearest
    stationary point of the quadratic model, a saddle as readily as a minimum: near a
    saddle of $f$ it is attracted to it (Goodfellow et al., section 8.6). Here the inner
    CG meets the negative curvature ($d^\top B d \le 0$) and follows it to the trust
    region's boundary, the point of lower model value, so the step leaves the saddle;
    the radius then grows while the model predicts well. At a point with $g = 0$
    exactly (a saddle itself) the method stops at once (``tolerance_grad``), as scipy.

    | ``scipy.optimize.minimize`` | ``optjx.trust_region_newton`` |
    |---|---|
    | ``method="trust-ncg"``, ``hessp`` | ``update(grads, state, params, value=, value_fn=)`` |
    | ``gtol=1e-4`` | ``tolerance_grad=1e-4`` (on $\lVert g \rVert_2$) |
    | ``initial_trust_radius=1`` | ``initial_trust_radius=1.0`` |
    | ``max_trust_radius=1000`` | ``max_trust_radius=1000.0`` |
    | ``eta=0.15`` | ``eta=0.15`` |
    | ``maxiter=200 n`` | the number of updates times ``max_iter`` |
    | ``res.nit, nfev, njev, nhev`` | ``state.n_iter, func_evals, grad_evals, hessian_products`` |

    References:
      Steihaug (1983), "The conjugate gradient method and trust regions in large scale
      optimization", SIAM J. Numer. Anal. 20(3); Toint (1981); Nocedal & Wright (2006),
      "Numerical Optimization", Algorithms 4.1 and 7.2; Goodfellow, Bengio & Courville
      (2016), "Deep Learning", section 8.6; scipy 1.17.1 ``_trustregion.py`` and
      ``_trustregion_ncg.py``.

    Args:
      max_iter: iterations per update, int $\ge 1$, default 20.
      initial_trust_radius: $\Delta_0 > 0$, default 1 (read once, by ``init``).
      max_trust_radius: $\Delta_{max} > \Delta_0$, default 1000.
      eta: acceptance threshold, $0 \le \eta < 1/4$, default 0.15.
      tolerance_grad: $\ge 0$, default ``1e-4`` (scipy's ``gtol``, on the 2-norm).

    Returns:
      A ``GradientTransformationExtraArgs`` with a ``TrustRegionNewtonState``;
      ``update(grads, state, params, *, value, value_fn)`` as ``optjx.lbfgs``
      (``value_fn`` deterministic and twice differentiable, the loss of the params
      alone). A NaN or Inf value or gradient stops the update: the update is zero, the
      state keeps its radius and counters, ``stop_reason`` is ``NON_FINITE``.

    Raises:
      ValueError: a hyperparameter out of range, a missing ``value_fn`` or params, a
        non-scalar loss, gradients that do not match the state.
      TypeError: a hyperparameter of the wrong type.

    Differences from scipy and optax:
      Every evaluation computes the value and the gradient together (scipy evaluates the
      gradient only at accepted points; ``grad_evals`` counts as scipy does). scipy
      evaluates the model $m(p)$ with one more Hessian-vector product per candidate;
      here $B p$ comes from the CG recurrence $B z_{j+1} = B z_j + \alpha_j B d_j$ (the
      same value up to rounding; ``hessian_products`` still counts as scipy). scipy's
      inner CG has no iteration cap; here $20 n$ products. A NaN stops the update
      (scipy would keep rejecting). optax has no second-order method.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optjx
      >>> loss = lambda p: jnp.sum((p["x"] - 1.0) ** 2) + jnp.sum(p["x"] ** 4)
      >>> params = {"x": jnp.zeros(3)}
      >>> opt = optjx.trust_region_newton()
      >>> state = opt.init(params)
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
      >>> params = optax.apply_updates(params, updates)
      >>> optjx.stop_reason(state), int(state.n_iter) < 20
      ('TOLERANCE_GRAD', True)
    """
    hypers = _hyper.Hyperparameters(
        initial_trust_radius=(initial_trust_radius, _hyper.POSITIVE),
        max_trust_radius=(max_trust_radius, _hyper.POSITIVE),
        eta=(eta, _hyper.Range(0.0, _MAX_ETA, high_inclusive=False)),
        tolerance_grad=(tolerance_grad, _hyper.NONNEGATIVE),
    )
    c.check_int("max_iter", max_iter, 1)
    if (_hyper.is_concrete(initial_trust_radius) and _hyper.is_concrete(max_trust_radius)
            and not np.all(np.asarray(initial_trust_radius) < np.asarray(max_trust_radius))):  # fmt: skip
        raise ValueError(
            f"initial_trust_radius must be smaller than max_trust_radius, got "
            f"{initial_trust_radius} and {max_trust_radius}"
        )

    def init_fn(params):
        _tree.require_real(params, "trust_region_newton")
        dtype = c.scalar_dtype(params)
        scalar = jnp.zeros([], dtype)
        radius = _hyper.value_at(initial_trust_radius, _state.zero_count())
        return TrustRegionNewtonState(
            **c.not_started(TrustRegionNewtonState), trust_radius=jnp.asarray(radius, dtype),
            direction=_tree.zeros_like(params), value=jnp.full([], jnp.inf, scalar.dtype),
            grad=_tree.zeros_like(params), prev_value=scalar,
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        hp = hypers.at(state.count)
        packing = Packing(params)
        # The loop runs in the params' dtypes (value_fn's gradients come in them).
        g = packing.pack(jax.tree.map(lambda d, x: d.astype(x.dtype), grads, params))
        tolerance = jnp.asarray(hp.tolerance_grad, dtype)
        reason = c.start_test(value, g, c.norm(g, dtype) < tolerance)
        zero = jnp.zeros([], jnp.int32)
        carry = Carry(params, g, value, state.prev_value, state.trust_radius, state.direction,
                      zero, zero, zero, zero, reason)  # fmt: skip
        s = iterate(carry, value_and_grad, packing, dtype, eta=jnp.asarray(hp.eta, dtype),
                    max_radius=jnp.asarray(hp.max_trust_radius, dtype),
                    tolerance_grad=tolerance, max_iter=max_iter)  # fmt: skip
        kept = dict(trust_radius=s.radius, direction=s.p_tree, grad=packing.unpack(s.g))
        # scipy's ScalarFunction wraps the absent Hessian in a function that it calls once
        # at x0: its nhev counts it.
        return scipy_loop.finish(state, params, s, kept=kept, like=grads, first_hessian=True)

    return _calling.transformation("trust_region_newton", init_fn, step_fn)
