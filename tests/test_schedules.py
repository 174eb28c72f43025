"""Every schedule in optjx.schedules against its NumPy formula, its argument checks,
and finite values for counts past 2**31."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optjx import schedules

T = 20


def _linear(init, end, steps):
    return lambda k: (1 - min(k, steps) / steps) * init + min(k, steps) / steps * end


def _cosine(init, steps, alpha=0.0):
    return lambda k: (
        init * (alpha + (1 - alpha) * (1 + math.cos(math.pi * min(k, steps) / steps)) / 2)
    )


def _exponential(init, rate, steps, staircase=False):
    return lambda k: init * rate ** (math.floor(k / steps) if staircase else k / steps)


def _piecewise(init, boundaries_and_scales):
    def value(k):
        out = init
        for boundary, factor in boundaries_and_scales.items():
            if k >= boundary:
                out *= factor
        return out

    return value


def _join(pieces, boundaries):
    def value(k):
        start, current = 0, pieces[0]
        for boundary, piece in zip(boundaries, pieces[1:], strict=True):
            if k >= boundary:
                start, current = boundary, piece
        return current(k - start)

    return value


def _warmup(schedule, steps, init=0.0):
    def value(k):
        if k < steps:
            return init + (schedule(0) - init) * k / steps
        return schedule(k - steps)

    return value


# name -> (optjx schedule, NumPy formula)
CASES = {
    "constant": (schedules.constant(0.3), lambda k: 0.3),
    "linear": (schedules.linear(1.0, 0.01, T), _linear(1.0, 0.01, T)),
    "linear-up": (schedules.linear(0.5, 0.9, T), _linear(0.5, 0.9, T)),
    "cosine": (schedules.cosine(0.1, T), _cosine(0.1, T)),
    "cosine-alpha": (schedules.cosine(2.0, T, alpha=0.25), _cosine(2.0, T, 0.25)),
    "inverse_sqrt": (schedules.inverse_sqrt(0.5), lambda k: 0.5 / math.sqrt(k + 1)),
    "piecewise": (
        schedules.piecewise_constant(0.1, {30: 0.1, 10: 0.1, 20: 0.1}),
        _piecewise(0.1, {10: 0.1, 20: 0.1, 30: 0.1}),
    ),
    "piecewise-at-zero": (
        schedules.piecewise_constant(1.0, {0: 0.5, 7: 3.0}),
        _piecewise(1.0, {0: 0.5, 7: 3.0}),
    ),
    "exponential": (schedules.exponential(1.0, 0.5, 7), _exponential(1.0, 0.5, 7)),
    "exponential-staircase": (
        schedules.exponential(1.0, 0.5, 7, staircase=True),
        _exponential(1.0, 0.5, 7, True),
    ),
    "exponential-growth": (schedules.exponential(1e-3, 1.5, 100), _exponential(1e-3, 1.5, 100)),
    "warmup-cosine": (
        schedules.warmup(schedules.cosine(1.0, T), 8),
        _warmup(_cosine(1.0, T), 8),
    ),
    "warmup-from-value": (
        schedules.warmup(0.4, 5, init_value=0.1),
        _warmup(lambda k: 0.4, 5, 0.1),
    ),
    "warmup-none": (
        schedules.warmup(schedules.inverse_sqrt(1.0), 0),
        lambda k: 1 / math.sqrt(k + 1),
    ),
    "join": (
        schedules.join(
            [schedules.constant(1.0), schedules.linear(1.0, 0.0, 10), schedules.inverse_sqrt(0.5)],
            [5, 25],
        ),
        _join([lambda k: 1.0, _linear(1.0, 0.0, 10), lambda k: 0.5 / math.sqrt(k + 1)], [5, 25]),
    ),
}

COUNTS = list(range(0, 3 * T + 5)) + [100, 1000, 12345]


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_formula(x64, name):
    schedule, formula = CASES[name]
    expected = np.array([formula(k) for k in COUNTS])
    # Vectorised under jit with the optimizers' int32 counter...
    batched = jax.jit(schedule)(jnp.asarray(COUNTS, jnp.int32))
    np.testing.assert_allclose(np.asarray(batched), expected, rtol=1e-12, atol=1e-15)
    # ...and eagerly with a Python int.
    for k in (0, 1, T - 1, T, T + 1, 3 * T):
        np.testing.assert_allclose(float(schedule(k)), formula(k), rtol=1e-12, err_msg=f"count {k}")


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_in_float32(name):
    # Without x64 the value is float32 and still matches the formula to float32 accuracy.
    schedule, formula = CASES[name]
    values = jax.jit(schedule)(jnp.asarray(COUNTS, jnp.int32))
    assert values.dtype == jnp.float32
    expected = np.array([formula(k) for k in COUNTS])
    np.testing.assert_allclose(np.asarray(values), expected, rtol=2e-6, atol=1e-12)


BIG_COUNTS = [2**31 - 1, 2**31, 2**31 + 7, 2**40, 2**53]
DECAYING = [name for name in CASES if name != "exponential-growth"]


@pytest.mark.parametrize("name", DECAYING)
def test_finite_past_int32(name):
    # Growth without bound (exponential with rate > 1) is legitimately infinite; every
    # other schedule stays finite and at its formula's value for counts past 2**31.
    schedule, formula = CASES[name]
    for k in BIG_COUNTS:
        value = float(schedule(k))  # Python int, float32 default
        assert math.isfinite(value), (name, k)
        np.testing.assert_allclose(value, formula(k), rtol=1e-5, atol=1e-9, err_msg=f"count {k}")
    saturated = float(jax.jit(schedule)(jnp.asarray(np.iinfo(np.int32).max, jnp.int32)))
    assert math.isfinite(saturated)


@pytest.mark.parametrize("name", DECAYING)
def test_finite_past_int32_with_int64_counts(x64, name):
    schedule, formula = CASES[name]
    values = np.asarray(jax.jit(schedule)(jnp.asarray(BIG_COUNTS, jnp.int64)))
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, [formula(k) for k in BIG_COUNTS], rtol=1e-9, atol=1e-300)


INVALID = [
    (lambda: schedules.constant(float("nan")), "value"),
    (lambda: schedules.linear(1.0, 0.0, 0), "transition_steps"),
    (lambda: schedules.linear(1.0, 0.0, -5), "transition_steps"),
    (lambda: schedules.linear(float("inf"), 0.0, 10), "init_value"),
    (lambda: schedules.linear(1.0, float("nan"), 10), "end_value"),
    (lambda: schedules.cosine(1.0, 0), "decay_steps"),
    (lambda: schedules.cosine(1.0, 10, alpha=-0.1), "alpha"),
    (lambda: schedules.cosine(1.0, 10, alpha=1.5), "alpha"),
    (lambda: schedules.inverse_sqrt(float("inf")), "init_value"),
    (lambda: schedules.piecewise_constant(1.0, {-1: 0.1}), "boundaries"),
    (lambda: schedules.piecewise_constant(1.0, {10: float("nan")}), "scale"),
    (lambda: schedules.exponential(1.0, 0.5, 0), "transition_steps"),
    (lambda: schedules.exponential(1.0, 0.0, 10), "decay_rate"),
    (lambda: schedules.exponential(1.0, -0.5, 10), "decay_rate"),
    (lambda: schedules.exponential(1.0, float("inf"), 10), "decay_rate"),
    (lambda: schedules.warmup(schedules.constant(1.0), -1), "warmup_steps"),
    (lambda: schedules.warmup(schedules.constant(1.0), 10, init_value=float("nan")), "init_value"),
    (lambda: schedules.join([], []), "schedules"),
    (lambda: schedules.join([schedules.constant(1.0)] * 2, []), "boundaries"),
    (lambda: schedules.join([schedules.constant(1.0)] * 3, [10, 10]), "boundaries"),
    (lambda: schedules.join([schedules.constant(1.0)] * 2, [-3]), "boundaries"),
]


@pytest.mark.parametrize(
    "make, name", INVALID, ids=[f"{i}-{n}" for i, (_, n) in enumerate(INVALID)]
)
def test_invalid_arguments(make, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        make()


def test_step_argument_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"\btransition_steps\b"):
        schedules.linear(1.0, 0.0, 2.5)


def test_numpy_integer_step_counts_are_accepted(x64):
    # Step counts often come from NumPy arithmetic (steps_per_epoch * epochs).
    schedule = schedules.linear(1.0, 0.0, np.int64(10))
    np.testing.assert_allclose(float(schedule(5)), 0.5)
    schedule = schedules.piecewise_constant(1.0, {np.int64(3): 0.5})
    np.testing.assert_allclose(float(schedule(3)), 0.5)
    schedule = schedules.warmup(schedules.constant(1.0), np.int32(4))
    np.testing.assert_allclose(float(schedule(2)), 0.5)


def test_linear_decay_to_zero_holds_exactly_zero():
    # Under jit in float32, XLA's reciprocal multiply and FMA made the held value
    # -1.49e-8: a negative learning rate after the decay (fixed in schedules.linear).
    schedule = jax.jit(schedules.linear(1.0, 0.0, 10))
    values = np.asarray(schedule(jnp.arange(10, 40, dtype=jnp.int32)))
    np.testing.assert_array_equal(values, 0.0)
    values = np.asarray(schedule(jnp.arange(0, 10, dtype=jnp.int32)))
    assert np.all(values > 0)


@pytest.mark.parametrize("steps", [41, 47, 55, 97, 123])
def test_staircase_steps_exactly_at_multiples(steps):
    # Under jit, k / T is k * (1/T); for these T, 1/T rounds down in float32 and the
    # floor stepped one count late (fixed in schedules.exponential).
    schedule = jax.jit(schedules.exponential(1.0, 0.5, steps, staircase=True))
    counts = np.arange(0, 5 * steps)
    values = np.asarray(schedule(jnp.asarray(counts, jnp.int32)))
    np.testing.assert_allclose(values, 0.5 ** (counts // steps), rtol=1e-6)
