"""A learning-rate sweep in one compiled program: ``jax.vmap`` over the learning rate.

    python examples/lr_sweep.py [--optimizer sgd] [--quick] [--out DIR]

A common first step (Goodfellow et al. 2016, section 11.4.1; Smith 2017), made one
command: before tuning anything else, train with
learning rates on a log scale and look at the final loss. Too small and training
crawls; past some rate it diverges; the best rate sits a little below that edge.

Every optjx hyperparameter accepts a traced array, so the optimizer can be *built inside*
the vmapped function from the batched learning rate::

    def train(lr):
        tx = optjx.adam(optjx.schedules.cosine(lr, steps))   # lr is a tracer here
        ...
    final_losses = jax.jit(jax.vmap(train))(jnp.logspace(-4, 0, 16))

All 16 runs share the initial weights and the batches and run side by side in one XLA
program, compiled once. Writes ``lr_sweep.png``: final loss against learning rate (left),
with the divergence edge and the best rate marked, and every run's loss curve (right).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import (
    batch_indices,
    cross_entropy,
    load_digits,
    models,
    parser,
    pyplot,
    save,
)
from _optimizers import OPTIMIZERS, make_optimizer, optimizer_names

import optjx

N_RATES = 16


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--optimizer", default="sgd", metavar="NAME", help=f"one of {', '.join(optimizer_names())}"
    )
    p.add_argument("--steps", type=int, default=None, help="training steps per rate (default 300)")
    p.add_argument(
        "--decades",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="log10 of the smallest and largest rate (default: 3 decades below "
        "the optimizer's default rate to 2 above)",
    )
    args = p.parse_args(argv)
    base = "radam" if args.optimizer == "lookahead" else args.optimizer.removeprefix("lookahead-")
    if base not in OPTIMIZERS:
        p.error(f"unknown optimizer {args.optimizer!r}")
    steps = args.steps or (40 if args.quick else 300)
    center = np.log10(OPTIMIZERS[base][0])
    lo, hi = args.decades or (center - 3, center + 2)
    rates = jnp.logspace(lo, hi, N_RATES)

    x_train, y_train, _, _ = load_digits(seed=args.seed)
    x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
    MLP, _ = models()
    model = MLP(hidden=64)
    params0 = model.init(jax.random.key(args.seed), x_train[:1])
    batches = jnp.asarray(batch_indices(len(x_train), 64, steps, args.seed))

    def train(learning_rate):
        # The optimizer is built from the traced rate, inside the vmapped function.
        tx, _ = make_optimizer(args.optimizer, steps, learning_rate=learning_rate)

        def step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(
                lambda p: cross_entropy(model.apply(p, x_train[idx]), y_train[idx])
            )(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optjx.apply_updates(params, updates), opt_state), loss

        _, losses = jax.lax.scan(step, (params0, tx.init(params0)), batches)
        return losses

    start = time.perf_counter()
    sweep = jax.jit(jax.vmap(train)).lower(rates).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    losses = np.asarray(jax.block_until_ready(sweep(rates)))  # (N_RATES, steps)
    run_s = time.perf_counter() - start
    rates = np.asarray(rates)

    # Final loss: the mean of the last 10 batches (one batch is noisy); non-finite = diverged.
    tail = losses[:, -min(10, steps) :]
    final = np.where(np.all(np.isfinite(tail), axis=1), tail.mean(axis=1), np.inf)
    initial = float(losses[0, 0])  # same weights and first batch for every rate
    best = int(np.argmin(final))
    # A run has failed when it did not even halve the initial loss (non-finite counts).
    # The divergence edge is the first failed rate above the best one; a tiny rate also
    # fails to make progress, but it has not diverged.
    failed = ~(final < 0.5 * initial)
    diverged = failed & (np.arange(N_RATES) > best)
    edge = int(np.argmax(diverged)) if diverged.any() else None

    print(
        f"{args.optimizer}: {N_RATES} rates in one program, {steps} steps each "
        f"(compile {compile_s:.1f} s, run {run_s:.2f} s)"
    )
    for lr, f, d in zip(rates, final, diverged, strict=True):
        print(f"  lr {lr:9.3g}  final loss {f:9.4g}" + ("  diverged" if d else ""))
    print(f"best rate {rates[best]:.3g} (final loss {final[best]:.4g})")
    if edge is not None:
        print(
            f"divergence edge (first rate above the best that does not halve the initial loss {initial:.3g}): {rates[edge]:.3g}"
        )

    plt = pyplot()
    fig, (ax, ax_curves) = plt.subplots(1, 2, figsize=(11, 4.5))
    top = 3 * max(initial, float(np.max(final[np.isfinite(final)], initial=initial)))
    shown = np.where(np.isfinite(final), final, top)  # non-finite runs drawn at the top
    ax.plot(rates, shown, "o-", color="C0", label="final loss")
    ax.plot(rates[diverged], shown[diverged], "x", color="C3", ms=10, mew=2, label="diverged")
    ax.axhline(initial, color="gray", lw=0.8, ls=":", label="initial loss")
    ax.axvline(rates[best], color="C2", ls="--", label=f"best {rates[best]:.2g}")
    if edge is not None:
        ax.axvspan(
            rates[edge],
            rates[-1] * 1.3,
            color="C3",
            alpha=0.12,
            label=f"diverges from {rates[edge]:.2g}",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="peak learning rate",
        ylabel=f"final training loss ({steps} steps)",
        title=f"{args.optimizer}: 16 rates, one jax.vmap",
        ylim=(None, top * 1.5),
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")

    cmap = plt.get_cmap("viridis")
    for i in range(N_RATES):
        curve = np.clip(np.nan_to_num(losses[i], nan=top), None, top)
        ax_curves.plot(np.arange(1, steps + 1), curve, color=cmap(i / (N_RATES - 1)), lw=1)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.matplotlib.colors.LogNorm(rates[0], rates[-1]))
    fig.colorbar(sm, ax=ax_curves, label="learning rate")
    ax_curves.set(
        yscale="log", xlabel="step", ylabel="training loss", title="every run (diverged clipped)"
    )
    ax_curves.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, args.out, "lr_sweep.png")
    return rates, final


if __name__ == "__main__":
    main()
