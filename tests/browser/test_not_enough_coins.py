"""Not enough coins: the app offers a recharge, and nothing is debited."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.chromium import NewContext
from tests.browser.pages import (
    all_sent,
    buy_coins,
    buy_in_open_panel,
    coins,
    join,
    sign_up,
    tap_gift,
    token_of,
)
from tests.browser.server import ledger, me, room_seq
from tests.support.client import Api


async def viewer_in_a_live_with_65_coins(api: Api, new_context: NewContext) -> tuple[Page, int]:
    host = await api.signup("carol_live")
    room = await api.go_live(host, "cooking")
    viewer = await (await new_context()).new_page()
    await sign_up(viewer, "dave_65")
    await buy_coins(viewer, "coins_65")
    await join(viewer, room["id"])
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("65")
    return viewer, int(room["id"])


async def test_a_gift_dearer_than_the_balance_opens_the_recharge_offer_and_debits_nothing(
    api: Api, new_context: NewContext
) -> None:
    viewer, room_id = await viewer_in_a_live_with_65_coins(api, new_context)

    await tap_gift(viewer, "money_gun")

    panel = viewer.get_by_test_id("recharge-panel")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_test_id("recharge-reason")).to_have_text(
        "Money Gun costs 500 coins and you have 65. Top up to send it."
    )
    await expect(panel.get_by_test_id("recharge-balance")).to_have_text("65")
    token = await token_of(viewer)
    assert (await me(api, token))["coins"] == 65
    assert await ledger(api, token) == [("recharge", None, 65)]
    assert await room_seq(api, room_id) == 0

    # Taking the offer: 1,321 more coins, and the same tap now sends the gift.
    await buy_in_open_panel(viewer, "coins_1321")
    await expect(viewer.get_by_test_id("room-balance")).to_have_text(coins(1386))
    await tap_gift(viewer, "money_gun")
    await all_sent(viewer)
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("886")
    assert (await me(api, token))["coins"] == 886
    assert await ledger(api, token) == [
        ("gift_sent", "money_gun", -500),
        ("recharge", None, 1321),
        ("recharge", None, 65),
    ]


async def test_a_gift_the_server_refuses_for_want_of_coins_opens_the_offer_and_debits_nothing(
    api: Api, new_context: NewContext
) -> None:
    viewer, room_id = await viewer_in_a_live_with_65_coins(api, new_context)
    token = await token_of(viewer)

    # The same account spends 60 coins on another device; this page still shows 65.
    async with api.room(room_id, token) as phone:
        await phone.recv_type("welcome")
        assert (await phone.gift("phone-1", "perfume", 3))["type"] == "gift_ok"
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("65")

    # A Doughnut (30) looks affordable here; the server refuses it.
    await tap_gift(viewer, "doughnut")

    panel = viewer.get_by_test_id("recharge-panel")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_test_id("recharge-reason")).to_have_text(
        "Not enough coins for Doughnut. Top up to keep gifting."
    )
    await expect(panel.get_by_test_id("recharge-balance")).to_have_text("5")
    await all_sent(viewer)
    assert (await me(api, token))["coins"] == 5
    assert await ledger(api, token) == [("gift_sent", "perfume", -60), ("recharge", None, 65)]

    await buy_in_open_panel(viewer, "coins_330")
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("335")
    await tap_gift(viewer, "doughnut")
    await all_sent(viewer)
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("305")
    assert (await me(api, token))["coins"] == 305
    assert await ledger(api, token) == [
        ("gift_sent", "doughnut", -30),
        ("recharge", None, 330),
        ("gift_sent", "perfume", -60),
        ("recharge", None, 65),
    ]
