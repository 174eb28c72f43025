"""Gauss-Newton for least squares: full steps on the linearised residuals."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _hyper, _state
from optjx.full_batch import _common as c
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._lmpar_cg import Linearised
from optjx.full_batch.least_squares import check_dense, least_squares_transformation

StopTest = c.StopTest  # the detailed test; the state reports its coarse c.StopReason


class GaussNewtonState(NamedTuple):
    """Gauss-Newton state: counters and why the last update stopped (no memory).

    Attributes:
      count: updates applied (the argument of a scheduled hyperparameter).
      n_iter: iterations (steps) over all updates.
      func_evals: residual-and-Jacobian evaluations over all updates.
      iterations: iterations in the last update.
      evaluations: evaluations in the last update (the one at the given params included).
      stop_reason: an ``optjx.StopReason``, why the last update stopped.
      stop_test: the detailed test that stopped it (a ``StopTest``).
      grad_norm: $\\max_i |(J^\\top f)_i|$ at the last evaluated point.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    n_iter: jax.Array
    func_evals: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    stop_reason: jax.Array
    stop_test: jax.Array
    grad_norm: jax.Array


def _dense_step(jac, f):
    """The least-squares solution of ``J p = -f`` by SVD, the columns of ``J`` scaled to
    unit norm first (so that parameters of very different scales, e.g. ``1e2`` and
    ``1e-4``, do not look rank deficient to the SVD's cut-off in float32); when ``J`` is
    rank deficient, the solution of least scaled norm ``||D p||``, ``D`` the column norms."""
    norms = jnp.sqrt(jnp.sum(jac * jac, axis=0))
    norms = jnp.where(norms == 0, 1, norms)
    return jnp.linalg.lstsq(jac / norms, -f)[0] / norms


