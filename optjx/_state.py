"""The stage machinery: how every optjx stage is built, and its step counter.

Structure rule (CONTRIBUTING.md, convention 1): a state's tree structure depends only on
``None``, bools, strings and the arguments a user passes in ``static_args``, never on
whether a number is a Python number, an array or a schedule, nor on its value.
``optax.inject_hyperparams`` turns every number into an array and every schedule into its
value at the step, and the wrapped optimizer's ``inner_state`` must be the plain one's.
So a stage that reads a counter for some form of a hyperparameter (a schedule, a
first-step rule, a bias correction) keeps a ``count`` field always, first in its state.

* ``transformation`` builds a stage that accepts every leaf optax accepts;
* ``stateless`` builds a stage whose only state is that counter (``ScheduleState``);
* ``chain`` is the chain of an alias: its learning-rate and weight-decay stages
  (``ReadsChainCount``) read the counter of the alias's stateful stage instead of
  keeping their own, so an alias keeps one counter (as optax's aliases do), whatever its
  hyperparameters are.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _tree

INT32_MAX = int(np.iinfo(np.int32).max)


class ScheduleState(NamedTuple):
    """The counter of a stage whose only state it is (a step size, bound or decay that
    may be a schedule): kept whatever the value is, so that the structure is one."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax


def zero_count() -> jax.Array:
    """A fresh int32 step counter."""
    return jnp.zeros([], jnp.int32)


