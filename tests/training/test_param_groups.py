"""param_groups against torch.optim with two and three param groups and per_epoch against
torch's MultiStepLR / StepLR stepped once per epoch (golden trajectories, float64,
rtol 1e-9, no torch import); against a hand-written optax.partition; on Flax Linen
params, NNX state and masked trees; bad arguments name themselves."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx
from optjx import schedules as S

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden"
RENAMED = {"lr": "learning_rate"}
ALIASES = {"AdamW": optjx.adamw, "SGD": optjx.sgd}


def _load(path):
    with np.load(path) as data:
        config = json.loads(str(data["config"]))
        grads = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("grads/")}
        params = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("params/")}
        rates = data["schedule/lr"] if "schedule/lr" in data.files else None
    return config, grads, params, rates


def _kwargs(torch_kwargs):
    return {RENAMED.get(k, k): v for k, v in torch_kwargs.items()}


def _replay(tx, grads, expected, steps):
    params = {k: jnp.asarray(v[0]) for k, v in expected.items()}
    state = tx.init(params)
    update = jax.jit(tx.update)
    for t in range(steps):
        u, state = update({k: jnp.asarray(g[t]) for k, g in grads.items()}, state, params)
        params = optax.apply_updates(params, u)
        for k in params:
            np.testing.assert_allclose(
                np.asarray(params[k]),
                expected[k][t + 1],
                rtol=1e-9,
                atol=1e-13,
                err_msg=f"{k} step {t}",
            )
    return params


GROUP_FILES = sorted(GOLDEN.glob("param_groups_*.npz"))


@pytest.mark.parametrize("path", GROUP_FILES, ids=[p.stem for p in GROUP_FILES])
def test_matches_torch_param_groups(x64, path):
    config, grads, expected, _ = _load(path)
    alias = ALIASES[config["torch_optimizer"]]
    groups = [("^(" + "|".join(names) + ")$", _kwargs(over)) for names, over in config["groups"]]
    tx = optjx.param_groups(alias, groups, **_kwargs(config["defaults"]))
    _replay(tx, grads, expected, config["steps"])


def test_golden_files_exist():
    names = {p.stem for p in GROUP_FILES}
    assert {"param_groups_adamw_two_groups", "param_groups_adamw_three_groups",
            "param_groups_sgd_two_groups", "param_groups_sgd_three_groups"} <= names  # fmt: skip


@pytest.mark.parametrize("path", GROUP_FILES, ids=[p.stem for p in GROUP_FILES])
def test_equals_hand_written_partition(x64, path):
    config, grads, expected, _ = _load(path)
    alias = ALIASES[config["torch_optimizer"]]
    defaults = _kwargs(config["defaults"])
    labels = {k: "rest" for k in expected}
    transforms = {"rest": alias(**defaults)}
    for i, (names, over) in enumerate(config["groups"]):
        transforms[f"g{i}"] = alias(**{**defaults, **_kwargs(over)})
        labels.update({n: f"g{i}" for n in names})
    ours = optjx.param_groups(
        alias, [("^(" + "|".join(n) + ")$", _kwargs(o)) for n, o in config["groups"]], **defaults
    )
    theirs = optax.partition(transforms, labels)
    params = {k: jnp.asarray(v[0]) for k, v in expected.items()}
    s1, s2 = ours.init(params), theirs.init(params)
    for t in range(5):
        g = {k: jnp.asarray(v[t]) for k, v in grads.items()}
        u1, s1 = ours.update(g, s1, params)
        u2, s2 = theirs.update(g, s2, params)
        for k in params:
            np.testing.assert_array_equal(u1[k], u2[k])
        params = optax.apply_updates(params, u1)


PER_EPOCH_FILES = sorted(GOLDEN.glob("per_epoch_*.npz"))


def _torch_scheduler(config):
    kwargs, spe = config["scheduler_kwargs"], config["steps_per_epoch"]
    if config["scheduler"] == "MultiStepLR":
        epochs = S.piecewise_constant(0.1, {m: kwargs["gamma"] for m in kwargs["milestones"]})
    else:  # StepLR
        epochs = S.exponential(0.1, kwargs["gamma"], kwargs["step_size"], staircase=True)
    return S.per_epoch(epochs, spe)


@pytest.mark.parametrize("path", PER_EPOCH_FILES, ids=[p.stem for p in PER_EPOCH_FILES])
def test_per_epoch_matches_torch_epoch_schedulers(x64, path):
    config, grads, expected, rates = _load(path)
    schedule = _torch_scheduler(config)
    got = jax.vmap(schedule)(jnp.arange(config["steps"]))
    np.testing.assert_allclose(np.asarray(got), rates, rtol=1e-12)
    assert len(set(rates.tolist())) >= 3  # several epochs, several rate changes
    _replay(optjx.sgd(schedule, momentum=0.9), grads, expected, config["steps"])


def test_flax_linen_params_and_group_of():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(4, (3, 3))(x)
            x = nn.LayerNorm()(x)
            return nn.Dense(2)(x.reshape(x.shape[0], -1))

    params = Net().init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))
    tx = optjx.param_groups(
        optjx.adamw,
        [("bias|scale", {"weight_decay": 0.0}), ("^params/Conv_0/", {"learning_rate": 1e-4})],
        learning_rate=1e-3,
    )
    groups = optjx.group_of(tx, params)
    assert groups["params"]["Conv_0"] == {"bias": "group_0", "kernel": "group_1"}
    assert groups["params"]["LayerNorm_0"] == {"bias": "group_0", "scale": "group_0"}
    assert groups["params"]["Dense_0"] == {"bias": "group_0", "kernel": "default"}
    state = tx.init(params)
    updates, _ = jax.jit(tx.update)(params, state, params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)


def test_nnx_state_and_callable_match():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    tx = optjx.param_groups(
        optjx.sgd, [(lambda path, leaf: leaf.ndim == 1, {"learning_rate": 0.0})], learning_rate=0.1
    )
    groups = jax.tree.leaves(optjx.group_of(tx, state))
    assert sorted(groups) == ["default", "group_0"]
    opt_state = tx.init(state)
    grads = jax.tree.map(jnp.ones_like, state)
    updates, _ = tx.update(grads, opt_state, state)
    assert np.all(np.asarray(jax.tree.leaves(updates["bias"])[0]) == 0)


def test_masked_tree():
    params = {"w": jnp.ones(3), "b": jnp.ones(2), "frozen": jnp.ones(4)}
    inner = optjx.param_groups(optjx.sgd, [("^b$", {"learning_rate": 0.5})], learning_rate=0.1)
    tx = optax.masked(inner, {"w": True, "b": True, "frozen": False})
    updates, _ = tx.update(params, tx.init(params), params)
    np.testing.assert_allclose(updates["b"], -0.5)
    np.testing.assert_allclose(updates["w"], -0.1)
    np.testing.assert_allclose(updates["frozen"], 1.0)  # masked out: passes through


def test_bad_arguments_name_themselves():
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match="betas"):
        optjx.param_groups(optjx.adamw, [("w", {"betas": (0.9, 0.99)})], learning_rate=0.1)
    with pytest.raises(ValueError, match="lr"):
        optjx.param_groups(optjx.sgd, [], lr=0.1)
    tx = optjx.param_groups(optjx.sgd, [("w", {}), ("norm", {})], learning_rate=0.1)
    with pytest.raises(ValueError, match=r"groups\[1\].*norm.*matches no leaf"):
        tx.init(params)
    with pytest.raises(ValueError, match=r"groups\[0\]"):
        optjx.param_groups(optjx.sgd, [("(", {})], learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        optjx.param_groups(optjx.sgd, [("w", {"learning_rate": -1.0})], learning_rate=0.1)
