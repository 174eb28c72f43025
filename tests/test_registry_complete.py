"""The registry covers every public optjx name that builds a transformation.

A public name builds a transformation when it is a function whose return annotation is
an ``optax.GradientTransformation`` (or a subclass). Every public function must declare
its return type, or be listed in ``registry.NOT_TRANSFORMS`` with a reason; so a new
optimizer cannot slip past the invariants by having no card in ``tests/cards`` (the
registry is derived from the cards).
"""

from __future__ import annotations

import enum
import inspect
import math
import types
import typing

import optax
import pytest
import registry

import optjx

# Types exported for users (state NamedTuples, optax's protocol classes) build nothing.
_TYPES_REASON = "a type: a state NamedTuple, an optax protocol class or an IntEnum"

# Arguments of public factories that have no invalid value to test, with the reason.
UNCHECKED_ARGS = {
    "inner": "a transformation, not a number",
    "mask": "a tree or a function of the params",
    "mu_dtype": "a dtype",
    "nu_dtype": "a dtype",
    "accumulator_dtype": "a dtype",
    "ns_dtype": "a dtype (Muon's Newton-Schulz iteration)",
}
INTEGER_ARGS = {"sync_period", "patience", "cooldown", "max_consecutive_errors", "every_k"}
INTEGER_ARGS |= {"warmup_steps"}
INTEGER_ARGS |= {"ns_steps"}
INTEGER_ARGS |= {"max_iter", "max_eval"}  # the full-batch methods' iteration budgets
# scale's step_size: any real number is allowed (plain arithmetic, negative included).
# A function argument: its wrong type is a TypeError (tests/invariants/test_inv_bad_input.py).
UNCHECKED_BY_NAME = {"scale": {"step_size"}, "accumulate_gradients": {"should_skip_update_fn"}}
# A choice between two strings: its bad value is listed without NaN (not a float).
UNCHECKED_BY_NAME["adamw_schedule_free"] = {"variant"}
UNCHECKED_BY_NAME["schedule_free"] = {"direction"}  # a transformation, as "inner"
# A choice between strings: its bad value ("bogus") is listed without NaN.
UNCHECKED_BY_NAME["muon"] = UNCHECKED_BY_NAME["scale_by_muon"] = {"adjust_lr_fn"}
# A tree or function of labels, a choice between strings, a PRNG key: no NaN to list.
UNCHECKED_BY_NAME["block_coordinate"] = {"blocks", "order", "key"}


# Names that optjx/__init__.py imports for its own use and must keep private.
STRAY = {"version", "PackageNotFoundError"}


def _public():
    return {
        name: getattr(optjx, name)
        for name in dir(optjx)
        if not name.startswith("_") and name not in STRAY
    }


def _return_type(fn):
    try:
        return typing.get_type_hints(fn).get("return")
    except Exception:  # an annotation that does not resolve: fall back to its text
        annotation = inspect.signature(fn).return_annotation
        return None if annotation is inspect.Signature.empty else annotation


def _builds_transformation(fn) -> bool | None:
    """True / False from the return annotation; None when the function has none."""
    returned = _return_type(fn)
    if returned is None:
        return None
    if isinstance(returned, str):
        return "GradientTransformation" in returned
    candidates = typing.get_args(returned) or (returned,)
    return any(
        isinstance(c, type) and issubclass(c, optax.GradientTransformation) for c in candidates
    )


def _transform_builders() -> set[str]:
    found = set()
    for name, obj in _public().items():
        if isinstance(obj, types.ModuleType) or inspect.isclass(obj) or not callable(obj):
            continue
        builds = _builds_transformation(obj)
        assert builds is not None or name in registry.NOT_TRANSFORMS, (
            f"optjx.{name} has no return annotation: annotate it (-> optax.GradientTransformation "
            f"if it builds one, then add its card to tests/cards) or list it in "
            f"registry.NOT_TRANSFORMS with the reason"
        )
        if builds:
            found.add(name)
    return found


