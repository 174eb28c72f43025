r"""L-BFGS-B's subspace minimisation with the Morales & Nocedal (2011) projection.

From the Cauchy point $x^c$, over the free variables $F$ (not at a bound at $x^c$;
$Z$ selects them), the model's reduced Newton step (Byrd et al. 1995, sec. 5.1, the
direct primal method) is

$$
\hat d = \frac1\theta \hat r + \frac1{\theta^2} Z^\top W
  \bigl(K - \tfrac1\theta W^\top Z Z^\top W\bigr)^{-1} W^\top Z \hat r,
\qquad \hat r = -Z^\top\bigl(g + \theta (x^c - x) - W M c\bigr)
$$

(the Sherman-Morrison-Woodbury form of $(Z^\top B Z)^{-1}$, $M = K^{-1}$,
$c = W^\top (x^c - x)$). Morales & Nocedal: the point is $P(x^c + \hat d)$ (projected
onto the box) when that is a descent direction from $x$, $(P(x^c + \hat d) - x)^\top g
\le 0$; otherwise the step back along $\hat d$ to the first bound, as in the 1995 code.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from optjx.full_batch._lbfgsb_memory import Compact, free_products, m_times, w_times, wt_times

_HI = lax.Precision.HIGHEST


def reduced_gradient(x, g, xcp, c, free, b: Compact):
    r"""$\hat r$ (``cmprlb``)."""
    r = -b.theta * (xcp - x) - g + w_times(b, m_times(b, c))
    return jnp.where(free, r, 0.0)


def subspace_point(x, g, lo, hi, xcp, r, free, b: Compact):
    """The point the line search aims at (L-BFGS-B 3.0's ``subsm``)."""
    theta = b.theta
    v = wt_times(b, r)  # = W_F^T r: r is zero off F
    v = jnp.linalg.solve(b.k - free_products(b, free) / theta, v)
    du = r / theta + w_times(b, v) / (theta * theta)
    du = jnp.where(free, du, 0.0)
    # Morales & Nocedal: project x^c + du, keep it if it descends from x.
    projected = jnp.where(free, jnp.minimum(jnp.maximum(xcp + du, lo), hi), xcp)
    touches = jnp.any(free & ((projected == lo) | (projected == hi)))
    descent = jnp.dot(projected - x, g, precision=_HI) <= 0
    # Otherwise: the largest alpha <= 1 keeping x^c + alpha du in the box.
    down = free & (du < 0) & jnp.isfinite(lo)
    up = free & (du > 0) & jnp.isfinite(hi)
    gap_lo = lo - xcp
    gap_hi = hi - xcp
    ratio = jnp.where(down, jnp.where(gap_lo >= 0, 0.0, gap_lo / jnp.where(down, du, 1.0)),
                      jnp.where(up, jnp.where(gap_hi <= 0, 0.0, gap_hi / jnp.where(up, du, 1.0)), 1.0))  # fmt: skip
    ratio = jnp.where(down & (du * 1.0 >= gap_lo), 1.0, ratio)
    ratio = jnp.where(up & (du * 1.0 <= gap_hi), 1.0, ratio)
    first = jnp.argmin(ratio)
    alpha = jnp.minimum(1.0, ratio[first])
    back = xcp + jnp.where(free, alpha * du, 0.0)
    # The variable that limits alpha lands on its bound exactly.
    limited = alpha < 1
    back = back.at[first].set(
        jnp.where(limited, jnp.where(du[first] > 0, hi[first], lo[first]), back[first])
    )
    back = jnp.minimum(jnp.maximum(back, lo), hi)
    return jnp.where(~touches | descent, projected, back)
