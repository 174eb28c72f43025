"""The optimizers compared: each an optjx and an optax ``(init, step)`` pair on plain params.

Same hyperparameters on both sides. ``arrays`` is the number of parameter-sized float32
arrays the algorithm must read plus write in one step, counted from its formula with
the parameter update ``w <- w + u`` included (``g`` and ``w`` read, ``w`` written, plus
every moment read and written): it turns a step time into an achieved bandwidth.

Where optax has no equivalent or a different API:

* ``lookahead``: optax's needs ``optax.LookaheadParams`` (fast and slow weights both in
  the params, both donated, both in and out of every step); optjx keeps the slow weights in
  its state and takes plain params. Both hold one slow copy, so the memory is the same.
* ``polyak``: optax has no transform that averages the iterates, so the baseline is
  ``optax.adam`` with the average kept by hand next to its state, updated after the step
  with ``optax.tree.update_moment`` (the EMA ``a <- d a + (1 - d) w``). optjx runs
  ``polyak_averaging(adam, decay=d)``, the same EMA, as one transformation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

import optjx

LR = 1e-3
SYNC_PERIOD = 6
SLOW_STEP_SIZE = 0.5
POLYAK_DECAY = 0.999


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    arrays: int  # parameter-sized arrays read + written per step (see module docstring)
    optjx_make: Callable[[], tuple]  # () -> (init, step)
    optax_make: Callable[[], tuple]
    available: Callable[[], bool] = lambda: True
    note: str = ""


def plain(make_tx):
    """``(init, step)`` for a GradientTransformation on plain params."""

    def make():
        tx = make_tx()

        def init(params):
            return params, tx.init(params)

        def step(params, state, grads):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        return init, step

    return make


def optax_lookahead():
    tx = optax.lookahead(optax.adam(LR), sync_period=SYNC_PERIOD, slow_step_size=SLOW_STEP_SIZE)

    def init(params):
        # Not init_synced: fast and slow must be separate buffers to be donated.
        both = optax.LookaheadParams(fast=params, slow=jax.tree.map(jnp.copy, params))
        return both, tx.init(both)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return init, step


def optax_polyak():
    tx = optax.adam(LR)

    def init(params):
        return params, (tx.init(params), jax.tree.map(jnp.copy, params))

    def step(params, state, grads):
        inner, average = state
        updates, inner = tx.update(grads, inner, params)
        params = optax.apply_updates(params, updates)
        return params, (inner, optax.tree.update_moment(params, average, POLYAK_DECAY, 1))

    return init, step


def _has(name):
    return lambda: hasattr(optjx, name)


CASES = [
    Case(
        "sgd_momentum",
        "sgd+momentum",
        5,
        plain(lambda: optjx.sgd(LR, momentum=0.9)),
        plain(lambda: optax.sgd(LR, momentum=0.9)),
    ),
    Case(
        "rmsprop",
        "rmsprop",
        5,
        plain(lambda: optjx.rmsprop(LR, decay=0.9, eps=1e-8)),
        plain(lambda: optax.rmsprop(LR, decay=0.9, eps=1e-8)),
    ),
    Case("adam", "adam", 7, plain(lambda: optjx.adam(LR)), plain(lambda: optax.adam(LR))),
    Case(
        "adamw",
        "adamw",
        7,
        plain(lambda: optjx.adamw(LR, weight_decay=1e-4)),
        plain(lambda: optax.adamw(LR, weight_decay=1e-4)),
    ),
    Case(
        "radam",
        "radam",
        7,
        plain(lambda: optjx.radam(LR)),
        plain(lambda: optax.radam(LR)),
        _has("radam"),
    ),
    Case(
        "novograd",
        "novograd",
        # g is read twice: the layer norm must be complete before any weight moves.
        6,
        plain(lambda: optjx.novograd(LR, b1=0.95, b2=0.98, eps=1e-8)),
        plain(lambda: optax.novograd(LR, b1=0.95, b2=0.98, eps=1e-8)),
        _has("novograd"),
        "optax's update is a lax.cond over the whole tree (first step or not)",
    ),
    Case(
        "lookahead",
        "lookahead(adam)",
        # adam's 7 plus the slow copy read and written (a branch-free step touches it
        # every step; only every sync_period-th step changes it).
        9,
        plain(
            lambda: optjx.lookahead(
                optjx.adam(LR), sync_period=SYNC_PERIOD, slow_step_size=SLOW_STEP_SIZE
            )
        ),
        optax_lookahead,
        _has("lookahead"),
        "optax needs LookaheadParams (slow weights in the params)",
    ),
    Case(
        "polyak",
        "polyak(adam)",
        9,  # adam's 7 plus the average read and written
        plain(lambda: optjx.polyak_averaging(optjx.adam(LR), decay=POLYAK_DECAY)),
        optax_polyak,
        _has("polyak_averaging"),
        "optax: adam + a hand-kept EMA of the params (optax.tree.update_moment)",
    ),
]

# Schedule-free AdamW: g, w, z and v read, w, z and v written. Both with the warm-up
# (the base rate and the averaging weights both read the count) and weight decay.
CASES.append(
    Case(
        "adamw_schedule_free",
        "adamw_schedule_free",
        7,
        plain(lambda: optjx.adamw_schedule_free(LR, warmup_steps=100, weight_decay=1e-4)),
        plain(
            lambda: optax.contrib.schedule_free_adamw(LR, warmup_steps=100, weight_decay=1e-4)
        ),
        _has("adamw_schedule_free"),
        "optax.contrib.schedule_free_adamw; its warm-up is off by one step (see the docs)",
    )
)

ALIASES = {"sgd": "sgd_momentum", "momentum": "sgd_momentum", "polyak_averaging": "polyak"}


def select(only: str | None) -> list[Case]:
    """The cases named in ``only`` (comma separated), in registry order; all if ``None``."""
    if not only:
        return list(CASES)
    names = {ALIASES.get(n.strip(), n.strip()) for n in only.split(",") if n.strip()}
    known = {c.name for c in CASES}
    unknown = sorted(names - known)
    if unknown:
        raise SystemExit(f"--only: unknown name(s) {unknown}; choose from {sorted(known)}")
    return [c for c in CASES if c.name in names]
