r"""The strong-Wolfe line search shared by L-BFGS and nonlinear conjugate gradients.

``strong_wolfe`` on trees; its loop, cut into the pieces of Nocedal & Wright's
Algorithms 3.5 and 3.6, is in ``optjx.full_batch._wolfe`` (``search``, which the
methods call on packed vectors), the interpolation in
``optjx.full_batch._interpolation``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optjx.full_batch import _common as c
from optjx.full_batch._interpolation import cubic_minimizer as cubic_minimizer
from optjx.full_batch._wolfe import LineSearchResult as LineSearchResult
from optjx.full_batch._wolfe import along
from optjx.full_batch._wolfe import checked as checked
from optjx.full_batch._wolfe import search as search


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

    Non-finite regions (a loss defined only for positive variances, ``log1p(-x)``, ...):
    a trial whose value or gradient is a NaN or an Inf is a failed trial, as if its value
    were $+\infty$. It fails sufficient decrease, so bracketing stops with the bracket
    $[t_{prev}, t]$ whose low end $t_{prev}$ is the last finite trial (or $0$), and the
    zoom takes the *midpoint* of a bracket with a failed end instead of the cubic's
    minimiser (which needs finite values and slopes at both ends): each further failed
    trial halves the distance from the last finite point, until a finite trial restores
    the cubic zoom or the budget (or the bracket tolerance) ends the search. Bisection was
    chosen over a fixed shrink factor because it is the safeguard the zoom already uses
    when the cubic has no minimiser, it needs no new constant, and from a finite point
    at distance $t$ it reaches any finite region of width $w$ around that point in about
    $\log_2(t / w)$ evaluations. Where every trial is finite, nothing changes: the steps
    are torch's.

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
        exceed ``max_eval`` by one (https://github.com/pytorch/pytorch/issues/91581).
      respect_max_eval: count the first trial against ``max_ls``: at most
        ``max(1, max_ls)`` evaluations. Default ``False``, torch's count.

    Returns:
      A ``LineSearchResult``. When the budget runs out during bracketing, the better
      of $t = 0$ and the last trial is returned ($t = 0$ means no progress), as torch
      does (the last finite trial instead of $t = 0$ when the last trial failed).
      ``non_finite=True`` when no trial had a finite value and gradient: the result is
      then $t = 0$ with the given ``value`` and ``grad``. ``value`` and ``grad`` at
      $t = 0$ must be finite.

    Differences from PyTorch and optax:
      torch's ``_strong_wolfe`` works on one flat tensor; this one on any tree (optjx's
      methods pass one flat vector per dtype). torch's goes on with NaNs after a
      non-finite trial; this one backs off towards the last finite point (above).
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
    return search(
        along(value_and_grad_fn, params, direction, direction, dtype),
        value,
        grad,
        slope,
        step_size,
        c.max_abs(direction, dtype),
        c1=c1,
        c2=c2,
        tolerance_change=tolerance_change,
        max_ls=max_ls,
        respect_max_eval=respect_max_eval,
    )
