"""Which ``torch.optim`` class an alias's transformation is the twin of, and with which
arguments: recorded by a decorator on the alias factory, read by the torch state interop
(``optjx.from_torch_state`` / ``optjx.to_torch_state``).

The record is kept outside the transformation (a ``NamedTuple`` takes no attributes),
keyed weakly on its ``init`` function, so a transformation that is dropped is forgotten.
A transformation built any other way (a hand-made chain, a wrapper around an alias) has
no record.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

_Factory = TypeVar("_Factory", bound=Callable[..., Any])

_RECORDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Twin(NamedTuple):
    """The alias's name (``"adam"``) and every argument it was called with, defaults
    filled in (``{"learning_rate": 1e-3, "b1": 0.9, ...}``)."""

    alias: str
    arguments: dict[str, Any]


def torch_twin(alias: str) -> Callable[[_Factory], _Factory]:
    """Decorate an alias factory: each transformation it returns remembers ``alias`` and
    the arguments it was built with."""

    def decorate(factory: _Factory) -> _Factory:
        signature = inspect.signature(factory)

        @functools.wraps(factory)
        def built(*args, **kwargs):
            tx = factory(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            _RECORDS[tx.init] = Twin(alias, dict(bound.arguments))
            return tx

        return built  # type: ignore[return-value]

    return decorate


def twin_of(tx) -> Twin | None:
    """The record of ``tx``, or ``None`` for a transformation no alias built."""
    init = getattr(tx, "init", None)
    try:
        return _RECORDS.get(init)
    except TypeError:  # not weak-referenceable: no alias built it
        return None
