r"""PyTorch's parameter groups for any optjx alias, on ``optax.partition``.

``torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1}, {"params": others,
"weight_decay": 0.0}], lr=1e-3)`` gives each tensor the hyperparameters of the one group
it belongs to, and the keyword arguments of the constructor to the groups that do not
set them. :func:`param_groups` does the same for pytrees: each leaf goes to the first
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

import jax
import optax

DEFAULT = "default"


def _key_name(key) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def key_path(path) -> str:
    """A key path as ``"/"``-joined key names: ``('params', 'Dense_0', 'kernel')`` ->
    ``"params/Dense_0/kernel"``."""
    return "/".join(_key_name(k) for k in path)


def _matcher(index: int, match):
    if callable(match):
        return match
    if isinstance(match, str):
        try:
            pattern = re.compile(match)
        except re.error as e:
            raise ValueError(f"groups[{index}]: match {match!r} is not a regular expression: {e}")
        return lambda path, leaf: pattern.search(path) is not None
    raise ValueError(
        f"groups[{index}]: match must be a regular expression or a function (path, leaf) -> "
        f"bool, got {match!r}"
    )


_LABELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def param_groups(
    optimizer: Callable[..., optax.GradientTransformation],
    groups: Sequence[tuple[str | Callable, dict]],
    **defaults,
) -> optax.GradientTransformation:
    """``optimizer`` (an optjx alias such as ``optjx.adamw``) with PyTorch-style groups.

    Args:
      optimizer: a factory of keyword arguments returning a transformation: any optjx
        alias (``optjx.sgd``, ``optjx.adamw``, ...) or a function of your own.
      groups: a list of ``(match, overrides)``. ``match``: a regular expression searched
        in the leaf's ``"/"``-joined key path, or a function ``(path, leaf) -> bool``;
        ``overrides``: a dict of ``optimizer``'s keyword arguments for that group. A leaf
        belongs to the first group that matches.
      **defaults: ``optimizer``'s keyword arguments for every group (``learning_rate``
        included), and the whole of the hyperparameters of the leaves no group matches.

    Returns:
      ``optax.partition`` of one ``optimizer(**{**defaults, **overrides})`` per group
      (and one of ``defaults`` for the unmatched leaves, named ``"default"``). The
      groups are named ``"group_0"``, ``"group_1"``, ...; :func:`group_of` shows which
      leaf went where.

    ``ValueError`` naming it for a key ``optimizer`` does not take, and (at ``init``) for
    a group that matches no leaf. Each group is its own sub-optimizer, so an alias that
    drops a stage for a Python-zero weight decay may have a different state structure in
    each group.

    Differences: torch groups list tensors; here they are rules on key paths, checked
    against every leaf. optax needs ``optax.partition`` and a hand-written label tree.

    Example (no weight decay on biases and norms, a tenth of the rate for the stem)::

        tx = optjx.param_groups(
            optjx.adamw,
            [("bias|scale|Norm", {"weight_decay": 0.0}),
             ("^params/Conv_0/", {"learning_rate": 1e-4})],
            learning_rate=1e-3, weight_decay=0.05,
        )
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

    used: set[str] = set()

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


def group_of(tx: optax.GradientTransformation, params):
    """The tree of group names (``"group_0"``, ..., ``"default"``) that ``tx``, built by
    :func:`param_groups`, gives each leaf of ``params``: to check the rules."""
    labels = _LABELS.get(tx.init)
    if labels is None:
        raise ValueError("group_of needs a transformation built by optjx.param_groups")
    return labels(params)
