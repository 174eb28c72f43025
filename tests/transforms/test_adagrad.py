"""scale_by_adagrad against AdaGrad's formula (Duchi et al. 2011, diagonal form).

Reference:  s_0 = s_init;  s_t = s_{t-1} + g_t^2;  u_t = g_t / (sqrt(s_t + eps_root) + eps)
"""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    ZERO_FIRST,
    assert_step_count,
    assert_trajectories_close,
    mixed_gradients,
    per_leaf,
    run,
)

import optjx


def adagrad_reference(initial=0.0, eps=1e-10, eps_root=0.0):
    def reference(sequence):
        outputs, s = [], initial
        for g in sequence:
            s = s + g * g
            outputs.append(g / (np.sqrt(s + eps_root) + eps))
        return outputs

    return reference


CONFIGS = {
    "default": dict(),
    "initial-accumulator": dict(initial_accumulator_value=0.1),
    "large-eps": dict(eps=1e-2),
    "eps-root-inside": dict(eps=0.0, eps_root=1e-4),
    "everything": dict(initial_accumulator_value=0.5, eps=1e-3, eps_root=1e-3),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_scale_by_adagrad_matches_formula(x64, name):
    kwargs = CONFIGS[name]
    grads = mixed_gradients(60, seed=51)
    actual, state = run(optjx.scale_by_adagrad(**kwargs), grads)
    ref_kwargs = {
        "initial" if k == "initial_accumulator_value" else k: v for k, v in kwargs.items()
    }
    assert_trajectories_close(actual, per_leaf(adagrad_reference(**ref_kwargs), grads), rtol=1e-9)
    assert_step_count(state, 60)


def test_goodfellow_adagrad(x64):
    # Goodfellow, Bengio & Courville (2016), Algorithm 8.4:
    #   r <- r + g*g;  dtheta = -eps / (delta + sqrt(r)) * g,  delta = 1e-7.
    lr, delta = 0.1, 1e-7
    grads = mixed_gradients(60, seed=52)

    def algorithm_8_4(sequence):
        outputs, r = [], 0.0
        for g in sequence:
            r = r + g * g
            outputs.append(-lr / (delta + np.sqrt(r)) * g)
        return outputs

    actual, _ = run(optjx.adagrad(lr, eps=delta), grads)
    assert_trajectories_close(actual, per_leaf(algorithm_8_4, grads), rtol=1e-9)


def test_float16_gradients_into_float32_state(x64):
    # Mixed precision: float32 state, float16 gradients; 300**2 is inf in float16.
    values = np.array([300.0, -1e-3, 0.5, 0.0])
    steps = [values * s for s in (1.0, -2.0, 0.0, 0.5, 1.0)]
    tx = optjx.scale_by_adagrad()
    state = tx.init({"w": jnp.zeros(4, jnp.float32)})
    grads16 = [{"w": jnp.asarray(g, jnp.float16)} for g in steps]
    exact = [{"w": np.asarray(g["w"], np.float64)} for g in grads16]
    expected = per_leaf(adagrad_reference(), exact)
    for g, e in zip(grads16, expected, strict=True):
        out, state = tx.update(g, state)
        assert out["w"].dtype == jnp.float16 and state.sum_of_squares["w"].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(out["w"], np.float64), e["w"], rtol=2e-3, atol=1e-6)


def test_all_zero_first_gradients(x64):
    grads = mixed_gradients(55, seed=53, zero_steps=ZERO_FIRST)
    actual, _ = run(optjx.scale_by_adagrad(), grads)
    assert_trajectories_close(actual, per_leaf(adagrad_reference(), grads), rtol=1e-9)
