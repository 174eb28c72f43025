"""BatchNorm statistics recomputed for new weights, as ``torch.optim.swa_utils.update_bn``:
``recompute_batch_stats`` (Flax Linen) and ``recompute_batch_stats_nnx`` (Flax NNX).
Flax is imported inside the functions: it is an extra, not a dependency of optjx."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp

_NOT_COMPUTED = -1.0  # a variance no batch can produce: marks a layer the pass did not reach


def recompute_batch_stats(
    apply_fn: Callable[..., Any],
    variables: Mapping[str, Any],
    batches: Iterable[Any],
    *,
    unbiased: bool = False,
    progress: bool = False,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Mapping[str, Any]:
    r"""Recompute the statistics of every ``flax.linen.BatchNorm`` for the given weights.

    The running mean and variance of a BatchNorm belong to the weights of the last
    training steps. Averaged weights (``averaged_params``, ``slow_params``,
    ``schedule_free_eval_params``) are another network, whose activations have other
    statistics; evaluated with the stale ones its accuracy can collapse (Izmailov et al.
    2018, section 3.2). One pass over training batches recomputes every BatchNorm's
    statistics as the cumulative average over the $K$ batches, each weighted equally:

    $$
    \mu = \frac{1}{K} \sum_{k=1}^{K} \mu_k, \qquad
    \sigma^2 = \frac{1}{K} \sum_{k=1}^{K} \sigma^2_k
    $$

    with $\mu_k$, $\sigma^2_k$ the statistics of batch $k$ over every axis but the feature
    axis, as ``torch.optim.swa_utils.update_bn`` does (it resets the running statistics
    and sets the momentum to ``None``, PyTorch's cumulative average).

    Every batch goes through ``apply_fn(variables, batch, mutable=["batch_stats"],
    **apply_kwargs)``, jitted. During the pass each ``nn.BatchNorm`` computes its batch
    statistics whatever ``use_running_average`` the model passes or was built with, and
    stores them whole (its momentum is 0 for the pass, so any momentum works). The rest
    of the model runs as ``apply_kwargs`` says: PyTorch's ``update_bn`` puts the whole
    model in training mode, dropout included; pass your model's training flag (and
    ``rngs`` for dropout) in ``apply_kwargs`` to do the same.

    Biased and unbiased variance: a Flax ``BatchNorm`` stores the batch variance it
    normalises with, $\sigma^2_k = \frac{1}{n} \sum_i (x_i - \mu_k)^2$ over the $n$
    values of a feature in the batch (biased); PyTorch normalises with that one too but
    stores the unbiased $\frac{n}{n - 1} \sigma^2_k$ in ``running_var``.
    ``unbiased=False`` keeps Flax's convention; ``unbiased=True`` stores PyTorch's, per
    batch with that batch's $n$.

    References:
      Izmailov, Podoprikhin, Garipov, Vetrov & Wilson (2018), "Averaging weights leads to
      wider optima and better generalization", section 3.2; Ioffe & Szegedy (2015),
      "Batch normalization", Algorithm 2.

    Args:
      apply_fn: the model's ``apply`` (``model.apply``), called as above.
      variables: ``{"params": ..., "batch_stats": ...}`` with the evaluation weights
        (``optjx.averaged_params(opt_state)``, or any params) and the current statistics,
        whose values are ignored and whose dtypes are kept.
      batches: an iterable of model inputs (a one-pass generator is fine), each the
        second argument of ``apply_fn``; for ``(inputs, labels)`` pairs pass
        ``(x for x, _ in loader)``. Each batch counts equally, whatever its size.
      unbiased: ``False`` stores the biased batch variance, Flax's convention; ``True``
        stores PyTorch's unbiased one (above).
      progress: show a ``tqdm`` progress bar (tqdm must be installed).
      apply_kwargs: more keyword arguments for ``apply_fn`` (a ``train=True`` flag,
        ``rngs``), the same for every batch (dropout ``rngs`` give every batch the same
        masks); not ``mutable``.

    Returns:
      ``variables`` with a new ``batch_stats`` collection; everything else, the params
      included, is returned as given. ``variables`` without ``batch_stats`` (a model
      without BatchNorm) come back unchanged and ``batches`` is not read, as in PyTorch.

    Raises:
      TypeError: ``unbiased`` or ``progress`` is not a bool.
      ValueError: ``batches`` is empty, or an entry of ``batch_stats`` was not written by
        an ``nn.BatchNorm`` during the pass (the layer was not called, or the collection
        holds statistics of another kind of layer).
      ImportError: ``progress=True`` without tqdm.
    """
    from flax.core import FrozenDict, unfreeze

    _check_flags(unbiased=unbiased, progress=progress)
    apply_kwargs = dict(apply_kwargs or {})
    if "mutable" in apply_kwargs:
        raise ValueError("apply_kwargs: 'mutable' is set by recompute_batch_stats")
    if "batch_stats" not in variables:
        return variables
    stats = unfreeze(variables["batch_stats"])  # apply returns plain dicts
    try:  # one compilation for repeated calls (an evaluation every epoch)
        step, reached = _linen_pass(apply_fn, unbiased, tuple(sorted(apply_kwargs.items())))
    except TypeError:  # an unhashable argument (rngs, arrays): compiled for this call
        step, reached = _linen_pass.__wrapped__(apply_fn, unbiased, tuple(apply_kwargs.items()))
    others = {name: value for name, value in variables.items() if name != "batch_stats"}

    average = jax.tree.map(jnp.zeros_like, stats)
    count = 0
    for batch in _maybe_progress(batches, progress):
        count += 1
        average = step(others, average, jnp.asarray(count, jnp.int32), batch)
        if count == 1:
            _check_reached(stats, reached)
    if count == 0:
        raise ValueError("batches: empty; at least one batch is needed")
    new = {**variables, "batch_stats": average}
    return FrozenDict(new) if isinstance(variables, FrozenDict) else new


def recompute_batch_stats_nnx(
    model: Any, batches: Iterable[Any], *, unbiased: bool = False, progress: bool = False
) -> None:
    r"""Recompute the statistics of every ``flax.nnx.BatchNorm`` of ``model``, in place.

    The NNX twin of [`recompute_batch_stats`][optjx.recompute_batch_stats] (the rule and
    the variance conventions are there): every batch goes through ``model(batch)`` under
    ``nnx.jit``, each ``nnx.BatchNorm`` computing its batch statistics whatever
    ``use_running_average`` it is called or built with, at momentum 0; then its ``mean``
    and ``var`` hold the cumulative average over the batches, in their dtypes. The other
    layers run in the model's mode: call ``model.train()`` first for PyTorch's
    ``update_bn``, which runs the whole model in training mode, dropout included. The
    layers' class, momentum and ``use_running_average`` are restored afterwards, and
    their statistics too if the pass fails.

    Args:
      model: an ``nnx.Module`` with the evaluation weights (for averaged weights, write
        them into the model first, e.g. ``nnx.update(model, averaged)``).
      batches: an iterable of model inputs (a one-pass generator is fine), each the
        argument of ``model``; for ``(inputs, labels)`` pairs pass
        ``(x for x, _ in loader)``. Each batch counts equally, whatever its size.
      unbiased: ``False`` stores the biased batch variance, Flax's convention; ``True``
        stores PyTorch's unbiased one (see ``recompute_batch_stats``).
      progress: show a ``tqdm`` progress bar (tqdm must be installed).

    Returns:
      ``None``; the model's parameters are unchanged. A model without ``nnx.BatchNorm``
      is left as it is and ``batches`` is not read, as in PyTorch.

    Raises:
      TypeError: ``unbiased`` or ``progress`` is not a bool.
      ValueError: ``batches`` is empty, or a BatchNorm layer was not called by the pass
        (it is named).
      ImportError: ``progress=True`` without tqdm.
    """
    from flax import nnx

    _check_flags(unbiased=unbiased, progress=progress)
    layers = [(path, m) for path, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
    if not layers:
        return
    saved = [
        (type(m), m.momentum, m.use_running_average, m.mean[...], m.var[...]) for _, m in layers
    ]

    step = _nnx_pass()
    average = [(jnp.zeros_like(m.mean[...]), jnp.zeros_like(m.var[...])) for _, m in layers]
    count = 0
    try:
        for _, m in layers:
            m.__class__ = _batch_statistics_class(type(m), unbiased)
            m.momentum, m.use_running_average = 0.0, False
            m.mean[...] = jnp.zeros_like(m.mean[...])
            m.var[...] = jnp.full_like(m.var[...], _NOT_COMPUTED)
        for batch in _maybe_progress(batches, progress):
            count += 1
            average = step(model, average, jnp.asarray(count, jnp.int32), batch)
            if count == 1:
                missed = [p for (p, m) in layers if bool(jnp.all(m.var[...] == _NOT_COMPUTED))]
                if missed:
                    raise ValueError(f"the pass did not call the BatchNorm layers at {missed}")
        if count == 0:
            raise ValueError("batches: empty; at least one batch is needed")
        final = average
    except BaseException:
        final = [(mean, var) for *_, mean, var in saved]  # the model as it came in
        raise
    finally:
        for (_, m), (cls, momentum, use_running_average, *_), (mean, var) in zip(
            layers, saved, final, strict=True
        ):
            m.__class__ = cls
            m.momentum, m.use_running_average = momentum, use_running_average
            m.mean[...], m.var[...] = mean, var


@functools.lru_cache(maxsize=16)  # keeps up to 16 models' apply alive
def _linen_pass(apply_fn, unbiased: bool, apply_kwargs: tuple):
    """The jitted step of one batch and the set of BatchNorm scopes its trace called."""
    import flax.linen as nn

    reached: set[tuple[str, ...]] = set()  # the BatchNorm scopes the traced pass called

    def batch_statistics_interceptor(next_fun, args, kwargs, context):
        module = context.module
        if not isinstance(module, nn.BatchNorm) or context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        assert module.scope is not None  # a method runs bound
        reached.add(tuple(module.scope.path))
        x, *_ = args
        mask = kwargs.get("mask")
        saved = module.momentum, module.use_running_average
        # Linen modules are frozen dataclasses; the override lasts this one traced call.
        object.__setattr__(module, "momentum", 0.0)
        object.__setattr__(module, "use_running_average", False)
        try:
            y = next_fun(x, None, mask=mask)
        finally:
            object.__setattr__(module, "momentum", saved[0])
            object.__setattr__(module, "use_running_average", saved[1])
        if unbiased:
            var: jax.Array = module.get_variable("batch_stats", "var")
            n = _values_per_feature(x, var.size, mask)
            module.put_variable("batch_stats", "var", var * (n / (n - 1)))
        return y

    @jax.jit
    def step(others, average, count, batch):
        fresh = jax.tree.map(jnp.zeros_like, average)  # 0 * old is 0: no stale inf or NaN
        with nn.intercept_methods(batch_statistics_interceptor):
            _, mutated = apply_fn(
                {**others, "batch_stats": fresh},
                batch,
                mutable=["batch_stats"],
                **dict(apply_kwargs),
            )
        return _running_mean(average, mutated["batch_stats"], count)

    return step, reached


@functools.cache
def _nnx_pass():
    """The jitted step of one batch, one for every model (``nnx.jit`` compiles once per
    model structure, the swapped BatchNorm classes included)."""
    from flax import nnx

    @nnx.jit
    def step(model, average, count, batch):
        model(batch)
        found = [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
        return _running_mean(average, [(m.mean[...], m.var[...]) for m in found], count)

    return step


def _check_flags(**flags: Any) -> None:
    """``TypeError`` naming the first flag that is not a bool."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected a bool, got {value!r}")


