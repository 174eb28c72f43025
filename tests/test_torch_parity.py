"""Every alias against ``torch.optim``, step for step, from golden trajectories.

``tests/golden/generate.py`` ran ``torch.optim`` (torch 2.13, float64) on a small
parameter tree and stored the initial parameters, the gradients it was fed, and the
parameters after every step. Here the optjx alias built with the same hyperparameters
replays the same gradients in float64 and must land on the same parameters after every
step (rtol 1e-7). torch is not imported: only the ``.npz`` files are read.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
# Files replayed by their own tests: the training loop's (tests/training: param_groups_*,
# per_epoch_*) and the full-batch methods' (tests/full_batch: lbfgs_*, strong_wolfe_*, cg_*).
ELSEWHERE = ("param_groups_", "per_epoch_", "lbfgs_", "strong_wolfe_", "cg_")
FILES = sorted(p for p in GOLDEN.glob("*.npz") if not p.name.startswith(ELSEWHERE))
RTOL, ATOL = 1e-7, 1e-12

# torch.optim class -> optjx alias
ALIASES = {
    "SGD": "sgd",
    "RMSprop": "rmsprop",
    "Adagrad": "adagrad",
    "Adam": "adam",
    "AdamW": "adamw",
    "Adadelta": "adadelta",
    "RAdam": "radam",
}
# torch keyword -> optjx keyword, where the names differ ("betas" is split into b1, b2)
RENAMED = {"lr": "learning_rate", "alpha": "decay"}


def _load(path: pathlib.Path):
    with np.load(path) as data:
        config = json.loads(str(data["config"]))
        grads = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("grads/")}
        params = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("params/")}
        values = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("schedule/")}
    return config, grads, params, values


def _schedule(spec):
    """The optjx schedule a golden spec names (an argument may be a spec itself)."""
    args = [_schedule(a) if isinstance(a, dict) else a for a in spec["args"]]
    return getattr(optjx.schedules, spec["fn"])(*args, **spec["kwargs"])


def _optimizer(config):
    """The optjx alias with torch's hyperparameters, schedules included."""
    kwargs = {}
    for key, value in config["torch_kwargs"].items():
        if key == "betas":
            kwargs["b1"], kwargs["b2"] = value
        else:
            kwargs[RENAMED.get(key, key)] = value
    for key, spec in config["schedules"].items():
        kwargs[RENAMED.get(key, key)] = _schedule(spec)
    return getattr(optjx, ALIASES[config["torch_optimizer"]])(**kwargs)


def test_golden_files_cover_every_alias():
    covered = {_load(path)[0]["torch_optimizer"] for path in FILES}
    assert covered == set(ALIASES), f"golden files missing for {set(ALIASES) - covered}"


def assert_step_matches_torch(params, expected, t, name, rtol=RTOL, atol=ATOL):
    """Every float64 leaf after step ``t + 1`` equals torch's ``expected[leaf][t + 1]``,
    and so does the distance travelled from the start: it is far smaller than the params
    for the slow optimizers (Adadelta moves ~1e-3), so it is compared too, at the same
    tolerance."""
    for key, want in expected.items():
        got = np.asarray(params[key])
        assert got.dtype == np.float64
        where = f"{name}: after step {t + 1} (k={t}), leaf {key!r}"
        np.testing.assert_allclose(got, want[t + 1], rtol=rtol, atol=atol, err_msg=where)
        np.testing.assert_allclose(
            got - want[0], want[t + 1] - want[0], rtol=rtol, atol=atol, err_msg=where
        )


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_file_is_well_formed(path):
    config, grads, params, values = _load(path)
    steps = config["steps"]
    assert steps >= 30 and config["name"] == path.stem
    assert set(grads) == set(params) and len(grads) >= 2
    for key in grads:
        assert grads[key].dtype == params[key].dtype == np.float64
        assert grads[key].shape[0] == steps and params[key].shape[0] == steps + 1
        assert not np.any(grads[key][config["zero_step"]])
    assert set(values) == set(config["schedules"])


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if _load(p)[0]["schedules"]],
    ids=[p.stem for p in FILES if _load(p)[0]["schedules"]],
)
def test_schedule_matches_the_values_torch_was_given(path, x64):
    config, _, _, values = _load(path)
    counts = jnp.arange(config["steps"], dtype=jnp.int32)
    for key, spec in config["schedules"].items():
        got = np.asarray(jax.vmap(_schedule(spec))(counts))
        np.testing.assert_allclose(got, values[key], rtol=1e-12, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_matches_torch_step_for_step(path, x64):
    config, grads, expected, _ = _load(path)
    optimizer = _optimizer(config)
    params = {k: jnp.asarray(v[0]) for k, v in expected.items()}
    state = optimizer.init(params)

    @jax.jit
    def step(grads, state, params):
        updates, state = optimizer.update(grads, state, params)
        return optjx.apply_updates(params, updates), state

    for t in range(config["steps"]):
        params, state = step({k: jnp.asarray(g[t]) for k, g in grads.items()}, state, params)
        assert_step_matches_torch(params, expected, t, config["name"])
