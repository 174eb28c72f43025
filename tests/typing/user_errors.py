"""Mistakes a type checker must catch in a user's code, one per line whose comment says
``expect-error``: ``test_user_script.py`` runs ``mypy --strict`` on this file and
expects an error on exactly those lines (a type that decays to ``Any`` catches none)."""

from __future__ import annotations

import jax.numpy as jnp

import optjx

params = {"w": jnp.zeros(3)}
optjx.adam(learning_rate="1e-3")  # expect-error: a string is not a Hyperparameter
optjx.lbfgs(line_search_fn="wolfe")  # expect-error: not a Literal of line_search_fn
stopper = optjx.early_stopping(3, mode="maximum")  # expect-error: mode is "min" or "max"
stop = stopper.init(params)
stop = stopper.update(stop, "0.97", params)  # expect-error: the value is a number or array
label: str = optjx.schedules.cosine(1e-3, 100)(0)  # expect-error: a schedule returns an Array
