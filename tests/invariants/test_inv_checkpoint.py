"""Invariant 6 over the whole registry: checkpoint continuation with orbax.

Every entry runs N = 3 steps; the params and states of all entries are saved together
in one ``orbax.checkpoint.StandardCheckpointer`` checkpoint and restored into a template
made by ``init``; each entry then runs M = 3 more steps from the restored tree. The result
is bit-identical to N + M uninterrupted steps, and the restored state has the structure,
NamedTuple types, dtypes and shapes of the saved one. (One checkpoint for the whole
registry keeps this to one save and one restore.)
"""

import _harness as harness
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from registry import ENTRIES

pytestmark = pytest.mark.usefixtures("strict_promotion")
N, M = 3, 3


def _key(i):
    return f"entry{i:03d}"  # orbax turns keys into paths: keep them plain


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    with jax.numpy_dtype_promotion("strict"):
        saved, uninterrupted = {}, {}
        for i, entry in enumerate(ENTRIES):
            c = harness.compiled(entry.id)
            params, _, state = c.run(N)
            saved[_key(i)] = {"params": params, "state": state}
            uninterrupted[entry.id] = c.run(M, params=params, state=state, start=N)
        path = tmp_path_factory.mktemp("checkpoint") / "all"
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(path, saved)
            checkpointer.wait_until_finished()
            template = {}
            for i, entry in enumerate(ENTRIES):
                params = harness.make_params()
                template[_key(i)] = {
                    "params": params,
                    "state": harness.compiled(entry.id).tx.init(params),
                }
            loaded = checkpointer.restore(path, template)
    return saved, loaded, uninterrupted


@pytest.mark.parametrize("index", range(len(ENTRIES)), ids=[e.id for e in ENTRIES])
def test_checkpoint_restore_continues_bit_identically(restored, index):
    saved, loaded, uninterrupted = restored
    entry = ENTRIES[index]
    before, after = saved[_key(index)], loaded[_key(index)]
    assert jax.tree.structure(after) == jax.tree.structure(before)
    harness.assert_trees_identical(after, before, "restored")

    c = harness.compiled(entry.id)
    params, updates, state = c.run(M, params=after["params"], state=after["state"], start=N)
    want_params, want_updates, want_state = uninterrupted[entry.id]
    for t, (a, b) in enumerate(zip(updates, want_updates, strict=True)):
        harness.assert_trees_identical(a, b, f"updates[{N + t}]")
    harness.assert_trees_identical(params, want_params, "params")
    harness.assert_trees_identical(state, want_state, "state")
    # Not a trivial pass: the run moved the params.
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(params), jax.tree.leaves(harness.make_params()), strict=True
        )
    )
