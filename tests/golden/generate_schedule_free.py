r"""Write the ``schedulefree`` 1.4.1 golden trajectories that
``tests/wrappers/test_schedule_free_golden.py`` replays.

Needs torch 2.13 (CPU build) and ``schedulefree`` 1.4.1; CI never runs this file and the
tests import neither. Run from the repository root (``generate.py`` calls it too)::

    python tests/golden/generate_schedule_free.py   # rewrites tests/golden/schedule_free/*.npz

The files sit in their own folder: ``tests/test_torch_parity.py`` replays every ``.npz``
at the top of ``tests/golden`` as a ``torch.optim`` alias.

Every configuration runs one ``schedulefree`` optimizer in float64 (the single-tensor
loop, ``foreach=False``) on four leaves of different shapes for ``STEPS`` steps, feeding
seeded gradients (standard normal times ``10**u``, ``u ~ U(-2, 1)``; one all-zero step).
Each ``<name>.npz`` holds:

* ``config``: JSON with the reference class, its keyword arguments, the optjx factory
  and keyword arguments that must reproduce it, and the versions;
* ``grads/<leaf>``: the gradients, shape ``(STEPS, *leaf_shape)``;
* ``y/<leaf>``: the params (the training point ``y``) before the first step and after
  every step, shape ``(STEPS + 1, *leaf_shape)``;
* ``x/<leaf>``: the evaluation point ``x`` at the same times, computed as the
  reference's ``eval()`` computes it (``lerp(y, z, 1 - 1/momentum)``) on copies, so the
  training trajectory is not perturbed by ``eval()``/``train()`` round trips.

Wrapper configurations wrap ``torch.optim.SGD(momentum=0)`` or ``torch.optim.RMSprop``.
A warm-up there is a ``LambdaLR`` on the base optimizer (the wrapper has none), which
sets ``lr * min(1, (k + 1) / n)`` before step ``k``, as the built-in warm-ups do.
``ScheduleFreeWrapper`` keeps ``z`` in the base optimizer's state, so around RMSprop
(which creates its state on its first step) it raises ``KeyError`` on the first step in
torch 2.13; one RMSprop step on zero gradients before wrapping creates that state and
moves nothing (the square average stays 0, the step is ``0 / eps``).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import generate  # noqa: E402
from generate import save_npz  # noqa: E402

STEPS = 32
ZERO_STEP = 11
SEED = 20241210
SHAPES = {"bias": (3,), "kernel": (2, 3), "scale": (), "conv": (2, 1, 2)}
OUT = pathlib.Path(__file__).resolve().parent / "schedule_free"
WARMUP = 5

_DECAY_R = {"weight_decay": 0.05, "r": 0.75}

# (name, reference class, reference kwargs, optjx factory, optjx kwargs)
CONFIGS = [
    ("sgd_plain", "SGDScheduleFree", {"lr": 0.5}, "sgd_schedule_free", {"learning_rate": 0.5}),
    ("sgd_warmup_decay_r", "SGDScheduleFree",
     {"lr": 0.5, "momentum": 0.8, "warmup_steps": WARMUP, **_DECAY_R},
     "sgd_schedule_free",
     {"learning_rate": 0.5, "momentum": 0.8, "warmup_steps": WARMUP, **_DECAY_R}),
    ("adamw_plain", "AdamWScheduleFree", {"lr": 0.02}, "adamw_schedule_free",
     {"learning_rate": 0.02}),
    ("adamw_warmup_decay_r", "AdamWScheduleFree",
     {"lr": 0.02, "betas": [0.95, 0.99], "warmup_steps": WARMUP, "weight_lr_power": 1.5,
      **_DECAY_R},
     "adamw_schedule_free",
     {"learning_rate": 0.02, "b1": 0.95, "b2": 0.99, "warmup_steps": WARMUP,
      "weight_lr_power": 1.5, **_DECAY_R}),
    ("adamw_paper_plain", "AdamWScheduleFreePaper", {"lr": 0.02}, "adamw_schedule_free",
     {"learning_rate": 0.02, "variant": "paper"}),
    ("adamw_paper_warmup_decay_r", "AdamWScheduleFreePaper",
     {"lr": 0.02, "warmup_steps": WARMUP, "eps": 1e-6, **_DECAY_R}, "adamw_schedule_free",
     {"learning_rate": 0.02, "warmup_steps": WARMUP, "eps": 1e-6, "variant": "paper",
      **_DECAY_R}),
    # b2 = 0.99: rho_t passes 4 at t = 5, so both phases are in the trajectory
    ("radam_plain", "RAdamScheduleFree", {"lr": 0.02, "betas": [0.9, 0.99]},
     "radam_schedule_free", {"learning_rate": 0.02, "b2": 0.99}),
    ("radam_sgd_phase_decay_r", "RAdamScheduleFree",
     {"lr": 0.02, "betas": [0.9, 0.99], "silent_sgd_phase": False, **_DECAY_R},
     "radam_schedule_free",
     {"learning_rate": 0.02, "b2": 0.99, "silent_sgd_phase": False, **_DECAY_R}),
    ("radam_default_b2", "RAdamScheduleFree", {"lr": 0.02}, "radam_schedule_free",
     {"learning_rate": 0.02}),
    # ScheduleFreeWrapper around torch.optim.SGD(momentum=0): optjx.schedule_free(identity)
    ("wrap_sgd_plain", "ScheduleFreeWrapper",
     {"base": "SGD", "base_kwargs": {"lr": 0.5}, "momentum": 0.9},
     "schedule_free", {"direction": "identity", "learning_rate": 0.5, "momentum": 0.9}),
    ("wrap_sgd_warmup_decay_r", "ScheduleFreeWrapper",
     {"base": "SGD", "base_kwargs": {"lr": 0.5}, "warmup_steps": WARMUP, "momentum": 0.8,
      "weight_decay_at_y": 0.05, "r": 0.75},
     "schedule_free",
     {"direction": "identity", "learning_rate": 0.5, "warmup_steps": WARMUP,
      "momentum": 0.8, "weight_decay_at_y": 0.05, "r": 0.75}),
    # the base's own weight decay acts at z: optjx's add_decayed_weights sees z as params
    ("wrap_sgd_decay_at_z", "ScheduleFreeWrapper",
     {"base": "SGD", "base_kwargs": {"lr": 0.5, "weight_decay": 0.05}, "momentum": 0.9},
     "schedule_free", {"direction": "decay_at_z_0.05", "learning_rate": 0.5}),
    ("wrap_rmsprop_plain", "ScheduleFreeWrapper",
     {"base": "RMSprop", "base_kwargs": {"lr": 0.01, "alpha": 0.99}, "momentum": 0.9},
     "schedule_free", {"direction": "rms_0.99", "learning_rate": 0.01}),
    ("wrap_rmsprop_warmup_decay_r", "ScheduleFreeWrapper",
     {"base": "RMSprop", "base_kwargs": {"lr": 0.01, "alpha": 0.99}, "momentum": 0.9,
      "warmup_steps": WARMUP, "weight_decay_at_y": 0.05, "r": 0.75, "weight_lr_power": 1.0},
     "schedule_free",
     {"direction": "rms_0.99", "learning_rate": 0.01, "warmup_steps": WARMUP,
      "weight_decay_at_y": 0.05, "r": 0.75, "weight_lr_power": 1.0}),
]  # fmt: skip


def make_data():
    return generate.make_data(SHAPES, steps=STEPS, zero_step=ZERO_STEP, seed=SEED)


def _warmup(steps):
    return lambda k: min(1.0, (k + 1) / steps) if steps else 1.0


def build(cls_name, kwargs, tensors):
    """The reference optimizer, its momentum, a ``z`` getter and an lr scheduler (or None)."""
    import schedulefree

    params = list(tensors.values())
    kwargs = dict(kwargs)
    if cls_name != "ScheduleFreeWrapper":
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        opt = getattr(schedulefree, cls_name)(params, foreach=False, **kwargs)
        momentum = kwargs.get("betas", (kwargs.get("momentum", 0.9),))[0]
        return opt, momentum, None
    base_cls = getattr(torch.optim, kwargs.pop("base"))
    base = base_cls(params, foreach=False, **kwargs.pop("base_kwargs"))
    if base_cls is torch.optim.RMSprop:
        for p in params:  # create RMSprop's lazy state (the KeyError of the docstring)
            p.grad = torch.zeros_like(p)
        before = [p.clone() for p in params]
        base.step()
        assert all(torch.equal(a, b) for a, b in zip(before, params, strict=True))
    warmup = kwargs.pop("warmup_steps", 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(base, _warmup(warmup)) if warmup else None
    opt = schedulefree.ScheduleFreeWrapper(base, **kwargs)
    return opt, kwargs.get("momentum", 0.9), scheduler


def run(cls_name, kwargs, params0, grads):
    # ScheduleFreeWrapper's byte-view swap fails on 0-d tensors: a scalar leaf is held
    # as shape (1,) there (the rule is elementwise) and stored with its own shape.
    wrapper = cls_name == "ScheduleFreeWrapper"
    tensors = {
        k: torch.tensor(v, dtype=torch.float64).reshape(-1 if wrapper and v.ndim == 0 else v.shape)
        for k, v in params0.items()
    }
    opt, momentum, scheduler = build(cls_name, kwargs, tensors)
    opt.train()
    ys = {k: [v.copy()] for k, v in params0.items()}
    xs = {k: [v.copy()] for k, v in params0.items()}
    for step in range(STEPS):
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][step], dtype=torch.float64).reshape(p.shape)
        opt.step()
        if scheduler is not None:
            scheduler.step()
        for k, p in tensors.items():
            z = opt.state[p]["z"]
            shape = SHAPES[k]
            ys[k].append(p.detach().numpy().copy().reshape(shape))
            xs[k].append(torch.lerp(p, z, 1 - 1 / momentum).numpy().copy().reshape(shape))
    return {k: np.stack(v) for k, v in ys.items()}, {k: np.stack(v) for k, v in xs.items()}


def main():
    import schedulefree

    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    version = getattr(schedulefree, "__version__", None)
    torch.set_default_dtype(torch.float64)
    OUT.mkdir(exist_ok=True)
    params0, grads = make_data()
    for name, cls_name, kwargs, factory, optjx_kwargs in CONFIGS:
        ys, xs = run(cls_name, kwargs, params0, grads)
        assert all(np.all(np.isfinite(v)) for v in (*ys.values(), *xs.values())), name
        config = {
            "name": name,
            "reference": cls_name,
            "reference_kwargs": kwargs,
            "optjx": factory,
            "optjx_kwargs": optjx_kwargs,
            "steps": STEPS,
            "zero_step": ZERO_STEP,
            "torch_version": torch.__version__,
            "schedulefree_version": version or "1.4.1",
        }
        arrays = {"config": np.array(json.dumps(config, sort_keys=True))}
        arrays.update({f"grads/{k}": g for k, g in grads.items()})
        arrays.update({f"y/{k}": v for k, v in ys.items()})
        arrays.update({f"x/{k}": v for k, v in xs.items()})
        path = OUT / f"{name}.npz"
        save_npz(path, arrays)
        print(f"schedule_free/{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
