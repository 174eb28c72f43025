"""Pieces the cards share: flags, inner optimizers, schedules, invalid values."""

from __future__ import annotations

import jax
import optax

import optjx
from optjx import schedules

NAN = float("nan")

# ------------------------------------------------------------------- entry flags
DIRECTION = {"descent": False}  # a building block: gives a descent direction, not a step
EPS0 = {"scale_invariant": {"eps": 0.0}}
NO_LEAF_STATE = {"leaf_state": False}
PARAMS = {"needs_params": True}
LINEAR = {"linear": True}
COPIES = {"needs_params": True, "copies_params": True}

ramp = schedules.linear  # a schedule for hyperparameters of every kind
cosine = schedules.cosine


def not_biases(params):
    """A mask that works on any tree: decay every leaf but those under the key ``"b"``."""
    return jax.tree_util.tree_map_with_path(
        lambda path, p: not path or getattr(path[-1], "key", None) != "b", params
    )


def adam():
    return optjx.adam(1e-2)


def sgd():
    return optjx.sgd(0.1)


def momentum(mu):
    return lambda: optjx.sgd(0.1, momentum=mu)


# ------------------------------------------------------------ tuned for convergence
QUADRATIC_STEPS = 1_000  # every optimizer gets this many steps on the quadratic,
ROSENBROCK_STEPS = 10_000  # and this many on the Rosenbrock function


def lr(block, rate):
    """A building block made an optimizer: ``chain(block(), scale_by_learning_rate(rate))``."""
    return lambda: optax.chain(block(), optjx.scale_by_learning_rate(rate))


def q(rate, steps=QUADRATIC_STEPS):
    """A learning rate decayed to 0 over the quadratic run (cosine)."""
    return schedules.cosine(rate, steps)


def r(rate, steps=ROSENBROCK_STEPS):
    """A learning rate decayed to 0 over the Rosenbrock run (cosine)."""
    return schedules.cosine(rate, steps)


def optax_decay():
    """An optax schedule, for the optax twins (``Card.twins``): both libraries take it."""
    return optax.linear_schedule(0.1, 0.01, 4)


# -------------------------------------------------------------------- bad input
# Every float hyperparameter is also checked with NaN. ``scale`` takes any real number.
LR = {"learning_rate": [-0.1, NAN]}
DECAY = [-0.1, 1.0, NAN]
NONNEG = [-1e-3, NAN]
ADAM = {"b1": DECAY, "b2": DECAY, "eps": NONNEG, "eps_root": NONNEG}
DBD = {"initial_learning_rate": [*NONNEG, -0.1], "kappa": NONNEG, "phi": [-0.1, 1.5, NAN],
       "gamma": [*DECAY, -0.5]}  # fmt: skip
NOVOGRAD = {"b1": [*DECAY, -0.5], "b2": [*DECAY, 1.5], "eps": [*NONNEG, -1.0],
            "weight_decay": NONNEG}  # fmt: skip

# ------------------------------------------------------------------ benchmarks
BENCH_LR = 1e-3  # the same hyperparameters on both sides of every benchmark case
STEPS_FLAX = 200  # full-batch steps of tests/integration/test_flax_training.py
