"""early_stopping against a plain Python loop over recorded validation curves (ties,
min_delta, NaN, both modes), eagerly, under jit and under lax.scan; the best params are
the params of the best evaluation bit for bit, a copy, and the state checkpoints."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

NAN = float("nan")
# A validation loss: falls, ties its best, hits NaN, improves by less than 0.05, plateaus.
LOSS = [2.0, 1.5, 1.5, 1.2, NAN, 1.19, 1.25, 1.0, 1.0, 0.97, 1.3, 1.1, 1.05, 0.9, 1.2, 1.2, 1.2]
ACCURACY = [0.5, 0.6, 0.6, NAN, 0.62, 0.7, 0.69, 0.7, 0.71, 0.5, 0.5, 0.8, 0.6, 0.6, 0.6]


def reference(values, patience, mode, min_delta):
    """Algorithm 7.1 of Goodfellow et al. as a Python loop: per evaluation, the tuple
    (best value, best evaluation number, bad streak, should stop, evaluations)."""
    best, best_at, bad, stop, n = (math.inf if mode == "min" else -math.inf), 0, 0, False, 0
    out = []
    for i, v in enumerate(values, start=1):
        if not stop:
            n = i
            # NaN compares false either way: never an improvement.
            better = v < best - min_delta if mode == "min" else v > best + min_delta
            if better:
                best, best_at, bad = v, i, 0
            else:
                bad += 1
            stop = bad > patience
        out.append((best, best_at, bad, stop, n))
    return out


def params_at(i):
    """The params at evaluation ``i``: distinct every time, with an int leaf."""
    rng = np.random.default_rng(i)
    return {
        "w": jnp.asarray(rng.normal(size=(3, 2))),
        "b": jnp.asarray(rng.normal(size=(2,)), jnp.float32),
        "steps": jnp.asarray(i, jnp.int32),
    }


CASES = [
    ("min", 0, 0.0, LOSS),
    ("min", 2, 0.0, LOSS),
    ("min", 3, 0.05, LOSS),
    ("min", 100, 0.0, LOSS),
    ("max", 1, 0.0, ACCURACY),
    ("max", 3, 0.015, ACCURACY),
]


def _check(state, expected, i):
    best, best_at, bad, stop, n = expected
    assert float(state.best_value) == best, (i, float(state.best_value), best)
    assert int(state.best_step) == best_at, i
    assert int(state.bad_evaluations) == bad, i
    assert bool(state.should_stop) == stop, i
    assert int(state.evaluations) == n, i
    want = params_at(best_at) if best_at else params_at(0)
    for key in want:
        np.testing.assert_array_equal(np.asarray(state.best_params[key]), np.asarray(want[key]))
        assert state.best_params[key].dtype == want[key].dtype


@pytest.mark.parametrize("mode,patience,min_delta,values", CASES)
def test_matches_python_loop_eager_and_jit(x64, mode, patience, min_delta, values):
    stopper = optjx.early_stopping(patience, mode=mode, min_delta=min_delta)
    expected = reference(values, patience, mode, min_delta)
    update = jax.jit(stopper.update)
    eager = jitted = stopper.init(params_at(0))
    for i, v in enumerate(values, start=1):
        eager = stopper.update(eager, v, params_at(i))
        jitted = update(jitted, jnp.asarray(v), params_at(i))
        _check(eager, expected[i - 1], i)
        _check(jitted, expected[i - 1], i)


@pytest.mark.parametrize("mode,patience,min_delta,values", CASES)
def test_under_scan(x64, mode, patience, min_delta, values):
    stopper = optjx.early_stopping(patience, mode=mode, min_delta=min_delta)
    all_params = jax.tree.map(
        lambda *x: jnp.stack(x), *[params_at(i) for i in range(1, len(values) + 1)]
    )

    def body(state, inputs):
        value, params = inputs
        state = stopper.update(state, value, params)
        return state, (state.should_stop, state.best_step)

    final, (stops, best_steps) = jax.jit(
        lambda s: jax.lax.scan(body, s, (jnp.asarray(values), all_params))
    )(stopper.init(params_at(0)))
    expected = reference(values, patience, mode, min_delta)
    assert list(np.asarray(stops)) == [e[3] for e in expected]
    assert list(np.asarray(best_steps)) == [e[1] for e in expected]
    _check(final, expected[-1], len(values))


def test_best_params_are_a_copy_never_an_alias():
    stopper = optjx.early_stopping(2)
    params = {"w": jnp.ones(3)}
    state = stopper.init(params)
    assert state.best_params["w"] is not params["w"]
    assert state.best_params["w"].unsafe_buffer_pointer() != params["w"].unsafe_buffer_pointer()
    state = stopper.update(state, 1.0, params)
    assert state.best_params["w"].unsafe_buffer_pointer() != params["w"].unsafe_buffer_pointer()
    params["w"].delete()  # the user's buffer gone (e.g. donated): the copy survives
    np.testing.assert_array_equal(state.best_params["w"], 1.0)


def test_patience_zero_stops_at_first_non_improvement_and_state_freezes():
    stopper = optjx.early_stopping(0)
    state = stopper.init({"w": jnp.zeros(())})
    for i, v in enumerate([3.0, 2.0, 2.5, 1.0, 0.5], start=1):
        state = stopper.update(state, v, {"w": jnp.asarray(float(i))})
    assert bool(state.should_stop) and int(state.best_step) == 2
    assert float(state.best_value) == 2.0 and float(state.best_params["w"]) == 2.0
    assert int(state.evaluations) == 3  # frozen after the stop


def test_min_delta_schedule_and_array():
    values = [1.0, 0.95, 0.85, 0.84]
    by_array = optjx.early_stopping(10, min_delta=jnp.asarray(0.06))
    by_schedule = optjx.early_stopping(10, min_delta=optjx.schedules.constant(0.06))
    for stopper in (by_array, by_schedule):
        state = stopper.init({"w": jnp.zeros(())})
        for v in values:
            state = stopper.update(state, v, {"w": jnp.asarray(v)})
        assert int(state.best_step) == 3 and int(state.bad_evaluations) == 1


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(patience=-1), "patience"),
        (dict(patience=2, mode="minimum"), "mode"),
        (dict(patience=2, min_delta=-0.1), "min_delta"),
        (dict(patience=2, min_delta=NAN), "min_delta"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        optjx.early_stopping(**kwargs)


@pytest.mark.parametrize("patience", [1.5, 2.0, True, None, "2"])
def test_patience_of_the_wrong_type_is_a_type_error(patience):
    with pytest.raises(TypeError, match=r"\bpatience\b"):
        optjx.early_stopping(patience=patience)


def test_wrong_type_and_mismatched_params():
    with pytest.raises(TypeError, match="min_delta"):
        optjx.early_stopping(2, min_delta="0.1")
    stopper = optjx.early_stopping(2)
    state = stopper.init({"w": jnp.zeros(2), "b": jnp.zeros(())})
    with pytest.raises(ValueError, match=r"\['b'\]"):
        stopper.update(state, 1.0, {"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match="scalar"):
        stopper.update(state, jnp.zeros(2), {"w": jnp.zeros(2), "b": jnp.zeros(())})


def test_checkpoint_with_orbax_next_to_the_optimizer_state(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    params = {"w": jnp.arange(3.0), "b": jnp.ones(())}
    tx = optjx.adam(0.1)
    stopper = optjx.early_stopping(3)
    opt_state, stop_state = tx.init(params), stopper.init(params)
    for v in (1.0, 0.5, 0.7):
        stop_state = stopper.update(stop_state, v, params)
        params = jax.tree.map(lambda p: p + 1.0, params)
    tree = {"opt_state": opt_state, "early_stopping": stop_state}
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", tree)
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(
            tmp_path / "ckpt", jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
        )
    restored_stop = (
        type(stop_state)(*restored["early_stopping"])
        if not isinstance(restored["early_stopping"], type(stop_state))
        else restored["early_stopping"]
    )
    for a, b in zip(jax.tree.leaves(restored_stop), jax.tree.leaves(stop_state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Training continues from the restored state exactly as from the original.
    np.testing.assert_array_equal(
        stopper.update(restored_stop, 0.2, params).best_params["w"],
        stopper.update(stop_state, 0.2, params).best_params["w"],
    )
