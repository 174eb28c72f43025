r"""The Moré-Thuente line search (MINPACK-2 ``dcsrch``) with scipy's strong-Wolfe fallback."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch import _common as c
from optjx.full_batch import _dcsrch as dcsrch
from optjx.full_batch import _wolfe2 as wolfe2
from optjx.full_batch._wolfe import along

Task = dcsrch.Task
_DCSRCH, _BRACKET, _ZOOM, _DONE = 0, 1, 2, 3  # the phases of the one loop


class MoreThuenteResult(NamedTuple):
    """What ``more_thuente`` returns (scalars in the dtype of ``value``).

    The first five fields are ``LineSearchResult``'s. When no step is found
    (``success`` false) or an evaluation is not finite, ``step_size`` is 0 and ``value``,
    ``grad`` are those at $t = 0$.
    """

    value: jax.Array  # f(x + t d)
    grad: Any  # the gradient at x + t d, a tree like x
    step_size: jax.Array  # t
    evaluations: jax.Array  # int32: calls of value_and_grad_fn (scipy's function count)
    non_finite: jax.Array  # bool: no trial had a finite value and gradient (none found)
    gradient_evaluations: jax.Array  # int32: scipy's gradient count (see more_thuente)
    success: jax.Array  # bool: a step was found (by dcsrch or by the fallback)
    task: jax.Array  # int32: dcsrch's last task (a dcsrch Task): CONVERGENCE if it found the step
    fallback: jax.Array  # bool: dcsrch failed and the strong-Wolfe zoom ran


class _Search(NamedTuple):
    phase: Any
    trial: Any  # the step evaluated next
    evals: Any
    grad_evals: Any
    dc: Any  # dcsrch's State
    dc_evals: Any
    task: Any
    bracket: Any
    zoom: Any
    success: Any
    bad: Any
    fallback: Any
    t: Any  # the last evaluation: step, value, gradient
    f: Any
    g: Any
    ceiling: Any  # the least step whose trial was not finite (+inf: none yet)
    any_finite: Any  # bool: some trial had a finite value and gradient


def first_step(value, prev_value, slope):
    r"""scipy's first trial step from the previous value (``scalar_search_wolfe1``):

    $$
    t_0 = \min\Bigl(1, \frac{2.02\,(f_k - f_{k-1})}{\phi'(0)}\Bigr),
    \quad t_0 = 1 \text{ when that is negative (or NaN) or } \phi'(0) = 0
    $$
    """
    guess = 1.01 * 2 * (value - prev_value) / slope
    guess = jnp.where(guess < 1.0, guess, 1.0)  # Python's min(1.0, guess): 1 for NaN
    return jnp.where((slope != 0) & ~(guess < 0), guess, 1.0).astype(jnp.result_type(value))


def _check(c1, c2, xtol, min_step, max_step, max_iter):
    for name, v in (("c1", c1), ("c2", c2), ("xtol", xtol), ("min_step", min_step),
                    ("max_step", max_step)):  # fmt: skip
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"more_thuente: {name} must be a Python number, got {v!r}")
    if not 0 < c1 < c2 < 1:
        raise ValueError(f"more_thuente: c1 and c2 must satisfy 0 < c1 < c2 < 1, got {c1}, {c2}")
    if not xtol >= 0:
        raise ValueError(f"more_thuente: xtol must be >= 0, got {xtol}")
    if not (0 <= min_step <= max_step) or math.isnan(max_step):
        raise ValueError(
            f"more_thuente: need 0 <= min_step <= max_step, got {min_step}, {max_step}"
        )
    c.check_int("max_iter", max_iter, 1)


def more_thuente(
    value_and_grad_fn: Callable[[Any], tuple[jax.Array, Any]],
    params: Any,
    direction: Any,
    step_size: jax.typing.ArrayLike,
    value: jax.typing.ArrayLike,
    grad: Any,
    slope: jax.typing.ArrayLike,
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    xtol: float = 1e-14,
    min_step: float = 1e-8,
    max_step: float = 50.0,
    max_iter: int = 100,
    fallback: bool = True,
) -> MoreThuenteResult:
    r"""A step $t$ along ``direction`` satisfying the strong Wolfe conditions, as scipy finds it.

    For $\phi(t) = f(x + t d)$ and $0 < c_1 < c_2 < 1$ it looks for

    $$
    \phi(t) \le \phi(0) + c_1 t \phi'(0) \quad\text{(sufficient decrease)}, \qquad
    |\phi'(t)| \le c_2 |\phi'(0)| \quad\text{(curvature)}
    $$

    with MINPACK-2's ``dcsrch`` (Moré & Thuente 1994), the search scipy's BFGS, CG and
    ``line_search`` use (``line_search_wolfe1``). It keeps an interval $[t_x, t_y]$ that
    brackets a step satisfying both conditions once $\psi(t) = \phi(t) - \phi(0) -
    c_1 t \phi'(0)$ has a minimiser in it; each trial comes from ``dcstep``'s four cases,
    with $t_x$ the best step so far and $t$ the trial:

    1. $\phi(t) > \phi(t_x)$: bracketed; the cubic minimiser $t_c$ through both points
       (values and slopes), or the average of $t_c$ and the quadratic minimiser $t_q$
       (values at both, slope at $t_x$) when $t_q$ is closer to $t_x$;
    2. lower, $\phi'(t)\phi'(t_x) < 0$: bracketed; the cubic or the secant step
       $t_s$ (slopes at both), whichever is farther from $t$;
    3. lower, same sign, $|\phi'(t)| < |\phi'(t_x)|$: the cubic step if the cubic tends
       to infinity in the direction of the step, else the secant, the one nearer $t$
       (bracketed, at most $t + 0.66 (t_y - t)$) or farther (extrapolating, within the
       step bounds);
    4. lower, same sign, not smaller: the cubic through $t$ and $t_y$ if bracketed, else
       a step bound.

    While no minimiser is bracketed, trials lie in $[t + 1.1 (t - t_x), t + 4 (t - t_x)]$;
    once bracketed, a step bisects when the interval did not shrink by 0.66 over two
    steps. While $\phi(t)$ is above the sufficient-decrease line, the rules use $\psi$
    instead of $\phi$ (its "stage 1"). When ``dcsrch`` ends without a step (a warning,
    an error, ``max_iter`` evaluations, a non-finite trial) and ``fallback`` is on, scipy's
    ``_line_search_wolfe12`` runs its strong-Wolfe zoom ``scalar_search_wolfe2``
    (Nocedal & Wright, Algorithms 3.5 and 3.6; doubling from ``min(step_size,
    max_step)``), and so does this function. Both phases run in one ``while_loop`` with
    one evaluation per pass, so ``value_and_grad_fn`` appears once in the compiled program.

    References:
      Moré & Thuente (1994), "Line search algorithms with guaranteed sufficient decrease",
      ACM TOMS 20(3); MINPACK-2 ``dcsrch``/``dcstep``; Nocedal & Wright (2006), Algorithms
      3.5, 3.6; scipy 1.17.1 ``scipy/optimize/_dcsrch.py`` and ``_linesearch.py``.

    Args:
      value_and_grad_fn: ``x -> (f(x), grad f(x))`` on trees like ``params``; ``f`` a scalar.
      params: the point $x$ (a tree).
      direction: the search direction $d$ (a tree like ``params``), a descent direction.
      step_size: the first trial step $t_0 > 0$ (scipy's rule is ``first_step``).
      value: $f(x)$.
      grad: $\nabla f(x)$, a tree like ``params``.
      slope: $\phi'(0) = \nabla f(x)^\top d < 0$.
      c1: sufficient-decrease constant (``dcsrch``'s ``ftol``), default ``1e-4``.
      c2: curvature constant (``gtol``), default ``0.9``; ``0 < c1 < c2 < 1``.
      xtol: relative width of the interval at which ``dcsrch`` gives up, default ``1e-14``.
      min_step: ``stpmin``, scipy's ``amin``, default ``1e-8`` (its BFGS passes ``1e-100``).
      max_step: ``stpmax``, scipy's ``amax``, default ``50`` (its BFGS passes ``1e100``);
        also the fallback's largest step.
      max_iter: ``dcsrch``'s evaluation budget, default 100 (scipy's ``maxiter``). The
        fallback adds at most 11 bracketing and 11 zoom evaluations.
      fallback: run the strong-Wolfe zoom when ``dcsrch`` fails, default ``True``
        (scipy's ``_line_search_wolfe12``); ``False`` is ``line_search_wolfe1``.

    Returns:
      A ``MoreThuenteResult``. ``evaluations`` is scipy's function count;
      ``gradient_evaluations`` its gradient count, which is lower when the fallback
      evaluates the value alone (here every evaluation computes both), and includes the
      gradient scipy's BFGS computes at a step its fallback returns untested after 10
      doublings. A trial whose value or gradient is a NaN or an Inf is a failed trial
      (below); ``non_finite=True`` when no trial was finite (then ``success`` is false).

    Raises:
      ValueError: ``c1``, ``c2``, ``xtol``, ``min_step``, ``max_step`` or ``max_iter``
        out of range. TypeError: one of them not a Python number.

    Differences from scipy:
      On pytrees, jittable, ``vmap``-able. Non-finite regions (a loss defined only for
      positive variances, ``log1p(-x)``): a failed (non-finite) trial leaves ``dcsrch``'s
      interval as it was and the next trial is halfway from ``dcsrch``'s best step $t_x$
      to the failed one; later trials stay below the least failed step the same way. In
      the fallback a failed trial counts as $+\infty$: the zoom brackets it with the last
      finite point and bisects (no cubic through an infinite value). scipy's search goes
      on with the NaN (and usually fails). Where every trial is finite the steps are
      scipy's. scipy's function cache skips re-evaluating the point it
      evaluated last; the fallback's first trial can coincide with ``dcsrch``'s last one
      only in degenerate cases, where the counts here are one higher.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from optjx.full_batch.more_thuente import more_thuente
      >>> f = lambda x: jnp.sum((x - 2.0) ** 2)
      >>> x = jnp.zeros(2)
      >>> value, g = jax.value_and_grad(f)(x)
      >>> res = more_thuente(jax.value_and_grad(f), x, -g, 1.0, value, g, -g @ g)
      >>> round(float(res.step_size), 5), int(res.evaluations), bool(res.success)
      (0.49995, 2, True)
    """
    _check(c1, c2, xtol, min_step, max_step, max_iter)
    evaluate = along(value_and_grad_fn, params, direction, direction, jnp.asarray(value).dtype)
    return search(evaluate, value, grad, slope, step_size, c1=c1, c2=c2, xtol=xtol,
                  min_step=min_step, max_step=max_step, max_iter=max_iter,
                  fallback=fallback)  # fmt: skip


def search(evaluate, value, grad, slope, step_size, *, c1=1e-4, c2=0.9, xtol=1e-14,
           min_step=1e-8, max_step=50.0, max_iter=100, fallback=True,
           fallback_max_step=None) -> MoreThuenteResult:  # fmt: skip
    """``more_thuente`` given ``evaluate(t) -> (f, g, g . d, not finite)``.

    The methods call it directly with a packed ``evaluate`` (``grad`` is then packed too).
    The constants are not checked here. ``fallback_max_step``: the fallback's largest
    step, default ``max_step``; ``float("inf")`` for none (scipy's Newton-CG calls its
    fallback without ``amax``).
    """
    dtype = jnp.asarray(value).dtype
    f0 = jnp.asarray(value, dtype)
    d0 = jnp.asarray(slope, dtype)
    t0 = jnp.asarray(step_size, dtype)
    # scipy's BFGS bound 1e100 overflows float32: the largest finite step instead.
    max_step = min(max_step, float(jnp.finfo(dtype).max))
    fallback_max = max_step if fallback_max_step is None else min(fallback_max_step,
                                                                  float(jnp.finfo(dtype).max))  # fmt: skip
    k = dcsrch.Constants(c1, c2, xtol, min_step, max_step)
    state, task = dcsrch.start(t0, f0, d0, k)
    fallback_t = jnp.minimum(t0, fallback_max)  # scipy's scalar_search_wolfe2: min(alpha1, amax)
    i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    false = jnp.asarray(False)
    zoom = wolfe2.zoom_start(f0, f0, f0, f0, d0, f0)
    started = task == Task.FG
    phase = jnp.where(started, _DCSRCH, _BRACKET if fallback else _DONE)
    s = _Search(
        phase=i32(phase), trial=jnp.where(started, t0, fallback_t), evals=i32(0),
        grad_evals=i32(0), dc=state, dc_evals=i32(0), task=task, bracket=wolfe2.Bracket(
            jnp.zeros([], dtype), f0, d0, i32(0)),
        zoom=zoom, success=false, bad=false, fallback=~started & fallback, t=t0, f=f0, g=grad,
        ceiling=jnp.asarray(jnp.inf, dtype), any_finite=false,
    )  # fmt: skip

    def body(s: _Search) -> _Search:
        t = s.trial
        f, g, d, bad = evaluate(t)
        in_dc, in_bracket = s.phase == _DCSRCH, s.phase == _BRACKET
        # A failed (non-finite) trial: +inf for the strong-Wolfe loops (higher than any
        # finite point, so they zoom toward the last finite one and bisect, having no
        # cubic); dcsrch never sees it (below). Every trial finite: nothing changes.
        f_w = jnp.where(bad, jnp.inf, f)
        d_w = jnp.where(bad, 0, d)
        ceiling = jnp.where(bad, jnp.minimum(s.ceiling, t), s.ceiling)

        # dcsrch: scipy's driver stops after max_iter evaluations without a last call.
        dc_evals = s.dc_evals + in_dc.astype(jnp.int32)
        dc, dc_t, dc_task = dcsrch.iterate(s.dc, t, f, d, k)
        # Failed trial: dcsrch's state stays, the next trial is halfway back to its best
        # step; later trials stay below the failed step the same way.
        dc = c.select(bad, s.dc, dc)
        dc_t = jnp.where(bad, s.dc.stx + 0.5 * (t - s.dc.stx), dc_t)
        dc_t = jnp.where(~bad & (dc_t >= ceiling), dc.stx + 0.5 * (ceiling - dc.stx), dc_t)
        dc_task = jnp.where(bad, Task.FG, dc_task)
        dc_task = jnp.where((dc_task == Task.FG) & ~jnp.isfinite(dc_t), Task.WARNING_NOT_FINITE,
                            dc_task)  # fmt: skip
        dc_task = jnp.where(dc_evals >= max_iter, Task.WARNING_MAX_ITER, dc_task)
        dc_goes_on = dc_task == Task.FG
        dc_success = dc_task == Task.CONVERGENCE
        dc_fails = ~dc_goes_on & ~dc_success

        # The fallback's two loops.
        bracket, zoom_new, b_out, b_next = wolfe2.bracket_step(
            s.bracket, t, f_w, d_w, f0, d0, c1, c2, fallback_max
        )
        zoom_in, z_out = wolfe2.zoom_step(s.zoom, t, f_w, d_w, f0, d0, c1, c2)
        zoom = c.select(in_bracket, zoom_new, zoom_in)

        to_bracket = in_dc & dc_fails & fallback
        phase = jnp.where(in_dc, jnp.where(dc_goes_on, _DCSRCH, jnp.where(to_bracket, _BRACKET, _DONE)),
                          jnp.where(in_bracket, jnp.where(b_out.done, _DONE, jnp.where(b_out.to_zoom, _ZOOM, _BRACKET)),
                                    jnp.where(z_out.done, _DONE, _ZOOM)))  # fmt: skip
        next_t = jnp.where(in_dc, jnp.where(dc_goes_on, dc_t, fallback_t),
                           jnp.where(in_bracket & ~b_out.to_zoom, b_next, wolfe2.zoom_trial(zoom)))  # fmt: skip
        success = jnp.where(in_dc, dc_success, jnp.where(in_bracket, b_out.success, z_out.success))
        derivative = jnp.where(in_dc, True, jnp.where(in_bracket, b_out.derivative_used,
                                                      z_out.derivative_used))  # fmt: skip
        return _Search(
            phase=phase.astype(jnp.int32), trial=next_t, evals=s.evals + 1,
            grad_evals=s.grad_evals + derivative.astype(jnp.int32), dc=c.select(in_dc, dc, s.dc),
            dc_evals=dc_evals, task=jnp.where(in_dc, dc_task, s.task).astype(jnp.int32),
            bracket=c.select(in_bracket, bracket, s.bracket), zoom=zoom,
            success=success & ~bad, bad=bad, fallback=s.fallback | to_bracket, t=t, f=f, g=g,
            ceiling=ceiling, any_finite=s.any_finite | ~bad,
        )  # fmt: skip

    s = lax.while_loop(lambda s: s.phase != _DONE, body, s)
    found = s.success & ~s.bad
    return MoreThuenteResult(
        value=jnp.where(found, s.f, f0),
        grad=c.select(found, s.g, grad),
        step_size=jnp.where(found, s.t, 0).astype(dtype),
        evaluations=s.evals,
        non_finite=~found & ~s.any_finite,
        gradient_evaluations=s.grad_evals.astype(jnp.int32),
        success=found,
        task=s.task,
        fallback=s.fallback,
    )
