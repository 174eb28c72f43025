"""The invariants, driven by residuals, for the least-squares methods (``registry.LEAST_SQUARES``).

``gauss_newton`` and ``levenberg_marquardt`` take ``update(grads, state, params, *,
residual_fn)``: neither random gradients nor a scalar loss can drive them. Here every
entry runs on the residuals of a small nonlinear model (a tanh layer fitted to 6 samples,
with a ridge term: 18 residuals) over the harness's tree (``{"w": (3, 2), "b": (2,)}``),
the data a traced argument, so that one compiled step per entry serves every test that
runs the standard problem (a NaN in the data too). As ``test_inv_loss_driven.py`` for the
other full-batch methods: one trace for many calls and a state of fixed structure and
dtypes; orbax checkpoint and restore continue bit-identically; bad hyperparameters and bad
calls (a missing ``residual_fn``, gradients, a state or residuals that do not fit the
params) raise clear errors; dtypes are kept (float32 here, float64 in the NIST goldens of
``tests/full_batch/test_least_squares.py``, and mixed); a NaN stops the update with params
and memory unchanged; ``vmap`` over problems equals a loop; sharded params (``Auto`` and
``Explicit`` mesh axes) under ``jit`` give the same step and keep their sharding; int
leaves and optax's extra keywords are accepted. And the structure rule, which
``tests/compat/test_structure_rule.py`` checks for the carded entries only: a number, an
array or a schedule gives one state structure, ``optax.inject_hyperparams``' inner state
is the plain one.

Not here: jit against eager. Op by op (``jax.disable_jit``) the first update of either
method costs about 4 s CPU of first-use compilations, and without ``jit`` at the top a
``levenberg_marquardt`` update compiles its loop anew at every call (3.5 s each).
"""

from __future__ import annotations

import functools
import inspect

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import registry
from test_inv_loss_driven import assert_checkpoint_continues, invalid_cases, raises_naming

import optjx

ENTRIES = registry.LEAST_SQUARES
ids = [e.id for e in ENTRIES]
METHODS = ["gauss_newton", "levenberg_marquardt"]
DEFAULTS = {name: f"{name}-defaults" for name in METHODS}
CONFIGURED = {name: next(e.id for e in ENTRIES if e.name == name and e.kwargs) for name in METHODS}

_rng = np.random.default_rng(7)
DATA = {"x": _rng.normal(size=(6, 3)).astype(np.float32),
        "y": _rng.uniform(-0.6, 0.6, size=(6, 2)).astype(np.float32)}  # fmt: skip


def residuals(p, data=DATA):
    """A tanh layer's misfit on 6 samples and a ridge term: nonlinear in both leaves."""
    fit = jnp.tanh(jnp.asarray(data["x"]) @ p["w"] + p["b"])
    return {"fit": fit - data["y"], "ridge": 0.1 * p["w"]}


def loss(p, data=DATA):
    return sum(jnp.sum(r**2) for r in jax.tree.leaves(residuals(p, data))) / 2


def step(tx, params, state, data=DATA, grads=None, **extra):
    fn = functools.partial(residuals, data=data)
    updates, state = tx.update(grads, state, params, residual_fn=fn, **extra)
    return optax.apply_updates(params, updates), state


_TXS = {e.id: e.build() for e in ENTRIES}  # built once: every test reuses them
_JITTED: dict = {}  # entry id -> the jitted step, compiled once for the whole module
_TRACES: dict = {}


def _jitted(entry_id):
    if entry_id not in _JITTED:
        tx = _TXS[entry_id]
        _TRACES[entry_id] = 0

        def counted(p, s, data):
            _TRACES[entry_id] += 1  # runs only while jax.jit traces
            return step(tx, p, s, data)

        _JITTED[entry_id] = jax.jit(counted)
    return _JITTED[entry_id]