@compiled_when_eager
def gauss_newton(
    *,
    max_iter: int = 20,
    tolerance_grad: float = 1e-8,
    solver: str = "dense",
    cg_max_iter: Optional[int] = None,
    cg_tolerance: float = 1e-10,
) -> optax.GradientTransformationExtraArgs:
    r"""Gauss-Newton for $\min_x \tfrac12 \lVert f(x) \rVert^2$, $f$ = ``residual_fn(params)``.

    Each iteration linearises the residuals at $x_k$ and takes the full step to the
    minimiser of the linear model (the Gauss-Newton normal equations):

    $$
    J_k^\top J_k\, p_k = -J_k^\top f_k, \qquad x_{k+1} = x_k + p_k,
    $$

    $J_k$ the Jacobian of $f$ at $x_k$ ($p_k$ of least scaled norm when $J_k$ is rank deficient).
    There is no line search and no damping: near a zero-residual solution with $J$ of full
    rank the convergence is quadratic; far from it, or with large residuals, a step may
    increase the loss (use ``levenberg_marquardt`` then). One ``update`` runs up to
    ``max_iter`` iterations and stops early when $\max_i |(J_k^\top f_k)_i| \le$
    ``tolerance_grad`` (the gradient of the loss; ``TOLERANCE_GRAD_AT_START`` when it
    holds at the given params). A NaN or Inf in the residuals or the Jacobian stops the
    update: zero update, ``NON_FINITE``.

    ``solver="dense"`` forms $J$ ($n$ Jacobian-vector products, ``jax.jacfwd``) and solves
    the linear least-squares problem by SVD (``jnp.linalg.lstsq``, columns scaled to unit
    norm); $m n \le 10^8$ entries, else a ``ValueError``. ``solver="cg"`` never forms $J$: conjugate gradients
    on $J^\top J p = -J^\top f$ with one Jacobian-vector and one vector-Jacobian product
    per CG iteration (``jax.linearize`` and its transpose), for large problems; the
    normal equations square $J$'s condition number, so ill-conditioned problems want
    float64 there.

    References:
      Nocedal & Wright (2006), *Numerical Optimization*, 2nd ed., section 10.3 (eq. 10.23);
      Björck (1996), *Numerical Methods for Least Squares Problems*, section 9.2.

    Args:
      max_iter: iterations per update, int $\ge 1$, default 20.
      tolerance_grad: $\ge 0$ (a number, array or schedule of the update count), default
        ``1e-8``.
      solver: ``"dense"`` or ``"cg"``.
      cg_max_iter: CG iterations per step (``solver="cg"``), int $\ge 1$; default $n$.
      cg_tolerance: CG's tolerance on the relative residual of the normal equations,
        $\ge 0$ (a number, array or schedule), default ``1e-10``.

    Returns:
      A ``GradientTransformationExtraArgs`` with a ``GaussNewtonState``.
      ``update(grads, state, params, *, residual_fn)``; ``grads`` may be ``None`` (unused:
      the method forms $J^\top f$); other keywords are ignored.

    Raises:
      ValueError: a hyperparameter out of range, a missing ``residual_fn`` or params.
      TypeError: a hyperparameter of the wrong type; complex or non-numeric residuals.

    Differences from scipy and optax:
      scipy has no plain Gauss-Newton; optax has none (its PR 920 is unmerged);
      optimistix's ``GaussNewton`` adds a line search or trust region.

    Examples:
      >>> import jax.numpy as jnp, optax, optjx
      >>> t = jnp.arange(5.0)
      >>> fn = lambda p: p["a"] * jnp.exp(p["b"] * t) - 2.0 * jnp.exp(-0.5 * t)
      >>> params = {"a": jnp.asarray(1.5), "b": jnp.asarray(-0.3)}
      >>> opt = optjx.gauss_newton()
      >>> updates, state = opt.update(None, opt.init(params), params, residual_fn=fn)
      >>> params = optax.apply_updates(params, updates)
      >>> round(float(params["a"]), 6), round(float(params["b"]), 6)
      (2.0, -0.5)
    """
    c.check_int("max_iter", max_iter, 1)
    hypers = _hyper.Hyperparameters(
        tolerance_grad=(tolerance_grad, _hyper.NONNEGATIVE),
        cg_tolerance=(cg_tolerance, _hyper.NONNEGATIVE),
    )
    if solver not in ("dense", "cg"):
        raise ValueError(f'solver must be "dense" or "cg", got {solver!r}')
    if cg_max_iter is not None:
        c.check_int("cg_max_iter", cg_max_iter, 1)

    def init_fn(trained, n, dtype):
        return GaussNewtonState(**c.not_started(GaussNewtonState), grad_norm=jnp.zeros([], dtype))

    def step_fn(state: GaussNewtonState, problem, x):
        residuals, n = problem.residuals, problem.size
        hp = hypers.at(state.count)  # compared with, never mixed into, the iterates
        f_shape = jax.eval_shape(residuals, x).shape

        def evaluate_and_step(x):
            """The gradient's max norm, finiteness and the Gauss-Newton step at ``x``."""
            if solver == "dense":
                check_dense("gauss_newton", f_shape[0], n)
                jac, f = jax.jacfwd(lambda v: (residuals(v), residuals(v)), has_aux=True)(x)
                grad = jac.T @ f
                finite = jnp.all(jnp.isfinite(jac)) & jnp.all(jnp.isfinite(f))
                return jnp.max(jnp.abs(grad), initial=0), finite, _dense_step(jac, f)
            lin = Linearised(residuals, x, cg_max_iter or n, hp.cg_tolerance)
            p = lin.solve(None, None, -lin.jtf)
            finite = jnp.all(jnp.isfinite(lin.f)) & jnp.all(jnp.isfinite(lin.jtf))
            return jnp.max(jnp.abs(lin.jtf), initial=0), finite, p

        class Carry(NamedTuple):
            x: jax.Array
            iterations: jax.Array
            evaluations: jax.Array
            grad_norm: jax.Array
            reason: jax.Array

        def body(s: Carry) -> Carry:
            grad_norm, finite, p = evaluate_and_step(s.x)
            converged = grad_norm <= hp.tolerance_grad
            reason = jnp.where(
                converged,
                jnp.where(s.iterations == 0, StopTest.TOLERANCE_GRAD_AT_START,
                          StopTest.TOLERANCE_GRAD),
                -1,
            )  # fmt: skip
            moving = ~converged & finite
            iterations = s.iterations + moving
            reason = jnp.where(moving & (iterations == max_iter), StopTest.MAX_ITER, reason)
            reason = jnp.where(finite, reason, StopTest.NON_FINITE).astype(jnp.int32)
            new_x = jnp.where(moving, s.x + p, s.x)
            return Carry(new_x, iterations, s.evaluations + 1, grad_norm.astype(x.dtype), reason)

        zero = _state.zero_count()
        out = lax.while_loop(lambda s: s.reason < 0, body,
                             Carry(x, zero, zero, jnp.zeros([], x.dtype), zero - 1))  # fmt: skip
        failed = out.reason == StopTest.NON_FINITE
        new_state = GaussNewtonState(
            count=_state.next_count(state.count),
            n_iter=_state.saturating_add(state.n_iter, jnp.where(failed, 0, out.iterations)),
            func_evals=_state.saturating_add(state.func_evals, out.evaluations),
            iterations=out.iterations,
            evaluations=out.evaluations,
            **c.stopped_by(out.reason),
            grad_norm=out.grad_norm,
        )
        return jnp.where(failed, x, out.x), new_state

    return least_squares_transformation("gauss_newton", init_fn, step_fn)
