"""One socket of a room (`Conn`): its bounded outbox, its state and how it closes.

Frames are written at once through the socket's `giftcast.socket` extension
(`direct_socket.py`) and queued in the outbox only while the transport is paused for writing;
a full outbox closes the socket with 1013 (it resumes with `since`). States: JOINING (welcome
and replay go first; live frames are held) -> LIVE -> CLOSING (what waits is written, then the
close frame) -> CLOSED.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import StrEnum

from server.domain.money import RoomId, UserId
from server.web.direct_socket import DirectSocket, text_frame

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHORIZED = 4401


class ConnKind(StrEnum):
    VIEWER = "viewer"
    HOST = "host"
    OVERLAY = "overlay"


class ConnState(StrEnum):
    JOINING = "joining"
    LIVE = "live"
    CLOSING = "closing"
    CLOSED = "closed"


class Conn:
    """One socket's frames, in order, each one framed (`text_frame`) before it gets here.

    Frames are written at once while the transport takes them; while it is paused they wait
    in `outbox` (at most `outbox_max`, past that the socket is closed with 1013) and go out
    when it resumes. Nothing else writes to the socket once it has a `Conn`."""

    __slots__ = (
        "_closed_waiter",
        "aborted",
        "client_ip",
        "close_code",
        "close_reason",
        "held",
        "kind",
        "outbox",
        "outbox_max",
        "overlay_version",
        "room",
        "sock",
        "state",
        "user",
    )

    def __init__(
        self,
        sock: DirectSocket,
        room: RoomId,
        kind: ConnKind,
        user: UserId | None,
        client_ip: str,
        outbox_max: int,
        overlay_version: int = 0,
    ) -> None:
        self.sock = sock
        self.room = room
        self.kind = kind
        self.user = user
        self.client_ip = client_ip
        self.outbox: deque[bytes] = deque()
        self.outbox_max = outbox_max
        self.held: list[bytes] | None = []
        self.state = ConnState.JOINING
        self.close_code = CLOSE_NORMAL
        self.close_reason = ""
        self.overlay_version = overlay_version
        self.aborted = False
        self._closed_waiter: asyncio.Future[None] | None = None
        sock.on_writable(self._drain)

    def _write(self, frame: bytes) -> None:
        if self.outbox or not self.sock.write_frame(frame):
            self.outbox.append(frame)

    def send_first(self, frame: bytes) -> None:
        """Welcome and replay: ahead of the live frames held while JOINING."""
        if self.state is not ConnState.CLOSED and not self.aborted:
            self._write(frame)

    def push_text(self, text: bytes) -> None:
        """A message for this socket alone (a gift answer, a pong): framed here."""
        self.push(text_frame(text))

    def push(self, frame: bytes) -> None:
        # A socket closing after a drain still takes frames (late gift answers) until the
        # close frame is sent; an aborted socket takes nothing more.
        if self.state is ConnState.CLOSED or self.aborted:
            return
        if self.held is not None:
            self.held.append(frame)
            if len(self.held) > self.outbox_max:
                self.abort(CLOSE_TRY_AGAIN_LATER, "too far behind; reconnect with since")
            return
        if self.outbox:
            if len(self.outbox) >= self.outbox_max:
                self.abort(CLOSE_TRY_AGAIN_LATER, "too far behind; reconnect with since")
                return
            self.outbox.append(frame)
        elif not self.sock.write_frame(frame):
            self.outbox.append(frame)

    def go_live(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            if self.state is ConnState.JOINING:
                self.state = ConnState.LIVE
            for frame in held:
                self.push(frame)

    def close_after_drain(self, code: int, reason: str = "") -> None:
        """Close with `code` once every frame queued so far is written.

        The close frame goes at the end of this turn of the event loop, not now, so answers
        and events pushed in the same turn (a live ending with gifts in flight) still go out
        ahead of it."""
        if self.state is ConnState.CLOSING or self.state is ConnState.CLOSED:
            return
        self.go_live()
        if self.aborted:
            return  # going live overflowed the outbox: closed with 1013
        self.state = ConnState.CLOSING
        self.close_code, self.close_reason = code, reason
        asyncio.get_running_loop().call_soon(self._drain)

    def abort(self, code: int, reason: str) -> None:
        """Close, dropping whatever is queued (a slow consumer, a revoked token).

        The close frame goes as soon as the transport takes frames again (at once unless it
        is paused); until then the socket stays in its room, taking nothing."""
        if self.state is ConnState.CLOSED:
            return
        self.outbox.clear()
        self.held = None
        self.aborted = True
        self.state = ConnState.CLOSING
        self.close_code, self.close_reason = code, reason
        self._drain()

    def _drain(self) -> None:
        """The transport resumed (or was lost, or a close is due): write what waits, in order,
        then the close frame if one is due."""
        if self.state is ConnState.CLOSED:
            return
        sock, outbox = self.sock, self.outbox
        if sock.gone:
            outbox.clear()
            self._finish()
            return
        while outbox:
            if not sock.write_frame(outbox[0]):
                return  # paused again; the next resume carries on
            outbox.popleft()
        if self.state is ConnState.CLOSING and sock.can_write:
            self._finish()

    def _finish(self) -> None:
        self.sock.close_now(self.close_code, self.close_reason)  # False: already gone
        self.state = ConnState.CLOSED
        self.sock.on_writable(None)
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_closed(self) -> None:
        """Until the close frame is written (or the peer is gone)."""
        if self.state is ConnState.CLOSED:
            return
        if self._closed_waiter is None:
            self._closed_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed_waiter)
