"""The aliases (and chains of the building blocks they are made of) beyond the registry
invariants: vmap over learning rates equals separate runs (float64, 1e-12), a tree of
every float dtype runs compiled and stays finite, Adam at a saturated counter, and the
course notes' momentum schedule.

The optimizers are the cards' (tests/cards): every configuration of every alias card in
``aliases.py`` (each option that adds a stage or a state is used there once), and for the
mixed-dtype tree every configuration of every building-block card, made an optimizer by
``scale_by_learning_rate``. What the invariants check for every registry entry
(tests/invariants: jit equals eager and no recompilation, dtypes under strict promotion
on abstract values, invalid arguments, tree mismatch errors, the saturating counter) is
not repeated here."""

import inspect

import cards
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _reference import run_training
from _selection import selected

import optjx
from optjx import schedules

INT32_MAX = np.iinfo(np.int32).max


def _scaled(entry):
    """``factory(scale)``: the entry with its learning rate (a number or a schedule)
    multiplied by ``scale`` (a Python float or a traced array)."""
    factory = getattr(optjx, entry.name)
    rate = next(iter(inspect.signature(factory).parameters))
    configured = entry.kwargs.get(rate, inspect.signature(factory).parameters[rate].default)

    def make(scale):
        if callable(configured):
            return entry.build(**{rate: lambda count: scale * configured(count)})
        return entry.build(**{rate: scale * configured})

    return make


def _with_rate(entry):
    return lambda scale: optjx.chain(entry.build(), optjx.scale_by_learning_rate(0.01 * scale))


# test id -> factory(scale of the configured learning rate)
ALIASES = {e.id: _scaled(e) for card in cards.aliases.CARDS for e in card.entries}
BLOCKS = {e.id: _with_rate(e) for card in cards.BLOCKS for e in card.entries}
EVERYTHING = {**ALIASES, **BLOCKS}
# float64 to 1e-12, but a configuration that fixes a float32 state keeps float32 rounding
RTOL = {e.id: 1e-6 if e.fixes_state_dtype else 1e-12 for c in cards.CARDS for e in c.entries}


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
def test_vmap_over_learning_rates_equals_separate_runs(x64, name):
    rates = [0.1, 1.0, 3.0]  # times the configured rate
    params = _params(jnp.float64)

    def train(lr):
        return _train(ALIASES[name](lr), params, 5)[0]

    batched = jax.jit(jax.vmap(train))(jnp.asarray(rates))
    for i, lr in enumerate(rates):
        separate = train(lr)  # a Python float: the concrete path
        _assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched), separate, rtol=RTOL[name])
    # The rates really lead to different results.
    assert not np.allclose(batched["w"][0], batched["w"][2])


def _mixed_params():
    """One tree with a leaf of each float dtype (x64 must be on)."""
    base = _params(jnp.float64)["w"]
    return {
        str(np.dtype(d).name): base.astype(d)
        for d in (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64)
    }


def _assert_finite_and_typed(name, params, t):
    for dtype_name, leaf in params.items():
        assert leaf.dtype == np.dtype(dtype_name)
        assert np.all(np.isfinite(np.asarray(leaf, np.float64))), (name, dtype_name, t)


@pytest.fixture(scope="module")
def mixed_runs(request):
    """Every selected optimizer on the tree of every float dtype, 3 steps: the params and
    states after each step, and the dtypes of the state ``init`` made.

    All of them in one jitted step (one compilation; XLA compiles the kernels they share,
    the per-dtype casts and ``apply_updates``, once): a program per optimizer cost twice
    the time. The gradients are computed inside it from the step's params."""
    names = [n for n in selected(request, "name") if n in EVERYTHING]
    with jax.enable_x64(True), jax.numpy_dtype_promotion("strict"):
        optimizers = {n: EVERYTHING[n](1.0) for n in names}
        params = {n: _mixed_params() for n in names}
        states = {n: opt.init(params[n]) for n, opt in optimizers.items()}
        init_dtypes = {n: [leaf.dtype for leaf in jax.tree.leaves(s)] for n, s in states.items()}

        @jax.jit
        def step(params, states, t):
            moved, updated = {}, {}
            for n, opt in optimizers.items():
                updates, updated[n] = opt.update(_grads(params[n], t), states[n], params[n])
                moved[n] = optax.apply_updates(params[n], updates)
            return moved, updated

        seen = []
        for t in range(3):
            params, states = step(params, states, jnp.asarray(t, jnp.int32))
            seen.append((params, states))
    return init_dtypes, seen


@pytest.mark.parametrize("name", list(EVERYTHING))
def test_mixed_dtype_tree_runs(mixed_runs, name):
    # Compiled and run on bf16, f16, f32 and f64 leaves at once: each leaf keeps its own
    # dtype, values stay finite (step 1 has all-zero gradients), state dtypes do not drift.
    init_dtypes, seen = mixed_runs
    for t, (params, _) in enumerate(seen):
        _assert_finite_and_typed(name, params[name], t)
    assert [leaf.dtype for leaf in jax.tree.leaves(seen[-1][1][name])] == init_dtypes[name]


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
