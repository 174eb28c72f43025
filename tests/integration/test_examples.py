"""Every example runs as a user runs it (``--quick``) and draws its pictures.

The quickstart, the README's main job, runs exactly as the README runs it, in a process of
its own with XLA's defaults. The others run one after another in one process per way they
set JAX's global configuration (the float64 scripts apart from the rest), each as
``python SCRIPT`` would run it (``_run_examples.py``: ``runpy`` as ``__main__``, its own
arguments, folder and output): JAX, Flax, scikit-learn and matplotlib are imported, and
the small eager operations compiled, once per process instead of once per script. They
compile with the session's XLA settings (``tests/conftest.py``; rounding may differ from
XLA's defaults, nothing else): the float64 scripts, mostly compiling full-batch updates,
then take 36 CPU seconds instead of 54. Each script prints what it prints on its own.

Each PNG is opened and checked against the size its figure was made with (every example
saves at 100 dpi without tight bounding boxes, so ``figsize`` fixes the pixels) and for
actual content: a blank or single-colour canvas fails. The quickstart, the README's main
job, runs at its default length and must reach >= 95% test accuracy with the slow weights.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cards
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _selection import selected

import optjx

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
DRIVER = Path(__file__).resolve().parent / "_run_examples.py"
TIMEOUT_S = 240

# script -> (extra arguments, {png name: (height, width)})
EXAMPLES = {
    "quickstart.py": ([], {"quickstart.png": (400, 1000)}),
    "flax_linen_train_state.py": (["--quick"], {"flax_linen_train_state.png": (400, 1000)}),
    "flax_nnx.py": (["--quick"], {"flax_nnx.png": (400, 1000)}),
    "compare_optimizers.py": (["--quick"], {"compare_optimizers.png": (500, 900)}),
    "lr_sweep.py": (["--quick"], {"lr_sweep.png": (450, 1100)}),
    "paths_2d.py": (
        ["--quick"],
        {
            "paths_momentum.png": (450, 1100),
            "paths_noise.png": (450, 1400),
            "paths_adaptive.png": (450, 1100),
            "paths_radam.png": (450, 1100),
            "paths_lookahead.png": (450, 1100),
        },
    ),
    "bias_correction.py": (["--quick"], {"bias_correction.png": (450, 1200)}),
    "schedules.py": (
        ["--quick"],
        {"schedules.png": (1080, 1600), "schedules_torch.png": (1800, 1600)},
    ),
    "full_batch.py": (
        ["--quick"],
        {
            "full_batch_digits.png": (800, 1200),
            "full_batch_sparse.png": (450, 1500),
            "full_batch_nnls.png": (450, 1500),
        },
    ),
    "fine_tune.py": (["--quick"], {"fine_tune.png": (450, 1600)}),
    "schedule_free.py": (["--quick"], {"schedule_free.png": (400, 1500)}),
    "swa_onecycle.py": (["--quick"], {"swa_onecycle.png": (450, 1600)}),
    "least_squares.py": (["--quick"], {"least_squares.png": (900, 1200)}),
}


def _environment(xla_defaults: bool = False) -> dict:
    """The environment of an example's process: the session's XLA settings (conftest.py)
    without its 8 virtual CPU devices, which are for the multi-device tests (a user's run
    has the plain default); with ``xla_defaults``, no XLA flags at all, as a user runs it."""
    env = dict(os.environ)
    flags = [
        flag
        for flag in env.pop("XLA_FLAGS", "").split()
        if not flag.startswith("--xla_force_host_platform_device_count")
    ]
    if flags and not xla_defaults:
        env["XLA_FLAGS"] = " ".join(flags)
    env["JAX_PLATFORMS"] = "cpu"
    env["MPLBACKEND"] = "Agg"
    # Import this checkout's optjx even where it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(EXAMPLES_DIR.parent), env.get("PYTHONPATH")])
    )
    return env


def _run(script: str, out: Path):
    """``python SCRIPT ARGS --out OUT`` in a process of its own."""
    args, _ = EXAMPLES[script]
    command = [sys.executable, str(EXAMPLES_DIR / script), *args, "--out", str(out)]
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=_environment(xla_defaults=True),
            cwd=out,
        )
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(
            command, -1, e.stdout or "", f"timed out after {TIMEOUT_S} s"
        )


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _run_together(scripts: list[str], outs: dict[str, Path], folder: Path) -> dict:
    """The scripts one after another in one process (``_run_examples.py``)."""
    spec = [
        {"script": s, "args": [*EXAMPLES[s][0], "--out", str(outs[s])], "out": str(outs[s])}
        for s in scripts
    ]
    (folder / "spec.json").write_text(json.dumps(spec))
    timeout = TIMEOUT_S + 30 * len(scripts)
    command = [sys.executable, str(DRIVER), str(EXAMPLES_DIR), str(folder / "spec.json")]
    try:
        driver = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=_environment()
        )
        ended = f"the process running it exited with {driver.returncode}:\n{driver.stderr[-3000:]}"
    except subprocess.TimeoutExpired:
        ended = f"timed out after {timeout} s"
    results = {}
    for run in spec:
        out = Path(run["out"])
        code = _text(out / "returncode")  # not written: the process ended before the script
        results[run["script"]] = subprocess.CompletedProcess(
            [run["script"], *run["args"]],
            int(code) if code else -1,
            _text(out / "stdout.txt"),
            _text(out / "stderr.txt") if code else ended,
        )
    return results


def _configuration(script: str) -> tuple[str, ...]:
    """How the script changes JAX's global configuration (``jax.config.update`` lines):
    scripts share a process only with scripts that change it the same way."""
    lines = (EXAMPLES_DIR / script).read_text().splitlines()
    return tuple(sorted(line.strip() for line in lines if "jax.config.update" in line))


# The script each test that is not parametrized by ``script`` reads.
READS = {
    "test_quickstart_reaches_95_percent_with_slow_weights": "quickstart.py",
    "test_compare_optimizers_covers_every_alias": "compare_optimizers.py",
    "test_schedule_free_example_shows_the_warm_up_fix": "schedule_free.py",
}


def _needed(request) -> list[str]:
    """The scripts the selected tests of this module read (``-k quickstart`` runs one)."""
    needed = set(selected(request, "script"))
    for item in request.session.items:
        if getattr(item, "module", None) is request.module:
            if getattr(item, "originalname", item.name) in READS:
                needed.add(READS[item.originalname])
    return [script for script in EXAMPLES if script in needed]


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """The examples the selected tests read: the quickstart on its own, the others in one
    process per configuration; two processes at a time."""
    scripts = _needed(request)
    outs = {script: tmp_path_factory.mktemp(script.removesuffix(".py")) for script in scripts}
    groups: dict[tuple[str, ...], list[str]] = {}
    for script in scripts:
        if script != "quickstart.py":
            groups.setdefault(_configuration(script), []).append(script)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(_run_together, group, outs, tmp_path_factory.mktemp("together"))
            for group in sorted(groups.values(), key=len, reverse=True)
        ]
        if "quickstart.py" in outs:  # as the README runs it
            futures.append(
                pool.submit(lambda: {"quickstart.py": _run("quickstart.py", outs["quickstart.py"])})
            )
        results = {k: v for future in futures for k, v in future.result().items()}
    return {script: (results[script], outs[script]) for script in scripts}


@pytest.mark.parametrize("script", list(EXAMPLES))
def test_example_runs_and_draws(script, runs):
    import matplotlib.image

    result, out = runs[script]
    assert result.returncode == 0, (
        f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    for name, (height, width) in EXAMPLES[script][1].items():
        path = out / name
        assert path.is_file(), f"{script} did not write {name}"
        image = matplotlib.image.imread(path)
        assert image.shape[:2] == (height, width), (name, image.shape)
        rgb = np.round(image[..., :3].reshape(-1, 3) * 255).astype(np.int64)
        # Content, not a blank canvas: a real figure has many distinct colours and a good
        # share of non-white pixels (axes, text, curves).
        assert len(np.unique(rgb @ np.array([65536, 256, 1]))) > 50, name
        assert np.mean(np.any(rgb < 230, axis=1)) > 0.02, name


def test_quickstart_reaches_95_percent_with_slow_weights(runs):
    result, _ = runs["quickstart.py"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lookahead(radam(cosine(" in result.stdout
    row = re.search(r"slow weights \(evaluated\)\s+([0-9.]+)\s+([0-9.]+)", result.stdout)
    assert row, result.stdout
    train_acc, test_acc = float(row.group(1)), float(row.group(2))
    assert test_acc >= 0.95, result.stdout
    assert train_acc >= 0.95, result.stdout
    assert re.search(r"^\s*500\s+[0-9,]+\s", result.stdout, re.M), result.stdout  # steps, steps/s


def test_compare_optimizers_covers_every_alias(runs):
    result, _ = runs["compare_optimizers.py"]
    assert result.returncode == 0, result.stderr[-3000:]
    for name in [*cards.EXAMPLES, "lookahead"]:
        assert re.search(rf"^{name}\s+[0-9.]+\s+[0-9.]+", result.stdout, re.M), (
            name,
            result.stdout,
        )


def test_schedule_free_example_shows_the_warm_up_fix(runs):
    result, _ = runs["schedule_free.py"]
    assert result.returncode == 0, result.stderr[-3000:]
    for name, bound in [("optjx.adamw_schedule_free", 1e-12), ("optax.contrib", None)]:
        row = re.search(
            rf"^{re.escape(name)}\S*\s+([0-9.e+-]+)\s+([0-9.e+-]+)", result.stdout, re.M
        )
        assert row, result.stdout
        first, last = float(row.group(1)), float(row.group(2))
        if bound is None:  # optax's first update does nothing: off by the whole first step
            assert first > 1e-3 and last > 1e-3, result.stdout
        else:
            assert first < bound and last < bound, result.stdout
    assert re.search(r"^schedule-free, at x\s+[0-9.]+\s+0\.9[5-9]", result.stdout, re.M), (
        result.stdout
    )


def test_swa_onecycle_example_recomputes_the_statistics(runs):
    result, _ = runs["swa_onecycle.py"]
    assert result.returncode == 0, result.stderr[-3000:]
    test_accuracy = {
        name: float(re.search(rf"^{name}\s+[0-9.]+\s+([0-9.]+)", result.stdout, re.M).group(1))
        for name in ("averaged, training statistics", "averaged, recomputed statistics")
    }
    assert test_accuracy["averaged, recomputed statistics"] > 0.9, result.stdout
    assert (
        test_accuracy["averaged, recomputed statistics"]
        > test_accuracy["averaged, training statistics"]
    ), result.stdout


# The examples that let a user pick an optimizer by name (quickstart, compare_optimizers,
# lr_sweep) share one written-out table, examples/_optimizers.py (a user reads the
# optimizer there); it must agree with the cards' example defaults.
TABLES = ["_optimizers"]


def _example_module(name):
    sys.path.insert(0, str(EXAMPLES_DIR))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES_DIR))


def _first_updates(tx):
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.ones(3)}
    state = tx.init(params)
    out = []
    for t in range(3):
        grads = jax.tree.map(lambda p, t=t: jnp.sin(p * (t + 1.0)), params)
        updates, state = tx.update(grads, state, params)
        out.append(updates)
    return jax.tree.structure(state), out


@pytest.mark.parametrize("example", TABLES)
def test_example_optimizer_tables_match_the_cards(example):
    module = _example_module(example)
    assert list(module.OPTIMIZERS) == list(cards.EXAMPLES), example
    assert module.CONSTANT_RATE == {n for n, e in cards.EXAMPLES.items() if not e.scheduled}
    for name, card_example in cards.EXAMPLES.items():
        peak, make = module.OPTIMIZERS[name]
        assert peak == card_example.learning_rate, (example, name)
        rate = 0.05 if name in module.CONSTANT_RATE else optjx.schedules.cosine(0.05, 10)
        ours, theirs = _first_updates(make(rate)), _first_updates(card_example.make(rate))
        assert ours[0] == theirs[0], (example, name)
        for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(theirs[1]), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{example}: {name}")


assert set(READS) <= set(globals()), (
    f"READS names tests that do not exist: {set(READS) - set(globals())}"
)
