"""The wrappers' states: orbax checkpoints, buffer donation, and the accessors.

* Checkpoint: 6 steps, save the whole state with orbax, restore it into a fresh ``init``
  template, 6 more steps: bit-identical to 12 uninterrupted steps, for every wrapper.
* Donation: a jitted step that donates params and state runs for lookahead and polyak
  averaging (the slow weights and the average are copies, never the params' buffers), and
  gives the float64 NumPy reference's values.
* ``slow_params`` / ``averaged_params`` find their state anywhere in a chain's state.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from _placement import uncommitted

import optjx

_rng = np.random.default_rng(8)
W0 = {"w": _rng.normal(size=(3, 4)), "b": _rng.normal(size=5)}
GRADS = [{n: _rng.normal(size=np.shape(v)) for n, v in W0.items()} for _ in range(12)]
GRADS[2]["w"][0, 1] = np.nan  # exercised by apply_if_finite (the others see NaN too,
GRADS[8]["b"][3] = np.inf  # so they get finite gradients in their own runs below)
VALUES = [5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0]

WRAPPERS = {
    "lookahead": lambda: optjx.lookahead(optjx.adam(0.1), sync_period=4, reset_state=True),
    "polyak": lambda: optjx.polyak_averaging(optjx.sgd(0.1, momentum=0.9)),
    "apply_if_finite": lambda: optjx.apply_if_finite(
        optjx.sgd(0.1, momentum=0.9), max_consecutive_errors=1
    ),
    "reduce_on_plateau": lambda: optax.chain(
        optjx.sgd(0.1, momentum=0.9), optjx.reduce_on_plateau(factor=0.5, patience=1)
    ),
    "accumulate_gradients": lambda: optjx.accumulate_gradients(optjx.adam(0.1), 4),
}


def grads_for(name, t):
    g = GRADS[t]
    if name != "apply_if_finite":
        g = jax.tree.map(lambda x: np.nan_to_num(x, nan=0.5, posinf=0.5), g)
    return jax.tree.map(jnp.asarray, g)


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_checkpoint_restore_continues_bit_identically(name, tmp_path):
    tx = WRAPPERS[name]()

    @jax.jit
    def step(params, state, grads, value):
        updates, state = tx.update(grads, state, params, value=value)
        return optax.apply_updates(params, updates), state

    def run(params, state, steps):
        for t in steps:
            params, state = step(params, state, grads_for(name, t), jnp.asarray(VALUES[t]))
        return params, state

    params0 = jax.tree.map(jnp.asarray, W0)
    straight_params, straight_state = run(params0, tx.init(params0), range(12))

    params, state = run(params0, tx.init(params0), range(6))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
    checkpointer.wait_until_finished()
    template = {"params": params0, "opt_state": tx.init(params0)}
    restored = uncommitted(checkpointer.restore(tmp_path / "ckpt", template))
    assert jax.tree.structure(restored) == jax.tree.structure(template)
    params, state = run(restored["params"], restored["opt_state"], range(6, 12))

    for a, b in zip(
        jax.tree.leaves((params, state)),
        jax.tree.leaves((straight_params, straight_state)),
        strict=True,
    ):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # The run was not trivial: the params moved and every leaf is finite.
    assert not np.allclose(params["w"], W0["w"])
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


def _donating_step(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def test_donation_lookahead(x64):
    k, alpha, lr = 3, 0.5, 0.1
    tx = optjx.lookahead(optjx.sgd(lr), sync_period=k, slow_step_size=alpha)
    step = _donating_step(tx)
    params = jax.tree.map(jnp.asarray, W0)
    state = tx.init(params)
    fast = {n: v.copy() for n, v in W0.items()}
    slow = {n: v.copy() for n, v in W0.items()}
    for t in range(1, 8):
        old_params = params
        params, state = step(params, state, jax.tree.map(jnp.asarray, GRADS[t]))
        assert old_params["w"].is_deleted()  # the donation really happened
        fast = {n: fast[n] - lr * GRADS[t][n] for n in W0}
        if t % k == 0:
            slow = {n: slow[n] + alpha * (fast[n] - slow[n]) for n in W0}
            fast = {n: slow[n].copy() for n in W0}
        for n in W0:
            np.testing.assert_allclose(params[n], fast[n], rtol=1e-12, err_msg=f"step {t}")
            np.testing.assert_allclose(optjx.slow_params(state)[n], slow[n], rtol=1e-12)


def test_donation_polyak_averaging(x64):
    lr = 0.1
    tx = optjx.polyak_averaging(optjx.sgd(lr), decay=0.5)
    step = _donating_step(tx)
    params = jax.tree.map(jnp.asarray, W0)
    state = tx.init(params)
    w = {n: v.copy() for n, v in W0.items()}
    average = {n: v.copy() for n, v in W0.items()}
    for t in range(1, 6):
        old_state = state
        params, state = step(params, state, jax.tree.map(jnp.asarray, GRADS[t]))
        assert old_state.average["w"].is_deleted()
        w = {n: w[n] - lr * GRADS[t][n] for n in W0}
        average = {n: 0.5 * average[n] + 0.5 * w[n] for n in W0}
        for n in W0:
            np.testing.assert_allclose(params[n], w[n], rtol=1e-12)
            np.testing.assert_allclose(optjx.averaged_params(state)[n], average[n], rtol=1e-12)


def test_accessors_find_their_state_anywhere():
    params = {"x": jnp.arange(3.0)}
    inner = optjx.lookahead(optjx.sgd(0.1), sync_period=2)
    layouts = [
        optax.chain(optjx.clip_by_global_norm(1.0), inner),
        optax.chain(optjx.clip(1.0), optax.chain(optjx.scale(1.0), inner)),
        optjx.polyak_averaging(inner),
        optjx.apply_if_finite(optax.chain(inner), max_consecutive_errors=3),
        optjx.accumulate_gradients(inner, 2),
        optax.masked(inner, {"x": True}),
    ]
    for tx in layouts:
        state = tx.init(params)
        np.testing.assert_array_equal(optjx.slow_params(state)["x"], [0.0, 1.0, 2.0])
    # The accessors read the live state, not the initial copy.
    tx = optax.chain(
        optjx.clip_by_global_norm(1e9),
        optjx.lookahead(optjx.polyak_averaging(optjx.sgd(1.0)), sync_period=1, slow_step_size=0.5),
    )
    state = tx.init(params)
    _, state = tx.update({"x": jnp.ones(3)}, state, params)
    np.testing.assert_allclose(optjx.slow_params(state)["x"], [-0.5, 0.5, 1.5])
    np.testing.assert_allclose(optjx.averaged_params(state)["x"], [-1.0, 0.0, 1.0])


def test_accessors_refuse_none_or_several():
    params = {"x": jnp.zeros(2)}
    with pytest.raises(ValueError, match="slow_params found no lookahead"):
        optjx.slow_params(optjx.adam(0.1).init(params))
    with pytest.raises(ValueError, match="averaged_params found no polyak_averaging"):
        optjx.averaged_params(optjx.lookahead(optjx.sgd(0.1)).init(params))
    two = optax.chain(optjx.lookahead(optjx.sgd(0.1)), optjx.lookahead(optjx.sgd(0.1)))
    with pytest.raises(ValueError, match="found 2 lookahead"):
        optjx.slow_params(two.init(params))
    nested = optjx.polyak_averaging(optjx.polyak_averaging(optjx.sgd(0.1)))
    with pytest.raises(ValueError, match="found 2 polyak_averaging"):
        optjx.averaged_params(nested.init(params))


@pytest.mark.parametrize("dtype", [jnp.bfloat16])
def test_dtypes_are_kept_under_strict_promotion(strict_promotion, dtype):
    params = {"w": jnp.ones((2, 3), dtype), "b": jnp.zeros(4, dtype)}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    for name, make in WRAPPERS.items():
        tx = make()
        state = tx.init(params)
        dtypes = [x.dtype for x in jax.tree.leaves(state)]
        step = jax.jit(lambda g, s, p, tx=tx: tx.update(g, s, p, value=jnp.asarray(1.0)))
        for _ in range(4):  # through a lookahead sync and an accumulation group
            updates, state = step(grads, state, params)
        assert [x.dtype for x in jax.tree.leaves(state)] == dtypes, name
        assert all(u.dtype == dtype for u in jax.tree.leaves(updates)), name
