"""Invariant 10: the step counter saturates, and schedules stay finite past 2**31 steps.

* Every ``count`` in a registry entry's state (nested states included) set to
  ``int32 max - 1`` by tree surgery, after three ordinary steps: six more steps (two or
  more of the inner optimizer's even under ``accumulate_gradients(every_k=3)``) leave each
  at the int32 maximum (never wrapping negative), with finite params, updates and state,
  and without retracing the jitted update.
* Every public schedule in ``optjx.schedules`` (the test fails if a new one is not in the
  table below) evaluated at the int32 maximum and, with x64, at int64 counts from 2**31
  to 2**62: finite, and equal to the value it holds after its last transition.
"""

import inspect
import math

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _harness import INT32_MAX
from registry import ENTRIES

from optjx import schedules

pytestmark = pytest.mark.usefixtures("strict_promotion")


BOUNDED = {
    "micro_step",
    "notfinite_count",
    "total_notfinite",
    "plateau_count",
    "cooldown_count",
    "steps_since_sync",
}
# The full-batch methods' counters: per update (bounded by max_iter and the line search's
# budget), a stop reason, and totals over all updates that saturate at the int32 maximum.
BOUNDED |= {"iterations", "evaluations", "stop_reason", "n_iter", "func_evals", "grad_evals",
            "hessian_products"}  # fmt: skip


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_step_count_saturates_at_int32_max(entry):
    c = harness.compiled(entry.id)
    params, _, state = c.run(3)
    if not harness.counts(state):
        # Stages keep a counter only where something reads it (constant hyperparameters,
        # no bias correction or first-step rule): then no integer may hide elsewhere in
        # the state, where it could overflow unnoticed.
        # Other integers are bounded by construction (a position within a group) or
        # saturate with the same helper (streaks, plateau and cooldown counts).
        integers = [
            jax.tree_util.keystr(path)
            for path, x in harness.leaves_with_paths(state)
            if jnp.issubdtype(x.dtype, jnp.integer) and path[-1].name not in BOUNDED
        ]
        assert not integers, integers
        return
    traced = c.traces
    state = harness.set_counts(state, INT32_MAX - 1)
    assert set(harness.counts(state).values()) == {INT32_MAX - 1}
    params, updates, state = c.run(6, params=params, state=state, start=3)
    assert c.traces == traced, "the saturated count retraced the update"
    counts = harness.counts(state)
    assert counts and set(counts.values()) == {INT32_MAX}, counts
    assert harness.all_finite((params, updates, state))


