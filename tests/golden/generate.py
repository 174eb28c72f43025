r"""Write the ``torch.optim`` golden trajectories that ``tests/test_torch_parity.py`` replays.

Needs torch 2.13 (CPU build); CI never runs this file and the tests never import torch.
Run from the repository root::

    python tests/golden/generate.py            # rewrites tests/golden/*.npz

Every configuration runs ``torch.optim`` in float64 on one small parameter tree (leaves
of shape ``(3,)``, ``(2, 3)`` and ``()``) for ``STEPS`` steps, feeding the same seeded
gradients: standard normal entries times ``10**u`` with ``u ~ U(-2, 1)`` per entry (mixed
sign, four decades of scale) and one step where every gradient is exactly zero.
Each ``<name>.npz`` holds:

* ``config``: JSON with the torch class, the keyword arguments it was built with, the
  hyperparameters driven by a schedule (``{"lr": spec}``, see below) and the torch version;
* ``grads/<leaf>``: the gradients, shape ``(STEPS, *leaf_shape)``;
* ``params/<leaf>``: the parameters before the first step and after every step,
  shape ``(STEPS + 1, *leaf_shape)``;
* ``schedule/<group key>``: the value set in the param group before each step.

A schedule spec is ``{"fn": name, "args": [...], "kwargs": {...}}`` naming a function of
``optjx.schedules`` (an argument may itself be a spec). Its values are computed here in
NumPy from the formulas in the docstrings of ``optjx/schedules.py``, independently of
optjx, and written into the param group (``group["lr"] = value``) before step ``k``, with
``k = 0`` on the first step: optjx's convention of evaluating at the number of updates
already applied.
"""

from __future__ import annotations

import io
import json
import math
import pathlib
import zipfile

import numpy as np
import torch

STEPS = 32
ZERO_STEP = 9  # this step's gradient is exactly zero in every leaf
SEED = 20240513
SHAPES = {"bias": (3,), "kernel": (2, 3), "scale": ()}
OUT = pathlib.Path(__file__).resolve().parent


def _spec(fn, *args, **kwargs):
    return {"fn": fn, "args": list(args), "kwargs": kwargs}


