"""The params tree packed into one flat vector per dtype, for the loops of the methods.

The full-batch methods run three nested loops (iterations, the two-loop recursion, the
line search's bracketing and zoom). Written leaf by leaf on the params tree, every loop
body holds a copy of every per-leaf operation, so the program (and XLA's compile time)
grows as leaves times loops: 209 s for a 100-leaf tree. Packed, a loop body holds one
operation per *dtype* whatever the number of leaves. The point is unpacked into a tree
for ``value_fn`` at each evaluation (XLA fuses the leaves' slices into the loss's
kernels) and each evaluation's gradient packed. XLA compiles identical kernels once, so
the per-leaf kernels of leaves of one shape cost one compilation; a slice out of a packed
vector at a constant offset would be a kernel of its own for each leaf, and leaves of one
size are therefore cut at offsets read at run time (``_shared_offsets``).

Leaves are grouped by dtype (in order of first appearance), raveled and concatenated: no
promotion, so mixed dtypes keep their own precision. Inner products are per-group sums
(in float32 at least) added in the scalar dtype.

Sharded params: under ``jit`` with a mesh of ``Auto`` axes XLA places the packed vectors
itself (the concatenation may gather leaves sharded along different axes). Leaves typed
with an ``Explicit`` sharding (the mesh must be set: ``with jax.set_mesh(mesh):``,
else a ``ValueError`` says so) are resharded to replicated before packing and back to
their own sharding when unpacked for ``value_fn``, so that the user's loss sees the
sharding it was written for: correct, at the cost of an all-gather of the params and
gradients per evaluation and replicated history buffers.

``pack=False`` (the methods' keyword): every leaf is its own group, kept in its own shape
and sharding (never raveled, concatenated or resharded), so sharded params cost no gather;
only the inner products are reduced across devices. The history buffers are then
``(*lead, *leaf.shape)`` arrays made with the leaf's sharding (the leading axes
replicated). The program then grows with the number of leaves again.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec


def _explicit_sharding(leaf) -> Optional[NamedSharding]:
    """The leaf's sharding when it is typed with sharded ``Explicit`` mesh axes."""
    try:
        sharding = jax.typeof(leaf).sharding
    except (TypeError, AttributeError):  # a ShapeDtypeStruct, a NumPy array
        return None
    mesh, spec = getattr(sharding, "mesh", None), getattr(sharding, "spec", None)
    if mesh is None or spec is None or not any(p is not None for p in spec):
        return None
    explicit = getattr(mesh, "explicit_axes", ())
    names = {n for p in spec if p is not None for n in ((p,) if isinstance(p, str) else p)}
    return sharding if names & set(explicit) else None


def replicated(leaf):
    """``leaf`` resharded to replicated when typed with sharded ``Explicit`` mesh axes (a
    ravel or concatenation of it is then allowed), else ``leaf`` itself."""
    sharding = _explicit_sharding(leaf)
    if sharding is None:
        return leaf
    return jax.sharding.reshard(leaf, NamedSharding(sharding.mesh, PartitionSpec()))


def _concrete_sharding(leaf) -> Optional[NamedSharding]:
    """A concrete array's ``NamedSharding`` (``None`` for tracers and other shardings)."""
    if isinstance(leaf, jax.core.Tracer) or not isinstance(leaf, jax.Array):
        return None
    sharding = getattr(leaf, "sharding", None)
    return sharding if isinstance(sharding, NamedSharding) else None


def _zeros(shape, dtype, sharding: Optional[NamedSharding], n_lead: int):
    """Zeros of ``shape``, sharded as ``sharding`` on the trailing axes (leading replicated)."""
    if sharding is None:
        return jnp.zeros(shape, dtype)
    spec = PartitionSpec(*([None] * n_lead), *sharding.spec)
    target = NamedSharding(sharding.mesh, spec)
    if jax.sharding.get_abstract_mesh().empty or not _is_explicit(sharding):
        return jax.device_put(jnp.zeros(shape, dtype), target)
    return jnp.zeros(shape, dtype, out_sharding=target)


def _is_explicit(sharding) -> bool:
    explicit = set(getattr(sharding.mesh, "explicit_axes", ()))
    return any(
        n in explicit
        for p in sharding.spec
        if p is not None
        for n in ((p,) if isinstance(p, str) else p)
    )


