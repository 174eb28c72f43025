"""One ``lbfgs_b`` update: L-BFGS-B 3.0's ``mainlb`` iterations on one flat vector.

Each pass of the loop is one iteration: the Cauchy point (skipped without bounds once
there is memory), the subspace step, the projected line search (``dcsrch`` with
L-BFGS-B's constants on $[0, t_{max}]$, the largest feasible step), the two stopping
tests, the memory update. A line search that fails with memory drops the memory and the
pass is repeated from the same point (``mainlb``'s "restart"); without memory it stops
the update (``LINE_SEARCH_FAILED``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import lax

from optjx.full_batch import _common as c
from optjx.full_batch import _dcsrch as dcsrch
from optjx.full_batch import _lbfgsb_bounds as box
from optjx.full_batch import _lbfgsb_memory as memory
from optjx.full_batch import _scipy_loop as scipy_loop
from optjx.full_batch._lbfgsb_cauchy import cauchy_point
from optjx.full_batch._lbfgsb_memory import Memory, compact
from optjx.full_batch._lbfgsb_subspace import reduced_gradient, subspace_point

Test = c.StopTest
Task = dcsrch.Task
FTOL, GTOL, XTOL = 1e-3, 0.9, 0.1  # lnsrlb's dcsrch constants
BIG = 1e10  # lnsrlb's step bound without bounds
_HI = lax.Precision.HIGHEST


class Carry(NamedTuple):
    x: Any
    g: Any
    f: Any
    mem: Memory
    n_iter: Any  # iterations over all updates (L-BFGS-B's iter)
    n_local: Any
    evals: Any
    reason: Any  # -1 while going on, else a StopTest
    t: Any  # the last step
    d: Any  # the last direction


class _Search(NamedTuple):
    dc: Any
    stp: Any
    task: Any
    ifun: Any
    x: Any
    f: Any
    g: Any
    gd: Any
    ceiling: Any
    any_finite: Any
    bad: Any


def line_search(vg, x0, f0, g0, d, z, lo, hi, stpmax, stp0, max_ls, dtype):
    """``lnsrlb``: dcsrch from ``stp0`` on $[0, t_{max}]$; every trial clipped into the box.

    A non-finite trial is a failed trial: dcsrch's state stays and the next step is
    halfway from its best step to the failed one (later steps stay below it).
    """
    gd0 = jnp.dot(g0, d, precision=_HI)
    k = dcsrch.Constants(FTOL, GTOL, XTOL, 0.0, stpmax)
    dc, task = dcsrch.start(stp0, f0, gd0, k)

    def trial_point(stp):
        return box.project(jnp.where(stp == 1, z, stp * d + x0), lo, hi)

    def body(s: _Search) -> _Search:
        xt = trial_point(s.stp)
        f, g = vg(xt)
        gd = jnp.dot(g, d, precision=_HI)
        bad = ~(jnp.isfinite(f) & jnp.all(jnp.isfinite(g)))
        new_dc, stp, task = dcsrch.iterate(s.dc, s.stp, f, gd, k)
        ceiling = jnp.where(bad, jnp.minimum(s.ceiling, s.stp), s.ceiling)
        new_dc = c.select(bad, s.dc, new_dc)
        stp = jnp.where(bad, s.dc.stx + 0.5 * (s.stp - s.dc.stx), stp)
        stp = jnp.where(~bad & (stp >= ceiling), new_dc.stx + 0.5 * (ceiling - new_dc.stx), stp)
        task = jnp.where(bad, Task.FG, task).astype(jnp.int32)
        return _Search(new_dc, stp, task, s.ifun + 1, xt, f, g, gd, ceiling, s.any_finite | ~bad, bad)  # fmt: skip

    false = jnp.asarray(False)
    s = _Search(dc, jnp.asarray(stp0, dtype), task, jnp.asarray(0, jnp.int32), x0, f0, g0, gd0,
                jnp.asarray(jnp.inf, dtype), false, false)  # fmt: skip
    s = lax.while_loop(lambda s: (s.task == Task.FG) & (s.ifun < max_ls), body, s)
    # CONVERGENCE or a WARNING ends the search at the last trial (lnsrlb's NEW_X).
    ok = (s.task == Task.CONVERGENCE) | ((s.task >= Task.WARNING_ROUNDING_ERRORS) & (s.task <= Task.WARNING_STPMIN))  # fmt: skip
    ok = ok & ~s.bad & (gd0 < 0)
    return ok, s


def _cauchy_and_reduced_gradient(s: Carry, lo, hi, b, constrained, eps, unbounded):
    r"""$x^c$, its free variables and $\hat r$; without bounds once there is memory the
    Cauchy point is skipped ($x^c = x$, all free, $\hat r = -g$) and not computed."""

    def cauchy():
        cp = cauchy_point(s.x, s.g, lo, hi, b, eps, breakpoints=not unbounded)
        return cp.xcp, cp.free, reduced_gradient(s.x, s.g, cp.xcp, cp.c, cp.free, b)

    def skipped():
        return s.x, jnp.ones(s.x.shape, bool), -s.g

    return lax.cond(~constrained & (s.mem.count > 0), skipped, cauchy)


def iterate(carry: Carry, vg, lo, hi, *, max_iter, max_eval, max_ls, tol_grad, tol_rel, eps,
            unbounded=False):  # fmt: skip
    """The iterations of one update; ``unbounded``: no bound is finite, known when tracing
    (the Cauchy point then has no breakpoints to sort)."""
    dtype = carry.x.dtype
    constrained = jnp.any(jnp.isfinite(lo) | jnp.isfinite(hi))
    boxed = jnp.all(jnp.isfinite(lo) & jnp.isfinite(hi))

    def body(s: Carry) -> Carry:
        b = compact(s.mem)
        xcp, free, r = _cauchy_and_reduced_gradient(s, lo, hi, b, constrained, eps, unbounded)
        use_sub = (s.mem.count > 0) & jnp.any(free)
        z = lax.cond(use_sub, lambda: subspace_point(s.x, s.g, lo, hi, xcp, r, free, b), lambda: xcp)  # fmt: skip
        d = z - s.x
        dnorm = jnp.sqrt(jnp.dot(d, d, precision=_HI))
        first = s.n_iter == 0
        stpmax = jnp.where(constrained, jnp.where(first, 1.0, box.max_feasible_step(s.x, d, lo, hi, BIG)), BIG)  # fmt: skip
        stp0 = jnp.where(first & ~boxed, jnp.minimum(1 / jnp.where(dnorm > 0, dnorm, 1.0), stpmax), 1.0)  # fmt: skip
        ok, ls = line_search(vg, s.x, s.f, s.g, d, z, lo, hi, stpmax.astype(dtype), stp0.astype(dtype), max_ls, dtype)  # fmt: skip
        evals = s.evals + ls.ifun
        failed = ~ok
        restart = failed & (s.mem.count > 0) & ls.any_finite
        # Tests after a step (mainlb, label 777).
        pg = box.projected_gradient_norm(ls.x, ls.g, lo, hi)
        small = (s.f - ls.f) <= tol_rel * jnp.maximum(jnp.maximum(jnp.abs(s.f), jnp.abs(ls.f)), 1.0)  # fmt: skip
        # Memory update: s = stp d, y = g+ - g, s.y from the slopes as lnsrlb computes it.
        yk = ls.g - s.g
        gd0 = jnp.dot(s.g, d, precision=_HI)
        dr = (ls.gd - gd0) * ls.stp
        update = dr > eps * (-gd0 * ls.stp)
        theta = jnp.dot(yk, yk, precision=_HI) / jnp.where(update, dr, 1.0)
        # One history for both outcomes (a failed search stores nothing, a restart
        # forgets the pairs): selecting between two histories would copy them.
        mem = memory.push(s.mem, ls.stp * d, yk, theta, update & ok)
        mem = memory.forget(mem, restart)
        n_local = s.n_local + 1
        reason = c.budget_test(n_local, evals, max_iter, max_eval)
        reason = jnp.where(small, Test.TOLERANCE_CHANGE_RELATIVE, reason)
        reason = jnp.where(pg <= tol_grad, Test.TOLERANCE_GRAD, reason)
        stepped = Carry(ls.x, ls.g, ls.f, mem, s.n_iter + 1, n_local, evals, reason.astype(jnp.int32), ls.stp, d)  # fmt: skip
        fail_reason = jnp.where(ls.any_finite, Test.LINE_SEARCH_FAILED, Test.NON_FINITE)
        go_on = restart
        if max_eval is not None:
            go_on = go_on & (evals < max_eval)
            fail_reason = jnp.where(restart, Test.MAX_EVAL, fail_reason)
        stay = s._replace(evals=evals, mem=mem,
                          reason=jnp.where(go_on, -1, fail_reason).astype(jnp.int32))  # fmt: skip
        others = [f for f in Carry._fields if f != "mem"]  # mem is one for both already
        chosen = c.select(failed, {f: getattr(stay, f) for f in others},
                          {f: getattr(stepped, f) for f in others})  # fmt: skip
        return Carry(mem=mem, **chosen)

    return scipy_loop.run(body, carry)
