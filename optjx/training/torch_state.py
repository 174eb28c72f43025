r"""A ``torch.optim`` optimizer's state into optjx and back: ``from_torch_state`` and
``to_torch_state``, so that a PyTorch run resumes in JAX (and a JAX run in PyTorch) with
the same numbers. The per-optimizer mapping is the table in ``_torch_table``.

torch is never imported: torch tensors are read by duck typing
(``np.asarray(t.detach().cpu())``) and NumPy arrays are written, or whatever
``as_tensor`` makes of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _twin
from optjx.training._torch_table import IMPLEMENTATION, TWINS, Field, Twin

_SCHEDULER_KEYS = ("initial_lr",)  # added to the group by torch's lr schedulers


def _twin_of(tx) -> tuple[_twin.Twin, Twin]:
    record = _twin.twin_of(tx)
    if record is None or record.alias not in TWINS:
        raise TypeError(
            "tx must be built by an optjx alias with a torch.optim twin "
            f"({', '.join(f'optjx.{name}' for name in TWINS)}), called directly: a "
            "hand-made chain or a wrapped alias (inject_hyperparams, param_groups, ...) "
            "carries no record of its torch twin"
        )
    return record, TWINS[record.alias]


class _Arguments:
    """The alias's arguments, each read as torch holds it after ``step`` updates: a
    schedule at the count, an array as a Python number, a pair as a tuple."""

    def __init__(self, arguments: dict, step: int):
        self._arguments, self._step = arguments, step

    def __getitem__(self, name: str):
        return self._read(self._arguments[name])

    def _read(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (tuple, list)):
            return tuple(self._read(v) for v in value)
        if callable(value):
            value = value(jnp.asarray(self._step, jnp.int32))
        number = np.asarray(value)
        if number.ndim:
            raise ValueError(f"a per-parameter hyperparameter has no torch form: {value!r}")
        return int(number) if np.issubdtype(number.dtype, np.integer) else float(number)


def _numpy(value) -> np.ndarray:
    """A torch tensor (or anything with ``__array__``) as a NumPy array, without torch."""
    for method in ("detach", "cpu"):
        if hasattr(value, method):
            value = getattr(value, method)()
    return np.asarray(value)


# ---- the optjx state: stages found by class name, counters set everywhere ----


def _stage_name(node) -> str:
    return type(node).__name__.removesuffix("WithCount")


def _is_stage(node) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _find(state, stage: str):
    """The first stage state of class ``stage`` in the chain's state, or ``None``."""
    if _is_stage(state):
        if _stage_name(state) == stage:
            return state
        state = tuple(state)
    if isinstance(state, (tuple, list)):
        for child in state:
            found = _find(child, stage)
            if found is not None:
                return found
    return None


def _rebuild(state, change: Callable[[Any], Any]):
    """``state`` with ``change`` applied to every stage state, outermost first."""
    if _is_stage(state):
        state = change(state)
        return type(state)(*(_rebuild(child, change) for child in state))
    if isinstance(state, (tuple, list)):
        return type(state)(_rebuild(child, change) for child in state)
    return state


def _set_field(state, stage: str, field: str, value):
    def change(node):
        if _stage_name(node) == stage:
            return node._replace(**{field: value})
        return node

    return _rebuild(state, change)


def _set_counts(state, step: int):
    def change(node):
        if "count" in node._fields:
            return node._replace(count=jnp.asarray(step, node.count.dtype))
        return node

    return _rebuild(state, change)


def _counts(state) -> list[int]:
    found: list[int] = []

    def collect(node):
        if "count" in node._fields:
            found.append(int(node.count))
        return node

    _rebuild(state, collect)
    return found


# ---- the checks ----


