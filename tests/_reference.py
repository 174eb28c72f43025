"""Shared helpers for the float64 NumPy reference tests.

The references themselves live in each test file, written from the paper's formula next
to the test that uses them; this module supplies the inputs (hard gradients), the runners
that apply an optjx transformation once per step under a single ``jax.jit``, and the one
reference several files need: Adam (:func:`adam_step`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

# A two-leaf tree: one matrix and one vector, so per-leaf and global quantities differ.
SHAPES = {"w": (3, 4), "b": (5,)}

# Steps whose gradient is zero everywhere (two in a row among them). Step 0 is not, so
# that the first-step rules (PyTorch's undamped b_1 = g, bias corrections at t = 1) are
# visible; ZERO_FIRST starts from an all-zero gradient instead.
ZERO_STEPS = (7, 19, 20, 41)
ZERO_FIRST = (0, 1, 19, 20, 41)


def mixed_gradients(steps: int = 60, seed: int = 0, zero_steps=ZERO_STEPS, shapes=SHAPES):
    """``steps`` float64 gradient trees: random signs, magnitudes spanning 1e-3..1e3.

    Besides the all-zero steps, about one element in ten is exactly zero, and each step
    is scaled by a random factor in 1e-2..1e2 so that the moments see regime changes.
    """
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        tree = {}
        step_scale = 10.0 ** rng.uniform(-2, 2)
        for name, shape in shapes.items():
            magnitude = 10.0 ** rng.uniform(-3, 3, size=shape)
            sign = rng.choice([-1.0, 1.0], size=shape)
            keep = rng.uniform(size=shape) > 0.1
            g = sign * magnitude * keep
            tree[name] = np.clip(step_scale * g, -1e3, 1e3) if t % 2 else g
        if t in zero_steps:
            tree = {name: np.zeros(shape) for name, shape in shapes.items()}
        out.append(tree)
    return out


def random_params(seed: int = 1, shapes=SHAPES, steps: int | None = None):
    """A float64 params tree (or a list of ``steps`` of them), values of order one."""
    rng = np.random.default_rng(seed)

    def one():
        return {name: rng.normal(size=shape) for name, shape in shapes.items()}

    return one() if steps is None else [one() for _ in range(steps)]


def run(tx, grads, params=None):
    """Feed ``grads`` (a list of trees) through ``tx`` under one jit; return the updates.

    ``params`` is ``None``, one tree used at every step, or a list with one per step.
    Returns the list of update trees as float64 NumPy arrays, and the final state.
    """
    params_list = params if isinstance(params, list) else [params] * len(grads)
    init_params = params_list[0] if params_list[0] is not None else grads[0]
    state = tx.init(jax.tree.map(jnp.asarray, init_params))
    step = jax.jit(tx.update)
    outputs = []
    for g, p in zip(grads, params_list, strict=True):
        g = jax.tree.map(jnp.asarray, g)
        p = None if p is None else jax.tree.map(jnp.asarray, p)
        updates, state = step(g, state, p)
        outputs.append(jax.tree.map(np.asarray, updates))
    return outputs, state


class Training(NamedTuple):
    """What :func:`run_training` saw after each step."""

    params: list
    updates: list
    states: list


def run_training(tx, grads, params, steps: int | None = None, *, jit: bool = True) -> Training:
    """The one training loop of the tests: ``tx`` applied step by step, the params moved
    by each update (``optax.apply_updates``).

    ``grads`` is a list of trees, given rather than computed so that a NumPy reference
    can replay the same sequence, or a function ``(params, t) -> tree`` of the current
    params (a closed loop, ``steps`` long). Only the update and its application are
    jitted (``jit=False``: run eagerly, also inside ``jax.vmap``); the gradients are
    computed outside. Returns the params, updates and states after each step.
    """
    closed_loop = callable(grads)
    steps = steps if closed_loop else len(grads)
    params = jax.tree.map(jnp.asarray, params)
    state = tx.init(params)

    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), updates, state

    step = jax.jit(step) if jit else step
    seen = Training([], [], [])
    for t in range(steps):
        g = grads(params, t) if closed_loop else grads[t]
        params, updates, state = step(params, state, jax.tree.map(jnp.asarray, g))
        seen.params.append(params)
        seen.updates.append(updates)
        seen.states.append(state)
    return seen


def per_leaf(reference, grads, *args):
    """Run an element-wise NumPy reference on each leaf's sequence of gradients.

    ``reference(sequence, *extra)`` takes the list of one leaf's gradients over time and
    returns the list of that leaf's outputs. ``args`` are further lists of trees (params),
    split the same way.
    """
    names = grads[0].keys()
    per_name = {
        name: reference([g[name] for g in grads], *[[a[name] for a in arg] for arg in args])
        for name in names
    }
    return [{name: per_name[name][t] for name in names} for t in range(len(grads))]


def ema_reference(decay, debias=False):
    """The exponentially weighted average of the course notes, m_0 = 0,
    m_t = b_k m_{t-1} + (1 - b_k) g_t, optionally divided by 1 - b_k**t (Kingma & Ba,
    section 3), with ``decay(k)`` the decay after k = t - 1 applied updates."""

    def reference(sequence):
        outputs, m = [], 0.0
        for k, g in enumerate(sequence):
            beta, t = decay(k), k + 1
            m = beta * m + (1.0 - beta) * g
            outputs.append(m / (1.0 - beta**t) if debias else m)
        return outputs

    return reference


def adam_step(g, state=None, *, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, amsgrad=None):
    """One step of Adam (Kingma & Ba 2015, Algorithm 1) on float64 NumPy arrays: the one
    Adam reference every test uses.

    Returns the direction ``m_hat / (sqrt(v_hat + eps_root) + eps)`` (a step is ``-lr``
    times it) and the new state; ``state`` is ``None`` before the first step. ``b1`` and
    ``b2`` are numbers or functions of ``k = t - 1``, the updates already applied.
    ``amsgrad``: ``None``, ``"torch"`` (the max of the raw ``v``, bias-corrected after:
    torch and optjx) or ``"corrected"`` (the max of ``v_hat``: optax).
    """
    t, m, v, v_max, v_hat_max = state or (0, 0.0, 0.0, 0.0, 0.0)
    beta1 = b1(t) if callable(b1) else b1
    beta2 = b2(t) if callable(b2) else b2
    t += 1
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    if amsgrad == "torch":
        v_max = np.maximum(v_max, v)
        v_hat = v_max / (1 - beta2**t)
    elif amsgrad == "corrected":
        v_hat_max = np.maximum(v_hat_max, v / (1 - beta2**t))
        v_hat = v_hat_max
    else:
        v_hat = v / (1 - beta2**t)
    return m_hat / (np.sqrt(v_hat + eps_root) + eps), (t, m, v, v_max, v_hat_max)


def assert_step_count(state, steps: int) -> None:
    """The state's counter equals ``steps``.

    Every stage keeps its counter whatever its hyperparameters are (a schedule, dampening's
    first step, a bias correction may read it): see ``optjx._state``.
    """
    assert "count" in state._fields, "a counter was expected"
    assert int(state.count) == steps


def assert_trajectories_close(actual, expected, rtol=1e-10, atol=0.0):
    """Compare two lists of trees step by step, naming the first step that differs."""
    assert len(actual) == len(expected)
    for t, (a, e) in enumerate(zip(actual, expected, strict=True)):
        for name in e:
            np.testing.assert_allclose(
                a[name], e[name], rtol=rtol, atol=atol, err_msg=f"step {t}, leaf {name!r}"
            )


def max_relative_difference(first, second) -> float:
    """Largest element-wise relative difference between two trajectories (to show that
    two configurations a test tells apart really differ on its data)."""
    worst = 0.0
    for a, b in zip(first, second, strict=True):
        for name in a:
            scale = np.maximum(np.abs(a[name]), np.abs(b[name]))
            diff = np.abs(a[name] - b[name])
            ratio = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
            worst = max(worst, float(np.max(ratio)))
    return worst


def primitive_names(jaxpr):
    """Every primitive in a jaxpr, sub-jaxprs (jit, custom rules) included."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names |= primitive_names(inner)
    return names
