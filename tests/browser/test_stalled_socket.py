"""Regression: a room socket that opens but never sends its welcome must not hang the page."""

from __future__ import annotations

from playwright.async_api import WebSocketRoute, expect

from tests.browser.chromium import NewContext
from tests.browser.pages import sign_up
from tests.browser.wire import ROOM_SOCKET
from tests.support.client import Api


async def test_a_socket_that_never_welcomes_is_given_up_and_the_page_reconnects(
    api: Api, new_context: NewContext
) -> None:
    host = await api.signup("host_stall")
    room = await api.go_live(host, "stalled proxy")
    viewer = await (await new_context()).new_page()
    await sign_up(viewer, "erin_stall")
    attempts: list[str] = []

    async def route(ws: WebSocketRoute) -> None:
        attempts.append(ws.url)
        if len(attempts) == 1:
            return  # accepted, then silence: a proxy whose backend stalled
        ws.connect_to_server()

    await viewer.route_web_socket(ROOM_SOCKET, route)
    await viewer.goto(f"/#/room/{room['id']}")
    status = viewer.get_by_test_id("connection-status")
    # The page gives up on the silent socket (after its pong timeout, 10 s) and connects again.
    await expect(status).to_have_attribute("data-state", "open", timeout=30_000)
    assert len(attempts) >= 2
    await expect(viewer.get_by_test_id("gift-panel")).to_be_visible()
