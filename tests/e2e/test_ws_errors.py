"""What a room socket answers to bad requests and refused gifts: an `error` with a contract
code, the request `id` when one could be read, and the connection stays open. A frame over
4096 bytes is the one thing that closes it (1009)."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.ws_helpers import (
    assert_error,
    assert_gift_ok,
    assert_open,
    minor_birthdate,
    numbered,
    stage,
    until_closed,
    welcome,
    with_settings,
)
from tests.support.client import Api, Socket

INVALID_FRAMES = [
    ("truncated-json", '{"type": "gift", "id": "r1"', None),
    ("not-json", "hello", None),
    ("empty-frame", "", None),
    ("array", '[{"type": "ping"}]', None),
    ("string", '"ping"', None),
    ("number", "42", None),
    ("null", "null", None),
    ("no-type", '{"id": "r1"}', None),
    ("unknown-type", '{"type": "dance"}', None),
    ("non-string-type", '{"type": 5}', None),
    ("missing-id", '{"type": "gift", "gift_id": "rose", "count": 1}', None),
    ("empty-id", '{"type": "gift", "id": "", "gift_id": "rose", "count": 1}', None),
    (
        "oversized-id",
        '{"type": "gift", "id": "%s", "gift_id": "rose", "count": 1}' % ("x" * 65),
        None,
    ),
    ("numeric-id", '{"type": "gift", "id": 7, "gift_id": "rose", "count": 1}', None),
    ("null-id", '{"type": "gift", "id": null, "gift_id": "rose", "count": 1}', None),
    ("missing-gift-id", '{"type": "gift", "id": "r1", "count": 1}', "r1"),
    ("numeric-gift-id", '{"type": "gift", "id": "r1", "gift_id": 5, "count": 1}', "r1"),
    ("count-0", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": 0}', "r1"),
    ("count-100", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": 100}', "r1"),
    ("count-minus-1", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": -1}', "r1"),
    ("count-1.5", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": 1.5}', "r1"),
    ("count-1.0", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": 1.0}', "r1"),
    ("count-true", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": true}', "r1"),
    ("count-string", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": "2"}', "r1"),
    ("count-null", '{"type": "gift", "id": "r1", "gift_id": "rose", "count": null}', "r1"),
    ("count-missing", '{"type": "gift", "id": "r1", "gift_id": "rose"}', "r1"),
    ("count-2**70", f'{{"type": "gift", "id": "r1", "gift_id": "rose", "count": {2**70}}}', "r1"),
]


@pytest.mark.parametrize(
    ("frame", "request_id"),
    [pytest.param(frame, rid, id=label) for label, frame, rid in INVALID_FRAMES],
)
async def test_a_malformed_message_is_answered_invalid_and_the_socket_stays_open(
    api: Api, frame: str, request_id: str | None
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        await ws.send_raw(frame)
        assert_error(await ws.recv_type("error"), "invalid", request_id)
        await assert_open(ws)
        # Nothing was debited, and the socket still takes a real gift.
        assert_gift_ok(await ws.gift("after", "rose"), "after", coins_spent=1, balance=329)


async def test_the_largest_valid_id_and_count_are_accepted(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        longest = "i" * 64
        assert_gift_ok(await ws.gift(longest, "rose", 99), longest, coins_spent=99, balance=231)
        assert_gift_ok(await ws.gift("é", "rose", 1), "é", coins_spent=1, balance=230)


BALANCE_BEFORE = {"host": 330, "minor": 0, "broke": 0, "rich": 65}


@pytest.mark.parametrize(
    ("who", "gift_id", "code"),
    [
        pytest.param("rich", "unicorn", "unknown_gift", id="unknown-gift"),
        pytest.param("broke", "unicorn", "unknown_gift", id="unknown-gift-before-coins"),
        pytest.param("host", "rose", "self_gift", id="host-in-own-room"),
        pytest.param("host", "unicorn", "unknown_gift", id="unknown-gift-before-self-gift"),
        pytest.param("minor", "rose", "age_restricted", id="seventeen-year-old"),
        pytest.param("minor", "unicorn", "unknown_gift", id="unknown-gift-before-age"),
        pytest.param("rich", "confetti", "insufficient_coins", id="100-coins-with-65"),
        pytest.param("broke", "rose", "insufficient_coins", id="rose-with-0"),
    ],
)
async def test_a_refused_gift_is_answered_with_its_code_and_changes_nothing(
    api: Api, who: str, gift_id: str, code: str
) -> None:
    host = await api.signup("host")
    await api.recharge(host, "coins_330")
    room = await api.go_live(host)
    if who == "host":
        sender = host
    elif who == "minor":
        sender = await api.signup("kid", birthdate=minor_birthdate())
    else:
        sender = await api.signup(who)
        if who == "rich":
            await api.recharge(sender, "coins_65")
    async with api.room(room["id"], sender.token) as ws:
        await welcome(ws)
        assert_error(await ws.gift("r1", gift_id), code, "r1")
        await assert_open(ws)
    r = await api.call("GET", f"/api/rooms/{room['id']}")
    assert r.json()["seq"] == 0, r.text  # no room event
    assert (await api.me(sender))["coins"] == BALANCE_BEFORE[who]
    assert (await api.me(host))["diamonds"] == 0


async def test_a_seventeen_year_old_can_watch_but_not_gift(api: Api) -> None:
    s = await stage(api, ["alice"])
    kid = await api.signup("kid", birthdate=minor_birthdate())
    async with api.room(s.id, kid.token) as ws, api.room(s.id, s.viewers[0].token) as a:
        doc = await welcome(ws)
        assert doc["you"] == {"id": kid.id, "name": "kid", "coins": 0}
        await welcome(a)
        assert (await a.gift("a1", "confetti"))["type"] == "gift_ok"
        (event,) = await numbered(ws, 1)
        assert event["sender"]["name"] == "alice"
        assert_error(await ws.gift("k1", "rose"), "age_restricted", "k1")
        await assert_open(ws)


async def _burst(ws: Socket, ids: list[str]) -> dict[str, dict[str, object]]:
    """Send every gift without waiting, then collect one answer per id."""
    for request_id in ids:
        await ws.send({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1})
    answers: dict[str, dict[str, object]] = {}
    while len(answers) < len(ids):
        doc = await ws.recv_type("gift_ok", "error")
        assert doc["id"] in ids and doc["id"] not in answers, doc
        answers[doc["id"]] = doc
    return answers


async def test_a_burst_past_the_limit_is_rate_limited_and_a_rate_limited_id_can_be_resent(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        ids = [f"b-{i}" for i in range(25)]
        answers = await _burst(ws, ids)
        ok = [i for i in ids if answers[i]["type"] == "gift_ok"]
        limited = [i for i in ids if answers[i]["type"] == "error"]
        assert len(ok) >= 20, answers  # the burst of 20 is honoured
        assert limited, "25 gifts at once at 10/s with bursts of 20: some must be limited"
        for request_id in limited:
            doc = answers[request_id]
            assert_error(doc, "rate_limited", request_id)
            wait_ms = doc["retry_after_ms"]
            assert type(wait_ms) is int and wait_ms > 0, doc
        await assert_open(ws)
        assert (await api.me(alice))["coins"] == 330 - len(ok)
        # Waiting as told, a rate-limited request is resent with its id and accepted.
        retry = limited[0]
        await asyncio.sleep(int(answers[retry]["retry_after_ms"]) / 1000)  # type: ignore[call-overload]
        again = await ws.gift(retry, "rose")
        assert_gift_ok(again, retry, coins_spent=1, balance=330 - len(ok) - 1)


async def test_a_duplicate_id_still_answers_its_first_gift_ok_while_rate_limited(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        first = await ws.gift("keep", "rose")
        answers = await _burst(ws, [f"b-{i}" for i in range(25)] + ["keep"])
        assert any(a.get("code") == "rate_limited" for a in answers.values()), answers
        assert answers["keep"] == {**first, "duplicate": True}


def _ping_of(size_bytes: int, pad: str) -> str:
    """A ping padded with `pad` (1 or 2 UTF-8 bytes) to exactly `size_bytes` bytes."""
    head, tail = '{"type": "ping", "pad": "', '"}'
    room = size_bytes - len(head) - len(tail)
    width = len(pad.encode())
    text = head + pad * (room // width) + "x" * (room % width) + tail
    assert len(text.encode()) == size_bytes
    return text


@pytest.mark.parametrize("pad", ["x", "é"], ids=["ascii", "two-byte-utf8"])
async def test_a_frame_of_4096_bytes_is_read_and_one_of_4097_closes_with_1009(
    api: Api, pad: str
) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send_raw(_ping_of(4096, pad))
        await ws.recv_type("pong")
        await ws.send_raw(_ping_of(4097, pad))
        _, code = await until_closed(ws)
    assert code == 1009


async def test_a_binary_frame_of_4097_bytes_closes_with_1009(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send_raw(_ping_of(4097, "x").encode())
        _, code = await until_closed(ws)
    assert code == 1009


@with_settings(fanout_flush_ms=1000)
async def test_a_gift_that_arrives_as_the_host_ends_the_room_is_refused_room_not_live(
    api: Api,
) -> None:
    # A socket of an ended room is closed once `room_ended` goes out. With a 1 s fan-out
    # window, `room_ended` waits for the window after the viewer's join flushed its
    # `viewers` update, so a gift sent right after the end is committed is judged against
    # an ended room while the socket is still open.
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
        assert r.status_code == 200, r.text
        assert_error(await ws.gift("late", "rose"), "room_not_live", "late")
        seen, code = await until_closed(ws)
    assert [d["type"] for d in seen if d["type"] == "room_ended"] == ["room_ended"]
    assert code == 1000
    assert (await api.me(alice))["coins"] == 330
