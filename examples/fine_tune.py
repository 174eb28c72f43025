"""optjx training loop: parameter groups, a per-epoch step schedule, early stopping, diagnostics.

    python examples/fine_tune.py                  # up to 30 epochs, stops early
    python examples/fine_tune.py --quick --out /tmp

The digits CNN of the quickstart, trained the way a fine-tuning recipe is written in
PyTorch, with every piece an optjx one:

* parameter groups (``torch.optim.AdamW(param_groups)``): no weight decay on biases and
  GroupNorm scales, a tenth of the learning rate for the first convolution;
* a per-epoch step schedule (``MultiStepLR(milestones, gamma=0.1)``, stepped per epoch)
  written in epochs and wrapped in ``optjx.schedules.per_epoch``;
* gradient clipping, and ``optjx.monitor`` around the whole chain, so the optimizer
  state records the raw gradient norm, the update norm and the parameter norm of every
  step (``optjx.diagnostics(opt_state)``); a clipping event is a step whose gradient norm
  exceeded the clip bound;
* early stopping on the validation accuracy that keeps a copy of the best weights
  (``optjx.early_stopping``), and the test set evaluated with those.

Prints which leaf went into which group (``optjx.group_of``), the epoch of the best
validation accuracy and the test accuracy of the restored weights, and writes
``fine_tune.png`` (loss and accuracy, gradient and update norms with the clipping events,
the learning rates of the groups) into ``--out``.
"""

from __future__ import annotations

import time

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
from tqdm import tqdm

import optjx

BATCH_SIZE = 64
LEARNING_RATE = 0.01
WEIGHT_DECAY = 0.05
CLIP = 1.0  # the global-norm bound; steps above it are "clipping events"
VALIDATION = 300  # images held out of the training split for early stopping


def key_path(path) -> str:
    """``(DictKey('params'), DictKey('Conv_0'), ...)`` -> ``"params/Conv_0/..."``, the
    string ``param_groups`` matches its regular expressions against."""
    return "/".join(str(getattr(k, "key", k)) for k in path)


