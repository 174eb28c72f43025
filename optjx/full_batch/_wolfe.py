r"""The loop of the strong-Wolfe line search (``optjx.strong_wolfe``), in pieces.

torch's ``_strong_wolfe`` as one ``while_loop`` with one evaluation per pass, cut into the
pieces of Nocedal & Wright's Algorithms 3.5 and 3.6: the conditions
(``_armijo_fails``, ``_curvature_holds``), the bracketing phase
(``_extrapolation``, ``_bracketed``, ``_to_zoom``), the zoom
(``_zoom_trial``, ``_zoomed``) and the interpolation (``cubic_minimizer``).
A pass (``_pass``) evaluates one trial and hands the result to the phase it belongs to.

A trial whose value or gradient is not finite is a failed trial (``_pass``): its
value counts as $+\infty$, so it fails sufficient decrease and becomes the high end of the
bracket, and the zoom bisects a bracket with such an end (``_zoom_trial``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch import _common as c
from optjx.full_batch._interpolation import cubic_minimizer


class LineSearchResult(NamedTuple):
    """What ``strong_wolfe`` returns (scalars in the dtype of ``value``)."""

    value: jax.Array  # f(x + t d)
    grad: Any  # the gradient at x + t d, a tree like x
    step_size: jax.Array  # t
    evaluations: jax.Array  # int32: calls of value_and_grad_fn made
    non_finite: jax.Array  # bool: no trial point had a finite value and gradient


def checked(value, grad, direction, dtype):
    """``(value, grad, grad . direction, not finite)``: what ``search``'s ``evaluate`` returns."""
    bad = ~(jnp.isfinite(value) & c.all_finite(grad))
    return value, grad, c.dot(grad, direction, dtype), bad


def along(value_and_grad, x, direction_tree, direction, dtype, pack=None):
    """``evaluate(t) -> (f, g, g . d, not finite)`` at ``x + t d``, for ``search``.

    ``value_and_grad`` takes the tree ``x + t d`` (``direction_tree``); its value is cast
    to ``dtype`` and its gradient packed by ``pack`` (``Packing.pack``; ``None``: kept),
    to be in the form of ``direction``.
    """

    def evaluate(t):
        f, g = value_and_grad(c.axpy(t, direction_tree, x))
        return checked(jnp.asarray(f).astype(dtype), g if pack is None else pack(g), direction,
                       dtype)  # fmt: skip

    return evaluate


def along_packed(value_and_grad, packing, x, direction, dtype):
    """``along`` with the point packed as the direction: each trial point ``x + t d`` is
    one operation per dtype group, unpacked (``Packing.unpack``) for ``value_and_grad``,
    and its gradient packed."""

    def on_tree(point):
        return value_and_grad(packing.unpack(point))

    return along(on_tree, x, direction, direction, dtype, packing.pack)


# ------------------------------------------------------------------ the search's data

_INIT, _BRACKET, _ZOOM = 0, 1, 2  # the phases of the one loop


class _Line(NamedTuple):
    r"""What one search keeps fixed: $\phi(0)$, $\phi'(0)$, the first trial, the constants."""

    f: jax.Array  # phi(0)
    gtd: jax.Array  # phi'(0) < 0
    t: jax.Array  # the first trial step
    d_norm: jax.Array  # max|d|: the zoom's bracket is measured in x
    limit: jax.Array  # int32: the iteration budget
    c1: Any
    c2: Any
    tolerance_change: Any


class _Search(NamedTuple):
    """The loop state: two points (index 0 and 1) and the ring of their gradients.

    Bracketing keeps ``(t_prev, t)`` at 0 and 1; the zoom keeps the bracket, its low end
    at 0 when ``low0``. ``rows[i]`` is the row of ``grads`` holding the gradient at
    ``t[i]``, ``-1`` for the gradient at ``t = 0`` (the argument), so that moving a
    gradient between the two points is a scalar assignment, not a vector select.
    """

    t: jax.Array  # (2,)
    f: jax.Array  # (2,)
    gtd: jax.Array  # (2,)
    rows: jax.Array  # (2,) int32
    low0: jax.Array  # zoom: the low end is t[0]
    done: jax.Array  # both conditions hold at the low end
    insufficient: jax.Array  # zoom: the last trial was moved off an end of the bracket
    ls_iter: jax.Array  # int32: torch's ls_iter
    bad: jax.Array  # the last trial was not finite
    found: jax.Array  # some trial was finite
    phase: jax.Array  # int32: _INIT (the first trial), _BRACKET or _ZOOM
    grads: Any  # a tree like grad, each leaf (3, *shape): the evaluated gradients


