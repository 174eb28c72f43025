"""``optjx.block_coordinate``: block-by-block minimisation against closed forms and NumPy's
Gauss-Seidel sweep; untouched blocks bit-identical; random order from the key; errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

TARGETS = {"a": np.array([1.0, -2.0]), "b": np.array([3.0, 0.5, -1.0]), "c": np.array(4.0)}
LABELS = {"a": 0, "b": 1, "c": 2}


def unit_quadratic(p):
    """Separable, curvature 1 in every coordinate: sgd(1.0) is the exact block step."""
    return sum(0.5 * jnp.sum((p[k] - TARGETS[k]) ** 2) for k in TARGETS)


def start():
    return {k: jnp.zeros(np.shape(v)) for k, v in TARGETS.items()}


def run(tx, loss, params, steps, *, full_batch):
    """``[(params, state)]`` after each update; full-batch inner methods get ``value_fn``."""

    def step(p, s):
        if full_batch:
            return tx.update(None, s, p, value_fn=loss)
        return tx.update(jax.grad(loss)(p), s, p)

    step = jax.jit(step)
    state, history = tx.init(params), []
    for _ in range(steps):
        updates, state = step(params, state)
        params = optjx.apply_updates(params, updates)
        history.append((params, state))
    return history


@pytest.mark.parametrize(
    ("inner", "full_batch"),
    [(lambda: optjx.sgd(1.0), False)],
    ids=["sgd-exact-step"],  # lbfgs: test_full_batch_inner_minimises_each_block_exactly
)
def test_cyclic_blocks_reach_the_minimiser_block_by_block(inner, full_batch):
    tx = optjx.block_coordinate(inner(), LABELS)
    history = run(tx, unit_quadratic, start(), 4, full_batch=full_batch)
    order = list(TARGETS)  # labels 0, 1, 2 in ascending order
    for k, (params, state) in enumerate(history[:3]):
        assert int(state.block) == k
        for j, name in enumerate(order):
            want = TARGETS[name] if j <= k else np.zeros(np.shape(TARGETS[name]))
            np.testing.assert_allclose(params[name], want, rtol=0, atol=1e-6)
    assert int(history[3][1].block) == 0  # the cycle starts again


# A coupled quadratic 0.5 x'Hx - m'x over blocks x = (u, v): exact block minimisation is
# the Gauss-Seidel sweep u <- H_uu^-1 (m_u - H_uv v), v <- H_vv^-1 (m_v - H_vu u).
RNG = np.random.default_rng(1)
_R = RNG.normal(size=(5, 5))
HESSIAN = _R @ _R.T + 5 * np.eye(5)
LINEAR = RNG.normal(size=5)


def coupled(p):
    x = jnp.concatenate([p["u"], p["v"]])
    return 0.5 * x @ (jnp.asarray(HESSIAN) @ x) - jnp.asarray(LINEAR) @ x


def test_full_batch_inner_minimises_each_block_exactly_gauss_seidel(x64):
    inner = optjx.lbfgs(
        line_search_fn="strong_wolfe", max_iter=50, tolerance_grad=1e-12, tolerance_change=0.0
    )
    tx = optjx.block_coordinate(inner, {"u": 0, "v": 1})
    history = run(tx, coupled, {"u": jnp.zeros(2), "v": jnp.zeros(3)}, 6, full_batch=True)
    x = np.zeros(5)
    u, v = slice(0, 2), slice(2, 5)
    for k, (params, _) in enumerate(history):
        b, other = (u, v) if k % 2 == 0 else (v, u)
        x[b] = np.linalg.solve(HESSIAN[b, b], LINEAR[b] - HESSIAN[b, other] @ x[other])
        got = np.concatenate([params["u"], params["v"]])
        np.testing.assert_allclose(got, x, rtol=0, atol=1e-9)


def test_untouched_blocks_are_bit_identical_between_their_turns():
    tx = optjx.block_coordinate(optjx.adam(0.1), {"a": 0, "b": 1, "c": 1, "d": 2})
    params = {"a": jnp.ones(3), "b": jnp.ones(2), "c": jnp.asarray(2.0), "d": jnp.ones((2, 2))}

    def loss(p):
        return sum(jnp.sum(jnp.sin(x) * x**2) for x in jax.tree.leaves(p))

    before, state = params, tx.init(params)
    step = jax.jit(lambda p, s: run_one(tx, loss, p, s))
    names = {0: ["a"], 1: ["b", "c"], 2: ["d"]}
    for _ in range(7):
        new, new_state = step(before, state)
        active = int(new_state.block)
        for block, keys in names.items():
            moved = [not np.array_equal(new[k], before[k]) for k in keys]
            same_state = all(
                np.array_equal(x, y)
                for x, y in zip(
                    jax.tree.leaves(new_state.inner_states[block]),
                    jax.tree.leaves(state.inner_states[block]),
                    strict=True,
                )
            )
            assert all(moved) if block == active else not any(moved)
            assert same_state == (block != active)
        before, state = new, new_state


def run_one(tx, loss, params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optjx.apply_updates(params, updates), state


def test_random_order_is_reproducible_from_the_key():
    def blocks_visited(seed):
        tx = optjx.block_coordinate(
            optjx.sgd(0.1), LABELS, order="random", key=jax.random.key(seed)
        )
        return [int(s.block) for _, s in run(tx, unit_quadratic, start(), 30, full_batch=False)]

    first = blocks_visited(0)
    assert first == blocks_visited(0)
    assert first != blocks_visited(1)
    assert set(first) == {0, 1, 2}


def test_blocks_from_a_function_of_the_key_path():
    tx = optjx.block_coordinate(optjx.sgd(1.0), lambda path, leaf: 0 if path == "b" else 1)
    (params, state), *_ = run(tx, unit_quadratic, start(), 1, full_batch=False)
    np.testing.assert_array_equal(params["b"], TARGETS["b"])
    np.testing.assert_array_equal(params["a"], np.zeros(2))
    assert len(state.inner_states) == 2


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="key path|tree of ints"):
        optjx.block_coordinate(optjx.sgd(0.1), {"a": 0, "b": 1}).init(start())
    with pytest.raises(ValueError, match="blocks must be"):
        optjx.block_coordinate(optjx.sgd(0.1), {"a": 0, "b": 1.0, "c": 2}).init(start())
    with pytest.raises(ValueError, match="must be an int"):
        optjx.block_coordinate(optjx.sgd(0.1), lambda path, leaf: path).init(start())
    with pytest.raises(ValueError, match="order"):
        optjx.block_coordinate(optjx.sgd(0.1), LABELS, order="shuffled")
    with pytest.raises(ValueError, match="key="):
        optjx.block_coordinate(optjx.sgd(0.1), LABELS, order="random")
    with pytest.raises(ValueError, match="key="):
        optjx.block_coordinate(optjx.sgd(0.1), LABELS, key=jax.random.key(0))
    with pytest.raises(TypeError, match="inner"):
        optjx.block_coordinate(optjx.sgd, LABELS)
