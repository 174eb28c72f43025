"""What ``from_torch_state`` and ``to_torch_state`` check and read: the alias's record,
its arguments as torch holds them, torch's param groups against them, the parameter
order and the step count."""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp
import numpy as np

from optjx import _twin
from optjx.training._torch_fields import IMPLEMENTATION, Twin
from optjx.training._torch_table import TWINS

_SCHEDULER_KEYS = ("initial_lr",)  # added to the group by torch's lr schedulers


def twin_of(tx) -> tuple[_twin.Twin, Twin]:
    record = _twin.twin_of(tx)
    if record is None or record.alias not in TWINS:
        raise TypeError(
            "tx must be built by an optjx alias with a torch.optim twin "
            f"({', '.join(f'optjx.{name}' for name in TWINS)}), called directly: a "
            "hand-made chain or a wrapped alias (inject_hyperparams, param_groups, ...) "
            "carries no record of its torch twin"
        )
    return record, TWINS[record.alias]


class Arguments:
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


def check_group(group: dict, expected: dict, twin: Twin, alias: str, index: int) -> None:
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


def check_optjx_only(record: _twin.Twin, twin: Twin) -> None:
    for name, torch_value in twin.optjx_only.items():
        value = record.arguments.get(name)
        if not (value is torch_value or _same(value, torch_value)):
            raise ValueError(
                f"optjx.{record.alias}({name}={value!r}) has no torch.optim."
                f"{twin.torch_class} counterpart: torch computes as {name}={torch_value!r}"
            )


def parameter_order(torch_state: dict, count: int) -> list:
    indices = [i for group in torch_state["param_groups"] for i in group["params"]]
    if len(indices) != count:
        raise ValueError(
            f"torch's state dict has {len(indices)} parameters (in its param_groups), "
            f"params has {count} leaves"
        )
    return indices


def torch_entries(torch_state: dict, indices: list) -> list[dict]:
    state = {int(k): v for k, v in torch_state["state"].items()}
    return [{k: numpy(v) for k, v in state.get(i, {}).items()} for i in indices]


def torch_step(entries: list[dict], twin: Twin, step: Optional[int]) -> int:
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


def numpy(value) -> np.ndarray:
    """A torch tensor (or anything with ``__array__``) as a NumPy array, without torch."""
    if isinstance(value, (list, tuple)):  # LBFGS's memory
        return [numpy(v) for v in value]  # type: ignore[return-value]
    for method in ("detach", "cpu"):
        if hasattr(value, method):
            value = getattr(value, method)()
    return np.asarray(value)


def check_keys(entries: list[dict], twin: Twin, alias: str, indices: list) -> None:
    """Every per-parameter key of torch's state is one the twin knows."""
    known = {key for field in twin.fields for key in field.keys} | set(twin.torch_only)
    if twin.keeps_step:
        known.add("step")
    for i, entry in zip(indices, entries, strict=True):
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(
                f"torch's state of parameter {i} has {unknown}, which torch.optim."
                f"{twin.torch_class} (the twin of optjx.{alias}) does not keep"
            )
