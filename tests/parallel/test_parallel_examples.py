"""The data-parallel examples run with --quick and report agreement (subprocess, bounded)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args, timeout=180):
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    try:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=EXAMPLES,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{args[0]} ran past {timeout} s:\n{error.stdout}\n{error.stderr}")
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout


def test_data_parallel_example_agrees_three_ways(tmp_path):
    out = run("data_parallel.py", "--quick", "--out", str(tmp_path))
    assert (tmp_path / "data_parallel.png").stat().st_size > 10_000
    assert "8 devices" in out
    assert "they agree" in out
    for mechanism in ("pmap", "shard_map", "jit, sharded state"):
        assert mechanism in out
    assert "~10M-param model" in out


@pytest.mark.slow
def test_multihost_example_runs_as_two_local_processes(tmp_path):
    out = run(
        "multihost.py",
        "--local-processes",
        "2",
        "--quick",
        "--timeout",
        "120",
        "--out",
        str(tmp_path),
        timeout=150,
    )
    assert out.count("process ") >= 2
    assert "identical params" in (tmp_path / "multihost.txt").read_text()
    assert "all 2 processes hold identical params" in out
