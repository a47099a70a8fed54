"""Sending gifts over the room socket: the sender's answer and the room's `gift` event."""

from __future__ import annotations

import pytest

from tests.e2e.ws_helpers import (
    assert_contiguous,
    assert_gift_event,
    assert_gift_ok,
    numbered,
    stage,
    until,
    welcome,
)
from tests.support.client import Api


async def test_gift_ok_reports_the_balance_and_diamonds_that_me_then_shows(api: Api) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        ok = await ws.gift("g-1", "rose", 5)
        assert_gift_ok(ok, "g-1", coins_spent=5, balance=325)
        assert ok["seq"] == 1
        ok = await ws.gift("g-2", "confetti", 2)
        assert_gift_ok(ok, "g-2", coins_spent=200, balance=125)
    assert (await api.me(alice))["coins"] == 125
    host = await api.me(s.host)
    assert host["diamonds"] == 205
    assert host["coins"] == 0


async def test_the_gift_event_reaches_the_host_every_viewer_and_the_overlay(api: Api) -> None:
    s = await stage(api, ["alice", "bob", "carol"])
    alice, bob, carol = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as alice_ws,
        api.room(s.id, bob.token) as bob_ws,
        api.room(s.id, carol.token) as carol_ws,
        api.room(s.id, s.overlay_token, overlay=True) as overlay_ws,
    ):
        sockets = [host_ws, alice_ws, bob_ws, carol_ws, overlay_ws]
        for sock in sockets:
            await welcome(sock)
        ok = await alice_ws.gift("g-1", "rose", 5)
        events = [(await numbered(sock, 1))[0] for sock in sockets]
    for event in events:
        assert event == events[0]  # one event, the same bytes for everyone
    event = events[0]
    assert_gift_event(event, alice, "rose", 5, first=True)
    assert event["seq"] == ok["seq"] == 1
    assert event["shoutout"] == "alice sent Rose x5"
    assert event["streak"] == {"id": 1, "total": 5, "ended": False}


async def test_a_gift_in_one_room_is_not_seen_in_another(api: Api) -> None:
    s = await stage(api, ["alice"])
    other_host = await api.signup("other_host")
    other = await api.go_live(other_host, "elsewhere")
    async with (
        api.room(s.id, s.viewers[0].token) as here,
        api.room(other["id"], other_host.token) as there,
    ):
        await welcome(here)
        await welcome(there)
        assert (await here.gift("g-1", "confetti"))["type"] == "gift_ok"
        await numbered(here, 1)
        await there.send({"type": "ping"})
        seen = []
        while (doc := await there.recv())["type"] != "pong":
            seen.append(doc)
        assert [d for d in seen if d["type"] == "gift"] == []


@pytest.mark.parametrize(
    ("gift_id", "count", "shoutout"),
    [
        ("rose", 1, "alice sent Rose"),
        ("rose", 5, "alice sent Rose x5"),
        ("finger_heart", 99, "alice sent Finger Heart x99"),
        ("confetti", 1, "alice sent Confetti"),
        ("confetti", 3, "alice sent Confetti x3"),
    ],
)
async def test_the_shoutout_names_the_sender_the_gift_and_the_count(
    api: Api, gift_id: str, count: int, shoutout: str
) -> None:
    s = await stage(api, ["alice"], package="coins_1321")
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        assert (await ws.gift("g-1", gift_id, count))["type"] == "gift_ok"
        (event,) = await numbered(ws, 1)
    assert_gift_event(event, s.viewers[0], gift_id, count, first=True)
    assert event["shoutout"] == shoutout


async def test_first_is_true_only_on_each_senders_first_gift_of_the_live(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
    ):
        for sock in (host_ws, a, b):
            await welcome(sock)
        sends = [(a, "confetti"), (a, "confetti"), (b, "confetti"), (a, "confetti")]
        for i, (sock, gift_id) in enumerate(sends):
            assert (await sock.gift(f"g-{i}", gift_id))["type"] == "gift_ok"
        events = await numbered(host_ws, 4)
    assert [(e["sender"]["name"], e["first"]) for e in events] == [
        ("alice", True),
        ("alice", False),
        ("bob", True),
        ("alice", False),
    ]


async def test_seq_rises_by_exactly_one_per_numbered_event_and_matches_gift_ok(
    api: Api,
) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
    ):
        for sock in (host_ws, a, b):
            await welcome(sock)
        oks = {}
        # rose, rose (one streak), finger heart (ends the rose streak first: 2 events),
        # bob's confetti, alice's confetti (ends the finger heart streak: 2 events).
        plan = [(a, "rose"), (a, "rose"), (a, "finger_heart"), (b, "confetti"), (a, "confetti")]
        for i, (sock, gift_id) in enumerate(plan):
            oks[f"g-{i}"] = await sock.gift(f"g-{i}", gift_id)
        events = await numbered(host_ws, 7)
    assert_contiguous(events, after=0)
    assert [e["type"] for e in events] == [
        "gift",
        "gift",
        "streak_end",
        "gift",
        "gift",
        "streak_end",
        "gift",
    ]
    gift_seqs = [e["seq"] for e in events if e["type"] == "gift"]
    assert [ok["seq"] for ok in oks.values()] == gift_seqs


async def test_answers_go_to_the_sending_socket_only(api: Api) -> None:
    s = await stage(api, ["alice", "bob"], package="coins_65")
    alice, bob = s.viewers
    async with (
        api.room(s.id, alice.token) as sender,
        api.room(s.id, alice.token) as same_user,
        api.room(s.id, bob.token) as other,
        api.room(s.id, s.host.token) as host_ws,
    ):
        watchers = [same_user, other, host_ws]
        for sock in (sender, *watchers):
            await welcome(sock)
        assert (await sender.gift("ok", "doughnut"))["type"] == "gift_ok"
        assert (await sender.gift("no", "confetti"))["code"] == "insufficient_coins"
        await sender.send({"type": "gift", "id": "bad", "gift_id": "rose", "count": 0})
        assert (await sender.recv_type("error"))["code"] == "invalid"
        await sender.send({"type": "ping"})
        await sender.recv_type("pong")
        # A sentinel from bob: once a watcher sees it, it has seen everything sent before.
        assert (await other.gift("sentinel", "doughnut"))["type"] == "gift_ok"
        for sock in watchers:
            seen = await until(sock, lambda d: d["type"] == "gift" and d["sender"]["id"] == bob.id)
            leaked = [d for d in seen if d["type"] in ("gift_ok", "error", "pong")]
            if sock is other:
                leaked = [d for d in leaked if d.get("id") != "sentinel"]
            assert leaked == [], leaked
            assert [d["seq"] for d in seen if d["type"] == "gift"] == [1, 2]
