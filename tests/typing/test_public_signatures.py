"""Public signatures name only public types.

A user reads the annotations in ``help()``, in an IDE and on the API pages, and annotates
their own code with them: ``learning_rate: Hyperparameter`` (``optjx.typing``), never a
private ``_hyper.Hyper``. Every public function's and class's annotations are read as
written (``from __future__ import annotations`` keeps them as text).
"""

from __future__ import annotations

import inspect
import re
import types

import optjx
import optjx.typing

# a private name (``_hyper.Hyper``, ``._Carry``) or one reached through a private module
# alias (``T.TorchSchedule``, ``C.Schedule``): neither means anything to a user
PRIVATE = re.compile(r"(?<![\w.])_[A-Za-z]\w*|\._[A-Za-z]\w*|(?<![\w.])[A-Z]\.\w")


def _public_callables():
    for module in (optjx, optjx.schedules, optjx.parallel):
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType) or not callable(obj):
                continue
            if (getattr(obj, "__module__", None) or "").startswith("optjx"):
                yield f"{module.__name__}.{name}", obj


def _annotations(obj):
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    for parameter in signature.parameters.values():
        if parameter.annotation is not inspect.Parameter.empty:
            yield parameter.name, parameter.annotation
    if signature.return_annotation is not inspect.Signature.empty:
        yield "return", signature.return_annotation


def test_public_signatures_name_no_private_type():
    found = []
    for name, obj in _public_callables():
        for argument, annotation in _annotations(obj):
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if PRIVATE.search(text):
                found.append(f"{name}({argument}: {text})")
    assert len(dict(_public_callables())) > 60
    assert not found, "use the public types of optjx.typing:\n" + "\n".join(found)


def test_the_public_types_are_what_the_signatures_use():
    hints = inspect.signature(optjx.adam).parameters["learning_rate"].annotation
    assert hints == "Hyperparameter"
    assert optjx.typing.Hyperparameter is optjx._hyper.Hyper
