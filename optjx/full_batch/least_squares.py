"""What the least-squares methods share: the problem as one flat vector, the update wrapper.

``optjx.gauss_newton`` and ``optjx.levenberg_marquardt`` minimise
$\\tfrac12 \\lVert r(x) \\rVert^2$ for a residual function ``residual_fn(params)`` that
returns an array or a tree of arrays. Both work on one flat vector ``x`` of the trained
leaves (float leaves; int, bool and ``None`` leaves are left alone), packed as the other
full-batch methods pack them (``optjx.full_batch._packing.Packing``: one group per
dtype, in tree order) and concatenated in the *scalar dtype* (the widest float of the
params, at least float32), so that the Jacobian is one ``(m, n)`` matrix or one linear
operator. The residuals are raveled and concatenated in the same dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from optjx import _state, _tree
from optjx.full_batch import _calling
from optjx.full_batch import _common as c
from optjx.full_batch._packing import Packing, flat, replicated, split

# The dense solvers form the (m, n) Jacobian with n forward-mode products: beyond this
# many entries they raise and point to solver="cg".
DENSE_LIMIT = 10**8


class Problem:
    """The trained leaves of ``params`` as one vector, and the residuals as a function of it."""

    def __init__(self, params, residual_fn: Callable, dtype):
        self.params, self.dtype = params, dtype
        self.trained = _state.trainable_params(params)
        self.packing = Packing(self.trained)
        self.size = sum(self.packing.lengths)
        self._residual_fn = residual_fn
        self._user = _calling.UserParams(params)

    def flatten(self, tree) -> jax.Array:
        return flat(self.packing.pack(tree), self.dtype)

    def unflatten(self, vector):
        return self.packing.unpack(split(vector, self.packing))

    def full_params(self, vector):
        """The user's params with the trained leaves taken from ``vector``."""
        return self._user.merged(self.unflatten(vector))

    def residuals(self, vector) -> jax.Array:
        try:
            out = self._residual_fn(self.full_params(vector))
        except Exception as error:  # the user's error, said to come from residual_fn
            if hasattr(error, "add_note"):  # Python 3.11+
                error.add_note("(raised by residual_fn(params), given the params passed to update)")
            raise
        leaves = jax.tree_util.tree_flatten_with_path(out)[0]
        if not leaves:
            raise ValueError("residual_fn returned no arrays: it must return the residuals.")
        # Residuals typed with Explicit sharded axes are gathered first: no ravel otherwise.
        return jnp.concatenate(
            [jnp.ravel(replicated(_real(path, r))).astype(self.dtype) for path, r in leaves]
        )

    def updates(self, new_vector):
        """``new - old`` for the trained leaves, zero (in the param's dtype) for the others."""
        treedef = self._user.treedef
        new = treedef.flatten_up_to(self.unflatten(new_vector))
        out = [
            (None if p is None else _state._zero_update(jnp.asarray(p), p)) if n is None else n - p
            for n, p in zip(new, self._user.leaves, strict=True)
        ]
        return treedef.unflatten(out)


def _real(path, leaf) -> jax.Array:
    """A residual leaf as an array; ``TypeError`` for a complex or non-numeric one (the
    cast to the params' float dtype would drop an imaginary part silently)."""
    try:
        array = jnp.asarray(leaf)
    except TypeError:
        array = None
    if array is None or not (
        jnp.issubdtype(array.dtype, jnp.floating)
        or jnp.issubdtype(array.dtype, jnp.integer)
        or array.dtype == jnp.bool_
    ):
        shown = type(leaf).__name__ if array is None else array.dtype
        raise TypeError(
            f"residual_fn must return real arrays (a float array or a tree of them), got "
            f"{shown} at {jax.tree_util.keystr(path) or 'the top'}."
        )
    return array


def check_dense(who: str, m: int, n: int) -> None:
    if m * n > DENSE_LIMIT:
        raise ValueError(
            f"{who}: the dense Jacobian would have {m} x {n} = {m * n} entries (limit "
            f"{DENSE_LIMIT}); use solver='cg', which never forms it."
        )


def least_squares_transformation(
    who: str, init_fn, step_fn
) -> optax.GradientTransformationExtraArgs:
    """The public ``init``/``update`` pair around ``step_fn(state, problem, x)``.

    ``step_fn`` gets the state, the ``Problem`` and the flat start vector, and
    returns ``(new_vector, new_state)``; the wrapper turns the vector into updates.
    """

    def init(params):
        trained = _state.trainable_params(params)
        dtype = c.scalar_dtype(trained)
        return init_fn(trained, sum(Packing(trained).lengths), dtype)

    def run(residual_fn, state, params):
        problem = Problem(params, residual_fn, c.scalar_dtype(_state.trainable_params(params)))
        expected = getattr(state, "diag", None)
        if expected is not None and problem.size != expected.shape[0]:
            raise ValueError(
                f"{who}.update: the params have {problem.size} trained entries, the state "
                f"was built for {expected.shape[0]}."
            )
        x = problem.flatten(problem.trained)
        new_x, state = step_fn(state, problem, x)
        return problem.updates(new_x), state

    def update(grads, state, params=None, *, residual_fn=None, **extra: Any):
        del extra  # optax's value=, grad=, value_fn= and other keywords are ignored
        if residual_fn is None:
            raise ValueError(
                f"{who}.update needs residual_fn=, the residuals as a function of the params "
                "only: update(grads, state, params, residual_fn=fn) (grads may be None)."
            )
        if not callable(residual_fn):
            raise TypeError(f"{who}.update: residual_fn must be callable, got {residual_fn!r}.")
        if params is None:
            raise ValueError(f"{who}.update needs the current params (third argument).")
        if grads is not None:
            _tree.check_matching(
                _state.trainable_params(grads), _state.trainable_params(params), what="gradients",
                against="the params",
            )  # fmt: skip
        return run(residual_fn, state, params)

    return optax.GradientTransformationExtraArgs(init, update)
