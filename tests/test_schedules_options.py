"""The schedule options of issue 10 and 13 (transition_begin, end_value, exponent,
polynomial, inverse_time, per_epoch): against float64 NumPy formulas, against optax's
schedule of the same name where the semantics match, step arguments of any int64 size,
and argument checks that name the argument."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optjx import schedules as S

COUNTS = np.array(list(range(0, 70)) + [100, 1000, 12345])


def _held(begin, formula):
    return lambda k: formula(max(k - begin, 0))


def _poly(init, end, power, steps):
    return lambda k: (init - end) * (1 - min(k, steps) / steps) ** power + end


def _cos(init, steps, *, alpha=0.0, end=None, p=1.0):
    def value(k):
        c = (0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))) ** p
        return init * (alpha + (1 - alpha) * c) if end is None else end + (init - end) * c

    return value


def _exp(init, rate, steps, *, staircase=False, end=None):
    def value(k):
        with np.errstate(over="ignore"):
            v = init * float(np.float64(rate) ** (k // steps if staircase else k / steps))
        if end is None:
            return v
        return max(v, end) if rate < 1 else min(v, end)

    return value


def _inv_time(init, rate, steps, staircase=False):
    return lambda k: init / (1 + rate * (k // steps if staircase else k / steps))


# name -> (optjx schedule, NumPy float64 formula)
FORMULAS = {
    "linear-begin": (S.linear(1.0, 0.1, 20, 7), _held(7, _poly(1.0, 0.1, 1.0, 20))),
    "polynomial-2": (S.polynomial(1.0, 0.01, 2.0, 30), _poly(1.0, 0.01, 2.0, 30)),
    "polynomial-half-begin": (
        S.polynomial(0.5, 0.0, 0.5, 25, transition_begin=10),
        _held(10, _poly(0.5, 0.0, 0.5, 25)),
    ),
    "polynomial-up": (S.polynomial(0.1, 0.3, 1.5, 9), _poly(0.1, 0.3, 1.5, 9)),
    "cosine-end-value": (S.cosine(2.0, 30, end_value=0.2), _cos(2.0, 30, end=0.2)),
    "cosine-exponent": (
        S.cosine(1.0, 30, alpha=0.1, exponent=2.0),
        _cos(1.0, 30, alpha=0.1, p=2.0),
    ),
    "cosine-all": (
        S.cosine(1.0, 30, end_value=0.05, exponent=0.5, transition_begin=12),
        _held(12, _cos(1.0, 30, end=0.05, p=0.5)),
    ),
    "exponential-begin": (
        S.exponential(1.0, 0.5, 7, transition_begin=5),
        _held(5, _exp(1.0, 0.5, 7)),
    ),
    "exponential-floor": (
        S.exponential(1.0, 0.5, 4, end_value=0.05),
        _exp(1.0, 0.5, 4, end=0.05),
    ),
    "exponential-ceiling-staircase": (
        S.exponential(0.01, 2.0, 5, staircase=True, end_value=0.3, transition_begin=3),
        _held(3, _exp(0.01, 2.0, 5, staircase=True, end=0.3)),
    ),
    "inverse_sqrt-begin": (
        S.inverse_sqrt(0.5, transition_begin=4),
        _held(4, lambda k: 0.5 / math.sqrt(k + 1)),
    ),
    "inverse_time": (S.inverse_time(0.1, 0.5), _inv_time(0.1, 0.5, 1)),
    "inverse_time-steps": (S.inverse_time(0.1, 2.0, 10), _inv_time(0.1, 2.0, 10)),
    "inverse_time-staircase-begin": (
        S.inverse_time(1.0, 1.0, 7, staircase=True, transition_begin=3),
        _held(3, _inv_time(1.0, 1.0, 7, True)),
    ),
    "per_epoch-multistep": (
        S.per_epoch(S.piecewise_constant(0.1, {3: 0.1, 5: 0.1}), 6),
        lambda k: 0.1 * 0.1 ** ((k // 6 >= 3) + (k // 6 >= 5)),
    ),
    "per_epoch-exponential": (
        S.per_epoch(S.exponential(1.0, 0.9, 1), 4),
        lambda k: 0.9 ** (k // 4),
    ),
}


@pytest.mark.parametrize("name", list(FORMULAS))
def test_matches_float64_formula(x64, name):
    schedule, formula = FORMULAS[name]
    expected = np.array([formula(int(k)) for k in COUNTS])
    got = np.asarray(jax.jit(schedule)(jnp.asarray(COUNTS, jnp.int32)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    for k in (0, 1, 13, 40):  # eagerly, with a Python int
        np.testing.assert_allclose(float(schedule(k)), formula(k), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_float32(name):
    schedule, formula = FORMULAS[name]
    got = jax.jit(schedule)(jnp.asarray(COUNTS, jnp.int32))
    assert got.dtype == jnp.float32
    expected = [formula(int(k)) for k in COUNTS]
    np.testing.assert_allclose(np.asarray(got), expected, rtol=3e-6, atol=1e-12)


# (optjx schedule, optax schedule of the same name with the same semantics)
OPTAX = {
    "linear": (S.linear(1.0, 0.1, 20, 7), optax.linear_schedule(1.0, 0.1, 20, 7)),
    "polynomial": (
        S.polynomial(1.0, 0.01, 2.0, 30, 4),
        optax.polynomial_schedule(1.0, 0.01, 2.0, 30, 4),
    ),
    "cosine-exponent": (
        S.cosine(1.0, 30, alpha=0.1, exponent=2.0),
        optax.cosine_decay_schedule(1.0, 30, alpha=0.1, exponent=2.0),
    ),
    "cosine-end-value": (
        S.cosine(2.0, 30, end_value=0.2, exponent=1.5),
        optax.warmup_cosine_decay_schedule(0.0, 2.0, 0, 30, end_value=0.2, exponent=1.5),
    ),
    "exponential": (
        S.exponential(1.0, 0.5, 7, transition_begin=5, end_value=0.05),
        optax.exponential_decay(1.0, 7, 0.5, transition_begin=5, end_value=0.05),
    ),
    "exponential-staircase-ceiling": (
        S.exponential(0.01, 2.0, 5, staircase=True, transition_begin=3, end_value=0.3),
        optax.exponential_decay(0.01, 5, 2.0, 3, staircase=True, end_value=0.3),
    ),
}


@pytest.mark.parametrize("name", list(OPTAX))
def test_matches_optax(x64, name):
    ours, theirs = OPTAX[name]
    counts = jnp.asarray(COUNTS, jnp.int64)
    np.testing.assert_allclose(
        np.asarray(jax.vmap(ours)(counts)), np.asarray(jax.vmap(theirs)(counts)), rtol=1e-12
    )


BIG = [2**31, 2**40, 2**63 - 1]


@pytest.mark.parametrize("steps", BIG)
def test_step_arguments_of_any_int64_size(steps):
    # Issue 10: cosine(1.0, 2**31) raised OverflowError at the first call.
    made = [
        S.cosine(1.0, steps),
        S.cosine(1.0, 10, transition_begin=steps),
        S.linear(1.0, 0.0, steps),
        S.linear(1.0, 0.0, 10, steps),
        S.polynomial(1.0, 0.0, 2.0, steps, steps),
        S.exponential(1.0, 0.5, steps, staircase=True, transition_begin=steps),
        S.inverse_time(1.0, 1.0, steps, staircase=True),
        S.inverse_sqrt(1.0, transition_begin=steps),
        S.piecewise_constant(1.0, {steps: 0.5}),
        S.join([S.constant(1.0), S.constant(0.5)], [steps]),
        S.warmup(1.0, steps),
        S.per_epoch(S.exponential(1.0, 0.5, 1), steps),
    ]
    for schedule in made:
        for count in (5, jnp.asarray(5, jnp.int32), jnp.asarray(2**31 - 1, jnp.int32)):
            eager = float(schedule(count))
            jitted = float(jax.jit(schedule)(jnp.asarray(count, jnp.int32)))
            assert math.isfinite(eager) and eager == pytest.approx(jitted, rel=1e-6)
    # Early in the run every one of them is (close to) its initial value or its ramp.
    assert float(S.cosine(1.0, steps)(5)) == pytest.approx(1.0)
    assert float(S.piecewise_constant(1.0, {steps: 0.5})(5)) == 1.0
    assert float(S.warmup(1.0, steps)(0)) == 0.0


def test_big_step_arguments_with_int64_counts(x64):
    counts = jnp.asarray([0, 2**40 - 1, 2**40, 2**40 + 3, 2**41], jnp.int64)
    got = jax.vmap(S.piecewise_constant(1.0, {2**40: 0.5}))(counts)
    np.testing.assert_array_equal(got, [1.0, 1.0, 0.5, 0.5, 0.5])
    got = jax.vmap(S.linear(1.0, 0.0, 2, 2**40))(counts)
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0, 0.0, 0.0])
    got = jax.vmap(S.per_epoch(lambda e: e.astype(jnp.float64), 2**40))(counts)
    np.testing.assert_array_equal(got, [0, 0, 1, 1, 2])
    got = jax.vmap(S.join([S.constant(1.0), S.linear(1.0, 0.0, 4)], [2**40]))(counts)
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0, 0.25, 0.0])


def test_per_epoch_hands_an_integer_epoch_to_the_schedule(x64):
    seen = []

    def record(epoch):
        seen.append(epoch)
        return jnp.asarray(epoch, jnp.float64)

    schedule = S.per_epoch(record, 5)
    assert schedule(12) == 2 and isinstance(seen[-1], int)  # Python int stays Python
    assert jax.jit(schedule)(jnp.asarray(12, jnp.int32)) == 2
    assert jnp.issubdtype(seen[-1].dtype, jnp.integer)
    assert schedule(jnp.asarray(15.0)) == 3  # a float count: floor, exact at multiples


WRONG_TYPES = [
    (lambda v: S.constant(v), "value"),
    (lambda v: S.linear(v, 0.0, 10), "init_value"),
    (lambda v: S.linear(1.0, v, 10), "end_value"),
    (lambda v: S.polynomial(1.0, 0.0, v, 10), "power"),
    (lambda v: S.cosine(v, 10), "init_value"),
    (lambda v: S.cosine(1.0, 10, alpha=v), "alpha"),
    (lambda v: S.cosine(1.0, 10, end_value=v), "end_value"),
    (lambda v: S.cosine(1.0, 10, exponent=v), "exponent"),
    (lambda v: S.exponential(1.0, v, 10), "decay_rate"),
    (lambda v: S.exponential(1.0, 0.5, 10, end_value=v), "end_value"),
    (lambda v: S.inverse_time(v, 1.0), "init_value"),
    (lambda v: S.inverse_time(1.0, v), "decay_rate"),
    (lambda v: S.inverse_sqrt(v), "init_value"),
    (lambda v: S.piecewise_constant(v, {1: 0.5}), "init_value"),
    (lambda v: S.piecewise_constant(1.0, {1: v}), "scale"),
    (lambda v: S.warmup(1.0, 5, init_value=v), "init_value"),
]


@pytest.mark.parametrize("make,name", WRONG_TYPES, ids=[n for _, n in WRONG_TYPES])
def test_wrong_type_raises_type_error_naming_it(make, name):
    for bad in ["0.1", [0.1], 1j, S.constant(0.1), True]:
        if name == "end_value" and bad is None:
            continue
        with pytest.raises(TypeError, match=rf"\b{name}\b"):
            make(bad)


INVALID = [
    (lambda: S.polynomial(1.0, 0.0, 0.0, 10), "power"),
    (lambda: S.polynomial(1.0, 0.0, float("nan"), 10), "power"),
    (lambda: S.polynomial(1.0, 0.0, 1.0, 0), "transition_steps"),
    (lambda: S.polynomial(1.0, 0.0, 1.0, 10, -1), "transition_begin"),
    (lambda: S.cosine(1.0, 2**63), "decay_steps"),
    (lambda: S.cosine(1.0, 10, exponent=0.0), "exponent"),
    (lambda: S.cosine(1.0, 10, end_value=float("inf")), "end_value"),
    (lambda: S.cosine(1.0, 10, alpha=0.1, end_value=0.1), "end_value"),
    (lambda: S.cosine(1.0, 10, transition_begin=-3), "transition_begin"),
    (lambda: S.exponential(1.0, 0.5, 10, end_value=float("nan")), "end_value"),
    (lambda: S.exponential(1.0, 0.5, 10, transition_begin=-1), "transition_begin"),
    (lambda: S.inverse_time(1.0, -0.5), "decay_rate"),
    (lambda: S.inverse_time(1.0, 0.5, 0), "transition_steps"),
    (lambda: S.inverse_time(float("nan"), 0.5), "init_value"),
    (lambda: S.per_epoch(S.constant(1.0), 0), "steps_per_epoch"),
]

# A step argument of the wrong type (a float, even 2.0, a string, a bool) is a TypeError.
WRONG_STEP_TYPES = [
    (lambda: S.linear(1.0, 0.0, 10, 2.5), "transition_begin"),
    (lambda: S.linear(1.0, 0.0, "10"), "transition_steps"),
    (lambda: S.inverse_sqrt(1.0, transition_begin=True), "transition_begin"),
    (lambda: S.per_epoch(S.constant(1.0), 2.0), "steps_per_epoch"),
    (lambda: S.warmup(S.constant(1.0), 2.0), "warmup_steps"),
    (lambda: S.piecewise_constant(1.0, {1.5: 0.1}), "boundaries"),
]


@pytest.mark.parametrize("make,name", INVALID, ids=[f"{i}-{n}" for i, (_, n) in enumerate(INVALID)])
def test_invalid_raises_value_error_naming_it(make, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        make()


@pytest.mark.parametrize(
    "make,name", WRONG_STEP_TYPES, ids=[f"{i}-{n}" for i, (_, n) in enumerate(WRONG_STEP_TYPES)]
)
def test_wrong_step_type_raises_type_error_naming_it(make, name):
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        make()


def test_per_epoch_and_join_reject_non_functions():
    with pytest.raises(TypeError, match="schedule"):
        S.per_epoch(0.1, 10)
    with pytest.raises(TypeError, match="schedules"):
        S.join([S.constant(1.0), 0.5], [3])
    with pytest.raises(TypeError, match="boundaries_and_scales"):
        S.piecewise_constant(1.0, [(3, 0.5)])


def test_schedules_keep_their_public_module():
    # The registry and the examples recognise optjx schedules by their module.
    for name in ("cosine", "polynomial", "per_epoch", "inverse_time"):
        assert getattr(S, name).__module__ == "optjx.schedules"
    assert S.per_epoch(S.cosine(1.0, 3), 2).__module__ == "optjx.schedules"
