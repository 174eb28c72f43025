"""One ``bfgs`` update: scipy's ``_minimize_bfgs`` loop body, for up to ``max_iter`` iterations.

The pure piece (``inverse_hessian_update``) is separate from the driving loop
(``iterate``), so another driver can reuse it. The point, gradients and directions are
packed, one vector per dtype (``optjx.full_batch._packing.Packing``): a trial point
``x + t d`` is one operation per dtype, unpacked into a tree for ``value_fn`` only; the
inverse Hessian is one matrix over their concatenation (``_packing.flat``), in the
scalar dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import lax

from optjx.full_batch import _common as c
from optjx.full_batch import _scipy_loop as scipy_loop
from optjx.full_batch import more_thuente as mt
from optjx.full_batch._packing import Packing, flat, split
from optjx.full_batch._wolfe import along_packed

StopTest = c.StopTest
# scipy's BFGS calls its line search with these bounds (amin, amax) and dcsrch's xtol.
MIN_STEP, MAX_STEP, XTOL = 1e-100, 1e100, 1e-14
_RHO_AT_ZERO_CURVATURE = 1000.0  # scipy's rhok when y.s == 0 ("rhok assumed large")


def inverse_hessian_update(h, s, y):
    r"""The BFGS update of the inverse Hessian (Nocedal & Wright, eq. 6.17):

    $$
    H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top
            = H_k - \rho (s u^\top + u s^\top) + (\rho^2 y^\top u + \rho) s s^\top,
    \quad u = H_k y, \quad \rho = 1 / y^\top s
    $$

    in $O(n^2)$ (the second form; scipy multiplies the three matrices, $O(n^3)$), with
    scipy's $\rho = 1000$ when $y^\top s = 0$. $H_k$ symmetric; $H_{k+1}$ is then symmetric
    to the last bit (each entry sums the same products).
    """
    ys = jnp.dot(y, s, precision=lax.Precision.HIGHEST)
    rho = jnp.where(ys == 0, _RHO_AT_ZERO_CURVATURE, 1 / jnp.where(ys == 0, 1, ys))
    u = jnp.matmul(h, y, precision=lax.Precision.HIGHEST)
    coefficient = rho * rho * jnp.dot(y, u, precision=lax.Precision.HIGHEST) + rho
    return h - rho * (jnp.outer(s, u) + jnp.outer(u, s)) + coefficient * jnp.outer(s, s)


class Carry(NamedTuple):
    """The loop state: scipy's ``xk, gfk, old_fval, old_old_fval, Hk`` and the counters."""

    x: Any  # the point, packed
    g: Any  # packed gradient at x
    f: Any  # f(x), scipy's old_fval
    f_prev: Any  # scipy's old_old_fval (the value before the last step)
    h: Any  # the inverse Hessian, (n, n)
    t: Any  # the last step size
    d: Any  # the last direction, packed
    n_local: Any  # iterations in this update
    evals: Any  # value_and_grad calls in this update
    grad_evals: Any  # scipy's gradient count in this update
    reason: Any  # -1 while going on, else a StopTest


def iterate(carry: Carry, value_and_grad, packing: Packing, dtype, *, c1, c2, tolerance_grad,
            tolerance_step, max_iter: int, max_eval) -> Carry:  # fmt: skip
    """Iterations of scipy's BFGS from ``carry`` until a stop reason is set."""

    def iteration(s: Carry) -> Carry:
        p = -jnp.matmul(s.h, flat(s.g, dtype), precision=lax.Precision.HIGHEST)
        d = split(p, packing)
        slope = c.dot(s.g, d, dtype)
        ls = mt.search(along_packed(value_and_grad, packing, s.x, d, dtype), s.f, s.g, slope,
                       mt.first_step(s.f, s.f_prev, slope), c1=c1, c2=c2, xtol=XTOL,
                       min_step=MIN_STEP, max_step=MAX_STEP)  # fmt: skip
        found = ls.success
        t = ls.step_size
        # The point the search evaluated, to the bit; without a step t = 0 and x stays
        # (x + 0 d = x).
        x = c.axpy(t, d, s.x)
        n_local = s.n_local + found.astype(jnp.int32)
        evals = s.evals + ls.evaluations
        converged = c.max_abs(ls.grad, dtype) <= tolerance_grad
        # scipy's xrtol test, on the 2-norms of the step and the new point (the point's
        # summed leaf by leaf, as the tree it is).
        small = t * c.norm(d, dtype) <= tolerance_step * (
            tolerance_step + c.norm(packing.unpack(x), dtype)
        )
        step = t * flat(d, dtype)
        change = flat(ls.grad, dtype) - flat(s.g, dtype)
        h = jnp.where(found & ~converged & ~small, inverse_hessian_update(s.h, step, change), s.h)
        reason = c.budget_test(n_local, evals, max_iter, max_eval)
        reason = jnp.where(small, StopTest.TOLERANCE_CHANGE_STEP, reason)
        reason = jnp.where(converged, StopTest.TOLERANCE_GRAD, reason)
        reason = jnp.where(found, reason, StopTest.LINE_SEARCH_FAILED)
        reason = jnp.where(ls.non_finite, StopTest.NON_FINITE, reason)
        return Carry(
            x=x, g=ls.grad, f=ls.value, f_prev=jnp.where(found, s.f, s.f_prev), h=h,
            t=jnp.where(found, t, s.t), d=d, n_local=n_local, evals=evals,
            grad_evals=s.grad_evals + ls.gradient_evaluations, reason=reason.astype(jnp.int32),
        )  # fmt: skip

    return scipy_loop.run(iteration, carry)
