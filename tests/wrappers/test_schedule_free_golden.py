"""Schedule-free optimizers against the ``schedulefree`` 1.4.1 reference, step for step.

``tests/golden/generate_schedule_free.py`` ran ``SGDScheduleFree``, ``AdamWScheduleFree``,
``AdamWScheduleFreePaper``, ``RAdamScheduleFree`` and ``ScheduleFreeWrapper`` (around
``torch.optim.SGD`` and ``RMSprop``) in float64 on four leaves, and stored the gradients,
the params ``y`` after every step and the evaluation point ``x`` at every step. The optjx
factory named in each file replays the gradients under ``jax.jit``; ``y`` and
``schedule_free_eval_params`` must match to rtol 1e-9. Neither torch nor schedulefree is
imported here.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "schedule_free"
FILES = sorted(GOLDEN.glob("*.npz"))
RTOL, ATOL = 1e-9, 1e-13

DIRECTIONS = {
    "identity": optax.identity,
    "decay_at_z_0.05": lambda: optjx.add_decayed_weights(0.05),
    "rms_0.99": lambda: optjx.scale_by_rms(0.99, eps=1e-8),
}


def load(path):
    with np.load(path) as data:
        config = json.loads(str(data["config"]))
        tree = {
            part: {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(part + "/")}
            for part in ("grads", "y", "x")
        }
    return config, tree["grads"], tree["y"], tree["x"]


def optimizer(config):
    kwargs = dict(config["optjx_kwargs"])
    factory = getattr(optjx, config["optjx"])
    if "direction" in kwargs:
        return factory(DIRECTIONS[kwargs.pop("direction")](), **kwargs)
    return factory(**kwargs)


def test_every_reference_class_and_case_is_covered():
    configs = [load(p)[0] for p in FILES]
    assert {c["reference"] for c in configs} == {
        "SGDScheduleFree", "AdamWScheduleFree", "AdamWScheduleFreePaper",
        "RAdamScheduleFree", "ScheduleFreeWrapper",
    }  # fmt: skip
    for reference in {c["reference"] for c in configs}:
        kwargs = [c["reference_kwargs"] for c in configs if c["reference"] == reference]
        assert any(k.get("r") == 0.75 for k in kwargs), reference
        assert any(k.get("weight_decay", k.get("weight_decay_at_y")) for k in kwargs), reference
        if reference != "RAdamScheduleFree":  # RAdam's rectification is its warm-up
            assert any(k.get("warmup_steps") for k in kwargs), reference


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_trajectory_matches_reference(path, x64):
    config, grads, ys, xs = load(path)
    tx = optimizer(config)
    params = {k: jnp.asarray(v[0]) for k, v in ys.items()}
    state = tx.init(params)

    def step(carry, g):
        params, state = carry
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, optjx.schedule_free_eval_params(state, params))

    # One compiled scan over the whole trajectory: the test's time is compilation.
    run = jax.jit(lambda params, state, grads: jax.lax.scan(step, (params, state), grads)[1])
    y_run, x_run = run(params, state, {k: jnp.asarray(v) for k, v in grads.items()})
    for k in ys:
        where = f"{path.stem} leaf {k} (axis 0: step - 1)"
        np.testing.assert_allclose(y_run[k], ys[k][1:], RTOL, ATOL, err_msg="y " + where)
        np.testing.assert_allclose(x_run[k], xs[k][1:], RTOL, ATOL, err_msg="x " + where)
