"""ZeRO stage 1 with state_shardings, and every optjx transform on sharded arrays under jit.

The references: the one-device full-batch run (``_parallel_problem.reference``), the
replicated-state run, and for memory the arrays' own ``addressable_shards``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _parallel_problem import OPTIMIZERS, STEPS, assert_tree_close, loss_fn, problem, reference
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import optjx
from optjx import parallel

N = 8
AXIS = "data"
HIDDEN = 16  # every layer has a dimension divisible by 8: each moment splits 8 ways


def mesh():
    return jax.make_mesh((N,), (AXIS,))


def specs(shardings):
    return jax.tree.map(lambda s: tuple(s.spec), shardings)


# ------------------------------------------------------------------ the shardings


def test_each_leaf_splits_on_its_first_divisible_dimension():
    f32 = jnp.float32
    abstract = {
        "count": jax.ShapeDtypeStruct((), jnp.int32),
        "matrix": jax.ShapeDtypeStruct((3, 16, 8), f32),  # dim 0 indivisible: dim 1
        "vector": jax.ShapeDtypeStruct((24,), f32),
        "odd": jax.ShapeDtypeStruct((7, 9), f32),  # nothing divides by 8: replicated
        "short": jax.ShapeDtypeStruct((4,), f32),  # fewer elements than devices
        "empty": jax.ShapeDtypeStruct((0, 8), f32),  # dim 0 has extent 0: dim 1
        "none": None,
    }
    got = specs(parallel.state_shardings(abstract, mesh(), AXIS))
    assert got == {
        "count": (),
        "matrix": (None, AXIS, None),
        "vector": (AXIS,),
        "odd": (None, None),
        "short": (None,),
        "empty": (None, AXIS),
        "none": None,
    }


def test_tensor_parallel_shardings_are_kept_and_the_data_axis_added():
    m = jax.make_mesh((4, 2), ("data", "model"))
    on = lambda *spec: NamedSharding(m, P(*spec))  # noqa: E731
    abstract = {
        "column": jax.ShapeDtypeStruct((8, 6), jnp.float32, sharding=on(None, "model")),
        "row": jax.ShapeDtypeStruct((6, 8), jnp.float32, sharding=on("model", None)),
        "already": jax.ShapeDtypeStruct((8, 8), jnp.float32, sharding=on(None, "data")),
        "plain": jax.ShapeDtypeStruct((6, 8), jnp.float32),
    }
    got = specs(parallel.state_shardings(abstract, m, "data"))
    assert got == {
        "column": ("data", "model"),
        "row": ("model", "data"),
        "already": (None, "data"),
        "plain": (None, "data"),
    }
    # A tuple of axes splits over their product (8): only the 8-long dimensions qualify.
    got = specs(
        parallel.state_shardings(
            {"w": jax.ShapeDtypeStruct((4, 8), jnp.float32)}, m, ("data", "model")
        )
    )
    assert got == {"w": (None, ("data", "model"))}


def test_an_axis_the_mesh_lacks_is_an_error():
    with pytest.raises(ValueError, match="'batch' is not an axis"):
        parallel.state_shardings({"w": jnp.zeros(8)}, mesh(), "batch")


# ------------------------------------------------------------------ memory


def test_each_device_holds_one_nth_of_every_moment():
    params, _, _ = problem(HIDDEN)
    optimizer = optjx.adam(0.05)
    m = mesh()
    params = jax.device_put(params, NamedSharding(m, P()))
    shardings = parallel.state_shardings(jax.eval_shape(optimizer.init, params), m, AXIS)
    state = jax.jit(optimizer.init, out_shardings=shardings)(params)
    adam_state = next(s for s in state if isinstance(s, optjx.ScaleByAdamState))
    for moments in (adam_state.mu, adam_state.nu):
        for key, leaf in moments.items():
            shards = leaf.addressable_shards
            assert len(shards) == N
            for shard in shards:
                assert shard.data.nbytes * N == leaf.nbytes, key
            # The shards are distinct pieces, not N copies.
            assert len({str(shard.index) for shard in shards}) == N, key
    on_device_0 = sum(
        shard.data.nbytes
        for leaf in jax.tree.leaves(state)
        for shard in leaf.addressable_shards
        if shard.device == m.devices.flat[0]
    )
    assert parallel.bytes_per_device(state, shardings) == on_device_0
    assert parallel.bytes_per_device(state) == sum(leaf.nbytes for leaf in jax.tree.leaves(state))


def test_a_ten_million_parameter_model_needs_an_eighth_of_the_state_per_device():
    """The benchmark row: Adam's state for ~10M float32 parameters on 8 devices."""
    shapes = {"embed": (6144, 512), "head": (512, 1000), "head_bias": (1000,), "norm": (511,)}
    for block in range(3):
        shapes[f"block{block}/in"] = (512, 2048)
        shapes[f"block{block}/out"] = (2048, 512)
    abstract = {k: jax.ShapeDtypeStruct(v, jnp.float32) for k, v in shapes.items()}
    count = sum(int(np.prod(v)) for v in shapes.values())
    assert 9e6 < count < 1.2e7
    state = jax.eval_shape(optjx.adam(1e-3).init, abstract)
    replicated = parallel.bytes_per_device(state)
    sharded = parallel.bytes_per_device(state, parallel.state_shardings(state, mesh(), AXIS))
    print(
        f"\nadam state, {count / 1e6:.1f}M params, {N} devices: "
        f"replicated {replicated / 2**20:.1f} MiB/device, sharded {sharded / 2**20:.2f} MiB/device"
    )
    # mu, nu and Adam's int32 count (a constant learning rate keeps no counter)
    assert replicated == 2 * 4 * count + 4
    # Only the 511-long norm (and the count) cannot split: they stay whole on each device.
    assert sharded == (2 * 4 * (count - 511)) // N + 2 * 4 * 511 + 4


