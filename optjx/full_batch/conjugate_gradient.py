"""Nonlinear conjugate gradients with the strong-Wolfe line search."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.full_batch import _common as c

BETAS = ("fletcher_reeves", "polak_ribiere", "hestenes_stiefel", "dai_yuan")


class ConjugateGradientState(NamedTuple):
    """CG state: global counters, diagnostics, the previous direction, gradient and slope."""

    n_iter: jax.Array  # int32: iterations over all updates
    func_evals: jax.Array  # int32: evaluations over all updates
    iterations: jax.Array  # int32: iterations in the last update
    evaluations: jax.Array  # int32: evaluations in the last update (the given value included)
    stop_reason: jax.Array  # int32: a StopReason
    step_size: jax.Array  # t of the last iteration
    direction: Any  # p of the last iteration
    prev_grad: Any
    prev_value: jax.Array
    prev_slope: jax.Array  # g.p of the last iteration (for the next first trial step)


def _beta(kind: str, g, prev_g, prev_d, dtype):
    y = c.sub(g, prev_g)
    if kind == "fletcher_reeves":  # N&W (5.41a)
        return c.dot(g, g, dtype) / c.dot(prev_g, prev_g, dtype)
    if kind == "polak_ribiere":  # N&W (5.44) clipped at 0, (5.45): PR+
        return jnp.maximum(c.dot(g, y, dtype) / c.dot(prev_g, prev_g, dtype), 0)
    if kind == "hestenes_stiefel":  # N&W (5.46)
        return c.dot(g, y, dtype) / c.dot(y, prev_d, dtype)
    return c.dot(g, g, dtype) / c.dot(y, prev_d, dtype)  # dai_yuan, N&W (5.49)


def conjugate_gradient(
    learning_rate: _hyper.Hyper = 1.0,
    *,
    beta: str = "polak_ribiere",
    max_iter: int = 20,
    max_eval: Optional[int] = None,
    tolerance_grad: _hyper.Hyper = 1e-7,
    tolerance_change: _hyper.Hyper = 1e-9,
    c1: float = 1e-4,
    c2: float = 0.1,
    restart_every: Optional[int] = None,
    respect_max_eval: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Nonlinear conjugate gradients (Nocedal & Wright 2006, ch. 5, Algorithm 5.4).

    .. math::

       p_k = -g_k + \beta_k p_{k-1}, \qquad x_{k+1} = x_k + t_k p_k

    with ``t_k`` from the strong-Wolfe line search
    (:func:`optjx.full_batch.line_search.strong_wolfe`, ``c1``, ``c2``) and, with
    :math:`y_k = g_k - g_{k-1}`, ``beta`` one of (Nocedal & Wright, sec. 5.2):

    * ``"fletcher_reeves"``: :math:`\beta = g_k^\top g_k / g_{k-1}^\top g_{k-1}` (5.41a);
    * ``"polak_ribiere"`` (PR+): :math:`\beta = \max(0, g_k^\top y_k / g_{k-1}^\top g_{k-1})`
      (5.44), (5.45);
    * ``"hestenes_stiefel"``: :math:`\beta = g_k^\top y_k / y_k^\top p_{k-1}` (5.46);
    * ``"dai_yuan"``: :math:`\beta = g_k^\top g_k / y_k^\top p_{k-1}` (5.49); Dai & Yuan 1999.

    ``beta = 0`` (steepest descent) on the very first iteration, every ``restart_every``
    iterations, and when ``beta`` is not finite; ``p = -g`` when ``p`` is not a descent
    direction (``g.p >= 0``). The first trial step is ``min(1, 1/||g||_1) lr`` on the first
    iteration, then ``t_{k-1} g_{k-1}.p_{k-1} / g_k.p_k`` (N&W eq. 3.60), falling back to
    the first rule when that is not a positive number. With an exact line search on a
    strictly convex quadratic every ``beta`` is linear CG: the minimiser in ``n`` steps.

    Calling convention, stopping tests (torch's, as in :func:`optjx.lbfgs`), the NaN rule
    and diagnostics are those of :func:`optjx.lbfgs`.

    Args:
      learning_rate: ``>= 0``, scales the first trial step of the first iteration; default 1.
      beta: one of ``"fletcher_reeves"``, ``"polak_ribiere"`` (default),
        ``"hestenes_stiefel"``, ``"dai_yuan"``.
      max_iter: iterations per update, int ``>= 1``, default 20.
      max_eval: evaluations per update, int ``>= 1``, default ``max_iter * 5 // 4``.
      tolerance_grad: ``>= 0``, default ``1e-7``. tolerance_change: ``>= 0``, default ``1e-9``.
      c1: sufficient decrease, in ``(0, 1)``, default ``1e-4``.
      c2: curvature, in ``(0, 1)``, default ``0.1`` (N&W sec. 5.2: ``c2 < 1/2`` makes
        Fletcher-Reeves directions descent directions). A step satisfying both conditions
        is guaranteed to exist for ``c1 < c2``; a tiny ``c2`` (``1e-9``: an exact search in
        effect) is allowed and works where the minimiser along the line is sufficiently
        lower, as on a convex quadratic.
      restart_every: ``None`` or an int ``>= 1``: restart every so many iterations (N&W
        suggest ``n``, the number of parameters).
      respect_max_eval: as in :func:`optjx.lbfgs`.

    Returns:
      A ``GradientTransformationExtraArgs``; ``update(grads, state, params, *, value,
      value_fn)``; the state is a :class:`ConjugateGradientState`.

    Differences: torch has no CG; scipy's ``minimize(method="CG")`` is Polak-Ribiere with
    its own line search, so iterates differ while the minimiser is the same. optax has no
    nonlinear CG.

    Example::

        opt = optjx.conjugate_gradient(beta="fletcher_reeves", max_iter=50)
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
    """
    hypers = _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        tolerance_grad=(tolerance_grad, _hyper.NONNEGATIVE),
        tolerance_change=(tolerance_change, _hyper.NONNEGATIVE),
    )
    open_unit = _hyper.Range(0.0, 1.0, low_inclusive=False, high_inclusive=False)
    for name, value in (("c1", c1), ("c2", c2)):
        _hyper.check_type(name, value)
        open_unit.check(name, value)
    if beta not in BETAS:
        raise ValueError(f"beta must be one of {', '.join(BETAS)}; got {beta!r}")
    max_eval = c.check_max_eval(max_iter, max_eval)
    if restart_every is not None:
        c.check_int("restart_every", restart_every, 1)

    def init_fn(params):
        scalar = jnp.zeros([], c.scalar_dtype(params))
        zero = _tree.zero_count
        return _state.init(
            ConjugateGradientState, hypers.scheduled, n_iter=zero(), func_evals=zero(),
            iterations=zero(), evaluations=zero(),
            stop_reason=jnp.asarray(c.StopReason.NOT_STARTED, jnp.int32), step_size=scalar,
            direction=_tree.zeros_like(params), prev_grad=_tree.zeros_like(params),
            prev_value=scalar, prev_slope=scalar,
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        hp = hypers.at(_state.count_of(state))
        lr = jnp.asarray(hp.learning_rate, dtype)

        def direction(s: c.Carry, first):
            restart = first
            if restart_every is not None:
                restart = restart | ((s.n_iter - 1) % restart_every == 0)
            b = _beta(beta, s.g, s.prev_g, s.d, dtype)
            b = jnp.where(restart | ~jnp.isfinite(b), 0, b)
            d = c.axpy(b, s.d, c.neg(s.g))
            gtd = c.dot(s.g, d, dtype)
            steepest = gtd >= 0  # not a descent direction: restart along -g
            d = c.select(steepest, c.neg(s.g), d)
            gtd = jnp.where(steepest, -c.dot(s.g, s.g, dtype), gtd)
            inv_l1 = 1 / c.sum_abs(s.g, dtype)
            t_first = jnp.where(inv_l1 < 1, inv_l1, 1) * lr
            t = s.t * s.memory / gtd  # N&W (3.60): the previous step's first-order change
            t = jnp.where(first | ~(t > 0) | ~jnp.isfinite(t), t_first, t)
            return gtd.astype(dtype), d, t

        line_search = {"c1": c1, "c2": c2, "respect_max_eval": respect_max_eval}
        s = c.iterate(state, params, grads, value, value_and_grad, state.prev_slope, direction,
                      lr=lr, tolerance_grad=jnp.asarray(hp.tolerance_grad, dtype),
                      tolerance_change=jnp.asarray(hp.tolerance_change, dtype),
                      max_iter=max_iter, max_eval=max_eval, line_search=line_search)  # fmt: skip
        return c.finish(state, params, s, prev_slope=s.memory)

    return c.full_batch_transformation("conjugate_gradient", init_fn, step_fn)
