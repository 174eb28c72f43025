"""Flax Linen: an optjx optimizer in ``TrainState``, with Polyak-averaged weights.

    python examples/flax_linen_train_state.py [--quick] [--out DIR]

``TrainState`` takes any optax transformation, and every optjx optimizer is one, so the
only optjx-specific lines are the ``tx=`` argument and the evaluation with the averaged
weights. ``polyak_averaging`` keeps an average of the iterates in the optimizer state
(the params the model trains with are untouched); ``optjx.averaged_params`` finds it
anywhere in the state. Averaging the noisy iterates of constant-rate SGD on small batches
gives a lower test loss than the last iterate: the plot ``flax_linen_train_state.png``
shows both.
"""

from __future__ import annotations

import jax
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
from flax.training import train_state

import optjx


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="training steps (default 1500)")
    p.add_argument(
        "--decay", type=float, default=0.99, help="EMA decay of the average (default 0.99)"
    )
    args = p.parse_args(argv)
    steps = args.steps or (200 if args.quick else 1500)
    eval_every = 10 if args.quick else 25

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    MLP, _ = models()
    model = MLP(hidden=64)
    params = model.init(jax.random.key(args.seed), x_train[:1])

    # Constant-rate SGD with momentum on batches of 16 keeps the iterates bouncing; the
    # exponential average of the last ~1/(1-decay) iterates smooths that out.
    tx = optjx.polyak_averaging(optjx.sgd(0.05, momentum=0.9), decay=args.decay)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    @jax.jit
    def train_step(state, x, y):
        def loss_fn(params):
            return cross_entropy(state.apply_fn(params, x), y)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    @jax.jit
    def evaluate(state, x, y):
        # The same network, once with the last iterate and once with the average.
        out = []
        for params in (state.params, optjx.averaged_params(state.opt_state)):
            logits = state.apply_fn(params, x)
            out.append((cross_entropy(logits, y), accuracy(logits, y)))
        return out

    history = []
    for step, idx in enumerate(batch_indices(len(x_train), 16, steps, args.seed), start=1):
        state, _ = train_step(state, x_train[idx], y_train[idx])
        if step % eval_every == 0:
            (loss_last, acc_last), (loss_avg, acc_avg) = evaluate(state, x_test, y_test)
            history.append((step, loss_last, acc_last, loss_avg, acc_avg))
    history = np.array(history, dtype=np.float64)

    (train_last, train_avg) = [float(a) for _, a in evaluate(state, x_train, y_train)]
    _, _, test_last, _, test_avg = history[-1]
    print(
        f"optimizer  polyak_averaging(sgd(0.05, momentum=0.9), decay={args.decay}), {steps} steps"
    )
    print(
        table(
            [
                ["last iterate", f"{train_last:.4f}", f"{test_last:.4f}", f"{history[-1, 1]:.4f}"],
                ["averaged", f"{train_avg:.4f}", f"{test_avg:.4f}", f"{history[-1, 3]:.4f}"],
            ],
            ["weights", "train acc", "test acc", "test loss"],
        )
    )

    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for col, label, color in [(1, "last iterate", "C0"), (3, "Polyak average", "C3")]:
        ax_loss.plot(history[:, 0], history[:, col], color=color, label=label)
        ax_acc.plot(history[:, 0], history[:, col + 1], color=color, label=label)
    ax_loss.set(xlabel="step", ylabel="test cross-entropy", yscale="log", title="test loss")
    ax_acc.set(xlabel="step", ylabel="test accuracy", title="test accuracy", ylim=(0.85, 1.0))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Linen TrainState, SGD (lr 0.05, momentum 0.9, batch 16), EMA decay {args.decay}")
    fig.tight_layout()
    save(fig, args.out, "flax_linen_train_state.png")


if __name__ == "__main__":
    main()
