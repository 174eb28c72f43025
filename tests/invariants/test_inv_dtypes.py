"""Invariant 3 over the whole registry: dtypes, under strict dtype promotion.

* The update of every leaf has the gradient's dtype, for bfloat16, float16, float32 and
  float64 (under x64), for a tree of one dtype, for a tree that mixes them (each leaf keeps
  its own), and when the gradient's dtype differs from the params'; the state keeps the
  dtypes ``init`` gave it. Checked on ``jax.eval_shape`` (types only, so every entry and
  dtype costs a trace, not a compilation); strict promotion turns any silent promotion
  into an error at trace time.
* bfloat16 moments with bias correction stay finite over 1000 steps (Adam, RAdam, the
  debiased EMA, and EMA followed by ``bias_correction``), run in one ``lax.scan`` each.
"""

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from registry import ENTRIES

import optjx

pytestmark = pytest.mark.usefixtures("strict_promotion")

LOW = {"bfloat16": jnp.bfloat16, "float16": jnp.float16, "float32": jnp.float32}
MIXED_SHAPES = {"w": (3, 2), "b": (2,), "s": ()}


def _check_types(entry, params, grads):
    tx = harness.compiled(entry.id).tx
    state = jax.eval_shape(tx.init, harness.abstract(params))
    value = jax.ShapeDtypeStruct((), jnp.float32)

    def one(g, s, p, v):
        return harness.update(entry, tx, g, s, p, v)

    updates, new_state = jax.eval_shape(
        one, harness.abstract(grads), state, harness.abstract(params), value
    )
    for (path, u), g in zip(
        harness.leaves_with_paths(updates), jax.tree.leaves(grads), strict=True
    ):
        assert u.dtype == g.dtype, (
            f"{entry.id}: update{jax.tree_util.keystr(path)} is {u.dtype}, gradient {g.dtype}"
        )
    assert harness.avals(new_state) == harness.avals(state), (
        f"{entry.id}: update changed the state's types"
    )


def _tree(dtypes, t=0):
    """Params and gradients with leaf ``k`` of ``dtypes[k]``."""
    params = {
        k: harness.make_params(jnp.float32, MIXED_SHAPES)[k].astype(d) for k, d in dtypes.items()
    }
    grads = {
        k: harness.make_grads(t, jnp.float32, MIXED_SHAPES)[k].astype(d) for k, d in dtypes.items()
    }
    return params, grads


@pytest.mark.parametrize("dtype", list(LOW))
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_update_dtype_follows_the_gradient(entry, dtype):
    d = LOW[dtype]
    _check_types(entry, *_tree({"w": d, "b": d, "s": d}))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_float64_and_mixed_trees_keep_each_leaf_dtype(entry, x64):
    _check_types(entry, *_tree({"w": jnp.float64, "b": jnp.float64, "s": jnp.float64}))
    _check_types(entry, *_tree({"w": jnp.bfloat16, "b": jnp.float16, "s": jnp.float64}))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_mixed_tree_and_gradients_narrower_than_params(entry):
    _check_types(entry, *_tree({"w": jnp.bfloat16, "b": jnp.float16, "s": jnp.float32}))
    # float32 params (and state) with bfloat16 gradients: the update is bfloat16.
    params, _ = _tree({"w": jnp.float32, "b": jnp.float32, "s": jnp.float32})
    _, grads = _tree({"w": jnp.bfloat16, "b": jnp.bfloat16, "s": jnp.bfloat16})
    _check_types(entry, params, grads)


BF16_LONG_RUNS = {
    "adam": lambda: optjx.adam(1e-2),
    "adam-amsgrad": lambda: optjx.adam(1e-2, amsgrad=True),
    "radam": lambda: optjx.radam(1e-2),
    "radam-threshold-4": lambda: optjx.radam(1e-2, b2=0.99, threshold=4.0),
    "ema-debias": lambda: optjx.chain(
        optjx.ema(0.999, debias=True), optjx.scale_by_learning_rate(1e-2)
    ),
    "ema-then-bias-correction": lambda: optjx.chain(
        optjx.ema(0.999), optjx.bias_correction(0.999), optjx.scale_by_learning_rate(1e-2)
    ),
}


@pytest.mark.parametrize("name", list(BF16_LONG_RUNS))
def test_bfloat16_moments_with_bias_correction_stay_finite_for_1000_steps(name):
    tx = BF16_LONG_RUNS[name]()
    params = {"w": jnp.ones((4, 3), jnp.bfloat16), "b": jnp.zeros((3,), jnp.bfloat16)}
    state = tx.init(params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state) if x.ndim), "bf16 moments"
    target = jnp.asarray(0.5, jnp.bfloat16)

    def body(carry, t):
        p, s = carry
        noise = jax.random.normal(jax.random.fold_in(jax.random.key(0), t), (), jnp.float32)
        # Gradients of a noisy quadratic, with a stretch of tiny ones (1e-3 of normal)
        # in the middle where bf16 squares underflow towards the subnormal range.
        factor = jnp.where((t > 400) & (t < 600), 1e-3, 1.0) * (1.0 + 0.5 * noise)
        g = jax.tree.map(lambda x: (x - target) * factor.astype(jnp.bfloat16), p)
        u, s = tx.update(g, s, p)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(u)]))
        return (optjx.apply_updates(p, u), s), finite

    (params, state), finite = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(1000)))(
        params, state
    )
    assert bool(jnp.all(finite)), f"{name}: a non-finite update at step {int(np.argmin(finite))}"
    assert harness.all_finite(params) and harness.all_finite(state)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(params))
    # And it optimised: the params moved from 1 and 0 towards 0.5.
    assert float(jnp.max(jnp.abs(params["w"].astype(jnp.float32) - 0.5))) < 0.45