def _running_mean(average, newest, count):
    """The mean of ``count`` values from the mean of the first ``count - 1``, in the
    average's dtypes."""

    def update(a, b):
        return a + (b.astype(a.dtype) - a) / count.astype(a.dtype)

    return jax.tree.map(update, average, newest)


def _values_per_feature(x, features: int, mask):
    """$n$, the values that make one feature's batch statistics (mask-aware)."""
    if mask is None:
        return math.prod(x.shape) // features
    return jnp.sum(jnp.broadcast_to(mask, x.shape)) / features


@functools.cache  # one class per (class, flag), so nnx.jit compiles once
def _batch_statistics_class(cls: type, unbiased: bool) -> type:
    """A subclass of the layer's class that normalises with batch statistics whatever it
    is called with, and stores the unbiased variance if asked."""

    def __call__(self, x, use_running_average=None, *, mask=None):
        del use_running_average  # the pass needs the batch statistics
        y = cls.__call__(self, x, False, mask=mask)
        if unbiased:
            n = _values_per_feature(x, self.var[...].size, mask)
            self.var[...] = self.var[...] * (n / (n - 1))
        return y

    return type(f"BatchStatistics{cls.__name__}", (cls,), {"__call__": __call__})


def _check_reached(stats, reached: set[tuple[str, ...]]) -> None:
    """Every ``batch_stats`` entry belongs to a BatchNorm the pass called."""
    leaves = jax.tree_util.tree_leaves_with_path(stats)
    paths = [tuple(str(getattr(k, "key", k)) for k in path) for path, _ in leaves]
    missed = sorted({p[:-1] for p in paths if p[:-1] not in reached})
    if missed:
        raise ValueError(
            f"batch_stats entries at {missed} were not written by a flax.linen.BatchNorm "
            "during the pass (the layer was not called, or is not an nn.BatchNorm)"
        )


def _maybe_progress(batches: Iterable[Any], progress: bool) -> Iterator[Any]:
    if not progress:
        return iter(batches)
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError as error:
        raise ImportError(
            "progress=True needs tqdm, which optjx does not depend on: pip install tqdm"
        ) from error
    return iter(tqdm(batches, desc="BatchNorm statistics", unit="batch"))
