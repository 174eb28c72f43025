"""``to_torch_state`` loaded into a live torch optimizer, which then continues as torch
did: the way from JAX back to PyTorch.

Skipped where torch is not installed (CI does not install it; the project's development
environment has torch 2.13 CPU). The other direction, and the dict's exact keys, are
checked without torch by ``test_torch_state.py`` from the recorded goldens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

torch = pytest.importorskip("torch")

from test_torch_state import PATHS, _alias, _continue, _load  # noqa: E402

OPTJX_STEPS = 1  # optjx continues this many of the M steps, torch the rest


@pytest.fixture
def torch_float64(monkeypatch):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    # Muon: the Newton-Schulz iteration in float64, as the golden's (ns_dtype=None here)
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self, *a, **k: self.detach().clone())
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_optjx_state_loads_into_torch_and_continues(path, x64, torch_float64):
    config, params_k, params_km, grads, state_dict = _load(path)
    tx = _alias(config)
    k, m = config["k"], config["m"]
    state = optjx.from_torch_state(tx, state_dict, params_k, step=k)
    params, state = _continue(tx, state, params_k, grads, OPTJX_STEPS)

    names = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    tensors = [torch.nn.Parameter(torch.tensor(np.asarray(p))) for p in jax.tree.leaves(params)]
    optimizer = getattr(torch.optim, config["torch_class"])(tensors, **config["torch_kwargs"])
    written = optjx.to_torch_state(
        tx, state, params, step=k + OPTJX_STEPS, as_tensor=torch.as_tensor
    )
    optimizer.load_state_dict(written)

    def closure():  # LBFGS: the goldens' Rosenbrock loss
        optimizer.zero_grad()
        x = torch.cat([tensor.reshape(-1) for tensor in tensors])
        value = torch.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        value.backward()
        return value

    for t in range(OPTJX_STEPS, m):
        if not grads:
            optimizer.step(closure)
            continue
        for tensor, g in zip(tensors, jax.tree.leaves(grads), strict=True):
            tensor.grad = torch.tensor(np.asarray(g[t]))
        optimizer.step()
    for name, tensor, expected in zip(names, tensors, jax.tree.leaves(params_km), strict=True):
        np.testing.assert_allclose(
            tensor.detach().numpy(), expected, rtol=1e-9, atol=1e-12, err_msg=name
        )


def test_fresh_state_loads_into_torch(x64):
    params = {"w": jnp.ones((2, 3))}
    tx = optjx.adam(1e-3)
    tensors = [torch.nn.Parameter(torch.ones(2, 3, dtype=torch.float64))]
    optimizer = torch.optim.Adam(tensors, lr=1e-3)
    optimizer.load_state_dict(optjx.to_torch_state(tx, tx.init(params), params))
    assert optimizer.state_dict()["state"] == {}
