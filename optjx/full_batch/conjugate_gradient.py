"""Nonlinear conjugate gradients with the strong-Wolfe line search."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.full_batch import _common as c
from optjx.full_batch import _iteration
from optjx.full_batch._packing import Packing

BETAS = ("fletcher_reeves", "polak_ribiere", "hestenes_stiefel", "dai_yuan")


class ConjugateGradientState(NamedTuple):
    r"""CG state: global counters, diagnostics, the previous direction, gradient and slope.

    What the next update needs from the last iteration: $p_{k-1}$, $g_{k-1}$, $f_{k-1}$,
    $t_{k-1}$ and the slope $g_{k-1}^\top p_{k-1}$ of the first trial step

    $$
    t^{(0)}_k = t_{k-1} \frac{g_{k-1}^\top p_{k-1}}{g_k^\top p_k}.
    $$

    Built by :func:`conjugate_gradient`'s ``init``.

    Attributes:
      count: updates applied (the argument of a learning-rate schedule).
      n_iter: iterations over all updates.
      func_evals: evaluations over all updates.
      iterations: iterations in the last update.
      evaluations: evaluations in the last update (the given value included).
      stop_reason: a ``StopReason``, why the last update stopped.
      step_size: $t$ of the last iteration.
      direction: $p$ of the last iteration (a tree like the params).
      prev_grad: $g$ of the last iteration, packed as :class:`LbfgsState`'s: a tuple of
        one ``(n,)`` vector per dtype (``pack=False``: of one array per leaf).
      prev_value: $f$ of the last iteration.
      prev_slope: $g^\top p$ of the last iteration.

    A NamedTuple (a pytree).

    References:
      Nocedal & Wright (2006), Algorithm 5.4 and eq. (3.60).

    Differences from PyTorch and optax:
      Neither has a nonlinear CG; the counters are those of ``torch.optim.LBFGS``.

    Examples:
      >>> import jax.numpy as jnp, optjx
      >>> state = optjx.conjugate_gradient().init({"x": jnp.zeros(3)})
      >>> optjx.stop_reason(state)
      'NOT_STARTED'
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
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
    pack: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""Nonlinear conjugate gradients with the strong-Wolfe line search.

    $$
    p_k = -g_k + \beta_k p_{k-1}, \qquad x_{k+1} = x_k + t_k p_k
    $$

    with $t_k$ from the strong-Wolfe line search (:func:`strong_wolfe`, ``c1``, ``c2``)
    and, with $y_k = g_k - g_{k-1}$, ``beta`` one of:

    $$
    \beta^{FR} = \frac{g_k^\top g_k}{g_{k-1}^\top g_{k-1}}, \quad
    \beta^{PR+} = \max\Big(0, \frac{g_k^\top y_k}{g_{k-1}^\top g_{k-1}}\Big), \quad
    \beta^{HS} = \frac{g_k^\top y_k}{y_k^\top p_{k-1}}, \quad
    \beta^{DY} = \frac{g_k^\top g_k}{y_k^\top p_{k-1}}
    $$

    $\beta = 0$ (steepest descent) on the very first iteration, every ``restart_every``
    iterations, and when $\beta$ is not finite; $p = -g$ when $p$ is not a descent
    direction ($g^\top p \ge 0$). The first trial step is
    $\min(1, 1/\lVert g \rVert_1)\,\mathrm{lr}$ on the first iteration, then
    $t_{k-1}\, g_{k-1}^\top p_{k-1} / g_k^\top p_k$ (N&W eq. 3.60), falling back to the
    first rule when that is not a positive number. With an exact line search on a strictly
    convex quadratic every ``beta`` is linear CG: the minimiser in $n$ steps. Calling
    convention, stopping tests (torch's, as in :func:`lbfgs`), the NaN rule, the packed
    loops and sharding are those of :func:`lbfgs`.

    References:
      Nocedal & Wright (2006), "Numerical Optimization", ch. 5, Algorithm 5.4, eqs.
      (5.41a) FR, (5.44)-(5.45) PR+, (5.46) HS, (5.49) DY; Fletcher & Reeves (1964);
      Polak & Ribière (1969); Hestenes & Stiefel (1952); Dai & Yuan (1999).

    Args:
      learning_rate: $\ge 0$, scales the first trial step of the first iteration; default 1.
      beta: one of ``"fletcher_reeves"``, ``"polak_ribiere"`` (default, PR+),
        ``"hestenes_stiefel"``, ``"dai_yuan"``.
      max_iter: iterations per update, int $\ge 1$, default 20.
      max_eval: evaluations per update, int $\ge 1$, default ``max_iter * 5 // 4``.
      tolerance_grad: $\ge 0$, default ``1e-7``.
      tolerance_change: $\ge 0$, default ``1e-9``. Not the line search's: as in
        :func:`lbfgs`, its zoom stops on a bracket shorter than ``1e-9`` (relative to
        $\max|p|$) whatever this value.
      c1: sufficient decrease, in $(0, 1)$, default ``1e-4``.
      c2: curvature, in $(0, 1)$, default ``0.1`` (N&W sec. 5.2: $c_2 < 1/2$ makes
        Fletcher-Reeves directions descent directions). A tiny ``c2`` (``1e-9``: an exact
        search in effect) is allowed and works where the minimiser along the line is
        sufficiently lower, as on a convex quadratic.
      restart_every: ``None`` or an int $\ge 1$: restart every so many iterations (N&W
        suggest $n$, the number of parameters).
      respect_max_eval: as in :func:`lbfgs`.
      pack: default ``True``: one flat vector per dtype in the loops (compile time grows
        only slowly with the number of leaves; sharded leaves may be gathered to be
        concatenated). ``False``: every leaf stays its own array in its own sharding, so
        sharded params are never gathered, at the cost of a program that grows with the
        number of leaves. As in :func:`lbfgs`.

    Returns:
      A ``GradientTransformationExtraArgs``; ``update(grads, state, params, *, value,
      value_fn)``; the state is a :class:`ConjugateGradientState`.

    Raises:
      ValueError: a hyperparameter out of range or an unknown ``beta``; bad calls as in
        :func:`lbfgs`.

    Differences from PyTorch and optax:
      Neither has a nonlinear CG. scipy's ``minimize(method="CG")`` is Polak-Ribière with
      its own line search, so iterates differ while the minimiser is the same.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optjx
      >>> loss = lambda p: jnp.sum(jnp.arange(1.0, 4.0) * (p["x"] - 1.0) ** 2)
      >>> params = {"x": jnp.zeros(3)}
      >>> opt = optjx.conjugate_gradient(beta="fletcher_reeves", max_iter=50)
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> updates, state = opt.update(grads, opt.init(params), params, value=value,
      ...                             value_fn=loss)
      >>> params = optax.apply_updates(params, updates)
      >>> bool(loss(params) < 1e-6)
      True
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
        zero = _state.zero_count
        return ConjugateGradientState(
            count=_state.zero_count(), n_iter=zero(), func_evals=zero(),
            iterations=zero(), evaluations=zero(),
            stop_reason=jnp.asarray(c.StopReason.NOT_STARTED, jnp.int32), step_size=scalar,
            direction=_tree.zeros_like(params), prev_grad=Packing(params, pack).zeros(),
            prev_value=scalar, prev_slope=scalar,
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        hp = hypers.at(state.count)
        lr = jnp.asarray(hp.learning_rate, dtype)

        def direction(s: _iteration.Carry, first):
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
            t_first = c.first_step(s.g, lr, dtype)  # also the fallback of (3.60) below
            t = s.t * s.memory / gtd  # N&W (3.60): the previous step's first-order change
            t = jnp.where(first | ~(t > 0) | ~jnp.isfinite(t), t_first, t)
            return gtd.astype(dtype), d, t

        line_search = {"c1": c1, "c2": c2, "respect_max_eval": respect_max_eval}
        s = _iteration.iterate(state, params, grads, value, value_and_grad, state.prev_slope,
                               direction,
                               lr=lr, tolerance_grad=jnp.asarray(hp.tolerance_grad, dtype),
                               tolerance_change=jnp.asarray(hp.tolerance_change, dtype),
                               max_iter=max_iter, max_eval=max_eval, line_search=line_search,
                               pack=pack)  # fmt: skip
        return _iteration.finish(state, params, s, prev_slope=s.memory)

    return c.full_batch_transformation("conjugate_gradient", init_fn, step_fn)
