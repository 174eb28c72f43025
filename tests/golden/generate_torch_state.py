r"""Golden torch optimizer states (torch 2.13 CPU, float64) for ``optjx.from_torch_state``
and ``to_torch_state``, replayed by ``tests/training/test_torch_state.py``.

Run from the repository root (torch never runs in the tests)::

    OMP_NUM_THREADS=1 python tests/golden/generate_torch_state.py

For each optimizer, torch runs ``K`` steps from seeded parameters and gradients, its
``state_dict()`` is saved, and it continues ``M`` steps. Writes
``tests/golden/torch_state/<name>.npz`` with:

* ``params_k/<leaf>``, ``params_km/<leaf>``: the parameters after ``K`` and ``K + M`` steps;
* ``grads/<leaf>``: the ``M`` gradients of the continuation (shape ``(M, *leaf)``);
* ``state/<i>/<key>``: every tensor of the state dict, for parameter ``i``;
* ``config``: JSON with the alias and its keywords, torch's class and keywords, and the
  state dict's nested structure (``state``: the keys per parameter; ``param_groups`` as
  torch returns them, tuples as lists).

The parameters are a dict, so torch's parameter order is the sorted leaf names, which is
``jax.tree.leaves`` order. Muon runs its Newton-Schulz iteration in float64 (as in
``generate_torch_more.py``) so that optjx's ``ns_dtype=None`` matches it at rtol 1e-9.
"""

from __future__ import annotations

import contextlib
import copy
import json

import numpy as np
import torch
from generate import OUT, save_npz  # noqa: I001
from generate_torch_more import ADAFACTOR_SHAPES, MUON_SHAPES, newton_schulz_in_float64

FOLDER = OUT / "torch_state"
K, M = 4, 4
SEED = 20261206
SHAPES = {"bias": (3,), "kernel": (2, 3), "scale": ()}

