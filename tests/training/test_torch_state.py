"""``from_torch_state`` / ``to_torch_state`` against torch 2.13's own states and
trajectories, recorded by ``tests/golden/generate_torch_state.py`` (torch is not imported).

For each twin: torch ran K steps, its state converts, optjx continues M steps and lands
where torch's continuation did (rtol 1e-9, float64); optjx -> torch -> optjx is
bit-identical; the dict ``to_torch_state`` writes has torch's keys and param groups.
"""

from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

FOLDER = pathlib.Path(__file__).resolve().parent.parent / "golden" / "torch_state"
PATHS = sorted(FOLDER.glob("*.npz"))


def _load(path):
    data = np.load(path)
    config = json.loads(str(data["config"]))

    def tree(prefix):
        return {
            key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(prefix + "/")
        }

    structure = config["structure"]

    def value(i, key):  # LBFGS keeps lists and Python numbers, stacked in the golden
        array = data[f"state/{i}/{key}"]
        if key in structure.get("lists", ()):
            return list(array)
        return array.item() if key in structure.get("numbers", ()) else array

    state_dict = {
        "state": {
            int(i): {key: value(i, key) for key in keys} for i, keys in structure["state"].items()
        },
        "param_groups": structure["param_groups"],
    }
    return config, tree("params_k"), tree("params_km"), tree("grads"), state_dict


def _alias(config):
    return getattr(optjx, config["alias"])(**config["alias_kwargs"])


def rosenbrock(params):
    """The LBFGS goldens' loss: Rosenbrock's function of the leaves raveled and joined."""
    x = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(params)])
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


@functools.partial(jax.jit, static_argnums=0)
def _full_batch_step(tx, params, state):
    """LBFGS: one update is one torch ``step(closure)`` on the loss."""
    value, g = jax.value_and_grad(rosenbrock)(params)
    updates, state = tx.update(g, state, params, value=value, value_fn=rosenbrock)
    return optjx.apply_updates(params, updates), state


def _continue(tx, state, params, grads, m):
    params = jax.tree.map(jnp.asarray, params)
    for t in range(m):
        if not grads:
            params, state = _full_batch_step(tx, params, state)
            continue
        g = {k: jnp.asarray(v[t]) for k, v in grads.items()}
        updates, state = tx.update(g, state, params)
        params = optjx.apply_updates(params, updates)
    return params, state


def _assert_same(written, expected, rtol, where):
    if isinstance(expected, list):
        assert isinstance(written, list) and len(written) == len(expected), where
        for a, b in zip(written, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, err_msg=where)
    else:
        if isinstance(expected, (int, float)):  # torch's Python numbers stay numbers
            assert isinstance(written, (int, float)), where
        np.testing.assert_allclose(written, expected, rtol=rtol, err_msg=where)


