"""The calling conventions of a full-batch method's ``update``, shared by every method.

``update(grads, state, params, *, value=None, value_fn=None, value_and_grad_fn=None)``
with exactly one of the two functions:

* ``value_fn``: the loss as a function of the params alone; the gradient at a trial point
  is ``jax.value_and_grad`` of it;
* ``value_and_grad_fn``: a function returning ``(loss, grads)`` (a torch-style closure, a
  custom or ``jax.custom_vjp`` gradient): one call per trial point.

``grads=None`` (torch's ``step(closure)``): the value and gradient at ``params`` are
computed here, one call. ``value=None``: the value is computed here (one forward pass, or
one call of ``value_and_grad_fn``). The iteration sees only the trained leaves (int, bool
and ``None`` leaves dropped by ``_state.transformation``); the user's functions always get
the whole params tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from optjx import _state, _tree

_TUPLE_HINT = (
    "a function returning (loss, grads) is passed as value_and_grad_fn=, not value_fn= "
    "(value_fn returns the scalar loss alone)."
)


def _scalar_loss(out, who: str, what: str):
    if isinstance(out, tuple):
        raise ValueError(f"{who}: {what} returned a tuple; {_TUPLE_HINT}")
    if jnp.shape(out) != ():
        raise ValueError(f"{who}: {what} must return a scalar loss, got shape {jnp.shape(out)}.")
    return out


def _checked_value_and_grad_fn(value_and_grad_fn, who: str):
    """``x -> (value, grad)`` of the user's ``value_and_grad_fn``, its output checked."""

    def evaluate(x):
        out = value_and_grad_fn(x)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise ValueError(
                f"{who}: value_and_grad_fn must return a pair (loss, grads), got {type(out).__name__}."
            )
        value, grads = out
        return _scalar_loss(value, who, "value_and_grad_fn's loss"), grads

    return evaluate


class UserParams:
    """The user's params and the trained leaves: merge one into the other, restrict back."""

    treedef: Any  # jax's stubs lack PyTreeDef.unflatten and flatten_up_to

    def __init__(self, params):
        self.leaves, self.treedef = jax.tree.flatten(params, is_leaf=_tree.is_none)

    def merged(self, trained):
        """The user's params with the trained leaves replaced by ``trained``'s."""
        try:
            new = self.treedef.flatten_up_to(trained)
        except (ValueError, TypeError):  # not the params' structure: let the user's fn see it
            return trained
        return self.treedef.unflatten(
            [p if n is None else n for n, p in zip(new, self.leaves, strict=True)]
        )

    def restricted(self, grads, trained):
        """``grads`` (like the user's params) with ``None`` where ``trained`` has ``None``."""
        try:
            kept = self.treedef.flatten_up_to(trained)
            full = self.treedef.flatten_up_to(grads)
        except (ValueError, TypeError):
            return grads
        return self.treedef.unflatten(
            [None if k is None else g for k, g in zip(kept, full, strict=True)]
        )

    def completed(self, grads_trained, trained):
        """Gradients like the user's params: integer zeros where nothing is trained."""
        kept = self.treedef.flatten_up_to(trained)
        got = self.treedef.flatten_up_to(grads_trained)
        return self.treedef.unflatten(
            [
                g if k is not None else (None if p is None else jnp.zeros_like(p))
                for g, k, p in zip(got, kept, self.leaves, strict=True)
            ]
        )


def transformation(who: str, init_fn, step_fn) -> optax.GradientTransformationExtraArgs:
    """The public ``init``/``update`` pair around the shared iteration's ``step_fn``.

    ``step_fn(grads, state, params, value, value_and_grad)`` sees only the trained leaves;
    ``value_and_grad`` maps a tree of them to ``(value, grads)``, the value in the state's
    scalar dtype.
    """

    def inner_update(grads, state, params, *, value, value_and_grad):
        _tree.check_matching(grads, state.direction)
        _tree.check_matching(params, state.direction, what="params")
        dtype = state.prev_value.dtype

        def evaluate(x):
            f, g = value_and_grad(x)
            return jnp.asarray(f).astype(dtype), g

        return step_fn(grads, state, params, jnp.asarray(value).astype(dtype), evaluate)

    inner = _state.transformation(init_fn, inner_update, extra_args=True)

    def run(functions, updates, state, params, value):
        value_fn, value_and_grad_fn = functions
        user = UserParams(params)
        if value_fn is not None:

            def loss(trained):
                return _scalar_loss(value_fn(user.merged(trained)), who, "value_fn")

            value_and_grad = jax.value_and_grad(loss)  # over the trained leaves only

        else:
            full = _checked_value_and_grad_fn(value_and_grad_fn, who)

            def value_and_grad(trained):
                f, g = full(user.merged(trained))
                return f, user.restricted(g, trained)

        if updates is None:  # torch's step(closure): value and gradient computed here
            trained = _state.trainable_params(params)
            value, g = value_and_grad(trained)
            updates = user.completed(g, trained)
        elif value is None:  # one pass; torch's closure would have returned it
            value = (
                _scalar_loss(value_fn(params), who, "value_fn")
                if value_fn is not None
                else full(params)[0]
            )
        if jnp.shape(value) != ():
            raise ValueError(
                f"{who}.update: value= must be a scalar loss, got shape {jnp.shape(value)}."
            )
        return inner.update(updates, state, params, value=value, value_and_grad=value_and_grad)

    def update(
        updates,
        state,
        params=None,
        *,
        value=None,
        value_fn: Callable[[Any], Any] | None = None,
        value_and_grad_fn: Callable[[Any], Any] | None = None,
        grad=None,
        **extra,
    ):
        # ``grad``: optax's lbfgs loops pass the raw gradient again; ours is ``updates``.
        # Other keywords are ignored, as optax's GradientTransformationExtraArgs do.
        del grad, extra
        if (value_fn is None) == (value_and_grad_fn is None):
            got = "neither" if value_fn is None else "both"
            raise ValueError(
                f"{who}.update needs exactly one of value_fn= (the loss as a function of the "
                "params only) and value_and_grad_fn= (a function of the params returning "
                f"(loss, grads)); got {got}. E.g. update(grads, state, params, value=loss, "
                "value_fn=loss_fn), or update(None, state, params, value_fn=loss_fn)."
            )
        if params is None:
            raise ValueError(f"{who}.update needs the current params (third argument).")
        return run((value_fn, value_and_grad_fn), updates, state, params, value)

    return optax.GradientTransformationExtraArgs(inner.init, update)
