"""scale_by_adam against Kingma & Ba (2015), Algorithm 1, and torch's AMSGrad.

Reference:
    m_t = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) g_t^2
    m_hat = m_t / (1 - b1^t),          v_hat = v_t / (1 - b2^t)
      (AMSGrad as torch.optim.Adam: v_hat = max_{i<=t} v_i / (1 - b2^t))
    u_t = m_hat / (sqrt(v_hat + eps_root) + eps)
"""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    ZERO_FIRST,
    adam_step,
    assert_trajectories_close,
    max_relative_difference,
    mixed_gradients,
    per_leaf,
    run,
)

import optjx
from optjx import schedules


def adam_reference(**kwargs):
    """One leaf's sequence of gradients -> its sequence of Adam directions
    (``_reference.adam_step``; ``b1``, ``b2`` functions of ``k``, ``amsgrad`` None,
    "torch" or "corrected")."""

    def reference(sequence):
        outputs, state = [], None
        for g in sequence:
            direction, state = adam_step(g, state, **kwargs)
            outputs.append(direction)
        return outputs

    return reference


def _const(x):
    return lambda k: x


CONFIGS = {
    "default": (dict(), dict()),
    "b2-0.99": (dict(b1=0.8, b2=0.99), dict(b1=_const(0.8), b2=_const(0.99))),
    "b1-zero": (dict(b1=0.0), dict(b1=_const(0.0))),
    "large-eps": (dict(eps=1e-3), dict(eps=1e-3)),
    "eps-root-inside": (dict(eps=0.0, eps_root=1e-6), dict(eps=0.0, eps_root=1e-6)),
    "amsgrad": (dict(amsgrad=True), dict(amsgrad="torch")),
    "amsgrad-eps-root": (
        dict(b2=0.95, eps=1e-6, eps_root=1e-4, amsgrad=True),
        dict(b2=_const(0.95), eps=1e-6, eps_root=1e-4, amsgrad="torch"),
    ),
    "scheduled-betas": (
        dict(b1=schedules.linear(0.5, 0.9, 30), b2=schedules.constant(0.99)),
        dict(b1=lambda k: 0.5 + 0.4 * min(k, 30) / 30, b2=_const(0.99)),
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_scale_by_adam_matches_formula(x64, name):
    kwargs, ref_kwargs = CONFIGS[name]
    grads = mixed_gradients(60, seed=61)
    actual, state = run(optjx.scale_by_adam(**kwargs), grads)
    assert_trajectories_close(actual, per_leaf(adam_reference(**ref_kwargs), grads), rtol=1e-9)
    assert int(state.count) == 60


def test_amsgrad_is_torchs_not_the_max_of_corrected_moments(x64):
    # The data separate the two AMSGrad variants, so the test above pins torch's.
    grads = mixed_gradients(60, seed=61)
    torch_form = per_leaf(adam_reference(amsgrad="torch"), grads)
    corrected_form = per_leaf(adam_reference(amsgrad="corrected"), grads)
    assert max_relative_difference(torch_form, corrected_form) > 0.1


def test_course_notes_adam_with_epsilon_inside_the_root(x64):
    # w <- w - lr * m_hat / sqrt(v_hat + delta): the alias with eps=0, eps_root=delta.
    lr, b1, b2, delta = 1e-3, 0.9, 0.999, 1e-8
    grads = mixed_gradients(60, seed=62)

    def notes_adam(sequence):
        outputs, m, v = [], 0.0, 0.0
        for t, g in enumerate(sequence, start=1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            outputs.append(-lr * m_hat / np.sqrt(v_hat + delta))
        return outputs

    actual, _ = run(optjx.adam(lr, b1, b2, eps=0.0, eps_root=delta), grads)
    assert_trajectories_close(actual, per_leaf(notes_adam, grads), rtol=1e-9)


def test_float16_gradients_with_float32_moments(x64):
    # mu_dtype/nu_dtype=float32 must protect float16 training: g**2 is taken in the
    # moment's dtype (300**2 is inf and 1e-4**2 is 0 in float16) and the ratio with its
    # eps in the wider dtype (1e-8 is 0 in float16). Before the fix: inf, 0 and nan.
    values = np.array([1e-4, 300.0, -1e-3, 0.0, 2.5])
    steps = [values * s for s in (1.0, -0.5, 0.0, 2.0, 1.0, -1.0)]
    tx = optjx.scale_by_adam(mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    grads16 = [{"w": jnp.asarray(g, jnp.float16)} for g in steps]
    state = tx.init(grads16[0])
    exact = [{"w": np.asarray(g["w"], np.float64)} for g in grads16]
    expected = per_leaf(adam_reference(), exact)
    for g, e in zip(grads16, expected, strict=True):
        out, state = tx.update(g, state)
        assert out["w"].dtype == jnp.float16
        assert state.nu["w"].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(out["w"], np.float64), e["w"], rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_all_zero_first_gradients(x64, amsgrad):
    # m = v = 0 after the first steps: the update is 0 / (0 + eps) = 0, not NaN.
    grads = mixed_gradients(55, seed=63, zero_steps=ZERO_FIRST)
    actual, _ = run(optjx.scale_by_adam(amsgrad=amsgrad), grads)
    expected = per_leaf(adam_reference(amsgrad="torch" if amsgrad else None), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)
