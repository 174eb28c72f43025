r"""The strong-Wolfe line search shared by L-BFGS and nonlinear conjugate gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch import _common as c


class LineSearchResult(NamedTuple):
    """What ``strong_wolfe`` returns (scalars in the dtype of ``value``)."""

    value: jax.Array  # f(x + t d)
    grad: Any  # the gradient at x + t d, a tree like x
    step_size: jax.Array  # t
    evaluations: jax.Array  # int32: calls of value_and_grad_fn made
    non_finite: jax.Array  # bool: some evaluation gave a NaN or an Inf; stopped there


def cubic_minimizer(x1, f1, g1, x2, f2, g2, low=None, high=None):
    """Minimiser of the cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)`` in ``[low, high]``.

    Nocedal & Wright (2006), eq. (3.59). When the cubic has no real critical point the
    midpoint of the bounds is returned; bounds default to the interval between the points.
    """
    if low is None:
        low = jnp.where(x1 <= x2, x1, x2)
        high = jnp.where(x1 <= x2, x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    real = d2_square >= 0  # False for NaN as well: then bisect
    d2 = jnp.sqrt(jnp.where(real, d2_square, 0))
    # Written from the side of the larger point, which keeps the ratio well conditioned.
    from_x2 = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    from_x1 = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    t = jnp.where(x1 <= x2, from_x2, from_x1)
    # Clamp as Python's min(max(t, low), high): a NaN t stays NaN, as in torch.
    t = jnp.where(low > t, low, t)
    t = jnp.where(high < t, high, t)
    return jnp.where(real, t, (low + high) / 2)


_INIT, _BRACKET, _ZOOM = 0, 1, 2  # the phases of the one loop


class _Search(NamedTuple):
    """The line search's loop state. Bracketing keeps ``(t_prev, t)`` in slots 0 and 1
    (``g0`` indexes the gradient at ``t_prev``, ``g1`` at ``t``); the zoom keeps the
    bracket. The gradients themselves sit in ``grads``, a ring of three rows (per leaf):
    ``g0``/``g1`` are row numbers, ``-1`` for the gradient at ``t = 0`` (the argument),
    so moving a gradient between slots is a scalar assignment, not a vector select."""

    t: Any  # (2,)
    f: Any  # (2,)
    gtd: Any  # (2,)
    g0: Any  # int32: row of the gradient at t[0], -1 for the given grad
    g1: Any  # int32: row of the gradient at t[1]
    low0: Any  # zoom: the lower end is t[0]
    done: Any
    insufficient: Any
    ls_iter: Any
    bad: Any
    phase: Any  # _INIT (first trial), _BRACKET or _ZOOM
    grads: Any  # a tree like grad, each leaf (3, *shape): the evaluated gradients


def strong_wolfe(
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
    tolerance_change: float = 1e-9,
    max_ls: int | jax.Array = 25,
    respect_max_eval: bool = False,
) -> LineSearchResult:
    r"""A step $t$ along ``direction`` satisfying the strong Wolfe conditions.

    Finds $t > 0$ with, for $\phi(t) = f(x + t d)$ and $0 < c_1 < c_2 < 1$,

    $$
    \phi(t) \le \phi(0) + c_1 t \phi'(0) \quad\text{(sufficient decrease)}, \qquad
    |\phi'(t)| \le -c_2 \phi'(0) \quad\text{(curvature)}.
    $$

    Bracketing, then zoom, with trial points from the cubic through the two newest points
    (eq. 3.59). The bracketing phase extrapolates into $[t + 0.01 (t - t_{prev}), 10 t]$;
    in the zoom, a trial point within a tenth of the bracket's length from an end is moved
    to that distance when the previous trial was also that close. This is the schedule of
    ``torch.optim.lbfgs._strong_wolfe`` (from minFunc's ``lswolfe``), reproduced test for
    test, so that ``optjx.lbfgs`` follows ``torch.optim.LBFGS``. Both phases run in one
    ``while_loop`` with one evaluation per pass, so ``value_and_grad_fn`` appears once in
    the compiled program.

    References:
      Nocedal & Wright (2006), "Numerical Optimization", Algorithms 3.5 (bracketing) and
      3.6 (zoom), eq. (3.59); Moré & Thuente (1994); Schmidt, minFunc ``lswolfe``;
      ``torch.optim.lbfgs._strong_wolfe`` (torch 2.13).

    Args:
      value_and_grad_fn: ``x -> (f(x), grad f(x))`` on trees like ``params``; ``f`` a scalar.
      params: the point $x$ (a tree).
      direction: the search direction $d$ (a tree like ``params``), a descent direction.
      step_size: the first trial step $t_0 > 0$.
      value: $f(x)$.
      grad: $\nabla f(x)$, a tree like ``params``.
      slope: $\phi'(0) = \nabla f(x)^\top d < 0$.
      c1: sufficient-decrease constant, default ``1e-4``.
      c2: curvature constant, default ``0.9`` (quasi-Newton); ``0.1`` suits conjugate
        gradients (Nocedal & Wright, sec. 5.2).
      tolerance_change: stop the zoom when the bracket's length times $\max|d|$ falls
        below this (default ``1e-9``).
      max_ls: the iteration budget (an int, traced allowed). As in torch, the first trial
        is evaluated before the budget is checked, so up to ``max_ls + 1`` evaluations are
        made: ``torch.optim.LBFGS`` passes ``max_eval - evaluations so far`` and so can
        exceed ``max_eval`` by one (pytorch/pytorch#91581).
      respect_max_eval: count the first trial against ``max_ls``: at most
        ``max(1, max_ls)`` evaluations. Default ``False``, torch's count.

    Returns:
      A ``LineSearchResult``. When the budget runs out during bracketing, the better
      of $t = 0$ and the last trial is returned ($t = 0$ means no progress), as torch
      does. An evaluation that gives a NaN or an Inf stops the search with
      ``non_finite=True``; the other fields are then meaningless.

    Differences from PyTorch and optax:
      torch's ``_strong_wolfe`` works on one flat tensor; this one on any tree (optjx's
      methods pass one flat vector per dtype) and stops at a NaN or Inf.
      ``optax.scale_by_zoom_linesearch`` is a different zoom (Hager-Zhang style
      approximate Wolfe conditions): other steps.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from optjx.full_batch.line_search import strong_wolfe
      >>> f = lambda x: jnp.sum((x - 2.0) ** 2)
      >>> x = jnp.zeros(2)
      >>> value, g = jax.value_and_grad(f)(x)
      >>> res = strong_wolfe(jax.value_and_grad(f), x, -g, 1.0, value, g, -g @ g)
      >>> float(res.step_size), int(res.evaluations)
      (0.5, 2)
    """
    dtype = jnp.asarray(value).dtype

    def evaluate(t):
        f_new, g_new = value_and_grad_fn(c.axpy(t, direction, params))
        return checked(jnp.asarray(f_new).astype(dtype), g_new, direction, dtype)

    return search(evaluate, value, grad, slope, step_size, c.max_abs(direction, dtype),
                  c1=c1, c2=c2, tolerance_change=tolerance_change, max_ls=max_ls,
                  respect_max_eval=respect_max_eval)  # fmt: skip


def checked(value, grad, direction, dtype):
    """``(value, grad, grad . direction, not finite)``: what ``search``'s ``evaluate`` returns."""
    bad = ~(jnp.isfinite(value) & c.all_finite(grad))
    return value, grad, c.dot(grad, direction, dtype), bad


def search(evaluate, value, grad, slope, step_size, d_norm, *, c1=1e-4, c2=0.9,
           tolerance_change=1e-9, max_ls=25, respect_max_eval=False) -> LineSearchResult:  # fmt: skip
    """``strong_wolfe`` given ``evaluate(t) -> (f, g, g . d, not finite)`` and ``max|d|``.

    The methods call it directly: their ``evaluate`` builds the trial point on the params
    tree and returns the packed gradient (``grad`` is then packed too).
    """
    dtype = jnp.asarray(value).dtype
    f = jnp.asarray(value, dtype)
    gtd = jnp.asarray(slope, dtype)
    t = jnp.asarray(step_size, dtype)
    limit = jnp.asarray(max_ls, jnp.int32) - (1 if respect_max_eval else 0)

    def armijo_fails(s: _Search):  # bracketing: t_prev, t in slots 0, 1
        return (s.f[1] > f + c1 * s.t[1] * gtd) | ((s.ls_iter > 1) & (s.f[1] >= s.f[0]))

    def curvature_holds(gtd_new):
        return jnp.abs(gtd_new) <= -c2 * gtd

    def bracketing_goes_on(s: _Search):
        stop = armijo_fails(s) | curvature_holds(s.gtd[1]) | (s.gtd[1] >= 0)
        return (s.ls_iter < limit) & ~stop & ~s.bad

    def to_zoom(s: _Search) -> _Search:
        # The bracket torch leaves: [0, t] when the budget ran out (checked first: the
        # last trial is not tested), [t, t] when t satisfies both conditions, else
        # [t_prev, t].
        exhausted = s.ls_iter >= limit
        done = ~exhausted & ~armijo_fails(s) & curvature_holds(s.gtd[1])
        first = jnp.where(exhausted, 0, jnp.where(done, 1, 2))  # which point is t[0]

        def pick(at_zero, at_t, at_prev):
            return jnp.where(first == 0, at_zero, jnp.where(first == 1, at_t, at_prev))

        f0 = pick(f, s.f[1], s.f[0])
        return _Search(
            t=jnp.stack([pick(zero, s.t[1], s.t[0]), s.t[1]]),
            f=jnp.stack([f0, s.f[1]]),
            gtd=jnp.stack([pick(gtd, s.gtd[1], s.gtd[0]), s.gtd[1]]),
            g0=pick(-1, s.g1, s.g0).astype(jnp.int32),
            g1=s.g1, low0=f0 <= s.f[1], done=done, insufficient=jnp.asarray(False),
            ls_iter=s.ls_iter, bad=s.bad, phase=jnp.asarray(_ZOOM, jnp.int32), grads=s.grads,
        )  # fmt: skip

    def zoom_goes_on(z: _Search):
        tiny = jnp.abs(z.t[1] - z.t[0]) * d_norm < tolerance_change
        return ~z.done & (z.ls_iter < limit) & ~tiny & ~z.bad

    def zoom_trial(z: _Search):
        t = cubic_minimizer(z.t[0], z.f[0], z.gtd[0], z.t[1], z.f[1], z.gtd[1])
        top, bottom = jnp.max(z.t), jnp.min(z.t)
        eps = 0.1 * (top - bottom)
        # Safeguard: a trial next to an end twice in a row (or outside) moves inwards.
        near_end = jnp.minimum(top - t, t - bottom) < eps
        at_end = z.insufficient | (t >= top) | (t <= bottom)
        moved = jnp.where(jnp.abs(t - top) < jnp.abs(t - bottom), top - eps, bottom + eps)
        return jnp.where(near_end & at_end, moved, t), near_end & ~at_end

    def zoomed(z: _Search, t, insufficient, f_new, row, gtd_new, bad, grads) -> _Search:
        f_low = jnp.where(z.low0, z.f[0], z.f[1])
        t_low, t_high = jnp.where(z.low0, z.t[0], z.t[1]), jnp.where(z.low0, z.t[1], z.t[0])
        higher = (f_new > f + c1 * t * gtd) | (f_new >= f_low)
        wolfe = curvature_holds(gtd_new)
        # Not higher: t becomes the low end; the old low becomes the high end when the
        # slope at t points away from the old high end (N&W Algorithm 3.6).
        flip = ~higher & ~wolfe & (gtd_new * (t_high - t_low) >= 0)
        new_at = [(higher & ~z.low0) | (~higher & z.low0), (higher & z.low0) | (~higher & ~z.low0)]
        copy_at = [~higher & ~z.low0 & flip, ~higher & z.low0 & flip]
        old_low = (t_low, f_low, jnp.where(z.low0, z.gtd[0], z.gtd[1]))
        t2: list[Any] = []
        f2: list[Any] = []
        gtd2: list[Any] = []
        for i in range(2):
            for out, new, low, old in zip((t2, f2, gtd2), (t, f_new, gtd_new), old_low,
                                          (z.t[i], z.f[i], z.gtd[i]), strict=True):  # fmt: skip
                out.append(jnp.where(new_at[i], new, jnp.where(copy_at[i], low, old)))
        g_low = jnp.where(z.low0, z.g0, z.g1)
        g0 = jnp.where(new_at[0], row, jnp.where(copy_at[0], g_low, z.g0))
        g1 = jnp.where(new_at[1], row, jnp.where(copy_at[1], g_low, z.g1))
        low0 = jnp.where(higher, f2[0] <= f2[1], z.low0)
        return _Search(jnp.stack(t2), jnp.stack(f2), jnp.stack(gtd2), g0, g1, low0,
                       ~higher & wolfe, insufficient, z.ls_iter + 1, bad, z.phase,
                       grads)  # fmt: skip

    def goes_on(z: _Search):
        return (z.phase != _ZOOM) | zoom_goes_on(z)

    def body(z: _Search) -> _Search:
        # One evaluation per pass, whatever the phase: value_and_grad_fn (the user's loss
        # and its gradient) appears once in the compiled program, not three times.
        in_zoom, init = z.phase == _ZOOM, z.phase == _INIT
        t_ext = cubic_minimizer(z.t[0], z.f[0], z.gtd[0], z.t[1], z.f[1], z.gtd[1],
                                z.t[1] + 0.01 * (z.t[1] - z.t[0]), z.t[1] * 10)  # fmt: skip
        t_zoom, insufficient = zoom_trial(z)
        trial = jnp.where(init, t, jnp.where(in_zoom, t_zoom, t_ext))
        f_new, g_new, gtd_new, bad = evaluate(trial)
        # The new gradient goes to the row neither slot points at; everything else moves
        # row numbers only: one in-place row write per pass instead of vector selects.
        row = jnp.where((z.g0 != 0) & (z.g1 != 0), 0,
                        jnp.where((z.g0 != 1) & (z.g1 != 1), 1, 2)).astype(jnp.int32)  # fmt: skip
        grads = jax.tree.map(lambda buf, new: lax.dynamic_update_index_in_dim(buf, new, row, 0),
                             z.grads, g_new)  # fmt: skip
        # Bracketing (and the first trial): (t_prev, t) <- (t, trial).
        b = _Search(
            t=jnp.stack([jnp.where(init, zero, z.t[1]), trial]),
            f=jnp.stack([jnp.where(init, f, z.f[1]), f_new]),
            gtd=jnp.stack([jnp.where(init, gtd, z.gtd[1]), gtd_new]),
            g0=jnp.where(init, -1, z.g1).astype(jnp.int32), g1=row, low0=z.low0, done=z.done,
            insufficient=z.insufficient, ls_iter=jnp.where(init, 0, z.ls_iter + 1), bad=bad,
            phase=jnp.asarray(_BRACKET, jnp.int32), grads=grads,
        )  # fmt: skip
        b = c.select(bracketing_goes_on(b), b, to_zoom(b))
        out = c.select(in_zoom, zoomed(z, t_zoom, insufficient, f_new, row, gtd_new, bad, grads), b)
        return out._replace(grads=grads)  # scalars selected above; the rows are shared

    zero = jnp.zeros([], dtype)
    pair = jnp.zeros([2], dtype)
    minus_one = jnp.asarray(-1, jnp.int32)
    # Broadcast from the gradient, so that the rows have its sharding (Explicit mesh axes).
    rows = jax.tree.map(lambda g: jnp.broadcast_to(jnp.zeros_like(g), (3, *jnp.shape(g))), grad)
    start = _Search(pair, pair, pair, minus_one, minus_one, jnp.asarray(False),
                    jnp.asarray(False), jnp.asarray(False), jnp.zeros([], jnp.int32),
                    jnp.asarray(False), jnp.asarray(_INIT, jnp.int32), rows)  # fmt: skip
    z = lax.while_loop(goes_on, body, start)
    chosen = jnp.where(z.low0, z.g0, z.g1)

    def gradient_at(g, buf):  # one pass per leaf, after the loop
        row = lax.dynamic_index_in_dim(buf, jnp.maximum(chosen, 0), 0, keepdims=False)
        return jnp.where(chosen < 0, g, row)

    return LineSearchResult(
        value=jnp.where(z.low0, z.f[0], z.f[1]),
        grad=jax.tree.map(gradient_at, grad, z.grads),
        step_size=jnp.where(z.low0, z.t[0], z.t[1]),
        evaluations=(z.ls_iter + 1).astype(jnp.int32),
        non_finite=z.bad,
    )
