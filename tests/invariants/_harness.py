"""The harness every invariant test shares: the small problem, one compiled update per
registry entry, and tree helpers.

Two ways to drive an entry: random gradients (:func:`make_grads`, mixed signs and
magnitudes, exact zeros at step 2) for transformations that only see gradients, and for
loss-driven ones (``Entry.loss_driven``: full-batch methods that call the loss
themselves) the gradient of :func:`loss` at the params, with ``value=`` and ``value_fn=``.

Each entry's transformation is built once and its ``update`` jitted once
(:func:`compiled`), lazily, when the first test that needs it runs, then reused by every
test module that runs the entry on the standard problem: the registry compiles at most once
per suite run, not once per invariant, and ``-k one_name`` compiles only that name.
A module fixture that works on many entries at once (one pmapped program, one checkpoint)
asks :func:`selected_entries` for the entries of the tests that will run.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _selection import selected
from registry import BY_ID, Entry

INT32_MAX = int(np.iinfo(np.int32).max)

# The small problem every invariant runs on: a matrix and a vector, float32.
SHAPES = {"w": (3, 2), "b": (2,)}
VALUES = (5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 2.5, 2.5)  # value= for reduce_on_plateau


def make_params(dtype=jnp.float32, shapes=None):
    rng = np.random.default_rng(1)
    return {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in (shapes or SHAPES).items()}


def make_grads(t: int, dtype=jnp.float32, shapes=None):
    """Gradient number ``t``: signs and magnitudes mixed; step 2 has exact zeros."""
    rng = np.random.default_rng(100 + t)
    out = {}
    for k, s in (shapes or SHAPES).items():
        g = rng.normal(size=s) * 10.0 ** rng.uniform(-2, 1, size=s)
        if t == 2:
            g = g * (rng.uniform(size=s) > 0.5)
        out[k] = jnp.asarray(g, dtype)
    return out


def value_at(t: int, dtype=jnp.float32):
    return jnp.asarray(VALUES[t % len(VALUES)], dtype)


def loss(params):
    """The standard loss of loss-driven entries: a least-squares fit of every leaf to a
    fixed target, ``1/2 sum_i c_i (p_i - t_i)^2`` with curvatures ``c`` in [0.5, 5]. Works
    on any tree (each leaf gets its own target, seeded by its size); the leaves' terms
    are summed in the widest float dtype among them (at least float32) and int, bool and
    ``None`` leaves (which optjx does not train) are left out, so it is a float scalar
    for every tree, empty ones included, under strict dtype promotion too. Twice
    differentiable: the Newton methods take its Hessian-vector products."""

    def one(p):
        rng = np.random.default_rng(300 + p.size)
        target = jnp.asarray(rng.normal(size=p.shape), p.dtype)
        curvature = jnp.asarray(rng.uniform(0.5, 5.0, size=p.shape), p.dtype)
        return jnp.sum(curvature * (p - target) ** 2) / 2

    leaves = [jnp.asarray(p) for p in jax.tree.leaves(params)]
    floats = [p for p in leaves if jnp.issubdtype(p.dtype, jnp.inexact)]
    dtype = max((p.dtype for p in floats if p.dtype.itemsize >= 4),
                key=lambda d: d.itemsize, default=jnp.dtype(jnp.float32))  # fmt: skip
    total = jnp.zeros((), dtype)
    for p in floats:
        total = total + one(p).astype(dtype)
    return total


def update(entry: Entry, tx, grads, state, params, value):
    """``tx.update`` with what the entry needs: the params always, ``value=`` if asked;
    for a loss-driven entry ``value=loss(params)`` and ``value_fn=loss`` (``grads`` should
    then be the loss's gradient: :meth:`Compiled.run` computes it so)."""
    if entry.loss_driven:
        value = loss(params) if params is not None else value
        return tx.update(grads, state, params, value=value, value_fn=loss)
    if entry.needs_value:
        return tx.update(grads, state, params, value=value)
    return tx.update(grads, state, params)


def gradient(entry: Entry, t: int, params):
    """Gradient number ``t``: :func:`make_grads`' random one, or for a loss-driven entry
    the gradient of :func:`loss` at ``params``."""
    return jax.grad(loss)(params) if entry.loss_driven else make_grads(t)


class Compiled:
    """One entry's transformation with its ``update`` eager and jitted (traces counted).

    Only ``update`` is jitted: the params are moved by ``optax.apply_updates`` outside, in
    both runs, because XLA contracts a multiply in ``update`` with the add in
    ``apply_updates`` into one fused multiply-add when both sit in one program, which
    rounds once where the eager run rounds twice. That is the compiler's choice across the
    API boundary, not the transformation's arithmetic.
    """

    def __init__(self, entry: Entry):
        self.entry = entry
        self.tx = entry.build()
        self.traces = 0

        def step(params, state, grads, value):
            return update(entry, self.tx, grads, state, params, value)

        def counted(params, state, grads, value):
            self.traces += 1  # runs only while jax.jit traces, i.e. on a cache miss
            return step(params, state, grads, value)

        self.eager_update = step
        self.jitted_update = jax.jit(counted)

    def jitted(self, params, state, grads, value):
        updates, state = self.jitted_update(params, state, grads, value)
        return optax.apply_updates(params, updates), updates, state

    def eager(self, params, state, grads, value):
        updates, state = self.eager_update(params, state, grads, value)
        return optax.apply_updates(params, updates), updates, state

    def run(self, steps, *, jitted=True, params=None, state=None, start=0, grads=None):
        """``steps`` updates from ``params`` (default: the problem's) and ``state``.

        Returns the final params, the list of updates and the final state.
        """
        step = self.jitted if jitted else self.eager
        params = make_params() if params is None else params
        state = self.tx.init(params) if state is None else state
        history = []
        for t in range(start, start + steps):
            g = gradient(self.entry, t, params) if grads is None else grads(t)
            params, updates, state = step(params, state, g, value_at(t))
            history.append(updates)
        return params, history, state


@functools.cache
def compiled(entry_id: str) -> Compiled:
    """The one ``Compiled`` per entry, shared by every test module."""
    return Compiled(BY_ID[entry_id])


def selected_entries(request, argname: str = "entry") -> list[Entry]:
    """The entries that the selected tests of the requesting module are parametrized with
    (:func:`_selection.selected`): a module fixture that does one thing for many entries at
    once (one pmapped program, one checkpoint) builds what this session's tests need (after
    ``-k``, ``-m`` and node ids), not the whole registry."""
    return selected(request, argname)


# ------------------------------------------------------------------ tree helpers


def leaves_with_paths(tree):
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def assert_trees_identical(actual, expected, what=""):
    """Same structure, dtypes and bits (NaN equal to NaN)."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected), (
        f"{what}: structure {jax.tree.structure(actual)} != {jax.tree.structure(expected)}"
    )
    for (path, a), b in zip(leaves_with_paths(actual), jax.tree.leaves(expected), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        where = f"{what}{jax.tree_util.keystr(path)}"
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            continue
        same = np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        assert same, f"{where}: values differ\n{a}\n{b}"


def assert_trees_close(actual, expected, what="", rtol=1e-5, atol=0.0):
    """Same structure and dtypes; integer and bool leaves identical; float leaves equal up
    to ``rtol`` relative to each element, or to the leaf's largest magnitude (so that
    values that cancel to near zero are compared on the leaf's scale), or ``atol``."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected), what
    for (path, a), b in zip(leaves_with_paths(actual), jax.tree.leaves(expected), strict=True):
        where = f"{what}{jax.tree_util.keystr(path)}"
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        if not jnp.issubdtype(a.dtype, jnp.inexact):
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"{where}: {a} != {b}"
            continue
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = np.max(np.abs(b64), initial=0.0, where=np.isfinite(b64))
        np.testing.assert_allclose(a64, b64, rtol=rtol, atol=max(atol, rtol * scale), err_msg=where)


def all_finite(tree) -> bool:
    """Every inexact leaf (bf16 and f16 included) holds only finite numbers."""
    for x in jax.tree.leaves(tree):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            wide = np.complex128 if jnp.issubdtype(x.dtype, jnp.complexfloating) else np.float64
            if not np.all(np.isfinite(np.asarray(x).astype(wide))):
                return False
    return True


def avals(tree):
    """``(shape, dtype, weak_type)`` of every leaf, with the structure."""

    def one(x):
        aval = jax.typeof(x) if hasattr(jax, "typeof") else jax.core.get_aval(x)
        return (tuple(aval.shape), jnp.dtype(aval.dtype), bool(getattr(aval, "weak_type", False)))

    return jax.tree.structure(tree), [one(x) for x in jax.tree.leaves(tree)]


def abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), x.dtype), tree)


def set_counts(state, value: int):
    """``state`` with every ``count`` field (of every nested state) set to ``value``."""

    def surgery(path, leaf):
        last = path[-1] if path else None
        if isinstance(last, jax.tree_util.GetAttrKey) and last.name == "count":
            return jnp.asarray(value, leaf.dtype)
        return leaf

    return jax.tree_util.tree_map_with_path(surgery, state)


def counts(state) -> dict[str, int]:
    out = {}
    for path, leaf in leaves_with_paths(state):
        last = path[-1]
        if isinstance(last, jax.tree_util.GetAttrKey) and last.name == "count":
            out[jax.tree_util.keystr(path)] = int(leaf)
    return out
