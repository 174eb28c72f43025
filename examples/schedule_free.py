"""Schedule-free AdamW against AdamW with a cosine schedule, on the quickstart's digits CNN.

    python examples/schedule_free.py              # 600 steps each
    python examples/schedule_free.py --quick --out /tmp

Schedule-free training (Defazio et al. 2024) needs no schedule and so no run length:
the params you train are ``y`` (where gradients are taken) and the weights to evaluate
are ``x``, the learning-rate-weighted average of the base iterates, kept implicitly in
the optimizer state::

    tx = optjx.adamw_schedule_free(lr, warmup_steps=50, weight_decay=1e-4)
    x = optjx.schedule_free_eval_params(state.opt_state, state.params)

The CNN uses GroupNorm, so evaluating at ``x`` needs nothing else; with BatchNorm,
recompute the running statistics with a few training batches at ``x`` before evaluating.

The third panel shows the warm-up fix on a small float64 least-squares problem: the
reference algorithm (``schedulefree.AdamWScheduleFree``, written out below in NumPy),
``optjx.adamw_schedule_free`` and ``optax.contrib.schedule_free_adamw``, all with a
10-step warm-up. optax evaluates the base step's rate at count 0 (zero) but the
averaging weights at count 1, so its first update does nothing and its trajectory
stays off the reference; optjx uses one rate per step for both and follows it to
rounding. The script writes ``schedule_free.png`` into ``--out``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
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

BATCH_SIZE = 64
EVAL_EVERY = 25
WARMUP = 50


def train(tx, steps, seed, evaluate_at):
    """Train the CNN; return [(step, test loss, test acc)] at the weights ``evaluate_at``
    picks from the train state (a dict of name -> params)."""
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    model = models()[1]()
    params = model.init(jax.random.key(seed), x_train[:1])
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)

    def step(state, idx):
        def loss_fn(params):
            return cross_entropy(state.apply_fn(params, x_train[idx]), y_train[idx])

        return state.apply_gradients(grads=jax.grad(loss_fn)(state.params)), None

    @jax.jit
    def chunk(state, idx):
        return jax.lax.scan(step, state, idx)[0]

    @jax.jit
    def evaluate(state):
        out = {}
        for name, weights in evaluate_at(state).items():
            logits = model.apply(weights, x_test)
            out[name] = (cross_entropy(logits, y_test), accuracy(logits, y_test))
        return out

    batches = batch_indices(len(x_train), BATCH_SIZE, steps, seed)
    batches = batches.reshape(-1, EVAL_EVERY, BATCH_SIZE)
    curves = {}
    for i, idx in enumerate(batches):
        state = chunk(state, idx)
        for name, (loss, acc) in evaluate(state).items():
            curves.setdefault(name, []).append(((i + 1) * EVAL_EVERY, float(loss), float(acc)))
    return curves


# ------------------------------------------------------------------ the warm-up fix


def reference_adamw_schedule_free(grad, w0, steps, lr, warmup, b1=0.9, b2=0.999, eps=1e-8):
    """``schedulefree.AdamWScheduleFree.step`` in float64 NumPy (weight_lr_power=2, r=0)."""
    y, z, v = w0.copy(), w0.copy(), np.zeros_like(w0)
    lr_max, weight_sum, ys = 0.0, 0.0, []
    for k in range(steps):
        rate = lr * min(1.0, (k + 1) / warmup)
        g = grad(y)
        v = b2 * v + (1 - b2) * g * g
        d = g / (np.sqrt(v / (1 - b2 ** (k + 1))) + eps)
        lr_max = max(lr_max, rate)
        weight_sum += lr_max**2
        c = lr_max**2 / weight_sum
        y = (1 - c) * y + c * z + rate * (b1 * (1 - c) - 1) * d
        z = z - rate * d
        ys.append(y)
    return np.stack(ys)


def warmup_deviation(steps=40, warmup=10, lr=0.1):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(32, 6)), rng.normal(size=32)
    grad = lambda w: a.T @ (a @ w - b) / len(b)  # noqa: E731
    w0 = np.zeros(6)
    ref = reference_adamw_schedule_free(grad, w0, steps, lr, warmup)
    out = {}
    with jax.enable_x64(True):
        for name, tx in [
            ("optjx.adamw_schedule_free", optjx.adamw_schedule_free(lr, warmup_steps=warmup)),
            ("optax.contrib.schedule_free_adamw",
             optax.contrib.schedule_free_adamw(lr, warmup_steps=warmup)),
        ]:  # fmt: skip
            w, state, dev = jnp.asarray(w0), tx.init(jnp.asarray(w0)), []
            for k in range(steps):
                updates, state = tx.update(jnp.asarray(grad(np.asarray(w))), state, w)
                w = optax.apply_updates(w, updates)
                dev.append(float(np.max(np.abs(np.asarray(w) - ref[k]))))
            out[name] = np.maximum(np.array(dev), 1e-17)  # log scale: exact zeros at the floor
    return out


def main(argv=None):
    p = parser("Schedule-free AdamW vs AdamW + cosine on the digits CNN.")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 600)")
    p.add_argument("--learning-rate", type=float, default=0.01)
    args = p.parse_args(argv)
    steps = args.steps or (100 if args.quick else 600)
    steps = -(-steps // EVAL_EVERY) * EVAL_EVERY
    lr = args.learning_rate

    cosine = optjx.chain(
        optjx.clip_by_global_norm(1.0),
        optjx.adamw(optjx.schedules.cosine(lr, steps), weight_decay=1e-4),
    )
    free = optjx.chain(
        optjx.clip_by_global_norm(1.0),
        optjx.adamw_schedule_free(lr, warmup_steps=WARMUP, weight_decay=1e-4),
    )
    curves = train(cosine, steps, args.seed, lambda s: {"adamw + cosine": s.params})
    curves.update(
        train(
            free,
            steps,
            args.seed,
            lambda s: {
                "schedule-free, at x": optjx.schedule_free_eval_params(s.opt_state, s.params),
                "schedule-free, at y": s.params,
            },
        )
    )
    deviation = warmup_deviation()

    rows = [[name, f"{c[-1][1]:.4f}", f"{c[-1][2]:.4f}"] for name, c in curves.items()]
    print(table(rows, ["weights", "test loss", "test acc"]))
    print()
    rows = [[name, f"{d[0]:.1e}", f"{d[-1]:.1e}"] for name, d in deviation.items()]
    print(table(rows, ["10-step warm-up", "max |w - ref| step 1", "step 40"]))

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for (name, curve), color in zip(curves.items(), ("C0", "C3", "C1"), strict=True):
        s, loss, acc = zip(*curve, strict=True)
        style = "--" if name.endswith("at y") else "-"
        axes[0].plot(s, loss, style, color=color, label=name)
        axes[1].plot(s, acc, style, color=color, label=name)
    axes[0].set(yscale="log", xlabel="step", ylabel="test cross-entropy", title="test loss")
    axes[1].set(xlabel="step", ylabel="test accuracy", title="test accuracy", ylim=(0.8, 1.0))
    for (name, d), color in zip(deviation.items(), ("C2", "C4"), strict=True):
        axes[2].plot(np.arange(1, len(d) + 1), d, "o-", ms=3, color=color, label=name)
    axes[2].set(yscale="log", xlabel="step", ylabel="max |w - reference|",
                title="10-step warm-up vs the reference (float64)")  # fmt: skip
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, args.out, "schedule_free.png")
    return curves, deviation


if __name__ == "__main__":
    main()
