"""What travels between the pages and the server, seen (and for the viewer, broken) by the test.

- `RoomLink` routes a page's room WebSocket through the test, like a network path we control:
  it can lose the server's frames on the way, cut the connection, and refuse new ones.
- `OverlayWatch` records every room event an overlay page received (one list per socket: a
  reload or a reconnect opens a new one) and every alert it put on screen. Reload the page
  with `OverlayWatch.reload`, never `page.reload()`: see there why.

Neither changes a frame: what passes is exactly what the page and the server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from playwright.async_api import Page, WebSocket, WebSocketRoute

Doc = dict[str, Any]

NUMBERED = ("gift", "streak_end", "room_ended")
ROOM_SOCKET = re.compile(r"/ws/rooms/\d+")


def messages(frame: str | bytes) -> list[Doc]:
    """One frame's messages, `batch` flattened, in order."""
    doc = orjson.loads(frame)
    if isinstance(doc, dict) and doc.get("type") == "batch":
        events: list[Doc] = doc["events"]
        return events
    return [doc]


@dataclass
class Changes:
    """Wait for a condition over recorded traffic, woken by each new record (no polling)."""

    _changed: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def changed(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"not seen within {timeout} s: {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


@dataclass
class RoomLink(Changes):
    """The page's room sockets, through the test.

    `up`: frames pass both ways. `lossy`: the page's frames still reach the server, but the
    server's frames are lost on the way back (answers and events alike). `cut()` closes both
    ends, the page seeing 1006 as when a network drops, and refuses new connections until
    `restore()`.
    """

    state: Literal["up", "lossy", "down"] = "up"
    requests: list[Doc] = field(default_factory=list)  # gifts the page sent, resends too
    answers: list[Doc] = field(default_factory=list)  # gift_ok / error that reached the page
    lost: list[Doc] = field(default_factory=list)  # server messages that never reached it
    _open: list[tuple[WebSocketRoute, WebSocketRoute]] = field(default_factory=list)

    async def install(self, page: Page) -> None:
        await page.route_web_socket(ROOM_SOCKET, self._route)

    async def _route(self, page_side: WebSocketRoute) -> None:
        if self.state == "down":
            await page_side.close(code=1006, reason="network unreachable")
            return
        server_side = page_side.connect_to_server()
        self._open.append((page_side, server_side))
        page_side.on_message(lambda frame: self._upstream(server_side, frame))
        server_side.on_message(lambda frame: self._downstream(page_side, frame))

    def _upstream(self, server_side: WebSocketRoute, frame: str | bytes) -> None:
        self.requests.extend(m for m in messages(frame) if m.get("type") == "gift")
        server_side.send(frame)
        self.changed()

    def _downstream(self, page_side: WebSocketRoute, frame: str | bytes) -> None:
        if self.state == "up":
            page_side.send(frame)
            self.answers.extend(m for m in messages(frame) if m.get("type") in ("gift_ok", "error"))
        else:
            self.lost.extend(messages(frame))
        self.changed()

    def lose_frames_from_server(self) -> None:
        self.state = "lossy"

    async def cut(self) -> None:
        self.state = "down"
        opened, self._open = self._open, []
        for page_side, server_side in opened:
            await page_side.close(code=1006, reason="network lost")
            await server_side.close(code=1001, reason="network lost")

    def restore(self) -> None:
        self.state = "up"

    def lost_answers(self) -> list[Doc]:
        return [m for m in self.lost if m.get("type") == "gift_ok"]


@dataclass
class OverlayWatch(Changes):
    """What an overlay page received and showed, across its reloads and reconnects."""

    sockets: list[tuple[str, list[int]]] = field(default_factory=list)  # (url, numbered seqs)
    alerts: list[int] = field(default_factory=list)  # seq of each alert put on screen

    async def attach(self, page: Page) -> None:
        """Call before the overlay loads: it then watches every load of `page`."""
        page.on("websocket", self._on_socket)
        await page.expose_function("giftcastTestAlertShown", self._alert_shown)
        await page.add_init_script(
            """
            new MutationObserver((records) => {
              for (const record of records) {
                for (const node of record.addedNodes) {
                  if (node instanceof HTMLElement && node.dataset.testid === 'alert') {
                    window.giftcastTestAlertShown(Number(node.dataset.seq));
                  }
                }
              }
            }).observe(document, { childList: true, subtree: true });
            """
        )

    def _on_socket(self, socket: WebSocket) -> None:
        seqs: list[int] = []
        self.sockets.append((socket.url, seqs))

        def on_frame(frame: str | bytes) -> None:
            seqs.extend(m["seq"] for m in messages(frame) if m.get("type") in NUMBERED)
            self.changed()

        socket.on("framereceived", on_frame)

    def _alert_shown(self, seq: int) -> None:
        self.alerts.append(seq)
        self.changed()

    def received(self) -> set[int]:
        return {seq for _, seqs in self.sockets for seq in seqs}

    async def reload(self, page: Page, having: int) -> None:
        """Reload the overlay once the watch has seen every event up to seq `having`.

        The watch hears of frames through the browser's DevTools events, and a frame that the
        old document receives in its last moments before a reload may never be reported (seen
        with Chromium 156: the page got the event and saved its seq, no `framereceived` came,
        and the reloaded page rightly resumed after it). The watch would then miss an event the
        overlay did get. So reload only once the events already due are recorded.
        """
        await self.until(lambda: having in self.received(), f"seq {having} at the overlay")
        await page.reload()
