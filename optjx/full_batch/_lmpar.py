"""MINPACK's ``lmpar``: the Levenberg-Marquardt parameter for a trust radius.

For a damping ``par`` let ``x(par)`` solve ``(J^T J + par D^2) x = J^T f`` (the least
squares of ``[J; sqrt(par) D] x = [f; 0]``) and ``phi(par) = ||D x(par)|| - delta``.
``lmpar`` returns ``par = 0`` when the Gauss-Newton step fits (``phi(0) <= 0.1 delta``),
else a ``par > 0`` with ``|phi(par)| <= 0.1 delta``, found by Newton's method on ``phi``
safeguarded in a bracket ``[parl, paru]``, at most 10 tries (Moré 1978, section 5).

The iteration on ``par`` (``iterate``) is one loop for both ways of solving the damped
system: the dense one on the QR factors of ``J`` (``lmpar``, MINPACK's own) and the
matrix-free one by conjugate gradients (``optjx.full_batch._lmpar_cg``). What differs
is passed in: the Gauss-Newton step with its lower bound, and the solve at ``par > 0``
with its Newton correction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch._minpack import QR, back_substitute, norm, qrsolv

# correction(fp / delta, D x, ||D x||) -> the Newton step -phi / phi' at the solve's par.
Correction = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class _Carry(NamedTuple):
    it: jax.Array
    par: jax.Array
    parl: jax.Array
    paru: jax.Array
    fp: jax.Array
    x: jax.Array
    done: jax.Array


def iterate(
    gauss_newton: tuple[jax.Array, Correction],
    solve: Callable[[jax.Array], tuple[jax.Array, Correction]],
    diag,
    delta,
    par,
    gradient_norm,
) -> tuple[jax.Array, jax.Array]:
    """``lmpar``'s bounds and its iteration on ``par``: ``(x(par), par)``.

    Args:
      gauss_newton: ``(x(0), lower)``: the Gauss-Newton step and the lower bound
        ``parl`` as a ``Correction`` at 0 (0 where the solve gives none).
      solve: ``par -> (x(par), correction)`` for ``par > 0``.
      diag: the scaling ``D``.
      delta: the trust radius on ``||D x||``.
      par: the previous ``par``, the first guess.
      gradient_norm: ``||D^-1 J^T f||``, from which the upper bound ``paru``.
    """
    x, lower_bound = gauss_newton
    dtype = x.dtype
    dwarf = jnp.finfo(dtype).tiny
    dx = diag * x
    dxnorm = norm(dx)
    fp = dxnorm - delta
    gauss_newton_fits = fp <= 0.1 * delta
    parl = lower_bound(fp / delta, dx, dxnorm)
    paru = gradient_norm / delta
    paru = jnp.where(paru == 0, dwarf / jnp.minimum(delta, 0.1), paru)
    par = jnp.minimum(jnp.maximum(par, parl), paru)
    par = jnp.where(par == 0, gradient_norm / dxnorm, par)

    def body(c: _Carry) -> _Carry:
        it = c.it + 1
        par = jnp.where(c.par == 0, jnp.maximum(dwarf, 0.001 * c.paru), c.par)
        x, correction = solve(par)
        dx = diag * x
        dxnorm = norm(dx)
        previous, fp = c.fp, dxnorm - delta
        done = (jnp.abs(fp) <= 0.1 * delta) | ((c.parl == 0) & (fp <= previous) & (previous < 0))
        done = done | (it == 10)
        parc = correction(fp / delta, dx, dxnorm)
        parl = jnp.where(fp > 0, jnp.maximum(c.parl, par), c.parl)
        paru = jnp.where(fp < 0, jnp.minimum(c.paru, par), c.paru)
        new_par = jnp.where(done, par, jnp.maximum(parl, par + parc))
        return _Carry(it, new_par, parl, paru, fp, x, done)

    start = _Carry(jnp.zeros([], jnp.int32), par, parl, paru, fp, x, gauss_newton_fits)
    out = lax.while_loop(lambda c: ~c.done, body, start)
    return out.x, jnp.where(out.it == 0, 0, out.par).astype(dtype)


def _solve_transposed(r, b, diagonal):
    """Forward substitution ``T^T w = b`` with ``T``'s strict upper part from ``r``'s
    strict upper triangle (used with R, lmpar's ``parl``) or, when ``diagonal`` comes
    from qrsolv, ``r`` is the lower storage of ``S`` and is read transposed by the caller.
    """
    n = b.shape[0]
    idx = jnp.arange(n)

    def step(j, w):
        total = jnp.sum(jnp.where(idx < j, r[:, j] * w, 0))
        return w.at[j].set((w[j] - total) / diagonal[j])

    return lax.fori_loop(0, n, step, b)


def _newton_correction(lower, sdiag, b):
    """``S^{-T} b`` with ``S`` stored by qrsolv (strict part in ``lower``'s lower triangle)."""
    n = b.shape[0]
    idx = jnp.arange(n)

    def step(j, w):
        wj = w[j] / sdiag[j]
        w = w.at[j].set(wj)
        return jnp.where(idx > j, w - lower[:, j] * wj, w)

    return lax.fori_loop(0, n, step, b)


class LmparResult(NamedTuple):
    step: jax.Array  # x(par): the least squares of [J; sqrt(par) D] x = [f; 0] (lmder negates)
    par: jax.Array


def lmpar(qr: QR, diag, delta, par) -> LmparResult:
    """MINPACK's ``lmpar`` on the QR factors of ``J`` (``qr``, from ``qrfac``)."""
    r, ipvt, qtb = qr.r, qr.ipvt, qr.qtf
    n = qtb.shape[0]
    rdiag = jnp.diagonal(r)
    zeros = rdiag == 0
    nsing = jnp.where(jnp.any(zeros), jnp.argmax(zeros), n)
    # The Gauss-Newton step (a least-squares one when R is singular).
    gn = back_substitute(r.T, rdiag, qtb, nsing)
    x = jnp.zeros_like(gn).at[ipvt].set(gn)

    def pivoted(dx, dxnorm):  # D (D x) / ||D x|| in the pivoted order
        return diag[ipvt] * (dx[ipvt] / dxnorm)

    def lower_bound(ratio, dx, dxnorm):  # a Newton step of phi at 0 (R of full rank only)
        temp = norm(_solve_transposed(r, pivoted(dx, dxnorm), rdiag))
        return jnp.where(nsing < n, 0, (ratio / temp) / temp)

    def solve(par):
        x, sdiag, lower = qrsolv(r, ipvt, jnp.sqrt(par) * diag, qtb)

        def correction(ratio, dx, dxnorm):
            temp = norm(_newton_correction(lower, sdiag, pivoted(dx, dxnorm)))
            return (ratio / temp) / temp

        return x, correction

    # The upper bound's ||D^-1 J^T f||.
    gnorm = norm((r.T @ qtb) / diag[ipvt])
    step, par = iterate((x, lower_bound), solve, diag, delta, par, gnorm)
    return LmparResult(step, par)
