"""Cards of the wrappers in ``optjx/wrappers``, and the optax baselines of their benchmarks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import optjx
from optjx import schedules

from ._card import Bench, Card, Tuned
from ._card import config as C
from ._shared import (
    BENCH_LR,
    COPIES,
    DECAY,
    DIRECTION,
    LINEAR,
    NO_LEAF_STATE,
    NONNEG,
    PARAMS,
    QUADRATIC_STEPS,
    ROSENBROCK_STEPS,
    STEPS_FLAX,
    adam,
    momentum,
    q,
    r,
    ramp,
    sgd,
)

SYNC_PERIOD = 6
SLOW_STEP_SIZE = 0.5
POLYAK_DECAY = 0.999


def two_blocks(path, leaf):
    """block_coordinate's labels on any tree: the parity of the leading dimension (not the
    key path nor ``ndim``: the invariants compare a tree with its flat list of leaves, and
    complex leaves with their real pairs stacked on a trailing axis)."""
    del path
    return (jnp.shape(leaf)[:1] or (0,))[0] % 2


def optax_lookahead():
    """optax's lookahead needs ``LookaheadParams``: fast and slow weights in the params."""
    tx = optax.lookahead(
        optax.adam(BENCH_LR), sync_period=SYNC_PERIOD, slow_step_size=SLOW_STEP_SIZE
    )

    def init(params):
        # Not init_synced: fast and slow must be separate buffers to be donated.
        both = optax.LookaheadParams(fast=params, slow=jax.tree.map(jnp.copy, params))
        return both, tx.init(both)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return init, step


def optax_polyak():
    """optax has no averaging transform: adam, and the EMA of the params kept by hand."""
    tx = optax.adam(BENCH_LR)

    def init(params):
        return params, (tx.init(params), jax.tree.map(jnp.copy, params))

    def step(params, state, grads):
        inner, average = state
        updates, inner = tx.update(grads, inner, params)
        params = optax.apply_updates(params, updates)
        return params, (inner, optax.tree.update_moment(params, average, POLYAK_DECAY, 1))

    return init, step


