r"""Golden trajectories of the rest of ``torch.optim`` (torch 2.13 CPU, float64): NAdam,
Adamax, Rprop, ASGD, Adafactor and Muon, replayed by ``tests/test_torch_parity_more.py``.

Run from the repository root (torch never runs in the tests)::

    OMP_NUM_THREADS=1 python tests/golden/generate_torch_more.py

Writes ``tests/golden/torch_more/<name>.npz`` (a folder of its own: ``test_torch_parity.py``
replays every top-level file as one of its aliases). Same gradients (seeded, mixed signs and
four decades of scale, one all-zero step), file layout and schedule specs as
``generate.py`` (see its docstring), with:

* ``shapes`` in ``config``: the parameter tree (Muon takes matrices only: a wide and a
  tall one, so that its transpose is exercised; Adafactor gets a 3-d leaf, factored over
  its last two dimensions);
* ``average/<leaf>`` for ASGD: torch's ``ax`` after every step;
* ``ns_float64`` in ``config`` for Muon: torch's own Muon step with its Newton-Schulz
  iteration run in float64 instead of bfloat16 (``Tensor.bfloat16`` patched to a float64
  copy during ``step``), so that it can be matched at rtol 1e-9; the other Muon files are
  torch's plain bfloat16 iteration.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import torch
from generate import OUT, STEPS, ZERO_STEP, _spec, make_data, save_npz, schedule_fn  # noqa: I001

FOLDER = OUT / "torch_more"
SHAPES = {"bias": (3,), "kernel": (2, 3), "scale": ()}
ADAFACTOR_SHAPES = {"bias": (3,), "kernel": (4, 3), "scale": (), "stack": (2, 3, 4)}
MUON_SHAPES = {"wide": (3, 5), "tall": (6, 2)}
COSINE = _spec("cosine", 0.02, 24)

# (name, torch class, constructor keywords, {group key: schedule spec}, shapes, options)
CONFIGS = [
    ("nadam_default", "NAdam", {}, {}, SHAPES, {}),
    ("nadam_weight_decay", "NAdam", {"lr": 0.01, "weight_decay": 0.1}, {}, SHAPES, {}),
    (
        "nadam_decoupled_momentum_decay",
        "NAdam",
        {
            "lr": 0.01,
            "betas": [0.8, 0.99],
            "weight_decay": 0.1,
            "momentum_decay": 0.05,
            "decoupled_weight_decay": True,
        },
        {},
        SHAPES,
        {},
    ),
    ("nadam_cosine_schedule", "NAdam", {"eps": 1e-6}, {"lr": COSINE}, SHAPES, {}),
    ("adamax_default", "Adamax", {"lr": 0.01}, {}, SHAPES, {}),
    # eps large enough to win the maximum often
    (
        "adamax_weight_decay_eps",
        "Adamax",
        {"lr": 0.01, "betas": [0.8, 0.99], "eps": 0.05, "weight_decay": 0.1},
        {},
        SHAPES,
        {},
    ),
    ("adamax_cosine_schedule", "Adamax", {}, {"lr": COSINE}, SHAPES, {}),
    ("rprop_default", "Rprop", {}, {}, SHAPES, {}),
    # narrow bounds: both clamps are hit within the run
    (
        "rprop_etas_step_sizes",
        "Rprop",
        {"lr": 0.01, "etas": [0.3, 1.5], "step_sizes": [2e-3, 0.05]},
        {},
        SHAPES,
        {},
    ),
    ("asgd_default", "ASGD", {}, {}, SHAPES, {}),
    # t0 = 5: the uniform average starts after five steps
    (
        "asgd_averaging",
        "ASGD",
        {"lr": 0.05, "lambd": 0.01, "alpha": 0.6, "t0": 5.0, "weight_decay": 0.1},
        {},
        SHAPES,
        {},
    ),
    # torch reads lr for the next step's eta at the end of a step: a schedule enters late
    ("asgd_lr_schedule", "ASGD", {"lambd": 0.05, "t0": 3.0}, {"lr": COSINE}, SHAPES, {}),
    ("adafactor_default", "Adafactor", {}, {}, ADAFACTOR_SHAPES, {}),
    # lr = 0.5: rho_t = min(lr, 1/sqrt(t)) switches from lr to 1/sqrt(t) at t = 4
    (
        "adafactor_options",
        "Adafactor",
        {"lr": 0.5, "beta2_decay": -0.5, "eps": [1e-4, 1e-2], "d": 1.5, "weight_decay": 0.1},
        {},
        ADAFACTOR_SHAPES,
        {},
    ),
    (
        "adafactor_cosine_schedule",
        "Adafactor",
        {"weight_decay": 0.01},
        {"lr": COSINE},
        ADAFACTOR_SHAPES,
        {},
    ),
    ("muon_default_ns64", "Muon", {"lr": 0.02}, {}, MUON_SHAPES, {"ns_float64": True}),
    (
        "muon_options_ns64",
        "Muon",
        {
            "lr": 0.02,
            "weight_decay": 0.05,
            "momentum": 0.9,
            "nesterov": False,
            "ns_coefficients": [2.0, -1.5, 0.5],
            "ns_steps": 7,
            "eps": 1e-5,
            "adjust_lr_fn": "match_rms_adamw",
        },
        {},
        MUON_SHAPES,
        {"ns_float64": True},
    ),
    (
        "muon_cosine_schedule_ns64",
        "Muon",
        {"adjust_lr_fn": "original"},
        {"lr": COSINE},
        MUON_SHAPES,
        {"ns_float64": True},
    ),
    ("muon_default_bf16", "Muon", {"lr": 0.02}, {}, MUON_SHAPES, {}),
]


@contextlib.contextmanager
def newton_schulz_in_float64():
    """torch's Muon casts to bfloat16 once (``grad.bfloat16()``): make that cast a float64
    copy (a copy, as the cast is: the iteration divides it in place)."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self, *a, **k: self.detach().clone()
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original


