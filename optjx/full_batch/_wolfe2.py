r"""scipy's strong-Wolfe search ``scalar_search_wolfe2`` as a pure scalar state machine.

scipy falls back to it when ``dcsrch`` finds no step (``_line_search_wolfe12``). It is
Nocedal & Wright's Algorithms 3.5 (bracketing: the step doubles, up to ``maxiter = 10``
times) and 3.6 (zoom, at most 11 trials), with scipy's interpolation: a cubic through the
two ends and the previously discarded point, else a quadratic, else bisection, each
rejected when it falls within 20% (cubic) or 10% (quadratic) of the bracket's length
from an end. No evaluation happens here: the driver in
``optjx.full_batch.more_thuente`` evaluates the trial step and passes $\phi$ and
$\phi'$ to ``bracket_step`` or ``zoom_step``. Facts from scipy 1.17.1's
``scipy/optimize/_linesearch.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

MAX_ITER = 10  # scipy's maxiter of both the bracketing and the zoom loop
_CUBIC_CHECK, _QUADRATIC_CHECK = 0.2, 0.1  # scipy's delta1, delta2


class Bracket(NamedTuple):
    """The bracketing loop's variables: ``alpha0``, ``phi(alpha0)``, ``phi'(alpha0)``, ``i``."""

    t0: jax.Array
    f0: jax.Array
    d0: jax.Array
    i: jax.Array  # int32: iterations done


class Zoom(NamedTuple):
    """The zoom's bracket ``[lo, hi]`` (``lo`` the lower value) and the discarded point."""

    lo: jax.Array
    hi: jax.Array
    f_lo: jax.Array
    f_hi: jax.Array
    d_lo: jax.Array
    rec: jax.Array  # the point last dropped from the bracket (for the cubic)
    f_rec: jax.Array
    i: jax.Array  # int32: trials done


class Outcome(NamedTuple):
    """What one step of the machine decided (scalars)."""

    done: jax.Array  # bool: stop; ``success`` says whether with a step
    success: jax.Array  # bool: the evaluated trial is the answer
    to_zoom: jax.Array  # bool (bracketing only): the zoom starts with ``zoom``
    derivative_used: jax.Array  # bool: scipy called derphi here (its gradient count)


def _finite(*xs):
    return jnp.all(jnp.stack([jnp.isfinite(x) for x in xs]))


def cubic_min(a, fa, fpa, b, fb, c, fc):
    """The minimiser of the cubic through ``(a, fa)`` with slope ``fpa``, ``(b, fb)`` and
    ``(c, fc)``, and whether it exists: ``(x, ok)``.

    ``ok`` is ``False`` where scipy's ``_cubicmin`` returns ``None``: a division by zero,
    an overflow, a negative radicand or a non-finite result.
    """
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    big_a = (dc**2 * rb + (-(db**2)) * rc) / denom
    big_b = ((-(dc**3)) * rb + db**3 * rc) / denom
    radical = big_b * big_b - 3 * big_a * fpa
    x = a + (-big_b + jnp.sqrt(radical)) / (3 * big_a)
    ok = (denom != 0) & (big_a != 0) & (radical >= 0) & _finite(big_a, big_b, radical, x)
    return x, ok


def quad_min(a, fa, fpa, b, fb):
    """The minimiser of the quadratic through ``(a, fa)`` with slope ``fpa`` and
    ``(b, fb)``, and whether it exists (scipy's ``_quadmin``)."""
    db = b - a
    big_b = (fb - fa - fpa * db) / (db * db)
    x = a - fpa / (2.0 * big_b)
    ok = (db * db != 0) & (big_b != 0) & _finite(big_b, x)
    return x, ok


