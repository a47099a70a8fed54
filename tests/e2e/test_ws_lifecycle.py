"""The end of a socket's life: the host ends the live (`room_ended`, 1000), or the server
shuts down (every gift answered, 1001, nothing acknowledged lost)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from tests.e2e.ws_helpers import (
    Doc,
    Stage,
    assert_open,
    numbered,
    overlay_url,
    refusal_code,
    restarted,
    room_url,
    stage,
    until,
    until_closed,
    welcome,
)
from tests.support.client import Api, Socket
from tests.support.live import LiveServer


async def test_ending_the_live_sends_room_ended_to_every_socket_then_closes_1000(
    api: Api,
) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as a,
        api.room(s.id, bob.token) as b,
        api.room(s.id, s.overlay_token, overlay=True) as overlay,
    ):
        sockets = [host_ws, a, b, overlay]
        for sock in sockets:
            await welcome(sock)
        await a.gift("a1", "confetti")
        await b.gift("b1", "confetti")
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ended"}
        for sock in sockets:
            seen, code = await until_closed(sock)
            ended = [d for d in seen if d["type"] == "room_ended"]
            assert len(ended) == 1, seen
            assert ended[0]["seq"] == 3
            assert seen[-1] == ended[0], seen  # nothing after room_ended
            assert code == 1000
    for token in (alice.token, s.host.token):
        assert await refusal_code(room_url(api, s.id, token)) == 4404
    assert await refusal_code(overlay_url(api, s.id, s.overlay_token)) == 4404
    room = (await api.call("GET", f"/api/rooms/{s.id}")).json()
    assert room["status"] == "ended"
    assert room["seq"] == 3


async def test_only_the_host_can_end_the_live(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as a:
        await welcome(a)
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.viewers[0].token)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
        await assert_open(a)
        assert (await a.gift("a1", "confetti"))["type"] == "gift_ok"
        (event,) = await numbered(a, 1)
        assert event["type"] == "gift"


async def _fire(sock: Socket, prefix: str, count: int) -> list[str]:
    """Send `count` gifts without waiting, then a ping; the pong proves the server read them."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    for request_id in ids:
        await sock.send({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1})
    await sock.send({"type": "ping"})
    return ids


@dataclass
class Shutdown:
    stage: Stage
    sent: dict[str, list[str]]  # request ids by sender name
    answers: dict[str, list[Doc]]  # gift_ok / error answers by sender name
    close_codes: list[int | None]  # host first, then each viewer


async def _shut_down_with_gifts_in_flight(api: Api, live: LiveServer) -> Shutdown:
    """Three viewers send 15 roses each; once the server has read them all, it drains."""
    names = ["alice", "bob", "carol"]
    s = await stage(api, names)
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, s.viewers[0].token) as a,
        api.room(s.id, s.viewers[1].token) as b,
        api.room(s.id, s.viewers[2].token) as c,
    ):
        viewers = [a, b, c]
        for sock in [host_ws, *viewers]:
            await welcome(sock)
        sent = [await _fire(sock, name, 15) for sock, name in zip(viewers, names, strict=True)]
        before = [await until(sock, lambda d: d["type"] == "pong") for sock in viewers]
        collectors = [asyncio.create_task(until_closed(sock)) for sock in [host_ws, *viewers]]
        await live.drain()
        results = await asyncio.gather(*collectors)
    answers = {
        name: [d for d in early + seen if d["type"] in ("gift_ok", "error")]
        for name, early, (seen, _) in zip(names, before, results[1:], strict=True)
    }
    return Shutdown(s, dict(zip(names, sent, strict=True)), answers, [code for _, code in results])


async def test_a_shutdown_answers_every_gift_in_flight_and_closes_every_socket_1001(
    api: Api, live: LiveServer
) -> None:
    done = await _shut_down_with_gifts_in_flight(api, live)
    assert done.close_codes == [1001] * 4
    for name, ids in done.sent.items():
        answers = done.answers[name]
        for doc in answers:
            assert doc["type"] == "gift_ok" or doc["code"] == "unavailable", doc
        got = Counter(str(d["id"]) for d in answers)
        assert got == Counter(ids), f"{name}: unanswered {sorted(set(ids) - set(got))}"


async def test_after_a_shutdown_every_acknowledged_gift_is_kept_and_resends_settle_the_rest(
    api: Api, live: LiveServer
) -> None:
    done = await _shut_down_with_gifts_in_flight(api, live)
    async with restarted(live) as (_, api2):  # the audit must balance after the restart
        for user in done.stage.viewers:
            oks = [d for d in done.answers[user.name] if d["type"] == "gift_ok"]
            r = await api2.call("GET", "/api/wallet/transactions?limit=100", user.token)
            assert r.status_code == 200, r.text
            kept = {t["coins_after"] for t in r.json()["items"] if t["kind"] == "gift_sent"}
            assert {d["coins"] for d in oks} <= kept, (oks, kept)
            # The client resends whatever was not acknowledged, with the same ids: each is
            # either a duplicate of a gift committed before the shutdown, or taken now.
            acked = {d["id"] for d in oks}
            async with api2.room(done.stage.id, user.token) as ws:
                await welcome(ws)
                for request_id in done.sent[user.name]:
                    if request_id not in acked:
                        answer = await ws.gift(request_id, "rose")
                        assert answer["type"] == "gift_ok", answer
            assert (await api2.me(user))["coins"] == 330 - 15
            r = await api2.call("GET", "/api/wallet/transactions?limit=100", user.token)
            assert [t["kind"] for t in r.json()["items"]].count("gift_sent") == 15
        assert (await api2.me(done.stage.host))["diamonds"] == 45