# ------------------------------------------------------------------ trajectories


def jit_train(optimizer, params, x, y, m, state_shardings, steps):
    """The train step as users write it: one jit, shardings pinned on both ends."""
    replicated = NamedSharding(m, P())
    params = jax.device_put(params, replicated)
    batch = NamedSharding(m, P(AXIS))
    x, y = jax.device_put(x, batch), jax.device_put(y, batch)
    param_shardings = jax.tree.map(lambda _: replicated, params)
    state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)

    def step(params, state, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, out_shardings=(param_shardings, state_shardings))
    for _ in range(steps):
        params, state = step(params, state, x, y)
    return params, state


@pytest.mark.parametrize(
    "name, axis_type",
    [(name, AxisType.Explicit) for name in OPTIMIZERS] + [("adam", AxisType.Auto)],
    ids=[*OPTIMIZERS, "adam-auto-mesh"],
)
def test_sharded_state_follows_the_replicated_and_the_one_device_run(x64, name, axis_type):
    params, x, y = problem(HIDDEN)
    optimizer = OPTIMIZERS[name]()
    m = jax.make_mesh((N,), (AXIS,), axis_types=(axis_type,))
    abstract = jax.eval_shape(optimizer.init, params)
    zero = parallel.state_shardings(abstract, m, AXIS)
    sharded, state = jit_train(optimizer, params, x, y, m, zero, STEPS)
    for leaf, want in zip(jax.tree.leaves(state), jax.tree.leaves(zero), strict=True):
        assert leaf.sharding.spec == want.spec
    # Every non-scalar leaf (moments, Lookahead's slow weights) is split 8 ways.
    assert all(AXIS in tuple(leaf.sharding.spec) for leaf in jax.tree.leaves(state) if leaf.ndim)
    everywhere = jax.tree.map(lambda _: NamedSharding(m, P()), abstract)
    replicated, _ = jit_train(optimizer, params, x, y, m, everywhere, STEPS)
    assert_tree_close(sharded, replicated)
    assert_tree_close(sharded, reference(name, HIDDEN))
