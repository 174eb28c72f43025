"""One registry of every public optjx transformation, for the invariants in tests/invariants.

Everything here is derived from the cards (``tests/cards``: one ``Card`` per public name);
add an optimizer there, not here.

``ENTRIES``: each :class:`Entry` is one configuration of one public factory: the
defaults, and one or more that exercise its flags (nesterov, centered, amsgrad, decoupled
decay, threshold 4, grad_averaging, reset_state, masks, dtypes, schedule-valued
hyperparameters, ...). An entry says what driving it needs (params, the ``value=`` extra
argument, the loss itself for loss-driven methods) and which properties its algorithm has
(parameter step or descent direction, sign symmetry, linearity in the gradient, scale
invariance, per-leaf state).

``TUNED``: per public name, one optimizer with hyperparameters tuned for the convergence
invariant (a building block inside the smallest chain that makes it an optimizer).
``INVALID``: per public name, each hyperparameter with values that must raise
``ValueError`` naming it. ``tests/test_registry_complete.py`` fails when a public name
that builds a transformation has no card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cards
import numpy as np
from cards import NAN, QUADRATIC_STEPS, ROSENBROCK_STEPS, Entry, Tuned

import optjx

__all__ = ["NAN", "QUADRATIC_STEPS", "ROSENBROCK_STEPS", "Entry", "Tuned"]

ENTRIES: list[Entry] = [e for card in cards.CARDS for e in card.entries]
BY_ID: dict[str, Entry] = {e.id: e for e in ENTRIES}
assert len(BY_ID) == len(ENTRIES), "registry ids must be unique"
NAMES: list[str] = list(dict.fromkeys(e.name for e in ENTRIES))
TUNED: dict[str, Tuned] = {card.name: card.tuned for card in cards.CARDS}
INVALID: dict[str, dict[str, list]] = {card.name: card.invalid for card in cards.CARDS}


def first(name: str) -> Entry:
    """The first configuration of a public name."""
    return next(e for e in ENTRIES if e.name == name)


# Public names covered outside the registry, with the reason (checked by the meta-test).
COVERED_ELSEWHERE = {
    "param_groups": "an optax.partition of aliases that are in the registry; its init must "
    "raise ValueError for a group that matches no leaf (issue 13), which the invariants' "
    "empty and foreign trees always trigger. tests/training/test_param_groups.py replays "
    "torch goldens and checks Linen, NNX, masked trees and the errors",
    "chain": "optax's own combinator, re-exported unchanged; every alias in the registry is "
    "a chain of optjx stages, so chain runs through every invariant",
    "cross_replica_mean": "needs a mapped axis name bound by pmap or shard_map: invariant 9 "
    "runs it first in a chain around every registry entry under pmap, and "
    "tests/parallel/test_cross_replica_mean.py covers it under shard_map",
}

# Public callables that do not build a transformation (checked by the meta-test).
NOT_TRANSFORMS = {
    "apply_updates": "applies updates to params (optax's, re-exported)",
    "global_norm": "a function of a tree (the norm that clip_by_global_norm uses)",
    "slow_params": "accessor: reads lookahead's slow weights from a state",
    "averaged_params": "accessor: reads polyak_averaging's average from a state",
    "schedules": "module of schedules count -> value (invariant 10 covers every one)",
    "parallel": "module: cross_replica_mean (above) and sharding helpers",
    "diagnostics": "accessor: reads monitor's records (and other stages' counters) from a state",
    "group_of": "accessor: the tree of group names a param_groups transformation gives params",
    "schedule_free_eval_params": "accessor: the evaluation weights x of a schedule-free state",
    "schedule_free_train_params": "accessor: the training params y from x (the inverse)",
    "early_stopping": "returns EarlyStopping(init, update) over (state, value, params), called "
    "after each evaluation, not a gradient transformation (tests/training/test_early_stopping.py)",
    "from_torch_state": "converts a torch.optim state dict into an alias's state "
    "(tests/training/test_torch_state.py)",
    "to_torch_state": "converts an alias's state into a torch.optim state dict "
    "(tests/training/test_torch_state.py)",
}


# Flag combinations that must raise ValueError naming the flag.
INVALID_COMBINATIONS: dict[str, tuple[Callable[[], Any], str]] = {
    "sgd nesterov without momentum": (lambda: optjx.sgd(0.1, nesterov=True), "nesterov"),
    "rmsprop nesterov without momentum": (lambda: optjx.rmsprop(0.1, nesterov=True), "nesterov"),
    "trace nesterov with dampening": (
        lambda: optjx.trace(0.9, nesterov=True, dampening=0.5),
        "dampening",
    ),
    "trace nesterov without momentum": (lambda: optjx.trace(0.0, nesterov=True), "nesterov"),
    "sgd nesterov with dampening": (
        lambda: optjx.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True),
        "dampening",
    ),
    "radam decoupled negative weight decay": (
        lambda: optjx.radam(1e-3, weight_decay=-0.1, decoupled_weight_decay=True),
        "weight_decay",
    ),
}


# ------------------------------------------------------------ loss-driven methods
# Methods whose update calls the loss (value_fn=): random gradients cannot drive them, so
# tests/invariants/test_inv_loss_driven.py runs these entries on a loss instead.
_NONNEG = [-1e-3, NAN]
_cosine = optjx.schedules.cosine
_linear = optjx.schedules.linear
E = Entry
LOSS_DRIVEN: list[Entry] = [
    E("lbfgs", "defaults"),
    E("lbfgs", "strong-wolfe-history-3-lr-schedule",
      dict(learning_rate=_cosine(1.0, 10), line_search_fn="strong_wolfe", history_size=3,
           max_iter=5)),
    E("lbfgs", "stochastic-max-iter-1", dict(learning_rate=0.1, max_iter=1)),
    E("conjugate_gradient", "polak-ribiere", dict(max_iter=5)),
    E("conjugate_gradient", "fletcher-reeves-restart-3",
      dict(beta="fletcher_reeves", restart_every=3, max_iter=5, respect_max_eval=True)),
    E("conjugate_gradient", "dai-yuan", dict(beta="dai_yuan", max_iter=5)),
    E("bfgs", "defaults"),
    E("bfgs", "max-iter-1-tolerance-schedule-c2-0.5",
      dict(max_iter=1, tolerance_grad=_linear(1e-3, 1e-6, 10), c1=1e-3, c2=0.5)),
    E("bfgs", "max-iter-4-max-eval-3-xrtol", dict(max_iter=4, max_eval=3, tolerance_step=1e-12)),
    E("lbfgs_b", "defaults"),
    E("lbfgs_b", "box-history-3-max-iter-2", dict(lower=-0.5, upper=0.5, history_size=3, max_iter=2)),
    E("lbfgs_b", "lower-max-eval-3", dict(lower=-1.0, max_eval=3, max_line_search=5)),
]  # fmt: skip
_TOL = {"learning_rate": [-0.1, NAN], "tolerance_grad": _NONNEG, "tolerance_change": _NONNEG,
        "max_iter": [0, 1.5, True], "max_eval": [0, 2.5]}  # fmt: skip
INVALID_LOSS_DRIVEN: dict[str, dict[str, list]] = {
    "lbfgs": {**_TOL, "history_size": [0, 2.0], "line_search_fn": ["wolfe", "backtracking"]},
    "conjugate_gradient": {**_TOL, "beta": ["pr", "FR"], "c1": [0.0, 1.0, NAN],
                           "c2": [0.0, 1.5, NAN], "restart_every": [0, 1.5]},
    "bfgs": {"max_iter": [0, 1.5, True], "max_eval": [0, 2.5], "tolerance_grad": _NONNEG,
             "tolerance_step": _NONNEG, "c1": [0.0, 1.0, 0.95, NAN], "c2": [0.0, 1.0, 1e-5, NAN]},
    "lbfgs_b": {"max_iter": [0, 1.5, True], "max_eval": [0, 2.5], "tolerance_grad": _NONNEG,
                "tolerance_change": _NONNEG, "history_size": [0, 2.0],
                "max_line_search": [0, 1.5], "lower": [NAN], "upper": [NAN]},
}  # fmt: skip
COVERED_ELSEWHERE["lbfgs"] = (
    "loss-driven: LOSS_DRIVEN entries, tests/invariants/test_inv_loss_driven.py"
)
COVERED_ELSEWHERE["conjugate_gradient"] = COVERED_ELSEWHERE["lbfgs"]
COVERED_ELSEWHERE["bfgs"] = COVERED_ELSEWHERE["lbfgs"] + " and test_inv_loss_driven_bfgs.py"
COVERED_ELSEWHERE["lbfgs_b"] = COVERED_ELSEWHERE["lbfgs"] + " and tests/full_batch/test_lbfgs_b.py"
NOT_TRANSFORMS["strong_wolfe"] = "a line search (a function of a loss), used by lbfgs and CG"
NOT_TRANSFORMS["more_thuente"] = "a line search (a function of a loss), used by bfgs"
NOT_TRANSFORMS["stop_reason"] = "accessor: the name of a full-batch state's stop reason"
NOT_TRANSFORMS["recompute_batch_stats"] = (
    "a pass over batches that recomputes a Flax Linen model's BatchNorm statistics "
    "(tests/training/test_batch_stats.py)"
)
NOT_TRANSFORMS["recompute_batch_stats_nnx"] = (
    "a pass over batches that recomputes a Flax NNX model's BatchNorm statistics in place "
    "(tests/training/test_batch_stats.py)"
)
# Least squares: update(grads, state, params, residual_fn=...) needs the residuals, which
# the harness's drivers (random gradients, or value=/value_fn= of a scalar loss) do not give:
# tests/invariants/test_inv_least_squares.py runs these entries on residuals instead.
LEAST_SQUARES: list[Entry] = [
    E("gauss_newton", "defaults"),
    E("gauss_newton", "cg-max-iter-3-tolerance-schedule",
      dict(solver="cg", max_iter=3, tolerance_grad=_linear(1e-3, 1e-6, 10), cg_max_iter=6,
           cg_tolerance=1e-8)),
    E("levenberg_marquardt", "defaults"),
    E("levenberg_marquardt", "cg-diag-max-iter-3-factor-schedule",
      dict(solver="cg", max_iter=3, max_eval=12, ftol=1e-6, xtol=1e-7, gtol=1e-9,
           factor=_cosine(1.0, 10), diag=np.full(8, 2.0), cg_max_iter=8, cg_tolerance=1e-9)),
]  # fmt: skip
_CG = {"solver": ["qr", "Dense"], "cg_max_iter": [0, 1.5], "cg_tolerance": _NONNEG}
INVALID_LEAST_SQUARES: dict[str, dict[str, list]] = {
    "gauss_newton": {"max_iter": [0, 1.5, True], "tolerance_grad": _NONNEG, **_CG},
    "levenberg_marquardt": {"max_iter": [0, 1.5, True], "max_eval": [0, 2.5],
                            "ftol": _NONNEG, "xtol": _NONNEG, "gtol": _NONNEG,
                            "factor": [0.0, -1.0, NAN], "diag": [np.array([1.0, 0.0]),
                            np.array([NAN, 1.0])], **_CG},
}  # fmt: skip
COVERED_ELSEWHERE["gauss_newton"] = (
    "needs residual_fn=, not value_fn=: LEAST_SQUARES entries, "
    "tests/invariants/test_inv_least_squares.py (and tests/full_batch/test_least_squares.py)"
)
COVERED_ELSEWHERE["levenberg_marquardt"] = COVERED_ELSEWHERE["gauss_newton"]
NOT_TRANSFORMS["minimize"] = "runs an optimizer to convergence (tests/full_batch/test_minimize.py)"
