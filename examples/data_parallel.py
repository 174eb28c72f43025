"""Data parallelism three ways, with the same model, data and optimizer: they agree.

    python examples/data_parallel.py            # 8 virtual CPU devices if JAX sees one device
    python examples/data_parallel.py --quick    # a few seconds
    python examples/data_parallel.py --out DIR  # also write DIR/data_parallel.png

An MLP on scikit-learn's digits, each global batch split over all devices, trained with
``lookahead(novograd)``:

1. ``jax.pmap`` with ``optjx.cross_replica_mean`` first in the chain (the classic way;
   ``pmap`` is implemented on ``shard_map`` since JAX 0.8),
2. ``jax.shard_map`` with the same transform (type checks on: the gradient arrives summed
   by autodiff, and ``cross_replica_mean`` divides it; a plain ``lax.pmean`` would train
   with an 8-times step),
3. ``jax.jit`` on sharded arrays: the compiler averages the gradient of the mean loss by
   itself, and ``optjx.parallel.state_shardings`` splits the optimizer state 8 ways
   (ZeRO stage 1).

It prints the test accuracy of each, their largest parameter difference, and how many
bytes of optimizer state each device holds, replicated vs sharded, for this model and for
a ~10M-parameter one.
"""

from __future__ import annotations

import os
import sys

# A CPU has one JAX device unless told otherwise; this must happen before JAX starts.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

import argparse  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    accuracy,
    batch_indices,
    cross_entropy,
    load_digits,
    pyplot,
    save,
    table,
)

import optjx  # noqa: E402

AXIS = "batch"


def init_mlp(key, sizes=(64, 64, 10)):
    """A plain-JAX MLP: ``{"w0", "b0", "w1", "b1"}`` with LeCun-normal weights."""
    params = {}
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        params[f"w{i}"] = jax.random.normal(keys[i], (fan_in, fan_out)) / np.sqrt(fan_in)
        params[f"b{i}"] = jnp.zeros(fan_out)
    return params


def predict(params, x):
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(x @ params["w0"] + params["b0"])
    return x @ params["w1"] + params["b1"]


def loss_fn(params, x, y):
    """The mean loss over the batch this device (or this program) sees."""
    return cross_entropy(predict(params, x), y)


def make_optimizer(steps):
    return optjx.lookahead(optjx.novograd(optjx.schedules.cosine(0.05, steps), weight_decay=1e-4))


def scan_training(optimizer, params, xs, ys):
    """Every step in one compiled loop: ``xs`` is ``(steps, batch, ...)``."""

    def step(carry, batch):
        params, state = carry
        grads = jax.grad(loss_fn)(params, *batch)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), (xs, ys))
    return params


def with_pmap(params, xs, ys, steps):
    n = jax.device_count()
    optimizer = optjx.chain(optjx.cross_replica_mean(AXIS), make_optimizer(steps))
    # (steps, batch, ...) -> (devices, steps, batch / devices, ...): each device its slice.
    split = lambda a: a.reshape(a.shape[0], n, -1, *a.shape[2:]).swapaxes(0, 1)  # noqa: E731
    out = jax.pmap(
        lambda p, x, y: scan_training(optimizer, p, x, y), axis_name=AXIS, in_axes=(None, 0, 0)
    )(params, split(xs), split(ys))
    replicas = jax.tree.leaves(out)
    assert all(np.array_equal(leaf[0], leaf[i]) for leaf in replicas for i in range(n))
    return jax.tree.map(lambda a: a[0], out)


def with_shard_map(params, xs, ys, steps):
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    optimizer = optjx.chain(optjx.cross_replica_mean(AXIS), make_optimizer(steps))
    batch = NamedSharding(mesh, P(None, AXIS))  # (steps, batch, ...): split the batch axis
    train = jax.shard_map(
        lambda p, x, y: scan_training(optimizer, p, x, y),
        mesh=mesh,
        in_specs=(P(), P(None, AXIS), P(None, AXIS)),
        out_specs=P(),
    )
    return jax.jit(train)(
        jax.device_put(params, NamedSharding(mesh, P())),
        jax.device_put(xs, batch),
        jax.device_put(ys, batch),
    )


def with_sharded_jit(params, xs, ys, steps):
    """The step users write for big models: one jit, shardings pinned on both ends."""
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    optimizer = make_optimizer(steps)  # no cross_replica_mean: jit averages by itself
    replicated = NamedSharding(mesh, P())
    params = jax.device_put(params, replicated)
    param_shardings = jax.tree.map(lambda _: replicated, params)
    state_shardings = optjx.parallel.state_shardings(
        jax.eval_shape(optimizer.init, params), mesh, AXIS
    )
    state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)

    def step(params, state, x, y):
        updates, state = optimizer.update(jax.grad(loss_fn)(params, x, y), state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, out_shardings=(param_shardings, state_shardings), donate_argnums=(0, 1))
    batch = NamedSharding(mesh, P(AXIS))
    for x, y in zip(xs, ys, strict=True):
        params, state = step(params, state, jax.device_put(x, batch), jax.device_put(y, batch))
    per_device = optjx.parallel.bytes_per_device(state, state_shardings)
    return params, (optjx.parallel.bytes_per_device(state), per_device)