def run(cls_name, kwargs, schedules, shapes, options):
    params0, grads = make_data(shapes)
    values = {
        key: schedule_fn(spec)(np.arange(STEPS, dtype=np.float64))
        for key, spec in schedules.items()
    }
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params0.items()}
    build = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    for key, vals in values.items():
        build[key] = float(vals[0])
    if cls_name != "Muon":  # the single-tensor loop, torch's reference implementation
        build["foreach"] = False
    opt = getattr(torch.optim, cls_name)(list(tensors.values()), **build)
    history = {k: [v.copy()] for k, v in params0.items()}
    averages = {k: [] for k in params0}
    precision = newton_schulz_in_float64 if options.get("ns_float64") else contextlib.nullcontext
    for step in range(STEPS):
        for key, vals in values.items():
            for group in opt.param_groups:
                group[key] = float(vals[step])
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][step], dtype=torch.float64)
        with precision():
            opt.step()
        for k, p in tensors.items():
            history[k].append(p.detach().numpy().copy())
            if cls_name == "ASGD":
                averages[k].append(opt.state[p]["ax"].numpy().copy())
    arrays = {f"grads/{k}": g for k, g in grads.items()}
    arrays.update({f"params/{k}": np.stack(h) for k, h in history.items()})
    arrays.update({f"schedule/{k}": v for k, v in values.items()})
    if cls_name == "ASGD":
        arrays.update({f"average/{k}": np.stack(a) for k, a in averages.items()})
    return arrays


def _check_regimes():
    # adafactor_options: rho_t = min(0.5, 1/sqrt(t)) is lr before t = 4, 1/sqrt(t) from it
    assert 1 / 3**0.5 > 0.5 >= 1 / 4**0.5
    # asgd_averaging: mu = 1/max(1, t - t0) leaves 1 after step t0 + 1
    assert 1 / max(1, 7 - 5.0) < 1


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_default_dtype(torch.float64)
    _check_regimes()
    FOLDER.mkdir(exist_ok=True)
    for name, cls_name, kwargs, schedules, shapes, options in CONFIGS:
        arrays = run(cls_name, kwargs, schedules, shapes, options)
        assert all(np.all(np.isfinite(v)) for v in arrays.values()), name
        config = {
            "name": name,
            "torch_optimizer": cls_name,
            "torch_kwargs": kwargs,
            "schedules": schedules,
            "shapes": {k: list(s) for k, s in shapes.items()},
            "steps": STEPS,
            "zero_step": ZERO_STEP,
            "torch_version": torch.__version__,
            **options,
        }
        arrays = {"config": np.array(json.dumps(config, sort_keys=True)), **arrays}
        path = FOLDER / f"{name}.npz"
        save_npz(path, arrays)
        print(f"{path.relative_to(OUT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
