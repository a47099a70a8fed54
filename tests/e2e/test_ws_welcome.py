"""The first message on a room or overlay socket: the welcome, and what it says about the room."""

from __future__ import annotations

from tests.e2e.ws_helpers import assert_open, stage, welcome
from tests.support.client import Api


async def test_a_viewer_is_welcomed_with_the_room_themselves_the_seq_viewers_and_top(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        doc = await welcome(ws)
    assert {"type", "room", "you", "seq", "viewers", "top"} <= doc.keys(), doc
    room = doc["room"]
    assert room["id"] == s.id
    assert room["title"] == "the late show"
    assert room["host"] == {"id": s.host.id, "name": "host"}
    assert room["status"] == "live"
    assert doc["you"] == {"id": alice.id, "name": "alice", "coins": 330}
    assert doc["seq"] == 0
    assert doc["viewers"] == 1  # alice herself is watching
    assert doc["top"] == []


async def test_the_host_is_welcomed_as_themselves_and_is_not_a_viewer(api: Api) -> None:
    s = await stage(api, [])
    async with api.room(s.id, s.host.token) as ws:
        doc = await welcome(ws)
    assert doc["you"] == {"id": s.host.id, "name": "host", "coins": 0}
    assert doc["viewers"] == 0


async def test_an_overlay_welcome_has_the_room_but_no_you(api: Api) -> None:
    s = await stage(api, [])
    async with api.room(s.id, s.overlay_token, overlay=True) as ws:
        doc = await welcome(ws)
    assert "you" not in doc, doc
    assert {"type", "room", "seq", "viewers", "top"} <= doc.keys(), doc
    assert doc["room"]["id"] == s.id
    assert doc["room"]["status"] == "live"
    assert doc["seq"] == 0
    assert doc["viewers"] == 0


async def test_a_late_welcome_carries_the_latest_seq_the_top_and_the_balance(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with api.room(s.id, alice.token) as a, api.room(s.id, bob.token) as b:
        await welcome(a)
        await welcome(b)
        assert (await a.gift("a1", "rose", 5))["type"] == "gift_ok"
        assert (await b.gift("b1", "doughnut"))["type"] == "gift_ok"
        assert (await a.gift("a2", "confetti"))["type"] == "gift_ok"
        async with api.room(s.id, s.overlay_token, overlay=True) as o:
            late_overlay = await welcome(o)
        async with api.room(s.id, bob.token) as b2:
            late = await welcome(b2)
    # rose x5 (streak), doughnut, then confetti ends alice's rose streak first: 4 events.
    assert late["seq"] == 4
    assert late["you"] == {"id": bob.id, "name": "bob", "coins": 300}
    assert late["top"] == [
        {"user": {"id": alice.id, "name": "alice"}, "coins": 105},
        {"user": {"id": bob.id, "name": "bob"}, "coins": 30},
    ]
    assert late["viewers"] == 2
    assert late_overlay["seq"] == 4
    assert late_overlay["top"] == late["top"]


async def test_ping_gets_pong(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send({"type": "ping"})
        assert await ws.recv_type("pong") == {"type": "pong"}


async def test_a_binary_frame_holding_json_is_handled_like_text(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send_raw(b'{"type": "ping"}')
        assert await ws.recv_type("pong") == {"type": "pong"}
        await ws.send_raw(b'{"type": "gift", "id": "bin-1", "gift_id": "rose", "count": 2}')
        ok = await ws.recv_type("gift_ok")
        assert ok["id"] == "bin-1" and ok["coins"] == 328, ok
        await ws.send_raw(b"\xff\xfe not json")
        err = await ws.recv_type("error")
        assert err["code"] == "invalid", err
        await assert_open(ws)
