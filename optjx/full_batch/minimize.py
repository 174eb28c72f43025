r"""``minimize``: run any optjx optimizer to convergence in one jitted ``lax.while_loop``.

The method's kind is read from what it is, so methods written later plug in unchanged:
least squares when its ``update`` takes ``residual_fn=``, full batch when its state has
``stop_reason`` (the common fields of ``optjx.full_batch._method``), minibatch otherwise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _tree
from optjx.full_batch import _implicit
from optjx.full_batch._common import StopReason
from optjx.full_batch.conjugate_gradient import ConjugateGradientState
from optjx.full_batch.lbfgs import LbfgsState

# torch's methods count the given value among an update's evaluations (torch's closure call
# at the start of step()); scipy's count only the calls they make.
_COUNTS_THE_GIVEN_VALUE = (LbfgsState, ConjugateGradientState)

_KINDS = ("minibatch", "full_batch", "least_squares")


class MinimizeInfo(NamedTuple):
    r"""What ``minimize`` reports with the params it returns.

    Attributes:
      value: the loss at the returned params (for least squares: half the sum of the
        squared residuals).
      grad_norm: $\max_i |g_i|$ at the returned params (scipy's ``gtol`` norm).
      stop_reason: an ``optjx.StopReason`` (int32): ``CONVERGED`` when the method
        reported convergence, ``NON_FINITE`` when it met a NaN or an Inf,
        ``LINE_SEARCH_FAILED`` when its line search found no acceptable step (another
        update would start from the same point and fail again; scipy stops there too),
        ``MAX_ITER`` when ``max_updates`` updates ran out first.
      updates: int32, calls of the method's ``update``.
      iterations: int32, the method's iterations over all updates (for a minibatch
        optimizer, one per update).
      evaluations: int32, loss-and-gradient evaluations (scipy's ``nfev``), the one at
        the starting point included; Hessian-vector products are not counted. For a
        least-squares method, its residual evaluations (MINPACK's ``nfev``); ``value``
        and ``grad_norm`` are then computed once more after the last update, uncounted.
    """

    value: jax.Array
    grad_norm: jax.Array
    stop_reason: jax.Array
    updates: jax.Array
    iterations: jax.Array
    evaluations: jax.Array


class _Carry(NamedTuple):
    params: Any
    state: Any
    value: jax.Array
    grad: Any
    updates: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    stop_reason: jax.Array


def _kind(method, state) -> str:
    try:
        takes_residuals = "residual_fn" in inspect.signature(method.update).parameters
    except (TypeError, ValueError):  # a builtin or C callable: not ours
        takes_residuals = False
    if takes_residuals:
        return "least_squares"
    return "full_batch" if hasattr(state, "stop_reason") else "minibatch"


def _loss_of(fun, kind: str):
    """``(params, args) -> scalar loss``: half the squared residuals for least squares."""
    if kind != "least_squares":
        return lambda params, args: fun(params, *args)

    def half_sum_of_squares(params, args):
        leaves = jax.tree.leaves(fun(params, *args))
        return 0.5 * sum(jnp.sum(jnp.square(r)) for r in leaves)

    return half_sum_of_squares


def _check_inputs(fun, params, args, kind: str):
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}.")
    if not isinstance(args, tuple):
        raise TypeError(
            f"minimize: args must be a tuple (fun is called as fun(params, *args)), got "
            f"{type(args).__name__}."
        )
    try:
        out = jax.eval_shape(lambda p, a: fun(p, *a), params, args)
    except Exception as error:  # the user's function: say what was passed, keep the cause
        raise ValueError(
            f"minimize: fun(params, *args) failed with params of structure "
            f"{jax.tree.structure(params)} and args of structure {jax.tree.structure(args)}: "
            f"{type(error).__name__}: {error}"
        ) from error
    if kind == "least_squares":
        return
    if isinstance(out, tuple | list):
        raise ValueError("minimize: fun must return the scalar loss alone, got a tuple.")
    if not (hasattr(out, "shape") and out.shape == ()):
        raise ValueError(
            f"minimize: fun must return a scalar loss, got shape {getattr(out, 'shape', out)}."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"minimize: fun must return a float loss, got dtype {out.dtype}.")


def _step(fun, method, kind: str, args, tolerance_grad):
    """One update of the method as a ``_Carry -> _Carry`` map."""
    loss = _loss_of(fun, kind)

    def value_fn(p):
        return loss(p, args)

    with_extra_args = optax.with_extra_args_support(method)

    def minibatch(c: _Carry) -> _Carry:
        # value= for the stages that read it (reduce_on_plateau); the others ignore it.
        updates, state = with_extra_args.update(c.grad, c.state, c.params, value=c.value)
        params = optax.apply_updates(c.params, updates)
        value, grad = jax.value_and_grad(value_fn)(params)
        reason = _minibatch_reason(value, grad, tolerance_grad)
        return _Carry(
            params, state, value, grad, c.updates + 1, c.iterations + 1, c.evaluations + 1, reason
        )

    def residual_fn(p):
        return fun(p, *args)

    def least_squares(c: _Carry) -> _Carry:
        updates, state = method.update(None, c.state, c.params, residual_fn=residual_fn)
        # The least-squares states keep no loss nor gradient: _run evaluates them once, at
        # the end, for the info. The update evaluated at its start itself.
        return c._replace(
            params=optax.apply_updates(c.params, updates),
            state=state,
            updates=c.updates + 1,
            iterations=c.iterations + state.iterations,
            evaluations=c.evaluations + state.evaluations,
            stop_reason=jnp.asarray(state.stop_reason, jnp.int32),
        )

    def full_batch(c: _Carry) -> _Carry:
        updates, state = method.update(c.grad, c.state, c.params, value=c.value, value_fn=value_fn)
        params = optax.apply_updates(c.params, updates)
        grad = jax.tree.map(lambda new, old: jnp.asarray(new, old.dtype), state.grad, c.grad)
        made = (
            state.evaluations - 1
            if isinstance(state, _COUNTS_THE_GIVEN_VALUE)
            else state.evaluations
        )
        return _Carry(
            params,
            state,
            jnp.asarray(state.value, c.value.dtype),
            grad,
            c.updates + 1,
            c.iterations + state.iterations,
            c.evaluations + made,
            jnp.asarray(state.stop_reason, jnp.int32),
        )

    return {"minibatch": minibatch, "full_batch": full_batch, "least_squares": least_squares}[kind]


def _max_abs(tree) -> jax.Array:
    return _tree.max_abs(tree, _tree.reduction_dtype(tree))


def _minibatch_reason(value, grad, tolerance_grad) -> jax.Array:
    """CONVERGED when max|g| <= tolerance_grad, NON_FINITE on a NaN or an Inf, else 0."""
    reason = jnp.where(
        _max_abs(grad) <= tolerance_grad, StopReason.CONVERGED, StopReason.NOT_STARTED
    )
    finite = jnp.isfinite(value) & _tree.all_finite(grad)
    return jnp.where(finite, reason, StopReason.NON_FINITE).astype(jnp.int32)


# The stop reasons after which another update would not move: minimize stops on them.
_FINAL = (StopReason.CONVERGED, StopReason.NON_FINITE, StopReason.LINE_SEARCH_FAILED)


def _final(reason) -> jax.Array:
    return jnp.isin(reason, jnp.asarray(_FINAL, jnp.int32))


def _run(fun, params, method, args, max_updates: int, tolerance_grad):
    """The loop itself: ``(params, info)``; not differentiable in reverse mode."""
    state = method.init(params)
    kind = _kind(method, state)
    value, grad = jax.value_and_grad(_loss_of(fun, kind))(params, args)
    zero = jnp.zeros((), jnp.int32)
    if kind == "minibatch":
        start_reason = _minibatch_reason(value, grad, tolerance_grad)
    else:  # the method tests the start itself (and reports a non-finite one)
        start_reason = zero
    # A least-squares update evaluates at its start itself: the evaluation here is counted
    # only when no update runs.
    first = zero if kind == "least_squares" else zero + 1
    carry = _Carry(params, state, value, grad, zero, zero, first, start_reason)
    step = _step(fun, method, kind, args, tolerance_grad)

    def go_on(c: _Carry):
        return (c.updates < max_updates) & ~_final(c.stop_reason)

    carry = jax.lax.while_loop(go_on, step, carry)
    if kind == "least_squares":
        # For the info only (the half sum of squares and J^T r at the result): not counted
        # in evaluations, which stay the method's own (MINPACK's nfev).
        value, grad = jax.value_and_grad(_loss_of(fun, kind))(carry.params, args)
        carry = carry._replace(value=value, grad=grad)
    reason = jnp.where(_final(carry.stop_reason), carry.stop_reason, StopReason.MAX_ITER)
    reason = reason.astype(jnp.int32)
    info = MinimizeInfo(
        carry.value,
        _max_abs(carry.grad),
        reason,
        carry.updates,
        carry.iterations,
        jnp.maximum(carry.evaluations, 1),
    )
    return carry.params, info


def minimize(
    fun: Callable[..., Any],
    params: Any,
    method: optax.GradientTransformation,
    *,
    args: tuple = (),
    max_updates: int = 100,
    implicit_diff: bool = False,
    tolerance_grad: float = 1e-5,
) -> tuple[Any, MinimizeInfo]:
    r"""Minimise ``fun(params, *args)`` over ``params`` with any optjx optimizer.

    A ``lax.while_loop`` of the method's updates (jitted: the whole run is one XLA
    computation, compiled once per ``fun`` and ``method`` object and per shapes: build the
    method once, not in every call, to reuse the compilation), stopped when the
    method reports convergence (``state.stop_reason == CONVERGED``, for a minibatch
    optimizer: $\max_i |g_i| \le$ ``tolerance_grad``), when it meets a NaN or an Inf,
    when its line search fails (``LINE_SEARCH_FAILED``: the next update would fail from
    the same point), or after ``max_updates`` updates.

    * A full-batch method (``optjx.lbfgs()``, ``optjx.conjugate_gradient()``, every method
      whose state carries ``stop_reason``) gets ``update(grads, state, params, value=,
      value_fn=)``; its own ``max_iter`` iterations run inside each update, and the value
      and gradient it returns seed the next one (never evaluated twice).
    * A least-squares method (its ``update`` takes ``residual_fn=``): ``fun`` returns the
      residuals (an array or a tree); the loss is $\tfrac12 \sum_i r_i^2$.
    * Any other transformation (``optjx.adam(1e-2)``) is driven full batch: one
      loss-and-gradient evaluation and one update per step.

    Differentiation:

    * ``implicit_diff=True``: the returned params are differentiable with respect to
      ``args`` (any mode, any order of ``jax.grad``/``jax.jacrev``) by the implicit
      function theorem at the solution $x^*(\theta)$ of $\nabla_x f(x^*, \theta) = 0$:
      $\partial x^* / \partial\theta = -H^{-1} \partial_\theta \nabla_x f$, with
      $H = \nabla_x^2 f(x^*, \theta)$; the vector-Jacobian product solves $H v = \bar x$
      by conjugate gradients on Hessian-vector products (forward over reverse, no
      Hessian formed) and returns $-(\partial_\theta \nabla_x f)^\top v$. Exact when
      the method has converged and $H$ is positive definite. ``info.value`` is
      differentiable too (envelope theorem); ``info.grad_norm`` is not (a stop-gradient).
      Differentiate through ``args`` only: a value ``fun`` closes over is a constant.
    * ``implicit_diff=False``: forward mode (``jax.jvp``, ``jax.jacfwd``) differentiates
      the unrolled loop exactly; reverse mode (``jax.grad``) is impossible through a
      ``while_loop`` and JAX raises "Reverse-mode differentiation does not work for
      lax.while_loop": pass ``implicit_diff=True``.

    Args:
      fun: ``fun(params, *args)`` returning a float scalar loss (residuals for a
        least-squares method).
      params: the starting point, a pytree of float arrays.
      method: an optimizer instance: ``optjx.lbfgs()``, ``optjx.conjugate_gradient()``,
        ``optjx.adam(1e-2)``, ...
      args: a tuple of extra arguments of ``fun``, pytrees; what ``implicit_diff``
        differentiates.
      max_updates: calls of ``method.update``, int $\ge 0$, default 100.
      implicit_diff: differentiate the solution by the implicit function theorem.
      tolerance_grad: for minibatch optimizers only: converged when $\max_i |g_i| \le$
        it, $\ge 0$, default ``1e-5`` (scipy's BFGS ``gtol``). Full-batch methods use
        their own tolerances.

    Returns:
      ``(params, info)``: the last params, and a ``MinimizeInfo``.

    Raises:
      TypeError: ``fun`` not callable, ``args`` not a tuple, ``max_updates`` not an int.
      ValueError: ``fun(params, *args)`` fails or returns no float scalar (a wrong
        ``args`` tree says so), ``max_updates < 0``, ``tolerance_grad < 0``.

    Examples:
      >>> import jax.numpy as jnp, optjx
      >>> fun = lambda x, a: jnp.sum((x - a) ** 2)
      >>> x, info = optjx.minimize(fun, jnp.zeros(2), optjx.lbfgs(), args=(jnp.ones(2),))
      >>> bool(info.stop_reason == optjx.StopReason.CONVERGED), x.round(4).tolist()
      (True, [1.0, 1.0])
    """
    if isinstance(max_updates, bool) or not isinstance(max_updates, int):
        raise TypeError(f"minimize: max_updates must be an int, got {max_updates!r}.")
    if max_updates < 0:
        raise ValueError(f"minimize: max_updates must be >= 0, got {max_updates}.")
    if isinstance(tolerance_grad, int | float) and not tolerance_grad >= 0:
        raise ValueError(f"minimize: tolerance_grad must be >= 0, got {tolerance_grad}.")
    if not hasattr(method, "init") or not hasattr(method, "update"):
        raise TypeError(
            f"minimize: method must be an optimizer instance (e.g. optjx.lbfgs()), got {method!r}."
        )
    kind = _kind(method, jax.eval_shape(method.init, params))
    _check_inputs(fun, params, args, kind)
    if not implicit_diff:
        return _jitted_run(fun, params, method, args, max_updates, tolerance_grad)

    def solve(params, args):
        return _jitted_run(fun, params, method, args, max_updates, tolerance_grad)

    loss = _loss_of(fun, kind)
    solution, info = _implicit.solution(solve, loss, params, args)
    info = info._replace(
        value=loss(solution, args), grad_norm=jax.lax.stop_gradient(info.grad_norm)
    )
    return solution, info


_jitted_run = jax.jit(_run, static_argnums=(0, 2, 4))