class Packing:
    """How a tree of arrays packs into a tuple of flat vectors, one per dtype.

    Built from the params (arrays, tracers or ``ShapeDtypeStruct`` leaves); ``pack`` and
    ``unpack`` convert trees of that structure, shapes and dtypes. With ``pack=False``
    every leaf is its own group, in its own shape and sharding (``pack`` and ``unpack``
    only flatten and unflatten the tree).
    """

    def __init__(self, tree, pack: bool = True):
        self.packed = bool(pack)
        leaves, treedef = jax.tree.flatten(tree)
        self.treedef: Any = treedef  # jax's stubs lack PyTreeDef.flatten_up_to
        self.shapes = [tuple(np.shape(x)) for x in leaves]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.shardings = [_explicit_sharding(x) for x in leaves]
        if any(self.shardings) and jax.sharding.get_abstract_mesh().empty:
            raise ValueError(
                "full-batch methods: the params are sharded over Explicit mesh axes; "
                "call init and update under the mesh: `with jax.set_mesh(mesh): ...` "
                "(or make the mesh with axis_types=(jax.sharding.AxisType.Auto,))."
            )
        if not self.packed:
            # The leaves' own placement: Explicit typed or, for concrete arrays, committed.
            self.shardings = [
                s or _concrete_sharding(x) for s, x in zip(self.shardings, leaves, strict=True)
            ]
            self.dtypes = [jnp.dtype(leaf.dtype) for leaf in leaves]
            self.groups = [[i] for i in range(len(leaves))]
            self.lengths = list(self.sizes)
            return
        groups: dict[Any, list[int]] = {}
        for i, leaf in enumerate(leaves):
            groups.setdefault(jnp.dtype(leaf.dtype), []).append(i)
        self.dtypes = list(groups)
        self.groups = list(groups.values())
        self.lengths = [sum(self.sizes[i] for i in g) for g in self.groups]
        self.starts = [0] * len(leaves)  # each leaf's offset in its group's vector
        for group in self.groups:
            offset = 0
            for i in group:
                self.starts[i], offset = offset, offset + self.sizes[i]
        self.offsets = self._runtime_offsets(leaves)

    def pack(self, tree) -> tuple:
        """One flat vector per dtype group (a fresh array: never an alias of ``tree``)."""
        leaves = self.treedef.flatten_up_to(tree)
        if not self.packed:
            return tuple(jnp.asarray(leaf) for leaf in leaves)
        out = []
        for group in self.groups:
            parts = []
            for i in group:
                leaf, sharding = jnp.asarray(leaves[i]), self.shardings[i]
                if sharding is not None:
                    leaf = jax.sharding.reshard(leaf, NamedSharding(sharding.mesh, PartitionSpec()))
                parts.append(jnp.ravel(leaf))
            out.append(parts[0] if len(parts) == 1 else jnp.concatenate(parts))
        return tuple(out)

    def unpack(self, packed):
        """The tree of ``packed``: each leaf its slice, reshaped (and resharded).

        Leaves of one size are cut at the offsets of ``_runtime_offsets``, so that they
        share one slicing kernel instead of compiling one per leaf.
        """
        if not self.packed:
            return self.treedef.unflatten(list(packed))
        leaves: list[Any] = [None] * len(self.shapes)
        for group, vector in zip(self.groups, packed, strict=True):
            for i in group:
                start, offset = self.starts[i], self.offsets[i]
                if offset is None:
                    leaf = vector[start : start + self.sizes[i]]
                else:  # never negative: no index wrapping to trace
                    leaf = lax.dynamic_slice_in_dim(
                        vector, offset, self.sizes[i], allow_negative_indices=False
                    )
                leaf = leaf.reshape(self.shapes[i])
                if self.shardings[i] is not None:
                    leaf = jax.sharding.reshard(leaf, self.shardings[i])
                leaves[i] = leaf
        return self.treedef.unflatten(leaves)

    def _runtime_offsets(self, leaves) -> list:
        """Each leaf's offset as a run-time scalar where another leaf of its group has its
        size (and it is not sharded), else ``None`` (a slice at the constant offset).

        Made once per ``Packing``, from a traced leaf (none, e.g. at ``init``: all
        ``None``); the loops that unpack take them in as operands.
        """
        shared = [
            i
            for group in self.groups
            for i in group
            if self.sizes[i] > 0
            and self.shardings[i] is None
            and sum(self.sizes[j] == self.sizes[i] for j in group) > 1
        ]
        witness = next((x for x in leaves if isinstance(x, jax.core.Tracer) and x.size), None)
        offsets: list[Any] = [None] * len(leaves)
        if shared and witness is not None:
            values = _shared_offsets([self.starts[i] for i in shared], witness)
            for i, value in zip(shared, values, strict=True):
                offsets[i] = value
        return offsets

    def zeros(self, *lead: int) -> tuple:
        """Zero buffers of shape ``(*lead, n)`` per dtype group (history ring buffers).

        With ``pack=False``: ``(*lead, *leaf.shape)`` per leaf, sharded as the leaf along
        its own axes (the leading axes replicated).
        """
        if not self.packed:
            return tuple(
                _zeros((*lead, *shape), dt, sharding, len(lead))
                for shape, dt, sharding in zip(
                    self.shapes, self.dtypes, self.shardings, strict=True
                )
            )
        return tuple(
            jnp.zeros((*lead, n), dt) for n, dt in zip(self.lengths, self.dtypes, strict=True)
        )


def _shared_offsets(starts: list[int], witness) -> tuple:
    """``starts`` as int32 scalars that XLA cannot fold into constants.

    XLA compiles each distinct fused kernel on its own (~10 ms each on CPU) and identical
    kernels once. A slice at a constant offset is a distinct kernel per leaf, and so is
    every consumer XLA fuses it into: the slicing alone was most of the compile time of a
    full-batch update on a tree of many leaves. Cut at an offset held in a buffer, the
    slices of leaves of one size (and what is fused with them) are one kernel. The
    offsets come out of a ``lax.cond`` on a run-time predicate (both branches give the
    same numbers), which XLA neither folds nor fuses into its consumers: a slice at a
    constant offset would be. The values, and every result, are those of the slices.
    """
    constants = tuple(np.int32(s) for s in starts)
    # Whether the witness's first element is NaN: unknown to the compiler, and the
    # branches agree whatever it is.
    return lax.cond(jnp.isnan(jnp.ravel(witness)[0]), lambda: constants, lambda: constants)


def flat(packed, dtype) -> jax.Array:
    """The packed vectors (one per dtype) as one ``dtype`` vector."""
    parts = [v.astype(dtype) for v in packed]
    if not parts:
        return jnp.zeros([0], dtype)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def split(vector, packing: Packing) -> tuple:
    """The inverse of ``flat``: one vector per dtype group of ``packing``, in its dtype."""
    out, offset = [], 0
    for n, dtype in zip(packing.lengths, packing.dtypes, strict=True):
        out.append(vector[offset : offset + n].astype(dtype))
        offset += n
    return tuple(out)
