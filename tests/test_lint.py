"""The repository is lint-clean and formatted, with the ruff version pyproject.toml pins.

``ruff check`` and ``ruff format --check`` run on the whole repository with the
configuration in pyproject.toml. A different ruff release adds rules and changes the
format, so the installed version must be the pinned one (the ``test`` and ``dev`` extras
install it): run ``ruff format .`` and ``ruff check --fix .`` with that version to fix a
failure here.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ruff_is_the_pinned_version():
    pins = re.findall(r'"ruff==([\w.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins and len(set(pins)) == 1, f"one ruff pin in the test and dev extras: {pins}"
    installed = _ruff("--version").stdout.split()[-1]
    assert installed == pins[0], f"ruff {installed} installed, pyproject.toml pins {pins[0]}"


def test_ruff_check_is_clean():
    result = _ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr
