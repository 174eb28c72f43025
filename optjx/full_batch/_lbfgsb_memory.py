r"""L-BFGS-B's memory of pairs and its compact representation (Byrd, Nocedal & Schnabel 1994).

$$
B = \theta I - W M W^\top, \quad W = [Y \;\; \theta S], \quad
M^{-1} = K = \begin{pmatrix} -D & L^\top \\ L & \theta S^\top S \end{pmatrix}
$$

with $S, Y$ the stored pairs oldest first, $D = \mathrm{diag}(s_i^\top y_i)$,
$L_{ij} = s_i^\top y_j$ for $i > j$. The memory is fixed at ``m`` pairs; past the ``count``
stored, $K$ is the identity and the products with $W$ are zero.

Layout, for speed at large $n$: the pairs are rows of two ``(m, n)`` arrays, a ring
buffer (the oldest at row ``start``), so storing a pair writes one row in place instead
of shifting the whole history. $W$ is never formed: $W^\top v$ is two row reductions
($Y v$, $S v$) and $W p$ two row combinations. The small products $S^\top S$,
$S^\top Y$, $Y^\top Y$ are kept oldest first and gain one row and column per stored pair
(L-BFGS-B's ``matupd``), O(mn) per pair instead of O(m^2 n).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

_HI = lax.Precision.HIGHEST


class Memory(NamedTuple):
    r"""The stored pairs and their products; $\theta$ of the newest pair."""

    s: jax.Array  # (m, n) ring buffer: pair k (0 oldest) in row (start + k) % m
    y: jax.Array
    start: jax.Array  # int32: the ring row of the oldest pair
    count: jax.Array  # type: ignore[assignment]  # int32; shadows tuple.count
    theta: jax.Array
    ss: jax.Array  # (m, m) oldest first: s_i . s_j
    sy: jax.Array  # s_i . y_j
    yy: jax.Array  # y_i . y_j


def empty(m: int, n: int, dtype) -> Memory:
    zeros = jnp.zeros((m, m), dtype)
    int0 = jnp.zeros([], jnp.int32)
    return Memory(jnp.zeros((m, n), dtype), jnp.zeros((m, n), dtype), int0, int0,
                  jnp.ones([], dtype), zeros, zeros, zeros)  # fmt: skip


def forget(mem: Memory, when) -> Memory:
    """No pairs when ``when`` (a restart). The rows keep the old pairs (zeroing them would
    be a pass over the history): the products read them but mask their results, or
    weigh them by zero; they are finite (a pair is stored after a finite step only)."""
    int0 = jnp.zeros([], jnp.int32)
    return mem._replace(start=jnp.where(when, int0, mem.start),
                        count=jnp.where(when, int0, mem.count),
                        theta=jnp.where(when, jnp.ones_like(mem.theta), mem.theta))  # fmt: skip


def _ring(mem: Memory):
    """The ring row of each pair, oldest first."""
    m = mem.s.shape[0]
    return (mem.start + jnp.arange(m, dtype=jnp.int32)) % m


def push(mem: Memory, sk, yk, theta, store) -> Memory:
    """``mem`` with the pair ``(sk, yk)`` appended when ``store`` (the oldest dropped when
    full), else ``mem`` as it is. The row is written either way (itself when not storing),
    so that XLA updates the history in place instead of selecting between two copies."""
    m = mem.s.shape[0]
    full = mem.count >= m
    slot = jnp.where(full, mem.start, (mem.start + mem.count) % m)
    s = lax.dynamic_update_index_in_dim(mem.s, jnp.where(store, sk, mem.s[slot]), slot, 0)
    y = lax.dynamic_update_index_in_dim(mem.y, jnp.where(store, yk, mem.y[slot]), slot, 0)
    pair = jnp.stack([sk, yk])
    s_new = jnp.matmul(s, pair.T, precision=_HI)  # (m, 2): s_i . sk, s_i . yk
    y_new = jnp.matmul(y, pair.T, precision=_HI)
    new = Memory(s, y, jnp.where(full, (mem.start + 1) % m, mem.start),
                 jnp.minimum(mem.count + 1, m), theta, mem.ss, mem.sy, mem.yy)  # fmt: skip
    ring = _ring(new)
    s_new, y_new = s_new[ring], y_new[ring]
    last = new.count - 1

    def grow(a, row, col):  # drop the oldest when full, then the newest row and column
        a = jnp.where(full, jnp.roll(a, (-1, -1), (0, 1)), a)
        return a.at[last, :].set(row).at[:, last].set(col)

    grown = (new.start, new.count, theta, grow(mem.ss, s_new[:, 0], s_new[:, 0]),
             grow(mem.sy, y_new[:, 0], s_new[:, 1]),  # row: sk . y_j; column: s_i . yk
             grow(mem.yy, y_new[:, 1], y_new[:, 1]))  # fmt: skip
    kept = (mem.start, mem.count, mem.theta, mem.ss, mem.sy, mem.yy)
    small = [jnp.where(store, a, b) for a, b in zip(grown, kept, strict=True)]
    return Memory(s, y, *small)


class Compact(NamedTuple):
    mem: Memory
    lu: jax.Array  # LU factors of K = M^{-1} (the identity where no pair is stored)
    permutation: jax.Array  # their row permutation
    k: jax.Array  # (2m, 2m) K
    theta: jax.Array
    valid: jax.Array  # (2m,) bool: W's columns that hold a pair
    ring: jax.Array  # (m,) the ring row of each pair, oldest first


def compact(mem: Memory) -> Compact:
    m = mem.s.shape[0]
    valid = jnp.arange(m) < mem.count
    d = jnp.diag(jnp.diag(mem.sy))
    lower = jnp.tril(mem.sy, -1)
    k = jnp.block([[-d, lower.T], [lower, mem.theta * mem.ss]])
    v2 = jnp.concatenate([valid, valid])
    k = jnp.where(v2[:, None] & v2[None, :], k, jnp.eye(2 * m, dtype=k.dtype))
    lu, _, permutation = lax.linalg.lu(k)
    return Compact(mem, lu, permutation, k, mem.theta, v2, _ring(mem))


def m_times(b: Compact, v):
    """$M v = K^{-1} v$ (L-BFGS-B's ``bmv``), from the factors made once per iteration.

    The permuted ``v``, then the two triangular solves, as ``jax.scipy.linalg.lu_solve``
    computes them, but with the permutation ``lax.linalg.lu`` made once: that function
    turns the pivots into a permutation again at every call, a loop of its own at each
    call site of the compiled update (the arithmetic is the same)."""
    x = v[b.permutation][:, None]
    x = lax.linalg.triangular_solve(b.lu, x, left_side=True, lower=True, unit_diagonal=True)
    return lax.linalg.triangular_solve(b.lu, x, left_side=True, lower=False)[:, 0]


def wt_times(b: Compact, v):
    r"""$W^\top v = (Y v, \theta S v)$: two passes over the rows."""
    yv = jnp.matmul(b.mem.y, v, precision=_HI)[b.ring]
    sv = jnp.matmul(b.mem.s, v, precision=_HI)[b.ring]
    return jnp.where(b.valid, jnp.concatenate([yv, b.theta * sv]), 0.0)


def w_times(b: Compact, p):
    r"""$W p = Y p_1 + \theta S p_2$: a combination of the rows."""
    m = b.ring.shape[0]
    p = jnp.where(b.valid, p, 0.0)
    by_row = jnp.zeros_like(p).at[jnp.concatenate([b.ring, b.ring + m])].set(p)  # ring order
    return jnp.matmul(by_row[:m], b.mem.y, precision=_HI) + b.theta * jnp.matmul(
        by_row[m:], b.mem.s, precision=_HI
    )


def w_row(b: Compact, i):
    """Row ``i`` of $W$ ($2m$ entries): one column of each history array.

    Sliced, then put in order: indexing ``y[ring, i]`` (an XLA gather) cost ~4x more in
    the Cauchy point's loop, where it runs once per breakpoint."""
    y = lax.dynamic_slice_in_dim(b.mem.y, i, 1, axis=1)[:, 0]
    s = lax.dynamic_slice_in_dim(b.mem.s, i, 1, axis=1)[:, 0]
    row = jnp.concatenate([y[b.ring], b.theta * s[b.ring]])
    return jnp.where(b.valid, row, 0.0)


def free_products(b: Compact, free):
    r"""$W_F^\top W_F$ over the variables in ``free`` (zero where no pair is stored).

    All free (always so without bounds): from the kept products, no pass over the rows.
    Else three ``(m, n) x (n, m)`` products over the masked rows.
    """
    theta = b.theta

    def blocks(yy, sy, ss):
        a = jnp.block([[yy, theta * sy.T], [theta * sy, theta * theta * ss]])
        return jnp.where(b.valid[:, None] & b.valid[None, :], a, 0.0)

    def kept():
        return blocks(b.mem.yy, b.mem.sy, b.mem.ss)

    def masked():
        mem, r = b.mem, b.ring
        yf = jnp.where(free, mem.y, 0.0)
        sf = jnp.where(free, mem.s, 0.0)
        yy = jnp.matmul(yf, mem.y.T, precision=_HI)[r][:, r]
        sy = jnp.matmul(sf, mem.y.T, precision=_HI)[r][:, r]
        ss = jnp.matmul(sf, mem.s.T, precision=_HI)[r][:, r]
        return blocks(yy, sy, ss)

    return lax.cond(jnp.all(free), kept, masked)
