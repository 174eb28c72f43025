"""The structure rule (CONTRIBUTING.md, convention 1) over the whole registry, and optax's own
tests that broke it.

``optax.inject_hyperparams(factory)(**kw)`` turns every number into an array and every
schedule into its value at the step, then calls ``factory``. For every registry entry and
each of its float hyperparameters at 0, at its value, at another value and as a schedule:

* the injected ``inner_state`` has the tree structure of ``factory(**kw).init(params)``,
  and after the same updates the same values (optax's tolerance: the injected float32
  hyperparameters round differently in the last bits);
* an orbax checkpoint of either state restores into the other's template (one save and
  one restore for the whole registry) and continues bit-identically to continuing the
  optimizer that saved it.

optax's own tests of the same rule are in ``test_optax_equivalents.py``.
"""

from __future__ import annotations

import inspect

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from _placement import uncommitted
from compat_helpers import make_params, optax_alias_loss
from registry import ENTRIES

import optjx

STEPS = 2  # updates compared; the checkpoint is taken after STEPS and continued for STEPS
RTOL, ATOL = 1e-4, 1e-6  # optax's alias test: rtol 1e-4 on the states (1e-3 on updates)


def _factory(entry):
    return entry.factory or getattr(optjx, entry.name)


def _float_names(entry) -> list[str]:
    """The entry's float hyperparameters: Python floats among its bound arguments (its
    configuration and the factory's defaults), which inject_hyperparams injects."""
    args = (entry.inner(),) if entry.inner else ()
    bound = inspect.signature(_factory(entry)).bind(*args, **entry.kwargs)
    bound.apply_defaults()
    return [
        n for n, v in bound.arguments.items() if isinstance(v, float) and not isinstance(v, bool)
    ]


def _static_names(entry, names):
    parameters = list(inspect.signature(_factory(entry)).parameters)
    return [n for n in parameters[1 if entry.inner else 0 :] if n not in names]


def _accepts(entry, name, value) -> bool:
    try:
        entry.build(**{name: value})
    except (ValueError, TypeError):
        return False
    return True


def _variants(entry, name):
    """0, the configured value, another value and a schedule, where the factory takes them."""
    args = (entry.inner(),) if entry.inner else ()
    bound = inspect.signature(_factory(entry)).bind(*args, **entry.kwargs)
    bound.apply_defaults()
    value = bound.arguments[name]
    other = value * 0.5 if value else 0.5
    wanted = {"zero": 0.0, "value": value, "other": other}
    accepted = {k: v for k, v in wanted.items() if _accepts(entry, name, v)}
    # A schedule from the value to the other one; a constant one where the other value is
    # refused (nesterov's dampening must stay 0).
    end = other if "other" in accepted else value
    schedule = optjx.schedules.linear(value, end, 3)
    if _accepts(entry, name, schedule):  # not a learning rate next to a built-in warm-up
        accepted["schedule"] = schedule
    return accepted


def _build(entry, values: dict, injected: bool):
    if not injected:
        return entry.build(**values)
    names = _float_names(entry)
    factory = optax.inject_hyperparams(_factory(entry), static_args=_static_names(entry, names))
    kwargs = {**entry.kwargs, **values}
    tx = factory(entry.inner(), **kwargs) if entry.inner else factory(**kwargs)
    return optax.chain(*(make() for make in entry.before), tx) if entry.before else tx


def _together(entry, label) -> list[dict]:
    """The values of one variant for every name at once where the factory takes them
    together, else one name at a time: the few runs whose values are compared."""
    one_by_one = [
        {name: variants[label]}
        for name in _float_names(entry)
        if label in (variants := _variants(entry, name))
    ]
    joint = {k: v for values in one_by_one for k, v in values.items()}
    try:
        entry.build(**joint)
    except (ValueError, TypeError):
        return one_by_one
    return [joint] if joint else []


def _inner(state, entry):
    """The injected optimizer's state with its inner state in place of the inject state."""
    if entry.before:
        return (*state[:-1], state[-1].inner_state)
    return state.inner_state


def _with_inner(state, inner, entry):
    if entry.before:
        return (*state[:-1], state[-1]._replace(inner_state=inner[-1]))
    return state._replace(inner_state=inner)


@jax.jit
def _value_and_grads(params, scale):
    """The loss and its gradient times ``scale``: compiled once, where eager autodiff at
    every step of every run was most of this file's time."""
    value, grads = jax.value_and_grad(optax_alias_loss)(params)
    return value, jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def _step(entry, tx, state, params, t):
    # A gradient changing with the step, but for the loss-driven entries: theirs must be
    # the loss's.
    scale = np.float32(1.0 if entry.loss_driven else 1.0 + 0.1 * t)
    value, grads = _value_and_grads(params, scale)
    if entry.loss_driven:
        updates, state = tx.update(grads, state, params, value=value, value_fn=optax_alias_loss)
    elif entry.needs_value:
        updates, state = tx.update(grads, state, params, value=value)
    else:
        updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def _run(entry, tx, steps, params=None, state=None, start=0):
    params = make_params() if params is None else params
    state = tx.init(params) if state is None else state
    for t in range(start, start + steps):
        params, state = _step(entry, tx, state, params, t)
    return params, state


def _close(actual, expected, what):
    assert jax.tree.structure(actual) == jax.tree.structure(expected), what
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=RTOL, atol=ATOL, err_msg=what)


