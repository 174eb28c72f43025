"""Interpolation for line searches: the minimiser of a cubic through two points."""

from __future__ import annotations

import jax.numpy as jnp


def cubic_minimizer(x1, f1, g1, x2, f2, g2, low=None, high=None):
    """Minimiser of the cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)`` in ``[low, high]``.

    Nocedal & Wright (2006), eq. (3.59). When the cubic has no real critical point the
    midpoint of the bounds is returned; bounds default to the interval between the points.
    """
    if low is None:
        low = jnp.where(x1 <= x2, x1, x2)
        high = jnp.where(x1 <= x2, x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    real = d2_square >= 0  # False for NaN as well: then bisect
    d2 = jnp.sqrt(jnp.where(real, d2_square, 0))
    # Written from the side of the larger point, which keeps the ratio well conditioned.
    from_x2 = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    from_x1 = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    t = jnp.where(x1 <= x2, from_x2, from_x1)
    # Clamp as Python's min(max(t, low), high): a NaN t stays NaN, as in torch.
    t = jnp.where(low > t, low, t)
    t = jnp.where(high < t, high, t)
    return jnp.where(real, t, (low + high) / 2)
