"""clip and clip_by_global_norm against their formulas.

clip(g)_i = min(max(g_i, -c), c)
clip_by_global_norm(g) = g * min(1, c / ||g||_2),  ||g||_2 over all leaves together
"""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import assert_trajectories_close, mixed_gradients, per_leaf, run

import optjx
from optjx import schedules


@pytest.mark.parametrize(
    "max_delta, ref_bound",
    [
        (1.0, lambda k: 1.0),
        (0.0, lambda k: 0.0),
        (schedules.exponential(100.0, 0.5, 5), lambda k: 100.0 * 0.5 ** (k / 5)),
    ],
    ids=["one", "zero", "schedule"],
)
def test_clip_elementwise(x64, max_delta, ref_bound):
    grads = mixed_gradients(55, seed=91)
    actual, _ = run(optjx.clip(max_delta), grads)

    def reference(sequence):
        return [
            np.minimum(np.maximum(g, -ref_bound(k)), ref_bound(k)) for k, g in enumerate(sequence)
        ]

    assert_trajectories_close(actual, per_leaf(reference, grads), rtol=1e-12)


def _global_norm_reference(bound):
    def reference(grads):
        outputs = []
        for k, tree in enumerate(grads):
            norm = np.sqrt(sum(np.sum(leaf**2) for leaf in tree.values()))
            factor = min(1.0, bound(k) / norm) if norm > 0 else 1.0
            outputs.append({name: leaf * factor for name, leaf in tree.items()})
        return outputs

    return reference


@pytest.mark.parametrize(
    "max_norm, ref_bound",
    [
        (10.0, lambda k: 10.0),
        (1e-3, lambda k: 1e-3),
        (1e6, lambda k: 1e6),  # never active: the gradients pass unchanged
        (schedules.linear(1e3, 1.0, 40), lambda k: 1e3 + (1.0 - 1e3) * min(k, 40) / 40),
    ],
    ids=["ten", "tiny", "inactive", "schedule"],
)
def test_clip_by_global_norm(x64, max_norm, ref_bound):
    grads = mixed_gradients(55, seed=92)
    actual, _ = run(optjx.clip_by_global_norm(max_norm), grads)
    expected = _global_norm_reference(ref_bound)(grads)
    assert_trajectories_close(actual, expected, rtol=1e-12)
    for k, out in enumerate(actual):
        norm = np.sqrt(sum(np.sum(leaf**2) for leaf in out.values()))
        assert norm <= ref_bound(k) * (1 + 1e-12)


def test_global_norm_is_the_norm_of_all_leaves(x64):
    for g in mixed_gradients(10, seed=93):
        flat = np.concatenate([leaf.ravel() for leaf in g.values()])
        np.testing.assert_allclose(optjx.global_norm(g), np.linalg.norm(flat), rtol=1e-13)


def test_global_norm_of_bfloat16_does_not_overflow():
    # 300 elements of 1e3: the sum of squares (3e8) is fine in float32, and the
    # result must not be rounded to bfloat16's 8-bit mantissa before the root.
    g = {"w": jnp.full((300,), 1e3, jnp.bfloat16)}
    np.testing.assert_allclose(optjx.global_norm(g), np.sqrt(300) * 1e3, rtol=1e-3)
    out, _ = optjx.clip_by_global_norm(1.0).update(g, optjx.clip_by_global_norm(1.0).init(g))
    assert out["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["w"], np.float32), 1 / np.sqrt(300), rtol=1e-2)
