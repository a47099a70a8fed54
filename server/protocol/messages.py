"""Room WebSocket messages: decode what clients send, encode what the server sends.

Decoding never raises: any frame gives a `Ping`, a `GiftRequest` or an `Invalid` naming what
was wrong (with the request `id` when one could be read). Encoding returns UTF-8 JSON `bytes`;
a room event is encoded once and the same bytes go to every socket in the room.

Hostile input handled here: frames over the size limit, bytes that are not UTF-8, lone
surrogates, JSON nested past orjson's depth limit, integers past 64 bits, floats and booleans
where integers belong, and duplicate keys (the last one wins, as in JavaScript).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from server.domain.catalog import Gift
from server.domain.errors import Code
from server.domain.rooms import EventKind, RoomEvent, StreakView
from server.domain.timefmt import rfc3339


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class GiftRequest:
    id: str
    gift_id: str
    count: int


@dataclass(frozen=True, slots=True)
class Invalid:
    message: str
    id: str | None = None


ClientMessage = Ping | GiftRequest | Invalid

REQUEST_ID_CHARS_MAX = 64
GIFT_ID_CHARS_MAX = 64
COUNT_MAX = 99


def _request_id(doc: dict[str, Any]) -> str | None:
    value = doc.get("id")
    if isinstance(value, str) and 1 <= len(value) <= REQUEST_ID_CHARS_MAX:
        return value
    return None


def _size_bytes(frame: str | bytes, limit: int) -> int:
    """The frame's UTF-8 size; a str is only encoded when its length leaves doubt."""
    if isinstance(frame, bytes) or len(frame) > limit or len(frame) * 4 <= limit:
        return len(frame)
    return len(frame.encode("utf-8", "surrogatepass"))


def decode_client(frame: str | bytes, frame_bytes_max: int) -> ClientMessage:
    if _size_bytes(frame, frame_bytes_max) > frame_bytes_max:
        return Invalid(f"message is larger than {frame_bytes_max} bytes")
    try:
        doc = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        return Invalid(f"message is not valid JSON: {exc}"[:200])
    if not isinstance(doc, dict):
        return Invalid('message must be a JSON object with a "type"')
    kind = doc.get("type")
    if kind == "ping":
        return Ping()
    request_id = _request_id(doc)
    if kind != "gift":
        if isinstance(kind, str):
            message = f'unknown message type {kind[:40]!r}; expected "gift" or "ping"'
            return Invalid(message, request_id)
        return Invalid('message needs a string "type": "gift" or "ping"', request_id)
    raw_id = doc.get("id")
    if request_id is None:
        if isinstance(raw_id, str):
            return Invalid(f"gift id must be 1-{REQUEST_ID_CHARS_MAX} characters")
        return Invalid('gift needs an "id": a string of 1-64 characters you choose')
    gift_id = doc.get("gift_id")
    if not isinstance(gift_id, str) or not 1 <= len(gift_id) <= GIFT_ID_CHARS_MAX:
        return Invalid('gift needs a "gift_id": a catalog gift id string', request_id)
    count = doc.get("count")
    if type(count) is not int or not 1 <= count <= COUNT_MAX:
        return Invalid(f'"count" must be an integer from 1 to {COUNT_MAX}', request_id)
    return GiftRequest(request_id, gift_id, count)


# --- encoding ---------------------------------------------------------------------------


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


def _user(uid: int | None, name: str) -> dict[str, Any]:
    return {"id": uid, "name": name}


def gift_view(gift: Gift) -> dict[str, Any]:
    return {"id": gift.id, "name": gift.name, "coins": gift.coins, "animation": gift.animation}


def _streak(view: StreakView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {"id": view.id, "total": view.total, "ended": view.ended}


def event_doc(event: RoomEvent) -> dict[str, Any]:
    at = rfc3339(event.at_ms)
    if event.kind is EventKind.GIFT:
        assert event.gift is not None
        return {
            "type": "gift",
            "seq": event.seq,
            "at": at,
            "room": event.room,
            "sender": _user(event.sender, event.sender_name),
            "gift": gift_view(event.gift),
            "count": event.count,
            "coins": event.coins,
            "diamonds": event.diamonds,
            "streak": _streak(event.streak),
            "shoutout": event.shoutout,
            "first": event.first,
        }
    if event.kind is EventKind.STREAK_END:
        assert event.gift is not None
        return {
            "type": "streak_end",
            "seq": event.seq,
            "at": at,
            "room": event.room,
            "streak": _streak(event.streak),
            "sender": _user(event.sender, event.sender_name),
            "gift": gift_view(event.gift),
        }
    return {"type": "room_ended", "seq": event.seq, "at": at, "room": event.room}


def encode_event(event: RoomEvent) -> bytes:
    return orjson.dumps(event_doc(event))


def encode_batch(frames: Sequence[bytes]) -> bytes:
    """Several encoded events as one `batch` frame, without decoding them again."""
    return b'{"type":"batch","events":[' + b",".join(frames) + b"]}"


def top_doc(top: Iterable[tuple[int, str, int]]) -> list[dict[str, Any]]:
    return [{"user": _user(uid, name), "coins": coins} for uid, name, coins in top]


def encode_error(code: Code, message: str, request_id: str | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {"type": "error"}
    if request_id is not None:
        doc["id"] = request_id
    doc["code"] = code.value
    doc["message"] = message
    doc.update(extra)
    return orjson.dumps(doc)


PONG = b'{"type":"pong"}'
RESYNC = b'{"type":"resync"}'
