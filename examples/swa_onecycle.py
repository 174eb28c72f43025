"""A PyTorch OneCycle + SWA + BatchNorm recipe, ported: the schedules, the average and
``update_bn``, each an optjx piece.

    python examples/swa_onecycle.py               # 24 epochs (16 OneCycle + 8 SWA)
    python examples/swa_onecycle.py --quick --out /tmp

The recipe, as it is written in PyTorch (``benchmarks/swa_onecycle_torch.py`` runs it):

* SGD with ``OneCycleLR(max_lr, total_steps)`` stepped per update, momentum cycled
  between 0.85 and 0.95 (``optjx.schedules.one_cycle_lr`` / ``one_cycle_momentum``);
* from epoch ``swa_start`` on, ``SWALR(swa_lr, anneal_epochs)`` stepped per epoch
  (``optjx.schedules.swa_lr`` in ``per_epoch``, joined after the OneCycle steps) and
  ``AveragedModel.update_parameters`` after every update: the uniform average of the
  iterates of the SWA phase (``optjx.polyak_averaging`` with a decay that is 0 before
  the phase and ``(k - s) / (k - s + 1)`` in it);
* ``swa_utils.update_bn(loader, swa_model)`` before evaluating the average
  (``optjx.recompute_batch_stats``).

A CNN with BatchNorm on scikit-learn's digits. Prints train and test accuracy for the
last iterate, the averaged weights with the running statistics of training, and the
averaged weights with recomputed statistics, and writes ``swa_onecycle.png`` (test
accuracy per epoch of the three, all epochs and the SWA phase; the learning rate and momentum per update) into
``--out``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import accuracy, batch_indices, cross_entropy, load_digits, parser, pyplot, save, table

import optjx

BATCH_SIZE = 64
MAX_LR = 0.2  # OneCycleLR's peak
SWA_LR = 0.05  # SWALR's constant rate
ANNEAL_EPOCHS = 2  # SWALR's annealing, in epochs
STATS_BATCH = 256  # the batches of the BatchNorm pass (update_bn's loader)


def make_model():
    """Two 3x3 convolutions with BatchNorm (torch's momentum 0.1 is Flax's 0.9), mean
    pooling, a dense layer; the BatchNorms follow a ``train`` flag."""
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            for features in (16, 32):
                x = nn.Conv(features, (3, 3), padding=1)(x)
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
                x = nn.relu(x)
            return nn.Dense(10)(x.mean(axis=(1, 2)))

    return Net()


def recipe(steps_per_epoch: int, swa_start: int):
    """The learning rate, the momentum and the averaging decay, per update."""
    S = optjx.schedules
    one_cycle_steps = swa_start * steps_per_epoch  # OneCycleLR's total_steps
    one_cycle = S.one_cycle_lr(MAX_LR, total_steps=one_cycle_steps)
    # SWALR starts from the rate OneCycle left (its last, lowest one), stepped per epoch.
    swa = S.per_epoch(
        S.swa_lr(float(one_cycle(one_cycle_steps - 1)), SWA_LR, ANNEAL_EPOCHS), steps_per_epoch
    )
    learning_rate = S.join([one_cycle, swa], [one_cycle_steps])
    momentum = S.one_cycle_momentum(MAX_LR, total_steps=one_cycle_steps)  # holds 0.95 after

    def decay(count):
        # Before the SWA phase the "average" is the iterate; in it, the uniform average
        # of the iterates of the phase, as AveragedModel updated after every step.
        since = jnp.maximum(count - one_cycle_steps, 0).astype(jnp.float32)
        return jnp.where(count < one_cycle_steps, 0.0, since / (since + 1.0))

    return learning_rate, momentum, decay


def initial_variables(model, seed: int):
    return model.init(jax.random.key(seed), jnp.zeros((1, 8, 8, 1)))


def main(argv=None):
    p = parser("OneCycle + SWA + BatchNorm recompute on the digits CNN.")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 24, quick 8)")
    args = p.parse_args(argv)
    epochs = args.epochs or (8 if args.quick else 24)
    swa_start = epochs * 2 // 3

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    steps_per_epoch = len(x_train) // BATCH_SIZE
    rows = batch_indices(len(x_train), BATCH_SIZE, epochs * steps_per_epoch, args.seed)
    learning_rate, momentum, decay = recipe(steps_per_epoch, swa_start)
    tx = optjx.polyak_averaging(optjx.sgd(learning_rate, momentum=momentum), decay=decay)

    model = make_model()
    variables = initial_variables(model, args.seed)
    x_train_j, y_train_j = jnp.asarray(x_train), jnp.asarray(y_train)

    def loss(params, stats, batch):
        logits, mutated = model.apply(
            {"params": params, "batch_stats": stats},
            x_train_j[batch],
            train=True,
            mutable=["batch_stats"],
        )
        return cross_entropy(logits, y_train_j[batch]), mutated["batch_stats"]

    def step(carry, batch):
        params, stats, opt_state = carry
        grads, stats = jax.grad(loss, has_aux=True)(params, stats, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), None

    # One compiled step called in a Python loop, not a lax.scan over the epoch: XLA:CPU
    # leaves the convolutions of the gradient inside a loop body in a layout its fast
    # convolution does not take, and runs them about 20 times slower there.
    compiled_step = jax.jit(step)

    def run_epoch(carry, batches):
        for batch in batches:
            carry, _ = compiled_step(carry, batch)
        return carry

    predict = jax.jit(model.apply)

    def evaluate(variables):
        return [
            float(accuracy(predict(variables, x), y))
            for x, y in ((x_train, y_train), (x_test, y_test))
        ]

    def recomputed(params, stats):
        batches = (x_train[i : i + STATS_BATCH] for i in range(0, len(x_train), STATS_BATCH))
        return optjx.recompute_batch_stats(
            model.apply, {"params": params, "batch_stats": stats}, batches
        )

    carry = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))
    history = {
        "last iterate": [],
        "averaged, training statistics": [],
        "averaged, recomputed statistics": [],
    }
    for epoch in range(epochs):
        carry = run_epoch(carry, rows[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch])
        params, stats, opt_state = carry
        averaged = optjx.averaged_params(opt_state)
        history["last iterate"].append(evaluate({"params": params, "batch_stats": stats}))
        history["averaged, training statistics"].append(
            evaluate({"params": averaged, "batch_stats": stats})
        )
        # Before the SWA phase the average is the last iterate: nothing to recompute.
        in_swa = epoch >= swa_start
        history["averaged, recomputed statistics"].append(
            evaluate(recomputed(averaged, stats)) if in_swa else [np.nan, np.nan]
        )

    print(f"{epochs} epochs of {steps_per_epoch} updates; SWA from epoch {swa_start}")
    print("test accuracy per epoch (last iterate / averaged, training statistics / recomputed):")
    for epoch, tests in enumerate(
        zip(*([test for _, test in h] for h in history.values()), strict=True)
    ):
        print(f"  epoch {epoch + 1:2d}: " + " / ".join(f"{t:.4f}" for t in tests))
    print(
        table(
            [[name, f"{h[-1][0]:.4f}", f"{h[-1][1]:.4f}"] for name, h in history.items()],
            ["weights", "train", "test"],
        )
    )
    draw(history, learning_rate, momentum, epochs, steps_per_epoch, swa_start, args.out)


def draw(history, learning_rate, momentum, epochs, steps_per_epoch, swa_start, out):
    plt = pyplot()
    fig, (ax_acc, ax_swa, ax_lr) = plt.subplots(1, 3, figsize=(16, 4.5))
    epoch_axis = np.arange(1, epochs + 1)
    for ax, first in ((ax_acc, 0), (ax_swa, swa_start - 1)):
        for (name, h), style in zip(history.items(), ("-", ":", "--"), strict=True):
            tests = [test for _, test in h]
            ax.plot(epoch_axis[first:], tests[first:], style, marker="o", markersize=3, label=name)
        ax.axvline(swa_start + 0.5, color="grey", lw=0.8)
        ax.set(xlabel="epoch", ylabel="test accuracy")
    ax_acc.set(title="OneCycle, then SWA", ylim=(0, 1.02))
    ax_swa.set(title="the SWA phase")
    ax_swa.legend(loc="best")
    counts = np.arange(epochs * steps_per_epoch)
    ax_lr.plot(counts, [float(learning_rate(k)) for k in counts], label="learning rate")
    ax_lr.set(xlabel="update", ylabel="learning rate", title="one_cycle_lr, then swa_lr per epoch")
    twin = ax_lr.twinx()
    twin.plot(counts, [float(momentum(k)) for k in counts], color="tab:orange", label="momentum")
    twin.set_ylabel("momentum")
    ax_lr.axvline(swa_start * steps_per_epoch, color="grey", lw=0.8)
    lines = ax_lr.get_lines()[:1] + twin.get_lines()
    ax_lr.legend(lines, [line.get_label() for line in lines], loc="center right")
    fig.tight_layout()
    save(fig, out, "swa_onecycle.png")


if __name__ == "__main__":
    main()
