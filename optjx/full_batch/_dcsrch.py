r"""MINPACK-2's ``dcsrch``/``dcstep`` (Moré & Thuente 1994) as a pure scalar state machine.

No evaluation happens here: ``start`` takes $\phi(0)$, $\phi'(0)$ and the first trial
step, ``iterate`` takes $\phi$ and $\phi'$ at the step it asked for and returns the
next one with a ``Task``. The driver that evaluates the loss, and scipy's fallback,
are in ``optjx.full_batch.more_thuente``. Every branch is a ``jnp.where`` on scalars,
so both functions trace once and run under ``jit`` and ``vmap``.

The rules are those of scipy 1.17.1's ``scipy/optimize/_dcsrch.py`` (a Python port of
MINPACK-2): the same constants, tests and their order, so that the trial steps are
scipy's to the last bit where the arithmetic allows.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

_HALF, _P66 = 0.5, 0.66  # bisection factor; the interval must shrink by 0.66 per 2 steps
_XTRAPL, _XTRAPU = 1.1, 4.0  # extrapolation range before a minimiser is bracketed


class Task(enum.IntEnum):
    """What ``dcsrch`` asks for next (MINPACK-2's ``task`` string, as an int)."""

    FG = 0  # evaluate phi and phi' at the returned step, call iterate again
    CONVERGENCE = 1  # the step satisfies both conditions
    WARNING_ROUNDING_ERRORS = 2  # "WARNING: ROUNDING ERRORS PREVENT PROGRESS"
    WARNING_XTOL = 3  # "WARNING: XTOL TEST SATISFIED"
    WARNING_STPMAX = 4  # "WARNING: STP = STPMAX"
    WARNING_STPMIN = 5  # "WARNING: STP = STPMIN"
    ERROR_STP_LT_STPMIN = 6  # "ERROR: STP .LT. STPMIN"
    ERROR_STP_GT_STPMAX = 7  # "ERROR: STP .GT. STPMAX"
    ERROR_INITIAL_G = 8  # "ERROR: INITIAL G .GE. ZERO"
    WARNING_MAX_ITER = 9  # scipy's driver: no answer within maxiter evaluations
    WARNING_NOT_FINITE = 10  # scipy's driver: the next step is NaN or infinite


# scipy's task strings, by member (the golden tests compare with them).
SCIPY_TASK = {
    Task.FG: "FG",
    Task.CONVERGENCE: "CONVERGENCE",
    Task.WARNING_ROUNDING_ERRORS: "WARNING: ROUNDING ERRORS PREVENT PROGRESS",
    Task.WARNING_XTOL: "WARNING: XTOL TEST SATISFIED",
    Task.WARNING_STPMAX: "WARNING: STP = STPMAX",
    Task.WARNING_STPMIN: "WARNING: STP = STPMIN",
    Task.ERROR_STP_LT_STPMIN: "ERROR: STP .LT. STPMIN",
    Task.ERROR_STP_GT_STPMAX: "ERROR: STP .GT. STPMAX",
    Task.ERROR_INITIAL_G: "ERROR: INITIAL G .GE. ZERO",
    Task.WARNING_MAX_ITER: "WARNING: dcsrch did not converge within max iterations",
    Task.WARNING_NOT_FINITE: "WARN",
}


class Constants(NamedTuple):
    """The search's constants: ``ftol`` ($c_1$), ``gtol`` ($c_2$), ``xtol``, step bounds."""

    ftol: float
    gtol: float
    xtol: float
    stpmin: float
    stpmax: float


class State(NamedTuple):
    """``dcsrch``'s saved variables (MINPACK-2's ``isave``/``dsave``), scalars.

    ``stx`` is the step with the least value of the (modified) function so far, ``sty``
    the other end of the interval; ``brackt`` says whether a minimiser lies between them.
    """

    brackt: jax.Array
    stage: jax.Array  # 1: the modified function psi is used; 2: phi itself
    ginit: jax.Array
    gtest: jax.Array  # ftol * ginit
    finit: jax.Array
    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    stmin: jax.Array
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array


def start(stp, f, g, k: Constants) -> tuple[State, jax.Array]:
    """``dcsrch`` with ``task = 'START'``: the state and ``Task.FG`` (or an ``ERROR_*``).

    ``f`` and ``g`` are $\\phi(0)$ and $\\phi'(0)$; ``stp`` the first trial step, which the
    caller evaluates next (when the task is ``FG``). The non-negativity of the constants
    is checked by the caller, once, in Python.
    """
    dtype = jnp.result_type(f)
    stp, f, g = (jnp.asarray(v, dtype) for v in (stp, f, g))
    # As in MINPACK-2 each failed test overwrites the task: the last one wins.
    task = jnp.where(stp < k.stpmin, Task.ERROR_STP_LT_STPMIN, Task.FG)
    task = jnp.where(stp > k.stpmax, Task.ERROR_STP_GT_STPMAX, task)
    task = jnp.where(g >= 0, Task.ERROR_INITIAL_G, task)
    width = jnp.asarray(k.stpmax - k.stpmin, dtype)
    zero = jnp.zeros([], dtype)
    state = State(
        brackt=jnp.asarray(False), stage=jnp.asarray(1, jnp.int32), ginit=g,
        gtest=k.ftol * g, finit=f, stx=zero, fx=f, gx=g, sty=zero, fy=f, gy=g,
        stmin=zero, stmax=stp + _XTRAPU * stp, width=width, width1=width / _HALF,
    )  # fmt: skip
    return state, task.astype(jnp.int32)


def iterate(s: State, stp, f, g, k: Constants) -> tuple[State, jax.Array, jax.Array]:
    """One ``dcsrch`` call after an evaluation: ``(state, next stp, task)``.

    ``f``, ``g``: $\\phi$ and $\\phi'$ at ``stp``. On ``CONVERGENCE`` or a warning the step
    returned is ``stp`` itself (the state unchanged); on ``FG`` it is the next trial.
    """
    ftest = s.finit + stp * s.gtest
    stage = jnp.where((s.stage == 1) & (f <= ftest) & (g >= 0), 2, s.stage)
    # The exits, in MINPACK-2's order (a later test overwrites an earlier one).
    task = jnp.where(s.brackt & ((stp <= s.stmin) | (stp >= s.stmax)),
                     Task.WARNING_ROUNDING_ERRORS, Task.FG)  # fmt: skip
    task = jnp.where(s.brackt & (s.stmax - s.stmin <= k.xtol * s.stmax), Task.WARNING_XTOL, task)
    task = jnp.where((stp == k.stpmax) & (f <= ftest) & (g <= s.gtest), Task.WARNING_STPMAX, task)
    task = jnp.where((stp == k.stpmin) & ((f > ftest) | (g >= s.gtest)), Task.WARNING_STPMIN, task)
    task = jnp.where((f <= ftest) & (jnp.abs(g) <= k.gtol * -s.ginit), Task.CONVERGENCE, task)
    task = task.astype(jnp.int32)

    # In stage 1, while the value is not below the sufficient-decrease line but below the
    # best one, dcstep works on psi(t) = phi(t) - ftol t phi'(0) (Moré & Thuente, sec. 3).
    modified = (stage == 1) & (f <= s.fx) & (f > ftest)
    shift_f = lambda v, t: jnp.where(modified, v - t * s.gtest, v)  # noqa: E731
    shift_g = lambda v: jnp.where(modified, v - s.gtest, v)  # noqa: E731
    stx, fx, gx, sty, fy, gy, new_stp, brackt = dcstep(
        s.stx, shift_f(s.fx, s.stx), shift_g(s.gx), s.sty, shift_f(s.fy, s.sty), shift_g(s.gy),
        stp, shift_f(f, stp), shift_g(g), s.brackt, s.stmin, s.stmax,
    )  # fmt: skip
    unshift_f = lambda v, t: jnp.where(modified, v + t * s.gtest, v)  # noqa: E731
    unshift_g = lambda v: jnp.where(modified, v + s.gtest, v)  # noqa: E731
    fx, fy, gx, gy = unshift_f(fx, stx), unshift_f(fy, sty), unshift_g(gx), unshift_g(gy)

    # Bisect when the bracket did not shrink enough over the last two steps.
    spread = jnp.abs(sty - stx)
    new_stp = jnp.where(brackt & (spread >= _P66 * s.width1), stx + _HALF * (sty - stx), new_stp)
    width1 = jnp.where(brackt, s.width, s.width1)
    width = jnp.where(brackt, spread, s.width)
    stmin = jnp.where(brackt, _py_min(stx, sty), new_stp + _XTRAPL * (new_stp - stx))
    stmax = jnp.where(brackt, _py_max(stx, sty), new_stp + _XTRAPU * (new_stp - stx))
    new_stp = jnp.clip(new_stp, k.stpmin, k.stpmax)
    # No progress possible: fall back to the best step so far.
    stuck = brackt & ((new_stp <= stmin) | (new_stp >= stmax) | (stmax - stmin <= k.xtol * stmax))
    new_stp = jnp.where(stuck, stx, new_stp)

    stepped = State(brackt, stage.astype(jnp.int32), s.ginit, s.gtest, s.finit, stx, fx, gx,
                    sty, fy, gy, stmin, stmax, width, width1)  # fmt: skip
    go_on = task == Task.FG
    # On an exit MINPACK-2 returns before touching its saved variables (but the stage).
    out = jax.tree.map(lambda a, b: jnp.where(go_on, a, b), stepped, s)
    return out._replace(stage=stage.astype(jnp.int32)), jnp.where(go_on, new_stp, stp), task


def _py_min(a, b):
    """Python's ``min(a, b)``: ``a`` unless ``b < a`` (differs from ``jnp.minimum`` on NaN)."""
    return jnp.where(b < a, b, a)


def _py_max(a, b):
    return jnp.where(b > a, b, a)


def dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    """MINPACK-2's ``dcstep``: a safeguarded trial step and the updated interval.

    Four cases (Moré & Thuente 1994, sec. 4): (1) a higher value: the minimiser is
    bracketed, take the cubic step, or halfway to the quadratic one when that is closer;
    (2) a lower value, derivatives of opposite sign: bracketed, the cubic or secant step,
    whichever is farther from ``stp``; (3) a lower value, same sign, the derivative
    smaller in size: the cubic step if it goes the right way, else the secant step,
    safeguarded; (4) a lower value, same sign, the derivative not smaller: the cubic
    through ``stp`` and ``sty`` when bracketed, else a bound.

    Returns ``(stx, fx, dx, sty, fy, dy, stp, brackt)``.
    """
    sgnd = jnp.sign(dp) * jnp.sign(dx)
    higher = fp > fx
    opposite = sgnd < 0
    smaller = jnp.abs(dp) < jnp.abs(dx)
    right = stp > stx  # the trial step lies to the right of the best one

    def cubic_terms(f_a, d_a, t_a, clamp=False):
        # theta, gamma of the cubic through (stx or sty, f_a, d_a) and (stp, fp, dp).
        theta = 3.0 * (f_a - fp) / (stp - t_a) + d_a + dp
        s = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(d_a)), jnp.abs(dp))
        radicand = (theta / s) ** 2 - (d_a / s) * (dp / s)
        gamma = s * jnp.sqrt(jnp.maximum(radicand, 0) if clamp else radicand)
        return theta, gamma

    # Case 1.
    theta, gamma = cubic_terms(fx, dx, stx)
    gamma1 = jnp.where(stp < stx, -gamma, gamma)
    r = ((gamma1 - dx) + theta) / (((gamma1 - dx) + gamma1) + dp)
    stpc1 = stx + r * (stp - stx)
    stpq1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    stpf1 = jnp.where(jnp.abs(stpc1 - stx) <= jnp.abs(stpq1 - stx), stpc1,
                      stpc1 + (stpq1 - stpc1) / 2.0)  # fmt: skip
    # Case 2.
    gamma2 = jnp.where(right, -gamma, gamma)
    r = ((gamma2 - dp) + theta) / (((gamma2 - dp) + gamma2) + dx)
    stpc2 = stp + r * (stx - stp)
    secant = stp + (dp / (dp - dx)) * (stx - stp)
    stpf2 = jnp.where(jnp.abs(stpc2 - stp) > jnp.abs(secant - stp), stpc2, secant)
    # Case 3: the cubic may have no real minimiser (the radicand is clamped at 0).
    theta3, gamma3 = cubic_terms(fx, dx, stx, clamp=True)
    gamma3 = jnp.where(right, -gamma3, gamma3)
    r = ((gamma3 - dp) + theta3) / ((gamma3 + (dx - dp)) + gamma3)
    stpc3 = jnp.where((r < 0) & (gamma3 != 0), stp + r * (stx - stp),
                      jnp.where(right, stpmax, stpmin))  # fmt: skip
    closer = jnp.abs(stpc3 - stp) < jnp.abs(secant - stp)
    bracketed3 = jnp.where(closer, stpc3, secant)
    limit = stp + 0.66 * (sty - stp)
    bracketed3 = jnp.where(right, _py_min(limit, bracketed3), _py_max(limit, bracketed3))
    farther = jnp.abs(stpc3 - stp) > jnp.abs(secant - stp)
    free3 = jnp.clip(jnp.where(farther, stpc3, secant), stpmin, stpmax)
    stpf3 = jnp.where(brackt, bracketed3, free3)
    # Case 4.
    theta4, gamma4 = cubic_terms(fy, dy, sty)
    gamma4 = jnp.where(stp > sty, -gamma4, gamma4)
    r = ((gamma4 - dp) + theta4) / (((gamma4 - dp) + gamma4) + dy)
    stpf4 = jnp.where(brackt, stp + r * (sty - stp), jnp.where(right, stpmax, stpmin))

    stpf = jnp.where(higher, stpf1, jnp.where(opposite, stpf2, jnp.where(smaller, stpf3, stpf4)))
    brackt = brackt | higher | (~higher & opposite)

    # The interval: a higher value replaces sty; else stp becomes stx (and the old stx
    # becomes sty when the derivatives have opposite signs).
    to_y = ~higher & opposite
    new_sty = jnp.where(higher, stp, jnp.where(to_y, stx, sty))
    new_fy = jnp.where(higher, fp, jnp.where(to_y, fx, fy))
    new_dy = jnp.where(higher, dp, jnp.where(to_y, dx, dy))
    new_stx = jnp.where(higher, stx, stp)
    new_fx = jnp.where(higher, fx, fp)
    new_dx = jnp.where(higher, dx, dp)
    return new_stx, new_fx, new_dx, new_sty, new_fy, new_dy, stpf, brackt
