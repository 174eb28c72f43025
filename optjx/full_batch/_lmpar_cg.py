"""MINPACK's ``lmpar`` without forming the Jacobian: each damped system by conjugate
gradients on Jacobian-vector and vector-Jacobian products.

``lmpar`` needs, for a damping ``par``, the solution of
``(J^T J + par D^2) p = -J^T f`` and the quantity ``q^T (J^T J + par D^2)^{-1} q`` with
``q = D^2 p / ||D p||`` (the derivative of ``||D p(par)||``; MINPACK's
``||S^{-T} P^T q||^2``). Both come from CG here; the iteration on ``par`` (its bracket,
its Newton correction, its 10 tries) is MINPACK's, the one loop of
``optjx.full_batch._lmpar``, exact to the CG tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optjx.full_batch._lmpar import iterate
from optjx.full_batch._minpack import norm


class Linearised:
    """The residuals linearised at ``x``: ``J v``, ``J^T w`` and CG on ``J^T J + par D^2``
    (``solver="cg"`` of ``optjx.gauss_newton`` and ``optjx.levenberg_marquardt``)."""

    def __init__(self, residuals, x, max_iter: int, tolerance, f=None):
        # f: the residuals at x, when the caller has them (else linearize's).
        primal, self.jvp = jax.linearize(residuals, x)
        self.f = primal if f is None else f
        transpose = jax.linear_transpose(self.jvp, x)
        self.vjp = lambda w: transpose(w)[0]
        self.jtf = self.vjp(self.f)
        self.max_iter, self.tolerance = max_iter, tolerance

    def solve(self, par, diag, rhs):
        """CG on ``(J^T J + par D^2) v = rhs``; ``par=None``: on ``J^T J v = rhs``."""

        def matvec(v):
            normal = self.vjp(self.jvp(v))
            return normal if par is None else normal + par * diag * diag * v

        out, _ = jax.scipy.sparse.linalg.cg(
            matvec, rhs, tol=self.tolerance, atol=0.0, maxiter=self.max_iter
        )
        return out

    def lmpar(self, diag, delta, par):
        """``(step, par, ||J step||)`` as MINPACK's ``lmpar`` (the step's sign: lmder's)."""

        def curvature(par, dx, dxnorm):  # q^T A^-1 q, q = D (D p) / ||D p||
            q = diag * (dx / dxnorm)
            return jnp.vdot(q, self.solve(par, diag, q))

        def lower_bound(ratio, dx, dxnorm):
            # MINPACK skips this lower bound for a rank-deficient J; CG cannot tell, so a
            # bound that is not a positive number is dropped.
            parl = ratio / curvature(0.0, dx, dxnorm)
            return jnp.where(jnp.isfinite(parl) & (parl > 0), parl, 0)

        def solve(par):
            def correction(ratio, dx, dxnorm):
                return ratio / curvature(par, dx, dxnorm)

            return self.solve(par, diag, -self.jtf), correction

        gauss_newton = self.solve(0.0, diag, -self.jtf)
        gnorm = norm(self.jtf / diag)
        step, par = iterate((gauss_newton, lower_bound), solve, diag, delta, par, gnorm)
        return step, par, norm(self.jvp(step))