# (name, torch.optim class, constructor keywords, {param-group key: schedule spec})
CONFIGS = [
    # SGD (torch.optim.SGD)
    ("sgd_plain", "SGD", {"lr": 0.05}, {}),
    ("sgd_momentum", "SGD", {"lr": 0.05, "momentum": 0.9}, {}),
    ("sgd_dampening", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}, {}),
    ("sgd_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {}),
    ("sgd_weight_decay", "SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, {}),
    (
        "sgd_lr_schedule",
        "SGD",
        {"momentum": 0.9},
        {"lr": _spec("warmup", _spec("cosine", 0.05, 20, alpha=0.1), 5, init_value=0.0)},
    ),
    ("sgd_momentum_schedule", "SGD", {"lr": 0.05}, {"momentum": _spec("linear", 0.5, 0.9, 20)}),
    # RMSprop (torch.optim.RMSprop; torch's alpha is optjx's decay)
    ("rmsprop_plain", "RMSprop", {"lr": 0.01, "alpha": 0.9}, {}),
    ("rmsprop_alpha_0.99", "RMSprop", {"lr": 0.01, "alpha": 0.99}, {}),
    ("rmsprop_centered", "RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}, {}),
    ("rmsprop_momentum", "RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.9}, {}),
    (
        "rmsprop_centered_momentum",
        "RMSprop",
        {"lr": 0.01, "alpha": 0.99, "centered": True, "momentum": 0.9, "eps": 1e-6},
        {},
    ),
    ("rmsprop_weight_decay", "RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}, {}),
    # Adagrad (torch.optim.Adagrad, lr_decay=0)
    ("adagrad_plain", "Adagrad", {"lr": 0.1}, {}),
    ("adagrad_initial_accumulator", "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1}, {}),
    ("adagrad_weight_decay", "Adagrad", {"lr": 0.1, "weight_decay": 0.01}, {}),
    # Adam (torch.optim.Adam: coupled L2 weight decay)
    ("adam_plain", "Adam", {"lr": 0.01}, {}),
    # b2 = 0.99 lets the second moment shrink often, so AMSGrad's running max matters
    ("adam_amsgrad", "Adam", {"lr": 0.01, "betas": [0.9, 0.99], "amsgrad": True}, {}),
    ("adam_weight_decay", "Adam", {"lr": 0.01, "weight_decay": 0.1}, {}),
    # decay_steps < STEPS: the hold at the end of the cosine is exercised too
    ("adam_cosine_schedule", "Adam", {"eps": 1e-6}, {"lr": _spec("cosine", 0.02, 24)}),
    # AdamW (torch.optim.AdamW: decoupled weight decay, default 0.01)
    ("adamw_default", "AdamW", {"lr": 0.01}, {}),
    ("adamw_weight_decay_0.1", "AdamW", {"lr": 0.01, "weight_decay": 0.1}, {}),
    ("adamw_amsgrad", "AdamW", {"lr": 0.01, "betas": [0.9, 0.99], "amsgrad": True}, {}),
    # Adadelta (torch.optim.Adadelta)
    ("adadelta_default", "Adadelta", {}, {}),
    ("adadelta_weight_decay", "Adadelta", {"lr": 0.5, "weight_decay": 0.01}, {}),
    # RAdam (torch.optim.RAdam, Liu et al. 2020 with torch's threshold 5)
    ("radam_default", "RAdam", {"lr": 0.01}, {}),
    ("radam_weight_decay", "RAdam", {"lr": 0.01, "weight_decay": 0.1}, {}),
    (
        "radam_decoupled_weight_decay",
        "RAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {},
    ),
    # rho_t crosses 5 between t = 5 and t = 6 (checked below)
    ("radam_b2_0.99", "RAdam", {"lr": 0.01, "betas": [0.9, 0.99]}, {}),
]


def schedule_fn(spec):
    """A NumPy function ``k -> value`` for a spec, from the formulas in optjx/schedules.py."""
    fn, args, kwargs = spec["fn"], spec["args"], spec["kwargs"]
    if fn == "constant":
        (value,) = args
        return lambda k: np.full_like(k, value)
    if fn == "linear":
        init, end, steps = args

        def linear(k):
            a = np.minimum(k, steps) / steps
            return (1.0 - a) * init + a * end

        return linear
    if fn == "cosine":
        init, steps = args
        alpha = kwargs.get("alpha", 0.0)

        def cosine(k):
            progress = np.minimum(k, steps) / steps
            return init * (alpha + (1.0 - alpha) * (1.0 + np.cos(math.pi * progress)) / 2.0)

        return cosine
    if fn == "warmup":
        inner, steps = schedule_fn(args[0]), args[1]
        start = kwargs.get("init_value", 0.0)
        target = inner(np.zeros(1))[0]

        def warmup(k):
            a = np.minimum(k, steps) / steps
            return np.where(k < steps, (1.0 - a) * start + a * target, inner(k - steps))

        return warmup
    raise ValueError(f"no NumPy formula for schedule {fn!r}")


def make_data(shapes=SHAPES, *, steps=STEPS, zero_step=ZERO_STEP, seed=SEED):
    """Initial parameters and the gradient sequence, both float64 NumPy (the other
    generators call it with their own shapes, length, zero step and seed)."""
    rng = np.random.default_rng(seed)
    params = {k: rng.uniform(-1.0, 1.0, s) * 2.0 for k, s in shapes.items()}
    grads = {
        k: rng.standard_normal((steps, *s)) * 10.0 ** rng.uniform(-2.0, 1.0, (steps, *s))
        for k, s in shapes.items()
    }
    for g in grads.values():
        g[zero_step] = 0.0
    return params, grads


def run(cls_name, kwargs, schedules, params0, grads):
    """Run one torch.optim trajectory; return params after each step and the schedules."""
    values = {
        key: schedule_fn(spec)(np.arange(STEPS, dtype=np.float64))
        for key, spec in schedules.items()
    }
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params0.items()}
    build = dict(kwargs)
    if "betas" in build:
        build["betas"] = tuple(build["betas"])
    for key, vals in values.items():
        build[key] = float(vals[0])
    # foreach=False: the single-tensor loop, torch's reference implementation.
    opt = getattr(torch.optim, cls_name)(list(tensors.values()), foreach=False, **build)
    history = {k: [v.copy()] for k, v in params0.items()}
    for step in range(STEPS):
        for key, vals in values.items():
            for group in opt.param_groups:
                group[key] = float(vals[step])
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][step], dtype=torch.float64)
        opt.step()
        for k, p in tensors.items():
            history[k].append(p.detach().numpy().copy())
    if kwargs.get("amsgrad"):
        # AMSGrad must be visible: the running max must differ from the plain second moment.
        state = opt.state[tensors["kernel"]]
        assert not torch.equal(state["max_exp_avg_sq"], state["exp_avg_sq"]), cls_name
    return {k: np.stack(v) for k, v in history.items()}, values


def save_npz(path, arrays):
    """Like ``np.savez_compressed``, with fixed timestamps so that regenerating is byte-stable."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _check_radam_threshold():
    b2 = 0.99
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho = [rho_inf - 2.0 * t * b2**t / (1.0 - b2**t) for t in (4, 5, 6)]
    assert rho[0] <= 4.0 < rho[1] <= 5.0 < rho[2], rho


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_default_dtype(torch.float64)
    _check_radam_threshold()
    params0, grads = make_data()
    for name, cls_name, kwargs, schedules in CONFIGS:
        history, values = run(cls_name, kwargs, schedules, params0, grads)
        assert all(np.all(np.isfinite(h)) for h in history.values()), name
        config = {
            "name": name,
            "torch_optimizer": cls_name,
            "torch_kwargs": kwargs,
            "schedules": schedules,
            "steps": STEPS,
            "zero_step": ZERO_STEP,
            "torch_version": torch.__version__,
        }
        arrays = {"config": np.array(json.dumps(config, sort_keys=True))}
        arrays.update({f"grads/{k}": g for k, g in grads.items()})
        arrays.update({f"params/{k}": h for k, h in history.items()})
        arrays.update({f"schedule/{k}": v for k, v in values.items()})
        path = OUT / f"{name}.npz"
        save_npz(path, arrays)
        print(f"{path.name}: {path.stat().st_size} bytes")
    import generate_training  # parameter groups and per-epoch schedules

    generate_training.main()
    import generate_full_batch  # L-BFGS, strong-Wolfe and CG files (tests/full_batch)

    generate_full_batch.main()
    import generate_schedule_free  # the schedulefree 1.4.1 references, in golden/schedule_free

    generate_schedule_free.main()
    import generate_schedulers  # every lr_scheduler's rates, in golden/schedulers

    generate_schedulers.main()


if __name__ == "__main__":
    main()
