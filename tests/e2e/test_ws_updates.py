"""Unnumbered room updates: `viewers`, `top` and `goal`, each at most once per interval.

The interval is 200 ms here (1 s by default) so the tests wait less; the coalescing test
keeps the default and only counts frames, it never times them.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from tests.e2e.ws_helpers import Doc, stage, until, welcome, with_settings
from tests.support.client import Api, Socket, User


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"room_update_interval_ms": 200}


async def viewers_reach(sock: Socket, count: int) -> list[int]:
    """The `viewers` counts seen until one says `count`."""
    seen = await until(sock, lambda d: d["type"] == "viewers" and d["count"] == count)
    return [d["count"] for d in seen if d["type"] == "viewers"]


def top_of(*rows: tuple[User, int]) -> list[Doc]:
    return [{"user": {"id": u.id, "name": u.name}, "coins": coins} for u, coins in rows]


async def top_reaches(sock: Socket, top: list[Doc]) -> list[list[Doc]]:
    seen = await until(sock, lambda d: d["type"] == "top" and d["top"] == top)
    return [d["top"] for d in seen if d["type"] == "top"]


async def test_viewers_counts_distinct_signed_in_users_not_the_host_or_overlays(
    api: Api,
) -> None:
    s = await stage(api, ["alice", "bob"], package=None)
    alice, bob = s.viewers
    async with api.room(s.id, s.host.token) as host_ws:
        assert (await welcome(host_ws))["viewers"] == 0
        async with AsyncExitStack() as stack:
            overlay = await stack.enter_async_context(api.room(s.id, s.overlay_token, overlay=True))
            await welcome(overlay)
            a1 = await stack.enter_async_context(api.room(s.id, alice.token))
            await welcome(a1)
            assert await viewers_reach(host_ws, 1) == [1]
            a2 = await stack.enter_async_context(api.room(s.id, alice.token))
            assert (await welcome(a2))["viewers"] == 1  # alice twice is one viewer
            async with api.room(s.id, bob.token) as b:
                assert (await welcome(b))["viewers"] == 2
                counts = await viewers_reach(host_ws, 2)
                assert counts == [2], counts
                assert (await api.call("GET", f"/api/rooms/{s.id}")).json()["viewers"] == 2
                listed = (await api.call("GET", "/api/rooms")).json()["items"]
                assert [(r["id"], r["viewers"]) for r in listed] == [(s.id, 2)]
            assert await viewers_reach(host_ws, 1) == [1]
            await a1.ws.close()
            await a2.send({"type": "ping"})
            await a2.recv_type("pong")
            # alice still watches on her second socket: the count stays 1 until she leaves.
            await a2.ws.close()
            counts = await viewers_reach(host_ws, 0)
            assert counts == [0], counts
            seen_by_overlay = [d for d in overlay.backlog if d["type"] == "viewers"]
            assert all(d["count"] <= 2 for d in seen_by_overlay), seen_by_overlay


async def test_top_follows_the_leaderboard_and_matches_http(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
    ):
        for sock in (host_ws, a, b):
            await welcome(sock)
        await a.gift("a1", "rose", 5)
        await top_reaches(host_ws, top_of((alice, 5)))
        await b.gift("b1", "confetti")
        await top_reaches(host_ws, top_of((bob, 100), (alice, 5)))
        await a.gift("a2", "confetti", 2)
        final = top_of((alice, 205), (bob, 100))
        await top_reaches(host_ws, final)
        await top_reaches(b, final)
    r = await api.call("GET", f"/api/rooms/{s.id}/leaderboard")
    assert r.json() == {"top": final}, r.text


async def test_a_goal_is_announced_and_moves_with_the_gifts_after_it(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
    ):
        for sock in (host_ws, a, b):
            await welcome(sock)
        await a.gift("before", "rose", 10)  # before the goal: does not count
        r = await api.call(
            "PUT", f"/api/rooms/{s.id}/goal", s.host.token, json={"title": "new mic", "coins": 50}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"title": "new mic", "coins": 50, "progress": 0}
        for sock in (host_ws, a, b):
            seen = await until(sock, lambda d: d["type"] == "goal")
            assert seen[-1] == {"type": "goal", "title": "new mic", "coins": 50, "progress": 0}
        await a.gift("a1", "doughnut")
        await b.gift("b1", "doughnut")
        seen = await until(host_ws, lambda d: d["type"] == "goal" and d["progress"] == 60)
        progress = [d["progress"] for d in seen if d["type"] == "goal"]
        assert progress == sorted(progress) and progress[-1] == 60, progress
    r = await api.call("GET", f"/api/rooms/{s.id}")
    assert r.json()["goal"] == {"title": "new mic", "coins": 50, "progress": 60}, r.text


async def test_only_the_host_sets_a_goal(api: Api) -> None:
    s = await stage(api, ["alice"])
    r = await api.call(
        "PUT", f"/api/rooms/{s.id}/goal", s.viewers[0].token, json={"title": "x", "coins": 5}
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"


@with_settings(room_update_interval_ms=1000)
async def test_updates_in_a_burst_are_coalesced_into_at_most_two_frames_each(api: Api) -> None:
    names = [f"v{i}" for i in range(8)]
    s = await stage(api, ["alice", *names], package=None)
    alice, others = s.viewers[0], s.viewers[1:]
    await api.recharge(alice, "coins_330")
    async with AsyncExitStack() as stack:
        host_ws = await stack.enter_async_context(api.room(s.id, s.host.token))
        await welcome(host_ws)
        socks = await asyncio.gather(
            *(stack.enter_async_context(api.room(s.id, u.token)) for u in others)
        )
        await asyncio.gather(*(welcome(sock) for sock in socks))
        counts = await viewers_reach(host_ws, len(others))
        assert len(counts) <= 2, counts
        r = await api.call(
            "PUT", f"/api/rooms/{s.id}/goal", s.host.token, json={"title": "cake", "coins": 20}
        )
        assert r.status_code == 200, r.text
        a = await stack.enter_async_context(api.room(s.id, alice.token))
        await welcome(a)
        for i in range(10):
            await a.send({"type": "gift", "id": f"g{i}", "gift_id": "rose", "count": 1})
        final_top = top_of((alice, 10))
        waiting = {"goal", "top"}

        def both_final(d: Doc) -> bool:
            if d == {"type": "goal", "title": "cake", "coins": 20, "progress": 10}:
                waiting.discard("goal")
            if d == {"type": "top", "top": final_top}:
                waiting.discard("top")
            return not waiting

        seen = await until(host_ws, both_final, timeout=10)
    goals = [d for d in seen if d["type"] == "goal"]
    tops = [d for d in seen if d["type"] == "top"]
    # The goal frame once when set, then at most two as ten gifts move it.
    assert 1 <= len(goals) <= 3, goals
    assert 1 <= len(tops) <= 2, tops
