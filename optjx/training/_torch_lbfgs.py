"""``torch.optim.LBFGS``'s state and ``optjx.lbfgs``'s, both ways.

torch keeps the whole state under its first parameter: flat vectors over all the
parameters (raveled and concatenated in their order), the memory as Python lists
oldest first, and counters as Python numbers. optjx keeps the same quantities, the
memory in a ring buffer of ``history_size`` rows, one packed vector per dtype: the
conversion needs params of one dtype and ``pack=True``. The memory is written from row
0 (oldest first); ``al``, torch's scratch space for the two-loop recursion, is rebuilt by
torch on its next iteration and not written. Fields torch has no counterpart for keep
their ``init`` values: the last update's diagnostics, and ``value`` / ``grad`` at the
returned params (``+inf``: not evaluated, so ``optax.value_and_grad_from_state``
evaluates them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_COUNTERS = ("func_evals", "n_iter")
# torch's keys (of its first parameter), its scratch ``al`` included
KEYS = (*_COUNTERS, "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
        "prev_loss", "al")  # fmt: skip


def _one_vector(state) -> jax.Array:
    if len(state.prev_grad) != 1:
        raise ValueError(
            "torch.optim.LBFGS keeps one flat vector: params must all have one dtype, got "
            f"{[str(v.dtype) for v in state.prev_grad]}"
        )
    return state.prev_grad[0]


def _flat(value, n: int, key: str, dtype) -> jax.Array:
    vector = np.asarray(value)
    if vector.shape != (n,):
        raise ValueError(
            f"torch's LBFGS {key!r} has shape {vector.shape}, optjx expects ({n},) (all the "
            "params raveled and concatenated in jax.tree.leaves order)"
        )
    return jnp.asarray(vector, dtype)


def from_torch(entry: dict, state, params):
    """The optjx state (``state`` is ``tx.init(params)``) from torch's state of its
    first parameter."""
    vector = _one_vector(state)
    n, dtype = vector.shape[0], vector.dtype
    history = state.steps[0].shape[0]
    counters = {key: jnp.asarray(int(entry.get(key, 0)), jnp.int32) for key in _COUNTERS}
    if "d" not in entry:  # torch stopped before its first iteration, or never stepped
        return state._replace(**counters)
    steps, diffs, rho = entry["old_stps"], entry["old_dirs"], entry["ro"]
    pairs = len(steps)
    if pairs > history:
        raise ValueError(f"torch's LBFGS holds {pairs} pairs, history_size is {history}")

    def ring(rows, key):
        buffer = jnp.zeros((history, n), dtype)
        for i, row in enumerate(rows):
            buffer = buffer.at[i].set(_flat(row, n, key, dtype))
        return (buffer,)

    leaves, treedef = jax.tree.flatten(params)
    d = np.asarray(_flat(entry["d"], n, "d", dtype))
    offsets = np.cumsum([0] + [np.size(leaf) for leaf in leaves])
    direction = jax.tree.unflatten(
        treedef,
        [
            jnp.asarray(d[a:b].reshape(np.shape(leaf)), template.dtype)
            for a, b, leaf, template in zip(
                offsets[:-1], offsets[1:], leaves, jax.tree.leaves(state.direction), strict=True
            )
        ],
    )
    return state._replace(
        **counters,
        step_size=jnp.asarray(float(entry["t"]), dtype),
        direction=direction,
        prev_grad=(_flat(entry["prev_flat_grad"], n, "prev_flat_grad", dtype),),
        prev_value=jnp.asarray(float(entry["prev_loss"]), dtype),
        diag=jnp.asarray(np.asarray(entry["H_diag"]), dtype),
        steps=ring(steps, "old_stps"),
        grad_diffs=ring(diffs, "old_dirs"),
        rho=jnp.zeros([history], dtype).at[:pairs].set(jnp.asarray(np.asarray(rho), dtype)),
        head=jnp.asarray(pairs % history, jnp.int32),
        pairs=jnp.asarray(pairs, jnp.int32),
    )


def to_torch(state, params) -> dict:
    """torch's state of its first parameter (empty for a fresh state)."""
    _one_vector(state)
    counters = {key: int(getattr(state, key)) for key in _COUNTERS}
    if counters["n_iter"] == 0:
        return {k: v for k, v in counters.items() if counters["func_evals"]}
    history = state.steps[0].shape[0]
    pairs, head = int(state.pairs), int(state.head)
    rows = [(head - pairs + i) % history for i in range(pairs)]  # oldest first
    direction = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(state.direction)])
    return {
        **counters,
        "d": np.asarray(direction),
        "t": float(state.step_size),
        "old_dirs": [np.asarray(state.grad_diffs[0][r]) for r in rows],
        "old_stps": [np.asarray(state.steps[0][r]) for r in rows],
        "ro": [np.asarray(state.rho[r]) for r in rows],
        "H_diag": np.asarray(state.diag),
        "prev_flat_grad": np.asarray(state.prev_grad[0]),
        "prev_loss": float(state.prev_value),
    }
