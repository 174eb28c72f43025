"""Time per L-BFGS step on a 1M-parameter logistic regression: optjx, optax, torch.

One optjx ``update`` (``max_iter=20``, strong Wolfe, history 10) against ``optax.lbfgs``
(memory 10) driven for the same number of iterations that optjx used, inside one jitted
``fori_loop``, and against ``torch.optim.LBFGS.step`` with the same settings, on the same
CPU in one process; plus the compile time of an optjx update on a 100-leaf tree (the
fastest of three compilations from a cleared cache). Evaluations (loss and gradient) are
counted for each: torch's rule (the first step ``min(1, 1/|g|_1)``, then the strong-Wolfe
schedule) and optax's zoom line search make different numbers of them per iteration.
A second table runs optjx and optax on a separable quadratic of the same size, whose
evaluation is cheap (two passes over the params): the time per iteration is then mostly
the methods' own work (two-loop recursion, line search, bookkeeping).

    python benchmarks/full_batch.py [--features 1000000] [--samples 32] [--reps 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optjx


def interleaved(fns, reps, *, warm_up=True):
    """Median seconds of each function, timed in turn ``reps`` rounds (after a warm-up
    call each, unless ``warm_up=False``), the order rotated each round, so that a busy
    spell of the machine slows all of them alike."""
    if warm_up:
        for fn in fns:
            fn()  # compilation is not timed
    samples = [[] for _ in fns]
    for rep in range(reps):
        for j in range(len(fns)):
            i = (rep + j) % len(fns)
            start = time.perf_counter()
            fns[i]()
            samples[i].append(time.perf_counter() - start)
    return [float(np.median(s)) for s in samples]


def optax_drive(loss, w0, iterations):
    """``optax.lbfgs`` (memory 10) for ``iterations`` updates in one jitted ``fori_loop``."""
    ox = optax.lbfgs(memory_size=10)
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def run(w):
        def body(_, carry):
            w, s = carry
            value, grad = value_and_grad(w, state=s)
            updates, s = ox.update(grad, s, w, value=value, grad=grad, value_fn=loss)
            return optax.apply_updates(w, updates), s

        return jax.lax.fori_loop(0, iterations, body, (w, ox.init(w)))

    return run


def count_optax_evaluations(loss, w0, iterations):
    """Loss evaluations ``optax.lbfgs`` makes in ``iterations`` updates (a separate,
    untimed run: a host callback counts the calls)."""
    calls = [0]

    def counted(w):
        jax.debug.callback(lambda: calls.__setitem__(0, calls[0] + 1))
        return loss(w)

    jax.block_until_ready(optax_drive(counted, w0, iterations)(w0))
    jax.effects_barrier()
    return calls[0]


def jax_contenders(opt, loss, w0):
    """One optjx update and optax driven for as many iterations, as timed callables, with
    the iterations and both evaluation counts."""

    @jax.jit
    def optjx_step(w, state):
        value, grad = jax.value_and_grad(loss)(w)
        updates, state = opt.update(grad, state, w, value=value, value_fn=loss)
        return optax.apply_updates(w, updates), state

    state = opt.init(w0)
    _, after = optjx_step(w0, state)
    iterations = int(after.iterations)
    optax_run = optax_drive(loss, w0, iterations)
    calls = (lambda: jax.block_until_ready(optjx_step(w0, state)),
             lambda: jax.block_until_ready(optax_run(w0)))  # fmt: skip
    counts = (int(after.evaluations), count_optax_evaluations(loss, w0, iterations))
    return calls, iterations, counts


def torch_contender(x, y, features):
    """``torch.optim.LBFGS.step`` on the same problem, from zeros each call."""
    import torch

    xt, yt = torch.tensor(x), torch.tensor(y)
    wt = torch.zeros(features, requires_grad=True)

    def torch_step():
        with torch.no_grad():
            wt.zero_()
        tor = torch.optim.LBFGS([wt], max_iter=20, history_size=10, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip

        def closure():
            tor.zero_grad()
            z = xt @ wt
            nll = torch.mean(torch.logaddexp(z, torch.zeros_like(z)) - yt * z)
            value = nll + 1e-4 * torch.sum(wt * wt)
            value.backward()
            return value

        tor.step(closure)
        return tor.state[wt]["n_iter"], tor.state[wt]["func_evals"]

    return torch_step


def compile_seconds(opt, n_leaves=100, rounds=3, *, with_cpu=False):
    """The fastest of ``rounds`` compilations of an update on ``n_leaves`` leaves of 100
    (with ``with_cpu``: ``(wall, cpu)``, this process's CPU time of the same compilation,
    which does not count waiting for a core on a shared machine)."""
    leaves = {f"w{i:03d}": jnp.zeros(100, jnp.float32) for i in range(n_leaves)}

    def tree_loss(p):
        return sum(jnp.sum((v - 1.0) ** 2) for v in p.values())

    def tree_step(p, s):
        value, grad = jax.value_and_grad(tree_loss)(p)
        return opt.update(grad, s, p, value=value, value_fn=tree_loss)

    state = jax.eval_shape(opt.init, leaves)  # shapes only: bfgs's (n, n) is not allocated
    times = []
    for _ in range(rounds):
        jax.clear_caches()
        start, cpu = time.perf_counter(), time.process_time()
        jax.jit(tree_step).lower(leaves, state).compile()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = min(times)
    return (wall, cpu) if with_cpu else wall


def print_table(rows):
    print("| implementation | iterations | evaluations | time per step (s) "
          "| time per iteration (ms) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, t, it, ev in rows:
        print(f"| {name} | {it} | {ev} | {t:.3f} | {1000 * t / it:.1f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(args.samples, args.features)) / np.sqrt(args.features)).astype(np.float32)
    y = (rng.uniform(size=args.samples) > 0.5).astype(np.float32)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def loss(w):
        z = xj @ w
        return jnp.mean(jnp.logaddexp(z, 0.0) - yj * z) + 1e-4 * jnp.sum(w * w)

    w0 = jnp.zeros(args.features, jnp.float32)
    opt = optjx.lbfgs(max_iter=20, history_size=10, line_search_fn="strong_wolfe",
                      tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip
    (run_optjx, run_optax), iterations, (optjx_evals, optax_evals) = jax_contenders(opt, loss, w0)
    torch_step = torch_contender(x, y, args.features)
    torch_iters, torch_evals = torch_step()
    t_optjx, t_optax, t_torch = interleaved([run_optjx, run_optax, torch_step], args.reps)
    print(f"logistic regression, {args.features:,} parameters, {args.samples} samples, "
          f"{jax.devices()[0].device_kind}")  # fmt: skip
    print_table([("optjx.lbfgs (one update)", t_optjx, iterations, optjx_evals),
                 ("optax.lbfgs (same iterations)", t_optax, iterations, optax_evals),
                 ("torch.optim.LBFGS.step", t_torch, torch_iters, torch_evals)])  # fmt: skip

    curvature = jnp.asarray(rng.uniform(0.5, 50.0, size=args.features), jnp.float32)
    target = jnp.asarray(rng.normal(size=args.features), jnp.float32)

    def quadratic(w):  # cheap to evaluate: the methods' own work dominates
        return 0.5 * jnp.sum(curvature * w * w) - jnp.sum(target * w)

    calls, iterations, (optjx_evals, optax_evals) = jax_contenders(opt, quadratic, w0)
    t_optjx, t_optax = interleaved(list(calls), args.reps)
    print(f"\nseparable quadratic, {args.features:,} parameters (cheap evaluations)")
    print_table([("optjx.lbfgs (one update)", t_optjx, iterations, optjx_evals),
                 ("optax.lbfgs (same iterations)", t_optax, iterations, optax_evals)])  # fmt: skip
    print(f"\ncompile time, optjx.lbfgs update on a 100-leaf tree: {compile_seconds(opt):.2f} s")


if __name__ == "__main__":
    main()
