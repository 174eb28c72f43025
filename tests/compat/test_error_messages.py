"""Each error a new user meets names the argument or key path and says what to pass."""

from __future__ import annotations

import jax.numpy as jnp
import optax
import pytest

import optjx

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}


@pytest.mark.parametrize("inner", [None, "adam"])
def test_monitor_names_inner(inner):
    with pytest.raises(TypeError, match=r"monitor's inner must be an optax GradientTransformation"):
        optjx.monitor(inner)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda x: optjx.lookahead(x),
        lambda x: optjx.polyak_averaging(x),
        lambda x: optjx.apply_if_finite(x, max_consecutive_errors=2),
        lambda x: optjx.accumulate_gradients(x, 2),
    ],
)
def test_every_wrapper_names_inner(wrap):
    with pytest.raises(TypeError, match=r"inner must be an optax GradientTransformation"):
        wrap("sgd")


def test_non_scalar_learning_rate_array_is_refused():
    with pytest.raises(
        ValueError, match=r"learning_rate must be a scalar, got an array of shape \(3,\)"
    ):
        optjx.adam(jnp.asarray([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match=r"b1 must be a scalar"):
        optjx.scale_by_adam(b1=jnp.full((2,), 0.9))


def test_schedule_returning_a_non_number_names_it():
    tx = optjx.sgd(lambda count: "0.1")
    state = tx.init(PARAMS)
    with pytest.raises(TypeError, match=r"learning_rate is a schedule that returned '0.1'"):
        tx.update(PARAMS, state, PARAMS)
    tx = optjx.adam(0.1, b1=lambda count: jnp.full((2,), 0.9))
    with pytest.raises(ValueError, match=r"b1 must be a scalar, got an array of shape \(2,\)"):
        tx.update(PARAMS, tx.init(PARAMS), PARAMS)


def test_early_stopping_value_of_the_wrong_type_names_value():
    stopper = optjx.early_stopping(patience=2)
    state = stopper.init(PARAMS)
    with pytest.raises(TypeError, match=r"value must be the monitored metric.*got '0.5'"):
        stopper.update(state, "0.5", PARAMS)
    with pytest.raises(ValueError, match=r"value must be a scalar, got shape \(3,\)"):
        stopper.update(state, jnp.ones(3), PARAMS)


def test_accessor_without_a_schedule_free_state_reads_well():
    state = optjx.adam(0.1).init(PARAMS)
    with pytest.raises(ValueError) as error:
        optjx.schedule_free_eval_params(state, PARAMS)
    message = str(error.value)
    assert "found no schedule-free state" in message and "no a " not in message
    assert "sgd_schedule_free" in message  # what to build instead


def test_grads_in_another_container_are_a_container_mismatch():
    tx = optjx.adam(0.1)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"container mismatch at key path \(the root\): a list"):
        tx.update([jnp.ones(3), jnp.ones((2, 3))], state)
    with pytest.raises(ValueError, match=r"container mismatch at key path \['w'\]: a tuple"):
        tx.update({"w": (jnp.ones((2, 3)),), "b": jnp.ones(3)}, state)


def test_schedule_free_eval_params_with_mismatched_params_names_the_key_path():
    tx = optjx.sgd_schedule_free(0.1)
    state = tx.init(PARAMS)
    wrong = {"w": jnp.ones((3, 2)), "b": jnp.ones(3)}
    with pytest.raises(ValueError, match=r"schedule_free_eval_params.*key path \['w'\]: shape"):
        optjx.schedule_free_eval_params(state, wrong)
    with pytest.raises(ValueError, match=r"schedule_free_train_params.*containers differ"):
        optjx.schedule_free_train_params(state, [jnp.ones(3), jnp.ones((2, 3))])


def test_an_int_that_shapes_the_state_asks_for_static_args():
    injected = optax.inject_hyperparams(optjx.lookahead)
    with pytest.raises(TypeError, match=r"sync_period.*static_args=\('sync_period',\)"):
        injected(optjx.sgd(0.1), sync_period=2).init(PARAMS)
    # Listed in static_args it works.
    tx = optax.inject_hyperparams(optjx.lookahead, static_args=("sync_period",))(
        optjx.sgd(0.1), sync_period=2
    )
    tx.update(PARAMS, tx.init(PARAMS), PARAMS)
    with pytest.raises(TypeError, match=r"history_size.*static_args"):
        optjx.lbfgs(history_size=jnp.asarray(5))


def test_a_schedule_for_a_value_read_once_is_refused():
    with pytest.raises(TypeError, match=r"initial_accumulator_value is read once"):
        optjx.adagrad(0.1, initial_accumulator_value=lambda count: 0.1)
    with pytest.raises(TypeError, match=r"initial_scale is read once"):
        optjx.rmsprop(0.1, initial_scale=lambda count: 0.1)
