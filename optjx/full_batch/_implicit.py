r"""Implicit differentiation of a minimiser: the vector-Jacobian product of $x^*(\theta)$.

At a solution $x^*(\theta)$ of $\nabla_x f(x^*, \theta) = 0$, differentiating the
optimality condition gives $H \, \partial x^* / \partial \theta = -\partial_\theta
\nabla_x f$ with $H = \nabla_x^2 f(x^*, \theta)$ (the implicit function theorem). For a
cotangent $\bar x$, the vector-Jacobian product is therefore

$$\bar\theta = -(\partial_\theta \nabla_x f)^\top v, \qquad H v = \bar x,$$

($H$ symmetric). $v$ comes from conjugate gradients on Hessian-vector products
(``jax.jvp`` of ``jax.grad``: forward over reverse, about two gradients each), and
$\bar\theta$ from one ``jax.vjp`` of $\theta \mapsto \nabla_x f(x^*, \theta)$. The solver
is never differentiated, so its loop need not be reverse-differentiable.

Reference: Blondel et al. 2022, "Efficient and Modular Implicit Differentiation", NeurIPS.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg


def _tolerance(tree) -> float:
    """CG's relative residual: eps**0.75 of the widest float (1.8e-12 in float64)."""
    dtypes = [jnp.result_type(x) for x in jax.tree.leaves(tree)]
    widest = max((jnp.finfo(d).bits, d) for d in dtypes if jnp.issubdtype(d, jnp.inexact))[1]
    return float(jnp.finfo(widest).eps) ** 0.75


def _zero_cotangent(x):
    """A zero cotangent for a primal input: ``float0`` for integers, as JAX wants."""
    if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return jnp.zeros_like(x)
    return jax.numpy.zeros(jnp.shape(x), jax.dtypes.float0)


def _negated(cotangents):
    def negate(g):
        return -g if jnp.issubdtype(g.dtype, jnp.inexact) else g

    return jax.tree.map(negate, cotangents)


def solution(solve, loss, params, args) -> tuple[Any, Any]:
    """``solve(params, args) -> (x_star, info)``, differentiable in ``args`` implicitly.

    Args:
      solve: runs the optimizer from ``params`` and returns ``(x_star, info)``.
      loss: ``(x, args) -> scalar``, the function ``x_star`` minimises.
      params: the starting point (its cotangent is zero: the minimiser does not depend
        on where the search starts).
      args: the tuple of arguments to differentiate through.

    Returns:
      ``(x_star, info)``; ``info``'s cotangent is ignored (the caller recomputes what it
      differentiates).
    """

    def gradient_in_x(x, a):
        return jax.grad(loss)(x, a)

    @jax.custom_vjp
    def solved(params, args):
        return solve(params, args)

    def forward(params, args):
        x_star, info = solve(params, args)
        return (x_star, info), (x_star, params, args)

    def backward(residuals, cotangent):
        x_star, params, args = residuals
        x_bar, _ = cotangent

        def hessian_vector_product(v):
            return jax.jvp(lambda x: gradient_in_x(x, args), (x_star,), (v,))[1]

        v, _ = cg(hessian_vector_product, x_bar, tol=_tolerance(x_star))
        _, vjp_args = jax.vjp(lambda a: gradient_in_x(x_star, a), args)
        (args_bar,) = vjp_args(v)
        return jax.tree.map(_zero_cotangent, params), _negated(args_bar)

    solved.defvjp(forward, backward)
    return solved(params, args)
