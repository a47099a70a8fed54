"""A live seen in three windows: the host's app, a viewer's app and the host's OBS overlay."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.chromium import NewContext
from tests.browser.pages import (
    all_sent,
    buy_coins,
    coins,
    go_live,
    join,
    open_overlay_preview,
    sign_up,
    tap_gift,
    token_of,
)
from tests.browser.server import ledger, me, room_seq
from tests.support.client import Api

ROSES = 5
MONEY_GUN = 500
BOUGHT = 1321


async def test_viewer_signs_up_tops_up_sends_a_rose_streak_and_a_money_gun_and_every_window_agrees(
    api: Api, new_context: NewContext
) -> None:
    host = await (await new_context()).new_page()
    viewer = await (await new_context()).new_page()

    # The host signs up, goes live and opens the overlay preview: what OBS would show.
    await sign_up(host, "bob_sings")
    room_id = await go_live(host, "late night music")
    overlay = await open_overlay_preview(host)
    await expect(overlay.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "open"
    )

    # The viewer signs up, buys 1,321 coins and joins the live from the lobby.
    await sign_up(viewer, "alice_gifts")
    await buy_coins(viewer, "coins_1321")
    await expect(viewer.get_by_test_id("balance")).to_have_text(coins(BOUGHT))
    await join(viewer, room_id)
    await expect(viewer.get_by_test_id("room-title")).to_have_text("late night music")
    await expect(viewer.get_by_test_id("room-balance")).to_have_text(coins(BOUGHT))

    # A streak of five Roses: the viewer's combo counter counts them.
    await tap_gift(viewer, "rose", ROSES)
    counter = viewer.get_by_test_id("streak-counter")
    await expect(counter).to_have_attribute("data-count", str(ROSES))
    await expect(counter).to_have_attribute("data-gift", "rose")
    await expect(counter).to_contain_text(f"Rose x{ROSES}")
    await all_sent(viewer)

    # Then one big gift, which also ends the streak at once.
    await tap_gift(viewer, "money_gun")
    await all_sent(viewer)
    # What it cost in cash: 500 of the 1,316 coins left, whose basis is what is left of $19.99
    # after five Roses (1,513 millicents each); the host's 500 diamonds are worth $2.50.
    value = viewer.get_by_test_id("gift-value")
    await expect(value).to_contain_text("Money Gun: cost $7.5662")
    await expect(value).to_contain_text("gets $2.50 · platform keeps $5.0662")

    # The overlay plays the big alert, and its streak line counted the Roses and finished.
    alert = overlay.get_by_test_id("alert")
    await expect(alert).to_be_visible()
    await expect(alert).to_have_attribute("data-tier", "large")
    await expect(alert.get_by_test_id("alert-sender")).to_have_text("alice_gifts")
    await expect(alert).to_contain_text("sent Money Gun")
    await expect(alert).to_contain_text(f"{MONEY_GUN} coins")
    streak = overlay.get_by_test_id("overlay-streak")
    await expect(streak).to_have_attribute("data-total", str(ROSES))
    await expect(streak).to_contain_text(f"x{ROSES}")
    await expect(streak).to_have_class(re.compile(r"\bdone\b"))

    # The host sees the diamonds of this live, and the wallet catches up with the server.
    diamonds = ROSES + MONEY_GUN
    await expect(host.get_by_test_id("host-diamonds")).to_have_text(coins(diamonds))
    await expect(host.get_by_test_id("host-diamonds-total")).to_have_text(coins(diamonds))
    await expect(host.get_by_test_id("host-diamonds-cash")).to_have_text("$2.52")
    assert (await me(api, await token_of(host)))["diamonds"] == diamonds

    # The viewer's balance is the server's, and the ledger holds each gift once.
    left = BOUGHT - ROSES - MONEY_GUN
    await expect(viewer.get_by_test_id("balance")).to_have_text(coins(left))
    await expect(viewer.get_by_test_id("room-balance")).to_have_text(coins(left))
    viewer_token = await token_of(viewer)
    assert (await me(api, viewer_token))["coins"] == left
    assert await ledger(api, viewer_token) == [
        ("gift_sent", "money_gun", -MONEY_GUN),
        *[("gift_sent", "rose", -1)] * ROSES,
        ("recharge", None, BOUGHT),
    ]
    assert await room_seq(api, room_id) == ROSES + 2  # five Roses, their streak_end, the Money Gun
