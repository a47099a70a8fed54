"""The room and overlay WebSocket endpoints.

Handshake order: Origin (a foreign one is refused with HTTP 403 before accept), then accept
and check, in this order, the token (4401), the room (4404), `since` (4400) and the caps
(4429), closing with that code before anything else is sent. Then the welcome, the replay
of every event after `since` (or `resync`), then live events. One reader loop per socket;
answers and room events are written through the socket's `Conn` (hub.py), nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast
from urllib.parse import urlsplit

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from server.domain.errors import Code, Refusal
from server.domain.money import RoomId, UserId
from server.domain.pricing import gift_value
from server.domain.rooms import RoomStatus
from server.protocol.messages import (
    PONG,
    RESYNC,
    GiftRequest,
    Invalid,
    Ping,
    decode_client,
    dumps,
    encode_batch,
    encode_error,
    top_doc,
)
from server.services.gifting import GiftAnswer, Reply
from server.services.users import Caller
from server.storage.base import GiftAccepted, RoomRow, StoreError
from server.web.conn import Conn, ConnKind
from server.web.direct_socket import SCOPE_KEY, DirectSocket, text_frame
from server.web.runtime import Runtime

log = logging.getLogger("giftcast.ws")

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429
CLOSE_UNAVAILABLE = 1013
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
GIFTS_IN_FLIGHT_MAX = 64  # per socket; past this the reader waits for answers
PONG_FRAME = text_frame(PONG)
RESYNC_FRAME = text_frame(RESYNC)


def origin_allowed(ws: WebSocket, allowed: tuple[str, ...]) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    origin = origin.strip().lower().rstrip("/")
    if origin in {o.lower().rstrip("/") for o in allowed}:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    host_header = ws.headers.get("host", "").lower()
    if parts.netloc == host_header:
        return True  # the server's own origin
    return (parts.hostname or "") in LOCAL_HOSTS


def _client_ip(ws: WebSocket) -> str:
    return ws.client.host if ws.client is not None else "?"


def _room_id(ws: WebSocket) -> RoomId | None:
    raw = ws.path_params.get("room_id", "")
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return RoomId(int(raw))


def _since(ws: WebSocket) -> int | str | None:
    raw = ws.query_params.get("since")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return "since must be a non-negative integer (the last seq you received)"
    return int(raw)


def answer_frame(request_id: str, answer: GiftAnswer, runtime: Runtime) -> bytes:
    """The answer to one gift request, framed for its socket alone."""
    if isinstance(answer, Refusal):
        extra: dict[str, Any] = {}
        if answer.retry_after_ms is not None:
            extra["retry_after_ms"] = answer.retry_after_ms
        return text_frame(encode_error(answer.code, answer.message, request_id, **extra))
    assert isinstance(answer, GiftAccepted)
    doc: dict[str, Any] = {
        "type": "gift_ok",
        "id": request_id,
        "seq": answer.ok.seq,
        "coins": answer.ok.coins_after,
        "coins_spent": answer.ok.coins_spent,
        "diamonds": answer.ok.diamonds,
        "value": gift_value(answer.ok.cost_millicents, answer.ok.diamonds, runtime.rates).doc(
            runtime.catalog.currency
        ),
    }
    if answer.duplicate:
        doc["duplicate"] = True
    return text_frame(dumps(doc))


async def room_socket(ws: WebSocket) -> None:
    await _serve(ws, overlay=False)


async def overlay_socket(ws: WebSocket) -> None:
    await _serve(ws, overlay=True)


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.close(code, reason)


async def _serve(ws: WebSocket, overlay: bool) -> None:
    runtime: Runtime = ws.app.state.runtime
    settings = runtime.settings
    if not origin_allowed(ws, settings.allowed_origins):
        await ws.close()  # before accept: the handshake is refused with HTTP 403
        return
    if SCOPE_KEY not in ws.scope.get("extensions", {}):
        # Not served by `giftcast serve` (uvicorn with GiftcastWSProtocol): no way to write.
        log.error("WebSocket refused: the server does not provide %s", SCOPE_KEY)
        await ws.close()
        return
    await ws.accept()
    if runtime.stopping:
        await _refuse(ws, 1001, "the server is shutting down")
        return
    room_id = _room_id(ws)
    token = ws.query_params.get("token")
    caller = None
    overlay_version = 0
    try:
        if overlay:
            access = await runtime.rooms.overlay_access(token, room_id) if room_id else None
            if access is None:
                await _refuse(ws, CLOSE_UNAUTHORIZED, "invalid or replaced overlay token")
                return
            overlay_version = access.version
        else:
            caller = await runtime.users.authenticate(token)
            if caller is None:
                await _refuse(ws, CLOSE_UNAUTHORIZED, "missing, invalid or expired token")
                return
        room = await runtime.store.get_room(room_id) if room_id is not None else None
    except StoreError:
        await _refuse(ws, CLOSE_UNAVAILABLE, "storage is busy; retry shortly")
        return
    if room is None or room.status is not RoomStatus.LIVE:
        await _refuse(ws, CLOSE_NOT_FOUND, "no such room, or its live has ended")
        return
    since = _since(ws)
    if isinstance(since, str):
        await _refuse(ws, CLOSE_BAD_REQUEST, since)
        return
    if overlay:
        kind = ConnKind.OVERLAY
    else:
        assert caller is not None
        kind = ConnKind.HOST if caller.id == room.host else ConnKind.VIEWER
    user: UserId | None = caller.id if caller is not None else None
    ip = _client_ip(ws)
    why_not = runtime.hub.admit(user, ip, room.id, kind)
    if why_not:
        await _refuse(ws, CLOSE_TOO_MANY, why_not)
        return
    try:
        await _admitted(runtime, ws, room, kind, caller, since, overlay_version)
    finally:
        runtime.hub.release(user, ip, room.id, kind)


async def _admitted(
    runtime: Runtime,
    ws: WebSocket,
    room: RoomRow,
    kind: ConnKind,
    caller: Caller | None,
    since: int | None,
    overlay_version: int,
) -> None:
    try:
        coins = (await runtime.store.balances(caller.id))[0] if caller is not None else None
        book = await runtime.gifts.books.book(room.id)
    except StoreError:
        await _refuse(ws, CLOSE_UNAVAILABLE, "storage is busy; retry shortly")
        return
    if book is None or book.status is not RoomStatus.LIVE:
        await _refuse(ws, CLOSE_NOT_FOUND, "no such room, or its live has ended")
        return

    user = caller.id if caller is not None else None
    sock = cast(DirectSocket, ws.scope["extensions"][SCOPE_KEY])
    outbox_max = runtime.settings.outbox_frames_max
    conn = Conn(sock, room.id, kind, user, _client_ip(ws), outbox_max, overlay_version)
    seq = await runtime.hub.join(conn, runtime.gifts.books.published_seq(room.id))
    try:
        conn.send_first(text_frame(_welcome(runtime, room, caller, coins, seq)))
        if since is not None:
            await _replay(runtime, conn, room.id, since, seq)
        conn.go_live()
        await _read_loop(runtime, ws, conn, caller)
    finally:
        await runtime.hub.leave(conn)
        conn.close_after_drain(1000)


def _welcome(runtime: Runtime, room: RoomRow, caller: Any, coins: int | None, seq: int) -> bytes:
    doc: dict[str, Any] = {
        "type": "welcome",
        "room": {
            "id": room.id,
            "title": room.title,
            "host": {"id": room.host, "name": room.host_name},
            "status": room.status.value,
        },
    }
    if caller is not None:
        doc["you"] = {"id": caller.id, "name": caller.name, "coins": coins}
    doc["seq"] = seq
    doc["viewers"] = runtime.hub.viewer_count(room.id)
    doc["top"] = top_doc(runtime.gifts.books.top(room.id))
    goal = runtime.gifts.books.goal(room.id)
    doc["goal"] = (
        {"title": goal[0], "coins": goal[1], "progress": goal[2]} if goal is not None else None
    )
    return dumps(doc)


async def _replay(runtime: Runtime, conn: Conn, room: RoomId, since: int, upto: int) -> None:
    """Every event numbered (since, upto], in frames of at most N events, or `resync`."""
    if since > upto:
        conn.send_first(RESYNC_FRAME)  # the client knows of events we never numbered
        return
    per_frame = runtime.settings.replay_events_per_frame_max
    cursor = since
    while cursor < upto:
        try:
            frames = await runtime.store.events_after(room, cursor, min(per_frame, upto - cursor))
        except StoreError:
            conn.send_first(RESYNC_FRAME)
            return
        if frames is None or not frames:
            conn.send_first(RESYNC_FRAME)
            return
        conn.send_first(text_frame(frames[0] if len(frames) == 1 else encode_batch(frames)))
        cursor += len(frames)


class _InFlight:
    """Gifts of one socket waiting for their answer; the reader pauses past the cap."""

    __slots__ = ("count", "resume")

    def __init__(self) -> None:
        self.count = 0
        self.resume: asyncio.Future[None] | None = None

    def reply_to(self, runtime: Runtime, conn: Conn, request_id: str) -> Reply:
        self.count += 1

        def reply(answer: GiftAnswer) -> None:
            self.count -= 1
            conn.push(answer_frame(request_id, answer, runtime))
            if self.resume is not None and not self.resume.done():
                self.resume.set_result(None)

        return reply

    async def wait_below(self, cap: int) -> None:
        while self.count >= cap:
            self.resume = asyncio.get_running_loop().create_future()
            await self.resume


async def _read_loop(runtime: Runtime, ws: WebSocket, conn: Conn, caller: Caller | None) -> None:
    frame_max = runtime.settings.ws_frame_bytes_max
    in_flight = _InFlight()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        decoded = decode_client(data, frame_max)
        if isinstance(decoded, Ping):
            conn.push(PONG_FRAME)
        elif isinstance(decoded, Invalid):
            conn.push_text(encode_error(Code.INVALID, decoded.message, decoded.id))
        elif isinstance(decoded, GiftRequest):
            if caller is None:
                refusal = Refusal(Code.FORBIDDEN, "an overlay cannot send gifts")
                conn.push(answer_frame(decoded.id, refusal, runtime))
            elif runtime.stopping:
                refusal = Refusal(Code.UNAVAILABLE, "the server is shutting down; resend later")
                conn.push(answer_frame(decoded.id, refusal, runtime))
            else:
                await in_flight.wait_below(GIFTS_IN_FLIGHT_MAX)
                runtime.gifts.submit(
                    caller, decoded, conn.room, in_flight.reply_to(runtime, conn, decoded.id)
                )


WS_ROUTES = [
    WebSocketRoute("/ws/rooms/{room_id}", room_socket),
    WebSocketRoute("/ws/overlay/{room_id}", overlay_socket),
]
