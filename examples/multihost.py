"""Training on several hosts: JAX's multi-controller runtime, one call, optjx unchanged.

Every host runs this same script, one process per host, each driving its local devices
(GPUs, TPU chips or CPU cores). The only distributed code is one call,
``jax.distributed.initialize``, before anything else touches JAX; after it
``jax.devices()`` lists the devices of all hosts, and a ``jax.jit`` over a mesh of them
runs on all hosts at once (collectives over NCCL on GPU, ICI/DCN on TPU, gloo on CPU).
optjx adds nothing: the optimizer state is split over every device with
``optjx.parallel.state_shardings`` exactly as on one host.

Start it on N hosts::

    # on every host; the same address and count everywhere, its own id on each
    export JAX_COORDINATOR_ADDRESS=10.0.0.1:1234   # host 0's address and a free port
    export JAX_NUM_PROCESSES=4                     # N
    export JAX_PROCESS_ID=0                        # 0 .. N-1
    python examples/multihost.py

JAX reads ``JAX_COORDINATOR_ADDRESS`` itself; this script reads the other two and passes
them to ``jax.distributed.initialize``. On Cloud TPU, Slurm, Open MPI (``mpirun``) and
Kubernetes JobSets set none of them: ``jax.distributed.initialize()`` with no arguments
finds all three in the cluster's environment.

Try it on one machine, as N processes on 127.0.0.1 with 2 CPU devices each::

    python examples/multihost.py --local-processes 2 --quick [--out DIR]

With ``--out DIR`` the report is also written to ``DIR/multihost.txt``. Each process prints a checksum of the params it holds; they must all be the same.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AXIS = "batch"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--local-processes",
        type=int,
        default=0,
        metavar="N",
        help="spawn N processes on 127.0.0.1 (2 CPU devices each) and run this script in each",
    )
    p.add_argument("--quick", action="store_true", help="a few seconds: fewer steps")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 300)")
    p.add_argument("--batch-size", type=int, default=128, help="global batch, over all hosts")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds before local processes are killed"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write the report (one line per process) to DIR/multihost.txt",
    )
    return p.parse_args(argv)


def write_report(out_dir, lines) -> None:
    """``lines`` as ``out_dir/multihost.txt``: the text a run leaves behind."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "multihost.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


# --------------------------------------------------------------------------- one process


