r"""Golden trajectories for the training-loop pieces: parameter groups and per-epoch
schedules, from ``torch.optim`` (torch 2.13 CPU, float64). Called at the end of
``generate.py``'s ``main``; also runs alone (``python tests/golden/generate_training.py``).

* ``param_groups_<name>.npz``: ``torch.optim.AdamW`` / ``SGD`` with two or three param
  groups (different lr, weight decay, momentum), one leaf per group or two; ``config``
  holds the groups as ``[[leaf names], {torch keyword: value}]`` and the defaults.
* ``per_epoch_<name>.npz``: ``torch.optim.SGD`` driven by ``MultiStepLR`` or ``StepLR``,
  ``scheduler.step()`` called once per epoch of ``STEPS_PER_EPOCH`` updates;
  ``schedule/lr`` holds the rate torch used at every update.

Same parameter tree, gradients (seeded, one all-zero step) and file layout as
``generate.py``.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from generate import OUT, STEPS, ZERO_STEP, make_data, save_npz  # noqa: I001

STEPS_PER_EPOCH = 4  # STEPS = 32 updates: 8 epochs

# name -> (torch class, defaults, [(leaf names, overrides)])
PARAM_GROUPS = {
    "adamw_two_groups": (
        "AdamW",
        {"lr": 0.02, "weight_decay": 0.0},
        [(["kernel"], {"lr": 0.01, "weight_decay": 0.1})],
    ),
    "adamw_three_groups": (
        "AdamW",
        {"lr": 0.02, "weight_decay": 0.05},
        [
            (["kernel"], {"lr": 0.01, "weight_decay": 0.1}),
            (["bias"], {"lr": 0.005, "weight_decay": 0.0}),
        ],
    ),
    "sgd_two_groups": (
        "SGD",
        {"lr": 0.1, "momentum": 0.9},
        [(["kernel", "scale"], {"lr": 0.05, "weight_decay": 0.01})],
    ),
    "sgd_three_groups": (
        "SGD",
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
        [
            (["kernel"], {"lr": 0.05, "weight_decay": 0.01}),
            (["bias"], {"lr": 0.02, "momentum": 0.5, "nesterov": False}),
        ],
    ),
}

# name -> (torch scheduler, its keywords); SGD(lr=0.1, momentum=0.9) underneath
PER_EPOCH = {
    "multistep": ("MultiStepLR", {"milestones": [2, 5], "gamma": 0.1}),
    "step": ("StepLR", {"step_size": 3, "gamma": 0.5}),
}


def _run_groups(cls_name, defaults, groups, params0, grads):
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params0.items()}
    grouped = {name for names, _ in groups for name in names}
    torch_groups = [{"params": [tensors[n] for n in names], **over} for names, over in groups]
    rest = [t for k, t in tensors.items() if k not in grouped]
    if rest:
        torch_groups.append({"params": rest})
    opt = getattr(torch.optim, cls_name)(torch_groups, foreach=False, **defaults)
    history = {k: [v.copy()] for k, v in params0.items()}
    for step in range(STEPS):
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][step], dtype=torch.float64)
        opt.step()
        for k, p in tensors.items():
            history[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in history.items()}


def _run_per_epoch(scheduler, kwargs, params0, grads):
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params0.items()}
    opt = torch.optim.SGD(list(tensors.values()), lr=0.1, momentum=0.9, foreach=False)
    sched = getattr(torch.optim.lr_scheduler, scheduler)(opt, **kwargs)
    history = {k: [v.copy()] for k, v in params0.items()}
    rates = []
    for step in range(STEPS):
        rates.append(opt.param_groups[0]["lr"])
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][step], dtype=torch.float64)
        opt.step()
        if (step + 1) % STEPS_PER_EPOCH == 0:
            sched.step()  # once per epoch, as torch's epoch schedulers are used
        for k, p in tensors.items():
            history[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in history.items()}, np.array(rates)


def _save(name, config, grads, history, extra=None):
    config = {**config, "name": name, "steps": STEPS, "zero_step": ZERO_STEP,
              "torch_version": torch.__version__}  # fmt: skip
    arrays = {"config": np.array(json.dumps(config, sort_keys=True))}
    arrays.update({f"grads/{k}": g for k, g in grads.items()})
    arrays.update({f"params/{k}": h for k, h in history.items()})
    arrays.update(extra or {})
    path = OUT / f"{name}.npz"
    save_npz(path, arrays)
    print(f"{path.name}: {path.stat().st_size} bytes")


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_default_dtype(torch.float64)
    params0, grads = make_data()
    for name, (cls_name, defaults, groups) in PARAM_GROUPS.items():
        history = _run_groups(cls_name, defaults, groups, params0, grads)
        assert all(np.all(np.isfinite(h)) for h in history.values()), name
        config = {"torch_optimizer": cls_name, "defaults": defaults, "groups": groups}
        _save(f"param_groups_{name}", config, grads, history)
    for name, (scheduler, kwargs) in PER_EPOCH.items():
        history, rates = _run_per_epoch(scheduler, kwargs, params0, grads)
        config = {"torch_optimizer": "SGD", "torch_kwargs": {"lr": 0.1, "momentum": 0.9},
                  "scheduler": scheduler, "scheduler_kwargs": kwargs,
                  "steps_per_epoch": STEPS_PER_EPOCH}  # fmt: skip
        _save(f"per_epoch_{name}", config, grads, history, {"schedule/lr": rates})


if __name__ == "__main__":
    main()
