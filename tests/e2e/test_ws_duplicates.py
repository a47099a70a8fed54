"""Request ids: a resent accepted id answers its first `gift_ok` again; a refused one is judged
afresh. No second debit and no second room event, over any socket, across a restart."""

from __future__ import annotations

import asyncio

from tests.e2e.ws_helpers import (
    assert_error,
    assert_gift_ok,
    numbered,
    restarted,
    stage,
    welcome,
)
from tests.support.client import Api, Socket
from tests.support.live import LiveServer


def _as_duplicate(first: dict[str, object]) -> dict[str, object]:
    return {**first, "duplicate": True}


async def _next_gift_is(sock: Socket, request_id: str, seq: int, sender: Socket) -> None:
    """No second room event: the next numbered event a watcher sees is a fresh sentinel gift.

    The gift before it must not have left a streak open (its `streak_end` would come first).
    """
    ok = await sender.gift(request_id, "rose")
    assert ok["type"] == "gift_ok" and ok["seq"] == seq, ok
    (event,) = await numbered(sock, 1)
    assert event["seq"] == seq, event


async def test_the_same_id_on_the_same_socket_answers_the_first_gift_ok_again(api: Api) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, s.host.token) as host_ws, api.room(s.id, alice.token) as ws:
        await welcome(host_ws)
        await welcome(ws)
        first = await ws.gift("same", "confetti")
        assert_gift_ok(first, "same", coins_spent=100, balance=230)
        again = await ws.gift("same", "confetti")
        assert again == _as_duplicate(first)
        (event,) = await numbered(host_ws, 1)
        assert event["seq"] == first["seq"]
        await _next_gift_is(host_ws, "sentinel", first["seq"] + 1, ws)
    assert (await api.me(alice))["coins"] == 229
    assert (await api.me(s.host))["diamonds"] == 101


async def test_a_resent_id_with_another_gift_still_answers_the_first_outcome(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        first = await ws.gift("same", "rose", 3)
        again = await ws.gift("same", "confetti", 1)
        assert again == _as_duplicate(first)
    assert (await api.me(s.viewers[0]))["coins"] == 327


async def test_the_same_id_from_another_socket_of_the_same_user_is_a_duplicate(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, alice.token) as one,
        api.room(s.id, alice.token) as two,
    ):
        for sock in (host_ws, one, two):
            await welcome(sock)
        first = await one.gift("same", "confetti")
        assert_gift_ok(first, "same", coins_spent=100, balance=230)
        assert await two.gift("same", "confetti") == _as_duplicate(first)
        await numbered(host_ws, 1)
        await _next_gift_is(host_ws, "sentinel", first["seq"] + 1, two)
    assert (await api.me(alice))["coins"] == 229


async def test_the_same_id_sent_twice_at_once_on_two_sockets_debits_once(api: Api) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as one, api.room(s.id, alice.token) as two:
        await welcome(one)
        await welcome(two)
        answers = await asyncio.gather(one.gift("race", "confetti"), two.gift("race", "confetti"))
    assert sorted(bool(a.get("duplicate")) for a in answers) == [False, True], answers
    assert {a["seq"] for a in answers} == {1}
    assert (await api.me(alice))["coins"] == 230


async def test_a_duplicate_is_recognised_after_a_restart(api: Api, live: LiveServer) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        first = await ws.gift("kept", "confetti")
        assert first["type"] == "gift_ok"
    async with restarted(live) as (_, api2):
        async with api2.room(s.id, s.host.token) as host_ws, api2.room(s.id, alice.token) as ws:
            await welcome(host_ws)
            assert (await welcome(ws))["seq"] == first["seq"]
            assert await ws.gift("kept", "confetti") == _as_duplicate(first)
            await _next_gift_is(host_ws, "after-restart", first["seq"] + 1, ws)
        assert (await api2.me(alice))["coins"] == 229
        assert (await api2.me(s.host))["diamonds"] == 101


async def test_ids_are_scoped_to_their_sender(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with api.room(s.id, alice.token) as a, api.room(s.id, bob.token) as b:
        await welcome(a)
        await welcome(b)
        assert_gift_ok(await a.gift("mine", "rose"), "mine", coins_spent=1, balance=329)
        assert_gift_ok(await b.gift("mine", "rose"), "mine", coins_spent=1, balance=329)


async def test_a_refused_id_is_judged_afresh_after_a_recharge(api: Api) -> None:
    s = await stage(api, ["alice"], package=None)
    alice = s.viewers[0]
    async with api.room(s.id, s.host.token) as host_ws, api.room(s.id, alice.token) as ws:
        await welcome(host_ws)
        await welcome(ws)
        assert_error(await ws.gift("retry-me", "doughnut"), "insufficient_coins", "retry-me")
        await api.recharge(alice, "coins_65")
        ok = await ws.gift("retry-me", "doughnut")
        assert_gift_ok(ok, "retry-me", coins_spent=30, balance=35)
        (event,) = await numbered(host_ws, 1)
        assert event["seq"] == ok["seq"] == 1
        assert await ws.gift("retry-me", "doughnut") == _as_duplicate(ok)
    assert (await api.me(alice))["coins"] == 35


async def test_a_refused_unknown_gift_id_can_be_reused_for_a_real_gift(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        assert_error(await ws.gift("oops", "unicorn"), "unknown_gift", "oops")
        assert_gift_ok(await ws.gift("oops", "rose"), "oops", coins_spent=1, balance=329)
