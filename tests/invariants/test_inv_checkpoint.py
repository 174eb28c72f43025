"""Invariant 6 over the whole registry: checkpoint continuation with orbax.

Every entry runs N = 3 steps; the params and states of all entries are saved together
in one ``orbax.checkpoint.StandardCheckpointer`` checkpoint and restored into a template
made by ``init``; each entry then runs M = 3 more steps from the restored tree. The result
is bit-identical to N + M uninterrupted steps, and the restored state has the structure,
NamedTuple types, dtypes and shapes of the saved one. (One checkpoint for the entries of
the selected tests keeps this to one save and one restore; ``-k one_name`` saves that name
alone.)
"""

import _harness as harness
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from _placement import uncommitted
from registry import ENTRIES

pytestmark = pytest.mark.usefixtures("strict_promotion")
N, M = 3, 3


def _key(entry):
    # orbax turns keys into paths: keep them plain (the registry's position of the entry)
    return f"entry{ENTRIES.index(entry):03d}"


@pytest.fixture(scope="module")
def restored(request, tmp_path_factory):
    entries = harness.selected_entries(request)
    with jax.numpy_dtype_promotion("strict"):
        saved, uninterrupted = {}, {}
        for entry in entries:
            c = harness.compiled(entry.id)
            params, _, state = c.run(N)
            saved[_key(entry)] = {"params": params, "state": state}
            uninterrupted[entry.id] = c.run(M, params=params, state=state, start=N)
        path = tmp_path_factory.mktemp("checkpoint") / "all"
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(path, saved)
            checkpointer.wait_until_finished()
            template = {}
            for entry in entries:
                params = harness.make_params()
                template[_key(entry)] = {
                    "params": params,
                    "state": harness.compiled(entry.id).tx.init(params),
                }
            loaded = checkpointer.restore(path, template)
    return saved, loaded, uninterrupted


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_checkpoint_restore_continues_bit_identically(restored, entry):
    saved, loaded, uninterrupted = restored
    before, after = saved[_key(entry)], loaded[_key(entry)]
    assert jax.tree.structure(after) == jax.tree.structure(before)
    harness.assert_trees_identical(after, before, "restored")

    after = uncommitted(after)  # runs on the program the uninterrupted run compiled
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
