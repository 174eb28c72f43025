r"""The trust-region pieces of ``optjx.trust_region_newton``, pure and loop-free but one.

The Steihaug-Toint conjugate-gradient solve of the trust-region subproblem
(``steihaug``), the point where a ray leaves the region (``boundary_steps``), the
quadratic model (``model_value``) and the radius rule (``radius_update``), each
a function of packed vectors (one flat vector per dtype, see
``optjx.full_batch._packing.Packing``) and scalars. The Hessian enters only through
``hvp``, a function ``v -> H v``. Facts from scipy 1.17.1's
``scipy/optimize/_trustregion.py`` and ``_trustregion_ncg.py``; Nocedal & Wright (2006),
Algorithm 7.2 and Algorithm 4.1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from optjx.full_batch import _common as c

SHRINK_BELOW, GROW_ABOVE = 0.25, 0.75  # the ratio thresholds of scipy's radius rule
SHRINK, GROW = 0.25, 2.0  # the factors


def boundary_steps(z, d, radius, dtype):
    r"""Both roots $t_a \le t_b$ of $\lVert z + t d \rVert_2 = \Delta$, scipy's way.

    With $a = d^\top d$, $b = 2 z^\top d$, $c = z^\top z - \Delta^2$ and
    $q = b + \operatorname{sign}(b) \sqrt{b^2 - 4ac}$ the roots are $-q / 2a$ and
    $-2c / q$ (the form without cancellation), sorted. Inside the region ($c < 0$)
    $t_a < 0 < t_b$.
    """
    a = c.dot(d, d, dtype)
    b = 2 * c.dot(z, d, dtype)
    cc = c.dot(z, z, dtype) - radius**2
    aux = b + jnp.copysign(jnp.sqrt(b * b - 4 * a * cc), b)
    first, second = -aux / (2 * a), -2 * cc / aux
    return jnp.minimum(first, second), jnp.maximum(first, second)


def model_value(value, grad, step, hessian_step, dtype):
    r"""$m(p) = f + g^\top p + \tfrac12 p^\top B p$, given $B p$ (scipy's summation order)."""
    return value + c.dot(grad, step, dtype) + 0.5 * c.dot(step, hessian_step, dtype)


def radius_update(radius, ratio, hits_boundary, max_radius):
    r"""scipy's rule (Nocedal & Wright, Algorithm 4.1): $\Delta / 4$ when $\rho < 1/4$;
    $\min(2 \Delta, \Delta_{max})$ when $\rho > 3/4$ and the step reached the boundary;
    else $\Delta$ (a NaN ratio keeps it)."""
    grown = jnp.where((ratio > GROW_ABOVE) & hits_boundary,
                      jnp.minimum(GROW * radius, max_radius), radius)  # fmt: skip
    return jnp.where(ratio < SHRINK_BELOW, SHRINK * radius, grown)


class SteihaugResult(NamedTuple):
    """What ``steihaug`` returns (vectors packed)."""

    step: Any  # p
    hessian_step: Any  # B p, kept up by the recurrence B z_{j+1} = B z_j + alpha B d_j
    hits_boundary: jax.Array  # bool: ||p|| = radius
    negative_curvature: jax.Array  # bool: stopped at d^T B d <= 0
    products: jax.Array  # int32: Hessian-vector products computed


class _Loop(NamedTuple):
    z: Any
    hz: Any  # B z
    r: Any  # the residual B z + g
    d: Any
    rr: Any  # r^T r
    products: Any
    done: Any
    result: SteihaugResult


def steihaug(hvp, value, grad, grad_norm, radius, dtype, max_products: int) -> SteihaugResult:
    r"""The Steihaug-Toint truncated CG step for $\min_p m(p)$ s.t. $\lVert p \rVert_2 \le
    \Delta$, as scipy's ``CGSteihaugSubproblem.solve`` (Nocedal & Wright, Algorithm 7.2).

    From $z_0 = 0$, $r_0 = g$, $d_0 = -g$, CG on $B p = -g$ until one of, at iteration
    $j$:

    * $d_j^\top B d_j \le 0$ (negative curvature): of the two points where the line
      $z_j + t d_j$ crosses the boundary, the one with the lower model value ($t_b$
      on a tie);
    * $\lVert z_j + \alpha_j d_j \rVert \ge \Delta$: the boundary point $z_j + t_b d_j$,
      $t_b > 0$;
    * $\lVert r_{j+1} \rVert < \min(\tfrac12, \sqrt{\lVert g \rVert}) \lVert g \rVert$:
      the interior point $z_{j+1}$.

    scipy's loop has no cap; here after ``max_products`` products the current $z_j$ is
    returned (interior), so that a loop kept going by rounding ends.
    """
    tolerance = jnp.minimum(0.5, jnp.sqrt(grad_norm)) * grad_norm
    zeros = jax.tree.map(jnp.zeros_like, grad)
    false = jnp.asarray(False)
    i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    start = _Loop(z=zeros, hz=zeros, r=grad, d=c.neg(grad), rr=c.dot(grad, grad, dtype),
                  products=i32(0), done=false,
                  result=SteihaugResult(zeros, zeros, false, false, i32(0)))  # fmt: skip

    def body(s: _Loop) -> _Loop:
        hd = hvp(s.d)
        products = s.products + 1
        curvature = c.dot(s.d, hd, dtype)
        t_low, t_high = boundary_steps(s.z, s.d, radius, dtype)

        def on_line(t):  # the point z + t d and its B (z + t d), by linearity
            return c.axpy(t, s.d, s.z), c.axpy(t, hd, s.hz)

        low, high = on_line(t_low), on_line(t_high)
        lower_is_better = model_value(value, grad, low[0], low[1], dtype) < model_value(
            value, grad, high[0], high[1], dtype
        )
        negative = curvature <= 0
        # Where the curvature is not positive, alpha is not used: keep it finite.
        alpha = s.rr / jnp.where(negative, 1, curvature)
        z_next, hz_next = on_line(alpha)
        too_long = jnp.sqrt(c.dot(z_next, z_next, dtype)) >= radius
        r_next = c.axpy(alpha, hd, s.r)
        rr_next = c.dot(r_next, r_next, dtype)
        converged = jnp.sqrt(rr_next) < tolerance
        capped = products >= max_products

        boundary = c.select(negative & lower_is_better, low, high)
        step, hstep = c.select(negative | too_long, boundary, (z_next, hz_next))
        step, hstep = c.select(capped & ~(negative | too_long | converged), (s.z, s.hz),
                               (step, hstep))  # fmt: skip
        done = negative | too_long | converged | capped
        result = SteihaugResult(step, hstep, negative | too_long, negative, products)
        beta = rr_next / jnp.where(s.rr == 0, 1, s.rr)
        return _Loop(z=z_next, hz=hz_next, r=r_next, d=c.axpy(beta, s.d, c.neg(r_next)),
                     rr=rr_next, products=products, done=done, result=result)  # fmt: skip

    return lax.while_loop(lambda s: ~s.done, body, start).result
