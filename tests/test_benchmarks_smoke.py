"""Keep ``benchmarks/run.py --quick`` working: it runs, prints its tables and writes ratios.

Nothing here is timed or compared against a threshold: timings belong to the benchmark,
not to the test suite. The run writes to a temporary file so the committed
``benchmarks/results.json`` is left alone. One tree shape (a single leaf) and three timed
samples exercise every section and every case at half the cost of ``--quick`` alone; the
100- and 1000-leaf trees only change the numbers.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_prints_table_and_writes_ratios(tmp_path):
    output = tmp_path / "results.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"),
            *("--leaves", "1", "--reps", "3", "--output", str(output)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "Step and compile time" in out
    assert "| optimizer" in out and "adam" in out
    assert "achieved bandwidth / copy bandwidth" in out

    results = json.loads(output.read_text())
    assert results["machine"]["devices"], "the devices JAX ran on are recorded"
    names = {row["name"] for row in results["step"]}
    assert {"sgd_momentum", "rmsprop", "adam", "adamw"} <= names
    for row in results["step"]:
        for key in ("step_ratio", "compile_ratio", "step_cpu_ratio", "compile_cpu_ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["name"], key, row[key])
    for row in results["memory"]:
        assert row["bytes_per_param_optjx"] > 0
    for row in results["bandwidth"]:
        assert 0 < row["fraction_optjx"] and math.isfinite(row["fraction_optjx"])
    assert isinstance(results["goals"], list) and results["goals"]
