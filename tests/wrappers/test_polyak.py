"""polyak_averaging against the two averages written in float64 NumPy.

Reference, with w_0 the initial params and w_t = w_{t-1} + u_t the iterates of the inner
optimizer (torch SGD with momentum here, written out too):
    uniform:      a_t = (1/t) sum_{i=1..t} w_i          (a plain np.mean over the iterates)
    exponential:  a_0 = w_0,  a_t = beta_k a_{t-1} + (1 - beta_k) w_t,  k = t - 1
"""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import run_training

import optjx

SHAPES = {"w": (3, 4), "b": (5,)}
_rng = np.random.default_rng(5)
CURVATURE = {n: _rng.uniform(0.5, 3.0, size=s) for n, s in SHAPES.items()}
NOISE = [{n: 0.5 * _rng.normal(size=s) for n, s in SHAPES.items()} for _ in range(64)]
W0 = {n: _rng.normal(size=s) for n, s in SHAPES.items()}
LR, MU = 0.05, 0.9


def gradient(params, t):
    return {n: CURVATURE[n] * np.asarray(params[n]) + NOISE[t][n] for n in SHAPES}


def iterates_reference(steps):
    """torch.optim.SGD with momentum: b_1 = g_1, b = mu b + g, w <- w - lr b."""
    w, b, out = {n: W0[n].copy() for n in SHAPES}, None, []
    for t in range(steps):
        g = gradient(w, t)
        b = g if b is None else {n: MU * b[n] + g[n] for n in SHAPES}
        w = {n: w[n] - LR * b[n] for n in SHAPES}
        out.append(w)
    return out


def run_optjx(tx, steps):
    run = run_training(tx, gradient, W0, steps)
    return run.params, [optjx.averaged_params(s) for s in run.states], run.states[-1]


def assert_close(actual, expected, what, rtol=1e-10):
    for t, (a, e) in enumerate(zip(actual, expected, strict=True)):
        for n in SHAPES:
            np.testing.assert_allclose(
                a[n], e[n], rtol=rtol, atol=1e-13, err_msg=f"{what}, step {t + 1}, {n}"
            )


def test_uniform_average_of_the_iterates(x64):
    steps = 45
    params, averages, state = run_optjx(optjx.polyak_averaging(optjx.sgd(LR, momentum=MU)), steps)
    iterates = iterates_reference(steps)
    assert_close(params, iterates, "params (updates pass through)")
    expected = [
        {n: np.mean([w[n] for w in iterates[: t + 1]], axis=0) for n in SHAPES}
        for t in range(steps)
    ]
    assert_close(averages, expected, "uniform average")
    assert int(state.count) == steps
    # w_0 is not part of the uniform average.
    np.testing.assert_allclose(averages[0]["w"], iterates[0]["w"], rtol=1e-15)


@pytest.mark.parametrize("scheduled", [False, True], ids=["constant", "schedule"])
def test_exponential_average_of_the_iterates(x64, scheduled):
    steps = 45
    decay = optjx.schedules.linear(0.5, 0.95, 30) if scheduled else 0.8

    def beta(k):
        return 0.5 + 0.45 * min(k, 30) / 30 if scheduled else 0.8

    tx = optjx.polyak_averaging(optjx.sgd(LR, momentum=MU), decay=decay)
    params, averages, _ = run_optjx(tx, steps)
    iterates = iterates_reference(steps)
    assert_close(params, iterates, "params (updates pass through)")
    a, expected = {n: W0[n].copy() for n in SHAPES}, []
    for k, w in enumerate(iterates):
        a = {n: beta(k) * a[n] + (1 - beta(k)) * w[n] for n in SHAPES}
        expected.append(a)
    assert_close(averages, expected, "exponential average")


def test_decay_zero_tracks_the_params(x64):
    params, averages, _ = run_optjx(optjx.polyak_averaging(optjx.sgd(LR), decay=0.0), 5)
    assert_close(averages, params, "decay 0", rtol=1e-15)


def test_average_is_a_copy_and_needs_params():
    tx = optjx.polyak_averaging(optjx.sgd(0.1))
    params = {"x": jnp.arange(3.0)}
    state = tx.init(params)
    assert state.average["x"].unsafe_buffer_pointer() != params["x"].unsafe_buffer_pointer()
    with pytest.raises(ValueError, match="polyak_averaging needs the current params"):
        tx.update(params, state)
