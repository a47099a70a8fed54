"""A viewer's daily spending limit, set and raised in the wallet, enforced on a gift."""

from __future__ import annotations

import datetime as dt
import re

from playwright.async_api import expect

from tests.browser.chromium import NewContext
from tests.browser.pages import all_sent, buy_coins, join, open_wallet, sign_up, tap_gift, token_of
from tests.browser.server import ledger, limits, me
from tests.support.client import Api


async def test_a_viewer_sets_a_limit_of_50_gifts_until_it_is_reached_then_raises_it_to_wait_24_h(
    api: Api, new_context: NewContext
) -> None:
    host = await api.signup("frank_live")
    room = await api.go_live(host, "board games")
    viewer = await (await new_context()).new_page()
    await sign_up(viewer, "gina_budget")
    await buy_coins(viewer, "coins_330")
    token = await token_of(viewer)

    # The wallet's "Daily limit" panel: none yet; days would end in the browser's zone (UTC here).
    await open_wallet(viewer)
    panel = viewer.get_by_test_id("limit-panel")
    await expect(panel.get_by_test_id("limit-current")).to_have_text("No limit")
    await expect(panel.get_by_test_id("limit-zone")).to_have_value("UTC")
    await panel.get_by_test_id("limit-amount").fill("50")
    await panel.get_by_test_id("limit-amount").press("Enter")
    await expect(panel.get_by_test_id("limit-current")).to_have_text("50 coins a day")
    await expect(panel.get_by_test_id("limit-left")).to_have_text("50 coins")
    await expect(panel.get_by_test_id("limit-pending")).to_be_hidden()
    doc = await limits(api, token)
    assert (doc["daily_coins"], doc["time_zone"], doc["pending"]) == (50, "UTC", None)

    # A Doughnut (30) goes through; the second would pass the limit: the app says so.
    await join(viewer, room["id"])
    await tap_gift(viewer, "doughnut")
    await all_sent(viewer)
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("300")
    await tap_gift(viewer, "doughnut")
    await all_sent(viewer)
    notice = viewer.get_by_test_id("limit-notice")
    await expect(notice).to_be_visible()
    await expect(notice.get_by_test_id("limit-notice-text")).to_have_text(
        re.compile(
            r"^Daily limit reached: Doughnut costs 30 coins and only 20 coins are left of your"
            r" 50-coin daily limit\. It resets at midnight UTC, in .+\.$"
        )
    )
    await expect(viewer.get_by_test_id("recharge-panel")).to_be_hidden()
    await expect(viewer.get_by_test_id("room-balance")).to_have_text("300")
    assert (await me(api, token))["coins"] == 300
    assert await ledger(api, token) == [("gift_sent", "doughnut", -30), ("recharge", None, 330)]

    # Its link leads to the panel, which shows today's spend.
    await notice.get_by_test_id("limit-notice-link").click()
    await expect(viewer).to_have_url(re.compile(r"#/wallet/limit$"))
    await expect(panel).to_be_focused()
    await expect(panel.get_by_test_id("limit-spent")).to_have_text("30 coins")
    await expect(panel.get_by_test_id("limit-left")).to_have_text("20 coins")

    # Raising it to 100 waits 24 hours: the panel shows the change waiting, 50 still applies.
    await panel.get_by_test_id("limit-amount").fill("100")
    await panel.get_by_test_id("limit-save").click()
    pending = panel.get_by_test_id("limit-pending")
    await expect(pending).to_be_visible()
    await expect(pending.get_by_test_id("limit-pending-text")).to_contain_text(
        "your limit goes up to 100 coins a day. Until then, 50 coins a day still applies."
    )
    await expect(pending.get_by_test_id("limit-pending-text")).to_contain_text("(in 24 h)")
    await expect(panel.get_by_test_id("limit-current")).to_have_text("50 coins a day")
    await expect(panel.get_by_test_id("limit-amount")).to_have_value("100")
    doc = await limits(api, token)
    assert doc["daily_coins"] == 50 and doc["left_today"] == 20
    assert doc["pending"]["daily_coins"] == 100 and doc["pending"]["time_zone"] == "UTC"
    wait = dt.datetime.fromisoformat(doc["pending"]["effective_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < wait <= dt.timedelta(hours=24)
