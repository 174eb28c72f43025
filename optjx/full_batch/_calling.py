"""The calling conventions of a full-batch method's ``update``, shared by every method.

``update(grads, state, params, *, value, value_fn)``: the checks of the arguments, the
loss wrapped into ``value_and_grad`` for the iteration, the trained leaves put back into
the user's params before each call of ``value_fn``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from optjx import _tree


def _value_and_grad(value_fn, who: str, dtype):
    """``x -> (value, grad)`` of the user's loss, the value checked scalar and cast."""

    def loss(x):
        out = value_fn(x)
        if jnp.shape(out) != ():
            raise ValueError(
                f"{who}: value_fn must return a scalar loss, got shape {jnp.shape(out)}."
            )
        return out

    def evaluate(x):
        value, grad = jax.value_and_grad(loss)(x)
        return jnp.asarray(value).astype(dtype), grad

    return evaluate


def transformation(who: str, init_fn, step_fn) -> optax.GradientTransformationExtraArgs:
    """The public ``init``/``update`` pair around a method's ``step_fn``.

    ``step_fn(grads, state, params, value, value_and_grad)`` (the shared iteration) sees only the trained leaves
    (``_tree.transformation`` drops int, bool and ``None`` leaves); ``value_fn`` still gets
    the whole params tree: the trained leaves are put back into the user's params before
    each call.
    """

    def inner_update(grads, state, params, *, value, value_fn):
        _tree.check_matching(grads, state.direction)
        _tree.check_matching(params, state.direction, what="params")
        dtype = state.prev_value.dtype
        value = jnp.asarray(value).astype(dtype)
        return step_fn(grads, state, params, value, _value_and_grad(value_fn, who, dtype))

    inner = _tree.transformation(init_fn, inner_update, extra_args=True)

    def update(updates, state, params=None, *, value=None, value_fn=None, grad=None, **extra):
        # ``grad``: optax's lbfgs loops pass the raw gradient again; ours is ``updates``.
        # Other keywords are ignored, as optax's GradientTransformationExtraArgs do.
        del grad, extra
        if value_fn is None:
            raise ValueError(
                f"{who}.update needs value_fn=, the loss as a function of the params only: "
                "update(grads, state, params, value=loss, value_fn=loss_fn)."
            )
        if params is None:
            raise ValueError(f"{who}.update needs the current params (third argument).")
        leaves, treedef = jax.tree.flatten(params, is_leaf=_tree.is_none)

        def merged_value_fn(trained):
            try:
                new = treedef.flatten_up_to(trained)
            except (ValueError, TypeError):
                return value_fn(trained)
            return value_fn(
                treedef.unflatten([p if n is None else n for n, p in zip(new, leaves, strict=True)])
            )

        if value is None:  # one forward pass; torch's closure would have returned it
            value = value_fn(params)
        if jnp.shape(value) != ():
            raise ValueError(
                f"{who}.update: value= must be a scalar loss, got shape {jnp.shape(value)}."
            )
        return inner.update(updates, state, params, value=value, value_fn=merged_value_fn)

    return optax.GradientTransformationExtraArgs(inner.init, update)
