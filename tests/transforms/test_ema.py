"""ema against m_t = b_k m_{t-1} + (1 - b_k) g_t (m_0 = 0), optionally / (1 - b_k**t)."""

import numpy as np
import pytest
from _reference import (
    ZERO_FIRST,
    assert_step_count,
    assert_trajectories_close,
    ema_reference,
    mixed_gradients,
    per_leaf,
    run,
)

import optjx
from optjx import schedules


@pytest.mark.parametrize("debias", [False, True])
@pytest.mark.parametrize(
    "decay, ref_decay",
    [
        (0.9, lambda k: 0.9),
        (0.999, lambda k: 0.999),
        (0.0, lambda k: 0.0),
        (schedules.linear(0.5, 0.95, 40), lambda k: 0.5 + 0.45 * min(k, 40) / 40),
    ],
    ids=["0.9", "0.999", "0.0", "schedule"],
)
def test_ema_matches_formula(x64, decay, ref_decay, debias):
    grads = mixed_gradients(60, seed=21)
    actual, state = run(optjx.ema(decay, debias=debias), grads)
    assert_trajectories_close(actual, per_leaf(ema_reference(ref_decay, debias), grads), rtol=1e-9)
    assert_step_count(state, 60)


def test_debiased_ema_of_a_constant_is_the_constant(x64):
    # The defining property of the correction: m_t = (1 - b**t) c exactly undone.
    grads = [{"w": np.full(3, 7.25)}] * 50
    actual, _ = run(optjx.ema(0.99, debias=True), grads)
    for out in actual:
        np.testing.assert_allclose(out["w"], 7.25, rtol=1e-12)


def test_all_zero_first_gradients(x64):
    grads = mixed_gradients(55, seed=22, zero_steps=ZERO_FIRST)
    actual, _ = run(optjx.ema(0.9, debias=True), grads)
    assert_trajectories_close(
        actual, per_leaf(ema_reference(lambda k: 0.9, True), grads), rtol=1e-9
    )
