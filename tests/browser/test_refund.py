"""A viewer refunds an accidental purchase from the wallet's history."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Route, expect

from tests.browser.chromium import NewContext
from tests.browser.pages import buy_coins, confirm, open_wallet, sign_up, token_of
from tests.browser.server import ledger, me
from tests.support.client import Api


async def test_a_viewer_refunds_coins_bought_by_accident_and_cannot_refund_spent_ones(
    api: Api, new_context: NewContext
) -> None:
    host = await api.signup("hana_live")
    room = await api.go_live(host, "knitting")
    viewer = await (await new_context(390, 844)).new_page()
    await sign_up(viewer, "ivan_oops")
    await buy_coins(viewer, "coins_65")
    await buy_coins(viewer, "coins_330")  # meant to buy nothing more
    token = await token_of(viewer)
    bought = {t[2]: t for t in await ledger(api, token)}
    assert set(bought) == {65, 330}

    await open_wallet(viewer)
    await expect(viewer.get_by_test_id("wallet-balance")).to_have_text("395")
    await expect(viewer.get_by_test_id("wallet-coins-cost")).to_have_text(
        "Your 395 coins cost you $5.98"
    )
    items = viewer.get_by_test_id("wallet-item")
    await expect(items).to_have_count(2)
    await expect(items.nth(0)).to_have_attribute("data-kind", "recharge")
    accident_id = int(await items.nth(0).get_attribute("data-id") or 0)
    first_id = int(await items.nth(1).get_attribute("data-id") or 0)
    accident = viewer.locator(f"[data-testid=wallet-item][data-id='{accident_id}']")
    first = viewer.locator(f"[data-testid=wallet-item][data-id='{first_id}']")

    # The first try gets no answer (the connection drops); "Try again" sends the same key.
    keys: list[str] = []

    async def drop_once(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            await route.abort("connectionreset")
        else:
            await route.continue_()

    await viewer.route("**/api/wallet/refunds", drop_once)
    await accident.get_by_test_id("tx-refund").click()
    await confirm(viewer)
    await expect(accident.get_by_test_id("tx-refund-status")).to_contain_text(
        "We couldn't confirm your refund."
    )
    kept: Any = await viewer.evaluate("() => localStorage.getItem('giftcast.refund')")
    assert kept is not None and keys[0] in kept
    assert (await me(api, token))["coins"] == 395
    await accident.get_by_test_id("tx-refund").click()  # now labelled "Try again"

    # Refunded: the balance, the history and the cost of the coins left all follow.
    await expect(viewer.get_by_test_id("balance")).to_have_text("65")
    await expect(items).to_have_count(3)
    await expect(items.nth(0)).to_have_attribute("data-kind", "refund")
    await expect(items.nth(0)).to_contain_text("Refunded a purchase")
    await expect(accident.get_by_test_id("tx-refunded")).to_have_text("Refunded")
    await expect(accident.get_by_test_id("tx-refund")).to_have_count(0)
    # A refund takes its coins out at their average cost (docs/money.md): 330 of 395 coins
    # that cost $5.98 took $4.99594 along, so the 65 left hold $0.98406 of it.
    await expect(viewer.get_by_test_id("wallet-coins-cost")).to_have_text(
        "Your 65 coins cost you $0.9841"
    )
    assert len(keys) == 2 and keys[0] == keys[1]
    assert await viewer.evaluate("() => localStorage.getItem('giftcast.refund')") is None
    assert (await me(api, token))["coins"] == 65
    assert await ledger(api, token) == [
        ("refund", None, -330),
        ("recharge", None, 330),
        ("recharge", None, 65),
    ]
    audit = await api.audit()
    assert audit["balanced"] and audit["totals"]["coin"]["refunded"] == 330, audit

    # The same account spends a Rose elsewhere: the first purchase can no longer be refunded.
    async with api.room(room["id"], token) as phone:
        await phone.recv_type("welcome")
        assert (await phone.gift("phone-1", "rose", 1))["type"] == "gift_ok"
    await first.get_by_test_id("tx-refund").click()
    await confirm(viewer)
    await expect(first.get_by_test_id("tx-refund-status")).to_have_text(
        "Some of these 65 coins have been spent, so this purchase can't be refunded."
        " A refund takes back every coin it bought."
    )
    await expect(viewer.get_by_test_id("balance")).to_have_text("64")
    assert (await me(api, token))["coins"] == 64