class _Trial(NamedTuple):
    r"""One evaluated trial point: $t$, $\phi(t)$, $\phi'(t)$, where its gradient went."""

    t: jax.Array
    f: jax.Array
    gtd: jax.Array
    row: jax.Array  # int32: the row of the ring holding its gradient
    bad: jax.Array  # its value or gradient is not finite: f is then +inf


# ------------------------------------------------------------------ the conditions


def _sufficient_decrease_fails(line: _Line, t, f) -> jax.Array:
    r"""$\phi(t) > \phi(0) + c_1 t \phi'(0)$ (N&W eq. 3.6a fails)."""
    return f > line.f + line.c1 * t * line.gtd


def _curvature_holds(line: _Line, gtd) -> jax.Array:
    r"""$|\phi'(t)| \le -c_2 \phi'(0)$ (N&W eq. 3.7b)."""
    return jnp.abs(gtd) <= -line.c2 * line.gtd


def _armijo_fails(s: _Search, line: _Line) -> jax.Array:
    """Bracketing: the newest trial ``t[1]`` fails sufficient decrease or is not lower than
    the one before (N&W Algorithm 3.5, the test that brackets ``[t_prev, t]``)."""
    return _sufficient_decrease_fails(line, s.t[1], s.f[1]) | ((s.ls_iter > 1) & (s.f[1] >= s.f[0]))


# ------------------------------------------------------------------ bracketing


def _extrapolation(s: _Search) -> jax.Array:
    """The next bracketing trial: the cubic's minimiser in $[t + 0.01 (t - t_{prev}), 10 t]$."""
    t_prev, t = s.t[0], s.t[1]
    return cubic_minimizer(
        t_prev, s.f[0], s.gtd[0], t, s.f[1], s.gtd[1], t + 0.01 * (t - t_prev), t * 10
    )


def _bracketing_goes_on(s: _Search, line: _Line) -> jax.Array:
    stop = _armijo_fails(s, line) | _curvature_holds(line, s.gtd[1]) | (s.gtd[1] >= 0)
    return (s.ls_iter < line.limit) & ~stop


def _bracketed(s: _Search, line: _Line, trial: _Trial) -> _Search:
    """``(t_prev, t) <- (t, trial)``; the first trial's ``t_prev`` is the start, ``t = 0``."""
    init = s.phase == _INIT
    zero = jnp.zeros_like(line.f)
    return s._replace(
        t=jnp.stack([jnp.where(init, zero, s.t[1]), trial.t]),
        f=jnp.stack([jnp.where(init, line.f, s.f[1]), trial.f]),
        gtd=jnp.stack([jnp.where(init, line.gtd, s.gtd[1]), trial.gtd]),
        rows=jnp.stack([jnp.where(init, -1, s.rows[1]).astype(jnp.int32), trial.row]),
        ls_iter=jnp.where(init, 0, s.ls_iter + 1),
        bad=trial.bad,
        found=s.found | ~trial.bad,
        phase=jnp.asarray(_BRACKET, jnp.int32),
    )


