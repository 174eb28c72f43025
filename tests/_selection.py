"""What the selected tests of a module need, for module fixtures that build many at once.

A fixture that runs many registry entries or cards in one program (one pmapped program,
one checkpoint, one sharded ``jit``) asks :func:`selected` for the parameters of the tests
this session will run in the requesting module (after ``-k``, ``-m`` and node ids), so
that ``-k one_name`` builds and compiles that name alone.
"""

from __future__ import annotations


def selected(request, argname: str) -> list:
    """The values of ``argname`` that the selected tests of the requesting module take,
    in collection order, each once."""
    chosen: dict = {}
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None:
            if argname in callspec.params:
                value = callspec.params[argname]
                chosen.setdefault(getattr(value, "id", value), value)
    return list(chosen.values())
