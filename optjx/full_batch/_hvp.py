r"""Hessian-vector products by forward-over-reverse differentiation, never a dense Hessian.

$H v = \frac{d}{d\epsilon} \nabla f(x + \epsilon v)\big|_{\epsilon = 0}$: the forward-mode
derivative (``jax.jvp``) of the reverse-mode gradient. ``linearized_gradient``
linearises the gradient at $x$ once (``jax.linearize``: one gradient evaluation, whose
intermediate values are kept) and returns the linear map $v \mapsto H v$, so that each of
the many products an inner conjugate-gradient loop asks for at the same $x$ runs only the
tangent part, about the cost of one more gradient.

The map works on packed vectors (``optjx.full_batch._packing.Packing``: one flat
vector per dtype), as the methods' inner loops do; ``value_and_grad`` is the method's
``x -> (f(x), grad f(x))`` on the params tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from optjx.full_batch._packing import Packing


def linearized_gradient(value_and_grad, x, packing: Packing) -> Callable[[Any], Any]:
    """``v -> H(x) v`` on packed vectors, $H$ the Hessian of the loss at the tree ``x``."""

    def gradient(point):
        return value_and_grad(point)[1]

    _, tangent_map = jax.linearize(gradient, x)

    def product(v):
        return packing.pack(tangent_map(packing.unpack(v)))

    return product
