"""A Flax ``TrainState`` holding optjx wrappers survives an orbax checkpoint mid-run.

Reference: the uninterrupted run. 6 steps, save with orbax's ``StandardCheckpointer``,
restore into a template built from a fresh ``TrainState.create``, 6 more steps: every leaf
of the params and the optimizer state (counts, schedules' positions, Lookahead's slow
weights, Polyak's average, RAdam's moments) equals 12 uninterrupted steps bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

ocp = pytest.importorskip("orbax.checkpoint")


def test_train_state_checkpoint_restores_bit_identically(tmp_path, digits, linen_mlp):
    from flax.training import train_state

    x, y = digits
    model, params = linen_mlp
    # Every stateful kind at once: a schedule (read from counts), Lookahead syncing at
    # steps 4, 8 and 12 (so one sync falls on each side of the checkpoint), Polyak's EMA,
    # clipping. Batches differ per step, so a restored step count that is off would show.
    tx = optjx.chain(
        optjx.clip_by_global_norm(1.0),
        optjx.polyak_averaging(
            optjx.lookahead(optjx.radam(optjx.schedules.cosine(0.05, 12)), sync_period=4),
            decay=0.9,
        ),
    )

    def fresh():
        return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    @jax.jit
    def step(state, idx):
        def loss(p):
            logits = state.apply_fn(p, x[idx])
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[idx][:, None], 1))

        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    batches = np.random.default_rng(0).integers(0, x.shape[0], size=(12, 64))

    straight = fresh()
    for idx in batches:
        straight = step(straight, idx)

    first = fresh()
    for idx in batches[:6]:
        first = step(first, idx)
    checkpointer = ocp.StandardCheckpointer()
    path = tmp_path / "train_state"
    checkpointer.save(path, first)
    checkpointer.wait_until_finished()

    template = jax.tree.map(ocp.utils.to_shape_dtype_struct, fresh())
    resumed = checkpointer.restore(path, template)
    checkpointer.close()
    assert isinstance(resumed, train_state.TrainState)
    assert int(resumed.step) == 6
    for idx in batches[6:]:
        resumed = step(resumed, idx)

    assert jax.tree.structure(resumed) == jax.tree.structure(straight)
    for (path_, a), b in zip(
        jax.tree_util.tree_flatten_with_path(resumed)[0], jax.tree.leaves(straight), strict=True
    ):
        assert a.dtype == b.dtype, jax.tree_util.keystr(path_)
        np.testing.assert_array_equal(
            np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path_)
        )
    # The wrappers' weights were saved and have moved away from the initial params.
    initial = np.asarray(jax.tree.leaves(params)[0])
    for accessor in (optjx.slow_params, optjx.averaged_params):
        assert not np.array_equal(
            np.asarray(jax.tree.leaves(accessor(resumed.opt_state))[0]), initial
        )
