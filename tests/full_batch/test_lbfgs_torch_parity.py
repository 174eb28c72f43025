"""optjx.lbfgs against torch.optim.LBFGS, update for step, from golden trajectories.

``tests/golden/generate_full_batch.py`` ran ``torch.optim.LBFGS`` (torch 2.13, float64)
and stored the params after every ``step`` with torch's counters. Each ``update`` here must
land on torch's params (rtol 1e-9) with the same ``func_evals``, ``n_iter``, step ``t``
and number of stored pairs. torch is not imported.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _problems import GOLDEN, config, load, logistic_data, loss_fn

import optjx

NAMES = sorted(p.stem for p in GOLDEN.glob("lbfgs_*.npz"))
RTOL = 1e-9
RENAMED = {"lr": "learning_rate"}


def test_golden_files_cover_the_issue():
    kwargs = [config(load(n))["torch_kwargs"] for n in NAMES]
    assert {k.get("line_search_fn") for k in kwargs} == {None, "strong_wolfe"}
    assert {1, 20} <= {k.get("max_iter", 20) for k in kwargs}
    assert any(k.get("lr", 1.0) < 1 for k in kwargs)
    assert any(k.get("history_size", 100) < 20 for k in kwargs)
    problems = {config(load(n))["problem"] for n in NAMES}
    assert problems == {"rosenbrock", "logistic", "double_well"}
    skips = load("lbfgs_double_well_skips")  # some pairs were rejected (y.s <= 1e-10)
    assert skips["pairs"][-1] < skips["n_iter"][-1] - 1
    at_once = load("lbfgs_logistic_tolerance_grad_at_once")
    assert np.all(at_once["n_iter"] == 0) and list(at_once["func_evals"]) == [1, 2]


@pytest.mark.parametrize("name", NAMES)
def test_lbfgs_matches_torch_step_for_step(name, x64):
    arrays = load(name)
    cfg = config(arrays)
    loss = loss_fn(cfg["problem"], logistic_data(arrays))
    opt = optjx.lbfgs(**{RENAMED.get(k, k): v for k, v in cfg["torch_kwargs"].items()})
    leaves = sorted(k.split("/", 1)[1] for k in arrays if k.startswith("params/"))
    history = {k: arrays[f"params/{k}"] for k in leaves}
    params = {k: jnp.asarray(v[0]) for k, v in history.items()}
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
        return optax.apply_updates(params, updates), state, value

    for k in range(cfg["steps"]):
        params, state, value = step(params, state)
        where = f"{name}, step {k + 1}"
        np.testing.assert_allclose(float(value), arrays["loss"][k], rtol=RTOL, err_msg=where)
        for leaf, want in history.items():
            np.testing.assert_allclose(np.asarray(params[leaf]), want[k + 1], rtol=RTOL,
                                       atol=RTOL * np.max(np.abs(want[k + 1])), err_msg=where)  # fmt: skip
        assert int(state.func_evals) == arrays["func_evals"][k], where
        assert int(state.n_iter) == arrays["n_iter"][k], where
        assert int(state.pairs) == arrays["pairs"][k], where
        np.testing.assert_allclose(float(state.step_size), arrays["t"][k], rtol=RTOL, err_msg=where)
        done = arrays["func_evals"][k] - (arrays["func_evals"][k - 1] if k else 0)
        assert int(state.evaluations) == done, where
