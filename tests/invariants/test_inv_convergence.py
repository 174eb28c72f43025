"""Invariant 7: every optimizer converges on a quadratic and on the Rosenbrock function.

Every public name, with the hyperparameters tuned for it in ``registry.TUNED`` (building
blocks inside the smallest chain that makes them an optimizer), runs a fixed number of
steps (``QUADRATIC_STEPS``, ``ROSENBROCK_STEPS``, the same for all) from a fixed start
and must end within 3e-2 of the minimiser in every coordinate, with a loss within 3e-2
of the minimum. Both runs of a name are one ``jax.jit`` of two ``lax.scan``s.

* Quadratic: ``f(x) = 1/2 sum_i c_i (x_i - t_i)^2`` with curvatures ``c = (1, 2, 5, 10)``,
  from 0; minimiser ``t``, minimum 0.
* Rosenbrock: ``f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`` from the classic (-1.2, 1);
  minimiser (1, 1), minimum 0.

Complex params (decided here): a transformation that is linear in the gradient
elementwise (``Entry.linear``: scale, trace, ema, bias correction, weight decay, SGD, and
the wrappers around them) supports complex params as exactly two real parts: the
trajectory on ``z = x + iy`` with gradient ``g_x + i g_y`` equals the trajectory on the
real pair ``(x, y)`` (so a complex quadratic converges like a real one; note that
``jax.grad`` of a real loss returns ``conj(g_x + i g_y)``: pass the conjugate). A
transformation that squares, normalises, clips or takes signs has no single meaning for
complex numbers and must reject complex params with a clear ``ValueError`` that says
so, instead of silently computing with ``g**2`` (a complex number) in place of ``|g|^2``.
"""

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import registry

import optjx

pytestmark = pytest.mark.usefixtures("strict_promotion")
TOLERANCE = 3e-2

CURVATURE = jnp.asarray([1.0, 2.0, 5.0, 10.0])
TARGET = jnp.asarray([1.0, -2.0, 0.5, 3.0])
QUADRATIC_START = {"x": jnp.zeros(4)}
ROSENBROCK_START = {"xy": jnp.asarray([-1.2, 1.0])}


def quadratic(p):
    return 0.5 * jnp.sum(CURVATURE * (p["x"] - TARGET) ** 2)


def rosenbrock(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _minimise(tx, loss, start, steps, loss_driven=False):
    tx = optax.with_extra_args_support(tx)  # reduce_on_plateau reads value=loss
    # A loss-driven method (cards' loss_driven) also gets the loss itself.
    extra = {"value_fn": loss} if loss_driven else {}

    def body(carry, _):
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p)
        updates, s = tx.update(grads, s, p, value=value, **extra)
        return (optax.apply_updates(p, updates), s), None

    (p, _), _ = jax.lax.scan(body, (start, tx.init(start)), None, length=steps)
    return p


@pytest.mark.parametrize("name", registry.NAMES)
def test_converges_on_quadratic_and_rosenbrock(name):
    tuned, driven = registry.TUNED[name], registry.first(name).loss_driven
    quad, rosen = jax.jit(
        lambda: (
            _minimise(
                tuned.quadratic(), quadratic, QUADRATIC_START, registry.QUADRATIC_STEPS, driven
            ),
            _minimise(
                tuned.rosenbrock(), rosenbrock, ROSENBROCK_START, registry.ROSENBROCK_STEPS, driven
            ),
        )
    )()
    quad_error = float(jnp.max(jnp.abs(quad["x"] - TARGET)))
    rosen_error = float(jnp.max(jnp.abs(rosen["xy"] - 1.0)))
    assert quad_error < TOLERANCE and float(quadratic(quad)) < TOLERANCE, (name, quad)
    assert rosen_error < TOLERANCE and float(rosenbrock(rosen)) < TOLERANCE, (name, rosen)


