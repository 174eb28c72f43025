"""Muon's particulars: 2-d leaves only (an error naming the key path), the orthogonalization
against the SVD, and the documented recipe (Muon on matrices, AdamW on the rest, conv
kernels reshaped). Step-for-step parity with torch is in tests/test_torch_parity_more.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx


@pytest.mark.parametrize(
    "make", [optjx.muon, optjx.scale_by_muon, optjx.orthogonalize_by_newton_schulz]
)
def test_a_leaf_that_is_not_a_matrix_is_named(make):
    params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}}
    with pytest.raises(ValueError, match=r"\['dense'\]\['bias'\].*shape \(2,\)"):
        make().init(params)


def test_newton_schulz_orthogonalizes_like_the_svd(x64):
    # Many steps of the classic cubic (a, b, c) = (1.5, -0.5, 0) converge to U V^T exactly.
    rng = np.random.default_rng(0)
    for shape in [(4, 7), (7, 4), (5, 5)]:
        g = rng.normal(size=shape)
        u, _, vt = np.linalg.svd(g, full_matrices=False)
        tx = optjx.orthogonalize_by_newton_schulz(
            ns_coefficients=(1.5, -0.5, 0.0), ns_steps=60, ns_dtype=None
        )
        out, _ = tx.update({"w": jnp.asarray(g)}, tx.init({"w": jnp.asarray(g)}))
        np.testing.assert_allclose(np.asarray(out["w"]), u @ vt, atol=1e-10)


def _on_matrices(tx):
    """The recipe's reshaping wrapper (docs/algorithms/muon.md), written out."""

    def to_2d(tree):
        return jax.tree.map(lambda x: x.reshape(-1, x.shape[-1]), tree)

    def init(params):
        return tx.init(to_2d(params))

    def update(grads, state, params=None):
        updates, state = tx.update(to_2d(grads), state, None if params is None else to_2d(params))
        return jax.tree.map(lambda u, g: u.reshape(g.shape), updates, grads), state

    return optax.GradientTransformation(init, update)


def test_recipe_muon_on_matrices_and_conv_kernels_adamw_on_the_rest(x64):
    def muon_or_adamw(*, use_muon=False, **kwargs):
        return _on_matrices(optjx.muon(**kwargs)) if use_muon else optjx.adamw(**kwargs)

    tx = optjx.param_groups(
        muon_or_adamw,
        [(lambda path, leaf: leaf.ndim in (2, 4), {"use_muon": True, "learning_rate": 0.02})],
        learning_rate=3e-4,
        weight_decay=0.01,
    )
    rng = np.random.default_rng(1)
    shapes = {"Conv_0": {"kernel": (3, 3, 2, 4), "bias": (4,)}, "Dense_0": {"kernel": (8, 5)}}
    params = jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=s)), shapes, is_leaf=lambda s: isinstance(s, tuple)
    )
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    updates, _ = tx.update(grads, tx.init(params), params)

    # The conv kernel moved as Muon moves its (3*3*2, 4) matrix; the bias as AdamW.
    kernel = params["Conv_0"]["kernel"]
    muon = optjx.muon(0.02, weight_decay=0.01)
    as_matrix = {"k": kernel.reshape(18, 4)}
    expected, _ = muon.update(
        {"k": grads["Conv_0"]["kernel"].reshape(18, 4)}, muon.init(as_matrix), as_matrix
    )
    np.testing.assert_array_equal(updates["Conv_0"]["kernel"], expected["k"].reshape(kernel.shape))
    adamw = optjx.adamw(3e-4, weight_decay=0.01)
    bias = {"b": params["Conv_0"]["bias"]}
    expected, _ = adamw.update({"b": grads["Conv_0"]["bias"]}, adamw.init(bias), bias)
    np.testing.assert_array_equal(updates["Conv_0"]["bias"], expected["b"])
    assert optjx.group_of(tx, params)["Dense_0"]["kernel"] == "group_0"