def run(entry_id, steps, params=None, state=None, data=DATA):
    """``steps`` jitted steps of the entry from ``params`` (default: the harness's)."""
    params = harness.make_params() if params is None else params
    state = _TXS[entry_id].init(params) if state is None else state
    for _ in range(steps):
        params, state = _jitted(entry_id)(params, state, data)
    return params, state


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_compiles_once_with_a_state_of_fixed_structure(entry):
    params, state = harness.make_params(), _TXS[entry.id].init(harness.make_params())
    avals = harness.avals(state)
    for _ in range(3):
        params, state = run(entry.id, 1, params, state)
        assert harness.avals(state) == avals, "the state changed structure, dtype or weak type"
    assert _TRACES[entry.id] == 1
    assert int(state.count) == 3
    assert loss(params) < 0.9 * loss(harness.make_params())


def test_checkpoint_continues_bit_identically(tmp_path):
    assert_checkpoint_continues(ENTRIES, run, _TXS, tmp_path)


@pytest.mark.parametrize("name, arg, value", invalid_cases(registry.INVALID_LEAST_SQUARES))
def test_invalid_hyperparameters_raise_naming_them(name, arg, value):
    raises_naming(registry.INVALID_LEAST_SQUARES, name, arg, value)


@pytest.mark.parametrize("name", METHODS)
def test_every_hyperparameter_has_invalid_values(name):
    listed = registry.INVALID_LEAST_SQUARES[name]
    assert set(listed) == set(inspect.signature(getattr(optjx, name)).parameters)


@pytest.mark.parametrize("name", METHODS)
def test_bad_calls_raise_clear_errors(name):
    factory = getattr(optjx, name)
    floats = ["tolerance_grad"] if name == "gauss_newton" else ["ftol", "xtol", "gtol", "factor"]
    for arg in [*floats, "cg_tolerance"]:
        for bad in ("0.1", [0.1], 1j):
            with pytest.raises(TypeError, match=arg):
                factory(**{arg: bad})
    tx = _TXS[DEFAULTS[name]]
    params = harness.make_params()
    state = tx.init(params)
    fn = residuals

    def trace(grads=None, state=state, params=params, **kw):  # errors come at trace time
        return jax.eval_shape(functools.partial(tx.update, **kw), grads, state, params)

    # The calling convention of the other full-batch methods: residual_fn= is missing.
    with pytest.raises(ValueError, match="residual_fn="):
        trace(jax.grad(loss)(params), value=loss(params), value_fn=loss)
    with pytest.raises(TypeError, match="residual_fn must be callable"):
        trace(residual_fn=loss(params))
    with pytest.raises(ValueError, match="params"):
        tx.update(None, state, residual_fn=fn)
    # Gradients or a state that do not fit the params; residuals that do not fit them.
    with pytest.raises(ValueError, match=r"\['b'\]"):
        trace({"w": params["w"], "c": params["b"]}, residual_fn=fn)
    if name == "levenberg_marquardt":  # gauss_newton's state holds nothing per parameter
        with pytest.raises(ValueError, match="state was built for 6"):
            trace(state=tx.init({"w": params["w"]}), residual_fn=fn)
        with pytest.raises(ValueError, match="2 residuals for 8 parameters"):
            trace(residual_fn=lambda p: p["b"])  # MINPACK's QR needs m >= n
    with pytest.raises(KeyError, match="'c'") as error:
        trace(residual_fn=lambda p: p["c"])
    assert "raised by residual_fn" in str(error.value.__notes__)
    with pytest.raises(TypeError, match="dot_general"):
        trace(residual_fn=lambda p: p["w"] @ p["w"])  # (3, 2) @ (3, 2)
    with pytest.raises(ValueError, match="no arrays"):
        trace(residual_fn=lambda p: {"fit": None})
    with pytest.raises(TypeError, match=r"real arrays.*complex64 at \['fit'\]"):
        trace(residual_fn=lambda p: {**fn(p), "fit": fn(p)["fit"] * 1j})
    with pytest.raises(TypeError, match=r"real arrays.*str at \[1\]"):
        trace(residual_fn=lambda p: [fn(p)["fit"], "residual"])


def keyworded_step(tx, params, state):
    """``step`` with the loss's gradient (a ``float0`` one for an int leaf) and optax's
    extra keywords, which the least-squares methods accept and ignore."""
    value, grads = jax.value_and_grad(loss, allow_int=True)(params)
    return step(tx, params, state, grads=grads, value=value, grad=grads, value_fn=loss,
                unknown_keyword=1)  # fmt: skip