def test_convergence_check_can_fail():
    # The same harness with an untuned optimizer does not pass: plain gradient descent
    # with a rate the Rosenbrock valley cannot take in 10,000 steps.
    p = jax.jit(
        lambda: _minimise(optjx.sgd(1e-4), rosenbrock, ROSENBROCK_START, registry.ROSENBROCK_STEPS)
    )()
    assert float(jnp.max(jnp.abs(p["xy"] - 1.0))) > TOLERANCE


# ---------------------------------------------------------------------- complex params


def _complex_problem(t):
    rng = np.random.default_rng(200 + t)
    return {
        k: jnp.asarray(rng.normal(size=s) + 1j * rng.normal(size=s), jnp.complex64)
        for k, s in harness.SHAPES.items()
    }


def _as_pairs(tree):
    """A complex tree as real arrays with a trailing axis of (real, imaginary)."""
    return jax.tree.map(lambda z: jnp.stack([jnp.real(z), jnp.imag(z)], axis=-1), tree)


# A configuration that fixes a real state dtype (accumulator_dtype=float32) contradicts
# complex params: it is left out of the complex checks.
LINEAR = [e for e in registry.ENTRIES if e.linear and not e.fixes_state_dtype]
NONLINEAR = [e for e in registry.ENTRIES if not e.linear]


@pytest.mark.parametrize("entry", LINEAR, ids=lambda e: e.id)
def test_linear_transformations_treat_complex_params_as_two_real_parts(entry):
    tx = entry.build()
    z = _complex_problem(0)
    pairs = _as_pairs(z)
    z_state, pair_state = tx.init(z), tx.init(pairs)
    for t in range(1, 5):
        g = _complex_problem(t)
        value = harness.value_at(t)
        z_updates, z_state = harness.update(entry, tx, g, z_state, z, value)
        pair_updates, pair_state = harness.update(entry, tx, _as_pairs(g), pair_state, pairs, value)
        assert all(u.dtype == jnp.complex64 for u in jax.tree.leaves(z_updates))
        harness.assert_trees_close(_as_pairs(z_updates), pair_updates, f"step {t}", rtol=1e-6)
        z, pairs = optax.apply_updates(z, z_updates), optax.apply_updates(pairs, pair_updates)


@pytest.mark.parametrize("name", ["sgd", "scale_by_learning_rate", "trace", "ema"])
def test_complex_quadratic_converges(name):
    # f(z) = 1/2 sum c |z - t|^2; jax.grad gives conj(df/dx + i df/dy): descend along its
    # conjugate.
    target = jax.lax.complex(TARGET, TARGET[::-1])
    tx = registry.TUNED[name].quadratic()

    def loss(p):
        return 0.5 * jnp.sum(CURVATURE * jnp.abs(p["z"] - target) ** 2)

    def body(carry, _):
        p, s = carry
        grads = jax.tree.map(jnp.conj, jax.grad(loss)(p))
        updates, s = tx.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), None

    start = {"z": jnp.zeros(4, jnp.complex64)}
    (p, _), _ = jax.jit(
        lambda: jax.lax.scan(body, (start, tx.init(start)), None, length=registry.QUADRATIC_STEPS)
    )()
    assert float(jnp.max(jnp.abs(p["z"] - target))) < TOLERANCE


# Nonlinear transformations must reject complex params clearly (they would compute g**2,
# a complex number, where |g|^2 is meant). ``clip`` fails clearly through jnp.clip.
@pytest.mark.filterwarnings("ignore:Casting from complex:DeprecationWarning")
@pytest.mark.parametrize(
    "entry",
    NONLINEAR,
    ids=lambda e: e.id,
)
def test_nonlinear_transformations_reject_complex_params_clearly(entry):
    tx = entry.build()
    z = _complex_problem(0)
    with pytest.raises(ValueError, match="complex"):
        state = tx.init(z)
        harness.update(entry, tx, _complex_problem(1), state, z, harness.value_at(0))
