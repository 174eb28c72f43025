"""optjx type-checks in a user's code, installed as the README installs it.

``mypy --strict`` runs on two scripts copied out of the repository (a user's project), with
no ``PYTHONPATH`` or ``MYPYPATH``: mypy finds optjx only through the installed package, so
an editable install that type checkers cannot see (an import hook instead of a ``.pth``
path) fails here. ``user_script.py`` (a Flax loop, schedules, parameter groups, early
stopping, L-BFGS) must check with no error; ``user_errors.py`` must get an error on
exactly its lines marked ``# expect-error``, which fails if optjx's types decay to
``Any``. The mypy cache lives in ``.mypy_cache/`` at the repository root, so a second run
takes seconds.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = ("user_script.py", "user_errors.py")
ERROR_LINE = re.compile(r"^(?P<file>[\w.]+):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory):
    """``{script name: [(line, message), ...]}`` from one ``mypy --strict`` run."""
    for module in ("mypy", "flax"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")
    project = tmp_path_factory.mktemp("user_project")
    for name in SCRIPTS:
        shutil.copy(HERE / name, project / name)
    cache = ROOT / ".mypy_cache" / "typed-user"
    (project / "mypy.ini").write_text(f"[mypy]\nstrict = True\ncache_dir = {cache}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", *SCRIPTS],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    if 'module named "optjx"' in output:
        pytest.fail(
            "mypy cannot see the installed optjx. Install it as the README does "
            '(pip install -e ".[test]"): pyproject.toml maps the packages so that the '
            "editable install is a .pth path; an install made before that mapping (an "
            f"import hook) must be redone.\n{output}"
        )
    errors: dict[str, list[tuple[int, str]]] = {name: [] for name in SCRIPTS}
    for line in output.splitlines():
        match = ERROR_LINE.match(line)
        if match:
            errors[match["file"]].append((int(match["line"]), match["message"]))
    assert result.returncode in (0, 1), output  # 2: mypy itself failed
    return errors


def test_user_script_type_checks_strict(mypy_errors):
    assert mypy_errors["user_script.py"] == []


def test_type_errors_in_user_code_are_reported(mypy_errors):
    lines = (HERE / "user_errors.py").read_text().splitlines()
    expected = {n for n, text in enumerate(lines, start=1) if "# expect-error" in text}
    assert len(expected) == 5
    reported = {line for line, _ in mypy_errors["user_errors.py"]}
    assert reported == expected, mypy_errors["user_errors.py"]
