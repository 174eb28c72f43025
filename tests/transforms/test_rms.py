"""scale_by_rms against RMSProp's formula, both eps placements, centered, initial_scale.

Reference (Tieleman & Hinton 2012; centered: Graves 2013):
    v_t = r_k v_{t-1} + (1 - r_k) g_t^2,   gbar_t = r_k gbar_{t-1} + (1 - r_k) g_t
    u_t = g_t / (sqrt(v_t [- gbar_t^2] + eps_root) + eps),   v_0 = initial_scale, gbar_0 = 0
"""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    ZERO_FIRST,
    assert_step_count,
    assert_trajectories_close,
    max_relative_difference,
    mixed_gradients,
    per_leaf,
    run,
)

import optjx
from optjx import schedules


def rms_reference(
    decay, eps=1e-8, eps_root=0.0, centered=False, initial_scale=0.0, bias_correction=False
):
    def reference(sequence):
        outputs, v, mean = [], initial_scale, 0.0
        for k, g in enumerate(sequence):
            rho = decay(k)
            v = rho * v + (1.0 - rho) * g * g
            correction = 1.0 - rho ** (k + 1) if bias_correction else 1.0
            variance = v / correction
            if centered:
                mean = rho * mean + (1.0 - rho) * g
                variance = v / correction - (mean / correction) ** 2
            outputs.append(g / (np.sqrt(variance + eps_root) + eps))
        return outputs

    return reference


CONFIGS = {
    "default": dict(decay=0.9),
    "eps-outside": dict(decay=0.9, eps=1e-3),
    "eps-root-inside": dict(decay=0.9, eps=0.0, eps_root=1e-3),
    "both-eps": dict(decay=0.99, eps=1e-4, eps_root=1e-2),
    "centered": dict(decay=0.9, centered=True),
    "centered-eps-root": dict(decay=0.95, eps=0.0, eps_root=1e-4, centered=True),
    "initial-scale": dict(decay=0.9, initial_scale=1.0),
    "centered-initial-scale": dict(decay=0.9, centered=True, initial_scale=0.1),
    "bias-correction": dict(decay=0.99, bias_correction=True),
    # The first step is exactly 0 under the root (v_hat = m_hat^2): eps_root keeps the
    # comparison away from that cancellation.
    "bias-correction-centered": dict(decay=0.9, eps_root=1.0, centered=True, bias_correction=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_scale_by_rms_matches_formula(x64, name):
    kwargs = CONFIGS[name]
    grads = mixed_gradients(60, seed=41)
    actual, state = run(optjx.scale_by_rms(**kwargs), grads)
    decay = kwargs["decay"]
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "decay"}
    expected = per_leaf(rms_reference(lambda k: decay, **ref_kwargs), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)
    # Only the bias correction reads the count (constant decay otherwise).
    assert_step_count(state, 60)


def test_bias_corrected_rmsprop_is_adam_without_momentum(x64):
    # With the bias correction, RMSProp's direction is Adam's with b1 = 0 (optax's flag).
    grads = mixed_gradients(40, seed=43)
    rms, _ = run(optjx.scale_by_rms(0.999, eps=1e-8, bias_correction=True), grads)
    adam, _ = run(optjx.scale_by_adam(0.0, 0.999, eps=1e-8), grads)
    assert_trajectories_close(rms, adam, rtol=1e-12)


def test_scheduled_decay(x64):
    grads = mixed_gradients(60, seed=42)
    decay = schedules.cosine(0.99, 50, alpha=0.5)

    def ref_decay(k):
        return 0.99 * (0.5 + 0.5 * 0.5 * (1 + np.cos(np.pi * min(k, 50) / 50)))

    actual, _ = run(optjx.scale_by_rms(decay, centered=True), grads)
    expected = per_leaf(rms_reference(ref_decay, centered=True), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)


def test_eps_placements_are_different_rules(x64):
    # The two placements are told apart by the data above (otherwise the formula
    # tests could not detect a swap).
    grads = mixed_gradients(60, seed=41)
    outside = per_leaf(rms_reference(lambda k: 0.9, eps=1e-3), grads)
    inside = per_leaf(rms_reference(lambda k: 0.9, eps=0.0, eps_root=1e-3), grads)
    assert max_relative_difference(outside, inside) > 0.1


def test_goodfellow_rmsprop(x64):
    # Goodfellow, Bengio & Courville (2016), Algorithm 8.5:
    #   r <- rho r + (1 - rho) g*g;  dtheta = -eps / sqrt(delta + r) * g,  delta = 1e-6.
    lr, rho, delta = 1e-2, 0.9, 1e-6
    grads = mixed_gradients(60, seed=43)

    def algorithm_8_5(sequence):
        outputs, r = [], 0.0
        for g in sequence:
            r = rho * r + (1 - rho) * g * g
            outputs.append(-lr / np.sqrt(delta + r) * g)
        return outputs

    actual, _ = run(optjx.rmsprop(lr, decay=rho, eps=0.0, eps_root=delta), grads)
    assert_trajectories_close(actual, per_leaf(algorithm_8_5, grads), rtol=1e-9)


def test_rmsprop_centered_with_momentum(x64):
    # torch.optim.RMSprop's documented algorithm: b <- mu b + g / (sqrt(v - gbar^2) + eps),
    # from b_0 = 0; theta <- theta - lr b.
    lr, alpha, mu, eps = 1e-3, 0.99, 0.9, 1e-8
    grads = mixed_gradients(60, seed=44)

    def torch_rmsprop(sequence):
        directions = rms_reference(lambda k: alpha, eps=eps, centered=True)(sequence)
        outputs, b = [], 0.0
        for d in directions:
            b = mu * b + d
            outputs.append(-lr * b)
        return outputs

    actual, _ = run(optjx.rmsprop(lr, alpha, centered=True, momentum=mu), grads)
    assert_trajectories_close(actual, per_leaf(torch_rmsprop, grads), rtol=1e-9)


def test_float16_gradients_into_float32_state(x64):
    # Mixed precision: float32 params (so float32 state), float16 gradients. The square
    # is taken in the state's dtype; in float16, 300**2 overflowed to inf (output 0).
    values = np.array([300.0, -1e-3, 0.5, 0.0])
    steps = [values * s for s in (1.0, -2.0, 0.0, 0.5, 1.0)]
    tx = optjx.scale_by_rms(0.9, centered=True)
    state = tx.init({"w": jnp.zeros(4, jnp.float32)})
    grads16 = [{"w": jnp.asarray(g, jnp.float16)} for g in steps]
    exact = [{"w": np.asarray(g["w"], np.float64)} for g in grads16]
    expected = per_leaf(rms_reference(lambda k: 0.9, centered=True), exact)
    for g, e in zip(grads16, expected, strict=True):
        out, state = tx.update(g, state)
        assert out["w"].dtype == jnp.float16 and state.mean_square["w"].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(out["w"], np.float64), e["w"], rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("name", ["default", "centered-eps-root"])
def test_all_zero_first_gradients(x64, name):
    kwargs = dict(CONFIGS[name])
    decay = kwargs.pop("decay")
    grads = mixed_gradients(55, seed=45, zero_steps=ZERO_FIRST)
    actual, _ = run(optjx.scale_by_rms(decay, **kwargs), grads)
    expected = per_leaf(rms_reference(lambda k: decay, **kwargs), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)
