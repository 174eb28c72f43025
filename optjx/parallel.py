r"""Data parallelism: gradient averaging over a named axis, and sharded optimizer state.

Plain JAX underneath: optjx adds no runtime of its own; across hosts JAX's
``jax.distributed`` runtime carries the collectives. ``cross_replica_mean`` goes first
in a chain under ``jax.pmap`` or ``jax.shard_map``; ``state_shardings`` splits the
optimizer state over the data axis (ZeRO stage 1) for sharded ``jax.jit``;
``bytes_per_device`` measures what a tree costs on each device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from optjx import _state

AxisName = Union[str, Sequence[str]]
_UNVARYING_MODES = ("sum", "mean", "error")


def _axis_names(axis_name: AxisName) -> tuple[str, ...]:
    names = (axis_name,) if isinstance(axis_name, str) else tuple(axis_name)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"axis_name must be a non-empty string or tuple of them, got {axis_name!r}"
        )
    return names


def _varying_axes(x) -> frozenset:
    """The mapped axes ``x``'s type says it varies over (empty outside ``shard_map``).

    Under ``shard_map(check_vma=True)`` JAX tracks, in each value's type, the manual mesh
    axes along which it may differ between devices: ``jax.typeof(x).mat.varying`` in JAX
    0.10, ``jax.typeof(x).vma`` in the releases before it.
    """
    aval = jax.typeof(x) if hasattr(jax, "typeof") else jax.core.get_aval(x)  # type: ignore[attr-defined]
    mat = getattr(aval, "mat", None)
    if mat is not None and hasattr(mat, "varying"):
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()) or ())


def _vma_checked(name: str) -> bool:
    """Whether the enclosing map tracks varying types along ``name``.

    ``axis_index`` differs on every device, so its type says "varying" exactly when the
    map tracks it: ``shard_map(check_vma=True)``. Under ``pmap`` and
    ``shard_map(check_vma=False)`` no value is ever typed varying, so the type of a
    gradient tells nothing there. The probe is dead code that XLA removes.
    """
    try:
        index = lax.axis_index(name)
    except NameError as error:
        raise ValueError(
            f"cross_replica_mean({name!r}) must run inside a mapped function that binds the "
            f"axis {name!r}: jax.pmap(..., axis_name={name!r}) or jax.shard_map over a mesh "
            f"with an axis {name!r}. Under plain jax.jit with sharded arrays the compiler "
            "already averages the gradient of a mean loss: leave cross_replica_mean out."
        ) from error
    return name in _varying_axes(index)


def _axis_size(name: str) -> int:
    if hasattr(lax, "axis_size"):
        return lax.axis_size(name)
    return lax.psum(1, name)


def cross_replica_mean(
    axis_name: AxisName, *, unvarying: Literal["sum", "mean", "error"] = "sum"
) -> optax.GradientTransformation:
    r"""Average the gradients over the named mapped axis: first in a chain.

    $$
    u = \frac{1}{N} \sum_{i=1}^{N} g^{(i)}
    $$

    with $g^{(i)}$ the gradient device ``i`` computed from its part of the batch and $N$
    the size of the axis. With every device's local batch the same size and a loss that
    is a mean over the local batch, $u$ is the full-batch gradient, so training on $N$
    devices follows the one-device full-batch trajectory.

    **Under ``jax.pmap`` and ``jax.shard_map(check_vma=False)``** each device holds its own
    gradient and the transform is ``lax.pmean``.

    **Under ``jax.shard_map(check_vma=True)``** (JAX's default) each value's type records
    the axes it varies over, and autodiff already reduces: the gradient with respect to a
    replicated (unvarying) parameter of a loss computed from device-local (varying) data
    arrives as the *sum* $\sum_i g^{(i)}$, unvarying. The reason: using an unvarying
    parameter next to varying data inserts an implicit ``pvary``, and the transpose of
    ``pvary`` is ``psum``. A ``pmean`` of that sum returns the sum itself (all devices hold
    the same value), so a naive transform trains with an $N$-times larger step, silently.
    This one reads each leaf's type instead:

    * a leaf that varies over the axis (a per-device gradient, e.g. of parameters passed
      with ``in_specs=P(axis)``) is averaged with ``lax.pmean``;
    * a leaf that does not vary is handled by ``unvarying``.

    The type cannot tell *why* a gradient leaf is unvarying; what decides it is the loss
    that was differentiated:

    * the loss varies over the axis (each device's mean over its local batch, not reduced
      over the axis: code ported from ``pmap``), or it was reduced with ``lax.psum``: the
      unvarying gradient is the sum $\sum_i g^{(i)}$ (for ``psum``, by the chain
      rule; otherwise, by the transpose of the implicit ``pvary``). ``unvarying="sum"``,
      the default, divides it by $N$. Terms of the loss that do not depend on the data
      (an L2 penalty) are summed $N$ times as well, so the division is right for them
      too.
    * the loss was averaged with ``lax.pmean(loss, axis)`` before differentiation: the
      gradient already is the mean. Pass ``unvarying="mean"`` (the leaf passes through
      unchanged), or leave ``cross_replica_mean`` out of the chain. The default would
      divide once more and train with an $N$-times smaller step, silently.
    * ``unvarying="error"`` refuses to guess: a ``ValueError`` names the axis and these two
      fixes.

    Args:
      axis_name: the mapped axis, a string, or a tuple of them to average over several
        axes at once (e.g. ``("hosts", "devices")``).
      unvarying: ``"sum"``, ``"mean"`` or ``"error"``: what an unvarying gradient leaf is
        under ``shard_map(check_vma=True)``. Ignored where types do not track variation.

    Returns:
      An ``optax.GradientTransformation`` with an ``optax.EmptyState``.

    Raises:
      ValueError: outside a map that binds ``axis_name`` (under plain ``jax.jit`` with a
        sharded batch the compiler averages a mean loss's gradient by itself: leave this
        transform out); with ``unvarying="error"``, an unvarying gradient leaf.

    Parameters must be replicated over the axis (data parallelism), and the transform
    must come first in the chain so that every later stage sees the mean.

    Differences from PyTorch and optax:
      optax has no counterpart that reads the types: optax users write
      ``lax.pmean(grads, axis)`` themselves, which gives the sum under
      ``check_vma=True``. PyTorch's ``DistributedDataParallel`` averages in the backward
      pass.

    Examples:
      >>> tx = optjx.chain(optjx.cross_replica_mean("batch"), optjx.adam(1e-3))
    """
    names = _axis_names(axis_name)
    if unvarying not in _UNVARYING_MODES:
        raise ValueError(f"unvarying must be one of {_UNVARYING_MODES}, got {unvarying!r}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def average(checked, path, g):
        varying = _varying_axes(g)
        # Axes along which this device holds its own gradient: pmean there.
        local = tuple(n for n in names if n not in checked or n in varying)
        # Axes along which autodiff already reduced the gradient (typed unvarying).
        reduced = tuple(n for n in names if n in checked and n not in varying)
        if reduced and unvarying == "error":
            where = jax.tree_util.keystr(path)
            raise ValueError(
                f"cross_replica_mean: the gradient at {where or 'the root'} does not vary over "
                f"the axis {reduced[0]!r} (shard_map with check_vma=True): autodiff has already "
                "summed it over the devices, or the loss was already averaged there. Fix: if "
                "the loss is a device-local mean, use cross_replica_mean(..., unvarying='sum') "
                "to divide the sum by the axis size; if the loss was averaged with lax.pmean, "
                "use unvarying='mean' or leave cross_replica_mean out."
            )
        if local:
            g = lax.pmean(g, local)
        if reduced and unvarying == "sum":
            size = math.prod(_axis_size(n) for n in reduced)
            g = g / jnp.asarray(size, g.dtype)
        return g

    def update_fn(updates, state, params=None):
        del params
        checked = tuple(n for n in names if _vma_checked(n))
        updates = jax.tree_util.tree_map_with_path(
            lambda path, g: average(checked, path, g), updates
        )
        return updates, state  # any empty state, as optax's stateless transforms

    return _state.transformation(init_fn, update_fn)


def _leaf_spec(leaf, mesh: Mesh, names: tuple[str, ...], size: int) -> P:
    shape = tuple(np.shape(leaf))
    spec: list = [None] * len(shape)
    sharding = getattr(leaf, "sharding", None)
    # Keep the leaf's own sharding over other mesh axes (tensor parallelism) and add the
    # data axis on top of it.
    if isinstance(sharding, NamedSharding) and sharding.mesh.axis_names == mesh.axis_names:
        own = list(sharding.spec) + [None] * (len(shape) - len(sharding.spec))
        spec = own[: len(shape)]
        used: set[str] = set()
        for entry in spec:
            used.update((entry,) if isinstance(entry, str) else (entry or ()))
        if used & set(names):
            return P(*spec)
    for dim, extent in enumerate(shape):
        if spec[dim] is None and extent >= size and extent % size == 0:
            spec[dim] = names[0] if len(names) == 1 else names
            break
    return P(*spec)


def state_shardings(abstract_state: Any, mesh: Mesh, axis_name: AxisName) -> Any:
    r"""``NamedSharding`` objects that split each state leaf over the data axis (ZeRO stage 1).

    Each leaf is split on its first dimension whose extent is a positive multiple of the
    axis size (the product of the sizes for a tuple of axes); scalars (the step ``count``)
    and leaves with no such dimension are replicated. A leaf that already carries a
    ``NamedSharding`` on ``mesh`` over other axes (tensor parallelism) keeps it, and the
    data axis is added on a free dimension. Each device then holds $1/N$ of every divisible
    moment. The arithmetic is elementwise or reduces across shards (NovoGrad's per-layer
    norm, the global-norm clip), which ``jax.jit`` partitions exactly; the trajectory equals
    the replicated one up to the summation order of those reductions.

    Args:
      abstract_state: the state, or its shapes (``jax.eval_shape(optimizer.init, params)``).
      mesh: the device mesh.
      axis_name: the data axis of ``mesh`` (or a tuple of axes) to split over.

    Returns:
      A tree of ``jax.sharding.NamedSharding`` shaped like the state.

    Examples:
      >>> abstract = jax.eval_shape(optimizer.init, params)
      >>> shardings = optjx.parallel.state_shardings(abstract, mesh, "data")
      >>> state = jax.jit(optimizer.init, out_shardings=shardings)(params)
      >>> step = jax.jit(train_step, out_shardings=(param_shardings, shardings))
    """
    names = _axis_names(axis_name)
    missing = [n for n in names if n not in mesh.axis_names]
    if missing:
        raise ValueError(f"axis {missing[0]!r} is not an axis of the mesh {mesh.axis_names}")
    size = math.prod(mesh.shape[n] for n in names)
    return jax.tree.map(
        lambda leaf: NamedSharding(mesh, _leaf_spec(leaf, mesh, names, size)), abstract_state
    )


def bytes_per_device(tree: Any, shardings: Any = None) -> int:
    r"""Bytes of ``tree`` that one device holds under ``shardings`` (replicated if ``None``).

    Works on arrays and on ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape``), so the
    memory of a sharding plan can be read before anything is allocated.

    Args:
      tree: a pytree of arrays or ``jax.ShapeDtypeStruct``.
      shardings: a matching tree of shardings, or ``None``.

    Returns:
      The bytes of one device's shard of every leaf, added up.
    """
    leaves = jax.tree.leaves(tree)
    if shardings is None:
        return sum(math.prod(np.shape(x)) * np.dtype(x.dtype).itemsize for x in leaves)
    total = 0
    for leaf, sharding in zip(leaves, jax.tree.leaves(shardings), strict=True):
        shape = sharding.shard_shape(tuple(np.shape(leaf)))
        total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
    return total
