"""reduce_on_plateau against the plateau rule written in plain Python, and hand-made cases.

Reference (ReduceLROnPlateau's counting, with the threshold best - rtol |best|):
    improved = v < best - rtol |best|  (any v improves on best = +inf);  best <- v if improved
    n <- 0 if improved else n + 1;  if c > 0: c <- c - 1, n <- 0
    if n > patience: s <- max(s factor, min_scale), n <- 0, c <- cooldown
    update = s * g
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx


def plateau_reference(values, factor, patience, rtol, cooldown, min_scale):
    scale, best, n, c, scales = 1.0, np.inf, 0, 0, []
    for v in values:
        improved = v < best - rtol * abs(best) if np.isfinite(best) else True
        if improved:
            best, n = v, 0
        else:
            n += 1
        if c > 0:
            c, n = c - 1, 0
        if n > patience:
            scale, n, c = max(scale * factor, min_scale), 0, cooldown
        scales.append(scale)
    return scales


def losses(steps=60, seed=2):
    """A negative loss that falls, stalls with noise, falls again, and stalls for good."""
    rng = np.random.default_rng(seed)
    trend = np.concatenate(
        [
            -np.linspace(1, 20, 12),
            np.full(14, -20.0),
            -np.linspace(20, 40, 8),
            np.full(steps - 34, -40.0),
        ]
    )
    return trend + 0.05 * rng.normal(size=steps)


def run_optjx(tx, values, seed=0):
    rng = np.random.default_rng(seed)
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(4)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    scales, updates_seen, grads_seen = [], [], []
    for v in values:
        g = {"w": jnp.asarray(rng.normal(size=(2, 3))), "b": jnp.asarray(rng.normal(size=4))}
        updates, state = step(g, state, params, value=jnp.asarray(v))
        scales.append(float(state.scale))
        updates_seen.append(updates)
        grads_seen.append(g)
    return scales, updates_seen, grads_seen, state


@pytest.mark.parametrize(
    "factor, patience, rtol, cooldown, min_scale",
    [(0.5, 2, 1e-2, 3, 0.1), (0.1, 4, 1e-4, 0, 0.0), (0.3, 0, 1e-3, 1, 1e-3)],
)
def test_matches_reference_on_a_negative_loss(x64, factor, patience, rtol, cooldown, min_scale):
    values = losses()
    tx = optjx.reduce_on_plateau(
        factor=factor, patience=patience, rtol=rtol, cooldown=cooldown, min_scale=min_scale
    )
    scales, updates, grads, state = run_optjx(tx, values)
    expected = plateau_reference(values, factor, patience, rtol, cooldown, min_scale)
    np.testing.assert_allclose(scales, expected, rtol=1e-12)
    for t, (u, g) in enumerate(zip(updates, grads, strict=True)):
        for n in g:
            np.testing.assert_allclose(
                u[n], expected[t] * np.asarray(g[n]), rtol=1e-12, err_msg=f"step {t}"
            )
    assert len(set(expected)) >= 3  # several reductions happen on this data
    assert min(scales) >= min_scale
    np.testing.assert_allclose(float(state.best_value), values[np.argmin(values)], rtol=0.05)


def test_the_data_tells_cooldown_and_min_scale_apart():
    values = losses()
    base = plateau_reference(values, 0.5, 2, 1e-2, 0, 0.0)
    assert base != plateau_reference(values, 0.5, 2, 1e-2, 3, 0.0)
    assert base != plateau_reference(values, 0.5, 2, 1e-2, 0, 0.1)


def test_patience_counts_tolerated_non_improving_updates(x64):
    # patience 2: the first value improves on +inf, then 2 stalls are tolerated and the
    # 3rd reduces; the count restarts, and 3 more stalls reduce again.
    tx = optjx.reduce_on_plateau(factor=0.5, patience=2)
    scales, *_ = run_optjx(tx, [5.0] * 8)
    assert scales == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cooldown_ignores_stalls(x64):
    # cooldown 2: the two updates after a reduction are not counted.
    tx = optjx.reduce_on_plateau(factor=0.5, patience=1, cooldown=2)
    scales, *_ = run_optjx(tx, [5.0] * 9)
    assert scales == [1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


@pytest.mark.parametrize(
    "values, reduced",
    [
        ([-10.0, -10.05], True),  # above best - 1% of |best|: not an improvement
        ([-10.0, -10.2], False),  # a real 2% improvement
        ([10.0, 9.95], True),
        ([10.0, 9.8], False),
    ],
)
def test_relative_threshold_uses_the_size_of_a_negative_best(x64, values, reduced):
    # PyTorch's best * (1 - rtol) = -9.9 would count -10.05 as an improvement.
    tx = optjx.reduce_on_plateau(factor=0.1, patience=0, rtol=1e-2)
    scales, *_ = run_optjx(tx, values)
    assert scales[-1] == (0.1 if reduced else 1.0)


def test_min_scale_is_a_floor(x64):
    tx = optjx.reduce_on_plateau(factor=0.1, patience=0, min_scale=0.05)
    scales, *_ = run_optjx(tx, [1.0, 2.0, 2.0, 2.0])
    assert scales == [1.0, 0.1, 0.05, 0.05]


def test_in_a_chain_and_nested_wrappers_receive_the_value(x64):
    plateau = optjx.reduce_on_plateau(factor=0.5, patience=0)
    tx = optax.chain(
        optjx.clip_by_global_norm(10.0),
        optjx.lookahead(
            optax.chain(optjx.sgd(1.0), optjx.apply_if_finite(plateau, max_consecutive_errors=1)),
            sync_period=100,
        ),
    )
    params = {"x": jnp.zeros(2)}
    state = tx.init(params)
    g = {"x": jnp.ones(2)}
    step = jax.jit(tx.update)
    for v in [3.0, 3.0, 3.0]:
        updates, state = step(g, state, params, value=jnp.asarray(v))
    np.testing.assert_allclose(updates["x"], -0.25)
    # Plain optjx aliases ignore the extra keyword.
    plain = optax.chain(optjx.adam(0.1), plateau)
    updates, _ = jax.jit(plain.update)(g, plain.init(params), params, value=jnp.asarray(1.0))
    assert updates["x"].shape == (2,)


def test_value_is_required():
    tx = optjx.reduce_on_plateau()
    params = {"x": jnp.zeros(2)}
    with pytest.raises(ValueError, match="value"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="scalar"):
        tx.update(params, tx.init(params), params, value=jnp.zeros(2))