def _to_zoom(s: _Search, line: _Line) -> _Search:
    r"""The bracket torch leaves to the zoom.

    ``[0, t]`` when the budget ran out (checked first: the last trial is not tested),
    ``[t, t]`` when ``t`` satisfies both conditions, else ``[t_prev, t]``. When the budget
    ran out on a failed (non-finite) trial, ``[t_prev, t]``: ``t_prev`` is the last finite
    point, lower than ``t``'s $+\infty$, so it is returned (torch's ``[0, t]`` would throw
    it away).
    """
    exhausted = s.ls_iter >= line.limit
    done = ~exhausted & ~_armijo_fails(s, line) & _curvature_holds(line, s.gtd[1])
    first = jnp.where(exhausted & ~s.bad, 0, jnp.where(done, 1, 2))  # which point is t[0]

    def pick(at_zero, at_t, at_prev):
        return jnp.where(first == 0, at_zero, jnp.where(first == 1, at_t, at_prev))

    f0 = pick(line.f, s.f[1], s.f[0])
    return s._replace(
        t=jnp.stack([pick(jnp.zeros_like(line.f), s.t[1], s.t[0]), s.t[1]]),
        f=jnp.stack([f0, s.f[1]]),
        gtd=jnp.stack([pick(line.gtd, s.gtd[1], s.gtd[0]), s.gtd[1]]),
        rows=jnp.stack([pick(-1, s.rows[1], s.rows[0]).astype(jnp.int32), s.rows[1]]),
        low0=f0 <= s.f[1],
        done=done,
        insufficient=jnp.asarray(False),
        phase=jnp.asarray(_ZOOM, jnp.int32),
    )


# ------------------------------------------------------------------ zoom


def _zoom_goes_on(z: _Search, line: _Line) -> jax.Array:
    tiny = jnp.abs(z.t[1] - z.t[0]) * line.d_norm < line.tolerance_change
    return ~z.done & (z.ls_iter < line.limit) & ~tiny


def _zoom_trial(z: _Search) -> tuple[jax.Array, jax.Array]:
    """The cubic's minimiser in the bracket, safeguarded; and whether it was too close.

    A trial within a tenth of the bracket's length from an end (or outside) is moved to
    that distance when the previous trial was also that close (torch's ``insuf_progress``).
    A bracket with a failed (non-finite) end has no cubic: its midpoint is the trial, so
    that each failed trial halves the step's distance from the last finite point.
    """
    cubic = cubic_minimizer(z.t[0], z.f[0], z.gtd[0], z.t[1], z.f[1], z.gtd[1])
    t = jnp.where(jnp.isfinite(z.f[0]) & jnp.isfinite(z.f[1]), cubic, (z.t[0] + z.t[1]) / 2)
    top, bottom = jnp.max(z.t), jnp.min(z.t)
    eps = 0.1 * (top - bottom)
    near_end = jnp.minimum(top - t, t - bottom) < eps
    at_end = z.insufficient | (t >= top) | (t <= bottom)
    moved = jnp.where(jnp.abs(t - top) < jnp.abs(t - bottom), top - eps, bottom + eps)
    return jnp.where(near_end & at_end, moved, t), near_end & ~at_end


def _zoomed(z: _Search, line: _Line, trial: _Trial, insufficient) -> _Search:
    """The bracket after a zoom trial (N&W Algorithm 3.6).

    A trial higher than allowed replaces the high end; otherwise it becomes the low end,
    and the old low end becomes the high end when the slope at the trial points away from
    the old high end.
    """
    low = jnp.where(z.low0, 0, 1)
    high = 1 - low
    t_low, t_high = z.t[low], z.t[high]
    higher = _sufficient_decrease_fails(line, trial.t, trial.f) | (trial.f >= z.f[low])
    wolfe = _curvature_holds(line, trial.gtd)
    flip = ~higher & ~wolfe & (trial.gtd * (t_high - t_low) >= 0)
    slot = jnp.arange(2)
    new_at = slot == jnp.where(higher, high, low)
    old_low_at = flip & (slot == high)

    def place(pair, new):
        return jnp.where(new_at, new, jnp.where(old_low_at, pair[low], pair))

    f = place(z.f, trial.f)
    return z._replace(
        t=place(z.t, trial.t),
        f=f,
        gtd=place(z.gtd, trial.gtd),
        rows=place(z.rows, trial.row),
        low0=jnp.where(higher, f[0] <= f[1], z.low0),
        done=~higher & wolfe,
        insufficient=insufficient,
        ls_iter=z.ls_iter + 1,
        bad=trial.bad,
        found=z.found | ~trial.bad,
    )


# ------------------------------------------------------------------ the loop


def _free_row(rows) -> jax.Array:
    """The row of the ring that neither point's gradient occupies."""
    return jnp.where(jnp.all(rows != 0), 0, jnp.where(jnp.all(rows != 1), 1, 2)).astype(jnp.int32)


