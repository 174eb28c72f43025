"""NAdam, Adamax, Rprop, ASGD, Adafactor and Muon against ``torch.optim``, step for step.

``tests/golden/generate_torch_more.py`` ran each ``torch.optim`` class (torch 2.13,
float64) and stored the initial parameters, the gradients it was fed and the parameters
after every step (ASGD: its average ``ax`` too). The optjx alias built with the same
hyperparameters replays the gradients in float64 and must land on the same parameters
after every step at rtol 1e-9. Muon: the files marked ``ns_float64`` ran torch's Muon with
its Newton-Schulz iteration in float64 and are matched by ``ns_dtype=None`` at rtol 1e-9;
the plain torch run (bfloat16 iteration) is matched by optjx's default ``ns_dtype`` at
bfloat16 accuracy. torch is not imported.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_torch_parity import assert_step_matches_torch

import optjx

FOLDER = pathlib.Path(__file__).resolve().parent / "golden" / "torch_more"
FILES = sorted(FOLDER.glob("*.npz"))
RTOL, ATOL = 1e-9, 1e-14

ALIASES = {
    "NAdam": "nadam",
    "Adamax": "adamax",
    "Rprop": "rprop",
    "ASGD": "asgd",
    "Adafactor": "adafactor",
    "Muon": "muon",
}
RENAMED = {"lr": "learning_rate"}
# torch's default 0 is optjx's None (no stage); an explicit value keeps it
TUPLES = {"etas", "step_sizes", "eps", "ns_coefficients"}


def _load(path: pathlib.Path):
    with np.load(path) as data:
        config = json.loads(str(data["config"]))
        parts = {}
        for key in data.files:
            if "/" in key:
                kind, leaf = key.split("/", 1)
                parts.setdefault(kind, {})[leaf] = data[key]
    return config, parts


def _schedule(spec):
    args = [_schedule(a) if isinstance(a, dict) else a for a in spec["args"]]
    return getattr(optjx.schedules, spec["fn"])(*args, **spec["kwargs"])


def _optimizer(config, **extra):
    kwargs = {}
    for key, value in config["torch_kwargs"].items():
        if key == "betas":
            kwargs["b1"], kwargs["b2"] = value
        elif key in TUPLES and isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[RENAMED.get(key, key)] = value
    for key, spec in config["schedules"].items():
        kwargs[RENAMED.get(key, key)] = _schedule(spec)
    if config.get("ns_float64"):
        kwargs["ns_dtype"] = None
    return getattr(optjx, ALIASES[config["torch_optimizer"]])(**{**kwargs, **extra})


def _replay(optimizer, grads, params0, steps):
    """The params after every step, and the states."""
    params = {k: jnp.asarray(v) for k, v in params0.items()}
    state = optimizer.init(params)

    @jax.jit
    def step(grads, state, params):
        updates, state = optimizer.update(grads, state, params)
        return optjx.apply_updates(params, updates), state

    for t in range(steps):
        params, state = step({k: jnp.asarray(g[t]) for k, g in grads.items()}, state, params)
        yield params, state


def test_golden_files_cover_every_alias():
    covered = {_load(path)[0]["torch_optimizer"] for path in FILES}
    assert covered == set(ALIASES), f"golden files missing for {set(ALIASES) - covered}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_file_is_well_formed(path):
    config, parts = _load(path)
    steps = config["steps"]
    assert steps >= 30 and config["name"] == path.stem
    assert set(parts["grads"]) == set(parts["params"]) == set(config["shapes"])
    for key, g in parts["grads"].items():
        assert g.dtype == parts["params"][key].dtype == np.float64
        assert g.shape == (steps, *config["shapes"][key])
        assert parts["params"][key].shape[0] == steps + 1
        assert not np.any(g[config["zero_step"]])
    assert set(parts.get("schedule", {})) == set(config["schedules"])


EXACT = [p for p in FILES if not p.stem.endswith("_bf16")]


@pytest.mark.parametrize("path", EXACT, ids=[p.stem for p in EXACT])
def test_matches_torch_step_for_step(path, x64):
    config, parts = _load(path)
    expected, grads = parts["params"], parts["grads"]
    initial = {k: v[0] for k, v in expected.items()}
    replay = _replay(_optimizer(config), grads, initial, config["steps"])
    for t, (params, state) in enumerate(replay):
        assert_step_matches_torch(params, expected, t, config["name"], rtol=RTOL, atol=ATOL)
        if "average" in parts:  # ASGD: torch's ax, read from the first step on
            average = optjx.averaged_params(state)
            for key, want in parts["average"].items():
                where = f"{config['name']}: average after step {t + 1}, leaf {key!r}"
                np.testing.assert_allclose(
                    np.asarray(average[key]), want[t], rtol=RTOL, atol=ATOL, err_msg=where
                )


BF16 = [p for p in FILES if p.stem.endswith("_bf16")]


@pytest.mark.parametrize("path", BF16, ids=[p.stem for p in BF16])
def test_muon_bfloat16_matches_torch_at_bfloat16_accuracy(path, x64):
    """torch's plain Muon (its Newton-Schulz in bfloat16) against optjx's default
    ``ns_dtype``: every step's update within 10% of the step's largest entry (five
    iterations of a polynomial of slope 3.4 at 0 amplify bfloat16's 0.4% rounding; torch's
    own float64 iteration is 1-5% from its bfloat16 one). A wrong scale, transpose or
    momentum is off by tens of percent."""
    config, parts = _load(path)
    expected, grads = parts["params"], parts["grads"]
    previous = {k: v[0] for k, v in expected.items()}
    for t, (params, _) in enumerate(_replay(_optimizer(config), grads, previous, config["steps"])):
        for key, want in expected.items():
            step, want_step = np.asarray(params[key]) - previous[key], want[t + 1] - want[t]
            bound = 0.1 * np.max(np.abs(want_step))
            where = f"{config['name']}: step {t + 1}, leaf {key!r}"
            np.testing.assert_allclose(step, want_step, rtol=0, atol=bound, err_msg=where)
        previous = {k: np.asarray(v) for k, v in params.items()}
    final = max(np.max(np.abs(np.asarray(params[k]) - v[-1])) for k, v in expected.items())
    assert final < 0.01, final  # 32 steps of about 0.02 each
