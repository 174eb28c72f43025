"""optjx quickstart: a small Flax CNN on scikit-learn's digits in well under a minute.

    python examples/quickstart.py                 # Lookahead(RAdam(cosine)), 500 steps
    python examples/quickstart.py --optimizer adam --steps 300 --out /tmp

The optimizer is one optax transformation built from optjx pieces::

    tx = optjx.chain(
        optjx.clip_by_global_norm(1.0),
        optjx.lookahead(optjx.radam(optjx.schedules.cosine(0.03, steps))),
    )

and drops into Flax's ``TrainState`` unchanged. Lookahead keeps its slow weights in the
optimizer state; ``optjx.slow_params(state.opt_state)`` finds them anywhere in the chain,
and the held-out split is evaluated with them. The script prints a table and writes
``quickstart.png`` (loss and accuracy curves) into ``--out``.
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
from _optimizers import OPTIMIZERS, make_optimizer, optimizer_names
from flax.training import train_state
from tqdm import tqdm

import optjx

BATCH_SIZE = 64
LOG_EVERY = 10  # steps per compiled call (a lax.scan), one progress-bar update each
EVAL_EVERY = 50


def main(argv=None):
    p = parser("Train a small CNN on digits with an optjx optimizer.")
    p.add_argument(
        "--optimizer",
        default="lookahead",
        metavar="NAME",
        help=f"one of {', '.join(optimizer_names())}, or lookahead-<alias> (default: "
        "lookahead, i.e. Lookahead around RAdam)",
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default 500)")
    p.add_argument(
        "--learning-rate", type=float, default=None, help="peak rate (default per optimizer)"
    )
    args = p.parse_args(argv)
    base = "radam" if args.optimizer == "lookahead" else args.optimizer.removeprefix("lookahead-")
    if base not in OPTIMIZERS:
        p.error(f"unknown optimizer {args.optimizer!r}; choose from {', '.join(optimizer_names())}")
    steps = args.steps or (100 if args.quick else 500)
    steps = -(-steps // LOG_EVERY) * LOG_EVERY

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    _, CNN = models()
    model = CNN()
    if args.optimizer == "lookahead":
        # The default, spelled out: clip, then Lookahead around RAdam with a cosine rate.
        lr = args.learning_rate or OPTIMIZERS["radam"][0]
        tx = optjx.chain(
            optjx.clip_by_global_norm(1.0),
            optjx.lookahead(optjx.radam(optjx.schedules.cosine(lr, steps))),
        )
        description = f"chain(clip(1.0), lookahead(radam(cosine({lr:g}, {steps}))))"
    else:  # any other alias, with its defaults from _optimizers.OPTIMIZERS
        tx, description = make_optimizer(args.optimizer, steps, args.learning_rate)
    params = model.init(jax.random.key(args.seed), x_train[:1])
    n_params = sum(p.size for p in jax.tree.leaves(params))
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    lookahead = args.optimizer.startswith("lookahead")

    def eval_params(state):
        # The slow weights are what Lookahead converges with: evaluate those.
        return optjx.slow_params(state.opt_state) if lookahead else state.params

    x_train_d, y_train_d = jnp.asarray(x_train), jnp.asarray(y_train)

    def train_step(state, idx):
        x, y = x_train_d[idx], y_train_d[idx]

        def loss_fn(params):
            logits = state.apply_fn(params, x)
            return cross_entropy(logits, y), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return state.apply_gradients(grads=grads), (loss, accuracy(logits, y))

    @jax.jit
    def train_chunk(state, idx):
        return jax.lax.scan(train_step, state, idx)

    @jax.jit
    def evaluate(params, x, y):
        logits = model.apply(params, x)
        return cross_entropy(logits, y), accuracy(logits, y)

    batches = batch_indices(len(x_train), BATCH_SIZE, steps, args.seed)
    chunks = batches.reshape(-1, LOG_EVERY, BATCH_SIZE)

    # Compile outside the timed loop (a throwaway call) so steps/s measures training.
    start = time.perf_counter()
    jax.block_until_ready(train_chunk(state, chunks[0]))
    jax.block_until_ready(evaluate(eval_params(state), x_test, y_test))
    compile_seconds = time.perf_counter() - start

    losses, accs, evals = [], [], []
    bar = tqdm(total=steps, desc=args.optimizer, unit="step", ncols=90)
    train_seconds = 0.0
    for i, idx in enumerate(chunks):
        start = time.perf_counter()
        state, (loss, acc) = jax.block_until_ready(train_chunk(state, idx))
        train_seconds += time.perf_counter() - start
        losses.extend(np.asarray(loss))
        accs.extend(np.asarray(acc))
        done = (i + 1) * LOG_EVERY
        if done % EVAL_EVERY == 0 or done == steps:
            test_loss, test_acc = evaluate(eval_params(state), x_test, y_test)
            evals.append((done, float(test_loss), float(test_acc)))
        bar.set_postfix(
            loss=f"{np.mean(loss):.3f}",
            acc=f"{np.mean(acc):.3f}",
            test=f"{evals[-1][2]:.3f}" if evals else "-",
        )
        bar.update(LOG_EVERY)
    bar.close()

    final = {}
    for label, params in [("fast", state.params), ("slow", eval_params(state))]:
        if label == "slow" and not lookahead:
            continue
        final[label] = [
            float(evaluate(params, x, y)[1]) for x, y in [(x_train, y_train), (x_test, y_test)]
        ]

    print()
    print(f"optimizer  {description}")
    print(f"model      CNN (2 conv + GroupNorm), {n_params} parameters")
    print(f"data       digits, {len(x_train)} train / {len(x_test)} test, batch {BATCH_SIZE}")
    print()
    rows = [
        [
            f"{label} weights"
            + (" (evaluated)" if label == ("slow" if lookahead else "fast") else ""),
            f"{tr:.4f}",
            f"{te:.4f}",
        ]
        for label, (tr, te) in final.items()
    ]
    print(table(rows, ["", "train acc", "test acc"]))
    print()
    print(
        table(
            [
                [
                    str(steps),
                    f"{steps / train_seconds:,.0f}",
                    f"{compile_seconds:.1f} s",
                    f"{train_seconds:.1f} s",
                ]
            ],
            ["steps", "steps/s", "compile", "train"],
        )
    )

    plot(args.out, args.optimizer, np.array(losses), np.array(accs), evals, lookahead)
    return final


def plot(out, name, losses, accs, evals, lookahead):
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.arange(1, len(losses) + 1)
    window = 10
    smooth = lambda v: np.convolve(v, np.ones(window) / window, mode="valid")  # noqa: E731
    ax_loss.plot(steps, losses, color="C0", alpha=0.3, lw=0.8, label="training batches")
    ax_loss.plot(
        steps[window - 1 :], smooth(losses), color="C0", label=f"training, mean of {window}"
    )
    e_steps, e_loss, e_acc = zip(*evals, strict=True)
    which = "slow weights" if lookahead else "weights"
    ax_loss.plot(e_steps, e_loss, "o-", color="C3", label=f"test, {which}")
    ax_loss.set(yscale="log", xlabel="step", ylabel="cross-entropy", title=f"loss ({name})")
    ax_loss.legend()
    ax_acc.plot(steps[window - 1 :], smooth(accs), color="C0", label="train batches")
    ax_acc.plot(e_steps, e_acc, "o-", color="C3", label=f"test, {which}")
    ax_acc.set(
        xlabel="step",
        ylabel="accuracy",
        title="accuracy",
        ylim=(max(0.0, min(e_acc) - 0.05), 1.005),
    )
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    save(fig, out, "quickstart.png")


if __name__ == "__main__":
    main()
