"""The torch-named schedules against ``torch.optim.lr_scheduler`` (torch 2.13, float64).

``tests/golden/schedulers/<name>.npz`` holds the rate (and, for the cycling schedulers,
SGD's momentum and Adam's ``betas[0]``) that torch used at every update, with the
scheduler stepped per update or per epoch (``tests/golden/generate_schedulers.py``
records them and holds the torch code of each case). Each is matched to 1e-12 by the
optjx expression below, evaluated under ``jit`` at every count. The argument checks are
in ``test_torch_schedulers_args.py``.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx
from optjx import schedules as S

GOLDEN = pathlib.Path(__file__).parent / "golden" / "schedulers"
LR = 0.1
SWA = {"epochs": 15, "swa_start": 5, "T_max": 20, "swa_lr": 0.05, "anneal_epochs": 3}


def _multiplicative(k):
    return jnp.where(k % 4 == 0, 1.1, 0.9)


def _swa_recipe():
    # torch's loop: the cosine stepped after epochs 0..swa_start, SWALR after the rest.
    cosine = S.cosine_annealing_lr(LR, SWA["T_max"])
    start = SWA["swa_start"] + 1
    swa = S.swa_lr(float(cosine(start)), SWA["swa_lr"], anneal_epochs=SWA["anneal_epochs"])
    return optjx.schedules.join([cosine, swa], [start])


# name -> (rate schedule, momentum schedule or None); the same torch code is in the
# generator under the same name.
ONE_CYCLE = {
    "one_cycle_cos": dict(max_lr=0.5, total_steps=20),
    "one_cycle_linear_three_phase": dict(
        max_lr=0.5,
        total_steps=25,
        pct_start=0.25,
        anneal_strategy="linear",
        div_factor=10.0,
        final_div_factor=100.0,
        three_phase=True,
    ),
    "one_cycle_epochs_three_phase": dict(
        max_lr=0.3,
        epochs=3,
        steps_per_epoch=7,
        pct_start=0.4,
        three_phase=True,
        base_momentum=0.8,
        max_momentum=0.9,
    ),
    "one_cycle_linear": dict(max_lr=0.2, total_steps=16, anneal_strategy="linear"),
    "epoch_one_cycle": dict(max_lr=0.4, epochs=2, steps_per_epoch=4, pct_start=0.5),
}
CYCLIC = {
    "cyclic_triangular": dict(base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6),
    "cyclic_triangular2": dict(base_lr=0.01, max_lr=0.1, step_size_up=3, mode="triangular2"),
    "cyclic_exp_range": dict(
        base_lr=0.02,
        max_lr=0.1,
        step_size_up=5,
        step_size_down=3,
        mode="exp_range",
        gamma=0.95,
        base_momentum=0.7,
        max_momentum=0.95,
    ),
    "cyclic_scale_fn_cycle": dict(
        base_lr=0.01,
        max_lr=0.1,
        step_size_up=2,
        step_size_down=3,
        scale_fn=lambda x: 1 / (1 + 0.5 * (x - 1)),
    ),
    "cyclic_scale_fn_iterations": dict(
        base_lr=0.01,
        max_lr=0.1,
        step_size_up=3,
        scale_fn=lambda x: 1 / (1 + 0.05 * x),
        scale_mode="iterations",
    ),
    "epoch_cyclic": dict(base_lr=0.01, max_lr=0.1, step_size_up=3, mode="triangular2"),
}
CASES = {
    "constant_lr": lambda: S.constant_lr(LR, factor=0.5, total_iters=4),
    "constant_lr_default": lambda: S.constant_lr(LR),
    "linear_lr": lambda: S.linear_lr(LR, 0.1, 0.9, total_iters=7),
    "linear_lr_default": lambda: S.linear_lr(LR),
    "exponential_lr": lambda: S.exponential_lr(LR, gamma=0.9),
    "step_lr": lambda: S.step_lr(LR, step_size=3, gamma=0.5),
    "multi_step_lr": lambda: S.multi_step_lr(LR, [9, 2, 5, 5], gamma=0.3),
    "polynomial_lr": lambda: S.polynomial_lr(LR, total_iters=8, power=2.0),
    "polynomial_lr_default": lambda: S.polynomial_lr(LR),
    "cosine_annealing_lr": lambda: S.cosine_annealing_lr(LR, 10, eta_min=0.01),
    "cosine_annealing_lr_odd": lambda: S.cosine_annealing_lr(LR, T_max=7),
    "warm_restarts": lambda: S.cosine_annealing_warm_restarts(LR, T_0=5),
    "warm_restarts_mult": lambda: S.cosine_annealing_warm_restarts(LR, 3, T_mult=2, eta_min=0.001),
    "warm_restarts_mult3": lambda: S.cosine_annealing_warm_restarts(LR, 2, T_mult=3),
    "lambda_lr": lambda: S.lambda_lr(LR, lambda k: jnp.minimum((k + 1) / 5, jnp.sqrt(5 / (k + 1)))),
    "multiplicative_lr": lambda: S.multiplicative_lr(LR, _multiplicative),
    "multiplicative_lr_until_6": lambda: S.multiplicative_lr(LR, _multiplicative, total_iters=6),
    "sequential_warmup_cosine": lambda: S.sequential_lr(
        [S.linear_lr(LR, 0.1, total_iters=5), S.cosine_annealing_lr(LR, T_max=10)], [5]
    ),
    "sequential_three_multiplicative": lambda: S.sequential_lr(
        [
            S.constant_lr(LR, 0.5, 3),
            S.exponential_lr(LR, 0.8),
            S.multiplicative_lr(LR, _multiplicative),
        ],
        milestones=[4, 9],
    ),
    "sequential_cosine_swa": lambda: S.sequential_lr(
        [S.cosine_annealing_lr(LR, T_max=6), S.swa_lr(LR, swa_lr=0.02, anneal_epochs=4)], [6]
    ),
    "sequential_step_restarts": lambda: S.sequential_lr(
        [S.step_lr(LR, 2, 0.5), S.cosine_annealing_warm_restarts(LR, T_0=3, T_mult=2)], [5]
    ),
    "chained_factors": lambda: S.chained_scheduler(
        [
            S.constant_lr(LR, 0.5, 3),
            S.exponential_lr(LR, 0.9),
            S.step_lr(LR, 4, 0.5),
            S.linear_lr(LR, 0.2, 1.0, 6),
            S.multi_step_lr(LR, [3, 7]),
            S.polynomial_lr(LR, 10, 2.0),
        ]
    ),
    "chained_cosine": lambda: S.chained_scheduler(
        [
            S.cosine_annealing_lr(LR, T_max=8),
            S.exponential_lr(LR, 0.95),
            S.multiplicative_lr(LR, _multiplicative),
        ]
    ),
    "swa_cos": lambda: S.swa_lr(LR, swa_lr=0.02, anneal_epochs=5),
    "swa_linear": lambda: S.swa_lr(LR, 0.3, anneal_epochs=3, anneal_strategy="linear"),
    "swa_no_anneal": lambda: S.swa_lr(LR, swa_lr=0.02, anneal_epochs=0),
    "swa_recipe": _swa_recipe,
    "epoch_step_lr": lambda: S.step_lr(LR, step_size=2, gamma=0.5),
    "epoch_warm_restarts": lambda: S.cosine_annealing_warm_restarts(LR, 2, T_mult=2),
    "epoch_sequential": lambda: S.sequential_lr(
        [S.linear_lr(LR, 0.25, total_iters=3), S.exponential_lr(LR, 0.7)], [3]
    ),
    **{name: (lambda kw=kw: S.one_cycle_lr(**kw)) for name, kw in ONE_CYCLE.items()},
    **{name: (lambda kw=kw: S.cyclic_lr(**kw)) for name, kw in CYCLIC.items()},
}
MOMENTUM = {
    **{name: (lambda kw=kw: S.one_cycle_momentum(**kw)) for name, kw in ONE_CYCLE.items()},
    **{name: (lambda kw=kw: S.cyclic_momentum(**kw)) for name, kw in CYCLIC.items()},
}


# Evaluated eagerly at a Python int too (op by op: slow, so one of each kind).
EAGER = {
    "constant_lr",
    "linear_lr",
    "polynomial_lr",
    "exponential_lr",
    "step_lr",
    "multi_step_lr",
    "lambda_lr",
    "multiplicative_lr",
    "cosine_annealing_lr",
    "warm_restarts_mult",
    "cyclic_triangular2",
    "one_cycle_cos",
    "swa_cos",
    "sequential_cosine_swa",
    "chained_factors",
}


def _golden(name):
    data = np.load(GOLDEN / f"{name}.npz")
    return {key: data[key] for key in data.files}


def _per_update(schedule, golden):
    per_epoch = int(golden["steps_per_epoch"])
    return schedule if per_epoch == 1 else S.per_epoch(schedule, per_epoch)


def _close(actual, expected, name, scale=None):
    # Absolute tolerance relative to the largest rate: torch's own linear annealing to a
    # final rate 1e-6 of the peak loses that much to cancellation.
    scale = np.max(np.abs(expected)) if scale is None else scale
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * scale, err_msg=name)


def test_every_golden_file_has_a_case():
    assert {p.stem for p in GOLDEN.glob("*.npz")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rates_match_torch(x64, name):
    golden = _golden(name)
    schedule = _per_update(CASES[name](), golden)
    counts = jnp.arange(len(golden["lr"]), dtype=jnp.int32)
    rates = np.asarray(jax.jit(schedule)(counts))
    assert rates.dtype == np.float64
    _close(rates, golden["lr"], name)
    # A scalar count, and a Python int (eagerly, as ``float(lr(k))`` in a loop), give the
    # value the array gives.
    last = len(golden["lr"]) - 1
    peak = np.max(golden["lr"])
    _close(np.asarray(jax.jit(schedule)(jnp.int32(last))), golden["lr"][last], name, peak)
    if name in EAGER:
        _close(np.asarray(schedule(last)), golden["lr"][last], name, peak)
    if name in MOMENTUM:
        momentum = np.asarray(jax.jit(_per_update(MOMENTUM[name](), golden))(counts))
        _close(momentum, golden["momentum"], name)
        _close(momentum, golden["beta1"], name)


def test_golden_momentum_cases_are_the_cycling_ones():
    cycling = {n for n in CASES if "momentum" in np.load(GOLDEN / f"{n}.npz").files}
    assert cycling == set(MOMENTUM)


def test_golden_records_the_torch_code():
    assert "CyclicLR" in json.loads(str(_golden("cyclic_triangular")["config"]))["torch"]


def test_cosine_annealing_hold_stops_at_eta_min(x64):
    # Up to T_max torch's sequence; then held at eta_min instead of rising.
    golden = _golden("cosine_annealing_lr")["lr"]
    held = np.asarray(
        jax.jit(S.cosine_annealing_lr(LR, 10, 0.01, after_t_max="hold"))(jnp.arange(len(golden)))
    )
    _close(held[:11], golden[:11], "hold")
    assert np.all(held[10:] == 0.01)


def test_periodic_schedules_keep_their_phase_at_large_counts(x64):
    golden = _golden("cosine_annealing_lr")["lr"]
    far = 20 * 10**12  # a multiple of both periods (2 * T_max = 20, T_0 = 5)
    counts = jnp.arange(len(golden), dtype=jnp.int64)
    cosine = jax.jit(S.cosine_annealing_lr(LR, 10, 0.01))
    _close(np.asarray(cosine(far + counts)), golden, "far")
    restarts = _golden("warm_restarts")["lr"]
    warm = jax.jit(S.cosine_annealing_warm_restarts(LR, T_0=5))
    _close(np.asarray(warm(far + counts[: len(restarts)])), restarts, "far restarts")


def test_torch_schedules_carry_base_rate_and_factor(x64):
    for name in ("linear_lr", "cosine_annealing_lr", "swa_cos"):
        schedule, golden = CASES[name](), _golden(name)["lr"]
        assert isinstance(schedule, S.TorchSchedule) and schedule.base_lr == LR
        factor = jax.jit(schedule.factor)(jnp.arange(len(golden)))
        _close(np.asarray(factor) * LR, golden, name)
    one_cycle = S.one_cycle_lr(0.5, total_steps=20)
    assert one_cycle.base_lr == 0.5 / 25.0 and S.cyclic_lr(0.01, 0.1).base_lr == 0.01
    assert type(one_cycle).__module__ == "optjx.schedules" and "OneCycleLR" in repr(one_cycle)
    assert S.multiplicative_lr(LR, _multiplicative).resume is not None
    assert S.step_lr(LR, 3).resume is None


def test_one_cycle_holds_its_final_rate_past_total_steps(x64):
    golden = _golden("one_cycle_cos")
    lr = S.one_cycle_lr(max_lr=0.5, total_steps=20)
    momentum = S.one_cycle_momentum(max_lr=0.5, total_steps=20)
    assert float(lr(19)) == golden["lr"][-1] == 0.5 / 25.0 / 1e4
    assert np.all(np.asarray(jax.jit(lr)(jnp.arange(19, 40))) == golden["lr"][-1])
    assert np.all(np.asarray(jax.jit(momentum)(jnp.arange(19, 40))) == 0.95)


def test_one_cycle_drives_sgd_momentum_and_adam_b1():
    kw = dict(max_lr=0.5, total_steps=20)
    params = {"w": jnp.ones(3)}
    for tx in (
        optjx.sgd(S.one_cycle_lr(**kw), momentum=S.one_cycle_momentum(**kw)),
        optjx.adam(S.one_cycle_lr(**kw), b1=S.one_cycle_momentum(**kw)),
    ):
        state = tx.init(params)
        update = jax.jit(tx.update)
        for _ in range(3):
            updates, state = update(params, state, params)
            params = optjx.apply_updates(params, updates)
        assert np.all(np.isfinite(np.asarray(params["w"])))


@pytest.mark.parametrize(
    "name", ["one_cycle_cos", "cyclic_triangular", "warm_restarts_mult", "sequential_cosine_swa"]
)
def test_float32_without_x64(name):
    golden = _golden(name)
    rates = jax.jit(CASES[name]())(jnp.arange(len(golden["lr"]), dtype=jnp.int32))
    assert rates.dtype == jnp.float32
    np.testing.assert_allclose(rates, golden["lr"], rtol=2e-6, atol=1e-7 * np.max(golden["lr"]))


def test_vmap_over_the_peak_rate(x64):
    # The rates scale with max_lr: one compiled schedule for several peak rates.
    golden = _golden("one_cycle_cos")["lr"]
    counts = jnp.arange(len(golden))
    rates = jax.jit(jax.vmap(lambda peak: S.one_cycle_lr(peak, total_steps=20)(counts)))(
        jnp.asarray([0.5, 1.0, 0.25])
    )
    for row, factor in zip(np.asarray(rates), (1.0, 2.0, 0.5), strict=True):
        _close(row, factor * golden, "vmap")
