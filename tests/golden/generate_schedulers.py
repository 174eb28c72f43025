r"""Golden rate sequences from every ``torch.optim.lr_scheduler`` class and ``SWALR``
(torch 2.13 CPU, float64), replayed by ``tests/test_torch_schedulers.py``.

    OMP_NUM_THREADS=1 python tests/golden/generate_schedulers.py

One ``schedulers/<name>.npz`` per case, holding

* ``lr``: ``param_groups[0]["lr"]`` at every update (the rate the update used), for
  ``steps`` updates, ``scheduler.step()`` called after every update, or after every
  ``steps_per_epoch`` updates for the per-epoch cases;
* ``momentum`` (``torch.optim.SGD(momentum=0.9)``) and ``beta1``
  (``torch.optim.Adam``'s ``betas[0]``), for the cases that cycle the momentum; the
  rates of both runs are asserted equal;
* ``steps_per_epoch`` and ``config`` (the torch code of the case, as text).

The lengths cover every phase change, restart and cycle of the case. Lambdas are
written with ``math``; the test writes its own with ``jnp``.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import torch
from generate import save_npz
from torch.optim import lr_scheduler as L
from torch.optim.swa_utils import SWALR

OUT = pathlib.Path(__file__).resolve().parent / "schedulers"
LR = 0.1


def _sequence(opt, schedulers, milestones):
    return L.SequentialLR(opt, schedulers, milestones=milestones)


def _multiplicative(k):
    return 1.1 if k % 4 == 0 else 0.9


# name -> (steps, steps_per_epoch, cycles momentum, code: optimizer -> scheduler)
CASES = {
    "constant_lr": (10, 1, False, lambda o: L.ConstantLR(o, factor=0.5, total_iters=4)),
    "constant_lr_default": (8, 1, False, lambda o: L.ConstantLR(o)),
    "linear_lr": (12, 1, False, lambda o: L.LinearLR(o, 0.1, 0.9, total_iters=7)),
    "linear_lr_default": (8, 1, False, lambda o: L.LinearLR(o)),
    "exponential_lr": (40, 1, False, lambda o: L.ExponentialLR(o, gamma=0.9)),
    "step_lr": (15, 1, False, lambda o: L.StepLR(o, step_size=3, gamma=0.5)),
    "multi_step_lr": (14, 1, False, lambda o: L.MultiStepLR(o, [9, 2, 5, 5], gamma=0.3)),
    "polynomial_lr": (12, 1, False, lambda o: L.PolynomialLR(o, total_iters=8, power=2.0)),
    "polynomial_lr_default": (8, 1, False, lambda o: L.PolynomialLR(o)),
    "cosine_annealing_lr": (45, 1, False, lambda o: L.CosineAnnealingLR(o, 10, eta_min=0.01)),
    "cosine_annealing_lr_odd": (30, 1, False, lambda o: L.CosineAnnealingLR(o, T_max=7)),
    "warm_restarts": (23, 1, False, lambda o: L.CosineAnnealingWarmRestarts(o, T_0=5)),
    "warm_restarts_mult": (
        50,
        1,
        False,
        lambda o: L.CosineAnnealingWarmRestarts(o, 3, T_mult=2, eta_min=0.001),
    ),
    "warm_restarts_mult3": (45, 1, False, lambda o: L.CosineAnnealingWarmRestarts(o, 2, T_mult=3)),
    "cyclic_triangular": (
        35,
        1,
        True,
        lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4, step_size_down=6),
    ),
    "cyclic_triangular2": (
        30,
        1,
        True,
        lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="triangular2"),
    ),
    "cyclic_exp_range": (
        30,
        1,
        True,
        lambda o: L.CyclicLR(
            o, 0.02, 0.1, 5, 3, mode="exp_range", gamma=0.95, base_momentum=0.7, max_momentum=0.95
        ),
    ),
    "cyclic_scale_fn_cycle": (
        25,
        1,
        True,
        lambda o: L.CyclicLR(o, 0.01, 0.1, 2, 3, scale_fn=lambda x: 1 / (1 + 0.5 * (x - 1))),
    ),
    "cyclic_scale_fn_iterations": (
        25,
        1,
        True,
        lambda o: L.CyclicLR(
            o, 0.01, 0.1, 3, scale_fn=lambda x: 1 / (1 + 0.05 * x), scale_mode="iterations"
        ),
    ),
    "one_cycle_cos": (20, 1, True, lambda o: L.OneCycleLR(o, max_lr=0.5, total_steps=20)),
    "one_cycle_linear_three_phase": (
        25,
        1,
        True,
        lambda o: L.OneCycleLR(
            o,
            0.5,
            total_steps=25,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
    ),
    "one_cycle_epochs_three_phase": (
        21,
        1,
        True,
        lambda o: L.OneCycleLR(
            o,
            0.3,
            epochs=3,
            steps_per_epoch=7,
            pct_start=0.4,
            three_phase=True,
            base_momentum=0.8,
            max_momentum=0.9,
        ),
    ),
    "one_cycle_linear": (
        16,
        1,
        True,
        lambda o: L.OneCycleLR(o, 0.2, total_steps=16, anneal_strategy="linear"),
    ),
    "lambda_lr": (
        20,
        1,
        False,
        lambda o: L.LambdaLR(o, lambda k: min((k + 1) / 5, math.sqrt(5 / (k + 1)))),
    ),
    "multiplicative_lr": (20, 1, False, lambda o: L.MultiplicativeLR(o, _multiplicative)),
    "multiplicative_lr_until_6": (
        12,
        1,
        False,
        lambda o: L.MultiplicativeLR(o, lambda k: _multiplicative(k) if k <= 6 else 1.0),
    ),
    "sequential_warmup_cosine": (
        25,
        1,
        False,
        lambda o: _sequence(
            o, [L.LinearLR(o, 0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=10)], [5]
        ),
    ),
    "sequential_three_multiplicative": (
        16,
        1,
        False,
        lambda o: _sequence(
            o,
            [
                L.ConstantLR(o, 0.5, 3),
                L.ExponentialLR(o, 0.8),
                L.MultiplicativeLR(o, _multiplicative),
            ],
            [4, 9],
        ),
    ),
    "sequential_cosine_swa": (
        15,
        1,
        False,
        lambda o: _sequence(
            o, [L.CosineAnnealingLR(o, T_max=6), SWALR(o, swa_lr=0.02, anneal_epochs=4)], [6]
        ),
    ),
    "sequential_step_restarts": (
        20,
        1,
        False,
        lambda o: _sequence(
            o, [L.StepLR(o, 2, 0.5), L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2)], [5]
        ),
    ),
    "chained_factors": (
        14,
        1,
        False,
        lambda o: L.ChainedScheduler(
            [
                L.ConstantLR(o, 0.5, 3),
                L.ExponentialLR(o, 0.9),
                L.StepLR(o, 4, 0.5),
                L.LinearLR(o, 0.2, 1.0, 6),
                L.MultiStepLR(o, [3, 7]),
                L.PolynomialLR(o, 10, 2.0),
            ]
        ),
    ),
    "chained_cosine": (
        9,
        1,
        False,
        lambda o: L.ChainedScheduler(
            [
                L.CosineAnnealingLR(o, T_max=8),
                L.ExponentialLR(o, 0.95),
                L.MultiplicativeLR(o, _multiplicative),
            ]
        ),
    ),
    "swa_cos": (10, 1, False, lambda o: SWALR(o, swa_lr=0.02, anneal_epochs=5)),
    "swa_linear": (8, 1, False, lambda o: SWALR(o, 0.3, anneal_epochs=3, anneal_strategy="linear")),
    "swa_no_anneal": (4, 1, False, lambda o: SWALR(o, swa_lr=0.02, anneal_epochs=0)),
    # per epoch: scheduler.step() once every steps_per_epoch updates
    "epoch_step_lr": (24, 3, False, lambda o: L.StepLR(o, step_size=2, gamma=0.5)),
    "epoch_warm_restarts": (30, 3, False, lambda o: L.CosineAnnealingWarmRestarts(o, 2, T_mult=2)),
    "epoch_sequential": (
        36,
        4,
        False,
        lambda o: _sequence(o, [L.LinearLR(o, 0.25, total_iters=3), L.ExponentialLR(o, 0.7)], [3]),
    ),
    "epoch_cyclic": (
        30,
        2,
        True,
        lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="triangular2"),
    ),
    "epoch_one_cycle": (
        24,
        3,
        True,
        lambda o: L.OneCycleLR(o, 0.4, epochs=2, steps_per_epoch=4, pct_start=0.5),
    ),
}

# torch's SWA recipe: the first scheduler up to epoch SWA_START, SWALR after.
SWA_RECIPE = {"epochs": 15, "swa_start": 5, "T_max": 20, "swa_lr": 0.05, "anneal_epochs": 3}


def _drive(optimizer_name, make, steps, steps_per_epoch):
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    if optimizer_name == "SGD":
        opt = torch.optim.SGD([param], lr=LR, momentum=0.9)
    else:
        opt = torch.optim.Adam([param], lr=LR)
    scheduler = make(opt)
    rates, momenta = [], []
    for update in range(steps):
        group = opt.param_groups[0]
        rates.append(float(group["lr"]))
        momenta.append(float(group["momentum"] if optimizer_name == "SGD" else group["betas"][0]))
        param.grad = torch.zeros_like(param)
        opt.step()
        if (update + 1) % steps_per_epoch == 0:
            scheduler.step()
    return np.asarray(rates), np.asarray(momenta)


def _swa_recipe():
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([param], lr=LR)
    scheduler = L.CosineAnnealingLR(opt, T_max=SWA_RECIPE["T_max"])
    swa = SWALR(opt, swa_lr=SWA_RECIPE["swa_lr"], anneal_epochs=SWA_RECIPE["anneal_epochs"])
    rates = []
    for epoch in range(SWA_RECIPE["epochs"]):
        rates.append(float(opt.param_groups[0]["lr"]))
        param.grad = torch.zeros_like(param)
        opt.step()
        if epoch > SWA_RECIPE["swa_start"]:
            swa.step()
        else:
            scheduler.step()
    return np.asarray(rates)


def _code(make) -> str:
    import inspect

    return inspect.getsource(make).strip()


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_default_dtype(torch.float64)
    OUT.mkdir(exist_ok=True)
    for name, (steps, per_epoch, cycles, make) in CASES.items():
        rates, momentum = _drive("SGD", make, steps, per_epoch)
        arrays = {"lr": rates, "steps_per_epoch": np.asarray(per_epoch)}
        if cycles:
            adam_rates, beta1 = _drive("Adam", make, steps, per_epoch)
            assert np.array_equal(adam_rates, rates), name
            assert not np.all(momentum == momentum[0]), name
            arrays.update(momentum=momentum, beta1=beta1)
        config = {"torch": _code(make), "base_lr": LR, "torch_version": torch.__version__}
        arrays["config"] = np.array(json.dumps(config, sort_keys=True))
        save_npz(OUT / f"{name}.npz", arrays)
    recipe = {"torch": "swa_utils recipe", **SWA_RECIPE, "base_lr": LR}
    save_npz(
        OUT / "swa_recipe.npz",
        {
            "lr": _swa_recipe(),
            "steps_per_epoch": np.asarray(1),
            "config": np.array(json.dumps(recipe, sort_keys=True)),
        },
    )
    print(f"{len(CASES) + 1} files in {OUT}")


if __name__ == "__main__":
    main()