def main(argv=None):
    p = parser("Fine-tune the digits CNN with parameter groups, early stopping and diagnostics.")
    p.add_argument("--epochs", type=int, default=None, help="most epochs (default 30, quick 12)")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help=f"peak rate (default {LEARNING_RATE:g})",
    )
    args = p.parse_args(argv)
    lr = args.learning_rate
    max_epochs = args.epochs or (12 if args.quick else 30)
    # MultiStepLR(milestones, gamma=0.1) in epochs; early stopping's patience in epochs.
    milestones = {4: 0.1, 8: 0.1} if args.quick else {6: 0.1, 12: 0.1}
    patience = 3 if args.quick else 5

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x_train))
    val, train = order[:VALIDATION], order[VALIDATION:]
    x_val, y_val = x_train[val], y_train[val]
    x_train, y_train = x_train[train], y_train[train]
    steps_per_epoch = len(x_train) // BATCH_SIZE

    _, CNN = models()
    model = CNN()
    params = model.init(jax.random.key(args.seed), x_train[:1])

    # ------------------------------------------------------------------ the optimizer
    def step_lr(peak):
        """MultiStepLR stepped once per epoch: the milestones are epochs, not updates."""
        return optjx.schedules.per_epoch(
            optjx.schedules.piecewise_constant(peak, milestones), steps_per_epoch
        )

    stem_lr = step_lr(lr / 10)
    grouped = optjx.param_groups(
        optjx.adamw,
        [
            # A leaf goes to the first group that matches: the stem's bias before "bias".
            ("^params/Conv_0/bias", {"learning_rate": stem_lr, "weight_decay": 0.0}),
            ("^params/Conv_0/", {"learning_rate": stem_lr}),
            ("bias|scale", {"weight_decay": 0.0}),  # biases and GroupNorm scales
        ],
        learning_rate=step_lr(lr),
        weight_decay=WEIGHT_DECAY,
    )
    # monitor outermost: it sees the raw gradients, before clipping.
    tx = optjx.monitor(optjx.chain(optjx.clip_by_global_norm(CLIP), grouped))
    opt_state = tx.init(params)

    groups = optjx.group_of(grouped, params)
    members: dict[str, list[str]] = {}
    for path, name in jax.tree_util.tree_flatten_with_path(groups)[0]:
        members.setdefault(name, []).append(key_path(path).removeprefix("params/"))

    stopper = optjx.early_stopping(patience=patience, mode="max")
    stop_state = stopper.init(params)

    # ------------------------------------------------------------------ compiled pieces
    x_train_d, y_train_d = jnp.asarray(x_train), jnp.asarray(y_train)

    def train_step(carry, idx):
        params, opt_state = carry
        x, y = x_train_d[idx], y_train_d[idx]

        def loss_fn(params):
            logits = model.apply(params, x)
            return cross_entropy(logits, y), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        stats = optjx.diagnostics(opt_state)  # this step's norms, read from the state
        return (params, opt_state), (loss, accuracy(logits, y), stats)

    @jax.jit
    def train_epoch(params, opt_state, idx):
        (params, opt_state), history = jax.lax.scan(train_step, (params, opt_state), idx)
        return params, opt_state, history

    @jax.jit
    def evaluate(params, x, y):
        logits = model.apply(params, x)
        return cross_entropy(logits, y), accuracy(logits, y)

    @jax.jit
    def end_of_epoch(stop_state, params):
        val_loss, val_acc = evaluate(params, x_val, y_val)
        return stopper.update(stop_state, val_acc, params), val_loss, val_acc

    # ------------------------------------------------------------------ training
    batches = batch_indices(len(x_train), BATCH_SIZE, max_epochs * steps_per_epoch, args.seed)
    batches = batches.reshape(max_epochs, steps_per_epoch, BATCH_SIZE)
    history: dict[str, list] = {"loss": [], "acc": [], "val_acc": [], "val_loss": []}
    start = time.perf_counter()
    bar = tqdm(total=max_epochs, desc="fine_tune", unit="epoch", ncols=90)
    for epoch in range(max_epochs):
        params, opt_state, (loss, acc, stats) = train_epoch(params, opt_state, batches[epoch])
        stop_state, val_loss, val_acc = end_of_epoch(stop_state, params)
        history["loss"].extend(np.asarray(loss))
        history["acc"].extend(np.asarray(acc))
        for name, values in stats.items():
            history.setdefault(name, []).extend(np.asarray(values))
        history["val_acc"].append(float(val_acc))
        history["val_loss"].append(float(val_loss))
        bar.set_postfix(loss=f"{np.mean(loss):.3f}", val=f"{float(val_acc):.3f}")
        bar.update(1)
        if bool(stop_state.should_stop):
            break
    bar.close()
    seconds = time.perf_counter() - start
    epochs_run = len(history["val_acc"])
    history = {name: np.asarray(values) for name, values in history.items()}

    # ------------------------------------------------------------------ summary
    best_epoch = int(stop_state.best_step)  # 1-based: evaluations happen once per epoch
    best = stop_state.best_params
    test_last = float(evaluate(params, x_test, y_test)[1])
    test_best = float(evaluate(best, x_test, y_test)[1])
    grad_norm = history["grad_norm"]
    clipped = grad_norm > CLIP

    overrides = {
        "group_0": "lr / 10, no decay",
        "group_1": "lr / 10",
        "group_2": "no decay",
        "default": f"lr, decay {WEIGHT_DECAY:g}",
    }
    print()
    print(f"optimizer  monitor(chain(clip_by_global_norm({CLIP:g}), param_groups(adamw, ...)))")
    print(
        f"schedule   per_epoch(piecewise_constant(lr={lr:g}, "
        f"{milestones}), {steps_per_epoch})  (MultiStepLR per epoch)"
    )
    print(
        f"data       digits, {len(x_train)} train / {len(x_val)} validation / {len(x_test)} test, "
        f"batch {BATCH_SIZE}"
    )
    print()
    rows = [[name, overrides[name], ", ".join(members.get(name, []))] for name in overrides]
    print(table(rows, ["group", "rule", "leaves (optjx.group_of)"]))
    print()
    stopped = (
        f"stopped after epoch {epochs_run} (patience {patience})"
        if bool(stop_state.should_stop)
        else f"ran all {epochs_run} epochs"
    )
    print(
        f"best validation accuracy {float(stop_state.best_value):.4f} at epoch {best_epoch}; "
        f"{stopped}"
    )
    print(
        table(
            [
                [f"best (epoch {best_epoch}, restored)", f"{test_best:.4f}"],
                [f"last (epoch {epochs_run})", f"{test_last:.4f}"],
            ],
            ["weights", "test acc"],
        )
    )
    print(
        f"clipping events: {int(clipped.sum())} of {len(grad_norm)} steps had a gradient norm "
        f"above {CLIP:g} (largest {grad_norm.max():.2f}); all gradients finite: "
        f"{bool(history['grad_finite'].all())}"
    )
    print(f"time       {seconds:.1f} s ({epochs_run} epochs, compilation included)")

    lr_default = np.asarray(step_lr(lr)(jnp.arange(len(grad_norm))))
    lr_stem = np.asarray(stem_lr(jnp.arange(len(grad_norm))))
    plot(args.out, history, steps_per_epoch, best_epoch, lr_default, lr_stem)
    return {"best_epoch": best_epoch, "test_best": test_best, "epochs": epochs_run}


