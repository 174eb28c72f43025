"""bias_correction against u_t = g_t / (1 - b_k**t), alone and after ema."""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import assert_trajectories_close, ema_reference, mixed_gradients, per_leaf, run

import optjx
from optjx import schedules


def _division_reference(decay):
    def reference(sequence):
        return [g / (1.0 - decay(k) ** (k + 1)) for k, g in enumerate(sequence)]

    return reference


@pytest.mark.parametrize(
    "decay, ref_decay",
    [
        (0.9, lambda k: 0.9),
        (0.999, lambda k: 0.999),
        (schedules.exponential(0.9, 0.5, 40), lambda k: 0.9 * 0.5 ** (k / 40)),
    ],
    ids=["0.9", "0.999", "schedule"],
)
def test_bias_correction_divides_by_power_complement(x64, decay, ref_decay):
    grads = mixed_gradients(55, seed=31)
    actual, state = run(optjx.bias_correction(decay), grads)
    assert_trajectories_close(actual, per_leaf(_division_reference(ref_decay), grads), rtol=1e-9)
    assert int(state.count) == 55


@pytest.mark.parametrize(
    "decay, ref_decay",
    [
        (0.9, lambda k: 0.9),
        (0.98, lambda k: 0.98),
        (schedules.linear(0.6, 0.9, 30), lambda k: 0.6 + 0.3 * min(k, 30) / 30),
    ],
    ids=["0.9", "0.98", "schedule"],
)
def test_ema_then_bias_correction_is_debiased_ema(x64, decay, ref_decay):
    # Each side is compared to the NumPy formula, not to the other.
    grads = mixed_gradients(60, seed=32)
    expected = per_leaf(ema_reference(ref_decay, debias=True), grads)
    chained, _ = run(optjx.chain(optjx.ema(decay), optjx.bias_correction(decay)), grads)
    fused, _ = run(optjx.ema(decay, debias=True), grads)
    assert_trajectories_close(chained, expected, rtol=1e-9)
    assert_trajectories_close(fused, expected, rtol=1e-9)


def test_bfloat16_keeps_small_divisors():
    # 0.999 rounds to 1.0 in bfloat16: a correction computed there would divide by zero.
    # Computed at float32 and cast only at the end, the first update is 1 / 0.001.
    g = {"w": jnp.ones(3, jnp.bfloat16)}
    tx = optjx.bias_correction(0.999)
    out, _ = tx.update(g, tx.init(g))
    assert out["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["w"], np.float32), 1000.0, rtol=1e-2)
