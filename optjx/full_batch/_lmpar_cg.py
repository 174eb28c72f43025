"""MINPACK's ``lmpar`` without forming the Jacobian: each damped system by conjugate
gradients on Jacobian-vector and vector-Jacobian products.

``lmpar`` needs, for a damping ``par``, the solution of
``(J^T J + par D^2) p = -J^T f`` and the quantity ``q^T (J^T J + par D^2)^{-1} q`` with
``q = D^2 p / ||D p||`` (the derivative of ``||D p(par)||``; MINPACK's
``||S^{-T} P^T q||^2``). Both come from CG here, so the iteration on ``par`` (its bracket,
its Newton correction, its 10 tries) is MINPACK's, exact to the CG tolerance.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch._minpack import norm


class Linearised:
    """The residuals linearised at ``x``: ``J v``, ``J^T w`` and CG on ``J^T J + par D^2``."""

    def __init__(self, residuals, x, f, max_iter: int, tolerance):
        _, self.jvp = jax.linearize(residuals, x)
        transpose = jax.linear_transpose(self.jvp, x)
        self.vjp = lambda w: transpose(w)[0]
        self.jtf = self.vjp(f)
        self.max_iter, self.tolerance = max_iter, tolerance

    def solve(self, par, diag, rhs):
        def matvec(v):
            return self.vjp(self.jvp(v)) + par * diag * diag * v

        out, _ = jax.scipy.sparse.linalg.cg(
            matvec, rhs, tol=self.tolerance, atol=0.0, maxiter=self.max_iter
        )
        return out

    def lmpar(self, diag, delta, par):
        """``(step, par, ||J step||)`` as MINPACK's ``lmpar`` (the step's sign: lmder's)."""
        dtype = self.jtf.dtype
        dwarf = jnp.finfo(dtype).tiny

        def curvature(par, dx, dxnorm):  # q^T A^-1 q, q = D (D p) / ||D p||
            q = diag * (dx / dxnorm)
            return jnp.vdot(q, self.solve(par, diag, q))

        step = self.solve(0.0, diag, -self.jtf)  # Gauss-Newton
        dx = diag * step
        dxnorm = norm(dx)
        fp = dxnorm - delta
        fits = fp <= 0.1 * delta
        # MINPACK skips this lower bound for a rank-deficient J; CG cannot tell, so a
        # bound that is not a positive number is dropped.
        parl = (fp / delta) / curvature(0.0, dx, dxnorm)
        parl = jnp.where(jnp.isfinite(parl) & (parl > 0), parl, 0)
        gnorm = norm(self.jtf / diag)
        paru = gnorm / delta
        paru = jnp.where(paru == 0, dwarf / jnp.minimum(delta, 0.1), paru)
        par = jnp.minimum(jnp.maximum(par, parl), paru)
        par = jnp.where(par == 0, gnorm / dxnorm, par)

        class Carry(NamedTuple):
            it: jax.Array
            par: jax.Array
            parl: jax.Array
            paru: jax.Array
            fp: jax.Array
            step: jax.Array
            done: jax.Array

        def body(c: Carry) -> Carry:
            it = c.it + 1
            par = jnp.where(c.par == 0, jnp.maximum(dwarf, 0.001 * c.paru), c.par)
            step = self.solve(par, diag, -self.jtf)
            dx = diag * step
            dxnorm = norm(dx)
            previous, fp = c.fp, dxnorm - delta
            done = (jnp.abs(fp) <= 0.1 * delta) | (
                (c.parl == 0) & (fp <= previous) & (previous < 0)
            )
            done = done | (it == 10)
            parc = (fp / delta) / curvature(par, dx, dxnorm)
            parl = jnp.where(fp > 0, jnp.maximum(c.parl, par), c.parl)
            paru = jnp.where(fp < 0, jnp.minimum(c.paru, par), c.paru)
            new_par = jnp.where(done, par, jnp.maximum(parl, par + parc))
            return Carry(it, new_par, parl, paru, fp, step, done)

        start = Carry(jnp.zeros([], jnp.int32), par, parl, paru, fp, step, fits)
        out = lax.while_loop(lambda c: ~c.done, body, start)
        par = jnp.where(out.it == 0, 0, out.par).astype(dtype)
        return out.step, par, norm(self.jvp(out.step))
