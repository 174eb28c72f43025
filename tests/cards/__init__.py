"""One card per public optjx name: the single place every list of optimizers comes from.

Adding an optimizer is one ``Card`` here (see CONTRIBUTING.md). Derived from the cards:

* ``tests/registry.py``: ``ENTRIES`` (every configuration, run through every invariant),
  ``TUNED`` (the convergence invariant), ``INVALID`` (the bad-input invariant);
* ``SHARDED``: the optimizers of ``tests/parallel/test_every_transform_sharded.py``;
* ``FLAX``: the optimizers of ``tests/integration/test_flax_training.py``;
* ``BENCHMARKS``: the cases of ``benchmarks/run.py`` (``benchmarks/_cases.py``);
* ``TWINS``: optjx optimizers and optax's of the same algorithm, for ``tests/compat``;
* ``EXAMPLES``: the aliases ``examples/compare_optimizers.py`` must show, with the defaults
  it writes out (the examples never import this: a user reads the optimizer there).
"""

from __future__ import annotations

from . import aliases, blocks, full_batch, schedule_free, wrappers
from ._card import Bench, Card, Config, Entry, Example, Tuned, config
from ._shared import NAN, QUADRATIC_STEPS, ROSENBROCK_STEPS, STEPS_FLAX

__all__ = ["Bench", "Card", "Config", "Entry", "Example", "Tuned", "config", "NAN",
           "QUADRATIC_STEPS", "ROSENBROCK_STEPS", "STEPS_FLAX", "CARDS", "BY_NAME", "SHARDED", "FLAX",
           "BENCHMARKS", "EXAMPLES", "TWINS", "ALIASES", "BLOCKS", "WRAPPERS"]  # fmt: skip

CARDS: list[Card] = [
    *aliases.CARDS,
    *blocks.CARDS,
    *wrappers.CARDS,
    *schedule_free.CARDS,
    *full_batch.CARDS,
]
BY_NAME: dict[str, Card] = {c.name: c for c in CARDS}
assert len(BY_NAME) == len(CARDS), "one card per public name"


def _unique(pairs):
    out = {}
    for key, value in pairs:
        assert key not in out, f"two cards use the id {key!r}"
        out[key] = value
    return out


SHARDED = _unique((k, v) for c in CARDS for k, v in c.sharded.items())
FLAX = _unique((k, v) for c in CARDS for k, v in c.flax.items())
BENCHMARKS: list[Bench] = [b for c in CARDS for b in c.benchmark]
EXAMPLES = {c.name: c.example for c in CARDS if c.example is not None}
TWINS = _unique((k, v) for c in CARDS for k, v in c.twins.items())
# The cards by kind: the wrappers (``wrappers.py``, and any card built around an inner
# optimizer), the building blocks (``blocks.py``) and the aliases a user calls (the rest:
# ``aliases.py`` and the schedule-free aliases).
_WRAPPED = {c.name for c in wrappers.CARDS} | {c.name for c in CARDS if c.entries[0].inner}
WRAPPERS: list[Card] = [c for c in CARDS if c.name in _WRAPPED]
BLOCKS: list[Card] = [c for c in blocks.CARDS if c.name not in _WRAPPED]
_NOT_ALIASES = _WRAPPED | {c.name for c in BLOCKS}
ALIASES: list[Card] = [c for c in CARDS if c.name not in _NOT_ALIASES]
