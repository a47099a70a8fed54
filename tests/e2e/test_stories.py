"""Stories told the way the spec tells them, end to end over real sockets."""

from __future__ import annotations

from tests.e2e.ws_helpers import (
    Doc,
    assert_contiguous,
    assert_error,
    assert_gift_ok,
    numbered,
    stage,
    until,
    until_closed,
    until_seq,
    welcome,
    with_settings,
)
from tests.support.client import Api, Socket, User


def top_of(*rows: tuple[User, int]) -> list[Doc]:
    return [{"user": {"id": u.id, "name": u.name}, "coins": coins} for u, coins in rows]


async def top_becomes(sock: Socket, top: list[Doc]) -> None:
    await until(sock, lambda d: d["type"] == "top" and d["top"] == top)


async def spent_in_ledger(api: Api, user: User) -> int:
    r = await api.call("GET", "/api/wallet/transactions?limit=100", user.token)
    assert r.status_code == 200, r.text
    spent: int = -sum(t["coins"] for t in r.json()["items"] if t["kind"] == "gift_sent")
    return spent


@with_settings(streak_window_ms=400)
async def test_viewer_tops_up_330_sends_a_streak_of_12_roses_runs_out_mid_streak_and_the_hosts_diamonds_match(  # noqa: E501
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, s.host.token) as host_ws, api.room(s.id, alice.token) as ws:
        await welcome(host_ws)
        assert (await welcome(ws))["you"]["coins"] == 330
        assert_gift_ok(await ws.gift("hh", "hand_hearts", 3), "hh", 300, balance=30)
        for i in range(12):
            assert_gift_ok(await ws.gift(f"r{i}", "rose"), f"r{i}", 1, balance=29 - i)
        # 18 coins left: a doughnut is refused, and a refusal does not break the streak.
        assert_error(await ws.gift("d", "doughnut"), "insufficient_coins", "d")
        for i, count in enumerate([5, 5, 5, 3]):
            assert (await ws.gift(f"more{i}", "rose", count))["type"] == "gift_ok"
        assert_error(await ws.gift("last", "rose"), "insufficient_coins", "last")
        events = await until_seq(host_ws, 18)
    assert_contiguous(events, after=0)
    streak = [e for e in events if e["type"] == "gift" and e["gift"]["id"] == "rose"]
    assert len(streak) == 16
    assert {e["streak"]["id"] for e in streak} == {2}
    assert streak[-1]["streak"]["total"] == 30
    assert events[-1]["type"] == "streak_end"
    assert events[-1]["streak"] == {"id": 2, "total": 30, "ended": True}
    assert sum(e["coins"] for e in events if e["type"] == "gift") == 330
    assert (await api.me(alice))["coins"] == 0
    assert (await api.me(s.host))["diamonds"] == 330 == await spent_in_ledger(api, alice)


async def test_viewer_tops_up_65_sends_roses_and_a_doughnut_until_the_coins_run_out(
    api: Api,
) -> None:
    s = await stage(api, ["alice"], package="coins_65")
    alice = s.viewers[0]
    async with api.room(s.id, s.host.token) as host_ws, api.room(s.id, alice.token) as ws:
        await welcome(host_ws)
        await welcome(ws)
        for i in range(12):
            assert (await ws.gift(f"r{i}", "rose"))["type"] == "gift_ok"
        assert_gift_ok(await ws.gift("d", "doughnut"), "d", 30, balance=23)
        for i, count in enumerate([10, 10, 3]):
            assert (await ws.gift(f"again{i}", "rose", count))["type"] == "gift_ok"
        refused = await ws.gift("broke", "rose")
        assert_error(refused, "insufficient_coins", "broke")
        events = await until_seq(host_ws, 18)
    kinds = [(e["type"], e["gift"]["id"] if "gift" in e else "") for e in events]
    assert kinds[11:14] == [("gift", "rose"), ("streak_end", "rose"), ("gift", "doughnut")]
    assert events[12]["streak"]["total"] == 12
    assert kinds[14:17] == [("streak_end", "doughnut"), ("gift", "rose"), ("gift", "rose")]
    spent = sum(e["coins"] for e in events if e["type"] == "gift")
    assert spent == 65
    assert (await api.me(alice))["coins"] == 0
    assert (await api.me(s.host))["diamonds"] == spent == await spent_in_ledger(api, alice)


