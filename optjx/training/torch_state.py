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

from optjx.training import _stage_tree, _torch_checks
from optjx.training._torch_fields import Field, Twin


def from_torch_state(
    tx: optax.GradientTransformation,
    torch_state_dict: dict,
    params: Any,
    *,
    step: Optional[int] = None,
) -> optax.OptState:
    r"""The optjx state equal to a ``torch.optim`` optimizer's state.

    ``tx`` is an optjx alias with a torch twin, called directly: ``sgd``, ``adam``,
    ``adamw``, ``rmsprop``, ``adagrad``, ``adadelta``, ``radam``, ``nadam``, ``adamax``,
    ``rprop``, ``asgd``, ``adafactor``, ``muon``, ``lbfgs`` (one dtype); its arguments must be the torch optimizer's
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
      step: for ``torch.optim.SGD``, ``Muon`` and ``LBFGS``, which keep no step count:
        the number of steps torch took, which every optjx counter of the chain (a
        schedule's, the dampening's first-step rule) becomes. Default: 1 when torch's
        state holds anything (dampening applies from the next update on), else 0.
        Ignored for the others: their counters become torch's ``step``.

    Returns:
      The optjx state, ``tx.init(params)``'s structure; a fresh torch optimizer (empty
      ``state``) gives ``tx.init(params)``.

    Raises:
      TypeError: ``tx`` is not an alias with a torch twin.
      ValueError: the param groups are not the twin's (naming the keys, and the class
        they look like), a hyperparameter differs (naming it and both values), an
        optjx-only argument is not at torch's value, the number of parameters or a
        state tensor's shape differs (naming the parameter and key), torch's state has a
        key the twin does not keep, or the parameters disagree on the step count.

    Examples:
      >>> tx = optjx.adamw(1e-3, weight_decay=0.01)
      >>> opt_state = optjx.from_torch_state(tx, torch_optimizer.state_dict(), params)
    """
    record, twin = _torch_checks.twin_of(tx)
    _torch_checks.check_optjx_only(record, twin)
    leaves, treedef = jax.tree.flatten(params)
    indices = _torch_checks.parameter_order(torch_state_dict, len(leaves))
    entries = _torch_checks.torch_entries(torch_state_dict, indices)
    count = _torch_checks.torch_step(entries, twin, step)
    arguments = _torch_checks.Arguments(record.arguments, count)
    expected = twin.group(arguments)
    for index, group in enumerate(torch_state_dict["param_groups"]):
        _torch_checks.check_group(group, expected, twin, record.alias, index)
    _torch_checks.check_keys(entries, twin, record.alias, indices)

    state = tx.init(params)
    if not any(entries):  # torch's fresh optimizer, or SGD without momentum
        return _stage_tree.set_counts(state, count)
    if twin.whole_state is not None:
        if any(entries[1:]):
            raise ValueError(f"torch.optim.{twin.torch_class} keeps state for parameter 0 only")
        state = twin.whole_state.from_torch(entries[0], state, params)
        return _stage_tree.set_counts(state, count)
    for field in twin.fields:
        stage = _stage_tree.find(state, field.stage)
        template = None if stage is None else getattr(stage, field.field)
        if template is None:
            _check_absent(entries, field, record.alias, indices)
            continue
        kept = field.kept_when is None or field.kept_when(arguments)
        value = _field_from_torch(entries, field, template, treedef, indices, kept)
        state = _stage_tree.set_field(state, field.stage, field.field, value)
    if twin.optjx_derived is not None:
        for (stage_name, name), value in twin.optjx_derived(arguments, count).items():
            dtype = getattr(_stage_tree.find(state, stage_name), name).dtype
            state = _stage_tree.set_field(state, stage_name, name, jnp.asarray(value, dtype))
    return _stage_tree.set_counts(state, count)


def _check_absent(entries, field: Field, alias: str, indices: list) -> None:
    for i, entry in zip(indices, entries, strict=True):
        present = [k for k in field.keys if k in entry]
        if present:
            raise ValueError(
                f"torch's state of parameter {i} has {present[0]!r}, which optjx.{alias} "
                "with these arguments keeps no state for"
            )


def _field_from_torch(entries, field: Field, template, treedef, indices: list, kept: bool):
    if field.shared:
        values = [e[field.keys[0]] for e in entries if field.keys[0] in e]
        if any(not np.array_equal(values[0], v) for v in values):
            raise ValueError(f"torch's parameters have different {field.keys[0]!r} values")
        return jnp.asarray(values[0], template.dtype)
    elements = treedef.flatten_up_to(template)
    converted = []
    for i, entry, element in zip(indices, entries, elements, strict=True):
        if not any(k in entry for k in field.keys):
            if not kept:  # torch keeps none for these arguments: optjx's stays as init
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
    with no update applied gives torch's fresh state (an empty ``state``). SGD, Muon and
    LBFGS states have no ``step`` (torch keeps none); LBFGS's whole state is under
    parameter 0, its counters and ``t``, ``prev_loss`` Python numbers, its memory lists,
    as torch keeps them.

    Args:
      tx: the optjx alias the state belongs to.
      state: its state.
      params: the parameters (for the tree structure).
      step: torch's ``step`` for a state that keeps no counter; ignored otherwise (every
        alias's state keeps one, which is torch's ``step``).
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
      ValueError: an optjx-only argument is not at torch's value, or the state keeps no
        step count and ``step`` gives none.

    Examples:
      >>> sd = optjx.to_torch_state(tx, opt_state, params, as_tensor=torch.as_tensor)
      >>> torch_optimizer.load_state_dict(sd)
    """
    record, twin = _torch_checks.twin_of(tx)
    _torch_checks.check_optjx_only(record, twin)
    convert = as_tensor if as_tensor is not None else (lambda x: x)
    leaves, treedef = jax.tree.flatten(params)
    count, known = _optjx_step(state, twin, step, record.alias)
    arguments = _torch_checks.Arguments(record.arguments, count)
    group = {**twin.group(arguments), "params": list(range(len(leaves)))}
    entries: list[dict] = [{} for _ in leaves]
    if twin.whole_state is not None:
        entries[0] = twin.whole_state.to_torch(state, params)
    elif count > 0 or not known:  # else no update was applied: torch's fresh (empty) state
        entries = _entries_to_torch(state, twin, treedef, len(leaves), count, arguments)

    def converted(value):
        if isinstance(value, list):
            return [converted(v) for v in value]
        if isinstance(value, (int, float)):  # torch keeps some counters as Python numbers
            return value
        return convert(np.array(value))

    return {
        "state": {
            i: {k: converted(v) for k, v in entry.items()}
            for i, entry in enumerate(entries)
            if entry
        },
        "param_groups": [group],
    }


def _optjx_step(state, twin: Twin, step: Optional[int], alias: str) -> tuple[int, bool]:
    """The number of updates applied, and whether it is known (SGD's chain may keep none)."""
    counts = _stage_tree.counts(state)
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
        stage = _stage_tree.find(state, field.stage)
        value = None if stage is None else getattr(stage, field.field)
        if value is None or (field.kept_when is not None and not field.kept_when(arguments)):
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
