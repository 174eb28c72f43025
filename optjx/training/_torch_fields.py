"""What a row of the ``torch.optim`` twin table (``_torch_table``) is made of: the
param-group keys that only choose torch's implementation, a state field's torch keys,
a twin, and the conversions of the few states that are not one array per key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from optjx.transforms.radam import first_adaptive_step, variance_rectification

# Keys of every param group that choose torch's implementation, not the math; their
# defaults. ``maximize`` is the one checked: an optjx alias always minimises.
IMPLEMENTATION = {
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": None,
}


class Field(NamedTuple):
    """One field of a stage state, shaped like the params, and torch's key(s) for it.

    ``split(element) -> {torch key: array}`` and ``join(entry, template) -> element``
    convert one parameter's element when it is not a single array under ``keys[0]``.
    ``kept_when(a)``: torch keeps the key only when this holds for the alias's arguments
    (SGD keeps no momentum buffer for a momentum of 0, where optjx may keep one).
    ``shared``: optjx keeps one scalar for all parameters, torch a copy per parameter.
    """

    stage: str
    field: str
    keys: tuple[str, ...]
    kept_when: Callable[[Any], bool] | None = None
    shared: bool = False
    split: Callable[[Any], dict] | None = None
    join: Callable[[dict, Any], Any] | None = None


class Twin(NamedTuple):
    """An alias's ``torch.optim`` twin.

    ``group(a)``: torch's param-group entry (without ``params``), in torch's key order,
    from the alias's arguments ``a`` (each read at the step count). ``optjx_only``: alias
    arguments torch has no counterpart for, and the value that computes torch's math.
    ``torch_derived(a, step)`` / ``optjx_derived(a, step)``: per-parameter torch scalars
    and optjx state fields (``{(stage, field): value}``) that follow from the step count.
    ``whole_state``: for a state that is not per parameter (LBFGS), the module that
    converts it (``from_torch(entry, state, params)``, ``to_torch(state, params)``).
    """

    torch_class: str
    group: Callable[[Any], dict]
    fields: tuple[Field, ...]
    keeps_step: bool = True
    optjx_only: dict = {}
    torch_derived: Callable[[Any, int], dict] | None = None
    optjx_derived: Callable[[Any, int], dict] | None = None
    whole_state: Any = None  # a module with from_torch / to_torch of the whole state
    torch_only: tuple[str, ...] = ()  # torch's per-parameter keys optjx derives (or not keeps)


def asgd_scalars(a, step: int) -> dict:
    # torch's eta and mu after `step` updates, in its own float arithmetic (ASGD.step).
    lr, lambd, alpha, t0 = a["learning_rate"], a["lambd"], a["alpha"], a["t0"]
    return {"eta": lr / ((1 + lambd * lr * step) ** alpha), "mu": 1 / max(1, step - t0)}


def radam_rectifier(a, step: int) -> dict:
    # Kept for diagnostics only: the r_t of the latest update, 0 where it was not applied.
    if step == 0:
        return {("ScaleByRadamState", "rectifier"): 0.0}
    b2, threshold = a["b2"], a["threshold"]
    adaptive, rectifier = variance_rectification(
        jnp.asarray(step, jnp.int32), b2, threshold, first_adaptive_step(b2, threshold)
    )
    return {("ScaleByRadamState", "rectifier"): jnp.where(adaptive, rectifier, 0.0)}


def split_adafactor(element) -> dict:
    if hasattr(element, "row"):  # a FactoredMoment: leaves of two or more dimensions
        return {"row_var": element.row, "col_var": element.column}
    return {"variance": element}


def join_adafactor(entry: dict, template):
    if hasattr(template, "row"):
        return template._replace(row=entry["row_var"], column=entry["col_var"])
    return entry["variance"]
