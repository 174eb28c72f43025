"""cross_replica_mean under pmap and shard_map: N devices on a split batch follow one device
on the full batch (float64, ``rtol=1e-9``; the problem and reference: _parallel_problem).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _parallel_problem import OPTIMIZERS, assert_tree_close, loss_fn, problem, reference, train
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optjx

DEVICES = 4
AXIS = "batch"


def mesh(n=DEVICES):
    return jax.make_mesh((n,), (AXIS,), devices=jax.devices()[:n])


def run_shard_map(function, params, x, y, *, check_vma, m=None):
    """``function(params, x, y)`` under shard_map: params replicated, the batch split."""
    m = m or mesh()
    replicated, split = NamedSharding(m, P()), NamedSharding(m, P(AXIS))
    mapped = jax.shard_map(
        function, mesh=m, in_specs=(P(), P(AXIS), P(AXIS)), out_specs=P(), check_vma=check_vma
    )
    return jax.jit(mapped)(
        jax.device_put(params, replicated), jax.device_put(x, split), jax.device_put(y, split)
    )


# ------------------------------------------------------------------ trajectories


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_pmap_equals_one_device_on_the_full_batch(x64, name):
    params, x, y = problem()
    optimizer = optax.chain(optjx.cross_replica_mean(AXIS), OPTIMIZERS[name]())
    out = jax.pmap(
        lambda p, xs, ys: train(optimizer, p, xs, ys),
        axis_name=AXIS,
        in_axes=(None, 0, 0),
        devices=jax.devices()[:DEVICES],
    )(params, x.reshape(DEVICES, -1, 5), y.reshape(DEVICES, -1, 2))
    for key, leaf in out.items():
        leaf = np.asarray(leaf)
        for replica in range(1, DEVICES):
            assert np.array_equal(leaf[replica], leaf[0]), f"replica {replica} differs at {key}"
    assert_tree_close(jax.tree.map(lambda a: a[0], out), reference(name))


@pytest.mark.parametrize("check_vma", [False, True], ids=["check_vma=False", "check_vma=True"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_shard_map_equals_one_device_on_the_full_batch(x64, name, check_vma):
    params, x, y = problem()
    optimizer = optax.chain(optjx.cross_replica_mean(AXIS), OPTIMIZERS[name]())
    out = run_shard_map(
        lambda p, xs, ys: train(optimizer, p, xs, ys), params, x, y, check_vma=check_vma
    )
    assert_tree_close(out, reference(name))


# ------------------------------------------------------------------ one gradient


def mapped_gradient(transform, *, check_vma, loss=loss_fn):
    """The gradient after ``transform`` under shard_map, from the initial params."""
    params, x, y = problem()

    def body(p, xs, ys):
        grads = jax.grad(loss)(p, xs, ys)
        updates, _ = transform.update(grads, transform.init(p), p)
        return updates

    return run_shard_map(body, params, x, y, check_vma=check_vma)


def naive_pmean():
    """What optax users write: ``lax.pmean`` of every leaf, whatever its type."""
    return optax.GradientTransformation(
        lambda p: optax.EmptyState(), lambda g, s, p=None: (lax.pmean(g, AXIS), s)
    )


def full_batch_gradient():
    params, x, y = problem()
    return jax.grad(loss_fn)(params, x, y)


def test_a_naive_pmean_sums_under_check_vma_and_cross_replica_mean_does_not(x64):
    """The failure the transform exists to prevent, shown to happen: with type checks on,
    autodiff already summed the gradient, and pmean of a sum is the sum (N times the mean).
    """
    full = full_batch_gradient()
    naive = mapped_gradient(naive_pmean(), check_vma=True)
    assert_tree_close(naive, jax.tree.map(lambda g: DEVICES * g, full))
    ours = mapped_gradient(optjx.cross_replica_mean(AXIS), check_vma=True)
    assert_tree_close(ours, full)
    # Without type checks every device holds its own gradient, and pmean is the mean.
    assert_tree_close(mapped_gradient(naive_pmean(), check_vma=False), full)
    assert_tree_close(mapped_gradient(optjx.cross_replica_mean(AXIS), check_vma=False), full)


def test_a_loss_already_averaged_over_the_axis_passes_through_with_unvarying_mean(x64):
    def averaged_loss(p, xs, ys):
        return lax.pmean(loss_fn(p, xs, ys), AXIS)

    full = full_batch_gradient()
    out = mapped_gradient(
        optjx.cross_replica_mean(AXIS, unvarying="mean"), check_vma=True, loss=averaged_loss
    )
    assert_tree_close(out, full)
    # The default reads an unvarying gradient as autodiff's sum: here that would divide
    # the mean once more, which is why the flag exists.
    out = mapped_gradient(optjx.cross_replica_mean(AXIS), check_vma=True, loss=averaged_loss)
    assert_tree_close(out, jax.tree.map(lambda g: g / DEVICES, full))


def test_a_psummed_loss_and_a_data_free_penalty_are_sums_the_default_divides(x64):
    """The docstring's other two cases: a loss reduced with ``lax.psum`` differentiates to
    the sum of the local gradients; an L2 penalty added on every device is summed N times
    by the same transpose. Dividing by N gives the mean in both."""

    def penalty(p):
        return 0.1 * sum(jnp.sum(w**2) for w in jax.tree.leaves(p))

    def psummed_loss(p, xs, ys):
        return lax.psum(loss_fn(p, xs, ys), AXIS)

    def penalised_loss(p, xs, ys):
        return loss_fn(p, xs, ys) + penalty(p)

    full = full_batch_gradient()
    out = mapped_gradient(optjx.cross_replica_mean(AXIS), check_vma=True, loss=psummed_loss)
    assert_tree_close(out, full)
    params, x, y = problem()
    want = jax.grad(lambda p: loss_fn(p, x, y) + penalty(p))(params)
    out = mapped_gradient(optjx.cross_replica_mean(AXIS), check_vma=True, loss=penalised_loss)
    assert_tree_close(out, want)


def test_unvarying_error_names_the_axis_and_the_fix(x64):
    with pytest.raises(ValueError, match=r"(?s)'batch'.*unvarying='sum'.*unvarying='mean'"):
        mapped_gradient(optjx.cross_replica_mean(AXIS, unvarying="error"), check_vma=True)
    # Nothing to complain about where types do not track variation.
    out = mapped_gradient(optjx.cross_replica_mean(AXIS, unvarying="error"), check_vma=False)
    assert_tree_close(out, full_batch_gradient())


def test_per_device_params_under_check_vma_are_averaged_with_pmean(x64):
    """Params passed in per device (``in_specs=P(axis)``, pmap style) vary, so do their
    gradients: the transform takes the pmean there, not a division."""
    params, x, y = problem()
    stacked = jax.tree.map(lambda p: jnp.broadcast_to(p, (DEVICES, *p.shape)), params)
    transform = optjx.cross_replica_mean(AXIS)

    def body(p, xs, ys):
        p = jax.tree.map(lambda a: a[0], p)
        grads = jax.grad(loss_fn)(p, xs, ys)
        return transform.update(grads, transform.init(p), p)[0]

    m = mesh()
    out = jax.jit(jax.shard_map(body, mesh=m, in_specs=(P(AXIS), P(AXIS), P(AXIS)), out_specs=P()))(
        *(jax.device_put(a, NamedSharding(m, P(AXIS))) for a in (stacked, x, y))
    )
    assert_tree_close(out, full_batch_gradient())


@pytest.mark.parametrize("check_vma", [False, True], ids=["check_vma=False", "check_vma=True"])
def test_a_tuple_of_axes_averages_over_all_of_them(x64, check_vma):
    params, x, y = problem()
    m = jax.make_mesh((2, 2), ("hosts", "devices"), devices=jax.devices()[:4])
    transform = optjx.cross_replica_mean(("hosts", "devices"))

    def body(p, xs, ys):
        grads = jax.grad(loss_fn)(p, xs, ys)
        return transform.update(grads, transform.init(p), p)[0]

    batch = P(("hosts", "devices"))
    out = jax.jit(
        jax.shard_map(
            body, mesh=m, in_specs=(P(), batch, batch), out_specs=P(), check_vma=check_vma
        )
    )(
        jax.device_put(params, NamedSharding(m, P())),
        jax.device_put(x, NamedSharding(m, batch)),
        jax.device_put(y, NamedSharding(m, batch)),
    )
    assert_tree_close(out, full_batch_gradient())


# ------------------------------------------------------------------ usage errors


def test_outside_a_mapped_axis_it_says_where_it_must_run():
    transform = optjx.cross_replica_mean(AXIS)
    grads = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match=r"jax\.pmap.*axis_name='batch'"):
        transform.update(grads, transform.init(grads))


@pytest.mark.parametrize(
    "bad", [dict(axis_name=""), dict(axis_name=("a", 3)), dict(axis_name="a", unvarying="avg")]
)
def test_bad_arguments_are_rejected_at_construction(bad):
    with pytest.raises(ValueError, match="axis_name|unvarying"):
        optjx.cross_replica_mean(**bad)


def test_state_is_empty_and_init_takes_abstract_params():
    # Stateless, as optax's stateless transforms: EmptyState, and any empty state accepted.
    params, _, _ = problem()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    state = jax.eval_shape(optjx.cross_replica_mean(AXIS).init, abstract)
    assert state == optax.EmptyState()
