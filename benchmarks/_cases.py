"""The optimizers compared: each an optjx and an optax ``(init, step)`` pair on plain params.

The cases come from the cards (``tests/cards``, one per public optjx name: its
``benchmark`` field), the one place every list of optimizers is derived from.

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

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optax

import optjx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the cards
import cards  # noqa: E402


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


def _pair(make):
    """``make`` returns a transformation (run on plain params) or an ``(init, step)`` pair
    already (optax's lookahead needs ``LookaheadParams``; its Polyak baseline is by hand)."""

    def made():
        built = make()
        return plain(lambda: built)() if isinstance(built, optax.GradientTransformation) else built

    return made


def _has(name):
    return lambda: hasattr(optjx, name)


CASES = [
    Case(b.name, b.label, b.arrays, _pair(b.optjx), _pair(b.optax), _has(card.name), b.note)
    for card in cards.CARDS
    for b in card.benchmark
]

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
