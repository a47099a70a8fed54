"""A viewer's network drops mid-streak, and OBS reloads the overlay mid-stream."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from tests.browser.chromium import NewContext
from tests.browser.pages import (
    all_sent,
    buy_coins,
    coins,
    feed_totals,
    go_live,
    join,
    sign_up,
    tap_gift,
    token_of,
)
from tests.browser.server import ledger, me, room_seq
from tests.browser.wire import OverlayWatch, RoomLink
from tests.support.client import Api

BOUGHT = 1321
MONEY_GUN = 500
SINCE = re.compile(r"[?&]since=(\d+)")
# Streaks here end when the test says so (another gift), never because a step of the test
# took longer than the contract's 3 s on a busy machine; the app learns it from the catalog.
LONG_STREAKS = pytest.mark.parametrize(
    "settings_overrides", [{"streak_window_ms": 600_000}], ids=["long-streaks"], indirect=True
)


@LONG_STREAKS
async def test_a_dropped_connection_mid_streak_loses_and_doubles_no_gift_and_a_reloaded_overlay_resumes_without_a_gap(  # noqa: E501
    api: Api, new_context: NewContext
) -> None:
    host = await api.signup("erin_host")
    room = await api.go_live(host, "marathon")
    room_id = room["id"]

    # The host's OBS overlay, in its own browser; the test sees every frame it receives.
    # Its clock stands still: an alert or a finished streak line stays on screen until the
    # test has looked at it, however slow the machine (how long they stay is the overlay's
    # choice, not what this test is about). Frames still arrive and are shown at once.
    obs_browser = await new_context(1280, 720)
    await obs_browser.clock.install()
    await obs_browser.clock.pause_at(datetime.now(UTC) + timedelta(seconds=1))
    obs = await obs_browser.new_page()
    watch = OverlayWatch()
    await watch.attach(obs)
    await obs.goto(f"/overlay?room={room_id}&token={room['overlay_token']}")
    await expect(obs.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")

    # The viewer, whose room socket runs over a network path the test can break.
    viewer_browser = await new_context()
    viewer = await viewer_browser.new_page()
    link = RoomLink()
    await link.install(viewer)
    await sign_up(viewer, "frank_fan")
    await buy_coins(viewer, "coins_1321")
    await join(viewer, room_id)
    status = viewer.get_by_test_id("connection-status")
    pending = viewer.get_by_test_id("pending-gifts")
    combo = viewer.get_by_test_id("streak-counter")

    # Three Roses over a good connection.
    await tap_gift(viewer, "rose", 3)
    await all_sent(viewer)

    # The network degrades: two more Roses reach the server, but its answers never come back.
    link.lose_frames_from_server()
    await tap_gift(viewer, "rose", 2)
    await link.until(lambda: len(link.lost_answers()) == 2, "the server answering both Roses")
    await expect(pending).to_have_attribute("data-count", "2")

    # Then it drops altogether. A Rose tapped now waits in the page.
    await viewer_browser.set_offline(True)
    await link.cut()
    await expect(status).to_have_attribute("data-state", "offline")
    await tap_gift(viewer, "rose")
    await expect(pending).to_have_attribute("data-count", "3")
    await expect(pending).to_have_text("3 gifts will send when you're back online.")
    await expect(combo).to_have_attribute("data-count", "6")

    # The network is back: the page reconnects and sends all three again, with their ids.
    link.restore()
    await viewer_browser.set_offline(False)
    await expect(status).to_have_attribute("data-state", "open")
    await all_sent(viewer)

    # OBS reloads the overlay mid-stream while the viewer keeps tapping.
    await watch.reload(obs, having=max(a["seq"] for a in link.answers))
    await tap_gift(viewer, "rose", 2)
    await all_sent(viewer)
    await expect(combo).to_have_attribute("data-count", "8")
    streak = obs.get_by_test_id("overlay-streak")
    await expect(streak).to_have_attribute("data-total", "8")

    # Two Money Guns. OBS reloads while the first alert plays and the second is queued.
    await tap_gift(viewer, "money_gun", 2)
    await all_sent(viewer)
    first, second = sorted(a["seq"] for a in link.answers if a.get("coins_spent") == MONEY_GUN)
    alert = obs.get_by_test_id("alert")
    await expect(alert).to_have_attribute("data-seq", str(first))
    await expect(streak).to_have_class(re.compile(r"\bdone\b"))
    await expect(streak).to_have_attribute("data-total", "8")
    await watch.reload(obs, having=second)
    await expect(alert).to_have_attribute("data-seq", str(second))
    await expect(alert.get_by_test_id("alert-sender")).to_have_text("frank_fan")

    # The overlay got every room event, across both reloads: no gap ...
    last = await room_seq(api, room_id)
    assert last == second
    assert watch.received() == set(range(1, last + 1))
    loads = [(SINCE.search(url), seqs) for url, seqs in watch.sockets]
    assert len(loads) == 3, watch.sockets
    for since, seqs in loads[1:]:
        assert since is not None, "a reloaded overlay resumes with `since`"
        assert seqs == list(range(int(since[1]) + 1, int(since[1]) + 1 + len(seqs)))
    # ... and showed each big gift once.
    assert watch.alerts == [first, second]

    # The viewer's page resent the two unanswered Roses with their ids: answered as duplicates.
    lost_ids = {a["id"] for a in link.lost_answers()}
    sent_ids = Counter(r["id"] for r in link.requests)
    assert len(sent_ids) == 8 + 2
    assert {i: sent_ids[i] for i in lost_ids} == {i: 2 for i in lost_ids}
    duplicates = {a["id"] for a in link.answers if a.get("duplicate")}
    assert duplicates == lost_ids

    # Each gift is in the ledger exactly once, and the page shows what was debited.
    token = await token_of(viewer)
    sent = Counter(
        (gift, spent) for kind, gift, spent in await ledger(api, token) if kind != "recharge"
    )
    assert sent == {("rose", -1): 8, ("money_gun", -MONEY_GUN): 2}
    left = (await me(api, token))["coins"]
    debited = BOUGHT - left
    await expect(viewer.get_by_test_id("room-balance")).to_have_text(coins(left))
    await expect(viewer.get_by_test_id("feed-item").filter(has_text="Money Gun")).to_have_count(2)
    shown = await feed_totals(viewer, "frank_fan")
    assert shown == {"Rose": 8, "Money Gun": 2}
    assert debited == shown["Rose"] * 1 + shown["Money Gun"] * MONEY_GUN


@LONG_STREAKS
async def test_offline_the_combo_counts_within_the_servers_streak_window_not_3_s(
    new_context: NewContext,
) -> None:
    host = await (await new_context()).new_page()
    await sign_up(host, "gina_host")
    room_id = await go_live(host, "slow roses")

    viewer_browser = await new_context()
    await viewer_browser.clock.install()
    viewer = await viewer_browser.new_page()
    link = RoomLink()
    await link.install(viewer)
    await sign_up(viewer, "hal_fan")
    await buy_coins(viewer, "coins_65")
    await join(viewer, room_id)
    combo = viewer.get_by_test_id("streak-counter")
    await tap_gift(viewer, "rose")
    await all_sent(viewer)
    await expect(combo).to_have_attribute("data-count", "1")

    # Offline, the page counts the combo itself. 4 s later is past the contract's 3 s but
    # well within this server's window: the next Rose extends the streak.
    await viewer_browser.set_offline(True)
    await link.cut()
    await expect(viewer.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "offline"
    )
    await viewer.clock.fast_forward(4_000)
    await tap_gift(viewer, "rose")
    await expect(combo).to_have_attribute("data-count", "2")

    # The server agrees once the Rose gets there.
    link.restore()
    await viewer_browser.set_offline(False)
    await all_sent(viewer)
    await expect(combo).to_have_attribute("data-count", "2")
    line = viewer.get_by_test_id("feed-item").filter(has_text="hal_fan sent Rose x2")
    await expect(line).to_have_count(1)
