"""Invariant 11: every registry entry works inside ``optax.inject_hyperparams``.

Every float hyperparameter of the entry (a Python float in its configuration or among
the factory's defaults) is injected; integers, flags, dtypes, masks and optjx schedules
stay static. ``init`` runs eagerly and ``update`` under ``jax.jit``, and between steps
each injected value is changed: halved, set to ``0`` (where ``0`` is a valid value) and
set back. The reference rebuilds the optimizer at every step with the step's values as
concrete arrays and runs it eagerly on the same state. Both must agree (float64,
``rtol=1e-12``), and the jitted update must trace once: only values changed.

This is the recipe optax and Flax users rely on to change a learning rate during
training; it breaks when a state's structure depends on a hyperparameter's value
(a stage dropped for a concrete zero), which CONTRIBUTING.md convention 1 forbids.
"""

from __future__ import annotations

import inspect

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from registry import ENTRIES

import optjx

pytestmark = pytest.mark.usefixtures("x64")

# Step 0 uses the configured values; then each injected value in turn is set to 0 (where
# the factory accepts 0, else it is doubled) for one step while the others are halved,
# and set back: one change at a time, so that no step makes the algorithm degenerate
# (eps = 0 and decay = 0 together divide zero gradients by zero).


def _factory(entry):
    return getattr(optjx, entry.name)


def _injected_names(entry) -> list[str]:
    signature = inspect.signature(_factory(entry))
    args = (entry.inner(),) if entry.inner else ()
    bound = signature.bind(*args, **entry.kwargs)
    bound.apply_defaults()
    return [
        name
        for name, value in bound.arguments.items()
        if isinstance(value, float) and not isinstance(value, bool)
    ]


def _accepts(entry, name, value) -> bool:
    try:
        entry.build(**{name: value})
    except ValueError:
        return False
    return True


def _values_per_step(entry, names):
    signature = inspect.signature(_factory(entry))
    defaults = {n: p.default for n, p in signature.parameters.items()}
    configured = {n: entry.kwargs.get(n, defaults.get(n)) for n in names}

    def valid(n, value):
        return value if _accepts(entry, n, value) else configured[n]

    halved = {n: valid(n, configured[n] * 0.5) for n in names}
    plan = [dict(configured)]
    for n in names:
        plan.append({**halved, n: valid(n, 0.0) if configured[n] else valid(n, 2 * configured[n])})
        plan.append(dict(configured))
    return [{n: jnp.asarray(v, jnp.float64) for n, v in values.items()} for values in plan]


def _static_names(entry, names):
    """Every argument not injected, except a wrapper's first (the inner optimizer, passed
    positionally: a transformation is neither a number nor a schedule)."""
    parameters = list(inspect.signature(_factory(entry)).parameters)
    if entry.inner:
        parameters = parameters[1:]
    return [n for n in parameters if n not in names]


def _inject(entry, names, values):
    injected = optax.inject_hyperparams(_factory(entry), static_args=_static_names(entry, names))
    kwargs = {**entry.kwargs, **values}
    tx = injected(entry.inner(), **kwargs) if entry.inner else injected(**kwargs)
    # A card factory that wraps the public name (Muon's reshape to matrices) wraps it here too.
    wrap = getattr(entry.factory, "wrap", None)
    tx = wrap(tx) if wrap else tx
    return optax.chain(*(make() for make in entry.before), tx) if entry.before else tx


def _rebuilt(entry, values):
    return entry.build(**values)


def _set(state, entry, values):
    """The chain's inject state with new hyperparameter values (same dtypes)."""
    inject_state = state[-1] if entry.before else state
    hyperparams = {n: jnp.asarray(values[n], inject_state.hyperparams[n].dtype) for n in values}
    inject_state = inject_state._replace(hyperparams=hyperparams)
    return (*state[:-1], inject_state) if entry.before else inject_state


def _inner_state(state, entry):
    inject_state = state[-1] if entry.before else state
    inner = inject_state.inner_state
    return (*state[:-1], inner) if entry.before else inner


INJECTABLE = [e for e in ENTRIES if _injected_names(e)]


@pytest.mark.parametrize("entry", INJECTABLE, ids=lambda e: e.id)
def test_injected_hyperparameters_equal_a_rebuilt_optimizer(entry):
    names = _injected_names(entry)
    plan = _values_per_step(entry, names)
    params = harness.make_params(jnp.float64)
    tx = _inject(entry, names, plan[0])
    state = tx.init(params)  # eagerly, with concrete arrays

    traces = 0
    reference_params = params
    reference_state = _rebuilt(entry, plan[0]).init(params)
    assert jax.tree.structure(reference_state) == jax.tree.structure(_inner_state(state, entry))

    def rebuilt_update(values, grads, state, params, value):
        return harness.update(entry, _rebuilt(entry, values), grads, state, params, value)

    # The injected update and the rebuilt reference in one program: XLA compiles what
    # they share once (two programs per entry cost twice). The trace count is the
    # injected update's: its inputs are the same at every step, only values change.
    def both(values, grads, state, params, reference_state, reference_params, value):
        nonlocal traces
        traces += 1
        injected = harness.update(entry, tx, grads, state, params, value)
        rebuilt = rebuilt_update(values, grads, reference_state, reference_params, value)
        return injected, rebuilt

    jitted = jax.jit(both)
    for t, values in enumerate(plan):
        grads = harness.make_grads(t, jnp.float64)
        value = harness.value_at(t, jnp.float64)
        state = _set(state, entry, values)
        (updates, state), (expected, reference_state_next) = jitted(
            values, grads, state, params, reference_state, reference_params, value
        )
        params = optax.apply_updates(params, updates)

        # The values: the optimizer rebuilt with this step's values, compiled as the
        # injected one is (eager and jitted float64 differ by fused multiply-adds, which
        # centered RMSProp's v - m^2 amplifies). The structure: rebuilt eagerly with
        # concrete arrays, where a value-dependent stage would show.
        _, eager_state = rebuilt_update(values, grads, reference_state, reference_params, value)
        reference_state = reference_state_next
        reference_params = optax.apply_updates(reference_params, expected)

        for got in (eager_state, reference_state):
            assert jax.tree.structure(got) == jax.tree.structure(_inner_state(state, entry)), (
                f"step {t}: the state's structure changed with the values {values}"
            )
        for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300, err_msg=f"step {t}")
    assert traces == 1, "changing only injected values retraced the update"
