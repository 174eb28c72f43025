"""MINPACK ``lmder``'s inner loop: one trial step of Levenberg-Marquardt.

Given the step ``solve(delta, par) -> (p, par, ||J p||)`` of ``lmpar`` (dense or CG),
evaluate the residuals at ``x + p``, compare the actual and predicted reductions, update
the trust radius and the damping, accept or reject, and run ``lmder``'s convergence tests
in its order (Moré 1978, section 4; MINPACK-1 user guide, ``lmder``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optjx.full_batch import _common as c
from optjx.full_batch import _minpack

StopTest = c.StopTest  # the detailed test; the state reports its coarse c.StopReason
# MINPACK's info -> the full-batch stop reasons (info itself is kept in the state).
REASON_OF_INFO = np.asarray(
    [
        -1,  # 0: still running
        StopTest.TOLERANCE_CHANGE_VALUE,  # 1: relative reduction of the sum of squares <= ftol
        StopTest.TOLERANCE_CHANGE_STEP,  # 2: relative step (trust radius) <= xtol
        StopTest.TOLERANCE_CHANGE_VALUE,  # 3: both 1 and 2
        StopTest.TOLERANCE_GRAD,  # 4: cosine of J^T f with every column of J <= gtol
        StopTest.MAX_EVAL,  # 5: max_eval evaluations in this update
        StopTest.TOLERANCE_CHANGE_VALUE,  # 6: ftol below machine precision: no reduction left
        StopTest.TOLERANCE_CHANGE_STEP,  # 7: xtol below machine precision: no step left
        StopTest.TOLERANCE_GRAD,  # 8: gtol below machine precision
    ],
    np.int32,
)  # fmt: skip (NumPy: no JAX array at import)


class Trial(NamedTuple):
    """The inner loop of ``lmder`` (trial steps until one is accepted or a test fires)."""

    x: jax.Array
    f: jax.Array
    fnorm: jax.Array
    xnorm: jax.Array
    par: jax.Array
    delta: jax.Array
    successes: jax.Array
    evals: jax.Array
    info: jax.Array
    accepted: jax.Array


def trial_step(t: Trial, *, solve, residuals, diag, gnorm, ftol, xtol, max_eval, dtype):
    """One pass of ``lmder``'s inner loop: lmpar, evaluate, ratio, radius, accept, tests."""
    eps = jnp.finfo(dtype).eps
    first = t.successes == 0
    p, par, jp_norm = solve(t.delta, t.par)
    trial = t.x + p
    pnorm = _minpack.norm(diag * p)
    delta = jnp.where(first, jnp.minimum(t.delta, pnorm), t.delta)
    f1 = residuals(trial)
    fnorm1 = _minpack.norm(f1)
    evals = t.evals + 1
    # Actual and predicted relative reductions of ||f||^2 (Moré 1978, eqs. 4.2-4.4).
    actred = jnp.where(0.1 * fnorm1 < t.fnorm, 1 - (fnorm1 / t.fnorm) ** 2, -1)
    temp1 = jp_norm / t.fnorm
    temp2 = (jnp.sqrt(par) * pnorm) / t.fnorm
    prered = temp1**2 + temp2**2 / 0.5
    dirder = -(temp1**2 + temp2**2)
    ratio = jnp.where(prered != 0, actred / jnp.where(prered != 0, prered, 1), 0)
    # The radius update: shrink on a poor ratio, grow on a good one.
    shrink = jnp.where(actred >= 0, 0.5, 0.5 * dirder / (dirder + 0.5 * actred))
    shrink = jnp.where((0.1 * fnorm1 >= t.fnorm) | (shrink < 0.1), 0.1, shrink)
    poor = ratio <= 0.25
    grow = ~poor & ((par == 0) | (ratio >= 0.75))
    delta = jnp.where(poor, shrink * jnp.minimum(delta, pnorm / 0.1),
                      jnp.where(grow, pnorm / 0.5, delta))  # fmt: skip
    par = jnp.where(poor, par / shrink, jnp.where(grow, 0.5 * par, par))
    accepted = ratio >= 1e-4
    x = jnp.where(accepted, trial, t.x)
    f = jnp.where(accepted, f1, t.f)
    xnorm = jnp.where(accepted, _minpack.norm(diag * trial), t.xnorm)
    fnorm = jnp.where(accepted, fnorm1, t.fnorm)
    # The tests, in lmder's order: the later one wins.
    small_f = (jnp.abs(actred) <= ftol) & (prered <= ftol) & (0.5 * ratio <= 1)
    info = jnp.where(small_f, 1, 0)
    info = jnp.where(delta <= xtol * xnorm, 2, info)
    info = jnp.where(small_f & (info == 2), 3, info)
    stringent = jnp.where(evals >= max_eval, 5, 0)
    tiny_f = (jnp.abs(actred) <= eps) & (prered <= eps) & (0.5 * ratio <= 1)
    stringent = jnp.where(tiny_f, 6, stringent)
    stringent = jnp.where(delta <= eps * xnorm, 7, stringent)
    stringent = jnp.where(gnorm <= eps, 8, stringent)
    info = jnp.where(info != 0, info, stringent)
    return Trial(x, f, fnorm, xnorm, par, delta, t.successes + accepted.astype(jnp.int32),
                  evals, info.astype(jnp.int32), accepted)  # fmt: skip
