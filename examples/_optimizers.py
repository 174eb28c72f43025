"""The optimizer table the digits examples share (``quickstart.py``, ``compare_optimizers.py``,
``lr_sweep.py``): every optjx alias with its default hyperparameters, written out once
here where a user reads them. ``tests/integration/test_examples.py`` checks it against the
cards' example defaults (``tests/cards``).
"""

from __future__ import annotations

import optjx

# Every optjx alias with default hyperparameters for a small network on digits: its peak
# learning rate, read off lr_sweep.py's curves a factor 3 to 10 below the rate with the
# lowest final loss (which sits next to the divergence edge), and the optimizer built at a
# rate. The rate is decayed with a cosine schedule over the run, except AdaDelta's (it
# only rescales a unit-free step) and delta-bar-delta's (only the starting point of the
# per-weight rates it adapts itself).
OPTIMIZERS = {
    "sgd": (0.1, lambda lr: optjx.sgd(lr, momentum=0.9, nesterov=True)),
    "rmsprop": (0.01, lambda lr: optjx.rmsprop(lr)),
    "adagrad": (0.1, lambda lr: optjx.adagrad(lr)),
    "adam": (0.01, lambda lr: optjx.adam(lr)),
    "adamw": (0.01, lambda lr: optjx.adamw(lr, weight_decay=0.01)),
    "adadelta": (1.0, lambda lr: optjx.adadelta(lr)),
    "radam": (0.03, lambda lr: optjx.radam(lr)),
    "novograd": (0.03, lambda lr: optjx.novograd(lr, weight_decay=1e-4)),
    "delta_bar_delta": (
        0.1,
        lambda lr: optjx.delta_bar_delta(lr, kappa=0.01, phi=0.1, gamma=0.7),
    ),
}
CONSTANT_RATE = {"adadelta", "delta_bar_delta"}


def make_optimizer(name: str, steps: int, learning_rate=None):
    """``(tx, description)``: gradients clipped at global norm 1 (it keeps the first steps
    of the adaptive methods from blowing up a fresh net), then ``name``: an alias above,
    ``lookahead`` (Lookahead around RAdam) or ``lookahead-<alias>``."""
    base = "radam" if name == "lookahead" else name.removeprefix("lookahead-")
    peak, make = OPTIMIZERS[base]
    lr = peak if learning_rate is None else learning_rate
    # The rate may be a tracer (lr_sweep.py vmaps over it): only print concrete ones.
    shown = f"{lr:g}" if isinstance(lr, (int, float)) else "lr"
    if base in CONSTANT_RATE:
        tx, text = make(lr), f"{base}({shown})"
    else:
        tx, text = make(optjx.schedules.cosine(lr, steps)), f"{base}(cosine({shown}, {steps}))"
    if name.startswith("lookahead"):
        tx, text = optjx.lookahead(tx), f"lookahead({text})"
    return optjx.chain(optjx.clip_by_global_norm(1.0), tx), f"chain(clip(1.0), {text})"


def optimizer_names() -> list[str]:
    """Every alias, then ``lookahead`` (Lookahead around RAdam)."""
    return [*OPTIMIZERS, "lookahead"]