def test_every_twin_has_a_golden():
    names = {json.loads(str(np.load(p)["config"]))["alias"] for p in PATHS}
    expected = {
        "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "radam", "nadam",
        "adamax", "rprop", "asgd", "adafactor", "muon", "lbfgs",
    }  # fmt: skip
    assert names == expected


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_torch_state_continues_as_torch(path, x64):
    config, params_k, params_km, grads, state_dict = _load(path)
    tx = _alias(config)
    state = optjx.from_torch_state(tx, state_dict, params_k)
    assert jax.tree.structure(state) == jax.tree.structure(tx.init(params_k))
    params, _ = _continue(tx, state, params_k, grads, config["m"])
    for key, expected in params_km.items():
        np.testing.assert_allclose(np.asarray(params[key]), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_to_torch_state_is_torchs_dict(path, x64):
    config, params_k, _, _, state_dict = _load(path)
    tx = _alias(config)
    state = optjx.from_torch_state(tx, state_dict, params_k)
    # step=: ignored, every alias's state keeps a counter (a state without one needs it)
    written = optjx.to_torch_state(tx, state, params_k, step=config["k"])
    assert written["param_groups"] == [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
        for g in state_dict["param_groups"]
    ]
    assert list(written["state"]) == list(state_dict["state"])
    for i, entry in state_dict["state"].items():
        assert sorted(written["state"][i]) == sorted(entry), i
        for key, value in entry.items():
            _assert_same(written["state"][i][key], value, 1e-15, f"{i}/{key}")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_round_trip_is_bit_identical(path, x64):
    config, params_k, _, grads, state_dict = _load(path)
    tx = _alias(config)
    # An optjx state that optjx itself produced, a few updates after the conversion.
    state = optjx.from_torch_state(tx, state_dict, params_k, step=config["k"])
    params, state = _continue(tx, state, params_k, grads, 2)
    written = optjx.to_torch_state(tx, state, params, step=config["k"] + 2)
    # step=: torch's SGD and Muon keep no step count, so the way back is told it
    again = optjx.from_torch_state(tx, written, params, step=config["k"] + 2)
    assert jax.tree.structure(again) == jax.tree.structure(state)
    rewritten = optjx.to_torch_state(tx, again, params, step=config["k"] + 2)
    assert jax.tree.structure(rewritten) == jax.tree.structure(written)
    for a, b in zip(jax.tree.leaves(rewritten), jax.tree.leaves(written), strict=True):
        np.testing.assert_array_equal(a, b)
    if config["alias"] == "lbfgs":
        # Its ring buffer is rewritten from row 0 and its per-update diagnostics
        # (iterations, evaluations, stop_reason) are not torch's: what torch sees is
        # identical (above), and both continue identically.
        ours, theirs = (
            _continue(tx, state, params, grads, 1),
            _continue(tx, again, params, grads, 1),
        )
        for a, b in zip(jax.tree.leaves(ours[0]), jax.tree.leaves(theirs[0]), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        return
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(state), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fresh_state_both_ways(x64):
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    tx = optjx.adam(1e-3)
    written = optjx.to_torch_state(tx, tx.init(params), params)
    assert written["state"] == {}
    state = optjx.from_torch_state(tx, written, params)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state, tx.init(params)))


# ---- errors that name what differs ----


def _adam_golden():
    config, params_k, _, _, state_dict = _load(FOLDER / "adam_amsgrad_weight_decay.npz")
    return params_k, state_dict


def test_not_an_alias():
    params, state_dict = _adam_golden()
    with pytest.raises(TypeError, match="torch.optim twin"):
        optjx.from_torch_state(optjx.chain(optjx.scale_by_adam()), state_dict, params)
    with pytest.raises(TypeError, match="torch.optim twin"):
        optjx.from_torch_state(optjx.novograd(1e-3), state_dict, params)


def test_wrong_twin_names_the_keys_and_the_lookalike(x64):
    params, state_dict = _adam_golden()
    with pytest.raises(ValueError, match=r"torch.optim.SGD.*looks like torch.optim.Adam"):
        optjx.from_torch_state(optjx.sgd(0.01), state_dict, params)


def test_hyperparameter_mismatch_names_it(x64):
    params, state_dict = _adam_golden()
    with pytest.raises(ValueError, match=r"'lr' differs.*0.01.*0.02"):
        optjx.from_torch_state(optjx.adam(0.02, amsgrad=True, weight_decay=0.1), state_dict, params)
    with pytest.raises(ValueError, match="'decoupled_weight_decay' differs"):
        optjx.from_torch_state(
            optjx.adamw(0.01, amsgrad=True, weight_decay=0.1), state_dict, params
        )
    with pytest.raises(ValueError, match=r"eps_root=1e-08\) has no torch.optim.Adam"):
        tx = optjx.adam(0.01, amsgrad=True, weight_decay=0.1, eps_root=1e-8)
        optjx.from_torch_state(tx, state_dict, params)


