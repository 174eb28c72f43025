"""The calling conventions users bring to a full-batch method, against the explicit one.

The explicit call is ``update(grads, state, params, value=f(params), value_fn=f)``. Each
other convention must give the same updates and state (bit for bit where the same
arithmetic is compiled; to 1e-10 where the first gradient is computed eagerly, and 1e-12
where optax's loop computes it in its own function): torch's ``step(closure)`` habit ``update(None, ...)``, a
``value_and_grad_fn`` returning ``(value, grads)``, and optax's documented ``lbfgs`` loop
on ``optax.value_and_grad_from_state``, which must then skip its own evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx

METHODS = {
    "lbfgs": lambda: optjx.lbfgs(line_search_fn="strong_wolfe", max_iter=5),
    "conjugate_gradient": lambda: optjx.conjugate_gradient(max_iter=5),
    "bfgs": lambda: optjx.bfgs(max_iter=5),
    "lbfgs_b": lambda: optjx.lbfgs_b(max_iter=5, lower={"x": -2.0, "b": 0.5}),
}


def loss(p):
    x = p["x"]
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2) + jnp.sum(p["b"] ** 2)


def _params():
    # Not weakly typed: the params after a step are not, and the update would trace twice.
    return {"x": jnp.asarray([-1.2, 1.0, -0.5]), "b": jnp.asarray(np.asarray(0.7))}


def _assert_same(got, want, rtol=0.0):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        if rtol:
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-14)
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _explicit(opt, params, state, f=loss):
    value, grads = jax.value_and_grad(loss)(params)
    return opt.update(grads, state, params, value=value, value_fn=f)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_none_grads_and_value_and_grad_fn_equal_the_explicit_call(name, x64):
    opt = METHODS[name]()
    params = _params()
    state = opt.init(params)
    value, grads = jax.value_and_grad(loss)(params)  # eagerly, outside the compiled step
    calls = {
        "update(None, value_fn)": lambda p, s, v, g: opt.update(None, s, p, value_fn=loss),
        "update(None, value_and_grad_fn)": lambda p, s, v, g: opt.update(
            None, s, p, value_and_grad_fn=jax.value_and_grad(loss)
        ),
        "update(grads, value_and_grad_fn)": lambda p, s, v, g: opt.update(
            g, s, p, value_and_grad_fn=jax.value_and_grad(loss)
        ),
        "update(grads, value, value_and_grad_fn)": lambda p, s, v, g: opt.update(
            g, s, p, value=v, value_and_grad_fn=jax.value_and_grad(loss)
        ),
    }

    # One program for the explicit call and every convention: each traces on its own (a
    # convention that computes something else stays apart); what they share, XLA
    # compiles once.
    @jax.jit
    def every_call(p, s, v, g):
        return _explicit(opt, p, s), {what: call(p, s, v, g) for what, call in calls.items()}

    want, got = every_call(params, state, value, grads)
    for what in calls:
        try:  # grads computed eagerly, outside the compiled step: other roundings
            _assert_same(got[what], want, rtol=0 if what.startswith("update(None") else 1e-10)
        except AssertionError as error:
            raise AssertionError(what) from error
    # the state holds the value and gradient at the returned params
    updates, new_state = want
    new_params = optax.apply_updates(params, updates)
    v, g = jax.value_and_grad(loss)(new_params)
    np.testing.assert_allclose(float(new_state.value), float(v), rtol=1e-12)
    _assert_same(new_state.grad, g, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_bad_calls_say_what_to_pass(name):
    opt = METHODS[name]()
    params = _params()
    state = opt.init(params)
    value, grads = jax.value_and_grad(loss)(params)
    with pytest.raises(ValueError, match="exactly one of value_fn= .* value_and_grad_fn=.*neither"):
        opt.update(grads, state, params, value=value)
    with pytest.raises(ValueError, match="exactly one of value_fn= .*; got both"):
        opt.update(grads, state, params, value_fn=loss, value_and_grad_fn=jax.value_and_grad(loss))
    with pytest.raises(ValueError, match="returned a tuple; .* value_and_grad_fn="):
        opt.update(None, state, params, value_fn=jax.value_and_grad(loss))
    with pytest.raises(ValueError, match="returned a tuple; .* value_and_grad_fn="):
        opt.update(grads, state, params, value=value, value_fn=jax.value_and_grad(loss))
    with pytest.raises(ValueError, match=r"value_and_grad_fn must return a pair \(loss, grads\)"):
        opt.update(None, state, params, value_and_grad_fn=loss)


def test_none_grads_with_an_integer_leaf():
    opt = optjx.lbfgs(max_iter=3)
    params = {"w": jnp.zeros(2), "steps": jnp.asarray(3, jnp.int32)}

    def f(p):
        return jnp.sum((p["w"] - p["steps"]) ** 2)

    updates, state = jax.jit(lambda p, s: opt.update(None, s, p, value_fn=f))(
        params, opt.init(params)
    )
    new = optax.apply_updates(params, updates)
    assert int(new["steps"]) == 3 and float(f(new)) < float(f(params))


# Every full-batch method of a scalar loss: the Newton methods' states carry value and grad too.
LOOP_METHODS = {
    **METHODS,
    "newton_cg": lambda: optjx.newton_cg(max_iter=5),
    "trust_region_newton": lambda: optjx.trust_region_newton(max_iter=5),
}


@pytest.mark.parametrize("name", sorted(LOOP_METHODS))
def test_optax_value_and_grad_from_state_loop_runs_unchanged(name, x64):
    # optax's documented lbfgs loop (optax.lbfgs's docstring), with optjx's method.
    evaluations: list = []

    def f(p):
        jax.debug.callback(lambda: evaluations.append(1))
        return loss(p)

    opt = LOOP_METHODS[name]()
    params = _params()
    opt_state = opt.init(params)
    value_and_grad = optax.value_and_grad_from_state(f)
    counted = []
    for _ in range(4):
        before = len(evaluations)
        value, grad = value_and_grad(params, state=opt_state)
        jax.effects_barrier()
        counted.append(len(evaluations) - before)
        updates, opt_state = opt.update(grad, opt_state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)
    # evaluated once, before the first update (the state's value is +inf); then read back
    assert counted == [1, 0, 0, 0]

    # the same iterates as the explicit convention (the same loss function: the same
    # compiled update, given the value and gradient computed afresh at every step)
    # (with optax's extra `grad=` keyword too, so that it is one compiled program)
    want, state = _params(), opt.init(_params())
    for _ in range(4):
        value, grads = jax.value_and_grad(loss)(want)
        updates, state = opt.update(grads, state, want, value=value, grad=grads, value_fn=f)
        want = optax.apply_updates(want, updates)
    # The scipy methods: the state's value is f at their own x + t d; params + (x_new - x)
    # rounds differently in the last bit, and the next first trial step (from f - f_prev)
    # sees it.
    scipy_methods = ("bfgs", "lbfgs_b", "newton_cg", "trust_region_newton")
    _assert_same(params, want, rtol=1e-10 if name in scipy_methods else 1e-12)


@pytest.mark.parametrize("name", ["lbfgs", "conjugate_gradient", "bfgs", "lbfgs_b"])
def test_stop_reason_compares_with_the_enum_under_jit(name, x64):
    # One compiled update, called at the minimiser (a zero gradient: converged before any
    # iteration) and at the usual start (one iteration is not enough).
    kwargs = {"line_search_fn": "strong_wolfe"} if name == "lbfgs" else {}
    opt = getattr(optjx, name)(max_iter=1, **kwargs)

    @jax.jit
    def reasons(params):
        _, state = opt.update(None, opt.init(params), params, value_fn=loss)
        return [state.stop_reason == optjx.StopReason.CONVERGED,
                state.stop_reason == optjx.StopReason.MAX_ITER]  # fmt: skip

    minimiser = {"x": jnp.ones(3), "b": jnp.asarray(np.asarray(0.0))}
    assert [bool(r) for r in reasons(minimiser)] == [True, False]
    assert [bool(r) for r in reasons(_params())] == [False, True]