def run_one_process(args) -> None:
    import jax

    # CPU collectives across processes go over gloo (JAX's default on recent versions;
    # explicit for older ones). GPUs use NCCL and TPUs their interconnect regardless.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=os.environ.get("JAX_COORDINATOR_ADDRESS"),  # None: auto-detect
            num_processes=_int_env("JAX_NUM_PROCESSES"),
            process_id=_int_env("JAX_PROCESS_ID"),
        )
    except ValueError as error:  # no variables set and no cluster JAX recognises
        raise SystemExit(
            f"jax.distributed.initialize: {error}\nSet JAX_COORDINATOR_ADDRESS, "
            "JAX_NUM_PROCESSES and JAX_PROCESS_ID on every host (see --help), or try "
            "--local-processes 2 on this machine."
        ) from error

    # Everything below is the same code as on one host.
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    sys.path.insert(0, HERE)
    from _common import accuracy, batch_indices, cross_entropy, load_digits

    import optjx

    me, hosts = jax.process_index(), jax.process_count()
    steps = args.steps or (30 if args.quick else 300)
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))  # every device of every host
    if args.batch_size % jax.device_count():
        raise SystemExit(f"--batch-size must divide over the {jax.device_count()} devices")

    def predict(params, x):
        x = jax.nn.relu(x.reshape(x.shape[0], -1) @ params["w0"] + params["b0"])
        return x @ params["w1"] + params["b1"]

    def loss_fn(params, x, y):
        return cross_entropy(predict(params, x), y)

    # Every host builds the same initial params (same seed); the arrays are replicated.
    k0, k1 = jax.random.split(jax.random.key(0))
    params = {
        "w0": np.asarray(jax.random.normal(k0, (64, 64)) / 8.0),
        "b0": np.zeros(64, np.float32),
        "w1": np.asarray(jax.random.normal(k1, (64, 10)) / 8.0),
        "b1": np.zeros(10, np.float32),
    }
    replicated = NamedSharding(mesh, P())
    params = jax.tree.map(lambda a: jax.make_array_from_process_local_data(replicated, a), params)

    optimizer = optjx.lookahead(
        optjx.novograd(optjx.schedules.cosine(0.05, steps), weight_decay=1e-4)
    )
    state_shardings = optjx.parallel.state_shardings(
        jax.eval_shape(optimizer.init, params), mesh, AXIS
    )
    param_shardings = jax.tree.map(lambda _: replicated, params)
    state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)

    def step(params, state, x, y):
        # x is the global batch, split over every device of every host: jit averages
        # the mean loss's gradient across hosts by itself (no cross_replica_mean here).
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    step = jax.jit(
        step, out_shardings=(param_shardings, state_shardings, replicated), donate_argnums=(0, 1)
    )

    # The input pipeline: each host loads only its own slice of every global batch. With
    # jax.make_mesh each host's devices are one contiguous block of the batch axis.
    x_train, y_train, x_test, y_test = load_digits()
    batch = NamedSharding(mesh, P(AXIS))
    per_host = args.batch_size // hosts
    start = time.perf_counter()
    for idx in batch_indices(len(x_train), args.batch_size, steps, seed=0):
        mine = idx[me * per_host : (me + 1) * per_host]
        x = jax.make_array_from_process_local_data(batch, x_train[mine])
        y = jax.make_array_from_process_local_data(batch, y_train[mine])
        params, state, loss = step(params, state, x, y)
    local = {k: np.asarray(v.addressable_data(0)) for k, v in params.items()}  # this host's copy
    seconds = time.perf_counter() - start

    test_acc = float(accuracy(predict(local, jnp.asarray(x_test)), y_test))
    checksum = sum(float(np.sum(np.abs(v.astype(np.float64)))) for v in local.values())
    state_bytes = optjx.parallel.bytes_per_device(state, state_shardings)
    line = (
        f"process {me}/{hosts}: {jax.local_device_count()} of {jax.device_count()} devices, "
        f"{steps} steps in {seconds:.1f} s, loss {float(loss.addressable_data(0)):.4f}, "
        f"test acc {test_acc:.4f}, state {state_bytes} B/device "
        f"(of {optjx.parallel.bytes_per_device(state)}), params checksum {checksum:.10e}"
    )
    print(line, flush=True)
    if args.out and me == 0:  # on real hosts, the first one writes the report
        write_report(args.out, [line])
    jax.distributed.shutdown()


def _int_env(name):
    value = os.environ.get(name)
    return None if value is None else int(value)


# --------------------------------------------------------------------------- the launcher


def launch_local(args) -> int:
    """Run this script as ``args.local_processes`` processes on 127.0.0.1."""
    n = args.local_processes
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The children get the same flags, less --local-processes (and its value).
    forwarded = ["--steps", str(args.steps)] if args.steps else []
    forwarded += ["--batch-size", str(args.batch_size)] + (["--quick"] if args.quick else [])
    children = []
    for i in range(n):
        env = dict(os.environ)
        env.update(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES=str(n),
            JAX_PROCESS_ID=str(i),
            JAX_PLATFORMS="cpu",
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
        )
        children.append(
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), *forwarded],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    deadline = time.monotonic() + args.timeout
    outputs = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append(out)
    except subprocess.TimeoutExpired:
        print(f"timed out after {args.timeout:.0f} s; killing the processes", file=sys.stderr)
        return 1
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    lines = []
    for i, (child, out) in enumerate(zip(children, outputs, strict=True)):
        if child.returncode != 0:
            print(f"process {i} failed ({child.returncode}):\n{out}", file=sys.stderr)
            return 1
        lines += [line for line in out.splitlines() if line.startswith("process ")]
    print("\n".join(lines))
    checksums = {line.rsplit("checksum ", 1)[1] for line in lines}
    same = len(lines) == n and len(checksums) == 1
    verdict = f"all {n} processes hold identical params" if same else "PROCESSES DISAGREE"
    print(verdict)
    if args.out:
        write_report(args.out, [*lines, verdict])
    return 0 if same else 1


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.local_processes:
        sys.exit(launch_local(arguments))
    run_one_process(arguments)
