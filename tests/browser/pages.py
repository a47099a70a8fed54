"""What a person does in the giftcast app, one step at a time, through its `data-testid`s.

Each step ends by waiting (with Playwright's auto-retrying `expect`) for what the person would
wait for on screen, so the next step starts from a settled page.
"""

from __future__ import annotations

import re

from playwright.async_api import BrowserContext, Page, expect

ADULT_BIRTHDATE = "1990-04-02"


def coins(n: int) -> str:
    """An amount as the pages print it (en-US locale: `1,321`)."""
    return f"{n:,}"


async def sign_up(page: Page, name: str, birthdate: str = ADULT_BIRTHDATE) -> None:
    """Open the app, type a name and a birth date, create the account, land in the lobby."""
    await page.goto("/")
    await page.get_by_test_id("signup-name").press_sequentially(name)
    await page.get_by_test_id("signup-birthdate").fill(birthdate)
    await page.get_by_test_id("signup-submit").click()
    await expect(page.get_by_test_id("me-name")).to_have_text(name)
    await expect(page.get_by_test_id("room-list")).to_have_attribute("aria-busy", "false")


async def buy_coins(page: Page, package_id: str) -> None:
    """Open the recharge panel from the balance chip and buy `package_id`; it closes when paid."""
    await page.get_by_test_id("recharge-open").click()
    await buy_in_open_panel(page, package_id)


async def buy_in_open_panel(page: Page, package_id: str) -> None:
    panel = page.get_by_test_id("recharge-panel")
    await expect(panel).to_be_visible()
    await panel.get_by_test_id(f"package-{package_id}").click()
    await expect(panel).to_be_hidden()


async def go_live(page: Page, title: str) -> int:
    """From the lobby: type a title, press Enter, land in the new live as its host."""
    await page.get_by_test_id("go-live-title").fill(title)
    await page.get_by_test_id("go-live-title").press("Enter")
    await expect(page).to_have_url(re.compile(r"#/room/\d+$"))
    await expect(page.get_by_test_id("host-panel")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")
    return int(page.url.rsplit("/", 1)[1])


async def join(page: Page, room_id: int) -> None:
    """From the lobby: refresh the list, open the live's card, wait for the connection."""
    await page.get_by_test_id("nav-lives").click()
    await page.get_by_test_id("rooms-refresh").click()
    await page.get_by_test_id(f"room-{room_id}").get_by_test_id("room-card").click()
    await expect(page.get_by_test_id("gift-panel")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")


async def tap_gift(page: Page, gift_id: str, times: int = 1) -> None:
    button = page.get_by_test_id(f"gift-{gift_id}")
    for _ in range(times):
        await button.click()


async def all_sent(page: Page) -> None:
    """Every gift tapped has its answer (the page's pending list is empty)."""
    await expect(page.get_by_test_id("pending-gifts")).to_have_attribute("data-count", "0")


async def open_overlay_preview(host: Page) -> Page:
    """The host's "Preview overlay" link opens the OBS overlay in a new tab."""
    context: BrowserContext = host.context
    async with context.expect_page() as opened:
        await host.get_by_test_id("open-overlay").click()
    overlay = await opened.value
    await overlay.wait_for_load_state()
    return overlay


async def open_wallet(page: Page) -> None:
    """The "Wallet" link in the top bar; the history and the daily limit have loaded."""
    await page.get_by_test_id("nav-wallet").click()
    await expect(page.get_by_test_id("wallet-list")).to_have_attribute("aria-busy", "false")
    await expect(page.get_by_test_id("limit-current")).not_to_have_text("…")


async def confirm(page: Page) -> None:
    """Answer the app's confirm dialog with its OK button."""
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("confirm-ok").click()
    await expect(dialog).to_be_hidden()


async def token_of(page: Page) -> str:
    """The bearer token the app keeps for its user, to check the server over HTTP."""
    token = await page.evaluate("() => localStorage.getItem('giftcast.token')")
    assert isinstance(token, str) and token, "the app holds no token"
    return token


FEED_LINE = re.compile(r"^(?P<who>\S+) sent (?P<gift>.+?)(?: x(?P<count>\d+))?$")


async def feed_totals(page: Page, sender: str) -> dict[str, int]:
    """What the room's activity feed says `sender` sent: gift name -> count.

    A streak keeps one line ("bob sent Rose x8"); a split streak has a line per part.
    """
    totals: dict[str, int] = {}
    items = page.get_by_test_id("event-feed").get_by_test_id("feed-item")
    # The line's words (the avatar letter and the gift's icon are drawn beside them).
    for text in await items.locator(".feed-text").all_text_contents():
        line = FEED_LINE.match(text.strip())
        assert line, f"unexpected feed line {text!r}"
        if line["who"] == sender:
            totals[line["gift"]] = totals.get(line["gift"], 0) + int(line["count"] or 1)
    return totals
