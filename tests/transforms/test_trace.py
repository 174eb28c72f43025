"""trace against PyTorch's momentum-buffer formula, and the two learning-rate placements.

Reference (torch.optim.SGD, written from its documented algorithm):
    b_1 = g_1;  b_t = mu_k b_{t-1} + (1 - tau_k) g_t;  output b_t, or g_t + mu_k b_t (Nesterov)
with mu and tau evaluated at k = t - 1 applied updates.
"""

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


def _momentum_reference(momentum, dampening=lambda k: 0.0, nesterov=False):
    def reference(sequence):
        outputs, buffer = [], None
        for k, g in enumerate(sequence):
            mu, tau = momentum(k), dampening(k)
            buffer = g.copy() if buffer is None else mu * buffer + (1.0 - tau) * g
            outputs.append(g + mu * buffer if nesterov else buffer.copy())
        return outputs

    return reference


def _const(value):
    return lambda k: value


@pytest.mark.parametrize(
    "decay, dampening, nesterov, ref_decay, ref_dampening",
    [
        (0.9, 0.0, False, _const(0.9), _const(0.0)),
        (0.9, 0.0, True, _const(0.9), _const(0.0)),
        (0.8, 0.3, False, _const(0.8), _const(0.3)),
        (0.5, 0.5, False, _const(0.5), _const(0.5)),
        (0.0, 0.0, False, _const(0.0), _const(0.0)),
        (1.5, 0.0, False, _const(1.5), _const(0.0)),  # mu > 1 is legal (torch too)
        (
            schedules.linear(0.5, 0.9, 30),
            schedules.constant(0.2),
            False,
            lambda k: 0.5 + 0.4 * min(k, 30) / 30,
            _const(0.2),
        ),
        (
            schedules.linear(0.5, 0.9, 30),
            0.0,
            True,
            lambda k: 0.5 + 0.4 * min(k, 30) / 30,
            _const(0.0),
        ),
    ],
    ids=[
        "heavy-ball",
        "nesterov",
        "dampening",
        "dampening-half",
        "zero-momentum",
        "momentum-above-one",
        "scheduled-momentum-dampening",
        "scheduled-momentum-nesterov",
    ],
)
def test_trace_matches_torch_formula(x64, decay, dampening, nesterov, ref_decay, ref_dampening):
    steps = 30 if decay == 1.5 else 60  # 1.5**60 would only test overflow
    grads = mixed_gradients(steps, seed=11)
    actual, state = run(optjx.trace(decay, dampening=dampening, nesterov=nesterov), grads)
    expected = per_leaf(_momentum_reference(ref_decay, ref_dampening, nesterov), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)
    # Dampening reads the count (undamped first step); otherwise only a schedule does.
    assert_step_count(state, steps)


def test_first_step_is_undamped(x64):
    # PyTorch copies the first gradient into the buffer without dampening; a zero-started
    # buffer with dampening everywhere would give (1 - tau) g instead.
    g = {"w": np.array([2.0, -3.0])}
    (first,), _ = run(optjx.trace(0.9, dampening=0.75), [g])
    np.testing.assert_array_equal(first["w"], g["w"])


def _velocity_reference(momentum, lr):
    """Lecture-notes velocity form: v = a v - lr_k g; w += v (the update is v)."""

    def reference(sequence):
        outputs, v = [], 0.0
        for k, g in enumerate(sequence):
            v = momentum * v - lr(k) * g
            outputs.append(v)
        return outputs

    return reference


def _pytorch_form_reference(momentum, lr):
    """torch.optim.SGD: b = a b + g (b_1 = g); w -= lr_k b (the update is -lr_k b)."""

    def reference(sequence):
        outputs, b = [], None
        for k, g in enumerate(sequence):
            b = g.copy() if b is None else momentum * b + g
            outputs.append(-lr(k) * b)
        return outputs

    return reference


def test_learning_rate_placements_under_a_schedule(x64):
    grads = mixed_gradients(60, seed=12)
    # Step decay: x0.1 at 15 and at 40, so the remembered momentum matters.
    lr = schedules.piecewise_constant(0.5, {15: 0.1, 40: 0.1})

    def lr_ref(k):
        return 0.5 * (0.1 if k >= 15 else 1.0) * (0.1 if k >= 40 else 1.0)

    velocity, _ = run(optjx.chain(optjx.scale_by_learning_rate(lr), optjx.trace(0.9)), grads)
    pytorch, _ = run(optjx.chain(optjx.trace(0.9), optjx.scale_by_learning_rate(lr)), grads)
    assert_trajectories_close(
        velocity, per_leaf(_velocity_reference(0.9, lr_ref), grads), rtol=1e-9
    )
    assert_trajectories_close(
        pytorch, per_leaf(_pytorch_form_reference(0.9, lr_ref), grads), rtol=1e-9
    )
    # The schedule makes the two forms genuinely different trajectories.
    assert max_relative_difference(velocity, pytorch) > 0.5


def test_learning_rate_placements_agree_for_a_constant_rate(x64):
    grads = mixed_gradients(50, seed=13)
    velocity, _ = run(optjx.chain(optjx.scale_by_learning_rate(0.05), optjx.trace(0.9)), grads)
    pytorch, _ = run(optjx.chain(optjx.trace(0.9), optjx.scale_by_learning_rate(0.05)), grads)
    expected = per_leaf(_velocity_reference(0.9, lambda k: 0.05), grads)
    assert_trajectories_close(velocity, expected, rtol=1e-9)
    assert_trajectories_close(pytorch, expected, rtol=1e-9)


def test_all_zero_first_gradients(x64):
    # The buffer is created from the (zero) first gradient and damped from step 2 on,
    # as in PyTorch: a zero-started buffer would not be the same as "first step undamped".
    grads = mixed_gradients(55, seed=14, zero_steps=ZERO_FIRST)
    actual, _ = run(optjx.trace(0.9, dampening=0.3), grads)
    expected = per_leaf(_momentum_reference(_const(0.9), _const(0.3)), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)
