"""The one table of optjx's ``torch.optim`` twins (torch 2.13): for each alias, torch's
class, its ``param_groups`` entry computed from the alias's arguments, and where each of
torch's per-parameter state tensors lives in the optjx state.

A stage state is found by its class name (``"TraceState"`` matches ``TraceStateWithCount``
too) anywhere in the chain, so the table does not depend on the stages' positions nor on
which of them keep a counter. Every ``count`` field of the chain is torch's ``step``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from optjx.training import _torch_lbfgs
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


def _implementation(*keys: str) -> dict:
    """The implementation keys a torch class has, in its order."""
    return {key: IMPLEMENTATION[key] for key in keys}


def _betas(a) -> tuple:
    return (a["b1"], a["b2"])


def _off(value, off=0.0):
    """torch's value for an optional stage switched off by ``None``."""
    return off if value is None else value


def _has_momentum(a) -> bool:
    return _off(a["momentum"]) != 0


def _adam_group(decoupled: bool) -> Callable[[Any], dict]:
    def group(a) -> dict:
        return {
            "lr": a["learning_rate"],
            "betas": _betas(a),
            "eps": a["eps"],
            "weight_decay": _off(a["weight_decay"]),
            "amsgrad": a["amsgrad"],
            **_implementation("maximize", "foreach", "capturable", "differentiable", "fused"),
            "decoupled_weight_decay": decoupled,
        }

    return group


_ADAM_FIELDS = (
    Field("ScaleByAdamState", "mu", ("exp_avg",)),
    Field("ScaleByAdamState", "nu", ("exp_avg_sq",)),
    Field("ScaleByAdamState", "nu_max", ("max_exp_avg_sq",)),
)
_ADAM_ONLY = {"eps_root": 0.0}


def _asgd_scalars(a, step: int) -> dict:
    # torch's eta and mu after `step` updates, in its own float arithmetic (ASGD.step).
    lr, lambd, alpha, t0 = a["learning_rate"], a["lambd"], a["alpha"], a["t0"]
    return {"eta": lr / ((1 + lambd * lr * step) ** alpha), "mu": 1 / max(1, step - t0)}


def _radam_rectifier(a, step: int) -> dict:
    # Kept for diagnostics only: the r_t of the latest update, 0 where it was not applied.
    if step == 0:
        return {("ScaleByRadamState", "rectifier"): 0.0}
    b2, threshold = a["b2"], a["threshold"]
    adaptive, rectifier = variance_rectification(
        jnp.asarray(step, jnp.int32), b2, threshold, first_adaptive_step(b2, threshold)
    )
    return {("ScaleByRadamState", "rectifier"): jnp.where(adaptive, rectifier, 0.0)}


def _split_adafactor(element) -> dict:
    if hasattr(element, "row"):  # a FactoredMoment: leaves of two or more dimensions
        return {"row_var": element.row, "col_var": element.column}
    return {"variance": element}


def _join_adafactor(entry: dict, template):
    if hasattr(template, "row"):
        return template._replace(row=entry["row_var"], column=entry["col_var"])
    return entry["variance"]


