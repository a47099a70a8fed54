"""`GET /api/catalog`: the gifts, the coin packages and the money rates, all in integers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_has_keys,
    assert_no_floats,
    is_int,
    ok_json,
    on_shared_server,
    shared_server,
)
from tests.support.client import Api

pytestmark = on_shared_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as shared:
        yield shared


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalog(api: Api) -> dict[str, Any]:
    user = await api.signup("catalog_reader", ADULT_BIRTHDATE)
    return ok_json(await api.call("GET", "/api/catalog", user.token))


async def test_the_catalog_has_gifts_packages_and_the_three_money_rates(
    catalog: dict[str, Any],
) -> None:
    assert_has_keys(
        catalog,
        {"gifts", "packages", "diamonds_per_coin", "cents_per_100_diamonds"}
        | {"payout_minimum_diamonds"},
        "the catalog",
    )
    assert isinstance(catalog["gifts"], list) and catalog["gifts"]
    assert isinstance(catalog["packages"], list) and catalog["packages"]


@pytest.mark.parametrize(
    ("rate", "value"),
    [
        pytest.param("diamonds_per_coin", 1, id="a-coin-gifted-is-a-diamond"),
        pytest.param("cents_per_100_diamonds", 50, id="100-diamonds-cash-out-at-50-cents"),
        pytest.param("payout_minimum_diamonds", 2000, id="payouts-start-at-2000-diamonds"),
    ],
)
async def test_the_default_money_rates(catalog: dict[str, Any], rate: str, value: int) -> None:
    assert catalog[rate] == value and is_int(catalog[rate])


async def test_the_default_streak_window_is_the_contracts_3_s(catalog: dict[str, Any]) -> None:
    assert catalog["streak_window_ms"] == 3000 and is_int(catalog["streak_window_ms"])


async def test_every_amount_in_the_catalog_is_an_integer(catalog: dict[str, Any]) -> None:
    assert_no_floats(catalog)


async def test_every_gift_has_id_name_coins_streakable_and_animation(
    catalog: dict[str, Any],
) -> None:
    ids = [gift["id"] for gift in catalog["gifts"]]
    assert len(ids) == len(set(ids)), f"gift ids repeat: {ids}"
    for gift in catalog["gifts"]:
        assert_has_keys(gift, {"id", "name", "coins", "streakable", "animation"}, "a gift")
        assert isinstance(gift["id"], str) and gift["id"], gift
        assert isinstance(gift["name"], str) and gift["name"], gift
        assert is_int(gift["coins"]) and gift["coins"] >= 1, gift
        assert isinstance(gift["streakable"], bool), gift
        assert isinstance(gift["animation"], str) and gift["animation"], gift


async def test_every_package_has_id_coins_price_cents_and_currency(
    catalog: dict[str, Any],
) -> None:
    ids = [package["id"] for package in catalog["packages"]]
    assert len(ids) == len(set(ids)), f"package ids repeat: {ids}"
    for package in catalog["packages"]:
        assert_has_keys(package, {"id", "coins", "price_cents", "currency"}, "a package")
        assert isinstance(package["id"], str) and package["id"], package
        assert is_int(package["coins"]) and package["coins"] >= 1, package
        assert is_int(package["price_cents"]) and package["price_cents"] >= 1, package
        assert isinstance(package["currency"], str) and package["currency"], package


@pytest.mark.parametrize(
    ("coins", "price_cents"),
    [
        pytest.param(65, 99, id="65-coins-for-0.99"),
        pytest.param(330, 499, id="330-coins-for-4.99"),
        pytest.param(1321, 1999, id="1321-coins-for-19.99"),
        pytest.param(6607, 9999, id="6607-coins-for-99.99"),
    ],
)
async def test_the_coin_packages_on_sale(
    catalog: dict[str, Any], coins: int, price_cents: int
) -> None:
    offers = {(p["coins"], p["price_cents"], p["currency"]) for p in catalog["packages"]}
    assert (coins, price_cents, "USD") in offers, offers


@pytest.mark.parametrize(
    ("gift_id", "coins", "streakable"),
    [
        pytest.param("rose", 1, True, id="rose-1-coin-streakable"),
        pytest.param("tiktok", 1, None, id="tiktok-1-coin"),
        pytest.param("finger_heart", 5, None, id="finger-heart-5-coins"),
        pytest.param("doughnut", 30, None, id="doughnut-30-coins"),
        pytest.param("hand_hearts", 100, None, id="hand-hearts-100-coins"),
        pytest.param("galaxy", 1000, None, id="galaxy-1000-coins"),
        pytest.param("lion", 29999, None, id="lion-29999-coins"),
        pytest.param("universe", 34999, None, id="universe-34999-coins"),
    ],
)
async def test_the_gifts_on_offer(
    catalog: dict[str, Any], gift_id: str, coins: int, streakable: bool | None
) -> None:
    gifts = {gift["id"]: gift for gift in catalog["gifts"]}
    assert gift_id in gifts, sorted(gifts)
    gift = gifts[gift_id]
    assert gift["coins"] == coins
    if streakable is not None:
        assert gift["streakable"] is streakable
    assert gift["animation"]
