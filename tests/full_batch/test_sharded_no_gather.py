"""``pack=False``: sharded params are never gathered (no all-gather in the compiled update),
and the results are those of the packed (``pack=True``) unsharded run. (``pack=True`` on
sharded params, Explicit and Auto axes: ``tests/invariants/test_inv_loss_driven.py``.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optjx

METHODS = {
    "lbfgs": lambda pack: optjx.lbfgs(pack=pack, line_search_fn="strong_wolfe", max_iter=5),
    "conjugate_gradient": lambda pack: optjx.conjugate_gradient(pack=pack, max_iter=5),
}


def _problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(32, 64)))
    y = jnp.asarray(rng.normal(size=(32, 8)))
    params = {"w": jnp.asarray(rng.normal(size=(64, 8)) * 0.1), "b": jnp.zeros(8)}

    def loss(p):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    return params, loss


def _step(opt, loss):
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
        return jax.tree.map(jnp.add, params, updates), state

    return jax.jit(step)


@functools.cache
def _unsharded(method):
    """The unsharded run (the same for both axis types: computed once)."""
    params, loss = _problem()
    opt = METHODS[method](True)
    return _step(opt, loss)(params, opt.init(params))[0]


@pytest.mark.parametrize("axis_type", ["Auto", "Explicit"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_pack_false_sharded_matches_and_never_gathers(method, axis_type, x64):
    assert jax.device_count() == 8
    mesh = jax.make_mesh((8,), ("d",), axis_types=(getattr(jax.sharding.AxisType, axis_type),))
    with jax.set_mesh(mesh):
        _check(method, mesh)


def _check(method, mesh):
    params, loss = _problem()
    sharded = {
        "w": jax.device_put(params["w"], NamedSharding(mesh, P("d"))),
        "b": jax.device_put(params["b"], NamedSharding(mesh, P())),
    }

    opt = METHODS[method](False)
    state = opt.init(sharded)
    compiled = _step(opt, loss).lower(sharded, state).compile()
    new, new_state = compiled(sharded, state)
    hlo = compiled.as_text()
    assert "all-reduce" in hlo  # the inner products: the test does run sharded
    assert "all-gather" not in hlo
    assert new["w"].sharding.is_equivalent_to(sharded["w"].sharding, 2)
    assert new["b"].sharding.is_equivalent_to(sharded["b"].sharding, 1)
    for leaf, buf in zip(
        jax.tree.leaves(sharded), jax.tree.leaves(new_state.direction), strict=True
    ):
        assert buf.sharding.is_equivalent_to(leaf.sharding, leaf.ndim)

    assert float(loss(new)) < float(loss(params))
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(_unsharded(method)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)


def test_pack_false_state_shapes():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(2, jnp.bfloat16)}
    state = optjx.lbfgs(history_size=4, pack=False).init(params)
    assert [m.shape for m in state.steps] == [(4, 2), (4, 2, 3)]
    assert [m.dtype for m in state.steps] == [jnp.bfloat16, jnp.float32]
    assert [m.shape for m in optjx.lbfgs(history_size=4).init(params).steps] == [(4, 2), (4, 6)]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_pack_false_init_under_jit_on_an_auto_mesh(method, x64):
    # Under jit with Auto axes XLA places init's buffers (replicated here, since zeros do
    # not depend on the params): the update must still run without gathering the params
    # and give the result of an eagerly initialised state.
    mesh = jax.make_mesh((8,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    with jax.set_mesh(mesh):
        params, loss = _problem()
        sharded = {
            "w": jax.device_put(params["w"], NamedSharding(mesh, P("d"))),
            "b": jax.device_put(params["b"], NamedSharding(mesh, P())),
        }
        opt = METHODS[method](False)
        state = jax.jit(opt.init)(sharded)
        compiled = _step(opt, loss).lower(sharded, state).compile()
        assert "all-gather" not in compiled.as_text()
        new, _ = compiled(sharded, state)
        eager, _ = _step(opt, loss)(sharded, opt.init(sharded))
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(eager), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert new["w"].sharding.is_equivalent_to(sharded["w"].sharding, 2)
