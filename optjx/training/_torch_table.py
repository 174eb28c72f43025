"""The one table of optjx's ``torch.optim`` twins (torch 2.13): for each alias, torch's
class, its ``param_groups`` entry computed from the alias's arguments, and where each of
torch's per-parameter state tensors lives in the optjx state.

A stage state is found by its class name (``"TraceState"`` matches ``TraceStateWithCount``
too) anywhere in the chain, so the table does not depend on the stages' positions nor on
which of them keep a counter. Every ``count`` field of the chain is torch's ``step``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optjx.training import _torch_fields, _torch_lbfgs
from optjx.training._torch_fields import IMPLEMENTATION, Field, Twin


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
        optjx_derived=_torch_fields.radam_rectifier,
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
        torch_derived=_torch_fields.asgd_scalars,
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
                split=_torch_fields.split_adafactor,
                join=_torch_fields.join_adafactor,
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
