"""BFGS, iterate for iterate as ``scipy.optimize.minimize(method="BFGS")``."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _tree
from optjx.full_batch import _bfgs_loop as loop
from optjx.full_batch import _calling
from optjx.full_batch import _common as c
from optjx.full_batch import _scipy_loop as scipy_loop
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._packing import Packing
from optjx.typing import Hyperparameter


class BfgsState(NamedTuple):
    r"""BFGS state: scipy's loop variables between updates, counters and diagnostics.

    Attributes:
      count: updates applied (the argument of a scheduled hyperparameter).
      n_iter: scipy's ``nit``, iterations over all updates.
      func_evals: scipy's ``nfev``: the first update's given value and every call of the
        loss since (later updates' given values repeat the last evaluation: not counted).
      grad_evals: scipy's ``njev``, counted likewise.
      iterations: iterations in the last update.
      evaluations: calls of ``value_fn``'s value and gradient in the last update.
      stop_reason: a ``optjx.StopReason``, why the last update stopped.
      stop_test: a ``StopTest``, which test stopped it (``TOLERANCE_GRAD_AT_START``,
        ``TOLERANCE_GRAD``, ``TOLERANCE_CHANGE_STEP``, ``MAX_ITER``, ``MAX_EVAL``,
        ``LINE_SEARCH_FAILED``, ``NON_FINITE``).
      step_size: $t$ of the last iteration.
      direction: $d = -H g$ of the last iteration, a tree like the params.
      value: $f$ at the returned params (scipy's ``old_fval``); $+\infty$ before the first
        update, as optax's ``value_and_grad_from_state`` expects.
      grad: $\nabla f$ at the returned params, a tree like the params.
      prev_value: $f$ before the last step (scipy's ``old_old_fval``), from which the next
        line search takes its first trial step.
      inverse_hessian: $H$, one ``(n, n)`` matrix over every trained parameter (the packed
        dtype groups concatenated), in the scalar dtype (the widest float of the params,
        at least float32).

    Examples:
      >>> import jax.numpy as jnp, optjx
      >>> state = optjx.bfgs().init({"w": jnp.zeros((2, 3)), "b": jnp.zeros(2)})
      >>> state.inverse_hessian.shape
      (8, 8)
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    n_iter: jax.Array
    func_evals: jax.Array
    grad_evals: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    stop_reason: jax.Array
    stop_test: jax.Array
    step_size: jax.Array
    direction: Any
    value: jax.Array
    grad: Any
    prev_value: jax.Array
    inverse_hessian: jax.Array


@compiled_when_eager
def bfgs(
    *,
    max_iter: int = 20,
    max_eval: Optional[int] = None,
    tolerance_grad: Hyperparameter = 1e-5,
    tolerance_step: Hyperparameter = 0.0,
    c1: float = 1e-4,
    c2: float = 0.9,
) -> optax.GradientTransformationExtraArgs:
    r"""BFGS with a dense inverse Hessian: updates repeated to convergence are one scipy run.

    From $H_0 = I$, iteration $k$ takes the direction $d_k = -H_k g_k$, a step $t_k$ from
    ``optjx.more_thuente`` (MINPACK-2's ``dcsrch``, $c_1$, $c_2$, with scipy's
    strong-Wolfe fallback) started at

    $$
    t^{(0)}_k = \min\Bigl(1, \frac{2.02\,(f_k - f_{k-1})}{g_k^\top d_k}\Bigr)
    \ (\text{1 if negative}), \qquad f_{-1} = f_0 + \tfrac12 \lVert g_0 \rVert_2,
    $$

    then $x_{k+1} = x_k + t_k d_k$, $s = t_k d_k$, $y = g_{k+1} - g_k$ and

    $$
    H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top,
    \qquad \rho = 1 / y^\top s \ (1000 \text{ when } y^\top s = 0)
    $$

    (Nocedal & Wright, eq. 6.17), computed in $O(n^2)$. This is scipy 1.17.1's
    ``_minimize_bfgs``, test for test: before the first iteration and after each step it
    stops when $\max_i |g_i| \le$ ``tolerance_grad``; after a step when
    $t \lVert d \rVert_2 \le x_{rtol} (x_{rtol} + \lVert x_{k+1} \rVert_2)$
    (``tolerance_step``; $H$ is then not updated, as in scipy); when the line search finds
    no step (``LINE_SEARCH_FAILED``, scipy's "precision loss": params stay at $x_k$).
    One ``update`` runs up to ``max_iter`` iterations; $H$, $f_{k-1}$ and the counters
    carry over, so updates repeated until ``stop_reason`` is ``CONVERGED`` (``stop_test``
    ``TOLERANCE_GRAD`` or ``TOLERANCE_GRAD_AT_START``) give scipy's iterates, values and ``nfev``/``njev``.

    | ``scipy.optimize.minimize`` | ``optjx.bfgs`` |
    |---|---|
    | ``method="BFGS"``, ``jac`` | ``update(grads, state, params, value=, value_fn=)`` |
    | ``jac=True`` (``fun`` returns both) | ``update(None, state, params, value_and_grad_fn=)`` |
    | ``gtol=1e-5`` | ``tolerance_grad=1e-5`` (on $\lVert g \rVert_\infty$) |
    | ``norm=inf`` | fixed: the infinity norm |
    | ``maxiter=200 n`` | the number of updates times ``max_iter`` |
    | ``xrtol=0`` | ``tolerance_step=0.0`` |
    | ``c1=1e-4``, ``c2=0.9`` | ``c1=1e-4``, ``c2=0.9`` |
    | ``hess_inv0=None`` ($I$) | $H_0 = I$ (``state.inverse_hessian`` may be replaced) |
    | ``callback`` | the loop around ``update`` (``max_iter=1``: every iterate) |
    | ``res.nit, nfev, njev`` | ``state.n_iter, func_evals, grad_evals`` |
    | ``res.hess_inv`` | ``state.inverse_hessian`` |

    Memory and time grow as $n^2$: meant for problems up to about $10^4$ parameters (an
    $n = 10^4$ float64 $H$ takes 800 MB); beyond, use ``optjx.lbfgs``.

    References:
      Broyden (1970), Fletcher (1970), Goldfarb (1970), Shanno (1970); Nocedal & Wright
      (2006), "Numerical Optimization", Algorithm 6.1 and eq. (6.17); Moré & Thuente (1994);
      scipy 1.17.1 ``scipy/optimize/_optimize.py`` (``_minimize_bfgs``).

    Args:
      max_iter: iterations per update, int $\ge 1$, default 20.
      max_eval: stop the update after the iteration in which its evaluations reach this
        (int $\ge 1$); default ``None``, no limit (scipy has none). The line search itself
        is never cut short, so the iterates stay scipy's.
      tolerance_grad: $\ge 0$ (number, array or schedule of the update count), default
        ``1e-5`` (scipy's ``gtol``).
      tolerance_step: $\ge 0$, default ``0`` (scipy's ``xrtol``).
      c1: sufficient-decrease constant, default ``1e-4`` (a number, array or schedule).
      c2: curvature constant, default ``0.9``; ``0 < c1 < c2 < 1``.

    Returns:
      A ``GradientTransformationExtraArgs`` with a ``BfgsState``;
      ``update(grads, state, params, *, value=None, value_fn=None,
      value_and_grad_fn=None)`` as ``optjx.lbfgs``: exactly one of ``value_fn`` (the
      loss of the params alone, deterministic) and ``value_and_grad_fn`` (returning
      ``(loss, grads)``: one call per trial point); ``grads=None`` computes the value and
      gradient at ``params`` (torch's ``step(closure)``), ``value=None`` the value. A
      trial of the line search with a NaN or Inf value or gradient is a failed trial that
      shrinks the step toward the last finite point (see ``optjx.more_thuente``). A
      NaN or Inf given value or gradient, or a line search with no finite trial, stops
      the update: the update is zero, the state keeps its matrix, ``stop_reason`` is
      ``NON_FINITE``.

    Raises:
      ValueError: a hyperparameter out of range, a missing ``value_fn`` or params, a
        non-scalar loss, gradients that do not match the state.
      TypeError: a hyperparameter of the wrong type.

    Differences from scipy and optax:
      scipy rounds the matrix product $(I - \rho s y^\top) H (I - \rho y s^\top)$ its own
      way, and its sums run in another order: iterates agree to about ``1e-12``, not to
      the bit. Mixed dtypes share one $H$ in the scalar dtype. optax has no BFGS.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optjx
      >>> loss = lambda p: jnp.sum((p["x"] - 1.0) ** 2) + jnp.sum(p["x"] ** 4)
      >>> params = {"x": jnp.zeros(3)}
      >>> opt = optjx.bfgs()
      >>> state = opt.init(params)
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
      >>> params = optax.apply_updates(params, updates)
      >>> optjx.stop_reason(state), int(state.n_iter) < 20
      ('CONVERGED', True)
      >>> _, state = opt.update(None, opt.init(params), params, value_fn=loss)
      >>> bool(state.stop_reason == optjx.StopReason.CONVERGED)
      True
    """
    open_unit = _hyper.Range(0.0, 1.0, low_inclusive=False, high_inclusive=False)
    hypers = _hyper.Hyperparameters(
        tolerance_grad=(tolerance_grad, _hyper.NONNEGATIVE),
        tolerance_step=(tolerance_step, _hyper.NONNEGATIVE),
        c1=(c1, open_unit),
        c2=(c2, open_unit),
    )
    c.check_budget(max_iter, max_eval)
    if _hyper.is_concrete(c1) and _hyper.is_concrete(c2) and not float(c1) < float(c2):
        raise ValueError(f"c1 must be smaller than c2 (0 < c1 < c2 < 1), got c1={c1}, c2={c2}")

    def init_fn(params):
        dtype = c.scalar_dtype(params)
        n = sum(Packing(params).lengths)
        return BfgsState(
            **c.not_started(BfgsState), step_size=jnp.zeros([], dtype),
            direction=_tree.zeros_like(params), value=jnp.full([], jnp.inf, dtype),
            grad=_tree.zeros_like(params), prev_value=jnp.zeros([], dtype),
            inverse_hessian=jnp.eye(n, dtype=dtype),
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        hp = hypers.at(state.count)
        packing = Packing(params)
        g = packing.pack(grads)
        first = state.n_iter == 0
        # scipy's first trial step: "sets the initial step guess to dx ~ 1".
        f_prev = jnp.where(first, value + c.norm(g, dtype) / 2, state.prev_value)
        tolerance = jnp.asarray(hp.tolerance_grad, dtype)
        reason = c.start_test(value, g, c.max_abs(g, dtype) <= tolerance)
        zero = jnp.zeros([], jnp.int32)
        carry = loop.Carry(packing.pack(params), g, value, f_prev, state.inverse_hessian,
                           state.step_size, packing.pack(state.direction), zero, zero, zero,
                           reason)  # fmt: skip
        if packing.lengths:  # else no trained leaves: nothing to iterate (nor to trace)
            carry = loop.iterate(carry, value_and_grad, packing, dtype,
                                 c1=jnp.asarray(hp.c1, dtype), c2=jnp.asarray(hp.c2, dtype),
                                 tolerance_grad=tolerance,
                                 tolerance_step=jnp.asarray(hp.tolerance_step, dtype),
                                 max_iter=max_iter, max_eval=max_eval)  # fmt: skip
        kept = dict(step_size=carry.t, direction=packing.unpack(carry.d),
                    grad=packing.unpack(carry.g), inverse_hessian=carry.h)  # fmt: skip
        return scipy_loop.finish(state, params, carry._replace(x=packing.unpack(carry.x)),
                                 kept=kept)  # fmt: skip

    return _calling.transformation("bfgs", init_fn, step_fn)
