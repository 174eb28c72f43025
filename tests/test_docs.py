"""The documentation site builds with warnings as errors, and optjx type-checks.

A broken page, a dead link or cross-reference, or a docstring that fails to render fails
``mkdocs build --strict``; ``mypy optjx`` runs with the configuration in pyproject.toml.
Both tools come with the ``docs`` and ``test`` extras; the tests skip, naming what is
missing, only where they are not installed.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


def _run(args: list[str], tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # The worktree's optjx, whatever is installed; no banner noise from mkdocs-material.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_MKDOCS_2_WARNING"] = "1"
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        _require(module)
    site = tmp_path / "site"
    result = _run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The API reference rendered the docstrings, math included.
    page = (site / "api" / "optimizers" / "index.html").read_text()
    assert 'id="optjx.adam"' in page and "arithmatex" in page
    assert (site / "javascripts" / "katex" / "katex.min.js").exists()


def test_mypy_passes(tmp_path):
    _require("mypy")
    # The cache in .mypy_cache/ at the repository root: a second run takes seconds.
    result = _run([sys.executable, "-m", "mypy", "optjx"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _public_functions():
    import inspect

    import optjx

    for module in (optjx, optjx.schedules, optjx.parallel):
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(obj):
                continue
            if obj.__module__.startswith("optjx"):
                yield f"{module.__name__}.{name}", obj


def test_every_public_function_documents_its_arguments_and_result():
    # help(optjx.X) and the site show one text: the function's own docstring.
    functions = dict(_public_functions())
    assert len(functions) > 40
    for name, function in functions.items():
        doc = function.__doc__ or ""
        assert "Returns:" in doc, name
        if function.__code__.co_argcount + function.__code__.co_kwonlyargcount:
            assert "Args:" in doc, name


def test_transformation_docstrings_carry_rule_and_example():
    import optjx

    for name in ("adam", "sgd", "radam", "scale_by_adam", "trace", "lookahead", "polyak_averaging"):
        doc = getattr(optjx, name).__doc__
        assert (
            "$$" in doc and "Examples:" in doc and "Differences from PyTorch and optax:" in doc
        ), name
