"""NovoGrad against a float64 NumPy loop written from Ginsburg et al. (2019), Algorithm 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    assert_trajectories_close,
    max_relative_difference,
    mixed_gradients,
    primitive_names,
    random_params,
    run,
)
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import optjx

# Several layers of different shapes and gradient scales: the per-layer norms differ by
# orders of magnitude, so a norm taken over the wrong set of weights shows at once.
SHAPES = {"conv": (3, 3, 2, 2), "dense": (6, 5), "bias": (5,), "gain": ()}
SCALES = {"conv": 1e-3, "dense": 1.0, "bias": 30.0, "gain": 0.2}


def _layered_gradients(steps, seed):
    # The first step is non-zero: v_1 = ||g_1||^2 (not (1 - b2) ||g_1||^2) must show.
    grads = mixed_gradients(steps, seed=seed, zero_steps=(9, 23), shapes=SHAPES)
    return [{k: SCALES[k] * np.asarray(g[k]) for k in g} for g in grads]


def _novograd_reference(grads, params, b1, b2, eps, weight_decay, grad_averaging):
    """Alg. 1, one layer = one leaf; grad averaging scales the normalised gradient only."""
    m = {k: np.zeros_like(np.asarray(x)) for k, x in grads[0].items()}
    v = {}
    out = []
    for t, (g, w) in enumerate(zip(grads, params, strict=True), start=1):
        step = {}
        for k in g:
            squared_norm = float(np.sum(np.square(g[k])))
            v[k] = squared_norm if t == 1 else b2 * v[k] + (1 - b2) * squared_norm
            normalised = g[k] / np.sqrt(v[k] + eps)
            if grad_averaging:
                normalised = (1 - b1) * normalised
            m[k] = b1 * m[k] + (normalised + weight_decay * w[k])
            step[k] = m[k]
        out.append(step)
    return out, v


@pytest.mark.parametrize("weight_decay", [0.0, 0.05], ids=["no-decay", "decay"])
@pytest.mark.parametrize("grad_averaging", [False, True], ids=["plain", "averaged"])
def test_scale_by_novograd_matches_algorithm_1(x64, weight_decay, grad_averaging):
    grads = _layered_gradients(45, seed=21)
    params = random_params(seed=22, shapes=SHAPES, steps=45)
    tx = optjx.scale_by_novograd(
        0.9, 0.8, eps=1e-6, weight_decay=weight_decay, grad_averaging=grad_averaging
    )
    actual, state = run(tx, grads, params)
    expected, v = _novograd_reference(grads, params, 0.9, 0.8, 1e-6, weight_decay, grad_averaging)
    assert_trajectories_close(actual, expected, rtol=1e-9)
    # One second moment per layer, a scalar, equal to the reference's.
    for k in SHAPES:
        assert state.nu[k].shape == ()
        np.testing.assert_allclose(float(state.nu[k]), v[k], rtol=1e-9)
    assert int(state.count) == 45


def test_the_options_change_the_trajectory(x64):
    # So that each case above can fail: decay, averaging and the first-step rule all show.
    grads = _layered_gradients(45, seed=21)
    params = random_params(seed=22, shapes=SHAPES, steps=45)
    base, _ = _novograd_reference(grads, params, 0.9, 0.8, 1e-6, 0.05, True)
    not_averaged, _ = _novograd_reference(grads, params, 0.9, 0.8, 1e-6, 0.05, False)
    no_decay, _ = _novograd_reference(grads, params, 0.9, 0.8, 1e-6, 0.0, True)
    assert max_relative_difference(base, not_averaged) > 0.1
    assert max_relative_difference(base, no_decay) > 0.1
    g = grads[0]["dense"]
    actual, _ = run(optjx.scale_by_novograd(0.9, 0.8, eps=1e-6), grads[:1])
    np.testing.assert_allclose(actual[0]["dense"], g / np.sqrt(np.sum(g**2) + 1e-6), rtol=1e-12)
    as_an_ordinary_step = g / np.sqrt(0.2 * np.sum(g**2) + 1e-6)
    assert max_relative_difference([{"d": actual[0]["dense"]}], [{"d": as_an_ordinary_step}]) > 0.5


def test_novograd_alias_steps_minus_lr_m(x64):
    grads = _layered_gradients(40, seed=31)
    params = random_params(seed=32, shapes=SHAPES, steps=40)
    lr = optjx.schedules.exponential(0.1, 0.5, 10)
    actual, _ = run(optjx.novograd(lr, weight_decay=0.01, grad_averaging=True), grads, params)
    expected, _ = _novograd_reference(grads, params, 0.95, 0.98, 1e-8, 0.01, True)
    expected = [
        {k: -0.1 * 0.5 ** (t / 10) * x for k, x in step.items()} for t, step in enumerate(expected)
    ]
    assert_trajectories_close(actual, expected, rtol=1e-9)


def test_weight_decay_needs_params():
    tx = optjx.scale_by_novograd(weight_decay=1e-4)
    grads = {"w": jnp.ones((2, 3))}
    with pytest.raises(ValueError, match="params"):
        tx.update(grads, tx.init(grads))
    with pytest.raises(ValueError, match="params"):
        alias = optjx.novograd(1e-2, weight_decay=1e-4)
        alias.update(grads, alias.init(grads))
    # Without weight decay the params are not needed.
    tx = optjx.scale_by_novograd()
    updates, _ = jax.jit(tx.update)(grads, tx.init(grads))
    assert updates["w"].shape == (2, 3)


def test_state_layout_and_dtypes(x64):
    params = {
        "h": jnp.zeros((3, 4), jnp.bfloat16),
        "s": jnp.zeros((2,)),
        "d": jnp.zeros((5,), jnp.float64),
    }
    params["s"] = params["s"].astype(jnp.float32)
    state = optjx.scale_by_novograd().init(params)
    assert {k: state.nu[k].dtype for k in params} == {
        "h": jnp.float32,
        "s": jnp.float32,
        "d": jnp.float64,
    }
    assert all(state.nu[k].shape == () for k in params)
    assert all(state.mu[k].dtype == params[k].dtype for k in params)
    assert all(state.mu[k].shape == params[k].shape for k in params)


def test_bf16_gradients_follow_dtype_and_norm_is_accumulated_in_float32(x64, strict_promotion):
    rng = np.random.default_rng(4)
    values = rng.uniform(0.5, 2.0, size=(64, 64))
    params = {"w": jnp.asarray(values, jnp.bfloat16), "b": jnp.ones((8,), jnp.float32)}
    grads = {"w": params["w"], "b": params["b"]}
    tx = optjx.novograd(1e-2, weight_decay=1e-3)
    state = tx.init(params)
    updates, state = jax.jit(tx.update)(grads, state, params)
    assert updates["w"].dtype == jnp.bfloat16 and updates["b"].dtype == jnp.float32
    novograd_state = state[0]
    assert novograd_state.nu["w"].dtype == jnp.float32
    assert novograd_state.mu["w"].dtype == jnp.bfloat16
    # 4096 squares summed: a bf16 accumulator (8 significant bits) would be off by ~1e-2.
    exact = np.sum(np.asarray(grads["w"], np.float64) ** 2)
    np.testing.assert_allclose(float(novograd_state.nu["w"]), exact, rtol=1e-5)
    assert bool(jnp.all(jnp.isfinite(updates["w"].astype(jnp.float32))))


def test_sharded_leaves_give_the_whole_layer_norm(x64):
    # The per-layer norm of a leaf split over 8 devices is the norm of the whole leaf.
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    grads = _layered_gradients(3, seed=41)
    grads = [
        {"w": np.concatenate([g["dense"].ravel(), g["conv"].ravel()])[:32].reshape(16, 2)}
        for g in grads
    ]
    tx = optjx.scale_by_novograd(0.9, 0.8)
    state = tx.init({"w": jnp.zeros((16, 2))})
    step = jax.jit(tx.update)
    actual = []
    for g in grads:
        updates, state = step({"w": jax.device_put(jnp.asarray(g["w"]), sharding)}, state)
        actual.append({"w": np.asarray(updates["w"])})
    expected, _ = _novograd_reference(grads, [{"w": 0.0}] * 3, 0.9, 0.8, 1e-8, 0.0, False)
    assert_trajectories_close(actual, expected, rtol=1e-9)


def test_no_cond_over_the_tree():
    params = {f"layer{i}": jnp.ones((i % 4 + 1,)) for i in range(50)}
    tx = optjx.novograd(1e-3, weight_decay=0.1)
    state = tx.init(params)
    jaxpr = jax.make_jaxpr(jax.jit(tx.update))(params, state, params)
    names = primitive_names(jaxpr.jaxpr)
    assert "select_n" in names  # the first-step select is there (the check can see inside)
    assert "cond" not in names
