"""The cards are the list of optimizers: every card is in the algorithm index and in a
porting table, so that a new optimizer cannot be forgotten in the docs.

The rule:

* every card's name is linked (``[...][optjx.<name>]``) from ``docs/algorithms/index.md``;
* every alias card (``cards.ALIASES``) is linked from a table row of
  ``docs/porting-torch.md`` (the ``torch.optim`` class, or the PyTorch package, it
  reproduces), unless it is in ``NO_TORCH_TWIN`` with the reason;
* every other card (building blocks and wrappers) is linked from a table row of
  ``docs/porting-torch.md`` or ``docs/porting-optax.md``, unless it is in ``NO_TWIN``
  with the reason.

Both lists of exceptions are checked too: a name in them must be a card, and must not be
in the tables (then it has a twin, and the exception is stale).
"""

from __future__ import annotations

import re
from pathlib import Path

import cards
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Aliases that no torch.optim class (nor a PyTorch package) computes.
NO_TORCH_TWIN = {
    "newton_cg": 'scipy\'s minimize(method="Newton-CG"), not torch.optim',
    "trust_region_newton": 'scipy\'s minimize(method="trust-ncg"), not torch.optim',
    "novograd": "not in torch.optim (NVIDIA's NeMo has one); its optax twin is in porting-optax",
    "delta_bar_delta": "Jacobs 1988: in neither torch.optim nor optax",
}
# Building blocks and wrappers with a twin in neither torch nor optax.
NO_TWIN = {
    "block_coordinate": "in neither torch.optim nor optax (Goodfellow et al. 2016, sec. 8.7.2)",
    "scale_by_nadam": "optax's NAdam is scale_by_adam(nesterov=True): no momentum schedule; "
    "the nadam row covers the alias",
    "scale_by_adafactor": "optax's scale_by_factored_rms is another algorithm (the adafactor "
    "row says how)",
    "orthogonalize_by_newton_schulz": "optax has the iteration only inside scale_by_muon",
    "scale_by_delta_bar_delta": "Jacobs 1988: in neither torch.optim nor optax",
}


def _linked(text: str) -> set[str]:
    return set(re.findall(r"\]\[optjx\.([A-Za-z_0-9]+)\]", text))


def _table_rows(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.lstrip().startswith("|"))


INDEX = _linked((DOCS / "algorithms" / "index.md").read_text())
TORCH = _linked(_table_rows((DOCS / "porting-torch.md").read_text()))
OPTAX = _linked(_table_rows((DOCS / "porting-optax.md").read_text()))
ALIASES = [c.name for c in cards.ALIASES]
OTHERS = [c.name for c in cards.CARDS if c.name not in ALIASES]


@pytest.mark.parametrize("name", [c.name for c in cards.CARDS])
def test_every_card_is_in_the_algorithm_index(name):
    assert name in INDEX, f"link [`{name}`][optjx.{name}] from docs/algorithms/index.md"


@pytest.mark.parametrize("name", ALIASES)
def test_every_alias_is_in_the_torch_porting_table(name):
    if name in NO_TORCH_TWIN:
        assert name not in TORCH, f"{name} is in porting-torch's table: drop it from NO_TORCH_TWIN"
        return
    assert name in TORCH, (
        f"add a row for [`{name}`][optjx.{name}] to the table of docs/porting-torch.md, or put "
        f"{name} in NO_TORCH_TWIN of {Path(__file__).name} with the reason"
    )


@pytest.mark.parametrize("name", OTHERS)
def test_every_block_and_wrapper_is_in_a_porting_table(name):
    if name in NO_TWIN:
        assert name not in TORCH | OPTAX, f"{name} is in a porting table: drop it from NO_TWIN"
        return
    assert name in TORCH | OPTAX, (
        f"add a row for [`{name}`][optjx.{name}] to the table of docs/porting-optax.md (or "
        f"porting-torch.md), or put {name} in NO_TWIN of {Path(__file__).name} with the reason"
    )


def test_exceptions_are_cards():
    names = {c.name for c in cards.CARDS}
    assert set(NO_TORCH_TWIN) <= set(ALIASES), set(NO_TORCH_TWIN) - set(ALIASES)
    assert set(NO_TWIN) <= names - set(ALIASES), set(NO_TWIN) - (names - set(ALIASES))
