"""Invariant 8 over the whole registry: bad input fails early and says what is wrong.

* Each invalid value of each hyperparameter (``registry.INVALID``: out of range, NaN,
  a float or bool where an int is needed) raises an error at construction with the
  argument's name in the message: ``TypeError`` for a value of the wrong type given to an
  integer argument (a float, even ``2.0``, a bool, ``None``), ``ValueError`` otherwise;
  the invalid flag combinations raise ``ValueError``.
* A gradient tree that does not match the state (a key missing, a key too many, a leaf of
  the wrong shape) raises ``ValueError`` naming the key path, eagerly and under
  ``jax.jit``, for every entry whose state
  holds per-leaf arrays (``Entry.leaf_state``; a stateless transformation has nothing to
  match against, and the test checks that such a state really holds only scalars).
* ``update`` without params raises ``ValueError`` saying that the params are needed,
  exactly for the entries that read them (``Entry.needs_params``); the others give the
  same result without params as with them. Likewise ``value=`` for ``reduce_on_plateau``.
* ``init`` on ``jax.ShapeDtypeStruct`` params of a wrapper that copies the params' values
  (lookahead, polyak averaging) raises an error that points to ``jax.eval_shape``.
"""

import inspect
import re

import _harness as harness
import jax
import jax.numpy as jnp
import pytest
import registry
from registry import ENTRIES

import optjx

pytestmark = pytest.mark.usefixtures("strict_promotion")

BAD_VALUES = [
    (name, arg, value)
    for name in registry.NAMES
    for arg, values in registry.INVALID[name].items()
    for value in values
]


# Integer arguments: those whose invalid values include an int (an out-of-range count).
INT_ARGS = {(name, arg) for name, arg, value in BAD_VALUES if type(value) is int}


@pytest.mark.parametrize(
    "name,arg,value", BAD_VALUES, ids=[f"{n}-{a}={v!r}" for n, a, v in BAD_VALUES]
)
def test_invalid_hyperparameter_raises_naming_it(name, arg, value):
    wrong_type = (name, arg) in INT_ARGS and type(value) is not int
    with pytest.raises(TypeError if wrong_type else ValueError, match=rf"\b{re.escape(arg)}\b"):
        registry.first(name).build(**{arg: value})


# Every float hyperparameter (those checked with NaN) given a value of the wrong type.
WRONG_TYPES = ["0.1", None, [0.1, 0.2], 0.1 + 0.2j, object(), True]


def _none_means_something(name, arg) -> bool:
    """``None`` switches a stage off (``momentum=None``, as optax's; ``weight_decay=None``,
    also on ``adamw``, whose default is 0.01) or chooses a form (``decay=None``: the uniform
    average)."""
    if (name, arg) in {("adamw", "weight_decay"), ("muon", "weight_decay")}:
        return True  # a default decay (0.01, 0.1) that None switches off
    return inspect.signature(getattr(optjx, name)).parameters[arg].default is None


FLOAT_ARGS = [
    (name, arg)
    for name in registry.NAMES
    for arg, values in registry.INVALID[name].items()
    if any(isinstance(v, float) and v != v for v in values)
]


@pytest.mark.parametrize("name,arg", FLOAT_ARGS, ids=[f"{n}-{a}" for n, a in FLOAT_ARGS])
def test_wrong_type_raises_type_error_naming_it(name, arg):
    for value in WRONG_TYPES:
        if value is None and _none_means_something(name, arg):
            continue
        with pytest.raises(TypeError, match=rf"\b{re.escape(arg)}\b.*(number|accepts|schedule)"):
            registry.first(name).build(**{arg: value})


def test_non_callable_skip_function_is_a_type_error():
    with pytest.raises(TypeError, match="should_skip_update_fn"):
        optjx.accumulate_gradients(optjx.sgd(0.1), 2, should_skip_update_fn=1.0)


@pytest.mark.parametrize("case", list(registry.INVALID_COMBINATIONS))
def test_invalid_flag_combination_raises_naming_it(case):
    make, arg = registry.INVALID_COMBINATIONS[case]
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        make()


def test_valid_boundary_values_are_accepted():
    # The checks are not too strict: the edges of each range are allowed.
    import optjx

    optjx.adam(0.0, b1=0.0, b2=0.0, eps=0.0)
    optjx.sgd(0.0, momentum=0.0, dampening=0.0)
    optjx.lookahead(optjx.sgd(0.1), sync_period=1, slow_step_size=1.0)
    optjx.lookahead(optjx.sgd(0.1), slow_step_size=0.0)
    optjx.reduce_on_plateau(factor=1.0, patience=0, cooldown=0)
    optjx.scale_by_delta_bar_delta(0.0, kappa=0.0, phi=1.0, gamma=0.0)


def _mismatched(case):
    good = harness.make_grads(0)
    if case == "missing-key":
        return {"w": good["w"]}, "['b']"
    if case == "extra-key":
        return {**good, "c": jnp.ones(2)}, "['c']"
    return {**good, "b": jnp.ones(3)}, "['b']"  # wrong shape


LEAF_STATE = [pytest.param(e, id=e.id) for e in ENTRIES if e.leaf_state]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", ["missing-key", "extra-key", "wrong-shape"])
@pytest.mark.parametrize("entry", LEAF_STATE)
def test_mismatched_gradient_tree_names_the_key_path(entry, case, jit):
    tx = harness.compiled(entry.id).tx
    params = harness.make_params()
    grads, path = _mismatched(case)

    def update(grads, state, params, value):
        return harness.update(entry, tx, grads, state, params, value)

    update = jax.jit(update) if jit else update  # the check runs at trace time too
    with pytest.raises(ValueError, match=re.escape(path)):
        update(grads, tx.init(params), params, harness.value_at(0))


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.leaf_state], ids=lambda e: e.id)
def test_stateless_entries_really_hold_no_per_leaf_state(entry):
    state = harness.compiled(entry.id).tx.init(harness.make_params())
    assert all(jnp.ndim(x) == 0 for x in jax.tree.leaves(state)), (
        f"{entry.id} keeps per-leaf state: set leaf_state=True so its gradient trees are checked"
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_params_needed_exactly_where_read(entry):
    tx = harness.compiled(entry.id).tx
    params = harness.make_params()
    state = tx.init(params)
    grads, value = harness.make_grads(0), harness.value_at(0)
    if entry.needs_params:
        with pytest.raises(ValueError, match=r"\bparams\b"):
            harness.update(entry, tx, grads, state, None, value)
    else:
        without = harness.update(entry, tx, grads, state, None, value)
        with_params = harness.update(entry, tx, grads, state, params, value)
        harness.assert_trees_identical(without, with_params)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.needs_value], ids=lambda e: e.id)
def test_value_needed_where_read(entry):
    tx = harness.compiled(entry.id).tx
    params = harness.make_params()
    with pytest.raises(ValueError, match=r"\bvalue\b"):
        tx.update(harness.make_grads(0), tx.init(params), params)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.copies_params], ids=lambda e: e.id)
def test_abstract_params_to_a_copying_init_point_to_eval_shape(entry):
    tx = harness.compiled(entry.id).tx
    with pytest.raises(ValueError, match="eval_shape"):
        tx.init(harness.abstract(harness.make_params()))