def next_count(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of wrapping negative."""
    return jnp.where(count < INT32_MAX, count + 1, count)


def saturating_add(count: jax.Array, more) -> jax.Array:
    """``count + more`` for int32 counters (``more >= 0``), stopping at the int32 maximum."""
    return jnp.where(count > INT32_MAX - more, INT32_MAX, count + more)


def advance(state, **fields: Any):
    """``state`` with new ``fields`` and its counter advanced."""
    return state._replace(count=next_count(state.count), **fields)


def _trainable(leaf) -> bool:
    """A leaf an optimizer moves: a float array or scalar (not int, bool, float0)."""
    dtype = leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf)
    return jnp.issubdtype(dtype, jnp.inexact)


def _as_array(leaf):
    return leaf if hasattr(leaf, "dtype") else jnp.asarray(leaf)


def _zero_update(update, param):
    """The update of a leaf that is not trained: zero, in the param's dtype where the param
    is known (so ``apply_updates`` adds an int zero to an int param: ``float0`` cannot be
    added), else in the gradient's own dtype."""
    if update is None:
        return None
    if param is not None and not _trainable(param):
        return jnp.zeros_like(_as_array(param))
    update = _as_array(update)  # a Python int gradient leaf (optax accepts them)
    if update.dtype == jax.dtypes.float0:
        return update
    return jnp.zeros_like(update)


def trainable_params(params):
    """``params`` with the leaves no optimizer moves (int, bool) set to ``None``, and Python
    float scalars as arrays: what every optjx stage initialises its state from."""
    treedef: Any  # jax's stubs lack PyTreeDef.unflatten and flatten_up_to
    leaves, treedef = jax.tree.flatten(params, is_leaf=_tree.is_none)
    kept = [None if p is None or not _trainable(p) else _as_array(p) for p in leaves]
    if all(k is p for k, p in zip(kept, leaves, strict=True)):
        return params
    return treedef.unflatten(kept)


def transformation(init_fn, update_fn, *, extra_args: bool = False):
    """An optjx stage that accepts every leaf optax accepts (CONTRIBUTING.md, convention 4).

    ``init_fn`` and ``update_fn`` see only the trained leaves: float arrays (Python float
    scalars become arrays). Integer and bool params, ``float0`` or integer gradients and
    ``None`` gradient leaves are set to ``None`` before they reach the stage, so its state
    holds nothing for them; their update is zero in the gradient's dtype (``None`` stays
    ``None``). When every leaf is a float array the stage is called as it is: no cost.

    ``extra_args=True`` for an ``update_fn`` that takes keyword arguments (wrappers, methods
    that read ``value``): the result is then a ``GradientTransformationExtraArgs``.
    """

    def init(params):
        return init_fn(trainable_params(params))

    def update(updates, state, params=None, **extra_args):
        if updates is None:
            # No gradients at all (optax passes None through): no step, nothing to count.
            return None, state
        treedef: Any  # jax's stubs lack PyTreeDef.unflatten and flatten_up_to
        leaves, treedef = jax.tree.flatten(updates, is_leaf=_tree.is_none)
        try:
            param_leaves = [None] * len(leaves) if params is None else treedef.flatten_up_to(params)
        except (ValueError, TypeError):  # mismatched trees: the stage names the key path
            return update_fn(updates, state, params, **extra_args)
        keep = [
            u is not None and _trainable(u) and (p is None or _trainable(p))
            for u, p in zip(leaves, param_leaves, strict=True)
        ]
        plain = all(
            (u is None or (k and hasattr(u, "dtype")))
            and (p is None or (k and hasattr(p, "dtype")))
            for u, p, k in zip(leaves, param_leaves, keep, strict=True)
        )
        if plain:
            return update_fn(updates, state, params, **extra_args)
        sub_updates = treedef.unflatten(
            [_as_array(u) if k else None for u, k in zip(leaves, keep, strict=True)]
        )
        sub_params = None
        if params is not None:
            sub_params = treedef.unflatten(
                [_as_array(p) if k else None for p, k in zip(param_leaves, keep, strict=True)]
            )
        out, state = update_fn(sub_updates, state, sub_params, **extra_args)
        out_leaves = treedef.flatten_up_to(out)
        restored = [
            o if k else _zero_update(u, p)
            for o, u, p, k in zip(out_leaves, leaves, param_leaves, keep, strict=True)
        ]
        return treedef.unflatten(restored), state

    if extra_args:
        return optax.GradientTransformationExtraArgs(init, update)
    return optax.GradientTransformation(init, update)


def require_transformation(who: str, value, name: str = "inner") -> None:
    """``TypeError`` naming ``name`` unless ``value`` is a gradient transformation (an
    ``init``/``update`` pair), so that a wrapper given ``None`` or a name fails at once."""
    if not (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        raise TypeError(
            f"{who}'s {name} must be an optax GradientTransformation (an init/update pair, "
            f"e.g. optjx.adam(1e-3)), got {value!r}"
        )


class Rule(NamedTuple):
    """What a stateless stage does: ``apply(updates, values, params)`` with ``values`` its
    hyperparameters resolved at the count. ``needs_params``: the stage's name, when
    ``update`` must get the params."""

    hypers: _hyper.Hyperparameters
    apply: Any
    needs_params: str | None = None

    def __call__(self, updates, count, params):
        if self.needs_params:
            _tree.require_params(params, self.needs_params)
        return self.apply(updates, self.hypers.at(count), params)


def stateless(rule: Rule) -> optax.GradientTransformation:
    """A stage whose only state is the counter its hyperparameters may read (a schedule):
    ``ScheduleState`` whether they are numbers, arrays or schedules."""

    def init_fn(params):
        del params
        return ScheduleState(count=zero_count())

    def update_fn(updates, state, params=None):
        if "count" not in getattr(state, "_fields", ()):
            # optax's stateless transforms accept any empty state (None, {}, EmptyState());
            # so does this one while no schedule needs the counter.
            if rule.hypers.scheduled:
                raise ValueError(
                    f"this stage's state must be its ScheduleState (a schedule reads its "
                    f"count), got {state!r}: pass the state that init returned"
                )
            return rule(updates, None, params), state
        return rule(updates, state.count, params), advance(state)

    return transformation(init_fn, update_fn)


class ReadsChainCount(NamedTuple):
    """A stateless stage of an alias's ``chain``: it reads the chain's counter."""

    rule: Rule


def _reads_chain_count(rule: Rule) -> optax.GradientTransformationExtraArgs:
    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, count, **extra_args):
        del extra_args
        return rule(updates, count, params), state

    return transformation(init_fn, update_fn, extra_args=True)


def _chain_count(states) -> jax.Array:
    for state in states:
        if "count" in getattr(state, "_fields", ()):
            return state.count
    raise ValueError(
        f"this optimizer's state holds no step counter, got {states!r}: pass the state "
        "that its init returned"
    )


def chain(*stages) -> optax.GradientTransformationExtraArgs:
    """The chain of an alias: ``optax.chain``'s state (a tuple, one state per stage) of the
    stages that are not ``None``, where each ``ReadsChainCount`` stage keeps
    ``EmptyState`` and reads the counter of the first stage that keeps one (as it was
    before this update: the number of updates applied). Without such a stage, the last
    rule keeps the counter (``ScheduleState``).
    """
    kept = [s for s in stages if s is not None]
    if all(isinstance(s, ReadsChainCount) for s in kept):
        kept[-1] = stateless(kept[-1].rule)
    reads = [isinstance(s, ReadsChainCount) for s in kept]
    transforms = [
        _reads_chain_count(s.rule) if r else optax.with_extra_args_support(s)
        for s, r in zip(kept, reads, strict=True)
    ]

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None, **extra_args):
        count = _chain_count(state)
        new_state = []
        for t, s, r in zip(transforms, state, reads, strict=True):
            extra = {"count": count} if r else extra_args
            updates, s = t.update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    return optax.GradientTransformationExtraArgs(init, update)