def plot(out, history, steps_per_epoch, best_epoch, lr_default, lr_stem):
    plt = pyplot()
    fig, (ax_acc, ax_norm, ax_lr) = plt.subplots(1, 3, figsize=(16, 4.5))
    # x in epochs: step s (1-based) ends at s / steps_per_epoch; evaluations at integers.
    epochs = np.arange(1, len(history["loss"]) + 1) / steps_per_epoch
    evaluated = np.arange(1, len(history["val_acc"]) + 1)

    window = steps_per_epoch
    smooth = lambda v: np.convolve(v, np.ones(window) / window, mode="valid")  # noqa: E731
    ax_acc.plot(epochs[window - 1 :], smooth(history["acc"]), color="C0", label="training batches")
    ax_acc.plot(evaluated, history["val_acc"], "o-", ms=3, color="C3", label="validation")
    ax_acc.axvline(best_epoch, color="C2", ls="--", label=f"best: epoch {best_epoch} (restored)")
    ax_acc.set(
        xlabel="epoch",
        ylabel="accuracy",
        title="accuracy (early stopping on validation)",
        ylim=(max(0.0, min(history["val_acc"]) - 0.05), 1.005),
    )
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right", fontsize=8)

    grad_norm = history["grad_norm"]
    clipped = grad_norm > CLIP
    ax_norm.plot(epochs, grad_norm, color="C0", lw=0.8, label="gradient norm (raw)")
    ax_norm.plot(epochs, history["update_norm"], color="C1", lw=0.8, label="update norm")
    ax_norm.axhline(CLIP, color="k", ls=":", lw=1, label=f"clip bound {CLIP:g}")
    ax_norm.plot(
        epochs[clipped],
        grad_norm[clipped],
        "x",
        color="C3",
        ms=4,
        label=f"clipping events ({int(clipped.sum())})",
    )
    ax_norm.set(
        yscale="log", xlabel="epoch", ylabel="global L2 norm", title="optjx.diagnostics, every step"
    )
    ax_norm.grid(alpha=0.3)
    ax_norm.legend(loc="lower left", fontsize=8)

    ax_lr.step(epochs, lr_default, where="pre", color="C0", label="default and group_2")
    ax_lr.step(epochs, lr_stem, where="pre", color="C4", label="first convolution (lr / 10)")
    ax_lr.set(
        yscale="log",
        xlabel="epoch",
        ylabel="learning rate",
        title="per_epoch(piecewise_constant(...))",
    )
    ax_lr.grid(alpha=0.3)
    ax_lr.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    save(fig, out, "fine_tune.png")


if __name__ == "__main__":
    main()
