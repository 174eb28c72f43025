r"""Orthogonalization of matrices by a Newton-Schulz iteration
(``orthogonalize_by_newton_schulz``), the core of Muon."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter

# Jordan et al.'s quintic coefficients and step count (PyTorch's Muon defaults).
COEFFICIENTS = (3.4445, -4.7750, 2.0315)
STEPS = 5


def check_newton_schulz(ns_coefficients, ns_steps, eps) -> tuple:
    """Validate the iteration's arguments, naming the bad one; the coefficients as a triple."""
    if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
        raise TypeError(
            f"ns_coefficients must be a tuple of three numbers (a, b, c), got {ns_coefficients!r}"
        )
    for index, value in enumerate(ns_coefficients):
        if callable(value) and not hasattr(value, "dtype"):
            raise TypeError(f"ns_coefficients[{index}] must be a number or an array")
        _hyper.check_range(f"ns_coefficients[{index}]", value)
    _hyper.check_int("ns_steps", ns_steps, 0)
    if ns_steps >= 100:
        raise ValueError(f"ns_steps must be < 100 (PyTorch's limit), got {ns_steps}")
    if callable(eps) and not hasattr(eps, "dtype"):
        raise TypeError("eps must be a number or an array, not a schedule")
    _hyper.check_nonnegative("eps", eps)
    return tuple(ns_coefficients)


def newton_schulz(matrix, coefficients, steps: int, eps, dtype=None) -> jax.Array:
    r"""$k$ steps of the quintic Newton-Schulz iteration on one matrix, in ``dtype``.

    $X_0 = G / \max(\lVert G \rVert_F, \epsilon)$ (transposed when $G$ has more rows than
    columns, so that $X X^\top$ is the smaller Gram matrix), then
    $X \leftarrow a X + (b A + c A^2) X$ with $A = X X^\top$. Returned in ``dtype``
    (default: the matrix's own).
    """
    dtype = matrix.dtype if dtype is None else jnp.dtype(dtype)
    # Low precision (bfloat16) is stored, float32 accumulates: each product-and-sum is
    # rounded once, as torch's addmm (and a GPU's or TPU's matrix unit) does.
    acc = dtype if dtype.itemsize >= 4 else jnp.dtype(jnp.float32)
    a, b, c = (jnp.asarray(v, acc) for v in coefficients)

    def product(left, right):
        return jnp.matmul(left, right, preferred_element_type=acc)

    x = matrix.astype(dtype)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(acc))))
    x = x / jnp.maximum(norm, jnp.asarray(eps, acc)).astype(dtype)
    for _ in range(steps):
        gram = product(x, x.T).astype(dtype)
        polynomial = (b * gram.astype(acc) + c * product(gram, gram)).astype(dtype)
        x = (a * x.astype(acc) + product(polynomial, x)).astype(dtype)
    return x.T if tall else x


def require_matrices(tree, who: str) -> None:
    """``ValueError`` naming the key path of the first leaf that is not a matrix."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jnp.ndim(leaf) != 2:
            raise ValueError(
                f"{who} takes 2-d leaves only (matrices), and the leaf at key path "
                f"{jax.tree_util.keystr(path)} has shape {jnp.shape(leaf)}: give the other "
                "leaves another optimizer (see optjx.muon's recipe), and reshape conv kernels "
                "(h, w, in, out) to (h * w * in, out)."
            )


def orthogonalize_by_newton_schulz(
    *,
    ns_coefficients: tuple = COEFFICIENTS,
    ns_steps: int = STEPS,
    eps: Hyperparameter = 1e-7,
    ns_dtype: Any = jnp.bfloat16,
) -> optax.GradientTransformation:
    r"""Replace every matrix $G$ by an approximate orthogonalization $\approx U V^\top$.

    With $G = U \Sigma V^\top$, the iteration

    $$
    X_0 = \frac{G}{\max(\lVert G \rVert_F, \epsilon)}, \qquad
    A_j = X_j X_j^\top, \qquad
    X_{j+1} = a X_j + (b A_j + c A_j^2) X_j
    $$

    applies the odd polynomial $p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5$ to every
    singular value $k$ times. Jordan et al.'s coefficients maximise the slope at 0, so
    after 5 steps the singular values lie in about $[0.7, 1.2]$ rather than at 1: an
    approximate $U V^\top$, as Muon uses it. The iteration runs in ``ns_dtype`` and the
    result is cast back to the gradient's dtype. Stateless.

    References:
      Jordan et al. (2024), "Muon: An optimizer for hidden layers in neural networks";
      Bernstein & Newhouse (2024), "Old optimizer, new norm" (Newton-Schulz as the
      steepest descent under the spectral norm).

    Args:
      ns_coefficients: $(a, b, c)$ (default (3.4445, -4.7750, 2.0315)), numbers.
      ns_steps: $k$, an int in $[0, 100)$ (default 5).
      eps: $\epsilon \ge 0$ (default 1e-7).
      ns_dtype: the dtype of the iteration (default ``jnp.bfloat16``, as PyTorch casts);
        ``None`` runs it in each gradient's own dtype.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Raises:
      ValueError: a bad argument, naming it; at ``init`` or ``update``, a leaf that is not
        2-d, naming its key path.

    Differences from PyTorch and optax:
      PyTorch's ``_zeropower_via_newtonschulz`` (always bfloat16); the Frobenius norm of
      a low-precision matrix is summed in float32. ``optax.contrib.orthogonalize_via_newton_schulz``
      is the same iteration.

    Examples:
      >>> tx = optjx.chain(optjx.orthogonalize_by_newton_schulz(ns_dtype=None),
      ...                  optjx.scale_by_learning_rate(0.02))
    """
    coefficients = check_newton_schulz(ns_coefficients, ns_steps, eps)

    def init_fn(params):
        require_matrices(params, "orthogonalize_by_newton_schulz")
        _tree.require_real(params, "orthogonalize_by_newton_schulz")
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        require_matrices(updates, "orthogonalize_by_newton_schulz")

        def one(g):
            return newton_schulz(g, coefficients, ns_steps, eps, ns_dtype).astype(g.dtype)

        return jax.tree.map(one, updates), state

    return _state.transformation(init_fn, update_fn)