def _identical(actual, expected, what):
    assert jax.tree.structure(actual) == jax.tree.structure(expected), what
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert np.asarray(a).dtype == np.asarray(e).dtype, what
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e), err_msg=what)


INJECTABLE = [e for e in ENTRIES if _float_names(e)]

# Whose scheduled hyperparameters are read at another count than the one inject_hyperparams
# evaluates them at: torch's ASGD computes its step size and averaging weight after the
# step, so a schedule enters one update late (optjx.asgd's docstring); injected, the
# schedule's value at the current count is a constant. The structure still matches.
SCHEDULE_READ_LATE = {"asgd"}


@pytest.mark.parametrize("entry", INJECTABLE, ids=lambda e: e.id)
def test_injected_inner_state_is_the_plain_state(entry):
    params = make_params()
    for name in _float_names(entry):
        for label, value in _variants(entry, name).items():
            what = f"{entry.id}: {name} = {label}"
            plain, injected = (
                _build(entry, {name: value}, False),
                _build(entry, {name: value}, True),
            )
            plain_state = plain.init(params)
            assert jax.tree.structure(_inner(injected.init(params), entry)) == jax.tree.structure(
                plain_state
            ), what
            # Traced (as under jit) the structure is the same too.
            traced = jax.eval_shape(injected.init, params)
            assert jax.tree.structure(_inner(traced, entry)) == jax.tree.structure(plain_state)
    # The values after the same updates, each variant for every name at once (one name at
    # a time where the factory refuses them together).
    labels = ("zero", "value", "other", "schedule")
    if entry.name in SCHEDULE_READ_LATE:
        labels = labels[:-1]
    for label in labels:
        for values in _together(entry, label):
            what = f"{entry.id}: {label} {sorted(values)}"
            plain, injected = _build(entry, values, False), _build(entry, values, True)
            plain_params, plain_state = _run(entry, plain, STEPS)
            injected_params, injected_state = _run(entry, injected, STEPS)
            _close(_inner(injected_state, entry), plain_state, what + " (state)")
            _close(injected_params, plain_params, what + " (params)")


# ------------------------------------------------------------------------- checkpoints


def _key(i, which):
    return f"entry{i:03d}_{which}"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Every entry at its configuration, plain and injected, after STEPS updates: saved in
    one orbax checkpoint, restored with each into the other's template."""
    saved, runs = {}, {}
    for i, entry in enumerate(INJECTABLE):
        plain, injected = _build(entry, {}, False), _build(entry, {}, True)
        plain_params, plain_state = _run(entry, plain, STEPS)
        injected_params, injected_state = _run(entry, injected, STEPS)
        saved[_key(i, "plain")] = plain_state
        saved[_key(i, "injected")] = _inner(injected_state, entry)
        runs[entry.id] = (
            plain,
            injected,
            plain_params,
            plain_state,
            injected_params,
            injected_state,
        )
    path = tmp_path_factory.mktemp("structure") / "all"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, saved)
        checkpointer.wait_until_finished()
        # Each state restored into the template the OTHER optimizer's init gives.
        template = {}
        for i, entry in enumerate(INJECTABLE):
            plain, injected = runs[entry.id][:2]
            template[_key(i, "plain")] = _inner(injected.init(make_params()), entry)
            template[_key(i, "injected")] = plain.init(make_params())
        restored = uncommitted(checkpointer.restore(path, template))
    return saved, restored, runs


@pytest.mark.parametrize("index", range(len(INJECTABLE)), ids=[e.id for e in INJECTABLE])
def test_checkpoint_of_one_restores_into_the_other(checkpoints, index):
    saved, restored, runs = checkpoints
    entry = INJECTABLE[index]
    plain, injected, plain_params, plain_state, injected_params, injected_state = runs[entry.id]
    # The plain optimizer's checkpoint, restored as the injected one's inner state: the
    # same leaves; the plain optimizer continues from it bit for bit, and the injected
    # optimizer continues from it as the plain one does (to optax's tolerance).
    from_plain = restored[_key(index, "plain")]
    _identical(from_plain, saved[_key(index, "plain")], f"{entry.id}: restored plain")
    want = _run(entry, plain, STEPS, plain_params, plain_state, start=STEPS)
    _identical(
        _run(entry, plain, STEPS, plain_params, from_plain, start=STEPS),
        want,
        f"{entry.id}: plain continued from its checkpoint restored as injected",
    )
    moved = _run(
        entry, injected, STEPS, plain_params, _with_inner(injected_state, from_plain, entry), STEPS
    )
    _close((moved[0], _inner(moved[1], entry)), want, f"{entry.id}: injected from plain")
    # And the other way round.
    from_injected = restored[_key(index, "injected")]
    _identical(from_injected, saved[_key(index, "injected")], f"{entry.id}: restored injected")
    want = _run(entry, injected, STEPS, injected_params, injected_state, start=STEPS)
    resumed = _with_inner(injected_state, from_injected, entry)
    _identical(
        _run(entry, injected, STEPS, injected_params, resumed, start=STEPS),
        want,
        f"{entry.id}: injected continued from its checkpoint restored as plain",
    )
    moved = _run(entry, plain, STEPS, injected_params, from_injected, start=STEPS)
    _close(moved, (want[0], _inner(want[1], entry)), f"{entry.id}: plain from injected")
