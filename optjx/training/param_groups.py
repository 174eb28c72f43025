r"""PyTorch's parameter groups for any optjx alias, on ``optax.partition``.

``torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1}, {"params": others,
"weight_decay": 0.0}], lr=1e-3)`` gives each tensor the hyperparameters of the one group
it belongs to, and the keyword arguments of the constructor to the groups that do not
set them. ``param_groups`` does the same for pytrees: each leaf goes to the first
group whose ``match`` accepts it, the leaves no group matches to the defaults, and each
group runs the alias with ``{**defaults, **overrides}`` on its own leaves. The groups are
labels of ``optax.partition``, so all the leaves of one group share one optimizer state
(one step count, one set of moments), as a torch group does.

A leaf's key path is written as its key names joined by ``"/"``
(``"params/backbone/Dense_0/kernel"`` for Flax Linen, ``"Dense_0/kernel/value"`` or
``"Dense_0/kernel"`` for an NNX state): ``match`` is a regular expression searched in it
(``re.search``), or a function ``(path, leaf) -> bool``.
"""

from __future__ import annotations

import inspect
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

DEFAULT = "default"


def _key_name(key) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def key_path(path) -> str:
    """A key path as its key names joined by ``"/"``, the text ``param_groups`` matches.

    Args:
      path: a JAX key path (a tuple of ``DictKey``, ``GetAttrKey``, ``SequenceKey``, ...),
        as ``jax.tree_util.tree_map_with_path`` passes it.

    Returns:
      A string: ``('params', 'Dense_0', 'kernel')`` -> ``"params/Dense_0/kernel"``;
      sequence indices appear as numbers (``"layers/0/kernel"``).

    Examples:
      >>> leaves, _ = jax.tree_util.tree_flatten_with_path({"params": {"Dense_0": {"bias": 0.0}}})
      >>> key_path(leaves[0][0])
      'params/Dense_0/bias'
    """
    return "/".join(_key_name(k) for k in path)


def _matcher(index: int, match):
    if callable(match):
        return match
    if isinstance(match, str):
        try:
            pattern = re.compile(match)
        except re.error as e:
            raise ValueError(
                f"groups[{index}]: match {match!r} is not a regular expression: {e}"
            ) from e
        return lambda path, leaf: pattern.search(path) is not None
    raise ValueError(
        f"groups[{index}]: match must be a regular expression or a function (path, leaf) -> "
        f"bool, got {match!r}"
    )


_LABELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def param_groups(
    optimizer: Callable[..., optax.GradientTransformation],
    groups: Sequence[tuple[str | Callable, dict]],
    **defaults: Any,
) -> optax.GradientTransformation:
    r"""``optimizer`` (an optjx alias such as ``optjx.adamw``) with PyTorch-style groups.

    Each leaf goes to the first group whose ``match`` accepts its key path, the leaves no
    group matches to the defaults, and each group runs the alias with its own
    hyperparameters on its own leaves:

    $$
    h(\ell) = \text{defaults} \cup \text{overrides}_{g(\ell)}, \qquad
    g(\ell) = \min\{\, i : \text{match}_i(\text{path}(\ell), \ell) \,\}
    $$

    (the overrides winning; the default group when no rule matches). All the leaves of
    one group share one optimizer state (one step count, one set of moments), as a
    torch group does.

    References:
      PyTorch documentation, ``torch.optim``, "Per-parameter options"; Loshchilov &
      Hutter (2019), "Decoupled weight decay regularization" (weight decay on weights,
      not on biases and norm parameters, is the common practice this serves).

    Args:
      optimizer: a factory of keyword arguments returning a transformation (required):
        any optjx alias (``optjx.sgd``, ``optjx.adamw``, ...) or a function of your own.
      groups: a list of ``(match, overrides)`` pairs (required; may be empty). ``match``
        is a regular expression searched (``re.search``) in the leaf's ``"/"``-joined key
        path (``"params/Conv_0/kernel"`` for Flax Linen, ``"Conv_0/kernel"`` or
        ``"Conv_0/kernel/value"`` for an NNX state), or a function
        ``(path, leaf) -> bool``; ``overrides`` is a dict of ``optimizer``'s keyword
        arguments for that group (numbers, arrays or schedules).
      **defaults (Any): ``optimizer``'s keyword arguments for every group (``learning_rate``
        included), and the whole of the hyperparameters of the leaves no group matches.

    Returns:
      An ``optax.GradientTransformation``: ``optax.partition`` of one
      ``optimizer(**{**defaults, **overrides})`` per group, named ``"group_0"``,
      ``"group_1"``, ..., and ``optimizer(**defaults)`` for the unmatched leaves, named
      ``"default"``. ``group_of`` shows which leaf went where.

    Raises:
      ValueError: ``optimizer`` is not callable; an entry of ``groups`` is not a pair, its
        ``match`` neither a valid regular expression nor a function, or its overrides not
        a dict; a key (in ``groups`` or ``defaults``) that ``optimizer`` does not take,
        named; and at ``init``, a group that matches no leaf of the params.

    Differences from PyTorch and optax:
      ``torch.optim.AdamW([{"params": ..., "weight_decay": 0.0}, ...], lr=1e-3)`` lists
      tensors; here groups are rules on key paths, checked against every leaf, so they
      survive a model change. torch's ``optimizer.param_groups[i]["lr"] = ...`` is
      ``optax.inject_hyperparams`` here, or a schedule. optax needs ``optax.partition``
      and a hand-written label tree. Each group is its own sub-optimizer: a group with
      ``weight_decay=None`` has no decay stage, one with ``0.0`` keeps it (at zero).

    Examples:
      No weight decay on biases and norms, a tenth of the rate for the first
      convolution (the first rule that matches wins: the stem's bias before "bias"):

      >>> tx = optjx.param_groups(
      ...     optjx.adamw,
      ...     [("^params/Conv_0/bias", {"learning_rate": 1e-4, "weight_decay": 0.0}),
      ...      ("^params/Conv_0/", {"learning_rate": 1e-4}),
      ...      ("bias|scale", {"weight_decay": 0.0})],
      ...     learning_rate=1e-3, weight_decay=0.05,
      ... )
      >>> optjx.group_of(tx, params)["params"]["Dense_0"]
      {'bias': 'group_2', 'kernel': 'default'}
    """
    if not callable(optimizer):
        raise ValueError(f"optimizer must be an optjx alias (a function), got {optimizer!r}")
    groups = list(groups)
    signature = inspect.signature(optimizer)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())

    def check_keys(where: str, kwargs) -> None:
        if not isinstance(kwargs, dict):
            raise ValueError(f"{where} must be a dict of keyword arguments, got {kwargs!r}")
        for key in kwargs:
            if not takes_any and key not in signature.parameters:
                name = getattr(optimizer, "__name__", "optimizer")
                raise ValueError(f"{where}: {name} takes no argument {key!r}")

    check_keys("defaults", defaults)
    matchers, transforms = [], {}
    for index, entry in enumerate(groups):
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise ValueError(f"groups[{index}] must be a pair (match, overrides), got {entry!r}")
        match, overrides = entry
        check_keys(f"groups[{index}] ({match!r})", overrides)
        matchers.append(_matcher(index, match))
        transforms[f"group_{index}"] = optimizer(**{**defaults, **overrides})
    transforms[DEFAULT] = optimizer(**defaults)

    used: set[int] = set()

    def labels(params):
        used.clear()

        def label(path, leaf):
            text = key_path(path)
            for index, matches in enumerate(matchers):
                if matches(text, leaf):
                    used.add(index)
                    return f"group_{index}"
            return DEFAULT

        return jax.tree_util.tree_map_with_path(label, params)

    partitioned = optax.partition(transforms, labels)

    def init(params):
        # Checked on the params only: optax.partition labels the gradients in ``update``,
        # and a gradient tree with a key missing must fail naming that key (below).
        labels(params)
        for index in range(len(groups)):
            if index not in used:
                raise ValueError(
                    f"groups[{index}] (match {groups[index][0]!r}) matches no leaf of the params"
                )
        return partitioned.init(params)

    tx = type(partitioned)(init, partitioned.update)
    _LABELS[tx.init] = labels
    return tx


def group_of(tx: optax.GradientTransformation, params: optax.Params) -> Any:
    """The group each leaf of ``params`` falls into under ``tx``: to check the rules.

    Args:
      tx: a transformation returned by ``param_groups`` itself (not a chain or a
        wrapper around it: keep a reference to it).
      params (optax.Params): the params (or any tree of the same structure and key
        names).

    Returns:
      A tree of ``params``' structure with a group name at each leaf: ``"group_0"``,
      ``"group_1"``, ... (the index in ``groups``) or ``"default"``.

    Raises:
      ValueError: ``tx`` was not built by ``param_groups``.

    Differences from PyTorch and optax:
      torch's ``optimizer.param_groups`` lists the tensors of each group; optax has the
      label tree you wrote yourself. Here the labels are computed from the rules.

    Examples:
      >>> grouped = optjx.param_groups(optjx.adamw, [("bias", {"weight_decay": 0.0})],
      ...                              learning_rate=1e-3)
      >>> tx = optjx.monitor(optjx.chain(optjx.clip_by_global_norm(1.0), grouped))
      >>> optjx.group_of(grouped, params)       # not of tx
      {'params': {'Dense_0': {'bias': 'group_0', 'kernel': 'default'}}}
    """
    labels = _LABELS.get(tx.init)
    if labels is None:
        raise ValueError("group_of needs a transformation built by optjx.param_groups")
    return labels(params)