TWINS: dict[str, Twin] = {
    "sgd": Twin(
        "SGD",
        lambda a: {
            "lr": a["learning_rate"],
            "momentum": _off(a["momentum"]),
            "dampening": a["dampening"],
            "weight_decay": _off(a["weight_decay"]),
            "nesterov": a["nesterov"],
            **_implementation("maximize", "foreach", "differentiable", "fused"),
        },
        (Field("TraceState", "momentum_buffer", ("momentum_buffer",), kept_when=_has_momentum),),
        keeps_step=False,
    ),
    "adam": Twin("Adam", _adam_group(False), _ADAM_FIELDS, optjx_only=_ADAM_ONLY),
    "adamw": Twin(
        "AdamW", _adam_group(True), _ADAM_FIELDS, optjx_only={**_ADAM_ONLY, "mask": None}
    ),
    "rmsprop": Twin(
        "RMSprop",
        lambda a: {
            "lr": a["learning_rate"],
            "momentum": _off(a["momentum"]),
            "alpha": a["decay"],
            "eps": a["eps"],
            "centered": a["centered"],
            "weight_decay": _off(a["weight_decay"]),
            **_implementation("capturable", "foreach", "maximize", "differentiable"),
        },
        (
            Field("ScaleByRmsState", "mean_square", ("square_avg",)),
            Field("ScaleByRmsState", "mean_grad", ("grad_avg",)),
            Field("TraceState", "momentum_buffer", ("momentum_buffer",), kept_when=_has_momentum),
        ),
        optjx_only={
            "eps_root": 0.0,
            "nesterov": False,
            "initial_scale": 0.0,
            "bias_correction": False,
        },
    ),
    "adagrad": Twin(
        "Adagrad",
        lambda a: {
            "lr": a["learning_rate"],
            "lr_decay": 0.0,  # optjx: a schedule lr / (1 + k lr_decay), with its lr then
            "eps": a["eps"],
            "weight_decay": _off(a["weight_decay"]),
            "initial_accumulator_value": a["initial_accumulator_value"],
            **_implementation("foreach", "maximize", "differentiable", "fused"),
        },
        (Field("ScaleByAdagradState", "sum_of_squares", ("sum",)),),
    ),
    "adadelta": Twin(
        "Adadelta",
        lambda a: {
            "lr": a["learning_rate"],
            "rho": a["rho"],
            "eps": a["eps"],
            "weight_decay": _off(a["weight_decay"]),
            **_implementation("maximize", "capturable", "foreach", "differentiable"),
        },
        (
            Field("ScaleByAdadeltaState", "mean_square_grad", ("square_avg",)),
            Field("ScaleByAdadeltaState", "mean_square_delta", ("acc_delta",)),
        ),
    ),
    "radam": Twin(
        "RAdam",
        lambda a: {
            "lr": a["learning_rate"],
            "betas": _betas(a),
            "eps": a["eps"],
            "weight_decay": _off(a["weight_decay"]),
            **_implementation("maximize", "foreach", "capturable"),
            "decoupled_weight_decay": a["decoupled_weight_decay"],
            **_implementation("differentiable"),
        },
        (
            Field("ScaleByRadamState", "mu", ("exp_avg",)),
            Field("ScaleByRadamState", "nu", ("exp_avg_sq",)),
        ),
        optjx_only={"threshold": 5.0},
        optjx_derived=_radam_rectifier,
    ),
    "nadam": Twin(
        "NAdam",
        lambda a: {
            "lr": a["learning_rate"],
            "betas": _betas(a),
            "eps": a["eps"],
            "weight_decay": _off(a["weight_decay"]),
            "momentum_decay": a["momentum_decay"],
            "decoupled_weight_decay": a["decoupled_weight_decay"],
            **_implementation("maximize", "foreach", "capturable", "differentiable"),
        },
        (
            Field("ScaleByNadamState", "mu_product", ("mu_product",), shared=True),
            Field("ScaleByNadamState", "mu", ("exp_avg",)),
            Field("ScaleByNadamState", "nu", ("exp_avg_sq",)),
        ),
    ),
    "adamax": Twin(
        "Adamax",
        lambda a: {
            "lr": a["learning_rate"],
            "betas": _betas(a),
            "eps": a["eps"],
            "weight_decay": _off(a["weight_decay"]),
            **_implementation("foreach", "maximize", "differentiable", "capturable"),
        },
        (
            Field("ScaleByAdamaxState", "mu", ("exp_avg",)),
            Field("ScaleByAdamaxState", "nu", ("exp_inf",)),
        ),
    ),
    "rprop": Twin(
        "Rprop",
        lambda a: {
            "lr": a["learning_rate"],
            "etas": a["etas"],
            "step_sizes": a["step_sizes"],
            **_implementation("foreach", "maximize", "differentiable", "capturable"),
        },
        (
            Field("ScaleByRpropState", "previous", ("prev",)),
            Field("ScaleByRpropState", "step_sizes", ("step_size",)),
        ),
    ),
    "asgd": Twin(
        "ASGD",
        lambda a: {
            "lr": a["learning_rate"],
            "lambd": a["lambd"],
            "alpha": a["alpha"],
            "t0": a["t0"],
            "weight_decay": _off(a["weight_decay"]),
            **_implementation("foreach", "maximize", "differentiable", "capturable"),
        },
        (Field("PolyakState", "average", ("ax",)),),
        torch_derived=_asgd_scalars,
        torch_only=("eta", "mu"),
    ),
    "adafactor": Twin(
        "Adafactor",
        lambda a: {
            "lr": a["learning_rate"],
            "beta2_decay": a["beta2_decay"],
            "eps": a["eps"],
            "d": a["d"],
            "weight_decay": _off(a["weight_decay"]),
            **_implementation("foreach", "maximize"),
        },
        (
            Field(
                "ScaleByAdafactorState",
                "second_moment",
                ("row_var", "col_var", "variance"),
                split=_split_adafactor,
                join=_join_adafactor,
            ),
        ),
    ),
    "muon": Twin(
        "Muon",
        lambda a: {
            "lr": a["learning_rate"],
            "weight_decay": _off(a["weight_decay"]),
            "momentum": a["momentum"],
            "nesterov": a["nesterov"],
            "ns_coefficients": a["ns_coefficients"],
            "eps": a["eps"],
            "ns_steps": a["ns_steps"],
            "adjust_lr_fn": a["adjust_lr_fn"],
        },
        (Field("ScaleByMuonState", "momentum_buffer", ("momentum_buffer",)),),
        keeps_step=False,
    ),
    "lbfgs": Twin(
        "LBFGS",
        lambda a: {
            "lr": a["learning_rate"],
            "max_iter": a["max_iter"],
            "max_eval": _off(a["max_eval"], a["max_iter"] * 5 // 4),  # torch's default
            "tolerance_grad": a["tolerance_grad"],
            "tolerance_change": a["tolerance_change"],
            "history_size": a["history_size"],
            "line_search_fn": a["line_search_fn"],
        },
        (),
        keeps_step=False,
        optjx_only={"respect_max_eval": False, "pack": True},
        whole_state=_torch_lbfgs,
        torch_only=_torch_lbfgs.KEYS,
    ),
}
