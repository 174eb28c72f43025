"""Levenberg-Marquardt as MINPACK's ``lmder`` computes it (what scipy's
``least_squares(method="lm")`` and ``leastsq`` call)."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _hyper, _state
from optjx.full_batch import _common as c
from optjx.full_batch import _lmpar, _lmpar_cg, _minpack
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._lmder import REASON_OF_INFO, Trial, trial_step
from optjx.full_batch.least_squares import check_dense, least_squares_transformation

StopTest = c.StopTest  # the detailed test; the state reports its coarse c.StopReason


class LevenbergMarquardtState(NamedTuple):
    r"""Levenberg-Marquardt state: MINPACK ``lmder``'s variables that outlive an iteration.

    Attributes:
      count: updates applied (the argument of a scheduled hyperparameter).
      n_iter: iterations (Jacobian evaluations, MINPACK's ``njev``) over all updates.
      func_evals: residual evaluations over all updates (each update's first included).
      iterations: iterations in the last update.
      evaluations: residual evaluations in the last update (its first included: MINPACK's
        ``nfev`` when one update runs the whole solve).
      stop_reason: an ``optjx.StopReason``, why the last update stopped.
      stop_test: the detailed test that stopped it (a ``StopTest``).
      info: MINPACK's ``info`` of the last update: 1 ``ftol``, 2 ``xtol``, 3 both, 4
        ``gtol``, 5 ``max_eval``, 6/7/8 ``ftol``/``xtol``/``gtol`` below machine
        precision; 0 when it stopped at ``max_iter`` or on a NaN.
      successes: accepted steps over all updates (MINPACK's ``iter - 1``); the scaling
        ``diag`` and the radius are initialised while it is 0.
      par: the Levenberg-Marquardt parameter $\lambda$ of the last step.
      delta: the trust radius $\Delta$ on $\lVert D p \rVert$.
      diag: the scaling $D$, one entry per trained parameter (flat, in tree order).
      xnorm: $\lVert D x \rVert$ at the current point.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    n_iter: jax.Array
    func_evals: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    stop_reason: jax.Array
    stop_test: jax.Array
    info: jax.Array
    successes: jax.Array
    par: jax.Array
    delta: jax.Array
    diag: jax.Array
    xnorm: jax.Array


@compiled_when_eager
def levenberg_marquardt(
    *,
    max_iter: int = 20,
    ftol: float = 1.49012e-8,
    xtol: float = 1.49012e-8,
    gtol: float = 0.0,
    max_eval: Optional[int] = None,
    factor: float = 100.0,
    diag: Optional[jax.Array] = None,
    solver: str = "dense",
    cg_max_iter: Optional[int] = None,
    cg_tolerance: float = 1e-10,
) -> optax.GradientTransformationExtraArgs:
    r"""Levenberg-Marquardt for least squares, iterate for iterate as MINPACK's ``lmder``.

    Minimises $\tfrac12 \lVert f(x) \rVert^2$ for residuals $f$ = ``residual_fn(params)``
    (an array or a tree) with the trust-region form of the damping (Moré 1978). With $J$
    the Jacobian at $x$ and $D$ a diagonal scaling, the step $p$ solves

    $$
    \min_p \lVert J p + f \rVert \quad \text{s.t.} \quad \lVert D p \rVert \le \Delta,
    \qquad \text{i.e.} \qquad (J^\top J + \lambda D^\top D)\, p = -J^\top f,
    $$

    with $\lambda = 0$ when the Gauss-Newton step fits ($\lVert D p \rVert \le 1.1 \Delta$),
    else $\lambda > 0$ such that $|\lVert D p \rVert - \Delta| \le 0.1 \Delta$ (MINPACK's
    ``lmpar``: Newton's method on $\lVert D p(\lambda) \rVert - \Delta$, safeguarded, at
    most 10 tries). With $\rho$ the actual over the predicted reduction of
    $\lVert f \rVert^2$: $\rho \le 1/4$ shrinks $\Delta$ (by $1/2$, or by the minimiser of a
    quadratic model, within $[1/10, 1/2]$) and multiplies $\lambda$ by the inverse factor;
    $\rho \ge 3/4$ (or $\lambda = 0$) sets $\Delta = 2 \lVert D p \rVert$ and halves
    $\lambda$; the step is accepted when $\rho \ge 10^{-4}$. $D$ (MINPACK's ``mode=1``)
    starts as the column norms of $J$ (1 for a zero column) and then is their running
    maximum; $\Delta_0 = \text{factor} \cdot \lVert D x_0 \rVert$ (``factor`` if that is 0).

    One ``update`` runs up to ``max_iter`` iterations (an iteration evaluates $J$ once, then
    tries steps until one is accepted) and stops early, as ``lmder``: ``info`` 1 when
    both the actual and predicted relative reductions are $\le$ ``ftol``; 2 when
    $\Delta \le$ ``xtol`` $\lVert D x \rVert$; 3 for both; 4 when the cosine between $f$
    and every column of $J$ is $\le$ ``gtol`` (tested before each iteration's steps); 5
    after ``max_eval`` residual evaluations in the update; 6, 7, 8 when ``ftol``, ``xtol``,
    ``gtol`` are too small (machine precision). Everything ``lmder`` carries between
    iterations ($\lambda$, $\Delta$, $D$) is in the state, so a run of updates is one
    ``lmder`` run: run updates until ``stop_reason`` is not ``MAX_ITER``. A NaN or Inf in
    the residuals or the Jacobian at the start of an iteration stops the update
    (``NON_FINITE``: zero update, state kept); a non-finite *trial* is a rejected step, as
    in MINPACK.

    ``solver="dense"`` (default) forms $J$ with $n$ Jacobian-vector products
    (``jax.jacfwd`` on the flat vector of the trained params) and factors it by MINPACK's
    Householder QR with column pivoting, then ``lmpar`` and ``qrsolv`` (Givens
    rotations); $O(m n^2)$ per iteration, limited to $m n \le 10^8$ entries in $J$ (else
    a ``ValueError``). ``solver="cg"``, for large problems, never forms $J$: ``lmpar``'s
    iteration on $\lambda$ with each damped system $(J^\top J + \lambda D^2) p =
    -J^\top f$ (and each Newton correction) solved by conjugate gradients on one
    Jacobian-vector and one vector-Jacobian product per CG iteration; the same method to
    the CG tolerance. Without $J$'s column norms it scales by ``diag`` (default: $D = I$,
    not MINPACK's ``mode=1``) and ``gtol`` tests $\max_j |(J^\top f)_j| / \lVert f
    \rVert$.

    References:
      Moré (1978), "The Levenberg-Marquardt algorithm: implementation and theory", Lecture
      Notes in Mathematics 630; Moré, Garbow & Hillstrom (1980), *User Guide for
      MINPACK-1* (``lmder``, ``lmpar``, ``qrfac``, ``qrsolv``); Levenberg (1944); Marquardt
      (1963).

    Args:
      max_iter: iterations (Jacobian evaluations) per update, int $\ge 1$, default 20.
      ftol: relative reduction tolerance, $\ge 0$ (MINPACK's default ``1.49012e-8``).
      xtol: relative step tolerance, $\ge 0$ (MINPACK's default ``1.49012e-8``).
      gtol: orthogonality tolerance, $\ge 0$ (MINPACK's default 0).
      max_eval: residual evaluations per update, int $\ge 1$ (or a traced integer, not
        checked); default ``100 n`` (``least_squares``'s ``max_nfev``), $n$ the number of
        trained parameters.
      factor: initial radius factor, $> 0$ (MINPACK's default 100). It, ``ftol``,
        ``xtol``, ``gtol`` and ``cg_tolerance`` are each a number, an array or a schedule
        of the update count (``state.count``).
      diag: ``None`` (MINPACK's ``mode=1``: scaling from the Jacobian's columns) or a
        positive array of the $n$ scale factors (``mode=2``; scipy's ``1 / x_scale``).
      solver: ``"dense"`` or ``"cg"``.
      cg_max_iter: CG iterations per linear solve (``solver="cg"``), int $\ge 1$;
        default $n$.
      cg_tolerance: CG's relative residual tolerance (``solver="cg"``), $\ge 0$, default
        ``1e-10``.

    Returns:
      A ``GradientTransformationExtraArgs`` with a ``LevenbergMarquardtState``.
      ``update(grads, state, params, *, residual_fn)``: ``grads`` may be ``None`` (it is
      not used: the method forms $J^\top f$ itself); other keywords are ignored.

    Raises:
      ValueError: a hyperparameter out of range, a missing ``residual_fn`` or params,
        fewer residuals than trained parameters with ``solver="dense"``.
      TypeError: a hyperparameter of the wrong type; complex or non-numeric residuals.

    Differences from scipy and optax:
      scipy's ``least_squares(method="lm")`` defaults to ``ftol = xtol = gtol = 1e-8``
      and refuses ``gtol < eps``; ``leastsq`` has MINPACK's defaults, as here. optax has
      no Levenberg-Marquardt (its PR 920 is unmerged); optimistix's ``LevenbergMarquardt``
      uses a different damping rule.

    Examples:
      >>> import jax.numpy as jnp, optax, optjx
      >>> t = jnp.arange(5.0)
      >>> fn = lambda p: p["a"] * jnp.exp(p["b"] * t) - 2.0 * jnp.exp(-0.5 * t)
      >>> params = {"a": jnp.asarray(1.0), "b": jnp.asarray(0.0)}
      >>> opt = optjx.levenberg_marquardt()
      >>> updates, state = opt.update(None, opt.init(params), params, residual_fn=fn)
      >>> params = optax.apply_updates(params, updates)
      >>> round(float(params["a"]), 6), round(float(params["b"]), 6)
      (2.0, -0.5)
    """
    c.check_int("max_iter", max_iter, 1)
    if max_eval is not None and not isinstance(max_eval, jax.core.Tracer):
        c.check_int("max_eval", max_eval, 1)
    hypers = _hyper.Hyperparameters(
        ftol=(ftol, _hyper.NONNEGATIVE),
        xtol=(xtol, _hyper.NONNEGATIVE),
        gtol=(gtol, _hyper.NONNEGATIVE),
        cg_tolerance=(cg_tolerance, _hyper.NONNEGATIVE),
        factor=(factor, _hyper.POSITIVE),
    )
    if solver not in ("dense", "cg"):
        raise ValueError(f'solver must be "dense" or "cg", got {solver!r}')
    if cg_max_iter is not None:
        c.check_int("cg_max_iter", cg_max_iter, 1)
    if diag is not None and not isinstance(diag, jax.core.Tracer):  # traced: not checked
        if not bool(jnp.all(jnp.asarray(diag) > 0)):
            raise ValueError("diag must be None or an array of positive scale factors.")

    def init_fn(trained, n, dtype):
        zero = _state.zero_count()
        scale = jnp.ones([n], dtype) if diag is None else jnp.asarray(diag, dtype).reshape(n)
        return LevenbergMarquardtState(
            **c.not_started(LevenbergMarquardtState), info=zero, successes=zero,
            par=jnp.zeros([], dtype), delta=jnp.zeros([], dtype), diag=scale,
            xnorm=jnp.zeros([], dtype),
        )  # fmt: skip

    def step_fn(state: LevenbergMarquardtState, problem, x):
        dtype = problem.dtype
        residuals = problem.residuals
        hp = hypers.at(state.count)
        factor = hp.factor
        budget = 100 * problem.size if max_eval is None else max_eval
        f0 = residuals(x)
        if solver == "dense":
            check_dense("levenberg_marquardt", f0.shape[0], problem.size)
            if f0.shape[0] < problem.size:  # MINPACK's "improper input": its QR needs m >= n
                raise ValueError(
                    f"levenberg_marquardt(solver='dense') needs at least as many residuals as "
                    f"trained parameters (MINPACK's lmder), got {f0.shape[0]} residuals for "
                    f"{problem.size} parameters; use solver='cg'."
                )

        class Outer(NamedTuple):
            trial: Trial
            diag: jax.Array
            iterations: jax.Array
            reason: jax.Array

        def iteration(o: Outer) -> Outer:
            t = o.trial
            first = t.successes == 0
            safe_fnorm = jnp.where(t.fnorm != 0, t.fnorm, 1)
            if solver == "dense":
                jac = jax.jacfwd(residuals)(t.x)
                qr = _minpack.qrfac(jac, t.f)
                acnorm, finite = qr.acnorm, jnp.all(jnp.isfinite(jac))
                # gtol's test: max_j |J_j . f| / (||J_j|| ||f||), column by pivoted column.
                ac, jtf = acnorm[qr.ipvt], qr.r.T @ (qr.qtf / safe_fnorm)

                def solve(delta, par):
                    out = _lmpar.lmpar(qr, scale, delta, par)
                    step = -out.step
                    # ||R P^T p|| = ||J p||, lmder's predicted reduction.
                    return step, out.par, _minpack.norm(qr.r @ step[qr.ipvt])

            else:  # no column norms without J: D from diag (or 1), gtol on max|J^T f|/||f||
                lin = _lmpar_cg.Linearised(residuals, t.x, cg_max_iter or problem.size,
                                           hp.cg_tolerance, f=t.f)  # fmt: skip
                acnorm = ac = jnp.ones_like(t.x)
                finite, jtf = jnp.all(jnp.isfinite(lin.jtf)), lin.jtf / safe_fnorm

                def solve(delta, par):
                    return lin.lmpar(scale, delta, par)

            scale = o.diag
            if diag is None:
                scale = jnp.where(first, jnp.where(acnorm == 0, 1, acnorm), scale)
            xnorm = jnp.where(first, _minpack.norm(scale * t.x), t.xnorm)
            delta = jnp.where(first, factor * xnorm, t.delta)
            delta = jnp.where(first & (delta == 0), factor, delta).astype(dtype)
            cosines = jnp.where(ac != 0, jnp.abs(jtf / jnp.where(ac != 0, ac, 1)), 0)
            gnorm = jnp.where(t.fnorm != 0, jnp.max(cosines, initial=0), 0)
            info = jnp.where(gnorm <= hp.gtol, 4, 0).astype(jnp.int32)
            info = jnp.where(finite, info, -1)
            if diag is None:
                scale = jnp.maximum(scale, acnorm)

            def body(s):
                return trial_step(s, solve=solve, residuals=residuals, diag=scale, gnorm=gnorm,
                                   ftol=hp.ftol, xtol=hp.xtol, max_eval=budget, dtype=dtype)  # fmt: skip

            start = t._replace(xnorm=xnorm, delta=delta, info=info, accepted=jnp.asarray(False))
            t = lax.while_loop(lambda s: (s.info == 0) & ~s.accepted, body, start)
            iterations = o.iterations + 1
            reason = jnp.where(t.info > 0, jnp.asarray(REASON_OF_INFO)[jnp.maximum(t.info, 0)], -1)
            reason = jnp.where(
                (t.info == 4) & (iterations == 1), StopTest.TOLERANCE_GRAD_AT_START, reason
            )
            reason = jnp.where((reason < 0) & (iterations == max_iter), StopTest.MAX_ITER, reason)
            reason = jnp.where(t.info < 0, StopTest.NON_FINITE, reason)
            return Outer(t, scale, iterations, reason.astype(jnp.int32))

        one = jnp.ones([], jnp.int32)
        fnorm = _minpack.norm(f0)
        trial = Trial(x, f0, fnorm, state.xnorm, state.par, state.delta, state.successes, one,
                       0 * one, jnp.asarray(False))  # fmt: skip
        reason = jnp.where(jnp.isfinite(fnorm), -1, StopTest.NON_FINITE).astype(jnp.int32)
        out = lax.while_loop(lambda o: o.reason < 0, iteration,
                             Outer(trial, state.diag, 0 * one, reason))  # fmt: skip
        t, failed = out.trial, out.reason == StopTest.NON_FINITE
        kept = state._replace(successes=t.successes, par=t.par, delta=t.delta, diag=out.diag,
                              xnorm=t.xnorm)  # fmt: skip
        new_state = c.select(failed, state, kept)._replace(
            count=_state.next_count(state.count),
            n_iter=_state.saturating_add(state.n_iter, out.iterations),
            func_evals=_state.saturating_add(state.func_evals, t.evals),
            iterations=out.iterations, evaluations=t.evals, **c.stopped_by(out.reason),
            info=jnp.maximum(t.info, 0) * ~failed,
        )  # fmt: skip
        return jnp.where(failed, x, t.x), new_state

    return least_squares_transformation("levenberg_marquardt", init_fn, step_fn)
