"""Two processes on 127.0.0.1, two CPU devices each, one mesh of four: JAX's own
multi-controller runtime (``jax.distributed`` with gloo) carries optjx unchanged.

Both processes must end with identical params, equal (float64, ``rtol=1e-9``) to this
process's one-device run on the full batch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _parallel_problem import MULTIPROCESS, assert_tree_close, reference

HERE = Path(__file__).resolve().parent
PROCESSES = 2
TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(tmp_path) -> list[dict]:
    port = free_port()
    env = dict(os.environ)
    # The child's own device count: replaces the 8 devices conftest gives this process.
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env["JAX_PLATFORMS"] = "cpu"
    outputs = [tmp_path / f"process{i}.npz" for i in range(PROCESSES)]
    logs = [open(tmp_path / f"process{i}.log", "w+b") for i in range(PROCESSES)]  # noqa: SIM115
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_multiprocess_worker.py"),
                str(port),
                str(i),
                str(PROCESSES),
                str(outputs[i]),
            ],
            cwd=HERE,
            env=env,
            stdout=logs[i],
            stderr=subprocess.STDOUT,
        )
        for i in range(PROCESSES)
    ]
    try:
        for worker in workers:
            worker.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    texts = []
    for log in logs:
        log.seek(0)
        texts.append(log.read().decode(errors="replace")[-3000:])
        log.close()
    for i, worker in enumerate(workers):
        assert worker.returncode == 0, f"process {i} exited with {worker.returncode}:\n{texts[i]}"
    return [dict(np.load(path)) for path in outputs]


@pytest.mark.slow
def test_two_processes_train_as_one_device_on_the_full_batch(tmp_path, x64):
    results = run_workers(tmp_path)
    for result in results:
        assert result["devices"].tolist() == [4, 2]  # 4 devices in the mesh, 2 per process
        assert int(result["split_leaves"]) >= 6  # ZeRO: moments and slow weights are split
    keys = [k for k in results[0] if "/" in k]
    for key in keys:
        assert np.array_equal(results[0][key], results[1][key]), f"processes differ at {key}"
    (name,) = MULTIPROCESS
    expected = reference(name)
    for mechanism in ("shard_map", "jit"):
        got = {
            k.split("/", 1)[1]: v for k, v in results[0].items() if k.startswith(mechanism + "/")
        }
        assert_tree_close(got, expected)
