"""monitor: norms against NumPy, updates unchanged bit for bit, non-finite gradients;
diagnostics under chains, masks, multi_transform and wrappers (RAdam's rectification
term against its formula, Lookahead's sync, apply_if_finite's counters); the compiled
program computes the inner update once and adds only the norms' reductions."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx


def _params(dtype=jnp.float64):
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(4, 3)), dtype),
        "b": jnp.asarray(rng.normal(size=3), dtype),
    }


def _grads(t, dtype=jnp.float64):
    rng = np.random.default_rng(10 + t)
    return {
        "w": jnp.asarray(rng.normal(size=(4, 3)) * 3, dtype),
        "b": jnp.asarray(rng.normal(size=3), dtype),
    }


def _norm(tree):
    return float(
        np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))
    )


def test_norms_match_numpy_and_updates_are_unchanged(x64):
    inner = optjx.adam(0.1)
    tx = optjx.monitor(optjx.adam(0.1))
    params = _params()
    state, ref_state = tx.init(params), inner.init(params)
    stats = optjx.diagnostics(state)
    assert float(stats["grad_norm"]) == 0.0 and bool(stats["grad_finite"])
    update = jax.jit(tx.update)
    for t in range(5):
        g = _grads(t)
        u, state = update(g, state, params)
        ref_u, ref_state = jax.jit(inner.update)(g, ref_state, params)
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(ref_u), strict=True):
            np.testing.assert_array_equal(a, b)
        stats = optjx.diagnostics(state)
        np.testing.assert_allclose(float(stats["grad_norm"]), _norm(g), rtol=1e-12)
        np.testing.assert_allclose(float(stats["update_norm"]), _norm(u), rtol=1e-12)
        np.testing.assert_allclose(float(stats["param_norm"]), _norm(params), rtol=1e-12)
        largest = max(float(np.max(np.abs(np.asarray(x)))) for x in jax.tree.leaves(g))
        assert float(stats["grad_max_abs"]) == largest
        assert bool(stats["grad_finite"])
        params = optax.apply_updates(params, u)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradients_are_flagged(bad):
    tx = optjx.monitor(optjx.sgd(0.1))
    params = _params(jnp.float32)
    g = _grads(0, jnp.float32)
    g["b"] = g["b"].at[1].set(bad)
    _, state = jax.jit(tx.update)(g, tx.init(params), params)
    stats = optjx.diagnostics(state)
    assert not bool(stats["grad_finite"])
    assert not np.isfinite(float(stats["grad_max_abs"]))


def test_bfloat16_norms_accumulate_in_float32():
    params = {"w": jnp.full((1000,), 1.0, jnp.bfloat16)}
    tx = optjx.monitor(optjx.sgd(0.1))
    _, state = tx.update(params, tx.init(params), params)
    assert state.grad_norm.dtype == jnp.float32
    np.testing.assert_allclose(float(state.grad_norm), np.sqrt(1000.0), rtol=1e-6)


def _rectifier(t, b2):
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho <= 5:
        return 0.0
    return np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))


def test_diagnostics_in_a_chain_with_radam_lookahead_and_finite_guard(x64):
    tx = optax.chain(
        optjx.clip_by_global_norm(1.0),
        optjx.monitor(
            optjx.apply_if_finite(
                optjx.lookahead(optjx.radam(1e-2, b2=0.99), sync_period=3),
                max_consecutive_errors=2,
            )
        ),
    )
    params = _params()
    state = tx.init(params)
    update = jax.jit(tx.update)
    applied = 0
    for t in range(10):
        g = _grads(t)
        if t == 4:
            g["w"] = g["w"].at[0, 0].set(np.nan)
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
        stats = optjx.diagnostics(state)
        if t != 4:
            applied += 1
        assert bool(stats["last_finite"]) == (t != 4)
        assert int(stats["total_notfinite"]) == (t >= 4)
        assert int(stats["notfinite_count"]) == (t == 4)
        np.testing.assert_allclose(
            float(stats["radam_rectifier"]), _rectifier(applied, 0.99), rtol=1e-9
        )
        assert bool(stats["radam_adaptive"]) == (applied >= 6)
        assert int(stats["lookahead_steps_since_sync"]) == applied % 3
        if t != 4:  # the monitor sits after the clip: it sees norms <= 1
            assert float(stats["grad_norm"]) <= 1.0 + 1e-12


def test_diagnostics_under_masks_and_multi_transform():
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    grads = {"w": jnp.full((3, 2), 2.0), "b": jnp.full(2, 5.0)}
    masked = optax.masked(optjx.monitor(optjx.sgd(0.1)), {"w": True, "b": False})
    _, state = masked.update(grads, masked.init(params), params)
    stats = optjx.diagnostics(state)  # only the leaves the monitor owns
    np.testing.assert_allclose(float(stats["grad_norm"]), np.sqrt(6 * 4.0), rtol=1e-6)
    np.testing.assert_allclose(float(stats["param_norm"]), np.sqrt(6.0), rtol=1e-6)
    multi = optax.multi_transform(
        {"a": optjx.monitor(optjx.adam(0.1)), "b": optjx.sgd(0.1)}, {"w": "a", "b": "b"}
    )
    _, state = multi.update(grads, multi.init(params), params)
    np.testing.assert_allclose(float(optjx.diagnostics(state)["grad_max_abs"]), 2.0)


def test_diagnostics_jits_and_errors():
    params = _params(jnp.float32)
    tx = optjx.monitor(optjx.sgd(0.1))
    stats = jax.jit(optjx.diagnostics)(tx.init(params))
    assert set(stats) == {"grad_norm", "grad_max_abs", "grad_finite", "update_norm", "param_norm"}
    with pytest.raises(ValueError, match="no monitor"):
        optjx.diagnostics(optjx.adam(0.1).init(params))
    two = optax.chain(optjx.monitor(optjx.sgd(0.1)), optjx.monitor(optjx.sgd(0.1)))
    with pytest.raises(ValueError, match="2 monitor"):
        optjx.diagnostics(two.init(params))
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))


def _compiled_entry(tx, params):
    state = tx.init(params)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    text = jax.jit(step).lower(params, state, params).compile().as_text()
    return text[text.index("ENTRY") :].splitlines()


def test_compiled_program_adds_only_the_norm_reductions():
    # One big leaf: count the full-size arrays the program writes and the reductions.
    params = {"w": jnp.ones((256, 128), jnp.float32)}
    big = re.compile(r"\s*%\S+ = f32\[256,128\]")
    scalar_from_big = re.compile(r"= f32\[\] .*f32\[256,128\]|= f32\[\] fusion\(")
    counts = {}
    for name, tx in [("plain", optjx.adam(1e-3)), ("monitored", optjx.monitor(optjx.adam(1e-3)))]:
        entry = [line for line in _compiled_entry(tx, params) if "parameter(" not in line]
        counts[name] = (
            sum(bool(big.match(line)) for line in entry),
            sum(bool(scalar_from_big.search(line)) for line in entry),
        )
    (plain_written, plain_scalars), (watched_written, watched_scalars) = counts.values()
    # The inner update is computed once. On XLA's CPU backend, which has no multi-output
    # fusion of a reduction with the loop that produces its operand, the monitor's extra
    # full-size writes are the operands of its reductions that other ops also read: the
    # gradient's square (shared with Adam's second moment), Adam's direction and the
    # scaled update. (GPU backends fuse those reductions into the producing loops.)
    assert watched_written <= plain_written + 3, counts
    # Five reductions over the leaf (|g|^2, max g, min g, |u|^2, |w|^2), a few scalars.
    assert watched_scalars - plain_scalars <= 10, counts
