r"""L-BFGS-B's generalised Cauchy point (Byrd et al. 1995, Algorithm CP).

The model's matrix $B = \theta I - W M W^\top$ is ``_lbfgsb_memory``'s compact form.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch._lbfgsb_memory import Compact, m_times, w_row, wt_times

_HI = lax.Precision.HIGHEST
_INDEX_BITS = 21  # breakpoint_order's packed keys: the index in the low 21 bits


def breakpoint_order(tb):
    """``argsort(tb, stable=True)`` for ``tb >= 0`` (``inf`` allowed), as integer sorts.

    XLA:CPU sorts float64 with a comparator ~8x slower than int64's (1e6 entries: 0.6 s
    against 0.075 s here). Non-negative floats order as their bit patterns do, so: sort
    the keys ``(high 42 bits of tb, index)``; then, within each run of equal high bits,
    sort by ``(run, low 21 bits, index)``. Both keys are unique, so the result is the
    stable argsort exactly. Needs float64 and ``n <= 2^21``; else ``argsort``.
    """
    n = tb.shape[0]
    if tb.dtype != jnp.float64 or n > 1 << _INDEX_BITS:
        return jnp.argsort(tb, stable=True).astype(jnp.int32)
    low_mask = (1 << _INDEX_BITS) - 1
    bits = lax.bitcast_convert_type(jnp.where(tb == 0, 0.0, tb), jnp.int64)  # -0.0 as 0.0
    index = jnp.arange(n, dtype=jnp.int64)
    first = jnp.sort(((bits >> _INDEX_BITS) << _INDEX_BITS) | index) & low_mask
    high = bits[first] >> _INDEX_BITS
    run = jnp.cumsum(jnp.concatenate([jnp.zeros(1, bool), high[1:] != high[:-1]]), dtype=jnp.int64)  # fmt: skip
    key = (run << (2 * _INDEX_BITS)) | ((bits[first] & low_mask) << _INDEX_BITS) | first
    return (jnp.sort(key) & low_mask).astype(jnp.int32)


class CauchyPoint(NamedTuple):
    xcp: jax.Array  # the generalised Cauchy point, in the box
    c: jax.Array  # W^T (xcp - x)
    free: jax.Array  # bool: not at a bound at xcp (the subspace's variables)


def cauchy_point(x, g, lo, hi, b: Compact, eps, breakpoints: bool = True) -> CauchyPoint:
    r"""The first local minimiser of the model along the projected path $P(x - t g)$.

    Breakpoints $t_i = (x_i - u_i)/g_i$ ($g_i < 0$) or $(x_i - l_i)/g_i$ ($g_i > 0$) in
    increasing order; on each segment the model is $f_1 \Delta t + \frac12 f_2 \Delta t^2$
    along $d$ ($-g$ on the variables not yet at a bound). At a breakpoint where
    $-f_1/f_2 \ge \Delta t$ the variable is fixed at its bound and $f_1, f_2, p = W^\top
    d, c = W^\top (x^c - x)$ are updated in $O(m^2)$ (Byrd et al. 1995, Algorithm CP, as
    L-BFGS-B 3.0's ``cauchy``: $f_2 \ge \epsilon f_2^{(0)}$ against rounding).
    ``breakpoints=False``: no bound is finite (known when tracing), nothing to sort.
    """
    theta = b.theta
    at_lo = jnp.isfinite(lo) & (x - lo <= 0)
    at_hi = jnp.isfinite(hi) & (hi - x <= 0)
    # L-BFGS-B's iwhere: fixed at the start (l = u, or at a bound the gradient pushes
    # against); a zero gradient gives no direction but the variable stays free.
    fixed = (lo == hi) | (at_lo & (g >= 0)) | (~at_lo & at_hi & (g <= 0))
    d = jnp.where(fixed | (g == 0), 0.0, -g).astype(x.dtype)
    brk_lo = ~fixed & (d < 0) & jnp.isfinite(lo)
    brk_hi = ~fixed & (d > 0) & jnp.isfinite(hi)
    tb = jnp.where(brk_lo, (x - lo) / jnp.where(brk_lo, -d, 1.0),
                   jnp.where(brk_hi, (hi - x) / jnp.where(brk_hi, d, 1.0), jnp.inf))  # fmt: skip
    is_brk = brk_lo | brk_hi
    # Without finite bounds is_brk is a constant: XLA would fold the count (seconds at 1e6).
    n_brk = jnp.sum(is_brk).astype(jnp.int32) if breakpoints else jnp.asarray(0, jnp.int32)
    # Sorted only when there are breakpoints (an O(n log n) sort, slow on XLA:CPU: over
    # a second for 1e6 entries); without any the loop below never reads the order.
    order = jnp.arange(x.shape[0], dtype=jnp.int32)
    if breakpoints:
        order = lax.cond(n_brk > 0, lambda: breakpoint_order(jnp.where(is_brk, tb, jnp.inf)),
                         lambda: order)  # fmt: skip
    p = wt_times(b, d)
    f1 = -jnp.dot(d, d, precision=_HI)
    f2 = -theta * f1 - jnp.dot(p, m_times(b, p), precision=_HI)
    f2_org = f2
    zero_d = f1 == 0
    dtm = -f1 / jnp.where(zero_d, 1.0, f2)
    c = jnp.zeros_like(p)

    def cond(s):
        k, stop = s[0], s[-1]
        return (k < n_brk) & ~stop

    # The loop carries scalars and m-vectors only, so a breakpoint costs O(m^2) as in
    # L-BFGS-B (carrying xcp and d, which each breakpoint changed in one entry, made XLA
    # copy both at every breakpoint: O(n) each). Each variable is met at most once (order
    # is a permutation), so d[i] there is still the initial d[i]; the variables passed
    # are order[:k], fixed at their bounds after the loop.
    def body(s, with_memory):
        k, c, p, f1, f2, dtm, t_old = s[:7]
        i = order[k]
        t = tb[i]
        dt = t - t_old
        stop = dtm < dt
        di = d[i]
        bound = jnp.where(di > 0, hi[i], lo[i])
        zi = bound - x[i]
        f1n = f1 + dt * f2 + di * di - theta * di * zi
        f2n = f2 - theta * di * di
        c_new, p_new = c, p
        if with_memory:  # without pairs W is empty: c, p stay zero, the terms below vanish
            wi = w_row(b, i)
            c_new = c + dt * p
            v = m_times(b, wi)
            f1n = f1n + di * jnp.dot(c_new, v, precision=_HI)
            f2n = f2n + 2.0 * di * jnp.dot(p, v, precision=_HI) - di * di * jnp.dot(wi, v, precision=_HI)  # fmt: skip
            p_new = p - di * wi
        f2n = jnp.maximum(eps * f2_org, f2n)
        dtm_new = -f1n / f2n

        def keep(old, new):  # a stop leaves everything as it was
            return jnp.where(stop, old, new)

        return (keep(k, k + 1), keep(c, c_new), keep(p, p_new), keep(f1, f1n), keep(f2, f2n),
                keep(dtm, dtm_new), keep(t_old, t), stop)  # fmt: skip

    init = (jnp.asarray(0, jnp.int32), c, p, f1, f2, dtm, jnp.zeros([], x.dtype), jnp.asarray(False))  # fmt: skip
    # Without pairs (the first iteration, a restart) a breakpoint costs a few scalar
    # operations: that loop is ~6x faster per breakpoint, and it may pass all n of them.
    passed, c, p, f1, f2, dtm, t_sum, _ = lax.cond(
        b.mem.count > 0,
        lambda: lax.while_loop(cond, lambda s: body(s, True), init),
        lambda: lax.while_loop(cond, lambda s: body(s, False), init),
    )
    position = (
        jnp.zeros(order.shape, jnp.int32).at[order].set(jnp.arange(order.shape[0], dtype=jnp.int32))
    )
    fixed_on_path = is_brk & (position < passed)
    xcp = jnp.where(fixed_on_path, jnp.where(d > 0, hi, lo), x)
    d = jnp.where(fixed_on_path, 0.0, d)
    dtm = jnp.where(jnp.all(d == 0) | ~(dtm > 0), 0.0, dtm)  # every variable fixed, or dtm <= 0
    t_sum = t_sum + dtm
    xcp = jnp.where(d != 0, x + t_sum * d, xcp)
    c = c + dtm * p
    xcp = jnp.where(zero_d, x, xcp)
    c = jnp.where(zero_d, 0.0, c)
    hit = is_brk & (d == 0)  # fixed at a breakpoint on the path
    free = ~fixed & ~hit
    return CauchyPoint(xcp, c, free)