# name -> (schedule, the value it holds after its last transition)
SCHEDULES = {
    "constant": (lambda: schedules.constant(0.1), 0.1),
    "linear": (lambda: schedules.linear(0.1, 0.001, 1000), 0.001),
    "cosine": (lambda: schedules.cosine(0.1, 1000, alpha=0.01), 0.001),
    "inverse_sqrt": (lambda: schedules.inverse_sqrt(0.1), None),  # -> 0, never reached
    "piecewise_constant": (
        lambda: schedules.piecewise_constant(0.1, {1000: 0.1, 10**6: 0.5}),
        0.005,
    ),
    "exponential": (lambda: schedules.exponential(0.1, 0.5, 1000), 0.0),  # underflows to 0
    "exponential_staircase": (lambda: schedules.exponential(0.1, 0.5, 1000, staircase=True), 0.0),
    "join": (
        lambda: schedules.join([schedules.constant(0.1), schedules.linear(0.1, 0.01, 100)], [50]),
        0.01,
    ),
    "warmup": (lambda: schedules.warmup(schedules.cosine(0.1, 1000), 100), 0.0),
    "polynomial": (lambda: schedules.polynomial(0.1, 0.001, 2.0, 1000, 10), 0.001),
    "inverse_time": (lambda: schedules.inverse_time(0.1, 1.0, 10), None),  # -> 0
    "per_epoch": (lambda: schedules.per_epoch(schedules.exponential(0.1, 0.5, 10), 100), 0.0),
    # The torch-named schedules; a (low, high) pair for the periodic ones.
    "constant_lr": (lambda: schedules.constant_lr(0.1, 0.5, 10), 0.1),
    "linear_lr": (lambda: schedules.linear_lr(0.1, 0.5, 0.2, 100), 0.02),
    "polynomial_lr": (lambda: schedules.polynomial_lr(0.1, 100, 2.0), 0.0),
    "exponential_lr": (lambda: schedules.exponential_lr(0.1, 0.5), 0.0),
    "step_lr": (lambda: schedules.step_lr(0.1, 1000, 0.5), 0.0),
    "multi_step_lr": (lambda: schedules.multi_step_lr(0.1, [10, 1000], 0.5), 0.025),
    "lambda_lr": (lambda: schedules.lambda_lr(0.1, lambda k: jnp.where(k >= 100, 0.5, 1.0)), 0.05),
    "multiplicative_lr": (
        lambda: schedules.multiplicative_lr(
            0.1, lambda k: jnp.where(k > 0, 0.5, 1.0), total_iters=10
        ),
        0.1 * 0.5**10,
    ),
    "cosine_annealing_lr": (
        lambda: schedules.cosine_annealing_lr(0.1, 1000, 0.001, after_t_max="hold"),
        0.001,
    ),
    "cosine_annealing_lr_rise": (
        lambda: schedules.cosine_annealing_lr(0.1, 1000, 0.001),
        (0.001, 0.1),
    ),
    "cosine_annealing_warm_restarts": (
        lambda: schedules.cosine_annealing_warm_restarts(0.1, 10, 2, eta_min=0.001),
        (0.001, 0.1),
    ),
    "cyclic_lr": (lambda: schedules.cyclic_lr(0.01, 0.1, 100, mode="triangular2"), 0.01),
    "cyclic_momentum": (lambda: schedules.cyclic_momentum(0.01, 0.1, 100, mode="triangular2"), 0.9),
    "one_cycle_lr": (lambda: schedules.one_cycle_lr(0.1, total_steps=1000), 0.1 / 25 / 1e4),
    "one_cycle_momentum": (lambda: schedules.one_cycle_momentum(0.1, total_steps=1000), 0.95),
    "swa_lr": (lambda: schedules.swa_lr(0.1, 0.05, 10), 0.05),
    "sequential_lr": (
        lambda: schedules.sequential_lr(
            [schedules.linear_lr(0.1, 0.1, total_iters=10), schedules.exponential_lr(0.1, 0.5)],
            [10],
        ),
        0.0,
    ),
    "chained_scheduler": (
        lambda: schedules.chained_scheduler(
            [schedules.constant_lr(0.1, 0.5, 10), schedules.multi_step_lr(0.1, [100], 0.5)]
        ),
        0.05,
    ),
}


def test_schedule_table_covers_every_public_schedule():
    public = {
        name
        for name, fn in vars(schedules).items()
        if inspect.isfunction(fn)
        and not name.startswith("_")
        and fn.__module__ == schedules.__name__
    }
    covered = {name.split("_staircase")[0].removesuffix("_rise") for name in SCHEDULES}
    assert public <= covered, f"add these schedules to SCHEDULES: {sorted(public - covered)}"


def _check(name, value):
    tail = SCHEDULES[name][1]
    value = float(value)
    assert math.isfinite(value), (name, value)
    if isinstance(tail, tuple):  # periodic: within its bounds
        assert tail[0] * (1 - 1e-6) <= value <= tail[1] * (1 + 1e-6), (name, value)
    elif tail is None:
        assert 0.0 <= value < 1e-4
    else:
        assert value == pytest.approx(tail, rel=1e-5, abs=1e-12), (name, value)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_stay_finite_at_the_int32_maximum(name):
    schedule = SCHEDULES[name][0]()
    count = jnp.asarray(INT32_MAX, jnp.int32)
    _check(name, schedule(count))
    _check(name, jax.jit(schedule)(count))


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_stay_finite_past_2_31_steps(name, x64):
    schedule = SCHEDULES[name][0]()
    counts = jnp.asarray([2**31, 2**31 + 7, 2**40, 2**62], jnp.int64)
    values = np.asarray(jax.jit(jax.vmap(schedule))(counts))
    for v in values:
        _check(name, v)
