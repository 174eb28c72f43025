"""scale and scale_by_learning_rate against u_t = s_k g_t (k = updates already applied)."""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import assert_trajectories_close, mixed_gradients, per_leaf, run

import optjx


def _scaled_reference(step_sizes):
    """u_t = s_k g_t with s_k the step size after k applied updates (k = t - 1)."""

    def reference(sequence):
        return [step_sizes(k) * g for k, g in enumerate(sequence)]

    return reference


def _linear(k):
    # The NumPy form of schedules.linear(0.3, -0.1, 25): (1 - a) * 0.3 + a * (-0.1).
    a = min(k, 25) / 25
    return (1 - a) * 0.3 + a * -0.1


@pytest.mark.parametrize(
    "step_size, reference_value",
    [
        (0.37, lambda k: 0.37),
        (-2.5, lambda k: -2.5),  # plain arithmetic: negative factors are allowed
        (np.float64(1e-3), lambda k: 1e-3),
        (optjx.schedules.linear(0.3, -0.1, 25), _linear),
    ],
    ids=["positive", "negative", "numpy-scalar", "schedule"],
)
def test_scale_matches_formula(x64, step_size, reference_value):
    grads = mixed_gradients(55)
    actual, state = run(optjx.scale(step_size), grads)
    assert_trajectories_close(actual, per_leaf(_scaled_reference(reference_value), grads))
    # The counter is kept whatever the step size is: the structure is one for a number,
    # an array and a schedule (inject_hyperparams turns the one into the other).
    assert int(state.count) == 55


def test_scale_by_learning_rate_flips_sign(x64):
    grads = mixed_gradients(55, seed=3)
    lr = optjx.schedules.exponential(0.5, 0.9, 4)
    actual, _ = run(optjx.scale_by_learning_rate(lr), grads)
    expected = per_leaf(_scaled_reference(lambda k: -0.5 * 0.9 ** (k / 4)), grads)
    assert_trajectories_close(actual, expected)

    actual, _ = run(optjx.scale_by_learning_rate(0.25, flip_sign=False), grads)
    assert_trajectories_close(actual, per_leaf(_scaled_reference(lambda k: 0.25), grads))


def test_scale_by_learning_rate_accepts_an_array(x64):
    grads = mixed_gradients(50, seed=4)
    actual, _ = run(optjx.scale_by_learning_rate(jnp.asarray(0.125)), grads)
    assert_trajectories_close(actual, per_leaf(_scaled_reference(lambda k: -0.125), grads))
