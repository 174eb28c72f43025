"""Nonlinear conjugate gradients with the strong-Wolfe line search."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper
from optjx.full_batch import _common as c
from optjx.full_batch import _iteration, _wolfe
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._method import Direction, Iterate, Method, Options, Settings
from optjx.full_batch._packing import Packing
from optjx.typing import Hyperparameter


class ConjugateGradientState(NamedTuple):
    r"""CG state: global counters, diagnostics, the previous direction, gradient and slope.

    What the next update needs from the last iteration: $p_{k-1}$, $g_{k-1}$, $f_{k-1}$,
    $t_{k-1}$ and the slope $g_{k-1}^\top p_{k-1}$ of the first trial step

    $$
    t^{(0)}_k = t_{k-1} \frac{g_{k-1}^\top p_{k-1}}{g_k^\top p_k}.
    $$

    Built by ``conjugate_gradient``'s ``init``.

    Attributes:
      count: updates applied (the argument of a learning-rate schedule).
      n_iter: iterations over all updates.
      func_evals: evaluations over all updates.
      iterations: iterations in the last update.
      evaluations: evaluations in the last update (the given value included).
      stop_reason: a ``optjx.StopReason``, why the last update stopped.
      stop_test: a ``StopTest``, which of torch's tests stopped it.
      step_size: $t$ of the last iteration.
      direction: $p$ of the last iteration (a tree like the params).
      prev_grad: $g$ of the last iteration, packed as ``LbfgsState``'s: a tuple of
        one ``(n,)`` vector per dtype (``pack=False``: of one array per leaf).
      prev_value: $f$ of the last iteration.
      value: $f$ at the params the last update returned (``+inf`` before the first
        update), so that ``optax.value_and_grad_from_state`` finds it.
      grad: the gradient there, a tree like the params (zeros before the first update).
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
    stop_test: jax.Array  # int32: a StopTest, which test stopped it
    step_size: jax.Array  # t of the last iteration
    direction: Any  # p of the last iteration
    prev_grad: Any
    prev_value: jax.Array
    value: jax.Array  # f at the returned params (read by optax.value_and_grad_from_state)
    grad: Any  # the gradient at the returned params, a tree like the params
    prev_slope: jax.Array  # g.p of the last iteration (for the next first trial step)


class ConjugateGradientMemory(NamedTuple):
    """The CG part of ``ConjugateGradientState`` (its last field)."""

    prev_slope: jax.Array


# The betas, with y = g - g_prev and p the previous direction (all packed).


def fletcher_reeves(g, prev_g, y, p, dtype) -> jax.Array:
    r"""N&W (5.41a): $g^\top g / g_{prev}^\top g_{prev}$."""
    return c.dot(g, g, dtype) / c.dot(prev_g, prev_g, dtype)


def polak_ribiere(g, prev_g, y, p, dtype) -> jax.Array:
    r"""N&W (5.44) clipped at 0, (5.45), PR+: $\max(0, g^\top y / g_{prev}^\top g_{prev})$."""
    return jnp.maximum(c.dot(g, y, dtype) / c.dot(prev_g, prev_g, dtype), 0)


def hestenes_stiefel(g, prev_g, y, p, dtype) -> jax.Array:
    r"""N&W (5.46): $g^\top y / y^\top p$."""
    return c.dot(g, y, dtype) / c.dot(y, p, dtype)


def dai_yuan(g, prev_g, y, p, dtype) -> jax.Array:
    r"""N&W (5.49): $g^\top g / y^\top p$."""
    return c.dot(g, g, dtype) / c.dot(y, p, dtype)


Beta = Callable[[Any, Any, Any, Any, Any], jax.Array]
BETA_FUNCTIONS: dict[str, Beta] = {
    "fletcher_reeves": fletcher_reeves,
    "polak_ribiere": polak_ribiere,
    "hestenes_stiefel": hestenes_stiefel,
    "dai_yuan": dai_yuan,
}
BETAS = tuple(BETA_FUNCTIONS)


def _init_memory(packing: Packing, dtype) -> ConjugateGradientMemory:
    return ConjugateGradientMemory(prev_slope=jnp.zeros([], dtype))


