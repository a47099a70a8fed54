"""uvicorn's sans-I/O WebSocket protocol, made leaner per socket (`ws_impl = "giftcast"`).

A live room holds thousands of mostly idle sockets, so what each one costs matters more than
for a typical ASGI app. Same wire behaviour as uvicorn's `websockets-sansio` implementation
(which this subclasses), three differences:

- the inbox of received messages is a list with one waiter instead of an `asyncio.Queue`
  (three deques), and the writable gate a flag instead of an `asyncio.Event` (one deque);
- the handshake's request and response (parsed headers) are dropped once the socket is open;
- reading is paused only when `INBOX_MESSAGES_MAX` messages wait for the app, not after every
  message (which cost two `epoll_ctl` calls per message received). The app still sets the
  pace: it takes messages when it is ready, and a full inbox stops the reading.

And one addition: the protocol is the `giftcast.socket` scope extension (`direct_socket.py`),
so the app writes frames and closes synchronously instead of through a task and an ASGI
`send` per frame (which was most of the event loop's time in the fan-out benchmark).

Pinned to the uvicorn series in pyproject.toml; the whole test suite runs over it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.http11 import Request

from server.web.direct_socket import SCOPE_KEY, text_frame

INBOX_MESSAGES_MAX = 16  # received messages the app has not taken yet; then reading pauses


class _Inbox:
    """What `asyncio.Queue` did here, for one consumer: the ASGI app's `receive`."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Gate:
    """What `asyncio.Event` did for `writable`: senders wait while the transport is full."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> None:
        if self._open:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter


class GiftcastWSProtocol(WebSocketsSansIOProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Gate()  # type: ignore[assignment]
        self._on_writable: Callable[[], None] | None = None

    # --- the `giftcast.socket` extension (server/web/direct_socket.py) -------------------

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # None: the upgrade request was refused before any app ran
            scope["extensions"][SCOPE_KEY] = self

    @property
    def gone(self) -> bool:
        return self.close_sent or self.disconnected or self.transport.is_closing()

    @property
    def can_write(self) -> bool:
        return self.handshake_complete and self.writable.is_set() and not self.gone

    def write_frame(self, frame: bytes) -> bool:
        if not self.can_write:
            return False
        self.transport.write(frame)
        return True

    def write_text(self, text: str) -> bool:
        return self.write_frame(text_frame(text.encode()))

    def close_now(self, code: int, reason: str) -> bool:
        """What the parent's `websocket.close` branch of `send` does, without awaiting."""
        if not self.handshake_complete or self.gone:
            return False
        try:
            self.conn.send_close(code, reason)
        except InvalidState:
            return False  # the peer's close already arrived
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        return True

    def on_writable(self, callback: Callable[[], None] | None) -> None:
        self._on_writable = callback

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._on_writable is not None:
            self._on_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(SCOPE_KEY, None)  # no cycle left through the scope
        callback, self._on_writable = self._on_writable, None
        if callback is not None:
            callback()

    # --- receiving ------------------------------------------------------------------------

    def send_receive_event_to_app(self) -> None:
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past `websocket.close`: read on until the peer's close reply arrives
        if self.curr_msg_data_type == "text":
            try:
                self.queue.put_nowait({"type": "websocket.receive", "text": data.decode()})
            except UnicodeDecodeError:
                self.logger.info("invalid UTF-8 in a text frame: closing with 1007")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused and self.queue.qsize() >= INBOX_MESSAGES_MAX:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() < INBOX_MESSAGES_MAX // 2:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # The socket is open (or refused): the parsed handshake is not needed again.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
