"""Flax NNX: ``nnx.Optimizer`` with optjx's Lookahead, evaluated with the slow weights.

    python examples/flax_nnx.py [--quick] [--out DIR]

``nnx.Optimizer(model, tx, wrt=nnx.Param)`` takes any optax transformation. Lookahead
keeps its slow weights in the optimizer state, next to the inner optimizer's moments;
the model holds the fast weights. ``optjx.slow_params`` reads the slow weights out of
``optimizer.opt_state`` (after ``nnx.as_pure`` strips NNX's variable wrappers) and
``nnx.update`` loads them into a copy of the model for evaluation. The plot
``flax_nnx.png`` shows the fast weights running ahead and being pulled back at every
sync, and the slow weights' smoother test loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _common import accuracy, batch_indices, cross_entropy, load_digits, parser, pyplot, save, table
from flax import nnx

import optjx


class MLP(nnx.Module):
    def __init__(self, hidden: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        return self.out(jax.nn.relu(self.hidden(x)))


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="training steps (default 500)")
    args = p.parse_args(argv)
    steps = args.steps or (100 if args.quick else 500)
    sync_period = 6

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    model = MLP(64, rngs=nnx.Rngs(args.seed))
    tx = optjx.lookahead(optjx.adam(0.01), sync_period=sync_period, slow_step_size=0.5)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    # A second copy of the network, loaded with the slow weights whenever we evaluate.
    slow_model = nnx.clone(model)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            return cross_entropy(model(x), y)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def evaluate(model, slow_model, optimizer, x, y):
        nnx.update(slow_model, optjx.slow_params(nnx.as_pure(optimizer.opt_state)))
        out = []
        for m in (model, slow_model):
            logits = m(x)
            out.append(jnp.stack([cross_entropy(logits, y), accuracy(logits, y)]))
        return jnp.stack(out)

    x_test_d, y_test_d = jnp.asarray(x_test), jnp.asarray(y_test)
    history = [evaluate(model, slow_model, optimizer, x_test_d, y_test_d)]
    for idx in batch_indices(len(x_train), 32, steps, args.seed):
        train_step(model, optimizer, x_train[idx], y_train[idx])
        history.append(evaluate(model, slow_model, optimizer, x_test_d, y_test_d))
    history = np.asarray(jnp.stack(history))  # (steps + 1, fast/slow, loss/acc)

    train = np.asarray(evaluate(model, slow_model, optimizer, x_train, y_train))
    print(
        f"optimizer  lookahead(adam(0.01), sync_period={sync_period}, slow_step_size=0.5), {steps} steps"
    )
    print(
        table(
            [
                [name, f"{train[i, 1]:.4f}", f"{history[-1, i, 1]:.4f}", f"{history[-1, i, 0]:.4f}"]
                for i, name in enumerate(["fast (model)", "slow (slow_params)"])
            ],
            ["weights", "train acc", "test acc", "test loss"],
        )
    )
    plot(args.out, history, sync_period)


def plot(out, history, sync_period):
    plt = pyplot()
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(10, 4))
    t = np.arange(len(history))
    ax_all.plot(t, history[:, 0, 0], color="C0", lw=0.8, label="fast weights")
    syncs = t[::sync_period]  # the slow weights only change here
    ax_all.plot(syncs, history[syncs, 1, 0], color="C3", lw=1.5, label="slow weights")
    ax_all.set(xlabel="step", ylabel="test cross-entropy", yscale="log", title="test loss")
    # Zoom on a few sync periods: the fast weights run ahead, each sync pulls them back.
    lo = min(len(t) - 1, 8 * sync_period)
    hi = min(len(t), lo + 6 * sync_period + 1)
    zoom = slice(lo, hi)
    ax_zoom.plot(t[zoom], history[zoom, 0, 0], "o-", ms=3, color="C0", label="fast weights")
    ax_zoom.step(t[zoom], history[zoom, 1, 0], where="post", color="C3", label="slow weights")
    for s in range(lo, hi):
        if s % sync_period == 0:
            ax_zoom.axvline(s, color="gray", lw=0.5, ls=":")
    ax_zoom.set(
        xlabel="step (dotted: sync)", ylabel="test cross-entropy", title=f"steps {lo}-{hi - 1}"
    )
    for ax in (ax_all, ax_zoom):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("NNX Optimizer with Lookahead(Adam 0.01), k=6, alpha=0.5")
    fig.tight_layout()
    save(fig, out, "flax_nnx.png")


if __name__ == "__main__":
    main()