# One iteration of each method's defaults on a tree of a float32 matrix, a float64 vector
# and an int leaf (float64 enabled), called with optax's extra keywords: one jitted step,
# and one jitted vmap over two such problems.
ONE_ITERATION = {name: getattr(optjx, name)(max_iter=1) for name in METHODS}


@functools.cache
def mixed(name):
    """The two problems, their jitted steps one by one, and the vmapped step: compiled only
    for the methods whose tests run (``-k``), once for the module."""
    tx = ONE_ITERATION[name]
    with jax.enable_x64(True):
        first = {
            "w": harness.make_params(jnp.float32)["w"],
            "b": harness.make_params(jnp.float64)["b"],
            "steps": jnp.asarray(3, jnp.int32),
        }
        starts = [first, {"w": -0.5 * first["w"], "b": -0.5 * first["b"],
                          "steps": jnp.asarray(-2, jnp.int32)}]  # fmt: skip
        first_step = jax.jit(lambda p: keyworded_step(tx, p, tx.init(p)))
        looped = [first_step(p) for p in starts]
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *starts)
        vmapped = jax.jit(jax.vmap(lambda p: keyworded_step(tx, p, tx.init(p))))(stacked)
    return starts, looped, vmapped


@pytest.mark.parametrize("name", METHODS)
def test_dtypes_int_leaves_and_optax_keywords(name, x64):
    # float32 params are run by every other test here, float64 by the NIST goldens
    # (tests/full_batch/test_least_squares.py); one tree mixing both (and an int leaf, which
    # is left alone) shows that each leaf keeps its own dtype and the state is in the widest.
    starts, looped, _ = mixed(name)
    for params, (new, new_state) in zip(starts, looped, strict=True):
        state = ONE_ITERATION[name].init(params)
        assert jax.tree.map(lambda x: x.dtype, new) == jax.tree.map(lambda x: x.dtype, params)
        assert harness.avals(new_state) == harness.avals(state)
        floats = {x.dtype for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)}
        assert floats == {jnp.dtype(jnp.float64)}
        assert int(new["steps"]) == int(params["steps"])
        assert harness.all_finite(new)
        # One undamped Gauss-Newton step may overshoot; Levenberg-Marquardt's is accepted
        # only if it reduces the loss.
        assert name == "gauss_newton" or loss(new) < loss(params)


@pytest.mark.parametrize("name", METHODS)
def test_vmap_over_problems_equals_a_loop(name, x64):
    _, looped, vmapped = mixed(name)
    for i, want in enumerate(looped):
        got = jax.tree.map(lambda x, i=i: x[i], vmapped)
        if name == "levenberg_marquardt":
            # lmpar solves for the damping only to within 10% of the radius: its last
            # digits (and the radius fitted with it) follow the roundings.
            loose = ("par", "delta")
            harness.assert_trees_close([getattr(got[1], f) for f in loose],
                                       [getattr(want[1], f) for f in loose], name, rtol=1e-6)  # fmt: skip
            got, want = [(p, s._replace(par=None, delta=None)) for p, s in (got, want)]
        harness.assert_trees_close(got, want, f"{name} problem {i}", rtol=1e-9)


@pytest.mark.parametrize("name", METHODS)
def test_inject_hyperparams_state_is_the_plain_state(name):
    # The structure rule (DESIGN.md convention 1), which tests/compat/test_structure_rule.py
    # checks for the carded entries only: a number, an array or a schedule gives a state of
    # one structure, and optax.inject_hyperparams' inner state is the plain one, after an
    # update too (traced only: jax.eval_shape).
    factory = getattr(optjx, name)
    params = harness.make_params()
    plain = factory().init(params)
    floats = [a for a, v in inspect.signature(factory).parameters.items()
              if isinstance(v.default, float)]  # fmt: skip
    for arg in floats:
        for form in (0.5, jnp.asarray(0.5), optjx.schedules.linear(0.5, 0.25, 4)):
            assert jax.tree.structure(factory(**{arg: form}).init(params)) == jax.tree.structure(
                plain
            )
    injected = optax.inject_hyperparams(factory, static_args=("max_iter",))()
    state = injected.init(params)
    assert set(floats) <= set(state.hyperparams)
    assert harness.avals(state.inner_state) == harness.avals(plain)
    _, after = jax.eval_shape(lambda p, s: step(injected, p, s), params, state)
    assert harness.abstract(after.inner_state) == harness.abstract(plain)


