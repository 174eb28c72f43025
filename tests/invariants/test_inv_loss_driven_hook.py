"""The harness's loss-driven path: an entry with ``loss_driven=True`` (a full-batch method
that calls the loss itself, as L-BFGS does) is driven with the gradient of the harness's
standard loss and ``update(grads, state, params, value=loss(params), value_fn=loss)``.

A probe stands in for such a method until optjx has one: gradient descent that needs both
extra arguments and records how far ``value`` and the gradient are from what ``value_fn``
gives at the params (zero, up to float32 rounding under jit: the triple is consistent).
"""

from typing import NamedTuple

import _harness as harness
import jax
import jax.numpy as jnp
import optax
import pytest
from registry import Entry


class ProbeState(NamedTuple):
    value_error: jax.Array
    grad_error: jax.Array


def _probe(learning_rate=0.1):
    def init(params):
        del params
        return ProbeState(jnp.zeros(()), jnp.zeros(()))

    def update(grads, state, params=None, *, value=None, value_fn=None, **extra):
        del extra
        if value is None or value_fn is None or params is None:
            raise ValueError("the probe needs params, value and value_fn")
        value_again, grads_again = jax.value_and_grad(value_fn)(params)
        errors = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), grads, grads_again)
        grad_error = jnp.max(jnp.stack(jax.tree.leaves(errors)))
        state = ProbeState(
            jnp.maximum(state.value_error, jnp.abs(value - value_again)),
            jnp.maximum(state.grad_error, grad_error),
        )
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return optax.GradientTransformationExtraArgs(init, update)


PROBE = Entry("probe", "gradient-descent", factory=_probe, loss_driven=True, needs_params=True)


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_loss_driven_entry_gets_value_value_fn_and_the_loss_gradient(jitted):
    compiled = harness.Compiled(PROBE)
    start = harness.make_params()
    params, history, state = compiled.run(6, jitted=jitted)
    assert float(state.value_error) == 0.0
    # The same float32 gradient, up to rounding: under jit XLA fuses the probe's own
    # value_and_grad differently from the eager one the harness computed.
    assert float(state.grad_error) <= (1e-5 if jitted else 0.0)
    assert len(history) == 6
    assert float(harness.loss(params)) < 0.5 * float(harness.loss(start))


def test_entries_that_are_not_loss_driven_get_no_value_fn():
    plain = Entry("probe", "plain", factory=_probe, needs_params=True)
    tx = plain.build()
    params = harness.make_params()
    with pytest.raises(ValueError, match="value_fn"):
        harness.update(plain, tx, harness.make_grads(0), tx.init(params), params, None)
