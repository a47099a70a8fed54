"""Streaks over the room socket, with a 400 ms window instead of 3 s to keep the tests quick."""

from __future__ import annotations

import pytest

from tests.e2e.ws_helpers import (
    CATALOG,
    Doc,
    assert_contiguous,
    assert_gift_event,
    numbered,
    stage,
    until_closed,
    welcome,
    with_settings,
)
from tests.support.client import Api, User


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"streak_window_ms": 400}


def assert_streak_end(doc: Doc, sender: User, gift_id: str, streak_id: int, total: int) -> None:
    name, coins, _, animation = CATALOG[gift_id]
    assert doc["type"] == "streak_end", doc
    assert doc["streak"] == {"id": streak_id, "total": total, "ended": True}, doc
    assert doc["sender"] == {"id": sender.id, "name": sender.name}
    assert doc["gift"] == {"id": gift_id, "name": name, "coins": coins, "animation": animation}


async def test_consecutive_roses_form_one_streak_that_ends_a_window_after_the_last(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, s.host.token) as host_ws, api.room(s.id, alice.token) as ws:
        await welcome(host_ws)
        await welcome(ws)
        for i, count in enumerate([1, 3, 2]):
            assert (await ws.gift(f"r{i}", "rose", count))["type"] == "gift_ok"
        events = await numbered(host_ws, 4)
    assert_contiguous(events, after=0)
    gifts, end = events[:3], events[3]
    for event, count in zip(gifts, [1, 3, 2], strict=True):
        assert_gift_event(event, alice, "rose", count)
    assert [e["streak"] for e in gifts] == [
        {"id": 1, "total": 1, "ended": False},
        {"id": 1, "total": 4, "ended": False},
        {"id": 1, "total": 6, "ended": False},
    ]
    assert_streak_end(end, alice, "rose", streak_id=1, total=6)


async def test_a_rose_after_a_streak_ended_starts_a_new_streak(api: Api) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        await ws.gift("r1", "rose")
        first, ended = await numbered(ws, 2)
        assert_streak_end(ended, alice, "rose", streak_id=first["seq"], total=1)
        await ws.gift("r2", "rose")
        second, ended = await numbered(ws, 2)
    assert second["seq"] == 3
    assert second["streak"] == {"id": 3, "total": 1, "ended": False}
    assert second["first"] is False
    assert_streak_end(ended, alice, "rose", streak_id=3, total=1)


async def test_another_gift_ends_the_open_streak_at_once_before_its_own_event(api: Api) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        await ws.gift("r1", "rose")
        await ws.gift("r2", "rose", 4)
        ok = await ws.gift("f1", "finger_heart", 2)
        events = await numbered(ws, 5)
    assert_contiguous(events, after=0)
    assert [e["type"] for e in events] == ["gift", "gift", "streak_end", "gift", "streak_end"]
    assert_streak_end(events[2], alice, "rose", streak_id=1, total=5)
    heart = events[3]
    assert heart["seq"] == ok["seq"] == 4
    assert_gift_event(heart, alice, "finger_heart", 2)
    assert heart["streak"] == {"id": 4, "total": 2, "ended": False}
    assert_streak_end(events[4], alice, "finger_heart", streak_id=4, total=2)


async def test_a_gift_that_is_not_streakable_has_no_streak_and_ends_an_open_one(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        await ws.gift("r1", "rose")
        await ws.gift("c1", "confetti", 2)
        await ws.gift("c2", "confetti")
        await ws.gift("r2", "rose")
        events = await numbered(ws, 6)
    assert_contiguous(events, after=0)
    assert [(e["type"], e["gift"]["id"]) for e in events] == [
        ("gift", "rose"),
        ("streak_end", "rose"),
        ("gift", "confetti"),
        ("gift", "confetti"),
        ("gift", "rose"),
        ("streak_end", "rose"),
    ]
    assert events[2]["streak"] is None and events[3]["streak"] is None
    assert_gift_event(events[2], alice, "confetti", 2)
    assert events[4]["streak"] == {"id": 5, "total": 1, "ended": False}


async def test_streaks_are_per_sender(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with api.room(s.id, alice.token) as a, api.room(s.id, bob.token) as b:
        await welcome(a)
        await welcome(b)
        await a.gift("a1", "rose")
        await b.gift("b1", "rose", 2)
        await a.gift("a2", "rose")
        events = await numbered(a, 5)
    assert_contiguous(events, after=0)
    gifts = [e for e in events if e["type"] == "gift"]
    assert [(e["sender"]["name"], e["streak"]) for e in gifts] == [
        ("alice", {"id": 1, "total": 1, "ended": False}),
        ("bob", {"id": 2, "total": 2, "ended": False}),
        ("alice", {"id": 1, "total": 2, "ended": False}),
    ]
    ends = {e["sender"]["name"]: e for e in events if e["type"] == "streak_end"}
    assert_streak_end(ends["alice"], alice, "rose", streak_id=1, total=2)
    assert_streak_end(ends["bob"], bob, "rose", streak_id=2, total=2)


@with_settings(streak_window_ms=3000)
async def test_ending_the_room_ends_open_streaks_before_room_ended(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
    ):
        for sock in (host_ws, a, b):
            await welcome(sock)
        await a.gift("a1", "rose", 3)
        await b.gift("b1", "doughnut")
        await b.gift("b2", "doughnut")
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
        assert r.status_code == 200, r.text
        for sock in (host_ws, a, b):
            seen, code = await until_closed(sock)
            events = [d for d in seen if d["type"] in ("gift", "streak_end", "room_ended")]
            assert_contiguous(events, after=0)
            assert [e["type"] for e in events] == [
                "gift",
                "gift",
                "gift",
                "streak_end",
                "streak_end",
                "room_ended",
            ]
            assert_streak_end(events[3], alice, "rose", streak_id=1, total=3)
            assert_streak_end(events[4], bob, "doughnut", streak_id=2, total=2)
            assert code == 1000


async def test_the_catalog_states_the_streak_window_this_server_uses(api: Api) -> None:
    """Clients counting a combo before the server answers need the server's window, not 3 s."""
    r = await api.call("GET", "/api/catalog")
    assert r.status_code == 200, r.text
    assert r.json()["streak_window_ms"] == 400
