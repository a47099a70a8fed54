"""`since` replay: a client that reconnects with the last seq it saw gets exactly the events it
missed, in order, before any live event; past the room's seq it is told to resync."""

from __future__ import annotations

import asyncio

from tests.e2e.ws_helpers import (
    NUMBERED,
    Doc,
    assert_contiguous,
    numbered,
    restarted,
    stage,
    until_seq,
    welcome,
    with_settings,
)
from tests.support.client import Api, Socket
from tests.support.live import LiveServer


async def replayed(sock: Socket, since: int) -> tuple[Doc, list[Doc]]:
    """The welcome and the messages that follow it up to its seq: all must be the replay."""
    hello = await welcome(sock)
    events = [await sock.recv() for _ in range(hello["seq"] - since)]
    assert all(e["type"] in NUMBERED for e in events), events
    assert_contiguous(events, after=since)
    return hello, events


async def test_a_viewer_that_reconnects_with_since_gets_exactly_what_it_missed(api: Api) -> None:
    s = await stage(api, ["alice", "bob"], package="coins_1321")
    alice, bob = s.viewers
    async with api.room(s.id, s.host.token) as host_ws, api.room(s.id, bob.token) as b:
        await welcome(host_ws)
        await welcome(b)
        async with api.room(s.id, alice.token) as a:
            await welcome(a)
            await b.gift("b1", "confetti")
            await b.gift("b2", "confetti")
            last = (await numbered(a, 2))[-1]["seq"]
        assert last == 2
        await b.gift("b3", "rose")
        await b.gift("b4", "rose", 3)
        await b.gift("b5", "confetti")
        missed = await until_seq(host_ws, 6)  # rose, rose, streak_end, confetti
        r = await api.call(
            "PUT", f"/api/rooms/{s.id}/goal", s.host.token, json={"title": "t", "coins": 9}
        )
        assert r.status_code == 200, r.text
        async with api.room(s.id, alice.token, since=last) as a:
            hello, events = await replayed(a, since=last)
            assert hello["seq"] == 6
            assert events == [e for e in missed if e["seq"] > last]
            await b.gift("b6", "confetti")
            (live_event,) = await numbered(a, 1)
            assert live_event["seq"] == 7


@with_settings(replay_events_per_frame_max=3)
async def test_since_0_replays_the_whole_history_across_several_frames(api: Api) -> None:
    s = await stage(api, ["alice"], package="coins_1321")
    async with api.room(s.id, s.viewers[0].token) as a:
        await welcome(a)
        for i in range(5):
            await a.gift(f"g{i}", "confetti")
        history = await numbered(a, 5)
    async with api.room(s.id, s.host.token, since=0) as host_ws:
        hello, events = await replayed(host_ws, since=0)
        assert hello["seq"] == 5
        assert events == history
        assert host_ws.frames >= 3  # welcome, then the replay in frames of at most 3 events


async def test_since_equal_to_the_seq_replays_nothing(api: Api) -> None:
    s = await stage(api, ["alice"], package="coins_1321")
    async with api.room(s.id, s.viewers[0].token) as a:
        await welcome(a)
        await a.gift("g1", "confetti")
        await numbered(a, 1)
        async with api.room(s.id, s.host.token, since=1) as host_ws:
            assert (await welcome(host_ws))["seq"] == 1
            await a.gift("g2", "confetti")
            (event,) = await numbered(host_ws, 1)
            assert event["seq"] == 2


async def test_since_past_the_rooms_seq_is_answered_resync(api: Api) -> None:
    s = await stage(api, ["alice"], package="coins_1321")
    async with api.room(s.id, s.viewers[0].token) as a:
        await welcome(a)
        await a.gift("g1", "confetti")
        async with api.room(s.id, s.host.token, since=5) as host_ws:
            assert (await welcome(host_ws))["seq"] == 1
            assert await host_ws.recv() == {"type": "resync"}
        async with api.room(s.id, s.overlay_token, since=2, overlay=True) as overlay:
            await welcome(overlay)
            assert await overlay.recv() == {"type": "resync"}


async def test_an_overlay_replays_with_since_too(api: Api) -> None:
    s = await stage(api, ["alice"], package="coins_1321")
    async with api.room(s.id, s.viewers[0].token) as a:
        await welcome(a)
        await a.gift("g1", "confetti")
        await a.gift("g2", "rose")
        await a.gift("g3", "confetti")
        history = await numbered(a, 4)
        async with api.room(s.id, s.overlay_token, since=1, overlay=True) as overlay:
            hello, events = await replayed(overlay, since=1)
    assert "you" not in hello
    assert events == history[1:]


async def test_replay_and_numbering_survive_a_restart(api: Api, live: LiveServer) -> None:
    s = await stage(api, ["alice"], package="coins_1321")
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as a:
        await welcome(a)
        await a.gift("g1", "rose", 2)
        await a.gift("g2", "confetti")  # ends the rose streak: streak_end, then the confetti
        await a.gift("g3", "doughnut")  # a streak still open at the restart
        history = await numbered(a, 4)
    async with restarted(live) as (_, api2), api2.room(s.id, s.host.token, since=0) as host_ws:
        _, host_replay = await replayed(host_ws, since=0)
        assert host_replay[:4] == history
        async with api2.room(s.id, alice.token, since=2) as a:
            _, events = await replayed(a, since=2)
            assert events[:2] == history[2:]
            # The open doughnut streak ends (by its window or by this confetti), then
            # the confetti: the numbering goes on where it stopped.
            ok = await a.gift("g4", "confetti")
            assert ok["seq"] == 6, ok
            after = await until_seq(host_ws, 6)
        full = host_replay + after
        assert_contiguous(full, after=0)
        assert [e["type"] for e in full[4:]] == ["streak_end", "gift"]
        assert full[4]["streak"] == {"id": 4, "total": 1, "ended": True}
        assert full[5]["gift"]["id"] == "confetti"
        assert full[5]["first"] is False  # alice gave before the restart, same live


@with_settings(gift_rate_per_s=1000, gift_burst=1000)
async def test_reconnecting_while_gifts_stream_in_leaves_no_gap_and_no_repeat(api: Api) -> None:
    s = await stage(api, ["alice", "bob"], package="coins_1321")
    alice, bob = s.viewers
    async with api.room(s.id, bob.token) as b:
        await welcome(b)
        last_ok: list[int] = []

        async def stream() -> None:
            for i in range(60):
                ok = await b.gift(f"b{i}", "confetti" if i % 7 == 0 else "rose")
                assert ok["type"] == "gift_ok", ok
                last_ok.append(ok["seq"])

        async with api.room(s.id, alice.token) as a:
            await welcome(a)
            sender = asyncio.create_task(stream())
            seen = await until_seq(a, 10)
        since = seen[-1]["seq"]
        async with api.room(s.id, alice.token, since=since) as a:
            await sender
            final = last_ok[-1]
            events = await until_seq(a, final)
        assert_contiguous(events, after=since)
