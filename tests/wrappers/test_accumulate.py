"""accumulate_gradients against Adam written in float64 NumPy, on large and micro batches.

A least-squares problem: the large-batch gradient at step s is the mean of the per-example
gradients over a batch of 4B examples; the k = 4 run sees the same batch as four
micro-batches of B, one per call. Reference (Kingma & Ba, Algorithm 1) steps once per
large batch:
    g = mean over the batch;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
    w <- w - lr m_hat / (sqrt(v_hat) + eps)
"""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import adam_step, run_training

import optjx

D, B = 5, 3
_rng = np.random.default_rng(4)
X = _rng.normal(size=(48, 4 * B, D))  # 48 large batches of 4B examples
Y = X @ _rng.normal(size=D) + 0.1 * _rng.normal(size=(48, 4 * B))
W0 = {"w": _rng.normal(size=D), "b": np.zeros(())}
LR = 0.05


def batch_gradient(params, x, y):
    """Gradient of mean((x w + b - y)^2 / 2) over the rows of x."""
    residual = x @ np.asarray(params["w"]) + np.asarray(params["b"]) - y
    return {"w": x.T @ residual / len(y), "b": np.asarray(np.mean(residual))}


def adam_reference(batches, b1=0.9, b2=0.999, eps=1e-8):
    """Params after each large-batch Adam step."""
    w = {n: np.array(v, dtype=np.float64) for n, v in W0.items()}
    state = {n: None for n in w}
    out = []
    for x, y in batches:
        g = batch_gradient(w, x, y)
        for n in w:
            direction, state[n] = adam_step(g[n], state[n], b1=b1, b2=b2, eps=eps)
            w[n] = w[n] - LR * direction
        out.append({n: w[n].copy() for n in w})
    return out


def run_optjx(tx, micro_batches):
    run = run_training(
        tx, lambda params, t: batch_gradient(params, *micro_batches[t]), W0, len(micro_batches)
    )
    return run.params, run.updates, run.states[-1]


def test_k1_is_the_inner_optimizer(x64):
    batches = list(zip(X[:40], Y[:40], strict=True))
    params, _, state = run_optjx(optjx.accumulate_gradients(optjx.adam(LR), 1), batches)
    expected = adam_reference(batches)
    for t, (a, e) in enumerate(zip(params, expected, strict=True)):
        for n in e:
            np.testing.assert_allclose(a[n], e[n], rtol=1e-11, err_msg=f"step {t}, {n}")
    assert int(state.inner_state[0].count) == 40


def test_k4_equals_one_large_batch_step(x64):
    k, steps = 4, 12  # 48 calls
    micro = [
        (X[s, j * B : (j + 1) * B], Y[s, j * B : (j + 1) * B])
        for s in range(steps)
        for j in range(k)
    ]
    params, updates, state = run_optjx(optjx.accumulate_gradients(optjx.adam(LR), k), micro)
    expected = adam_reference(list(zip(X[:steps], Y[:steps], strict=True)))
    for call, (p, u) in enumerate(zip(params, updates, strict=True)):
        s, j = divmod(call, k)
        if j < k - 1:
            for n in u:
                np.testing.assert_array_equal(u[n], 0.0, err_msg=f"call {call}")
        previous = expected[s] if j == k - 1 else (expected[s - 1] if s else W0)
        for n in p:
            np.testing.assert_allclose(p[n], previous[n], rtol=1e-11, err_msg=f"call {call}, {n}")
    # The inner optimizer stepped once per group and the sum was emptied at the end.
    assert int(state.inner_state[0].count) == steps
    assert int(state.count) == steps and int(state.micro_step) == 0
    np.testing.assert_array_equal(state.gradient_sum["w"], 0.0)


def test_micro_step_and_sum_in_the_middle_of_a_group(x64):
    tx = optjx.accumulate_gradients(optjx.sgd(1.0), 3)
    params = {"x": jnp.zeros(2)}
    state = tx.init(params)
    for g in ([1.0, 2.0], [3.0, 5.0]):
        updates, state = tx.update({"x": jnp.asarray(g)}, state, params)
        np.testing.assert_array_equal(updates["x"], 0.0)
    assert int(state.micro_step) == 2
    np.testing.assert_array_equal(state.gradient_sum["x"], [4.0, 7.0])
    updates, state = tx.update({"x": jnp.asarray([2.0, 2.0])}, state, params)
    np.testing.assert_allclose(updates["x"], [-2.0, -3.0])


def test_mismatched_gradients_name_the_key_path():
    tx = optjx.accumulate_gradients(optjx.sgd(1.0), 2)
    state = tx.init({"x": jnp.zeros(2), "y": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"\['y'\]"):
        tx.update({"x": jnp.zeros(2)}, state)