def test_every_public_transformation_is_in_the_registry():
    builders = _transform_builders()
    missing = builders - set(registry.NAMES) - set(registry.COVERED_ELSEWHERE)
    assert not missing, (
        f"public optjx names that build a transformation but have no card: {sorted(missing)}. "
        f"Add a Card for each to tests/cards (two or more configurations, the tuned "
        f"hyperparameters and the invalid values; see CONTRIBUTING.md)."
    )
    # The discovery itself must find what we know is there (it can fail, e.g. if the
    # annotations stopped resolving): every registry name is found as a builder.
    assert set(registry.NAMES) <= builders, sorted(set(registry.NAMES) - builders)
    assert set(registry.COVERED_ELSEWHERE) <= builders


def test_every_other_public_name_is_accounted_for():
    builders = _transform_builders()
    for name, obj in _public().items():
        if name in builders or name == "__version__":
            continue
        if isinstance(obj, types.ModuleType):
            # optjx's own submodules (importing a submodule sets it as an attribute).
            assert obj.__name__.startswith("optjx."), f"optjx.{name} re-exports a module"
            continue
        if inspect.isclass(obj):
            assert (
                issubclass(obj, tuple)
                or issubclass(obj, optax.GradientTransformation)
                or (obj is optax.EmptyState)
                or issubclass(obj, enum.IntEnum)  # values a state holds (StopReason)
            ), f"optjx.{name}: {_TYPES_REASON}?"
            continue
        assert name in registry.NOT_TRANSFORMS, (
            f"optjx.{name} is neither a transformation builder nor listed in "
            f"registry.NOT_TRANSFORMS"
        )
    stale = set(registry.NOT_TRANSFORMS) - set(_public())
    assert not stale, f"registry.NOT_TRANSFORMS lists names optjx no longer has: {stale}"


def test_registry_names_exist_and_have_two_configurations():
    public = _public()
    for name in registry.NAMES:
        assert name in public, f"registry entry {name} is not a public optjx name"
        configs = [e for e in registry.ENTRIES if e.name == name]
        assert len(configs) >= 2, f"{name}: needs the defaults and a configuration of its flags"
    assert not set(registry.NAMES) & set(registry.COVERED_ELSEWHERE)


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.id)
def test_every_entry_builds_a_gradient_transformation(entry):
    tx = entry.build()
    assert isinstance(tx, optax.GradientTransformation)
    if entry.needs_value:
        assert isinstance(tx, optax.GradientTransformationExtraArgs)


def test_tuned_and_invalid_tables_cover_every_name():
    assert set(registry.TUNED) == set(registry.NAMES)
    assert set(registry.INVALID) == set(registry.NAMES)


@pytest.mark.parametrize("name", registry.NAMES)
def test_invalid_table_names_every_hyperparameter(name):
    """Each argument of the public factory has bad values listed, or a reason it has none."""
    signature = inspect.signature(getattr(optjx, name))
    listed = set(registry.INVALID[name])
    unknown = listed - set(signature.parameters)
    assert not unknown, f"{name}: INVALID lists arguments the factory does not take: {unknown}"
    for arg, parameter in signature.parameters.items():
        if isinstance(parameter.default, bool) or arg in UNCHECKED_ARGS:
            continue
        if arg in UNCHECKED_BY_NAME.get(name, ()):
            continue
        assert arg in listed, f"{name}({arg}=...): add its invalid values to the card's invalid"
        # Float hyperparameters (all but the integer counts) are checked with NaN too.
        if arg not in INTEGER_ARGS:
            values = registry.INVALID[name][arg]
            if isinstance(parameter.default, tuple):  # a pair (torch's etas, eps): NaN inside
                values = [x for v in values for x in (v if isinstance(v, tuple) else (v,))]
            assert any(isinstance(v, float) and math.isnan(v) for v in values), (
                f"{name}({arg}=...): also list NaN in the card's invalid values"
            )


def test_namespace_has_no_stray_imports():
    leaked = STRAY & set(dir(optjx))
    assert not leaked, f"optjx exports helper imports: {sorted(leaked)}"
