"""Find a wrapper's state inside any optimizer state.

* ``find_unique`` walks an optimizer state of any shape (``optax.chain`` tuples,
  nested chains, NamedTuples, dicts, optax's masked and multi-transform states, other
  wrappers' states) and returns the one node of a given state class. It backs the
  accessors ``slow_params`` and ``averaged_params``; ``find_one_or_none`` is its
  lenient twin for ``diagnostics``, which reports only the stages it finds once.
* ``fill_from`` completes a wrapper's tree with the leaves it does not own.
"""

from __future__ import annotations

import jax
import optax


def find_all(tree, cls) -> list:
    # Matching nodes come back as leaves of the flattening; their own children are then
    # searched too, so that a wrapper nested inside another of the same kind is counted.
    found = []
    for node in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, cls)):
        if isinstance(node, cls):
            found.append(node)
            found.extend(find_all(tuple(node), cls))
    return found


def find_unique(state, cls, accessor: str, wrapper: str, built_with: str | None = None):
    """The single ``cls`` node inside ``state``; ``ValueError`` when there is none or several.

    ``wrapper`` names the state (``"lookahead"``); ``built_with`` the factories that make
    one (default ``wrapper(...)``).
    """
    found = find_all(state, cls)
    if not found:
        raise ValueError(
            f"{accessor} found no {wrapper} state in the optimizer state: pass the state "
            f"of an optimizer built with {built_with or wrapper + '(...)'}."
        )
    if len(found) > 1:
        raise ValueError(
            f"{accessor} found {len(found)} {wrapper} states in the optimizer state; "
            "it needs exactly one. Pass the sub-state of the one you mean."
        )
    return found[0]


def find_one_or_none(state, cls):
    """The single ``cls`` node in ``state``; ``None`` when there is none, or several (a
    chain of two RAdams: a diagnostic of one of them would be ambiguous)."""
    found = find_all(state, cls)
    return found[0] if len(found) == 1 else None


def not_owned(x) -> bool:
    return x is None or isinstance(x, optax.MaskedNode)


def fill_from(tree, params):
    """``tree`` with its ``MaskedNode``/``None`` leaves (leaves a wrapper does not own)
    taken from ``params``; ``tree`` itself when ``params`` is ``None``."""
    if params is None:
        return tree
    return jax.tree.map(lambda t, p: p if not_owned(t) else t, tree, params, is_leaf=not_owned)