@with_settings(room_update_interval_ms=200)
async def test_two_viewers_race_for_the_top_spot(api: Api) -> None:
    s = await stage(api, ["alice", "bob"], package="coins_1321")
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
    ):
        for sock in (host_ws, a, b):
            await welcome(sock)
        await a.gift("a1", "confetti")
        await top_becomes(host_ws, top_of((alice, 100)))
        await b.gift("b1", "sunglasses")
        await top_becomes(host_ws, top_of((bob, 199), (alice, 100)))
        await a.gift("a2", "confetti", 2)
        await top_becomes(host_ws, top_of((alice, 300), (bob, 199)))
        await b.gift("b2", "corgi")
        final = top_of((bob, 498), (alice, 300))
        for sock in (host_ws, a, b):
            await top_becomes(sock, final)
        async with api.room(s.id, s.overlay_token, overlay=True) as overlay:
            assert (await welcome(overlay))["top"] == final
    r = await api.call("GET", f"/api/rooms/{s.id}/leaderboard")
    assert r.json()["top"] == final
    assert (await api.me(s.host))["diamonds"] == 798


@with_settings(room_update_interval_ms=200)
async def test_a_host_sets_a_goal_and_the_room_fills_it(api: Api) -> None:
    s = await stage(api, ["alice", "bob", "carol"])
    alice, bob, carol = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
        api.room(s.id, carol.token) as c,
        api.room(s.id, s.overlay_token, overlay=True) as overlay,
    ):
        for sock in (host_ws, a, b, c, overlay):
            await welcome(sock)
        r = await api.call(
            "PUT", f"/api/rooms/{s.id}/goal", s.host.token, json={"title": "new mic", "coins": 500}
        )
        assert r.status_code == 200, r.text
        await until(overlay, lambda d: d["type"] == "goal" and d["progress"] == 0)
        await a.gift("a", "confetti", 2)
        await b.gift("b", "corgi")
        await until(overlay, lambda d: d["type"] == "goal" and d["progress"] == 499)
        await c.gift("c", "rose")
        for sock in (host_ws, a, b, c, overlay):
            seen = await until(sock, lambda d: d["type"] == "goal" and d["progress"] >= 500)
            assert seen[-1] == {"type": "goal", "title": "new mic", "coins": 500, "progress": 500}
    room = (await api.call("GET", f"/api/rooms/{s.id}")).json()
    assert room["goal"] == {"title": "new mic", "coins": 500, "progress": 500}
    assert (await api.me(s.host))["diamonds"] == 500


async def test_a_viewer_drops_mid_gift_catches_up_with_since_and_resends_without_paying_twice(
    api: Api,
) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with api.room(s.id, bob.token) as b:
        await welcome(b)
        async with api.room(s.id, alice.token) as a:
            await welcome(a)
            await b.gift("b1", "confetti")
            (seen,) = await numbered(a, 1)
            # Alice sends a doughnut and loses the connection before any answer arrives.
            await a.send({"type": "gift", "id": "lost", "gift_id": "doughnut", "count": 1})
        await b.gift("b2", "confetti")
        async with api.room(s.id, alice.token, since=seen["seq"]) as a:
            hello = await welcome(a)
            missed = [await a.recv() for _ in range(hello["seq"] - seen["seq"])]
            assert_contiguous(missed, after=seen["seq"])
            ok = await a.gift("lost", "doughnut")
            assert ok["type"] == "gift_ok", ok
            mine = [e for e in missed if e["type"] == "gift" and e["sender"]["id"] == alice.id]
            if mine:  # the doughnut made it before the drop: the resend is its duplicate
                assert ok.get("duplicate") is True and ok["seq"] == mine[0]["seq"], ok
    assert (await api.me(alice))["coins"] == 300
    assert (await api.me(s.host))["diamonds"] == 230


async def test_an_overlay_follows_a_whole_live_from_the_first_gift_to_room_ended(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, s.overlay_token, overlay=True) as overlay:
        assert (await welcome(overlay))["seq"] == 0
        async with api.room(s.id, alice.token) as a:
            await welcome(a)
            await a.gift("1", "rose", 3)
            await a.gift("2", "finger_heart")
            await a.gift("3", "confetti")
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
        assert r.status_code == 200, r.text
        seen, code = await until_closed(overlay)
    events = [d for d in seen if d["type"] in ("gift", "streak_end", "room_ended")]
    assert_contiguous(events, after=0)
    assert [e.get("shoutout") for e in events if e["type"] == "gift"] == [
        "alice sent Rose x3",
        "alice sent Finger Heart",
        "alice sent Confetti",
    ]
    assert [e["type"] for e in events][-1] == "room_ended"
    assert code == 1000
