"""scale_by_adadelta against Zeiler (2012), Algorithm 1, in torch.optim.Adadelta's order.

Algorithm 1 (RMS[y]_t = sqrt(E[y^2]_t + eps)):
    E[g^2]_t  = rho E[g^2]_{t-1} + (1 - rho) g_t^2
    dx_t      = -RMS[dx]_{t-1} / RMS[g]_t * g_t
    E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) dx_t^2
    x_{t+1}   = x_t + dx_t
torch multiplies the step by lr only when applying it: E[dx^2] accumulates the
unscaled dx, and the parameter moves by lr * dx.
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
from optjx import schedules


def zeiler_reference(rho, eps, lr=1.0):
    """The parameter change of Algorithm 1, scaled by ``lr`` as torch applies it."""

    def reference(sequence):
        outputs, mean_square_grad, mean_square_step = [], 0.0, 0.0
        for k, g in enumerate(sequence):
            r = rho(k)
            mean_square_grad = r * mean_square_grad + (1 - r) * g * g
            step = -np.sqrt(mean_square_step + eps) / np.sqrt(mean_square_grad + eps) * g
            mean_square_step = r * mean_square_step + (1 - r) * step * step
            outputs.append(lr * step)
        return outputs

    return reference


def _negated(trajectory):
    return [{name: -leaf for name, leaf in tree.items()} for tree in trajectory]


@pytest.mark.parametrize(
    "rho, eps, ref_rho",
    [
        (0.9, 1e-6, lambda k: 0.9),
        (0.95, 1e-6, lambda k: 0.95),  # the paper's experiments
        (0.9, 1e-2, lambda k: 0.9),
        (schedules.linear(0.5, 0.95, 40), 1e-6, lambda k: 0.5 + 0.45 * min(k, 40) / 40),
    ],
    ids=["0.9", "paper", "large-eps", "schedule"],
)
def test_scale_by_adadelta_matches_algorithm_1(x64, rho, eps, ref_rho):
    grads = mixed_gradients(60, seed=71)
    actual, state = run(optjx.scale_by_adadelta(rho, eps=eps), grads)
    # The building block returns the descent direction, -dx.
    expected = _negated(per_leaf(zeiler_reference(ref_rho, eps), grads))
    assert_trajectories_close(actual, expected, rtol=1e-9)
    assert_step_count(state, 60)


def test_adadelta_alias_scales_after_accumulating(x64):
    grads = mixed_gradients(60, seed=72)
    actual, _ = run(optjx.adadelta(0.5, rho=0.9, eps=1e-6), grads)
    expected = per_leaf(zeiler_reference(lambda k: 0.9, 1e-6, lr=0.5), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)


def test_float16_gradients_into_float32_state(x64):
    # Mixed precision: float32 state, float16 gradients; 300**2 is inf in float16.
    values = np.array([300.0, -1e-3, 0.5, 0.0])
    steps = [values * s for s in (1.0, -2.0, 0.0, 0.5, 1.0)]
    tx = optjx.scale_by_adadelta(0.9, eps=1e-6)
    state = tx.init({"w": jnp.zeros(4, jnp.float32)})
    grads16 = [{"w": jnp.asarray(g, jnp.float16)} for g in steps]
    exact = [{"w": np.asarray(g["w"], np.float64)} for g in grads16]
    expected = _negated(per_leaf(zeiler_reference(lambda k: 0.9, 1e-6), exact))
    for g, e in zip(grads16, expected, strict=True):
        out, state = tx.update(g, state)
        assert out["w"].dtype == jnp.float16
        assert state.mean_square_grad["w"].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(out["w"], np.float64), e["w"], rtol=2e-3, atol=1e-6)


def test_all_zero_first_gradients(x64):
    grads = mixed_gradients(55, seed=73, zero_steps=ZERO_FIRST)
    actual, _ = run(optjx.scale_by_adadelta(0.9, eps=1e-6), grads)
    expected = _negated(per_leaf(zeiler_reference(lambda k: 0.9, 1e-6), grads))
    assert_trajectories_close(actual, expected, rtol=1e-9)
