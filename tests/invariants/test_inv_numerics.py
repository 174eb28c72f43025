"""Invariant 4 over the whole registry: zero and tiny gradients, sign symmetry, scale
invariance.

* All-zero gradients and gradients of magnitude 1e-20 and 1e-30 (their squares underflow
  float32) give finite params, updates and state, from a fresh state and after a history
  of ordinary gradients.
* Sign symmetry, a hypothesis property over gradient magnitudes from 1e-20 to 1e15:
  running on ``-w_0, -g_1, -g_2, ...`` gives exactly the negated updates and params of
  running on ``w_0, g_1, g_2, ...`` (every registry algorithm is odd in the gradient and
  the params together; ``Entry.sign_symmetric`` says so).
* The sign convention: over six steps of one gradient ``g``, ``sum_t <u_t, g>`` is negative
  for the entries that return parameter steps (``Entry.descent``) and positive for the
  building blocks, which return descent directions (``scale_by_learning_rate`` flips).
* Scale invariance, a hypothesis property over shapes and scales: with ``eps = 0``
  (``Entry.scale_invariant``) Adam, RMSProp, AdaGrad and NovoGrad give the same updates
  for ``c g`` as for ``g``: bit for bit when ``c`` is a power of two (every rounding
  scales exactly), to float32 rounding (2e-5 of the updates' scale) for any ``c`` in
  ``[1e-3, 1e3]``.
"""

import functools

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import registry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry import ENTRIES

pytestmark = pytest.mark.usefixtures("strict_promotion")
PROPERTY = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _constant_grads(magnitude):
    """Gradients of one magnitude with both signs (0 gives zeros)."""
    signs = harness.make_grads(0)
    return jax.tree.map(lambda g: jnp.where(g >= 0, magnitude, -magnitude).astype(g.dtype), signs)


@pytest.mark.parametrize("magnitude", [0.0, 1e-20, 1e-30])
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_zero_and_tiny_gradients_stay_finite(entry, magnitude):
    c = harness.compiled(entry.id)
    tiny = _constant_grads(magnitude)
    # From a fresh state: three tiny steps.
    params, updates, state = c.run(3, grads=lambda t: tiny)
    assert harness.all_finite((params, updates, state)), f"{entry.id}: from init"
    # After ordinary gradients: the moments hold history, then three tiny steps.
    params, _, state = c.run(3)
    params, updates, state = c.run(3, params=params, state=state, start=3, grads=lambda t: tiny)
    assert harness.all_finite((params, updates, state)), f"{entry.id}: after history"


def _signed_grads(exponent, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(4):
        tree = {}
        for k, s in harness.SHAPES.items():
            magnitude = 10.0 ** (exponent + rng.uniform(-1, 1, size=s))
            tree[k] = jnp.asarray(rng.choice([-1.0, 1.0], size=s) * magnitude, jnp.float32)
        out.append(tree)
    return out


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.sign_symmetric], ids=lambda e: e.id)
def test_sign_symmetry(entry):
    c = harness.compiled(entry.id)

    @PROPERTY
    @given(exponent=st.integers(-20, 15), seed=st.integers(0, 2**16))
    def check(exponent, seed):
        grads = _signed_grads(exponent, seed)
        negated = [jax.tree.map(jnp.negative, g) for g in grads]
        params = harness.make_params()
        p1, u1, _ = c.run(4, params=params, grads=lambda t: grads[t])
        p2, u2, _ = c.run(4, params=jax.tree.map(jnp.negative, params), grads=lambda t: negated[t])
        for t, (a, b) in enumerate(zip(u1, u2, strict=True)):
            harness.assert_trees_identical(a, jax.tree.map(jnp.negative, b), f"updates[{t}]")
        harness.assert_trees_identical(p1, jax.tree.map(jnp.negative, p2), "params")

    check()


SCALE_INVARIANT = [e for e in ENTRIES if e.scale_invariant is not None]
SHAPES = [(), (1,), (5,), (2, 3), (3, 1, 2)]


@functools.cache
def _trajectory(entry_id):
    """A jitted run of 4 updates (of one leaf) for the eps = 0 configuration."""
    entry = registry.BY_ID[entry_id]
    tx = entry.build(**entry.scale_invariant)

    def run(params, grads):
        def body(s, g):
            u, s = harness.update(entry, tx, {"x": g}, s, {"x": params}, jnp.float32(1.0))
            return s, u["x"]

        return jax.lax.scan(body, tx.init({"x": params}), grads)[1]

    return jax.jit(run)


@pytest.mark.parametrize("entry", SCALE_INVARIANT, ids=lambda e: e.id)
def test_scale_invariance_with_eps_zero(entry):
    run = _trajectory(entry.id)

    @PROPERTY
    @given(
        shape=st.sampled_from(SHAPES),
        power=st.integers(-30, 30),
        factor=st.floats(1e-3, 1e3),
        seed=st.integers(0, 2**16),
    )
    def check(shape, power, factor, seed):
        rng = np.random.default_rng(seed)
        # Non-zero gradients (0/0 with eps = 0 is NaN by design), magnitudes 1e-3..1e3.
        g = rng.choice([-1.0, 1.0], size=(4, *shape)) * 10.0 ** rng.uniform(-3, 3, size=(4, *shape))
        params = jnp.zeros(shape, jnp.float32)
        base = run(params, jnp.asarray(g, jnp.float32))
        assert harness.all_finite(base)
        exact = run(params, jnp.asarray(g * 2.0**power, jnp.float32))
        np.testing.assert_array_equal(exact, base, err_msg=f"c = 2**{power}")
        scaled = run(params, jnp.asarray(g, jnp.float32) * jnp.float32(factor))
        # Momentum sums terms of both signs: compare on the trajectory's scale too.
        atol = 2e-5 * float(np.max(np.abs(base)))
        np.testing.assert_allclose(scaled, base, rtol=2e-5, atol=atol, err_msg=f"c = {factor}")

    check()


def test_scale_invariance_property_fails_where_it_should():
    # The property can fail: with the default eps = 1e-8, Adam is not scale invariant for
    # gradients near eps (the check above would catch an eps that is silently ignored).
    entry = registry.BY_ID["adam-plain"]
    tx = entry.build()
    g = {"x": jnp.full((3,), 1e-8, jnp.float32)}
    u1, _ = tx.update(g, tx.init(g))
    u2, _ = tx.update(jax.tree.map(lambda x: x * 1024, g), tx.init(g))
    assert not np.allclose(u1["x"], u2["x"], rtol=1e-3)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_sign_convention(entry):
    c = harness.compiled(entry.id)
    g = harness.make_grads(0)
    if entry.loss_driven:  # it follows its loss: one step against that loss's gradient
        g = harness.gradient(entry, 0, harness.make_params())
        _, updates, _ = c.run(1)
    else:
        _, updates, _ = c.run(6, grads=lambda t: g)
    inner = sum(float(jnp.vdot(u[k], g[k])) for u in updates for k in g)
    if entry.descent:
        assert inner < 0, f"{entry.id}: a parameter step must go against the gradient"
    else:
        assert inner > 0, f"{entry.id}: a building block gives a descent direction"
