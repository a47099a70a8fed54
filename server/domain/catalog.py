"""The catalog: coin packages for sale and gifts to send. It is data, validated here.

`parse_catalog` takes the decoded JSON document and returns a `Catalog` or raises
`CatalogError` naming the first bad entry; the server refuses to start on a bad catalog.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANIMATION_TIERS = ("small", "medium", "large", "epic")
_ID = re.compile(r"[a-z0-9_]{1,32}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class CatalogError(ValueError):
    """The catalog document is not valid."""


@dataclass(frozen=True, slots=True)
class Gift:
    id: str
    name: str
    coins: int
    streakable: bool
    animation: str


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    coins: int
    price_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class Catalog:
    gifts: Mapping[str, Gift]
    packages: Mapping[str, Package]
    currency: str = "USD"  # of every package's price, and so of every cash value shown

    def gift(self, gift_id: str) -> Gift | None:
        return self.gifts.get(gift_id)

    def package(self, package_id: str) -> Package | None:
        return self.packages.get(package_id)


def _int(entry: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = entry.get(key)
    if type(value) is not int or not low <= value <= high:
        raise CatalogError(f"{where}: {key} must be an integer {low}-{high}, got {value!r}")
    return value


def _id(entry: Mapping[str, Any], where: str, seen: set[str]) -> str:
    value = entry.get("id")
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise CatalogError(f"{where}: id must match {_ID.pattern}, got {value!r}")
    if value in seen:
        raise CatalogError(f"{where}: duplicate id {value!r}")
    seen.add(value)
    return value


def parse_catalog(doc: Any) -> Catalog:
    if not isinstance(doc, dict):
        raise CatalogError("catalog: the document must be an object")
    currency = doc.get("currency", "USD")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise CatalogError(f"catalog: currency must be a 3-letter code, got {currency!r}")
    raw_gifts, raw_packages = doc.get("gifts"), doc.get("packages")
    if not isinstance(raw_gifts, list) or not raw_gifts:
        raise CatalogError("catalog: gifts must be a non-empty list")
    if not isinstance(raw_packages, list) or not raw_packages:
        raise CatalogError("catalog: packages must be a non-empty list")
    gifts: dict[str, Gift] = {}
    seen: set[str] = set()
    for n, entry in enumerate(raw_gifts):
        where = f"gifts[{n}]"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: must be an object")
        gift_id = _id(entry, where, seen)
        name = entry.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 40:
            raise CatalogError(f"{where}: name must be 1-40 characters")
        streakable = entry.get("streakable")
        if not isinstance(streakable, bool):
            raise CatalogError(f"{where}: streakable must be true or false")
        animation = entry.get("animation")
        if animation not in ANIMATION_TIERS:
            raise CatalogError(f"{where}: animation must be one of {ANIMATION_TIERS}")
        coins = _int(entry, "coins", where, 1, 1_000_000)
        gifts[gift_id] = Gift(gift_id, name, coins, streakable, str(animation))
    packages: dict[str, Package] = {}
    seen = set()
    for n, entry in enumerate(raw_packages):
        where = f"packages[{n}]"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: must be an object")
        package_id = _id(entry, where, seen)
        coins = _int(entry, "coins", where, 1, 10_000_000)
        price = _int(entry, "price_cents", where, 1, 100_000_000)
        packages[package_id] = Package(package_id, coins, price, currency)
    return Catalog(gifts=gifts, packages=packages, currency=currency)
