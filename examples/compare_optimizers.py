"""Every optjx optimizer on the same network, data, batches and initial weights.

    python examples/compare_optimizers.py [--quick] [--out DIR] [--steps N]

``--quick`` trains 200 steps instead of 400 (compilation dominates either way).

Each optimizer runs with its default hyperparameters, written out in ``OPTIMIZERS`` of
``_optimizers.py`` (peak rates found with ``lr_sweep.py``, cosine decay, gradients clipped at global norm 1). A whole training
run is one ``lax.scan``, compiled once per optimizer; compile time and run time are
measured apart. Writes ``compare_optimizers.png`` (training-loss curves) and prints a table
of final loss, test accuracy and wall time.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import (
    accuracy,
    batch_indices,
    cross_entropy,
    load_digits,
    models,
    parser,
    pyplot,
    save,
    table,
)
from _optimizers import make_optimizer, optimizer_names

import optjx


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="training steps (default 400)")
    args = p.parse_args(argv)
    # Compilation dominates a quick run, so --quick still trains 200 steps: with fewer,
    # RAdam (whose rectification keeps its first few hundred steps small) and Lookahead
    # (which halves the progress of its inner RAdam between syncs) look broken.
    steps = args.steps or (200 if args.quick else 400)

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
    MLP, _ = models()
    model = MLP(hidden=64)
    params0 = model.init(jax.random.key(args.seed), x_train[:1])
    batches = jnp.asarray(batch_indices(len(x_train), 64, steps, args.seed))

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        return cross_entropy(logits, y)

    def train(tx, params, batches):
        def step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optjx.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, tx.init(params)), batches)
        return params, opt_state, losses

    names = optimizer_names()
    curves, rows = {}, []
    for name in names:
        tx, description = make_optimizer(name, steps)
        run = jax.jit(lambda params, batches, tx=tx: train(tx, params, batches))
        start = time.perf_counter()
        compiled = run.lower(params0, batches).compile()
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        params, opt_state, losses = jax.block_until_ready(compiled(params0, batches))
        run_s = time.perf_counter() - start
        if name.startswith("lookahead"):
            params = optjx.slow_params(opt_state)  # evaluate Lookahead's slow weights
        test_acc = float(accuracy(model.apply(params, x_test), y_test))
        curves[name] = np.asarray(losses)
        rows.append(
            [
                name,
                f"{np.mean(curves[name][-10:]):.4f}",
                f"{test_acc:.4f}",
                f"{compile_s:.2f}",
                f"{run_s * 1e3 / steps:.2f}",
                description,
            ]
        )
        print(f"{name:16s} test acc {test_acc:.4f}")

    print()
    print(f"MLP 64-64-10 on digits, batch 64, {steps} steps, same initial weights and batches")
    print(
        table(
            rows, ["optimizer", "train loss", "test acc", "compile s", "ms/step", "transformation"]
        )
    )

    if steps < 400:
        print(
            f"\nnote: {steps} steps is short for RAdam and Lookahead(RAdam). RAdam's rectifier\n"
            "r_t grows like sqrt(t (1 - b2) / 2), about 0.3 at t = 200 with b2 = 0.999, so its\n"
            "first few hundred steps are deliberately small (its warm-up); Lookahead then\n"
            "halves the progress between syncs. Both catch up by 400 steps (the default run)."
        )

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    window = max(1, min(20, steps // 10))
    kernel = np.ones(window) / window
    for i, (name, losses) in enumerate(curves.items()):
        smooth = np.convolve(np.nan_to_num(losses, nan=1e3), kernel, mode="valid")
        ax.plot(
            np.arange(window, steps + 1),
            smooth,
            color=f"C{i % 10}",
            ls="-" if i < 10 else "--",
            label=name,
        )
    ax.set(
        xlabel="step",
        ylabel=f"training loss (mean of {window} batches)",
        yscale="log",
        title="optjx optimizers, default hyperparameters, MLP on digits",
    )
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=9)
    fig.tight_layout()
    save(fig, args.out, "compare_optimizers.png")


if __name__ == "__main__":
    main()
