"""The core's tree reductions (``optjx._tree``) against float64 NumPy.

One accumulator rule for every caller (clipping, monitor, NovoGrad, apply_if_finite, the
full-batch methods): each leaf is reduced in its own dtype, float32 at least, and the
per-leaf results are added in the caller's dtype.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from optjx import _tree


def _tree_of(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": jnp.asarray(rng.normal(size=(4, 3)) * 3.0, dtype),
        "b": jnp.asarray(rng.normal(size=(5,)), dtype),
        "empty": jnp.zeros((0,), dtype),
    }


def _flat64(tree) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in tree.values()])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_reductions_match_numpy(dtype):
    a, b = _tree_of(dtype, 0), _tree_of(dtype, 1)
    x, y = _flat64(a), _flat64(b)
    # Sums of float32 terms: a relative error of a few float32 roundings.
    tol = dict(rtol=1e-6, atol=0)
    np.testing.assert_allclose(float(_tree.sum_of_squares(a, jnp.float32)), x @ x, **tol)
    np.testing.assert_allclose(float(_tree.dot(a, b, jnp.float32)), x @ y, **tol)
    np.testing.assert_allclose(float(_tree.sum_abs(a, jnp.float32)), np.abs(x).sum(), **tol)
    assert float(_tree.max_abs(a, jnp.float32)) == np.abs(x).max()  # exact: no arithmetic


def test_half_precision_leaves_are_summed_in_float32():
    # 4097 needs 13 significant bits: neither float16 (11) nor bfloat16 (8) holds it, so
    # a sum kept in the leaf's dtype, in any order, cannot end on it.
    for dtype in (jnp.float16, jnp.bfloat16):
        ones = {"x": jnp.ones((4097,), dtype)}
        assert float(_tree.sum_of_squares(ones, jnp.float32)) == 4097.0
        assert float(_tree.sum_abs(ones, jnp.float32)) == 4097.0
        assert float(_tree.dot(ones, ones, jnp.float32)) == 4097.0
        assert _tree.accumulator_dtype(dtype) == jnp.float32
    assert _tree.accumulator_dtype(jnp.float32) == jnp.float32
    assert _tree.accumulator_dtype(jnp.int32) == jnp.float32


def test_reduction_dtype_is_the_widest_accumulator():
    assert _tree.reduction_dtype({}) == jnp.float32
    assert _tree.reduction_dtype({"a": jnp.zeros(2, jnp.bfloat16)}) == jnp.float32
    pair = {"a": jnp.zeros(2, jnp.bfloat16), "b": jnp.zeros(2, jnp.float16)}
    assert _tree.reduction_dtype(pair) == jnp.float32


def test_float64_leaves_keep_float64(x64):
    a = _tree_of(jnp.float64)
    x = _flat64(a)
    assert _tree.reduction_dtype(a) == jnp.float64
    total = _tree.sum_of_squares(a, jnp.float64)
    assert total.dtype == jnp.float64
    np.testing.assert_allclose(float(total), x @ x, rtol=1e-14)


def test_max_abs_and_all_finite_see_nan_inf_and_empty_trees():
    assert float(_tree.max_abs({}, jnp.float32)) == 0.0
    assert bool(_tree.all_finite({}))
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        tree = {"a": jnp.asarray([1.0, bad, -2.0]), "b": jnp.ones(2)}
        assert not np.isfinite(float(_tree.max_abs(tree, jnp.float32)))
        assert not bool(_tree.all_finite(tree))
    assert float(_tree.max_abs({"a": jnp.asarray([1.0, -3.0])}, jnp.float32)) == 3.0


def test_complex_leaves_count_both_parts():
    z = {"z": jnp.asarray([3.0 + 4.0j, -1.0j], jnp.complex64)}
    assert float(_tree.sum_of_squares(z, jnp.float32)) == 26.0  # |3+4i|^2 + |-i|^2
    assert float(_tree.max_abs(z, jnp.float32)) == 5.0