def zoom_trial(z: Zoom):
    """The zoom's next trial step (scipy's ``_zoom`` loop head)."""
    span = z.hi - z.lo
    a = jnp.where(span < 0, z.hi, z.lo)
    b = jnp.where(span < 0, z.lo, z.hi)
    cubic, cubic_ok = cubic_min(z.lo, z.f_lo, z.d_lo, z.hi, z.f_hi, z.rec, z.f_rec)
    check = _CUBIC_CHECK * span
    cubic_ok = (z.i > 0) & cubic_ok & ~(cubic > b - check) & ~(cubic < a + check)
    quad, quad_ok = quad_min(z.lo, z.f_lo, z.d_lo, z.hi, z.f_hi)
    check = _QUADRATIC_CHECK * span
    quad_ok = quad_ok & ~(quad > b - check) & ~(quad < a + check)
    return jnp.where(cubic_ok, cubic, jnp.where(quad_ok, quad, z.lo + 0.5 * span))


def zoom_start(lo, hi, f_lo, f_hi, d_lo, f_zero) -> Zoom:
    zero = jnp.zeros_like(f_zero)
    return Zoom(lo, hi, f_lo, f_hi, d_lo, zero, f_zero, jnp.zeros([], jnp.int32))


def zoom_step(z: Zoom, t, f, d, f_zero, d_zero, c1, c2) -> tuple[Zoom, Outcome]:
    """The zoom after evaluating its trial ``t``: ``phi(t) = f``, ``phi'(t) = d``."""
    higher = (f > f_zero + c1 * t * d_zero) | (f >= z.f_lo)
    wolfe = ~higher & (jnp.abs(d) <= -c2 * d_zero)
    flip = d * (z.hi - z.lo) >= 0  # the slope at t points away from hi: lo becomes hi
    keep_hi = ~higher & ~flip
    new = Zoom(
        lo=jnp.where(higher, z.lo, t),
        hi=jnp.where(higher, t, jnp.where(flip, z.lo, z.hi)),
        f_lo=jnp.where(higher, z.f_lo, f),
        f_hi=jnp.where(higher, f, jnp.where(flip, z.f_lo, z.f_hi)),
        d_lo=jnp.where(higher, z.d_lo, d),
        rec=jnp.where(keep_hi, z.lo, z.hi),
        f_rec=jnp.where(keep_hi, z.f_lo, z.f_hi),
        i=z.i + 1,
    )
    failed = ~wolfe & (new.i > MAX_ITER)
    false = jnp.asarray(False)
    return new, Outcome(wolfe | failed, wolfe, false, ~higher)


def bracket_step(b: Bracket, t, f, d, f_zero, d_zero, c1, c2, max_step):
    """The bracketing loop after evaluating ``alpha1 = t``: ``(bracket, zoom, outcome, next t)``.

    After ``MAX_ITER`` doublings scipy returns the last trial without testing it, as a
    step with no derivative; its BFGS then evaluates the gradient there (counted here).
    """
    exhausted = b.i >= MAX_ITER
    impossible = (t == 0) | (b.t0 > max_step)
    armijo_fails = (f > f_zero + c1 * t * d_zero) | ((f >= b.f0) & (b.i > 0))
    wolfe = jnp.abs(d) <= -c2 * d_zero
    uphill = d >= 0
    zoom_up = ~armijo_fails & ~wolfe & uphill  # the minimiser lies behind t
    to_zoom = ~exhausted & ~impossible & (armijo_fails | zoom_up)
    zoom = zoom_start(
        jnp.where(zoom_up, t, b.t0), jnp.where(zoom_up, b.t0, t),
        jnp.where(zoom_up, f, b.f0), jnp.where(zoom_up, b.f0, f),
        jnp.where(zoom_up, d, b.d0), f_zero,
    )  # fmt: skip
    success = exhausted | (~impossible & ~armijo_fails & wolfe)
    done = exhausted | impossible | success
    derivative = exhausted | (~impossible & ~armijo_fails)
    advanced = Bracket(t, f, d, b.i + 1)
    next_t = jnp.minimum(2 * t, max_step)
    return advanced, zoom, Outcome(done, success, to_zoom, derivative), next_t