def ten_million_parameter_row(optimizer, devices):
    """State bytes per device for a ~10M-parameter model: shapes only, nothing allocated."""
    shapes = {"embed": (6144, 512), "head": (512, 1000), "head_bias": (1000,)}
    for block in range(3):
        shapes.update({f"block{block}/in": (512, 2048), f"block{block}/out": (2048, 512)})
    abstract = {k: jax.ShapeDtypeStruct(v, jnp.float32) for k, v in shapes.items()}
    mesh = jax.make_mesh((devices,), (AXIS,))
    state = jax.eval_shape(optimizer.init, abstract)
    shardings = optjx.parallel.state_shardings(state, mesh, AXIS)
    count = sum(int(np.prod(s)) for s in shapes.values())
    return (
        count,
        optjx.parallel.bytes_per_device(state),
        optjx.parallel.bytes_per_device(state, shardings),
    )


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a few seconds: fewer steps")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 300)")
    p.add_argument("--batch-size", type=int, default=128, help="global batch (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write data_parallel.png (accuracy and state per device) to DIR",
    )
    args = p.parse_args(argv)
    steps = args.steps or (40 if args.quick else 300)
    n = jax.device_count()
    if args.batch_size % n:
        p.error(f"--batch-size {args.batch_size} must divide over the {n} devices")

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    idx = batch_indices(len(x_train), args.batch_size, steps, args.seed)
    xs, ys = x_train[idx], y_train[idx]  # (steps, batch, 8, 8, 1), (steps, batch)
    params = init_mlp(jax.random.key(args.seed))

    results = {
        "pmap + cross_replica_mean": with_pmap(params, xs, ys, steps),
        "shard_map + cross_replica_mean": with_shard_map(params, xs, ys, steps),
    }
    results["jit, sharded state (ZeRO-1)"], (replicated, sharded) = with_sharded_jit(
        params, xs, ys, steps
    )

    reference = jax.tree.map(np.asarray, results["pmap + cross_replica_mean"])
    rows, worst = [], 0.0
    for name, trained in results.items():
        # Lookahead: the fast weights are what the user holds; compare those.
        difference = max(
            float(np.max(np.abs(np.asarray(trained[k]) - reference[k]))) for k in reference
        )
        worst = max(worst, difference)
        test_acc = float(accuracy(predict(trained, jnp.asarray(x_test)), y_test))
        rows.append([name, f"{test_acc:.4f}", f"{difference:.1e}"])
    print(
        f"{n} devices, global batch {args.batch_size} ({args.batch_size // n} per device), {steps} steps"
    )
    print(table(rows, ["mechanism", "test acc", "max |param - pmap param|"]))
    scale = max(float(np.max(np.abs(v))) for v in reference.values())
    agree = worst <= 1e-4 * scale
    print(
        ("they agree" if agree else "THEY DISAGREE") + f" (largest difference {worst:.1e}, float32)"
    )

    count, big_replicated, big_sharded = ten_million_parameter_row(make_optimizer(steps), 8)
    print()
    print(
        table(
            [
                [
                    f"this MLP ({sum(v.size for v in reference.values()):,} params)",
                    str(n),
                    f"{replicated / 1024:.1f} KiB",
                    f"{sharded / 1024:.1f} KiB",
                ],
                [
                    f"~10M-param model ({count:,} params)",
                    "8",
                    f"{big_replicated / 2**20:.1f} MiB",
                    f"{big_sharded / 2**20:.1f} MiB",
                ],
            ],
            ["optimizer state per device", "devices", "replicated", "sharded (state_shardings)"],
        )
    )
    if args.out:
        accuracies = {row[0]: float(row[1]) for row in rows}
        plot(args.out, accuracies, (big_replicated, big_sharded), count, n)
    return agree


def plot(out_dir, accuracies, big_bytes, count, devices):
    """Test accuracy of the three mechanisms (equal bars: they agree) and the ~10M model's
    optimizer state per device, replicated against sharded."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), width_ratios=(3, 2))
    names = list(accuracies)
    left.barh(names, [accuracies[k] for k in names], color="tab:blue")
    for i, name in enumerate(names):
        left.text(accuracies[name], i, f" {accuracies[name]:.4f}", va="center")
    left.set_xlim(0.0, 1.15)
    left.invert_yaxis()
    left.set_xlabel("test accuracy (same model, data and optimizer)")
    left.set_title(f"three mechanisms, {devices} devices")
    mib = [b / 2**20 for b in big_bytes]
    right.bar(["replicated", "state_shardings"], mib, color=["tab:gray", "tab:green"])
    for i, value in enumerate(mib):
        right.text(i, value, f"{value:.1f} MiB", ha="center", va="bottom")
    right.set_ylim(0, max(mib) * 1.2)
    right.set_ylabel("MiB per device")
    right.set_title(f"state per device, {count / 1e6:.1f}M params")
    fig.tight_layout()
    save(fig, out_dir, "data_parallel.png")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