def test_shape_and_count_mismatch(x64):
    params, state_dict = _adam_golden()
    tx = optjx.adam(0.01, amsgrad=True, weight_decay=0.1)
    wrong = {**params, "kernel": np.zeros((3, 2))}
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(2, 3\), optjx expects \(3, 2\)"):
        optjx.from_torch_state(tx, state_dict, wrong)
    with pytest.raises(ValueError, match="3 parameters .* params has 2 leaves"):
        optjx.from_torch_state(tx, state_dict, {"bias": params["bias"], "kernel": params["kernel"]})


def test_state_the_alias_does_not_keep(x64):
    params, state_dict = _adam_golden()
    tx = optjx.adam(0.01, amsgrad=False, weight_decay=0.1)
    state_dict["param_groups"][0]["amsgrad"] = False
    with pytest.raises(ValueError, match="'max_exp_avg_sq'"):
        optjx.from_torch_state(tx, state_dict, params)


def test_sgd_counter_without_torch_step(x64):
    config, params_k, params_km, grads, state_dict = _load(FOLDER / "sgd_momentum_dampening.npz")
    tx = _alias(config)
    assert int(optjx.from_torch_state(tx, state_dict, params_k)[1].count) == 1
    assert int(optjx.from_torch_state(tx, state_dict, params_k, step=4)[1].count) == 4
    written = optjx.to_torch_state(tx, optjx.from_torch_state(tx, state_dict, params_k), params_k)
    assert "step" not in written["state"][0]


def test_several_groups_with_the_alias_hyperparameters(x64):
    params, state_dict = _adam_golden()
    tx = optjx.adam(0.01, amsgrad=True, weight_decay=0.1)
    one = optjx.from_torch_state(tx, state_dict, params)
    (group,) = state_dict["param_groups"]
    split = {**state_dict, "param_groups": [{**group, "params": [0]}, {**group, "params": [1, 2]}]}
    two = optjx.from_torch_state(tx, split, params)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), one, two))
    split["param_groups"][1]["lr"] = 0.001
    with pytest.raises(ValueError, match=r"'lr' differs: torch's param_groups\[1\]"):
        optjx.from_torch_state(tx, split, params)


def test_schedule_and_array_read_at_torchs_step(x64):
    params, state_dict = _adam_golden()  # lr 0.01 after 4 steps
    state_dict["param_groups"][0]["initial_lr"] = 0.002  # left there by a torch scheduler
    for lr in (lambda count: 0.002 * (count + 1), jnp.asarray(0.01)):
        tx = optjx.adam(lr, amsgrad=True, weight_decay=0.1)
        state = optjx.from_torch_state(tx, state_dict, params)
        group = optjx.to_torch_state(tx, state, params)["param_groups"][0]
        np.testing.assert_allclose(group["lr"], 0.01, rtol=1e-15)
    late = optjx.adam(lambda count: 0.002 * count, amsgrad=True, weight_decay=0.1)
    with pytest.raises(ValueError, match="'lr' differs"):
        optjx.from_torch_state(late, state_dict, params)


def test_unknown_state_key_is_named(x64):
    params, state_dict = _adam_golden()
    state_dict["state"][2]["momentum_buffer"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"parameter 2 has \['momentum_buffer'\]"):
        optjx.from_torch_state(optjx.adam(0.01, amsgrad=True, weight_decay=0.1), state_dict, params)


def test_zero_momentum_buffer_is_torchs_none(x64):
    # An array momentum of 0 keeps optjx's buffer; torch keeps none for momentum=0.
    config, params_k, _, _, state_dict = _load(FOLDER / "sgd_plain.npz")
    tx = optjx.sgd(0.1, momentum=jnp.asarray(0.0))
    state = optjx.from_torch_state(tx, state_dict, params_k, step=4)
    assert optjx.to_torch_state(tx, state, params_k, step=4)["state"] == {}


def test_state_takes_the_params_dtype(x64):
    params, state_dict = _adam_golden()
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    state = optjx.from_torch_state(
        optjx.adam(0.01, amsgrad=True, weight_decay=0.1), state_dict, params32
    )
    floats = [leaf for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert {str(leaf.dtype) for leaf in floats} == {"float32"}