def _same(a, b) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        a, b = tuple(a) if isinstance(a, (tuple, list)) else a, b
        b = tuple(b) if isinstance(b, (tuple, list)) else b
        return (
            isinstance(a, tuple)
            and isinstance(b, tuple)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(np.isclose(float(a), float(b), rtol=1e-12, atol=0.0))


def _check_group(group: dict, expected: dict, twin: Twin, alias: str, index: int) -> None:
    hyper = [k for k in expected if k not in IMPLEMENTATION]
    extra = [k for k in group if k not in expected and k not in (*_SCHEDULER_KEYS, "params")]
    missing = [k for k in hyper if k not in group]
    if extra or missing:
        guess = [
            t.torch_class
            for t in TWINS.values()
            if {k for k in t.group(_Anything()) if k not in IMPLEMENTATION}
            == {k for k in group if k not in IMPLEMENTATION and k not in _SCHEDULER_KEYS}
            - {"params"}
        ]
        raise ValueError(
            f"param_groups[{index}] is not torch.optim.{twin.torch_class}'s (the twin of "
            f"optjx.{alias}): keys {missing} missing, {extra} unexpected"
            + (f"; it looks like torch.optim.{guess[0]}'s" if guess else "")
        )
    if group.get("maximize", False):
        raise ValueError(
            "torch's maximize=True has no optjx alias form: chain optjx.scale(-1.0) before it"
        )
    for key in hyper:
        if not _same(group[key], expected[key]):
            raise ValueError(
                f"hyperparameter {key!r} differs: torch's param_groups[{index}] has "
                f"{group[key]!r}, optjx.{alias} has {expected[key]!r}"
            )


class _Anything:
    """Arguments that are all 0, to list a twin's group keys."""

    def __getitem__(self, name: str):
        return 0.0


def _check_optjx_only(record: _twin.Twin, twin: Twin) -> None:
    for name, torch_value in twin.optjx_only.items():
        value = record.arguments.get(name)
        if not (value is torch_value or _same(value, torch_value)):
            raise ValueError(
                f"optjx.{record.alias}({name}={value!r}) has no torch.optim."
                f"{twin.torch_class} counterpart: torch computes as {name}={torch_value!r}"
            )


def _parameter_order(torch_state: dict, count: int) -> list:
    indices = [i for group in torch_state["param_groups"] for i in group["params"]]
    if len(indices) != count:
        raise ValueError(
            f"torch's state dict has {len(indices)} parameters (in its param_groups), "
            f"params has {count} leaves"
        )
    return indices


def _entries(torch_state: dict, indices: list) -> list[dict]:
    state = {int(k): v for k, v in torch_state["state"].items()}
    return [{k: _numpy(v) for k, v in state.get(i, {}).items()} for i in indices]


def _torch_step(entries: list[dict], twin: Twin, step: Optional[int]) -> int:
    if not twin.keeps_step:
        if step is not None:
            return int(step)
        # No step count in torch: one update at least once a buffer exists (so that
        # dampening is applied from the next update on, as torch does), else none.
        return 1 if any(entries) else 0
    steps = {int(e["step"]) for e in entries if "step" in e}
    if len(steps) > 1:
        raise ValueError(f"torch's parameters have different step counts {sorted(steps)}")
    return steps.pop() if steps else 0


# ---- the two directions ----


def from_torch_state(
    tx: optax.GradientTransformation,
    torch_state_dict: dict,
    params: Any,
    *,
    step: Optional[int] = None,
) -> optax.OptState:
    r"""The optjx state equal to a ``torch.optim`` optimizer's state.

    ``tx`` is an optjx alias with a torch twin, called directly (``optjx.sgd``, ``adam``,
    ``adamw``, ...: see the porting guide); its arguments must be the torch optimizer's
    hyperparameters (a schedule is read at the step count, as torch's group holds the
    scheduled value). Torch's parameter ``i`` (the order of its ``param_groups``'
    ``params``) is the ``i``-th leaf of ``jax.tree.leaves(params)``.

    Args:
      tx: the optjx alias, e.g. ``optjx.adamw(1e-3, weight_decay=0.01)``.
      torch_state_dict: ``optimizer.state_dict()`` as torch returns it; tensors are read
        with ``np.asarray(t.detach().cpu())`` (anything with ``__array__`` will do, so
        torch is never imported; the integer state keys may be strings).
      params: the parameters the state belongs to (the torch weights converted), for the
        tree structure, shapes and dtypes; every state array takes its leaf's dtype.
      step: for ``torch.optim.SGD`` and ``Muon``, which keep no step count: the number of
        steps torch took, which every optjx counter of the chain (a schedule's, the
        dampening's first-step rule) becomes. Default: 1 when torch's state holds
        momentum buffers (dampening applies from the next update on), else 0. Ignored
        for the others: their counters become torch's ``step``.

    Returns:
      The optjx state, ``tx.init(params)``'s structure; a fresh torch optimizer (empty
      ``state``) gives ``tx.init(params)``.

    Raises:
      TypeError: ``tx`` is not an alias with a torch twin.
      ValueError: the param groups are not the twin's (naming the keys, and the class
        they look like), a hyperparameter differs (naming it and both values), an
        optjx-only argument is not at torch's value, the number of parameters or a
        state tensor's shape differs (naming the parameter and key), or the parameters
        disagree on the step count.

    Examples:
      >>> tx = optjx.adamw(1e-3, weight_decay=0.01)
      >>> opt_state = optjx.from_torch_state(tx, torch_optimizer.state_dict(), params)
    """
    record, twin = _twin_of(tx)
    _check_optjx_only(record, twin)
    leaves, treedef = jax.tree.flatten(params)
    indices = _parameter_order(torch_state_dict, len(leaves))
    entries = _entries(torch_state_dict, indices)
    count = _torch_step(entries, twin, step)
    arguments = _Arguments(record.arguments, count)
    expected = twin.group(arguments)
    for index, group in enumerate(torch_state_dict["param_groups"]):
        _check_group(group, expected, twin, record.alias, index)

    state = tx.init(params)
    if not any(entries):  # torch's fresh optimizer
        return state
    for field in twin.fields:
        stage = _find(state, field.stage)
        template = None if stage is None else getattr(stage, field.field)
        if template is None:
            _check_absent(entries, field, record.alias, indices)
            continue
        value = _field_from_torch(entries, field, template, treedef, indices)
        state = _set_field(state, field.stage, field.field, value)
    if twin.optjx_derived is not None:
        for (stage_name, name), value in twin.optjx_derived(arguments, count).items():
            dtype = getattr(_find(state, stage_name), name).dtype
            state = _set_field(state, stage_name, name, jnp.asarray(value, dtype))
    return _set_counts(state, count)


def _check_absent(entries, field: Field, alias: str, indices: list) -> None:
    for i, entry in zip(indices, entries, strict=True):
        present = [k for k in field.keys if k in entry]
        if present:
            raise ValueError(
                f"torch's state of parameter {i} has {present[0]!r}, which optjx.{alias} "
                "with these arguments keeps no state for"
            )


def _field_from_torch(entries, field: Field, template, treedef, indices: list):
    if field.shared:
        values = [e[field.keys[0]] for e in entries if field.keys[0] in e]
        if any(not np.array_equal(values[0], v) for v in values):
            raise ValueError(f"torch's parameters have different {field.keys[0]!r} values")
        return jnp.asarray(values[0], template.dtype)
    elements = treedef.flatten_up_to(template)
    converted = []
    for i, entry, element in zip(indices, entries, elements, strict=True):
        if not any(k in entry for k in field.keys):
            if field.absent_ok:
                converted.append(element)
                continue
            raise ValueError(f"torch's state of parameter {i} has no {field.keys[0]!r}")
        torch_value = field.join(entry, element) if field.join else entry[field.keys[0]]
        converted.append(
            jax.tree.map(lambda t, e, i=i: _array(t, e, i, field), torch_value, element)
        )
    return treedef.unflatten(converted)


def _array(torch_value, template, index: int, field: Field) -> jax.Array:
    value = np.asarray(torch_value)
    if value.shape != template.shape:
        raise ValueError(
            f"torch's {'/'.join(field.keys)!r} of parameter {index} has shape {value.shape}, "
            f"optjx expects {template.shape} (parameter {index} of jax.tree.leaves(params))"
        )
    return jnp.asarray(value, template.dtype)


def to_torch_state(
    tx: optax.GradientTransformation,
    state: optax.OptState,
    params: Any,
    *,
    step: Optional[int] = None,
    as_tensor: Optional[Callable[[np.ndarray], Any]] = None,
) -> dict:
    r"""The ``torch.optim`` state dict equal to an optjx alias's state.

    The dict has torch's structure exactly: ``state`` (per parameter index, the keys the
    twin keeps, ``step`` included) and one ``param_groups`` entry with every key of the
    twin's group, hyperparameters read from ``tx``'s arguments (a schedule at the step
    count) and ``params`` ``[0, ..., n-1]`` in ``jax.tree.leaves(params)`` order. A state
    with no update applied gives torch's fresh state (an empty ``state``).

    Args:
      tx: the optjx alias the state belongs to.
      state: its state.
      params: the parameters (for the tree structure).
      step: torch's ``step`` where the optjx chain keeps no counter (some stages keep one
        only when a schedule reads it), otherwise ignored; a ``ValueError`` asks for it
        when it is needed.
      as_tensor: applied to every array, e.g. ``torch.as_tensor``; by default the arrays
        stay NumPy, which torch's ``load_state_dict`` does not take: pass
        ``as_tensor=torch.as_tensor`` for a dict to load directly. ``step`` is a float32
        0-d array, as torch keeps it.

    Returns:
      ``{"state": {i: {key: array}}, "param_groups": [{...}]}``, for
      ``optimizer.load_state_dict`` of a torch optimizer built over the same parameters
      (in the same order) with the twin's class.

    Raises:
      TypeError: ``tx`` is not an alias with a torch twin.
      ValueError: an optjx-only argument is not at torch's value, or a step count is
        needed and neither the state nor ``step`` gives one.

    Examples:
      >>> sd = optjx.to_torch_state(tx, opt_state, params, as_tensor=torch.as_tensor)
      >>> torch_optimizer.load_state_dict(sd)
    """
    record, twin = _twin_of(tx)
    _check_optjx_only(record, twin)
    convert = as_tensor if as_tensor is not None else (lambda x: x)
    leaves, treedef = jax.tree.flatten(params)
    count, known = _optjx_step(state, twin, step, record.alias)
    arguments = _Arguments(record.arguments, count)
    group = {**twin.group(arguments), "params": list(range(len(leaves)))}
    entries: list[dict] = [{} for _ in leaves]
    if count > 0 or not known:  # no update applied: torch's fresh (empty) state
        entries = _entries_to_torch(state, twin, treedef, len(leaves), count, arguments)
    return {
        "state": {
            i: {k: convert(np.array(v)) for k, v in entry.items()}
            for i, entry in enumerate(entries)
            if entry
        },
        "param_groups": [group],
    }


def _optjx_step(state, twin: Twin, step: Optional[int], alias: str) -> tuple[int, bool]:
    """The number of updates applied, and whether it is known (SGD's chain may keep none)."""
    counts = _counts(state)
    if counts:
        return counts[0], True
    if step is not None:
        return int(step), True
    if twin.keeps_step:
        raise ValueError(
            f"this optjx.{alias} state keeps no step count and torch.optim."
            f"{twin.torch_class} needs one: pass step=, the number of updates applied"
        )
    return 0, False


def _entries_to_torch(state, twin: Twin, treedef, n: int, count: int, arguments) -> list[dict]:
    entries: list[dict] = [{} for _ in range(n)]
    if twin.keeps_step:
        for entry in entries:
            entry["step"] = np.asarray(count, np.float32)
    for field in twin.fields:
        stage = _find(state, field.stage)
        value = None if stage is None else getattr(stage, field.field)
        if value is None:
            continue
        if field.shared:
            for entry in entries:
                entry[field.keys[0]] = np.asarray(value)
            continue
        for entry, element in zip(entries, treedef.flatten_up_to(value), strict=True):
            split = field.split(element) if field.split else {field.keys[0]: element}
            entry.update({k: np.asarray(v) for k, v in split.items()})
    if twin.torch_derived is not None:
        for entry in entries:
            entry.update(
                {
                    k: np.asarray(v, np.float64)
                    for k, v in twin.torch_derived(arguments, count).items()
                }
            )
    return entries
