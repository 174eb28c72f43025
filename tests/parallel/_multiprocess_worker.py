"""One of the processes of test_multiprocess.py: JAX's multi-controller runtime on loopback.

    python _multiprocess_worker.py PORT PROCESS_ID NUM_PROCESSES OUTPUT.npz

Each process sees its own CPU devices (XLA_FLAGS, set by the parent) and, after
``jax.distributed.initialize``, every process's devices as one mesh. It trains
``lookahead(novograd)`` on the batch split over all devices, twice:

* ``shard_map`` with ``cross_replica_mean`` (varying-type checks on, JAX's default),
* ``jax.jit`` with the batch sharded and the optimizer state sharded (ZeRO stage 1),

and writes the final params (the copy this process holds) to OUTPUT.npz.
"""

from __future__ import annotations

import sys

import jax

# Before any computation: CPU collectives across processes go over gloo (TCP).
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import optax  # noqa: E402
from _parallel_problem import MULTIPROCESS, STEPS, loss_fn, problem, train  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import optjx  # noqa: E402

AXIS = "data"


def global_array(value, sharding):
    """A global array from a host value every process holds in full."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def local_copy(tree):
    """This process's copy of replicated global arrays, as NumPy."""
    return {key: np.asarray(leaf.addressable_data(0)) for key, leaf in tree.items()}


def main(port: int, process_id: int, num_processes: int, output: str) -> None:
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
    )
    assert jax.process_count() == num_processes
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS))
    params, x, y = problem()
    params = jax.tree.map(lambda p: global_array(p, replicated), params)
    x, y = global_array(x, split), global_array(y, split)
    (make,) = MULTIPROCESS.values()

    # 1. shard_map: each device its quarter of the batch; cross_replica_mean averages.
    optimizer = optax.chain(optjx.cross_replica_mean(AXIS), make())
    mapped = jax.shard_map(
        lambda p, xs, ys: train(optimizer, p, xs, ys),
        mesh=mesh,
        in_specs=(P(), P(AXIS), P(AXIS)),
        out_specs=P(),
    )
    via_shard_map = jax.jit(mapped)(params, x, y)

    # 2. jit on sharded arrays: the compiler averages; the state is split 4 ways.
    optimizer = make()
    state_shardings = optjx.parallel.state_shardings(
        jax.eval_shape(optimizer.init, params), mesh, AXIS
    )
    param_shardings = jax.tree.map(lambda _: replicated, params)
    state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)

    def step(p, s, xs, ys):
        updates, s = optimizer.update(jax.grad(loss_fn)(p, xs, ys), s, p)
        return optax.apply_updates(p, updates), s

    step = jax.jit(step, out_shardings=(param_shardings, state_shardings))
    p = params
    for _ in range(STEPS):
        p, state = step(p, state, x, y)
    moments = jax.tree.leaves(state)
    split_leaves = sum(AXIS in tuple(leaf.sharding.spec) for leaf in moments if leaf.ndim)

    np.savez(
        output,
        **{f"shard_map/{k}": v for k, v in local_copy(via_shard_map).items()},
        **{f"jit/{k}": v for k, v in local_copy(p).items()},
        devices=np.asarray([jax.device_count(), jax.local_device_count()]),
        split_leaves=np.asarray(split_leaves),
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
