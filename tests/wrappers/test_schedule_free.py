"""Schedule-free: structure, hyperparameters, the evaluation accessor, and composition.

The numbers themselves are checked against the reference package
(``test_schedule_free_golden.py``) and the paper's Algorithm 1
(``test_schedule_free_reference.py``); here: what must hold around them. Orbax
checkpoint continuation and ``jit == eager`` run for every registry entry in
``tests/invariants``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optjx
from optjx import parallel

PARAMS = {"w": jnp.arange(6.0).reshape(3, 2) / 5 - 0.4, "b": jnp.asarray([0.3, -0.7])}


def grads_at(t):
    rng = np.random.default_rng(t)
    return {k: jnp.asarray(rng.normal(size=v.shape), v.dtype) for k, v in PARAMS.items()}


def run(tx, steps, params=PARAMS, state=None, grads=grads_at):
    state = tx.init(params) if state is None else state
    update = jax.jit(tx.update)
    for t in range(steps):
        updates, state = update(grads(t), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def close(a, b, rtol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-7)


def identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------ structure and hyperparameters


def test_count_always_kept_and_python_zero_only_skips_arithmetic():
    fields = lambda tx: tx.init(PARAMS)._fields  # noqa: E731
    # One structure whatever the values (DESIGN.md, convention 1).
    assert "count" in fields(optjx.sgd_schedule_free(0.1))
    assert "count" in fields(optjx.sgd_schedule_free(0.1, warmup_steps=2))
    assert "count" in fields(optjx.sgd_schedule_free(0.1, r=0.5))
    assert "count" in fields(optjx.sgd_schedule_free(0.1, r=jnp.asarray(0.0)))  # an array
    assert "count" in fields(optjx.adamw_schedule_free())  # the bias correction reads it
    # an array zero computes what the Python zero drops: same numbers
    close(run(optjx.sgd_schedule_free(0.1, weight_decay=jnp.asarray(0.0)), 4)[0],
          run(optjx.sgd_schedule_free(0.1), 4)[0])  # fmt: skip


@pytest.mark.parametrize(
    "factory, kwargs",
    [
        (optjx.adamw_schedule_free, dict(learning_rate=0.0)),
        (optjx.adamw_schedule_free, dict(learning_rate=0.01, warmup_steps=3, weight_decay=0.0)),
        (optjx.adamw_schedule_free, dict(learning_rate=0.01, weight_decay=0.1, r=0.0,
                                         variant="paper")),
        (optjx.sgd_schedule_free, dict(learning_rate=0.1, warmup_steps=0, momentum=0.5)),
        (optjx.radam_schedule_free, dict(learning_rate=0.01, b2=0.99, weight_decay=0.0)),
    ],
)  # fmt: skip
def test_inject_hyperparams_equals_the_plain_factory(factory, kwargs):
    static = ("variant",) if factory is optjx.adamw_schedule_free else ()
    injected = optax.inject_hyperparams(factory, static_args=static)(**kwargs)
    state = injected.init(PARAMS)  # eager, concrete arrays
    params, update = PARAMS, jax.jit(injected.update)  # traced arrays
    structure = jax.tree.structure(state)
    for t in range(6):
        updates, state = update(grads_at(t), state, params)
        params = optax.apply_updates(params, updates)
        assert jax.tree.structure(state) == structure
    close(params, run(factory(**kwargs), 6)[0], rtol=1e-5)
    if kwargs["learning_rate"] == 0.0:
        identical(params, PARAMS)


def test_bad_values_name_the_argument():
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="momentum"):
            optjx.sgd_schedule_free(0.1, momentum=bad)
        with pytest.raises(ValueError, match="b1"):
            optjx.adamw_schedule_free(b1=bad)
    with pytest.raises(ValueError, match=r"\br\b"):
        optjx.schedule_free(optax.identity(), learning_rate=0.1, r=-1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        optjx.adamw_schedule_free(optjx.schedules.cosine(0.01, 10), warmup_steps=5)
    with pytest.raises(ValueError, match="variant"):
        optjx.adamw_schedule_free(variant="adam")


def test_learning_rate_schedule_is_the_warm_up():
    # warmup_steps=n and the same ramp given as a schedule are one trajectory
    ramp = lambda k: 0.05 * jnp.minimum(k + 1, 4) / 4  # noqa: E731
    close(run(optjx.adamw_schedule_free(ramp), 8)[0],
          run(optjx.adamw_schedule_free(0.05, warmup_steps=4), 8)[0], rtol=1e-6)  # fmt: skip


def test_first_step_with_warm_up_moves_the_params():
    # optax.contrib.schedule_free: base schedule at count 0, weights at count 1; optjx
    # uses one rate for both, so the first step already moves (and to z_1: c_1 = 1).
    tx = optjx.adamw_schedule_free(0.1, warmup_steps=10)
    params, state = run(tx, 1)
    assert all(float(jnp.max(jnp.abs(p - q))) > 1e-3 for p, q in
               zip(jax.tree.leaves(params), jax.tree.leaves(PARAMS), strict=True))  # fmt: skip
    close(optjx.schedule_free_eval_params(state, params), state.z)


def test_a_lazily_initialised_base_needs_no_priming_step():
    # schedulefree.ScheduleFreeWrapper around torch.optim.RMSprop raises KeyError here.
    tx = optjx.schedule_free(optjx.scale_by_rms(0.99), learning_rate=0.01)
    params, _ = run(tx, 1)
    assert not np.allclose(params["w"], PARAMS["w"])


def test_init_never_aliases_params_and_donation_works():
    tx = optjx.adamw_schedule_free(0.01)
    params = jax.tree.map(jnp.array, PARAMS)
    state = tx.init(params)
    pointers = lambda t: {x.unsafe_buffer_pointer() for x in jax.tree.leaves(t)}  # noqa: E731
    assert not pointers(params) & pointers(state)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    for t in range(3):
        params, state = step(params, state, grads_at(t))
    close(params, run(tx, 3)[0])


# ------------------------------------------------------------ the evaluation accessor


def test_eval_params_found_anywhere_and_inverse():
    def build():
        inner = optax.chain(optjx.clip_by_global_norm(10.0), optjx.sgd_schedule_free(0.1))
        return optax.chain(optjx.apply_if_finite(inner, max_consecutive_errors=2))

    params, state = run(build(), 5)
    bare_params, bare_state = run(optjx.sgd_schedule_free(0.1), 5,
                                  grads=lambda t: optjx.clip_by_global_norm(10.0)
                                  .update(grads_at(t), optax.EmptyState())[0])  # fmt: skip
    x = optjx.schedule_free_eval_params(state, params)
    close(x, optjx.schedule_free_eval_params(bare_state, bare_params))
    assert not np.allclose(x["w"], params["w"])
    close(optjx.schedule_free_train_params(state, x), params)
    with pytest.raises(ValueError, match="no a schedule-free optimizer state|found no"):
        optjx.schedule_free_eval_params(optjx.adam(0.1).init(PARAMS), PARAMS)
    two = optax.chain(optjx.sgd_schedule_free(0.1), optjx.sgd_schedule_free(0.1))
    with pytest.raises(ValueError, match="2"):
        optjx.schedule_free_eval_params(two.init(PARAMS), PARAMS)


def test_eval_params_under_masks_and_inject_hyperparams():
    tx = optax.chain(
        optax.masked(optjx.adamw_schedule_free(0.05), {"w": True, "b": False}),
        optax.masked(optjx.sgd(0.1), {"w": False, "b": True}),
    )
    params, state = run(tx, 4)
    x = optjx.schedule_free_eval_params(state, params)
    np.testing.assert_array_equal(x["b"], params["b"])  # not owned: from params
    assert not np.allclose(x["w"], params["w"])

    injected = optax.inject_hyperparams(optjx.sgd_schedule_free)(learning_rate=0.1)
    params, state = run(injected, 4)
    plain_params, plain_state = run(optjx.sgd_schedule_free(0.1), 4)
    close(optjx.schedule_free_eval_params(state, params),
          optjx.schedule_free_eval_params(plain_state, plain_params))  # fmt: skip


# ------------------------------------------------------------ composition


def test_apply_if_finite_skip_leaves_everything_untouched():
    tx = optjx.apply_if_finite(optjx.adamw_schedule_free(0.05, warmup_steps=3, r=0.5),
                               max_consecutive_errors=3)  # fmt: skip
    params, state = run(tx, 3)
    bad = jax.tree.map(lambda g: g.at[0].set(jnp.nan), grads_at(9))
    updates, skipped = jax.jit(tx.update)(bad, state, params)
    identical(skipped.inner_state, state.inner_state)  # z, weight sum, lr_max, count, nu
    identical(updates, jax.tree.map(jnp.zeros_like, updates))
    x = optjx.schedule_free_eval_params(skipped, optax.apply_updates(params, updates))
    identical(x, optjx.schedule_free_eval_params(state, params))


def test_accumulate_gradients_takes_one_step_per_accumulated_batch():
    k = 3
    tx = optjx.accumulate_gradients(optjx.adamw_schedule_free(0.05, warmup_steps=2), k)
    params, state = run(tx, 4 * k)
    mean = lambda t: jax.tree.map(  # noqa: E731
        lambda *g: sum(g) / k, *[grads_at(k * t + i) for i in range(k)]
    )
    want_params, want_state = run(optjx.adamw_schedule_free(0.05, warmup_steps=2), 4, grads=mean)
    close(params, want_params, rtol=1e-5)
    assert int(state.inner_state.count) == 4
    close(optjx.schedule_free_eval_params(state, params),
          optjx.schedule_free_eval_params(want_state, want_params), rtol=1e-5)  # fmt: skip


def _loss(params, x, y):
    return jnp.mean((jnp.tanh(x @ params["w"] + params["b"]) - y) ** 2)


def _problem():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(5, 8))), "b": jnp.asarray(rng.normal(size=8))}
    return params, jnp.asarray(rng.normal(size=(32, 5))), jnp.asarray(rng.normal(size=(32, 8)))


def _train(tx, params, x, y, steps=6):
    def body(carry, _):
        p, s = carry
        updates, s = tx.update(jax.grad(_loss)(p, x, y), s, p)
        return (optax.apply_updates(p, updates), s), None

    return jax.lax.scan(body, (params, tx.init(params)), None, length=steps)[0]


def test_cross_replica_mean_under_shard_map_equals_one_device(x64):
    params, x, y = _problem()
    make = lambda: optjx.adamw_schedule_free(0.05, warmup_steps=2, weight_decay=1e-3)  # noqa: E731
    mesh = jax.make_mesh((4,), ("batch",), devices=jax.devices()[:4])

    def body(p, xs, ys):
        p, s = _train(optax.chain(optjx.cross_replica_mean("batch"), make()), p, xs, ys)
        return p, optjx.schedule_free_eval_params(s, p)

    mapped = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(P(), P("batch"), P("batch")),
                                   out_specs=P()))  # fmt: skip
    split, replicated = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
    got_y, got_x = mapped(jax.device_put(params, replicated), jax.device_put(x, split),
                          jax.device_put(y, split))  # fmt: skip
    want_y, want_state = jax.jit(lambda p: _train(make(), p, x, y))(params)
    close(got_y, want_y, rtol=1e-9)
    close(got_x, optjx.schedule_free_eval_params(want_state, want_y), rtol=1e-9)


def test_state_shardings_split_z_like_a_moment(x64):
    params, x, y = _problem()
    tx = optjx.adamw_schedule_free(0.05, warmup_steps=2)
    mesh = jax.make_mesh((8,), ("data",))
    shardings = parallel.state_shardings(jax.eval_shape(tx.init, params), mesh, "data")
    assert shardings.z["w"].spec == shardings.inner_state.nu["w"].spec == P(None, "data")
    replicated = NamedSharding(mesh, P())
    params = jax.device_put(params, replicated)
    state = jax.jit(tx.init, out_shardings=shardings)(params)

    def step(p, s):
        updates, s = tx.update(jax.grad(_loss)(p, x, y), s, p)
        return optax.apply_updates(p, updates), s

    step = jax.jit(step, out_shardings=(jax.tree.map(lambda _: replicated, params), shardings))
    for _ in range(6):
        params, state = step(params, state)
    assert state.z["w"].sharding.spec == P(None, "data")
    want_y, want_state = jax.jit(lambda p: _train(tx, p, x, y))(_problem()[0])
    close(params, want_y, rtol=1e-9)
    close(optjx.schedule_free_eval_params(state, params),
          optjx.schedule_free_eval_params(want_state, want_y), rtol=1e-9)  # fmt: skip
