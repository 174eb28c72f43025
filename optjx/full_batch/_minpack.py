"""MINPACK's dense linear algebra for Levenberg-Marquardt, in JAX: ``enorm``, ``qrfac``,
``qrsolv`` (``lmpar`` is in ``optjx.full_batch._lmpar``).

Written from the MINPACK documentation and algorithm (Moré, Garbow & Hillstrom 1980,
*User Guide for MINPACK-1*, ANL-80-74; Moré 1978, "The Levenberg-Marquardt algorithm:
implementation and theory"), loop for loop where the order of the floating-point
operations decides a branch (pivot choice, rank tests), vectorised over the innermost
index elsewhere. Indices are 0-based here (MINPACK's are 1-based). Every loop is a
``lax.fori_loop`` / ``lax.while_loop`` over arrays of static shape, so the whole solve
compiles once per problem shape.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


def norm(v) -> jax.Array:
    """MINPACK's ``enorm``: the Euclidean norm, and NaN for two or more infinite entries.

    ``enorm`` sums large entries as ``(x / x_max)^2`` with ``x_max`` the largest so far:
    a second infinite entry adds ``(inf / inf)^2``, NaN. That NaN decides how much a
    rejected step shrinks the radius in ``lmder`` (a NaN ``fnorm1`` fails the test
    ``0.1 fnorm1 >= fnorm``), so it is kept. The sum of squares is plain otherwise
    (``enorm``'s rescaling only guards against overflow and underflow).
    """
    infinite = jnp.sum(jnp.isinf(v))
    return jnp.where(infinite >= 2, jnp.nan, jnp.sqrt(jnp.sum(v * v)))


class QR(NamedTuple):
    """``J P = Q R`` with column pivoting: ``r`` upper triangular (its diagonal
    ``rdiag``), ``ipvt`` the permutation (column ``j`` of ``J P`` is column ``ipvt[j]`` of
    ``J``), ``acnorm`` the column norms of ``J``, ``qtf`` the first ``n`` entries of
    ``Q^T f``."""

    r: jax.Array
    ipvt: jax.Array
    acnorm: jax.Array
    qtf: jax.Array


def qrfac(a, f) -> QR:
    """Householder QR of ``a`` (m x n, m >= n) with MINPACK's column pivoting, and ``Q^T f``.

    At step ``j`` the remaining column of largest (updated) norm moves to position ``j``;
    the norms are downdated by ``sqrt(1 - (a_jk / rdiag_k)^2)`` and recomputed when that
    lost too much precision (``0.05 (rdiag_k / wa_k)^2 <= eps``), as ``qrfac`` does.
    """
    m, n = a.shape
    eps = jnp.finfo(a.dtype).eps
    rows, cols = jnp.arange(m), jnp.arange(n)
    acnorm = jnp.sqrt(jnp.sum(a * a, axis=0))

    def step(j, carry):
        a, rdiag, wa, ipvt, f = carry
        kmax = jnp.argmax(jnp.where(cols >= j, rdiag, -jnp.inf))  # first of the largest
        swap = jnp.where(cols == j, kmax, jnp.where(cols == kmax, j, cols))
        a, ipvt = a[:, swap], ipvt[swap]
        rdiag = rdiag.at[kmax].set(rdiag[j])
        wa = wa.at[kmax].set(wa[j])
        below = rows >= j
        col = jnp.where(below, a[:, j], 0)
        ajnorm = norm(col)
        ajnorm = jnp.where(a[j, j] < 0, -ajnorm, ajnorm)
        nonzero = ajnorm != 0
        v = col / jnp.where(nonzero, ajnorm, 1)
        v = v.at[j].add(1)  # the Householder vector, v_j = 1 + |a_jj| / ||a_j||
        # Reflect the columns to the right: a_k -= (v.a_k / v_j) v.
        later = (cols > j) & nonzero
        coef = (v @ a) / v[j]
        reflected = a - jnp.outer(v, jnp.where(later, coef, 0))
        # Downdate the norms of the remaining columns (their part below row j).
        ratio = reflected[j] / jnp.where(rdiag == 0, 1, rdiag)
        down = rdiag * jnp.sqrt(jnp.maximum(0, 1 - ratio**2))
        again = 0.05 * (down / jnp.where(wa == 0, 1, wa)) ** 2 <= eps
        fresh = jnp.sqrt(jnp.sum(jnp.where((rows > j)[:, None], reflected, 0) ** 2, axis=0))
        norms = jnp.where(again, fresh, down)
        update = later & (rdiag != 0)
        rdiag = jnp.where(update, norms, rdiag)
        wa = jnp.where(update & again, fresh, wa)
        a = reflected.at[:, j].set(jnp.where(nonzero & below, v, a[:, j]))
        rdiag = rdiag.at[j].set(-ajnorm)
        # The same reflection applied to f (lmder's loop forming Q^T f).
        f = jnp.where(nonzero, f - v * ((v @ f) / v[j]), f)
        return a, rdiag, wa, ipvt, f

    start = (a, acnorm, acnorm, cols, f)
    a, rdiag, _, ipvt, f = lax.fori_loop(0, n, step, start)
    r = jnp.triu(a[:n]).at[cols, cols].set(rdiag)
    return QR(r, ipvt, acnorm, f[:n])


def back_substitute(s, diagonal, b, rank):
    """Solve ``T w = b`` for the ``rank`` leading unknowns, ``T`` triangular with
    ``diagonal`` and ``T[i, j] = s[i, j]`` for ``i > j`` read as ``T[j, i]`` (lower part
    of ``s`` transposed); unknowns at and past ``rank`` are zero."""
    n = b.shape[0]
    idx = jnp.arange(n)
    b = jnp.where(idx < rank, b, 0)

    def step(k, w):
        j = n - 1 - k
        total = jnp.sum(jnp.where((idx > j) & (idx < rank), s[:, j] * w, 0))
        return jnp.where((idx == j) & (j < rank), (w[j] - total) / diagonal[j], w)

    return lax.fori_loop(0, n, step, b)


def qrsolv(r, ipvt, d, qtb):
    """Least squares of ``[J; D] x = [f; 0]`` given ``J P = Q R`` (MINPACK's ``qrsolv``).

    Givens rotations eliminate ``D P`` from ``[R; P^T D P]``, giving ``S`` with
    ``P^T (J^T J + D^2) P = S^T S``. Returns ``x``, ``sdiag`` (the diagonal of ``S``) and
    ``lower``: ``S``'s strict upper triangle transposed into the strict lower one.
    """
    n = r.shape[0]
    idx = jnp.arange(n)
    rdiag = jnp.diagonal(r)
    lower = jnp.tril(r.T)  # column k holds row k of the matrix being rotated
    eliminate_at = d[ipvt]

    def row(j, carry):
        lower, wa, sdiag_out = carry
        sdiag = jnp.where(idx == j, eliminate_at[j], 0)

        def rotate(k, inner):
            lower, wa, sdiag, qtbpj = inner
            rkk, skk = lower[k, k], sdiag[k]
            active = (k >= j) & (skk != 0)
            big = jnp.abs(rkk) >= jnp.abs(skk)
            tan = skk / jnp.where(big, rkk, 1)
            cotan = rkk / jnp.where(big, 1, skk)
            cos_a = 0.5 / jnp.sqrt(0.25 + 0.25 * tan**2)
            sin_b = 0.5 / jnp.sqrt(0.25 + 0.25 * cotan**2)
            cos = jnp.where(big, cos_a, sin_b * cotan)
            sin = jnp.where(big, cos_a * tan, sin_b)
            col, below = lower[:, k], idx > k
            new_col = jnp.where(below, cos * col + sin * sdiag, col)
            new_col = new_col.at[k].set(cos * rkk + sin * skk)
            new_s = jnp.where(below, -sin * col + cos * sdiag, sdiag)
            new_wa_k = cos * wa[k] + sin * qtbpj
            new_qtbpj = -sin * wa[k] + cos * qtbpj
            return (
                jnp.where(active, lower.at[:, k].set(new_col), lower),
                jnp.where(active, wa.at[k].set(new_wa_k), wa),
                jnp.where(active, new_s, sdiag),
                jnp.where(active, new_qtbpj, qtbpj),
            )

        zero = jnp.zeros([], r.dtype)
        lower, wa, _, _ = lax.cond(
            eliminate_at[j] != 0,
            lambda: lax.fori_loop(j, n, rotate, (lower, wa, sdiag, zero)),
            lambda: (lower, wa, sdiag, zero),
        )
        sdiag_out = sdiag_out.at[j].set(lower[j, j])
        lower = lower.at[j, j].set(rdiag[j])  # qrsolv restores R's diagonal
        return lower, wa, sdiag_out

    lower, wa, sdiag = lax.fori_loop(0, n, row, (lower, qtb, jnp.zeros_like(qtb)))
    zeros = sdiag == 0
    rank = jnp.where(jnp.any(zeros), jnp.argmax(zeros), n)
    w = back_substitute(lower, sdiag, wa, rank)
    return jnp.zeros_like(w).at[ipvt].set(w), sdiag, lower
