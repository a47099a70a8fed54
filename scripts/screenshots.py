"""Take the README's screenshots: a viewer's room page mid-streak and the OBS overlay mid-alert.

It starts its own server (SQLite in a temporary directory, 127.0.0.1 on a free port), drives
the demo app in Debian's headless chromium (/usr/bin/chromium, as the browser tests do) the way
people would, and writes:

- `room.png` (1280x800): a viewer's room page during a Rose streak, with a goal, top gifters
  and other viewers' gifts in the feed;
- `overlay.png` (1280x720): the overlay (`&bg=checker`, so its transparency reads) while the
  alert of a Private Jet (an epic gift) plays.

How to run, from the repository root, with the dev extra installed::

    python scripts/screenshots.py                   # writes docs/screenshots/*.png
    python scripts/screenshots.py --out /tmp/shots

Everything is bounded: each step waits at most 30 s, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

# Run as a file, sys.path[0] is scripts/ itself: put the repository root first.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.chromium import MISSING, chromium_installed, launch
from tests.browser.pages import buy_coins, go_live, join, sign_up, tap_gift
from tests.support.client import Api, User
from tests.support.live import LiveServer, test_settings

ROOT = Path(__file__).resolve().parent.parent
ROOM_SIZE = (1280, 800)
OVERLAY_SIZE = (1280, 720)
STREAK = 12


async def settled(page: Page, test_id: str) -> None:
    """Wait until the element is shown, its finite animations and transitions (its children's
    too) have finished, and the page has painted that (two animation frames later)."""
    await page.bring_to_front()
    node = page.get_by_test_id(test_id).last
    await expect(node).to_be_visible()
    await node.evaluate(
        """(el) => Promise.all(el.getAnimations({ subtree: true })
             .filter((a) => a.effect.getTiming().iterations !== Infinity)
             .map((a) => a.finished))
           .then(() => new Promise((painted) =>
             requestAnimationFrame(() => requestAnimationFrame(painted))))"""
    )


async def visit(api: Api, room_id: int, user: User, *gifts: str) -> None:
    """Another viewer drops in over a plain WebSocket, sends `gifts` one by one, and leaves."""
    async with api.room(room_id, user.token) as sock:
        await sock.recv_type("welcome")
        for i, gift_id in enumerate(gifts):
            answer = await sock.gift(f"{user.name}-{gift_id}-{i}-{secrets.token_hex(4)}", gift_id)
            assert answer["type"] == "gift_ok", answer


async def take(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="giftcast-shots-") as tmp:
        live = await LiveServer.start(test_settings(Path(tmp) / "data"))
        api = Api(live.url)
        try:
            async with async_playwright() as playwright:
                browser = await launch(playwright)

                async def page(size: tuple[int, int]) -> Page:
                    context = await browser.new_context(
                        base_url=live.url,
                        viewport={"width": size[0], "height": size[1]},
                        locale="en-US",
                        timezone_id="UTC",
                    )
                    return await context.new_page()

                # The host goes live and sets a goal.
                host = await page(ROOM_SIZE)
                await sign_up(host, "mia_music")
                room_id = await go_live(host, "Late-night piano requests")
                await host.get_by_test_id("goal-title").fill("New microphone")
                await host.get_by_test_id("goal-coins").fill("2000")
                await host.get_by_test_id("goal-submit").click()
                await expect(host.get_by_test_id("goal-bar")).to_be_visible()
                overlay_url = await host.get_by_test_id("overlay-url").input_value()

                # OBS shows the overlay; two other viewers have coins, and one already gifted.
                overlay = await page(OVERLAY_SIZE)
                await overlay.goto(f"{overlay_url}&bg=checker")
                await expect(overlay.get_by_test_id("connection-status")).to_have_attribute(
                    "data-state", "open"
                )
                leo = await api.signup("leo_k")
                await api.recharge(leo, "coins_1321")
                sam = await api.signup("sam.rivera")
                await api.recharge(sam, "coins_330")
                await visit(api, room_id, leo, "hand_hearts")

                # The viewer joins, others gift, and she taps a streak of Roses: mid-streak.
                viewer = await page(ROOM_SIZE)
                await sign_up(viewer, "alice")
                await buy_coins(viewer, "coins_6607")
                await join(viewer, room_id)
                await visit(api, room_id, leo, "corgi")
                await visit(api, room_id, sam, "finger_heart", "finger_heart", "finger_heart")
                await visit(api, room_id, sam, "doughnut")
                await expect(viewer.get_by_test_id("top-item")).to_have_count(2)
                await tap_gift(viewer, "rose", STREAK)
                counter = viewer.get_by_test_id("streak-counter")
                await expect(counter).to_have_attribute("data-count", str(STREAK))
                await expect(viewer.get_by_test_id("combo-lane")).to_contain_text(f"x{STREAK}")
                await settled(viewer, "feed-item")  # her line, just moved to the bottom
                await viewer.get_by_test_id("leave-room").scroll_into_view_if_needed()  # panel top
                await viewer.screenshot(path=out / "room.png")

                # A Private Jet: the overlay's alert, mid-play, over a streak in the feed.
                await visit(api, room_id, sam, "rose", "rose", "rose", "rose")
                await tap_gift(viewer, "private_jet")
                await expect(overlay.get_by_test_id("overlay-goal-numbers")).to_have_text(
                    "5,348 / 2,000"
                )
                await settled(overlay, "overlay-goal")
                await settled(overlay, "alert")
                await expect(overlay.get_by_test_id("alert")).to_have_attribute("data-tier", "epic")
                await overlay.screenshot(path=out / "overlay.png")

                await browser.close()
        finally:
            await api.close()
            await live.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not chromium_installed():
        print(MISSING, file=sys.stderr)
        return 2
    expect.set_options(timeout=30_000)
    asyncio.run(take(args.out))
    for name in ("room.png", "overlay.png"):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
