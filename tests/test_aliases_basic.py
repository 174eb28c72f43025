"""The classic aliases (and chains of the building blocks they are made of) beyond the
registry invariants: jit equals eager in float64 to 1e-12, vmap over learning rates
equals separate runs, a tree of every float dtype runs compiled and stays finite, Adam at
a saturated counter, and the course notes' momentum schedule.

What the invariants check for every registry entry (tests/invariants: no recompilation,
dtypes under strict promotion, invalid arguments, tree mismatch errors, the saturating
counter) is not repeated here: every alias configuration below is also a registry
entry, so is every building block of the chains in ``BLOCKS`` with the flags used there
(tests/cards), and every invalid value this file once listed is in the cards'
``invalid`` tables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import run_training

import optjx
from optjx import schedules

INT32_MAX = np.iinfo(np.int32).max

# name -> factory(learning_rate). Every option that adds a stage or a state is used once.
ALIASES = {
    "sgd": lambda lr: optjx.sgd(lr),
    "sgd-momentum-dampening-wd": lambda lr: optjx.sgd(lr, 0.9, dampening=0.1, weight_decay=1e-2),
    "sgd-nesterov": lambda lr: optjx.sgd(lr, 0.9, nesterov=True),
    "sgd-momentum-schedule": lambda lr: optjx.sgd(lr, momentum=schedules.linear(0.5, 0.9, 1000)),
    "rmsprop-centered-momentum-wd": lambda lr: optjx.rmsprop(
        lr, 0.99, centered=True, momentum=0.9, weight_decay=1e-2
    ),
    "rmsprop-eps-root": lambda lr: optjx.rmsprop(lr, eps=0.0, eps_root=1e-6),
    "adagrad-wd": lambda lr: optjx.adagrad(lr, initial_accumulator_value=0.1, weight_decay=1e-2),
    "adam-amsgrad-wd": lambda lr: optjx.adam(lr, amsgrad=True, weight_decay=1e-2),
    "adamw-warmup-cosine": lambda lr: optjx.adamw(
        schedules.warmup(schedules.cosine(lr, 100), 3), eps_root=1e-8
    ),
    "adadelta-wd": lambda lr: optjx.adadelta(lr, weight_decay=1e-2),
}

# Building blocks whose dtype handling differs from the aliases' stages.
BLOCKS = {
    "ema-debias": lambda lr: optjx.chain(optjx.ema(0.9, debias=True), optjx.scale(-lr)),
    "ema-bias-correction": lambda lr: optjx.chain(
        optjx.ema(0.99), optjx.bias_correction(0.99), optjx.scale_by_learning_rate(lr)
    ),
    "clip-rms-trace": lambda lr: optjx.chain(
        optjx.clip_by_global_norm(1.0),
        optjx.clip(0.5),
        optjx.scale_by_rms(0.9, centered=True, initial_scale=1.0),
        optjx.trace(0.9, dampening=0.5),
        optjx.scale_by_learning_rate(lr),
    ),
    "adam-eps-root-masked-decay": lambda lr: optjx.chain(
        optjx.scale_by_adam(0.9, 0.99, eps_root=1e-8),
        optjx.add_decayed_weights(0.1, mask={"w": True, "b": False}),
        optjx.scale_by_learning_rate(lr),
    ),
}

EVERYTHING = {**ALIASES, **BLOCKS}


def _params(dtype=jnp.float32):
    return {
        "w": jnp.asarray([[0.5, -1.5], [2.0, 0.25], [-0.75, 1.0]], dtype),
        "b": jnp.asarray([1.0, -2.0], dtype),
    }


def _grads(params, t):
    # The gradient of sum(c * (p - 0.3)^2 / 2) with a step-dependent curvature; step 1
    # is all zeros, so zero gradients pass through every test below.
    t = jnp.asarray(t, jnp.float32)
    c = jnp.where(t == 1, 0.0, 1.0 + 0.5 * t)
    return jax.tree.map(lambda p: (p - jnp.asarray(0.3, p.dtype)) * c.astype(p.dtype), params)


def _train(optimizer, params, steps, *, jit=False):
    """The final params and state after ``steps`` steps on the toy problem."""
    run = run_training(optimizer, _grads, params, steps, jit=jit)
    return run.params[-1], run.states[-1]


def _assert_trees_close(a, b, rtol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=0)


@pytest.mark.parametrize("name", list(ALIASES))
def test_jit_equals_eager(x64, name):
    optimizer = ALIASES[name](0.05)
    params = _params(jnp.float64)
    eager, eager_state = _train(optimizer, params, 4)
    jitted, jitted_state = _train(optimizer, params, 4, jit=True)
    _assert_trees_close(jitted, eager, rtol=1e-12)
    _assert_trees_close(jitted_state, eager_state, rtol=1e-12)


@pytest.mark.parametrize("name", list(ALIASES))
def test_vmap_over_learning_rates_equals_separate_runs(x64, name):
    rates = [1e-3, 3e-2, 0.2]
    params = _params(jnp.float64)

    def train(lr):
        return _train(ALIASES[name](lr), params, 5)[0]

    batched = jax.jit(jax.vmap(train))(jnp.asarray(rates))
    for i, lr in enumerate(rates):
        separate = train(lr)  # a Python float: the concrete path
        _assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched), separate, rtol=1e-12)
    # The rates really lead to different results.
    assert not np.allclose(batched["w"][0], batched["w"][2])


def _mixed_params():
    """One tree with a leaf of each float dtype (x64 must be on)."""
    base = _params(jnp.float64)["w"]
    return {
        str(np.dtype(d).name): base.astype(d)
        for d in (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64)
    }


def _mixed_optimizer(name):
    """The optimizer for the mixed-dtype tree (x64 and strict promotion on)."""
    if name == "adam-eps-root-masked-decay":  # its mask is shaped like _params()
        return optjx.chain(
            optjx.scale_by_adam(0.9, 0.99, eps_root=1e-8),
            optjx.add_decayed_weights(
                0.1, mask={"bfloat16": True, "float16": False, "float32": True, "float64": False}
            ),
            optjx.scale_by_learning_rate(0.01),
        )
    return EVERYTHING[name](0.01)


def _assert_finite_and_typed(name, params, t):
    for dtype_name, leaf in params.items():
        assert leaf.dtype == np.dtype(dtype_name)
        assert np.all(np.isfinite(np.asarray(leaf, np.float64))), (name, dtype_name, t)


@pytest.mark.parametrize("name", list(EVERYTHING))
def test_mixed_dtype_tree_runs(x64, strict_promotion, name):
    # Compiled and run on bf16, f16, f32 and f64 leaves at once: each leaf keeps its own
    # dtype, values stay finite (step 1 has all-zero gradients), state dtypes do not drift.
    optimizer = _mixed_optimizer(name)
    params = _mixed_params()
    init_dtypes = [leaf.dtype for leaf in jax.tree.leaves(optimizer.init(params))]
    run = run_training(optimizer, _grads, params, 3)
    for t, params in enumerate(run.params):
        _assert_finite_and_typed(name, params, t)
    assert [leaf.dtype for leaf in jax.tree.leaves(run.states[-1])] == init_dtypes


def test_schedules_are_not_checked_at_construction():
    # A schedule cannot be checked without running it (traced values: the vmap test).
    optjx.adam(schedules.constant(1e-3), b1=schedules.linear(0.5, 0.9, 10), b2=lambda k: 2.0)


def test_adam_at_saturation_has_no_bias_correction(x64):
    # At count ~2**31, 1 - b**t is 1: the first update from zero moments is
    # (1 - b1) g / (sqrt((1 - b2) g^2) + eps). A wrapped (negative) counter would give
    # b**t = inf instead and an update of zero.
    g = {"w": jnp.asarray([3.0, -0.5, 0.0])}
    tx = optjx.scale_by_adam(0.9, 0.999)
    state = tx.init(g)._replace(count=jnp.asarray(INT32_MAX, jnp.int32))
    out, state = tx.update(g, state)
    expected = 0.1 * g["w"] / (np.sqrt(0.001 * g["w"] ** 2) + 1e-8)
    np.testing.assert_allclose(out["w"], expected, rtol=1e-12)
    assert int(state.count) == INT32_MAX


def test_momentum_schedule_of_the_course_notes(x64):
    # sgd(0.1, momentum=linear(0.5, 0.9, T)): b = mu_k b + g (b_1 = g), w -= 0.1 b, with
    # mu_k = 0.5 + 0.4 min(k, T) / T after k applied updates.
    def run_reference(transition, steps):
        w = {name: np.asarray(p, np.float64) for name, p in _params(jnp.float64).items()}
        b = None
        out = []
        for t in range(steps):
            g = {name: np.asarray(leaf) for name, leaf in _grads(w, t).items()}
            mu = 0.5 + 0.4 * min(t, transition) / transition
            b = g if b is None else {name: mu * b[name] + g[name] for name in g}
            w = {name: w[name] - 0.1 * b[name] for name in w}
            out.append(w)
        return out

    for transition, steps in ((1000, 20), (10, 25)):
        optimizer = optjx.sgd(0.1, momentum=schedules.linear(0.5, 0.9, transition))
        run = run_training(optimizer, _grads, _params(jnp.float64), steps)
        expected = run_reference(transition, steps)
        for t in range(steps):
            _assert_trees_close(run.params[t], expected[t], rtol=1e-12)

    # The schedule matters: constant momenta 0.5 and 0.9 give other trajectories.
    for constant in (0.5, 0.9):
        other, _ = _train(optjx.sgd(0.1, momentum=constant), _params(jnp.float64), 25)
        assert not np.allclose(other["w"], expected[-1]["w"], rtol=1e-6)