def _goes_on(line: _Line, z: _Search) -> jax.Array:
    return (z.phase != _ZOOM) | _zoom_goes_on(z, line)


def _pass(evaluate, line: _Line, z: _Search) -> _Search:
    """One evaluation, whatever the phase, handed to the phase it belongs to.

    One evaluation per pass keeps ``evaluate`` (the user's loss and its gradient) once in
    the compiled program, not three times.
    """
    in_zoom = z.phase == _ZOOM
    t_zoom, insufficient = _zoom_trial(z)
    t = jnp.where(z.phase == _INIT, line.t, jnp.where(in_zoom, t_zoom, _extrapolation(z)))
    trial_f, g, gtd, bad = evaluate(t)
    # A failed trial's value is +inf: higher than any finite point, the start included.
    f = jnp.where(bad, jnp.inf, trial_f).astype(trial_f.dtype)
    # The new gradient goes to the row neither point uses: one in-place row write per
    # pass; everything else moves row numbers only.
    row = _free_row(z.rows)
    grads = jax.tree.map(
        lambda ring, new: lax.dynamic_update_index_in_dim(ring, new, row, 0), z.grads, g
    )
    trial = _Trial(t, f, gtd, row, bad)
    b = _bracketed(z, line, trial)
    b = c.select(_bracketing_goes_on(b, line), b, _to_zoom(b, line))
    out = c.select(in_zoom, _zoomed(z, line, trial, insufficient), b)
    return out._replace(grads=grads)  # the scalars are selected above; the ring is shared


def search(
    evaluate,
    value,
    grad,
    slope,
    step_size,
    d_norm,
    *,
    c1=1e-4,
    c2=0.9,
    tolerance_change=1e-9,
    max_ls=25,
    respect_max_eval=False,
) -> LineSearchResult:
    """``strong_wolfe`` given ``evaluate(t) -> (f, g, g . d, not finite)`` and ``max|d|``.

    The methods call it directly: their ``evaluate`` builds the trial point on the params
    tree and returns the packed gradient (``grad`` is then packed too).
    """
    dtype = jnp.asarray(value).dtype
    line = _Line(
        f=jnp.asarray(value, dtype),
        gtd=jnp.asarray(slope, dtype),
        t=jnp.asarray(step_size, dtype),
        d_norm=d_norm,
        limit=jnp.asarray(max_ls, jnp.int32) - (1 if respect_max_eval else 0),
        c1=c1,
        c2=c2,
        tolerance_change=tolerance_change,
    )
    pair = jnp.zeros([2], dtype)
    # Broadcast from the gradient, so that the rows have its sharding (Explicit mesh axes).
    ring = jax.tree.map(lambda g: jnp.broadcast_to(jnp.zeros_like(g), (3, *jnp.shape(g))), grad)
    start = _Search(
        t=pair,
        f=pair,
        gtd=pair,
        rows=jnp.full([2], -1, jnp.int32),
        low0=jnp.asarray(False),
        done=jnp.asarray(False),
        insufficient=jnp.asarray(False),
        ls_iter=jnp.zeros([], jnp.int32),
        bad=jnp.asarray(False),
        found=jnp.asarray(False),
        phase=jnp.asarray(_INIT, jnp.int32),
        grads=ring,
    )
    z = lax.while_loop(lambda z: _goes_on(line, z), lambda z: _pass(evaluate, line, z), start)
    chosen = jnp.where(z.low0, z.rows[0], z.rows[1])

    def gradient_at(g, ring):  # one pass per leaf, after the loop
        row = lax.dynamic_index_in_dim(ring, jnp.maximum(chosen, 0), 0, keepdims=False)
        return jnp.where(chosen < 0, g, row)

    return LineSearchResult(
        value=jnp.where(z.low0, z.f[0], z.f[1]),
        grad=jax.tree.map(gradient_at, grad, z.grads),
        step_size=jnp.where(z.low0, z.t[0], z.t[1]),
        evaluations=(z.ls_iter + 1).astype(jnp.int32),
        non_finite=~z.found,
    )