@pytest.mark.parametrize("name", METHODS)
def test_non_finite_stops_with_params_and_memory_unchanged(name):
    entry_id = DEFAULTS[name]
    params, state = run(entry_id, 1)  # a memory (LM: its radius, damping and scaling)
    start = jax.tree.map(lambda w: w * 0.5, params)
    nan_residuals = {**DATA, "y": DATA["y"] * np.nan}
    # An infinite input: tanh saturates, the residuals stay finite, the Jacobian is NaN.
    nan_jacobian = {**DATA, "x": np.where(np.arange(18).reshape(6, 3) == 6, np.inf, DATA["x"])}
    for data, jacobians in ((nan_residuals, 0), (nan_jacobian, 1)):
        new_params, new = _jitted(entry_id)(start, state, data)
        harness.assert_trees_identical(new_params, start, "params after a NaN")
        assert optjx.stop_reason(new) == "NON_FINITE"
        # gauss_newton counts steps, levenberg_marquardt Jacobian evaluations (MINPACK's njev).
        assert int(new.iterations) == (jacobians if name == "levenberg_marquardt" else 0)
        # The update count (a schedule's argument) counts calls, NaN or not.
        assert int(new.count) == int(state.count) + 1
        memory = new._replace(count=state.count, n_iter=state.n_iter, func_evals=state.func_evals,
                              iterations=state.iterations, evaluations=state.evaluations,
                              stop_reason=state.stop_reason, stop_test=state.stop_test)  # fmt: skip
        if name == "gauss_newton":
            memory = memory._replace(grad_norm=state.grad_norm)  # a diagnostic: NaN
        else:
            memory = memory._replace(info=state.info)
        harness.assert_trees_identical(memory, state, "memory after a NaN")


@pytest.mark.parametrize("name, axis_type", [("gauss_newton", "Auto"),
                                             ("levenberg_marquardt", "Explicit")])  # fmt: skip
def test_sharded_params_give_the_same_step_and_stay_sharded(name, axis_type):
    # The harness's tree on two devices: w split along its columns, b along its entries;
    # Auto axes: XLA places the flat vector; Explicit ones: under jax.set_mesh, else a
    # ValueError says to set it. Few iterations (the second entry): float32 sums in
    # another order differ in the last bits, which many iterations would amplify. Each
    # float32 step is as far from the float64 step as float32 takes it (gauss_newton,
    # measured in this comparison's terms: 0.7e-5 to 3.2e-5 unsharded, 0.8e-5 to 1.9e-5
    # sharded, with XLA's defaults and with the suite's settings), so they may be apart
    # by the sum: 5e-5.
    axis = getattr(jax.sharding.AxisType, axis_type)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:2]), ("data",), axis_types=(axis,))
    specs = {"w": jax.sharding.PartitionSpec(None, "data"), "b": jax.sharding.PartitionSpec("data")}
    shardings = {k: jax.sharding.NamedSharding(mesh, s) for k, s in specs.items()}
    tx = _TXS[CONFIGURED[name]]
    want = run(CONFIGURED[name], 1)
    sharded = jax.device_put(harness.make_params(), shardings)
    first_step = jax.jit(lambda p: step(tx, p, tx.init(p)))
    if axis_type == "Explicit":
        with pytest.raises(ValueError, match="set_mesh"):
            first_step.trace(sharded)
        with jax.set_mesh(mesh):
            got = first_step(sharded)
    else:
        got = first_step(sharded)
    harness.assert_trees_close(got, want, "sharded", rtol=5e-5, atol=1e-6)
    for key, leaf in got[0].items():
        assert leaf.sharding.is_equivalent_to(shardings[key], leaf.ndim), key
