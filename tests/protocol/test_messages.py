"""Room messages: client frames decoded by table, server events encoded in the contract's shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from server.domain.catalog import Gift
from server.domain.errors import Code
from server.domain.money import RoomId, UserId
from server.domain.rooms import EventKind, RoomBook, RoomEvent, RoomStatus
from server.protocol.messages import (
    PONG,
    RESYNC,
    ClientMessage,
    GiftRequest,
    Invalid,
    Ping,
    decode_client,
    encode_batch,
    encode_error,
    encode_event,
    event_doc,
    top_doc,
)

FRAME_BYTES_MAX = 4096


def gift(rest: str) -> str:
    return '{"type":"gift",' + rest + "}"


GOOD: list[tuple[str | bytes, ClientMessage]] = [
    ('{"type":"ping"}', Ping()),
    (b'{"type":"ping"}', Ping()),
    ('{"type":"ping","id":"x","extra":[1,2]}', Ping()),
    ('  \n{"type" : "ping"}\t', Ping()),
    (gift('"id":"r1","gift_id":"rose","count":1'), GiftRequest("r1", "rose", 1)),
    (gift('"id":"r1","gift_id":"rose","count":99').encode(), GiftRequest("r1", "rose", 99)),
    (gift('"count":5,"gift_id":"corgi","id":"z"'), GiftRequest("z", "corgi", 5)),
    (gift(f'"id":"{"i" * 64}","gift_id":"rose","count":1'), GiftRequest("i" * 64, "rose", 1)),
    (gift(f'"id":"a","gift_id":"{"g" * 64}","count":1'), GiftRequest("a", "g" * 64, 1)),
    # 64 characters, not bytes: an id may be any text the client picks.
    (gift(f'"id":"{"é" * 64}","gift_id":"rose","count":1'), GiftRequest("é" * 64, "rose", 1)),
    (
        gift('"id":"\\u00e9\\ud83c\\udf39","gift_id":"rose","count":1'),
        GiftRequest("é🌹", "rose", 1),
    ),
    # Duplicate keys: the last one wins, as in JavaScript.
    (gift('"id":"a","id":"b","gift_id":"rose","count":1'), GiftRequest("b", "rose", 1)),
    (gift('"id":"a","gift_id":"rose","count":0,"count":3'), GiftRequest("a", "rose", 3)),
    (
        '{"type":"ping","type":"gift","id":"a","gift_id":"rose","count":1}',
        GiftRequest("a", "rose", 1),
    ),
    (gift('"id":"a","gift_id":"rose","count":1,"extra":{"x":null}'), GiftRequest("a", "rose", 1)),
]


def _short(frame: str | bytes) -> str:
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "backslashreplace")
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


@pytest.mark.parametrize(("frame", "decoded"), GOOD, ids=[_short(f) for f, _ in GOOD])
def test_good_frames(frame: str | bytes, decoded: ClientMessage) -> None:
    assert decode_client(frame, FRAME_BYTES_MAX) == decoded


BAD: list[tuple[str | bytes, str | None, str]] = [
    # (frame, the id the answer carries, words in the message)
    ("", None, "not valid JSON"),
    ("ping", None, "not valid JSON"),
    ('{"type":"gift"', None, "not valid JSON"),
    ("{'type':'ping'}", None, "not valid JSON"),
    ('{"type":"ping",}', None, "not valid JSON"),
    (b"\xff\xfe{}", None, "not valid JSON"),
    (b'{"type":"gift","id":"\xc3"}', None, "not valid JSON"),
    ('{"type":"gift","count":NaN}', None, "not valid JSON"),
    ('{"type":"gift","count":Infinity}', None, "not valid JSON"),
    ('{"type":"gift","count":-Infinity}', None, "not valid JSON"),
    ('{"type":"gift","id":"\\ud800","gift_id":"rose"}', None, "not valid JSON"),
    ('{"type":"gift","id":"a\ud800","gift_id":"rose"}', None, "not valid JSON"),
    ("[]", None, "object"),
    ('["gift"]', None, "object"),
    ("null", None, "object"),
    ("1", None, "object"),
    ('"ping"', None, "object"),
    ("{}", None, '"type"'),
    ('{"type":null}', None, '"type"'),
    ('{"type":5}', None, '"type"'),
    ('{"type":["gift"]}', None, '"type"'),
    ('{"type":"hug"}', None, "unknown message type 'hug'"),
    # The contract: an `invalid` answer carries the `id` whenever one could be read.
    ('{"type":"GIFT","id":"a"}', "a", "unknown message type"),
    ('{"id":"b"}', "b", '"type"'),
    ('{"type":"ping "}', None, "unknown message type"),
    (gift('"gift_id":"rose","count":1'), None, '"id"'),
    (gift('"id":"","gift_id":"rose","count":1'), None, "1-64"),
    (gift(f'"id":"{"i" * 65}","gift_id":"rose","count":1'), None, "1-64"),
    (gift('"id":5,"gift_id":"rose","count":1'), None, '"id"'),
    (gift('"id":null,"gift_id":"rose","count":1'), None, '"id"'),
    (gift('"id":["a"],"gift_id":"rose","count":1'), None, '"id"'),
    (gift('"id":"r1","count":1'), "r1", '"gift_id"'),
    (gift('"id":"r1","gift_id":"","count":1'), "r1", '"gift_id"'),
    (gift(f'"id":"r1","gift_id":"{"g" * 65}","count":1'), "r1", '"gift_id"'),
    (gift('"id":"r1","gift_id":7,"count":1'), "r1", '"gift_id"'),
    (gift('"id":"r1","gift_id":"rose","count":0'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":100'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":-1'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":1.0'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":1e1'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":true'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":"1"'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":null'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":[1]'), "r1", '"count"'),
    (gift('"id":"r1","gift_id":"rose","count":18446744073709551615'), "r1", '"count"'),
    (gift(f'"id":"r1","gift_id":"rose","count":{2**200}'), "r1", '"count"'),
    # The contract: "a missing field" is `invalid`; the message shows `count` as a field.
    (gift('"id":"r1","gift_id":"rose"'), "r1", '"count"'),
    ("[" * 10_000 + "]" * 10_000, None, "larger than"),
    ('{"a":' * 1000 + "1" + "}" * 1000, None, "larger than"),
    ("x" * (FRAME_BYTES_MAX + 1), None, "larger than"),
    (b" " * (FRAME_BYTES_MAX + 1), None, "larger than"),
    # The limit is in bytes: 2,000 characters of 3 bytes each are 6,000 bytes.
    (gift('"id":"r1","gift_id":"rose","count":1,"pad":"' + "€" * 2000 + '"'), None, "larger than"),
]


@pytest.mark.parametrize(("frame", "request_id", "words"), BAD, ids=[_short(f) for f, _, _ in BAD])
def test_bad_frames(frame: str | bytes, request_id: str | None, words: str) -> None:
    decoded = decode_client(frame, FRAME_BYTES_MAX)
    assert isinstance(decoded, Invalid), decoded
    assert decoded.id == request_id
    assert words in decoded.message
    assert len(decoded.message) <= 300


def test_a_frame_of_exactly_the_limit_is_read() -> None:
    frame = gift('"id":"r1","gift_id":"rose","count":1')
    frame = frame + " " * (FRAME_BYTES_MAX - len(frame))
    assert decode_client(frame, FRAME_BYTES_MAX) == GiftRequest("r1", "rose", 1)
    assert decode_client(frame.encode(), FRAME_BYTES_MAX) == GiftRequest("r1", "rose", 1)


@pytest.mark.parametrize("depth", [10, 1000, 10_000])
def test_deep_nesting_past_the_parsers_limit_is_invalid_not_a_crash(depth: int) -> None:
    limit = 10**7
    for frame in (
        "[" * depth + "]" * depth,
        '{"a":' * depth + "1" + "}" * depth,
        '{"type":"gift","id":' + "[" * depth + "]" * depth + "}",
        "[" * depth,
    ):
        assert isinstance(decode_client(frame, limit), Invalid)


# --- encoding -----------------------------------------------------------------------------

ROSE = Gift("rose", "Rose", 1, True, "small")
CORGI = Gift("corgi", "Corgi", 299, False, "medium")
ALICE = UserId(2)
AT_MS = 1_795_521_600_123
AT = "2026-11-24T12:00:00.123Z"


def events() -> dict[str, RoomEvent]:
    book = RoomBook(RoomId(7), UserId(1), RoomStatus.LIVE, 0, 3000)
    (corgi,) = book.apply_gift(ALICE, "alice", CORGI, 2, 598, AT_MS)
    (rose,) = book.apply_gift(ALICE, "alice", ROSE, 5, 5, AT_MS)
    end, ended = book.end(AT_MS)
    return {"corgi": corgi, "rose": rose, "streak_end": end, "room_ended": ended}


SENDER = {"id": 2, "name": "alice"}
ROSE_VIEW = {"id": "rose", "name": "Rose", "coins": 1, "animation": "small"}

SHAPES: dict[str, dict[str, Any]] = {
    "corgi": {
        "type": "gift",
        "seq": 1,
        "at": AT,
        "room": 7,
        "sender": SENDER,
        "gift": {"id": "corgi", "name": "Corgi", "coins": 299, "animation": "medium"},
        "count": 2,
        "coins": 598,
        "diamonds": 598,
        "streak": None,
        "shoutout": "alice sent Corgi x2",
        "first": True,
    },
    "rose": {
        "type": "gift",
        "seq": 2,
        "at": AT,
        "room": 7,
        "sender": SENDER,
        "gift": ROSE_VIEW,
        "count": 5,
        "coins": 5,
        "diamonds": 5,
        "streak": {"id": 2, "total": 5, "ended": False},
        "shoutout": "alice sent Rose x5",
        "first": False,
    },
    "streak_end": {
        "type": "streak_end",
        "seq": 3,
        "at": AT,
        "room": 7,
        "streak": {"id": 2, "total": 5, "ended": True},
        "sender": SENDER,
        "gift": ROSE_VIEW,
    },
    "room_ended": {"type": "room_ended", "seq": 4, "at": AT, "room": 7},
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_event_doc_shape(name: str) -> None:
    event = events()[name]
    doc = event_doc(event)
    assert doc == SHAPES[name]
    assert encode_event(event) == orjson.dumps(doc)
    assert orjson.loads(encode_event(event)) == SHAPES[name]


def test_every_event_kind_has_a_shape() -> None:
    assert {doc["type"] for doc in SHAPES.values()} == {kind.value for kind in EventKind}


@pytest.mark.parametrize("n", [0, 1, 2, 4])
def test_encode_batch_is_the_events_in_order(n: int) -> None:
    encoded = [encode_event(e) for e in events().values()][:n]
    batch = encode_batch(encoded)
    assert isinstance(batch, bytes)
    assert orjson.loads(batch) == {
        "type": "batch",
        "events": [orjson.loads(frame) for frame in encoded],
    }


@pytest.mark.parametrize(
    ("args", "doc"),
    [
        ((Code.INVALID, "bad"), {"type": "error", "code": "invalid", "message": "bad"}),
        (
            (Code.INSUFFICIENT_COINS, "not enough", "r1"),
            {"type": "error", "id": "r1", "code": "insufficient_coins", "message": "not enough"},
        ),
    ],
)
def test_encode_error(args: tuple[Any, ...], doc: dict[str, Any]) -> None:
    assert orjson.loads(encode_error(*args)) == doc


def test_encode_error_with_retry_after() -> None:
    doc = orjson.loads(encode_error(Code.RATE_LIMITED, "slow down", "r9", retry_after_ms=100))
    assert doc == {
        "type": "error",
        "id": "r9",
        "code": "rate_limited",
        "message": "slow down",
        "retry_after_ms": 100,
    }


def test_fixed_frames_and_top() -> None:
    assert orjson.loads(PONG) == {"type": "pong"}
    assert orjson.loads(RESYNC) == {"type": "resync"}
    assert top_doc([(3, "carol", 299), (2, "alice", 10)]) == [
        {"user": {"id": 3, "name": "carol"}, "coins": 299},
        {"user": {"id": 2, "name": "alice"}, "coins": 10},
    ]
    assert top_doc([]) == []
