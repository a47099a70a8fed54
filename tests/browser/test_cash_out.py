"""A host cashes out their diamonds; an operator pays it; the app shows it paid."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.chromium import NewContext
from tests.browser.pages import confirm, open_wallet, sign_up, token_of
from tests.browser.server import me, payouts
from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN


async def test_a_host_cashes_out_whole_cents_sees_it_pending_and_after_settling_paid(
    api: Api, new_context: NewContext
) -> None:
    host = await (await new_context(390, 844)).new_page()
    await sign_up(host, "jane_streams")
    token = await token_of(host)
    r = await api.call("POST", "/api/rooms", token, json={"title": "night drive"})
    assert r.status_code == 201, r.text

    # A fan sends a Whale Diving (2,150) and a Rose: 2,151 diamonds, of which 2,150 make whole
    # cents ($10.75 at 50 cents per 100) and 1 is worth half a cent.
    fan = await api.signup("kim_fan")
    await api.recharge(fan, "coins_3303")
    async with api.room(r.json()["id"], fan.token) as ws:
        await ws.recv_type("welcome")
        for request_id, gift in (("g-1", "whale_diving"), ("g-2", "rose")):
            assert (await ws.gift(request_id, gift))["type"] == "gift_ok"

    await open_wallet(host)
    await expect(host.get_by_test_id("wallet-diamonds")).to_have_text("2,151")
    await host.get_by_test_id("wallet-cashout").click()
    panel = host.get_by_test_id("cashout-panel")
    await expect(panel).to_be_focused()
    await expect(panel.get_by_test_id("cashout-diamonds")).to_have_text("2,151")
    await expect(panel.get_by_test_id("cashout-value")).to_have_text("$10.755")
    await expect(panel.get_by_test_id("cashout-amount")).to_have_value("2150")
    await expect(panel.get_by_test_id("cashout-preview")).to_have_text(
        "You get $10.75 for 2,150 diamonds."
    )
    await expect(panel.get_by_test_id("payouts-empty")).to_be_visible()
    await panel.get_by_test_id("cashout-submit").click()
    await confirm(host)

    item = panel.get_by_test_id("payout-item")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-status", "pending")
    await expect(item.get_by_test_id("payout-status")).to_have_text("Pending review")
    await expect(item).to_contain_text("$10.75")
    await expect(panel.get_by_test_id("cashout-diamonds")).to_have_text("1")
    await expect(host.get_by_test_id("wallet-diamonds")).to_have_text("1")
    assert await host.evaluate("() => localStorage.getItem('giftcast.payout')") is None
    (payout,) = await payouts(api, token)
    assert (payout["diamonds"], payout["cents"], payout["status"]) == (2150, 1075, "pending")
    assert (await me(api, token))["diamonds"] == 1

    # Below the minimum, the form says so in words and asks nothing of the server.
    await panel.get_by_test_id("cashout-amount").fill("1")
    await panel.get_by_test_id("cashout-submit").click()
    await expect(panel.get_by_test_id("cashout-error")).to_have_text(
        "The smallest cash out is 2,000 diamonds ($10.00). You have 1: keep going live!"
    )
    assert len(await payouts(api, token)) == 1

    # The operator pays it; the host's app, reloaded, shows it paid.
    settled = await api.call(
        "POST", f"/api/admin/payouts/{payout['id']}/settle", ADMIN_TOKEN, json={"outcome": "paid"}
    )
    assert settled.status_code == 200 and settled.json()["status"] == "paid", settled.text
    await host.reload()
    await expect(item).to_have_attribute("data-status", "paid")
    await expect(item.get_by_test_id("payout-status")).to_have_text("Paid")
    (payout,) = await payouts(api, token)
    assert payout["status"] == "paid"
