r"""The inner conjugate-gradient loop of ``optjx.newton_cg``: a Newton direction from
Hessian-vector products, truncated early, with scipy's negative-curvature exits.

Pure: a function of the packed gradient (one flat vector per dtype, see
``optjx.full_batch._packing.Packing``) and of ``hvp``, a function ``v -> H v``.
Facts from scipy 1.17.1's ``_minimize_newtoncg`` (``scipy/optimize/_optimize.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from optjx.full_batch import _common as c

# scipy stops CG at a curvature in [0, 3 eps], eps float64's whatever the dtype.
FLAT_CURVATURE = 3 * float(np.finfo(np.float64).eps)
_GOING, _DONE, _NOT_CONVERGED = 0, 1, 2


class TruncatedCgResult(NamedTuple):
    """What ``newton_direction`` returns."""

    direction: Any  # p, packed
    products: jax.Array  # int32: Hessian-vector products (scipy's hcalls)
    converged: jax.Array  # bool: False when 20 n products ended the loop (scipy's status 3)
    negative_curvature: jax.Array  # bool: stopped at p^T H p < 0


class _Loop(NamedTuple):
    x: Any  # the CG iterate (scipy's xsupi)
    r: Any  # the residual H x + g (ri)
    p: Any  # the search direction (psupi)
    rr: Any  # r^T r (dri0)
    i: Any  # CG steps taken
    products: Any
    status: Any
    negative: Any


def newton_direction(hvp, grad, dtype, max_products: int) -> TruncatedCgResult:
    r"""Truncated CG on $H p = -g$ from $p = 0$, as scipy's Newton-CG inner loop.

    With $\epsilon = \min(\tfrac12, \sqrt{\lVert g \rVert_1})$, CG stops:

    * when $\lVert r \rVert_1 \le \epsilon \lVert g \rVert_1$ (tested before each
      product; scipy's forcing sequence, on 1-norms): $p$ is the CG iterate;
    * at a direction $d$ of curvature $d^\top H d \in [0, 3 \cdot 2^{-52}]$: the CG
      iterate (0 at the first step);
    * at $d^\top H d < 0$: the CG iterate, or at the first step the steepest-descent
      direction scaled by the curvature, $-\frac{g^\top g}{\lvert g^\top H g \rvert} g$;
    * after ``max_products`` products (scipy's $20 n$) without any of the above:
      ``converged`` is false and scipy stops the run without a step.
    """
    zeros = jax.tree.map(jnp.zeros_like, grad)
    magnitude = c.sum_abs(grad, dtype)
    tolerance = jnp.minimum(0.5, jnp.sqrt(magnitude)) * magnitude
    i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731

    def small(r):  # scipy's test before each product
        return c.sum_abs(r, dtype) <= tolerance

    first = jnp.where(small(grad), _DONE, _GOING)
    start = _Loop(x=zeros, r=grad, p=c.neg(grad), rr=c.dot(grad, grad, dtype), i=i32(0),
                  products=i32(0), status=first.astype(jnp.int32),
                  negative=jnp.asarray(False))  # fmt: skip

    def body(s: _Loop) -> _Loop:
        hp = hvp(s.p)
        curvature = c.dot(s.p, hp, dtype)
        flat = (curvature >= 0) & (curvature <= FLAT_CURVATURE)
        negative = curvature < 0
        alpha = s.rr / jnp.where(flat | negative, 1, curvature)
        x = c.axpy(alpha, s.p, s.x)
        r = c.axpy(alpha, hp, s.r)
        rr = c.dot(r, r, dtype)
        p = c.axpy(rr / s.rr, s.p, c.neg(r))
        # scipy's xsupi = dri0 / (-curv) * b, b = -g: the first step's descent fallback.
        steepest = c.scale(s.rr / -curvature, c.neg(grad))
        stop = flat | negative
        x = c.select(stop, c.select(negative & (s.i == 0), steepest, s.x), x)
        products = s.products + 1
        # scipy's for-else: after the last allowed product the loop ends unconverged,
        # before the residual test of the next pass could succeed.
        status = jnp.where(stop, _DONE, jnp.where(products >= max_products, _NOT_CONVERGED,
                                                  jnp.where(small(r), _DONE, _GOING)))  # fmt: skip
        return _Loop(x=x, r=r, p=p, rr=rr, i=s.i + 1, products=products,
                     status=status.astype(jnp.int32), negative=negative)  # fmt: skip

    s = lax.while_loop(lambda s: s.status == _GOING, body, start)
    return TruncatedCgResult(s.x, s.products, s.status == _DONE, s.negative)
