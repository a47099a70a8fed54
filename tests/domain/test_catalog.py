"""The catalog: the packaged one parses; each kind of bad entry is refused, naming the entry."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from server.domain.catalog import Catalog, CatalogError, Gift, Package, parse_catalog


def packaged() -> Any:
    return json.loads(resources.files("server").joinpath("data/catalog.json").read_text("utf-8"))


def minimal() -> dict[str, Any]:
    return {
        "currency": "USD",
        "packages": [
            {"id": "coins_65", "coins": 65, "price_cents": 99},
            {"id": "coins_330", "coins": 330, "price_cents": 499},
        ],
        "gifts": [
            {"id": "rose", "name": "Rose", "coins": 1, "streakable": True, "animation": "small"},
            {
                "id": "corgi",
                "name": "Corgi",
                "coins": 299,
                "streakable": False,
                "animation": "medium",
            },
        ],
    }


def test_the_packaged_catalog_parses() -> None:
    catalog = parse_catalog(packaged())
    assert isinstance(catalog, Catalog)
    assert len(catalog.gifts) == 23
    assert len(catalog.packages) == 7
    assert catalog.gift("rose") == Gift("rose", "Rose", 1, True, "small")
    assert catalog.gift("universe") == Gift("universe", "Universe", 34999, False, "epic")
    assert catalog.package("coins_330") == Package("coins_330", 330, 499, "USD")
    assert catalog.gift("nope") is None
    assert catalog.package("nope") is None
    # Every coin amount is an integer: money never is a float.
    assert all(type(g.coins) is int for g in catalog.gifts.values())
    assert all(type(p.price_cents) is int for p in catalog.packages.values())


Edit = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Edit:
    """An edit that sets `gifts.0.coins`-style paths (a missing value deletes the key)."""

    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is MISSING:
            del node[last]
        else:
            node[last] = value

    return edit


MISSING = object()


def _append(path: str, entry: object) -> Edit:
    return lambda doc: doc[path].append(entry)


VALID_EDITS: list[tuple[str, Edit]] = [
    ("no currency defaults to USD", _set("currency", MISSING)),
    ("gift coins at the top", _set("gifts.0.coins", 1_000_000)),
    ("gift name of 40", _set("gifts.0.name", "n" * 40)),
    ("gift id of 32", _set("gifts.0.id", "a" * 32)),
    ("package coins at the top", _set("packages.0.coins", 10_000_000)),
    ("package price at the top", _set("packages.0.price_cents", 100_000_000)),
    ("a gift and a package may share an id", _set("packages.0.id", "rose")),
]


@pytest.mark.parametrize(("edit"), [e for _, e in VALID_EDITS], ids=[n for n, _ in VALID_EDITS])
def test_entries_at_the_limits_are_accepted(edit: Edit) -> None:
    doc = minimal()
    edit(doc)
    parse_catalog(doc)


def test_currency_flows_into_every_package() -> None:
    doc = minimal()
    doc["currency"] = "EUR"
    catalog = parse_catalog(doc)
    assert {p.currency for p in catalog.packages.values()} == {"EUR"}
    del doc["currency"]
    assert {p.currency for p in parse_catalog(doc).packages.values()} == {"USD"}


BAD_EDITS: list[tuple[str, Edit, str]] = [
    # the document
    ("currency lower case", _set("currency", "usd"), "currency"),
    ("currency two letters", _set("currency", "US"), "currency"),
    ("currency a number", _set("currency", 840), "currency"),
    ("currency with a newline", _set("currency", "USD\n"), "currency"),
    ("gifts missing", _set("gifts", MISSING), "gifts"),
    ("gifts empty", _set("gifts", []), "gifts"),
    ("gifts an object", _set("gifts", {"rose": {}}), "gifts"),
    ("packages missing", _set("packages", MISSING), "packages"),
    ("packages empty", _set("packages", []), "packages"),
    # gift entries
    ("gift not an object", _append("gifts", "rose"), "gifts[2]"),
    ("gift id missing", _set("gifts.1.id", MISSING), "gifts[1]: id"),
    ("gift id upper case", _set("gifts.1.id", "Corgi"), "gifts[1]: id"),
    ("gift id empty", _set("gifts.1.id", ""), "gifts[1]: id"),
    ("gift id of 33", _set("gifts.1.id", "a" * 33), "gifts[1]: id"),
    ("gift id with a space", _set("gifts.1.id", "cor gi"), "gifts[1]: id"),
    ("gift id with a newline", _set("gifts.1.id", "corgi\n"), "gifts[1]: id"),
    ("gift id a number", _set("gifts.1.id", 7), "gifts[1]: id"),
    ("gift id duplicate", _set("gifts.1.id", "rose"), "gifts[1]: duplicate"),
    ("gift name missing", _set("gifts.1.name", MISSING), "gifts[1]: name"),
    ("gift name empty", _set("gifts.1.name", ""), "gifts[1]: name"),
    ("gift name of 41", _set("gifts.1.name", "n" * 41), "gifts[1]: name"),
    ("gift name a number", _set("gifts.1.name", 5), "gifts[1]: name"),
    ("streakable missing", _set("gifts.1.streakable", MISSING), "gifts[1]: streakable"),
    ("streakable a string", _set("gifts.1.streakable", "yes"), "gifts[1]: streakable"),
    ("streakable an int", _set("gifts.1.streakable", 1), "gifts[1]: streakable"),
    ("animation unknown", _set("gifts.1.animation", "huge"), "gifts[1]: animation"),
    ("animation missing", _set("gifts.1.animation", MISSING), "gifts[1]: animation"),
    ("gift coins zero", _set("gifts.1.coins", 0), "gifts[1]: coins"),
    ("gift coins negative", _set("gifts.1.coins", -1), "gifts[1]: coins"),
    ("gift coins over the top", _set("gifts.1.coins", 1_000_001), "gifts[1]: coins"),
    ("gift coins a float", _set("gifts.1.coins", 299.0), "gifts[1]: coins"),
    ("gift coins a bool", _set("gifts.1.coins", True), "gifts[1]: coins"),
    ("gift coins a string", _set("gifts.1.coins", "299"), "gifts[1]: coins"),
    ("gift coins missing", _set("gifts.1.coins", MISSING), "gifts[1]: coins"),
    # package entries
    ("package not an object", _append("packages", ["coins_1", 1, 1]), "packages[2]"),
    ("package id bad", _set("packages.1.id", "Coins 330"), "packages[1]: id"),
    ("package id duplicate", _set("packages.1.id", "coins_65"), "packages[1]: duplicate"),
    ("package coins zero", _set("packages.1.coins", 0), "packages[1]: coins"),
    ("package coins over the top", _set("packages.1.coins", 10_000_001), "packages[1]: coins"),
    ("package coins a float", _set("packages.1.coins", 330.5), "packages[1]: coins"),
    ("package price zero", _set("packages.1.price_cents", 0), "packages[1]: price_cents"),
    ("package price a float", _set("packages.1.price_cents", 4.99), "packages[1]: price_cents"),
    (
        "package price over the top",
        _set("packages.1.price_cents", 100_000_001),
        "packages[1]: price_cents",
    ),
    ("package price missing", _set("packages.1.price_cents", MISSING), "packages[1]: price_cents"),
]


@pytest.mark.parametrize(
    ("edit", "names"), [(e, w) for _, e, w in BAD_EDITS], ids=[n for n, _, _ in BAD_EDITS]
)
def test_a_bad_entry_is_refused_naming_it(edit: Edit, names: str) -> None:
    doc = minimal()
    edit(doc)
    with pytest.raises(CatalogError, match=re.escape(names)):
        parse_catalog(doc)


@pytest.mark.parametrize("doc", [None, [], "catalog", 5, [minimal()]])
def test_a_document_that_is_not_an_object_is_refused(doc: object) -> None:
    with pytest.raises(CatalogError, match="object"):
        parse_catalog(doc)


def test_parsing_does_not_change_the_document() -> None:
    doc = packaged()
    before = copy.deepcopy(doc)
    parse_catalog(doc)
    assert doc == before
