r"""Golden files for the full-batch methods (``tests/full_batch``), replayed without torch.

Needs torch 2.13 (CPU) and scipy; run from the repository root::

    python tests/golden/generate_full_batch.py     # or tests/golden/generate.py (runs both)

Writes, in float64:

* ``lbfgs_<name>.npz``: a ``torch.optim.LBFGS`` trajectory: ``config`` (JSON: problem,
  torch keywords, steps), ``data/<key>`` (the problem's data), ``params/<leaf>`` (before
  the first ``step`` and after each, shape ``(steps + 1, ...)``) and per step ``loss`` (what
  ``step`` returned), ``func_evals``, ``n_iter`` (torch's state after the step), ``t``
  and ``pairs`` (``len(state["old_dirs"])``).
* ``strong_wolfe_cases.npz``: calls of ``torch.optim.lbfgs._strong_wolfe``: inputs
  ``x0, d, t0, max_ls`` per case and outputs ``t, f, g, evals``, on the one-dimensional
  functions of Moré & Thuente (1994, table 5.1, functions 1-6) and on Rosenbrock.
* ``cg_scipy_minimisers.npz``: ``scipy.optimize.minimize(method="CG")``'s minimisers of
  the Rosenbrock and logistic-regression problems, with the starting points.

The problems (``rosenbrock``, ``logistic``, ``double_well``) are written here in torch and
in ``tests/full_batch/_problems.py`` in JAX from the same formulas.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import scipy.optimize
import torch
from torch.optim.lbfgs import _strong_wolfe

OUT = pathlib.Path(__file__).resolve().parent


def save_npz(path, arrays):
    from generate import save_npz as save  # byte-stable writer shared with generate.py

    save(path, arrays)


# --------------------------------------------------------------------------- problems


def logistic_data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 4))
    y = (x @ np.array([1.5, -2.0, 0.5, 0.0]) + 0.3 + rng.normal(size=60) > 0).astype(np.float64)
    return {"x": x, "y": y}


def loss_fn(problem: str, data):
    """The torch loss of a params dict (keys sorted as JAX sorts them)."""
    if problem == "rosenbrock":
        return lambda p: torch.sum(
            100 * (p["x"][1:] - p["x"][:-1] ** 2) ** 2 + (1 - p["x"][:-1]) ** 2
        )
    if problem == "logistic":
        x, y = torch.tensor(data["x"]), torch.tensor(data["y"])

        def loss(p):
            z = x @ p["w"] + p["b"]
            nll = torch.mean(torch.logaddexp(z, torch.zeros_like(z)) - y * z)
            return nll + 0.5 * 1e-2 * torch.sum(p["w"] ** 2)

        return loss
    if problem == "double_well":  # negative curvature near 0: pairs with y.s < 0
        return lambda p: torch.sum(0.25 * p["x"] ** 4 - p["x"] ** 2 + 0.1 * p["x"])
    raise ValueError(problem)


START = {
    "rosenbrock2": {"x": [-1.2, 1.0]},
    "rosenbrock5": {"x": [-1.2, 1.0, -0.5, 0.8, 0.3]},
    "rosenbrock10": {"x": [-1.2, 1.0, -0.5, 0.8, 0.3, 0.0, 1.5, -0.7, 0.2, 0.9]},
    "logistic": {"w": [0.0, 0.0, 0.0, 0.0], "b": 0.0},
    "double_well": {"x": [0.05, -0.1, 0.02]},
}

# (name, problem, start, torch keywords, steps)
LBFGS_CONFIGS = [
    ("lbfgs_rosenbrock2_wolfe", "rosenbrock", "rosenbrock2", {"line_search_fn": "strong_wolfe"}, 3),
    ("lbfgs_rosenbrock5_fixed", "rosenbrock", "rosenbrock5", {"max_iter": 10}, 3),
    ("lbfgs_rosenbrock10_wolfe_history3", "rosenbrock", "rosenbrock10",
     {"line_search_fn": "strong_wolfe", "history_size": 3, "max_iter": 8}, 3),
    ("lbfgs_rosenbrock5_max_iter1", "rosenbrock", "rosenbrock5", {"max_iter": 1}, 12),
    ("lbfgs_rosenbrock5_wolfe_max_iter1", "rosenbrock", "rosenbrock5",
     {"max_iter": 1, "line_search_fn": "strong_wolfe"}, 12),
    ("lbfgs_rosenbrock5_lr0.5", "rosenbrock", "rosenbrock5", {"lr": 0.5, "max_iter": 7}, 4),
    ("lbfgs_rosenbrock5_wolfe_lr0.5_max_eval9", "rosenbrock", "rosenbrock5",
     {"lr": 0.5, "line_search_fn": "strong_wolfe", "max_iter": 6, "max_eval": 9}, 4),
    ("lbfgs_logistic_wolfe", "logistic", "logistic", {"line_search_fn": "strong_wolfe"}, 2),
    ("lbfgs_logistic_fixed_history2", "logistic", "logistic", {"history_size": 2, "max_iter": 8}, 3),
    ("lbfgs_double_well_skips", "double_well", "double_well", {"max_iter": 6}, 3),
    ("lbfgs_logistic_tolerance_grad_at_once", "logistic", "logistic", {"tolerance_grad": 1.0}, 2),
    # torch's line search keeps its own tolerance_change (1e-9): a large one for LBFGS must
    # not cut the zoom short.
    ("lbfgs_rosenbrock5_wolfe_lr100_tolerance_change3", "rosenbrock", "rosenbrock5",
     {"lr": 100.0, "line_search_fn": "strong_wolfe", "tolerance_change": 3.0}, 3),
]  # fmt: skip


def run_lbfgs(problem, start, kwargs, steps):
    data = logistic_data() if problem == "logistic" else {}
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in sorted(START[start].items())}  # fmt: skip
    loss = loss_fn(problem, data)
    opt = torch.optim.LBFGS(list(params.values()), **kwargs)

    def closure():
        opt.zero_grad()
        value = loss(params)
        value.backward()
        return value

    history = {k: [p.detach().numpy().copy()] for k, p in params.items()}
    record = {key: [] for key in ("loss", "func_evals", "n_iter", "t", "pairs")}
    for _ in range(steps):
        record["loss"].append(float(opt.step(closure).detach()))
        state = opt.state[opt._params[0]]
        record["func_evals"].append(state["func_evals"])
        record["n_iter"].append(state["n_iter"])
        record["t"].append(float(state.get("t", 0.0)))
        record["pairs"].append(len(state.get("old_dirs", [])))
        for k, p in params.items():
            history[k].append(p.detach().numpy().copy())
    arrays = {f"data/{k}": v for k, v in data.items()}
    arrays.update({f"params/{k}": np.stack(v) for k, v in history.items()})
    arrays.update({k: np.asarray(v) for k, v in record.items()})
    return arrays


# ------------------------------------------------------------------ line search cases


def more_thuente(number: int):
    """phi(alpha) of Moré & Thuente (1994), table 5.1, functions 1-6, as torch functions."""
    if number == 1:
        return lambda a: -a / (a**2 + 2.0)
    if number == 2:
        return lambda a: (a + 0.004) ** 5 - 2.0 * (a + 0.004) ** 4
    if number == 3:
        beta, el = 0.01, 39.0

        def phi(a):
            base = torch.where(a <= 1 - beta, 1 - a, torch.where(
                a >= 1 + beta, a - 1, (a - 1) ** 2 / (2 * beta) + beta / 2))  # fmt: skip
            return base + 2 * (1 - beta) / (el * math.pi) * torch.sin(el * math.pi / 2 * a)

        return phi
    b1, b2 = {4: (0.001, 0.001), 5: (0.01, 0.001), 6: (0.001, 0.01)}[number]

    def gamma(b):
        return math.sqrt(1 + b**2) - b

    return lambda a: (
        gamma(b1) * torch.sqrt((1 - a) ** 2 + b2**2) + gamma(b2) * torch.sqrt(a**2 + b1**2)
    )


def strong_wolfe_cases():
    """(function id, x0, d, t0, max_ls, c2): ids 1-6 Moré-Thuente (x0 = 0, d = 1), 0 Rosenbrock."""
    cases = []
    for number in range(1, 7):
        for t0 in (1e-3, 1e-1, 1e1, 1e3):
            cases.append((number, [0.0], [1.0], t0, 25, 0.9))
            cases.append((number, [0.0], [1.0], t0, 25, 0.1))
    x0 = START["rosenbrock5"]["x"]
    for t0, max_ls in ((1.0, 25), (1e-3, 25), (30.0, 25), (1.0, 2), (1.0, 1), (1.0, 0), (0.1, 3)):
        cases.append((0, x0, None, t0, max_ls, 0.9))
    return cases


def run_strong_wolfe():
    rosen = loss_fn("rosenbrock", {})
    out = {k: [] for k in ("function", "x0", "d", "t0", "max_ls", "c2", "t", "f", "g", "evals")}
    width = 5
    for number, x0, d, t0, max_ls, c2 in strong_wolfe_cases():
        if number:
            phi = more_thuente(number)
            fn = lambda x, phi=phi: phi(x[0])  # noqa: E731
        else:
            fn = lambda x: rosen({"x": x})  # noqa: E731

        def value_and_grad(x, fn=fn):
            x = x.detach().clone().requires_grad_(True)
            value = fn(x)
            value.backward()
            return float(value), x.grad.detach().clone()

        x = torch.tensor(x0, dtype=torch.float64)
        f, g = value_and_grad(x)
        direction = -g if d is None else torch.tensor(d, dtype=torch.float64)

        def obj_func(x, t, d, value_and_grad=value_and_grad):
            return value_and_grad(x + t * d)

        f_new, g_new, t, evals = _strong_wolfe(obj_func, x, t0, direction, f, g,
                                               g.dot(direction), c2=c2, max_ls=max_ls)  # fmt: skip
        pad = lambda v: np.pad(np.asarray(v, np.float64), (0, width - len(v)))  # noqa: E731
        for key, value in (("function", number), ("x0", pad(x0)), ("d", pad(direction.numpy())),
                           ("t0", t0), ("max_ls", max_ls), ("c2", c2), ("t", float(t)),
                           ("f", float(f_new)), ("g", pad(g_new.numpy())), ("evals", evals)):  # fmt: skip
            out[key].append(value)
    return {k: np.asarray(v) for k, v in out.items()}


# ---------------------------------------------------------------- scipy CG minimisers


def scipy_minimisers():

    arrays = {}
    for name, problem, start in (("rosenbrock", "rosenbrock", "rosenbrock5"),
                                 ("logistic", "logistic", "logistic")):  # fmt: skip
        for k, v in _scipy_cg_minimiser(problem, start).items():
            arrays[f"{name}/{k}"] = np.asarray(v)
    return arrays


def _scipy_cg_minimiser(problem, start):
    """scipy's CG minimiser of ``problem`` from ``START[start]``, as a params dict."""
    data = logistic_data() if problem == "logistic" else {}
    loss = loss_fn(problem, data)
    keys = sorted(START[start])
    shapes = [np.shape(START[start][k]) for k in keys]
    sizes = [int(np.prod(s)) for s in shapes]

    def unflatten(v):
        out, i = {}, 0
        for k, s, n in zip(keys, shapes, sizes, strict=True):
            out[k] = v[i : i + n].reshape(s)
            i += n
        return out

    def fun(v):
        t = torch.tensor(v, requires_grad=True)
        value = loss(unflatten(t))
        (grad,) = torch.autograd.grad(value, t)
        return float(value), grad.numpy()

    x0 = np.concatenate([np.ravel(START[start][k]) for k in keys]).astype(np.float64)
    res = scipy.optimize.minimize(fun, x0, jac=True, method="CG",
                                  options={"gtol": 1e-10, "maxiter": 100_000})  # fmt: skip
    assert np.max(np.abs(fun(res.x)[1])) < 1e-8, (problem, res)
    return unflatten(res.x)


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_default_dtype(torch.float64)
    for name, problem, start, kwargs, steps in LBFGS_CONFIGS:
        arrays = run_lbfgs(problem, start, kwargs, steps)
        config = {"name": name, "problem": problem, "torch_kwargs": kwargs, "steps": steps,
                  "torch_version": torch.__version__}  # fmt: skip
        arrays["config"] = np.array(json.dumps(config, sort_keys=True))
        save_npz(OUT / f"{name}.npz", arrays)
        print(f"{name}.npz: pairs {arrays['pairs'].tolist()} n_iter {arrays['n_iter'].tolist()} "
              f"func_evals {arrays['func_evals'].tolist()} loss {arrays['loss'][-1]:.3g}")  # fmt: skip
    save_npz(OUT / "strong_wolfe_cases.npz", run_strong_wolfe())
    save_npz(OUT / "cg_scipy_minimisers.npz", scipy_minimisers())
    print("strong_wolfe_cases.npz, cg_scipy_minimisers.npz")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(OUT))
    main()
