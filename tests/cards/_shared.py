"""Pieces the cards share: flags, inner optimizers, schedules, invalid values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
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
NADAM = {"b1": DECAY, "b2": [*DECAY, 1.5], "eps": [*NONNEG, -1e-8],
         "momentum_decay": [*NONNEG, -0.004]}  # fmt: skip
ADAMAX = {"b1": DECAY, "b2": [*DECAY, -0.5], "eps": [*NONNEG, -1e-8]}
RPROP = {"etas": [(0.0, 1.2), (0.5, 1.0), (1.0, 1.2), (NAN, 1.2), (0.5, NAN)],
         "step_sizes": [(-1e-6, 50.0), (1.0, 0.5), (NAN, 50.0), (1e-6, NAN)]}  # fmt: skip
ADAFACTOR = {"beta2_decay": [0.1, NAN], "eps": [(-1e-30, 1e-3), (None, -1e-3), (NAN, 1e-3),
                                                (None, NAN)],
             "d": [0.5, NAN]}  # fmt: skip
NEWTON_SCHULZ = {"ns_coefficients": [(NAN, -4.775, 2.0315), (3.4445, -4.775, NAN)],
                 "ns_steps": [-1, 100, 2.5], "eps": [*NONNEG, -1e-7]}  # fmt: skip

# ------------------------------------------------------------------ benchmarks
BENCH_LR = 1e-3  # the same hyperparameters on both sides of every benchmark case
STEPS_FLAX = 200  # full-batch steps of tests/integration/test_flax_training.py


# ----------------------------------------------------------------------- Muon
def _matrix_shape(shape: tuple) -> tuple:
    if len(shape) == 2:
        return shape
    if len(shape) < 2:
        return (1, int(np.prod(shape)))
    return (int(np.prod(shape[:-1])), shape[-1])


def _to_matrix(x):
    shape = _matrix_shape(np.shape(x))
    if isinstance(x, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(shape, x.dtype)
    if isinstance(x, np.ndarray):  # float0 gradients among them
        return np.reshape(x, shape)
    return jnp.reshape(x, shape)


def as_matrices(inner):
    """Muon's cards run on every leaf the invariants use: each leaf reshaped to a matrix
    (a vector or a scalar as one row, more dimensions as rows of the last one, as the
    recipe in ``optjx.muon`` reshapes a conv kernel) around ``inner``, and back."""

    def to_matrices(tree):
        return jax.tree.map(_to_matrix, tree)

    def init(params):
        return inner.init(to_matrices(params))

    def update(grads, state, params=None):
        shaped = None if params is None else to_matrices(params)
        updates, state = inner.update(to_matrices(grads), state, shaped)
        return jax.tree.map(lambda u, g: jnp.reshape(u, jnp.shape(g)), updates, grads), state

    return optax.GradientTransformation(init, update)


def matrices_of(factory):
    """A card factory: ``factory(**kwargs)`` inside ``as_matrices`` (``wrap``: the wrapper
    alone, for the invariant that builds ``optjx.<name>`` itself)."""

    def build(**kwargs):
        return as_matrices(factory(**kwargs))

    build.wrap = as_matrices  # type: ignore[attr-defined]
    return build


MUON = matrices_of(optjx.muon)