def _direction(
    it: Iterate,
    mem: ConjugateGradientMemory,
    settings: Settings,
    beta: Beta,
    restart_every: Optional[int],
) -> Direction:
    r"""$p = -g + \beta p_{prev}$ (steepest descent on a restart or a bad $\beta$) and the
    first trial step of N&W (3.60)."""
    dtype = settings.dtype
    restart = it.first
    if restart_every is not None:
        restart = restart | ((it.n_iter - 1) % restart_every == 0)
    b = beta(it.g, it.prev_g, c.sub(it.g, it.prev_g), it.d, dtype)
    b = jnp.where(restart | ~jnp.isfinite(b), 0, b)
    d = c.axpy(b, it.d, c.neg(it.g))
    gtd = c.dot(it.g, d, dtype)
    steepest = gtd >= 0  # not a descent direction: restart along -g
    d = c.select(steepest, c.neg(it.g), d)
    gtd = jnp.where(steepest, -c.dot(it.g, it.g, dtype), gtd)
    t_first = c.first_step(it.g, settings.learning_rate, dtype)  # also the fallback of (3.60)
    t = it.t * mem.prev_slope / gtd  # N&W (3.60): the previous step's first-order change
    t = jnp.where(it.first | ~(t > 0) | ~jnp.isfinite(t), t_first, t)
    return Direction(ConjugateGradientMemory(gtd.astype(dtype)), d, t)


@compiled_when_eager
def conjugate_gradient(
    learning_rate: Hyperparameter = 1.0,
    *,
    beta: Literal[
        "fletcher_reeves", "polak_ribiere", "hestenes_stiefel", "dai_yuan"
    ] = "polak_ribiere",
    max_iter: int = 20,
    max_eval: Optional[int] = None,
    tolerance_grad: Hyperparameter = 1e-7,
    tolerance_change: Hyperparameter = 1e-9,
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

    with $t_k$ from the strong-Wolfe line search (``strong_wolfe``, ``c1``, ``c2``)
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
    conventions (``grads=None``, ``value_and_grad_fn``, the state's ``value`` and ``grad``
    for ``optax.value_and_grad_from_state``), stopping tests (torch's, as in
    ``lbfgs``), the recovery from non-finite trial points and the non-finite rule, the
    packed loops and sharding are those of ``lbfgs``.

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
        ``lbfgs``, its zoom stops on a bracket shorter than ``1e-9`` (relative to
        $\max|p|$) whatever this value.
      c1: sufficient decrease, in $(0, 1)$, default ``1e-4``.
      c2: curvature, in $(0, 1)$, default ``0.1`` (N&W sec. 5.2: $c_2 < 1/2$ makes
        Fletcher-Reeves directions descent directions). A tiny ``c2`` (``1e-9``: an exact
        search in effect) is allowed and works where the minimiser along the line is
        sufficiently lower, as on a convex quadratic.
      restart_every: ``None`` or an int $\ge 1$: restart every so many iterations (N&W
        suggest $n$, the number of parameters).
      respect_max_eval: as in ``lbfgs``.
      pack: default ``True``: one flat vector per dtype in the loops (compile time grows
        only slowly with the number of leaves; sharded leaves may be gathered to be
        concatenated). ``False``: every leaf stays its own array in its own sharding, so
        sharded params are never gathered, at the cost of a program that grows with the
        number of leaves. As in ``lbfgs``.

    Returns:
      A ``GradientTransformationExtraArgs``; ``update(grads, state, params, *,
      value=None, value_fn=None, value_and_grad_fn=None)`` as ``lbfgs``'s; the state
      is a ``ConjugateGradientState``.

    Raises:
      ValueError: a hyperparameter out of range or an unknown ``beta``; bad calls as in
        ``lbfgs``.

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

    method = Method(
        name="conjugate_gradient",
        state_type=ConjugateGradientState,
        memory_type=ConjugateGradientMemory,
        init_memory=_init_memory,
        direction=functools.partial(
            _direction, beta=BETA_FUNCTIONS[beta], restart_every=restart_every
        ),
    )
    search = functools.partial(_wolfe.search, c1=c1, c2=c2, respect_max_eval=respect_max_eval)
    return _iteration.transformation(method, hypers, Options(max_iter, max_eval, search, pack))