# (name, torch class, torch keywords, optjx alias, alias keywords, shapes)
CONFIGS = [
    ("sgd_plain", "SGD", {"lr": 0.1}, "sgd", {"learning_rate": 0.1}, SHAPES),
    (
        "sgd_momentum_dampening",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        "sgd",
        {"learning_rate": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        SHAPES,
    ),
    (
        "sgd_nesterov",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        "sgd",
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        SHAPES,
    ),
    (
        "adam_amsgrad_weight_decay",
        "Adam",
        {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
        "adam",
        {"learning_rate": 0.01, "amsgrad": True, "weight_decay": 0.1},
        SHAPES,
    ),
    ("adamw_default", "AdamW", {"lr": 0.01}, "adamw", {"learning_rate": 0.01}, SHAPES),
    (
        "rmsprop_centered_momentum",
        "RMSprop",
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
        "rmsprop",
        {
            "learning_rate": 0.01,
            "decay": 0.9,
            "momentum": 0.5,
            "centered": True,
            "weight_decay": 0.01,
        },
        SHAPES,
    ),
    (
        "adagrad",
        "Adagrad",
        {"lr": 0.1, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
        "adagrad",
        {"learning_rate": 0.1, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
        SHAPES,
    ),
    (
        "adadelta",
        "Adadelta",
        {"lr": 1.0, "rho": 0.8, "weight_decay": 0.01},
        "adadelta",
        {"learning_rate": 1.0, "rho": 0.8, "weight_decay": 0.01},
        SHAPES,
    ),
    # b2 = 0.99: the rectified step switches on at t = 6, inside the continuation
    (
        "radam_rectification",
        "RAdam",
        {"lr": 0.01, "betas": [0.9, 0.99]},
        "radam",
        {"learning_rate": 0.01, "b2": 0.99},
        SHAPES,
    ),
    (
        "nadam_decoupled",
        "NAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        "nadam",
        {"learning_rate": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        SHAPES,
    ),
    (
        "adamax",
        "Adamax",
        {"lr": 0.01, "weight_decay": 0.1},
        "adamax",
        {"learning_rate": 0.01, "weight_decay": 0.1},
        SHAPES,
    ),
    (
        "rprop",
        "Rprop",
        {"lr": 0.01, "etas": [0.3, 1.5], "step_sizes": [2e-3, 0.05]},
        "rprop",
        {"learning_rate": 0.01, "etas": [0.3, 1.5], "step_sizes": [2e-3, 0.05]},
        SHAPES,
    ),
    # t0 = 3: the uniform average has started when the state is converted
    (
        "asgd_averaging",
        "ASGD",
        {"lr": 0.05, "lambd": 0.01, "alpha": 0.6, "t0": 3.0, "weight_decay": 0.1},
        "asgd",
        {"learning_rate": 0.05, "lambd": 0.01, "alpha": 0.6, "t0": 3.0, "weight_decay": 0.1},
        SHAPES,
    ),
    (
        "adafactor",
        "Adafactor",
        {"lr": 0.5, "beta2_decay": -0.5, "eps": [1e-4, 1e-2], "d": 1.5, "weight_decay": 0.1},
        "adafactor",
        {
            "learning_rate": 0.5,
            "beta2_decay": -0.5,
            "eps": [1e-4, 1e-2],
            "d": 1.5,
            "weight_decay": 0.1,
        },
        ADAFACTOR_SHAPES,
    ),
    (
        "muon_ns64",
        "Muon",
        {"lr": 0.02},
        "muon",
        {"learning_rate": 0.02, "ns_dtype": None},
        MUON_SHAPES,
    ),
]


def make_data(shapes):
    rng = np.random.default_rng(SEED)
    names = sorted(shapes)
    params = {k: rng.uniform(-1.0, 1.0, shapes[k]) * 2.0 for k in names}
    grads = {k: rng.standard_normal((K + M, *shapes[k])) for k in names}
    return params, grads


def torch_steps(cls_name, kwargs, params, grads, steps, state_dict=None):
    """Run torch from ``params`` (optionally loading ``state_dict``); return the new params
    and the state dict (a deep copy: torch's own shares tensors with the optimizer)."""
    names = sorted(params)
    tensors = [torch.nn.Parameter(torch.tensor(params[k], dtype=torch.float64)) for k in names]
    optimizer = getattr(torch.optim, cls_name)(tensors, **kwargs)
    if state_dict is not None:
        optimizer.load_state_dict(copy.deepcopy(state_dict))
    patch = newton_schulz_in_float64() if cls_name == "Muon" else contextlib.nullcontext()
    with patch:
        for t in steps:
            for tensor, k in zip(tensors, names, strict=True):
                tensor.grad = torch.tensor(grads[k][t], dtype=torch.float64)
            optimizer.step()
    after = {k: tensor.detach().numpy().copy() for tensor, k in zip(tensors, names, strict=True)}
    return after, copy.deepcopy(optimizer.state_dict())


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_default_dtype(torch.float64)
    FOLDER.mkdir(exist_ok=True)
    for name, cls_name, kwargs, alias, alias_kwargs, shapes in CONFIGS:
        params0, grads = make_data(shapes)
        params_k, state_dict = torch_steps(cls_name, kwargs, params0, grads, range(K))
        params_km, _ = torch_steps(cls_name, kwargs, params_k, grads, range(K, K + M), state_dict)
        arrays = {}
        for k in sorted(shapes):
            arrays[f"params_k/{k}"] = params_k[k]
            arrays[f"params_km/{k}"] = params_km[k]
            arrays[f"grads/{k}"] = grads[k][K:]
        for i, entry in state_dict["state"].items():
            for key, value in entry.items():
                arrays[f"state/{i}/{key}"] = value.detach().numpy()
        structure = {
            "state": {str(i): list(entry) for i, entry in state_dict["state"].items()},
            "param_groups": [
                {key: _plain(value) for key, value in group.items()}
                for group in state_dict["param_groups"]
            ],
        }
        config = {
            "alias": alias,
            "alias_kwargs": alias_kwargs,
            "torch_class": cls_name,
            "torch_kwargs": kwargs,
            "k": K,
            "m": M,
            "structure": structure,
        }
        arrays["config"] = np.array(json.dumps(config))
        save_npz(FOLDER / f"{name}.npz", arrays)
        print(name, sorted(structure["state"].get("0", [])))


if __name__ == "__main__":
    main()