# fmt: off
CARDS = [
    Card(
        "lookahead",
        (
            C("adam", dict(sync_period=2, slow_step_size=0.5), inner=adam, **COPIES),
            C("sgd-reset-state-alpha-schedule",
              dict(sync_period=3, slow_step_size=ramp(0.5, 0.8, 10), reset_state=True),
              inner=momentum(0.9), **COPIES, **LINEAR),
            C("plain-sgd-every-step-alpha-1", dict(sync_period=1, slow_step_size=1.0),
              inner=sgd, **COPIES, **LINEAR),
        ),
        Tuned(
            lambda: optjx.lookahead(optjx.adam(q(0.1)), sync_period=5, slow_step_size=0.5),
            lambda: optjx.lookahead(optjx.adam(r(0.02), b2=0.99), sync_period=5,
                                    slow_step_size=0.5),
        ),
        {"sync_period": [0, 1.5, 2.5, True], "slow_step_size": [-0.1, 1.5, float("nan")]},
        sharded={
            "lookahead_reset":
                lambda: optjx.lookahead(optjx.adam(0.05), sync_period=2, reset_state=True),
        },
        flax={
            "lookahead_radam_cosine": (
                lambda: optjx.lookahead(optjx.radam(schedules.cosine(0.1, STEPS_FLAX))),
                lambda state: optjx.slow_params(state),
            ),
        },
        benchmark=(
            # adam's 7 plus the slow copy read and written (a branch-free step touches it
            # every step; only every sync_period-th step changes it).
            Bench("lookahead", "lookahead(adam)", 9,
                  lambda: optjx.lookahead(optjx.adam(BENCH_LR), sync_period=SYNC_PERIOD,
                                          slow_step_size=SLOW_STEP_SIZE),
                  optax_lookahead,
                  "optax needs LookaheadParams (slow weights in the params)"),
        ),
    ),
    Card(
        "polyak_averaging",
        (
            C("uniform-adam", inner=adam, **COPIES),
            C("ema-plain-sgd", dict(decay=0.9), inner=sgd, **COPIES, **LINEAR),
        ),
        Tuned(
            lambda: optjx.polyak_averaging(optjx.adam(q(0.1))),
            lambda: optjx.polyak_averaging(optjx.adam(r(0.01), b2=0.99), decay=0.9),
        ),
        {"decay": [*DECAY, 1.5]},
        sharded={"polyak_adam": lambda: optjx.polyak_averaging(optjx.adam(0.05), decay=0.9)},
        flax={
            "polyak_ema_adam": (
                lambda: optjx.polyak_averaging(optjx.adam(0.01), decay=0.9),
                lambda state: optjx.averaged_params(state),
            ),
            "polyak_uniform_sgd": (
                lambda: optjx.polyak_averaging(optjx.sgd(0.3, momentum=0.9)),
                lambda state: optjx.averaged_params(state),
            ),
        },
        benchmark=(
            Bench("polyak", "polyak(adam)", 9,  # adam's 7 plus the average read and written
                  lambda: optjx.polyak_averaging(optjx.adam(BENCH_LR), decay=POLYAK_DECAY),
                  optax_polyak,
                  "optax: adam + a hand-kept EMA of the params (optax.tree.update_moment)"),
        ),
    ),
    Card(
        "apply_if_finite",
        (
            C("adam", dict(max_consecutive_errors=3), inner=adam),
            C("sgd-momentum-limit-1", dict(max_consecutive_errors=1),
              inner=momentum(0.9), **LINEAR),
        ),
        Tuned(
            lambda: optjx.apply_if_finite(optjx.adam(q(0.1)), max_consecutive_errors=2),
            lambda: optjx.apply_if_finite(optjx.adam(r(0.01), b2=0.99), max_consecutive_errors=2),
        ),
        {"max_consecutive_errors": [0, -1, 1.5, 2.0, True, None]},
        sharded={
            "apply_if_finite_adam":
                lambda: optjx.apply_if_finite(optjx.adam(0.05), max_consecutive_errors=2),
        },
    ),
    Card(
        "reduce_on_plateau",
        (
            C("after-sgd-momentum", dict(factor=0.5, patience=0),
              before=(momentum(0.9),), needs_value=True, **LINEAR),
            C("standalone-cooldown-min-scale",
              dict(factor=0.5, patience=1, cooldown=1, min_scale=0.1),
              needs_value=True, **DIRECTION, **LINEAR, **NO_LEAF_STATE),
        ),
        Tuned(
            lambda: optax.chain(optjx.adam(0.1), optjx.reduce_on_plateau(factor=0.5, patience=20)),
            lambda: optax.chain(
                optjx.adam(0.01, b2=0.99), optjx.reduce_on_plateau(factor=0.5, patience=100)
            ),
        ),
        {"factor": [0.0, 1.5, float("nan")], "patience": [-1, 1.5], "rtol": NONNEG,
         "cooldown": [-1, 0.5], "min_scale": [*NONNEG, -0.1]},
        sharded={
            "reduce_on_plateau_adam": lambda: optjx.chain(
                optjx.adam(0.05), optjx.reduce_on_plateau(factor=0.5, patience=0)
            ),
        },
    ),
    Card(
        "accumulate_gradients",
        (
            C("adam-every-2", dict(every_k=2), inner=adam),
            C("sgd-every-3-f32-sum", dict(every_k=3, accumulator_dtype=jnp.float32),
              inner=momentum(0.9), **LINEAR),
            C("adam-every-k-schedule-skip-not-finite",
              dict(every_k=lambda step: jnp.where(step < 2, 1, 2),
                   should_skip_update_fn=optax.skip_not_finite), inner=adam),
        ),
        Tuned(
            # The inner optimizer steps once per two calls: its schedule spans half the run.
            lambda: optjx.accumulate_gradients(optjx.adam(q(0.1, QUADRATIC_STEPS // 2)), 2),
            lambda: optjx.accumulate_gradients(
                optjx.adam(r(0.01, ROSENBROCK_STEPS // 2), b2=0.99), 2
            ),
        ),
        {"every_k": [0, -2, 2.0, 2.5, True, None]},
        sharded={
            "accumulate_sgd":
                lambda: optjx.accumulate_gradients(optjx.sgd(0.1, momentum=0.5), 2),
        },
    ),
    Card(
        "monitor",
        (
            C("adam", inner=adam, **PARAMS),
            C("clip-then-sgd-momentum",
              inner=lambda: optax.chain(optjx.clip_by_global_norm(1.0), optjx.sgd(0.1, momentum=0.9)),
              **PARAMS),
            C("lookahead-radam", inner=lambda: optjx.lookahead(optjx.radam(1e-2)), **COPIES),
        ),
        Tuned(
            lambda: optjx.monitor(optjx.adam(q(0.1))),
            lambda: optjx.monitor(optjx.adam(r(0.01), b2=0.99)),
        ),
        {},
    ),
    Card(
        "block_coordinate",
        (
            C("adam-cyclic", dict(blocks=two_blocks), inner=adam, **PARAMS),
            C("sgd-momentum-random", dict(blocks=two_blocks, order="random",
                                          key=jax.random.PRNGKey(0)),
              inner=momentum(0.9), **PARAMS, **LINEAR),
        ),
        Tuned(
            # Each block moves every other update: its schedule spans half the run.
            lambda: optjx.block_coordinate(optjx.adam(q(0.1, QUADRATIC_STEPS // 2)), two_blocks),
            lambda: optjx.block_coordinate(
                optjx.adam(r(0.01, ROSENBROCK_STEPS // 2), b2=0.99), two_blocks
            ),
        ),
        {"blocks": [1.5, {"a": "first"}], "order": ["shuffled"], "key": [0.5]},
    ),
]
# fmt: on
