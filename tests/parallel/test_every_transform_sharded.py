"""Every optjx optimizer on sharded params, gradients and state under jax.jit (GSPMD).

Params, gradients and state are all split over 8 devices (ZeRO-3-like, the hardest case:
NovoGrad's per-layer norms and the global-norm clip must reduce across shards); the
reference is the same optimizer on one device (float64, ``rtol=1e-9``). The cases of the
selected tests run in one program per layout (``-k one_name`` compiles that case alone).
Also: ``init`` runs on ``jax.ShapeDtypeStruct`` params, and no ``update`` contains a
``lax.cond``.
"""

from __future__ import annotations

import cards
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _parallel_problem import assert_tree_close, loss_fn, problem
from _selection import selected
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from optjx import parallel

AXIS = "data"
STEPS = 6
HIDDEN = 16

# Every card's sharded cases (tests/cards): one or more per optimizer that has any.
CASES = cards.SHARDED


def run_all(names, params, x, y, constrain):
    """STEPS updates of each named case; ``constrain(tree, kind)`` pins the shardings of a
    ``"params"``-like or ``"state"`` tree (the identity for the one-device run)."""
    finals = {}
    for name in names:
        optimizer = optax.with_extra_args_support(CASES[name]())
        state = constrain(optimizer.init(params), "state")

        def step(carry, _, optimizer=optimizer):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
            grads = constrain(grads, "params")
            updates, s = optimizer.update(grads, s, p, value=loss)
            return (
                constrain(optax.apply_updates(p, updates), "params"),
                constrain(s, "state"),
            ), None

        (final, _), _ = jax.lax.scan(step, (params, state), None, length=STEPS)
        finals[name] = final
    return finals


@pytest.fixture(scope="module")
def sharded_and_one_device(request):
    """The selected cases on one device and sharded over 8: (params, one, many)."""
    names = selected(request, "name")
    with jax.enable_x64(True):
        params, x, y = problem(HIDDEN)
        device = jax.devices()[0]
        one = jax.jit(lambda p, a, b: run_all(names, p, a, b, lambda tree, _: tree))(
            *jax.device_put((params, x, y), device)
        )

        mesh = jax.make_mesh((8,), (AXIS,), axis_types=(AxisType.Auto,))
        param_shardings = parallel.state_shardings(params, mesh, AXIS)

        def constrain(tree, kind):
            if kind == "params":
                return jax.lax.with_sharding_constraint(tree, param_shardings)
            shapes = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), tree)
            return jax.lax.with_sharding_constraint(
                tree, parallel.state_shardings(shapes, mesh, AXIS)
            )

        sharded_params = jax.device_put(params, param_shardings)
        batch = NamedSharding(mesh, P(AXIS))
        many = jax.jit(lambda p, a, b: run_all(names, p, a, b, constrain))(
            sharded_params, jax.device_put(x, batch), jax.device_put(y, batch)
        )
    return params, one, many


@pytest.mark.parametrize("name", CASES)
def test_optimizer_on_sharded_params_grads_and_state_equals_one_device(
    sharded_and_one_device, name, x64
):
    params, one, many = sharded_and_one_device
    for key, leaf in many[name].items():
        assert AXIS in tuple(leaf.sharding.spec), (name, key)
    assert_tree_close(many[name], one[name])
    # The case moved the params: a no-op optimizer would pass the comparison.
    moved = max(float(np.max(np.abs(many[name][k] - params[k]))) for k in params)
    assert moved > 1e-4, name


def _primitives(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _primitives(sub)


@pytest.mark.parametrize("name", CASES)
def test_init_on_abstract_params_and_no_cond_in_update(name):
    params, x, y = problem(HIDDEN)
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    optimizer = optax.with_extra_args_support(CASES[name]())
    state = jax.eval_shape(optimizer.init, abstract)
    assert jax.tree.structure(state) == jax.tree.structure(optimizer.init(params))
    jaxpr = jax.make_jaxpr(lambda g, s, p: optimizer.update(g, s, p, value=jnp.ones(())))(
        params, optimizer.init(params), params
    )
    found = set(_primitives(jaxpr.jaxpr))
    assert "cond" not in found, f"{name}: lax.cond in update (use jnp.where on scalars)"
