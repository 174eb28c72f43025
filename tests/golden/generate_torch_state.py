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
``jax.tree.leaves`` order. LBFGS runs on a loss instead (a Rosenbrock function of the
leaves raveled and concatenated), so it has no ``grads``; its state has lists (stacked:
``state/0/old_dirs`` is ``(pairs, n)``, named in ``structure["lists"]``) and Python
numbers (``structure["numbers"]``), and its scratch ``al`` is not kept (optjx neither
reads nor writes it). Muon runs its Newton-Schulz iteration in float64 (as in
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


LBFGS_SHAPES = {"a": (3,), "b": (2, 2)}
# (name, torch keywords, alias keywords): history 3 < the iterations, so the memory wraps
LBFGS_CONFIGS = [
    (
        "lbfgs_fixed_history3",
        {"max_iter": 4, "history_size": 3, "lr": 0.5},
        {"max_iter": 4, "history_size": 3, "learning_rate": 0.5},
    ),
    (
        "lbfgs_wolfe_history3",
        {"max_iter": 4, "history_size": 3, "line_search_fn": "strong_wolfe"},
        {"max_iter": 4, "history_size": 3, "line_search_fn": "strong_wolfe"},
    ),
]
LBFGS_K, LBFGS_M = 2, 2


def rosenbrock(tensors):
    x = torch.cat([t.reshape(-1) for t in tensors])
    return torch.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def lbfgs_steps(kwargs, params, steps, state_dict=None):
    names = sorted(params)
    tensors = [torch.nn.Parameter(torch.tensor(params[k], dtype=torch.float64)) for k in names]
    optimizer = torch.optim.LBFGS(tensors, **kwargs)
    if state_dict is not None:
        optimizer.load_state_dict(copy.deepcopy(state_dict))

    def closure():
        optimizer.zero_grad()
        value = rosenbrock(tensors)
        value.backward()
        return value

    for _ in range(steps):
        optimizer.step(closure)
    after = {k: tensor.detach().numpy().copy() for tensor, k in zip(tensors, names, strict=True)}
    return after, copy.deepcopy(optimizer.state_dict())


def save_lbfgs():
    rng = np.random.default_rng(SEED)
    params0 = {k: rng.uniform(-1.5, 1.5, s) for k, s in sorted(LBFGS_SHAPES.items())}
    for name, kwargs, alias_kwargs in LBFGS_CONFIGS:
        params_k, state_dict = lbfgs_steps(kwargs, params0, LBFGS_K)
        params_km, _ = lbfgs_steps(kwargs, params_k, LBFGS_M, state_dict)
        arrays = {}
        for k in params0:
            arrays[f"params_k/{k}"] = params_k[k]
            arrays[f"params_km/{k}"] = params_km[k]
        entry = {k: v for k, v in state_dict["state"][0].items() if k != "al"}
        lists = [k for k, v in entry.items() if isinstance(v, list)]
        numbers = [k for k, v in entry.items() if isinstance(v, (int, float))]
        for key, value in entry.items():
            if key in lists:
                stacked = [v.detach().numpy() for v in value]
                arrays[f"state/0/{key}"] = np.stack(stacked) if stacked else np.zeros((0,))
            else:
                arrays[f"state/0/{key}"] = np.asarray(
                    value if key in numbers else value.detach().numpy()
                )
        structure = {
            "state": {"0": list(entry)},
            "lists": lists,
            "numbers": numbers,
            "param_groups": [
                {key: _plain(value) for key, value in group.items()}
                for group in state_dict["param_groups"]
            ],
        }
        config = {
            "alias": "lbfgs",
            "alias_kwargs": alias_kwargs,
            "torch_class": "LBFGS",
            "torch_kwargs": kwargs,
            "k": LBFGS_K,
            "m": LBFGS_M,
            "structure": structure,
        }
        arrays["config"] = np.array(json.dumps(config))
        save_npz(FOLDER / f"{name}.npz", arrays)
        print(name, sorted(entry), "pairs", len(entry.get("old_dirs", [])))


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
    save_lbfgs()


if __name__ == "__main__":
    main()
