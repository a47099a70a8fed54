"""Regression tests for bugs found in review, each named after what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from tests.support.client import Api
from tests.support.live import LiveServer


async def test_resending_an_accepted_gift_does_not_use_up_the_rate_limit(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        first = await ws.gift("once")
        assert first["type"] == "gift_ok", first
        # Far more resends than the burst of 20: each is the first answer again...
        for _ in range(40):
            again = await ws.gift("once")
            assert again["type"] == "gift_ok" and again.get("duplicate") is True, again
            assert again["seq"] == first["seq"] and again["coins"] == first["coins"]
        # ...and none of them cost a token: a new gift still goes through.
        fresh = await ws.gift("twice")
        assert fresh["type"] == "gift_ok", fresh
    me = await api.me(viewer)
    assert me["coins"] == 63


async def test_the_welcome_shows_a_goal_set_moments_after_an_earlier_update(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    path = f"/api/rooms/{room['id']}/goal"
    first = await api.call("PUT", path, host.token, json={"title": "first", "coins": 10})
    assert first.status_code == 200, first.text
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("g1"))["type"] == "gift_ok"
    second = await api.call("PUT", path, host.token, json={"title": "second", "coins": 99})
    assert second.status_code == 200, second.text
    async with api.room(room["id"], viewer.token) as ws:
        welcome = await ws.recv_type("welcome")
        assert welcome["goal"] == {"title": "second", "coins": 99, "progress": 0}
    described = (await api.call("GET", f"/api/rooms/{room['id']}")).json()
    assert described["goal"] == {"title": "second", "coins": 99, "progress": 0}


async def test_an_invalid_message_of_unknown_type_keeps_its_readable_id(api: Api) -> None:
    host = await api.signup()
    room = await api.go_live(host)
    async with api.room(room["id"], host.token) as ws:
        await ws.recv_type("welcome")
        await ws.send({"type": "hello", "id": "abc"})
        error = await ws.recv_type("error")
        assert error["code"] == "invalid" and error["id"] == "abc", error


@pytest.mark.parametrize("settings_overrides", [{"viewers_per_room_max": 2}], indirect=True)
async def test_the_room_cap_counts_viewers_not_the_host_or_overlays(api: Api) -> None:
    host = await api.signup()
    alice, bob, carol = [await api.signup() for _ in range(3)]
    room = await api.go_live(host)
    async with contextlib.AsyncExitStack() as stack:
        # One at a time: each socket is in the room once its welcome arrives.
        for token, overlay in [
            (host.token, False),
            (room["overlay_token"], True),
            (alice.token, False),
            (bob.token, False),
        ]:
            ws = await stack.enter_async_context(api.room(room["id"], token, overlay=overlay))
            assert (await ws.recv())["type"] == "welcome"
        async with api.room(room["id"], carol.token) as c:
            code, _ = await c.closed()
            assert code == 4429


@pytest.mark.parametrize("settings_overrides", [{"connections_per_user_max": 2}], indirect=True)
async def test_sockets_connecting_at_once_cannot_all_slip_under_the_cap(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    room = await api.go_live(host)

    async def connect_and_wait() -> str:
        async with api.room(room["id"], viewer.token) as ws:
            try:
                doc = await ws.recv()
            except Exception:
                code, _ = await ws.closed()
                return f"closed {code}"
            # Hold the place until every attempt has been judged.
            await asyncio.sleep(0.5)
            return str(doc["type"])

    outcomes = await asyncio.gather(*(connect_and_wait() for _ in range(8)))
    assert sorted(outcomes) == ["closed 4429"] * 6 + ["welcome"] * 2, outcomes


async def test_a_host_can_read_the_current_overlay_token_without_cutting_off_obs(
    api: Api,
) -> None:
    host, other = await api.signup(), await api.signup()
    room = await api.go_live(host)
    path = f"/api/rooms/{room['id']}/overlay_token"
    async with api.room(room["id"], room["overlay_token"], overlay=True) as obs:
        await obs.recv_type("welcome")
        read = await api.call("GET", path, host.token)
        assert read.status_code == 200, read.text
        assert read.json()["overlay_token"] == room["overlay_token"]
        # Reading it did not rotate it: the running overlay is still connected.
        await obs.send({"type": "ping"})
        assert (await obs.recv_type("pong"))["type"] == "pong"
    denied = await api.call("GET", path, other.token)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"


async def test_a_room_reports_what_was_gifted_this_live(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_330")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("a", "rose", 5))["type"] == "gift_ok"
        assert (await ws.gift("b", "doughnut", 1))["type"] == "gift_ok"
    doc = (await api.call("GET", f"/api/rooms/{room['id']}")).json()
    assert doc["coins"] == 35 and doc["diamonds"] == 35


async def test_page_scripts_are_revalidated_so_an_upgrade_is_seen(api: Api) -> None:
    r = await api.call("GET", "/static/app.js")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"


async def test_an_ended_live_leaves_nothing_behind_in_the_servers_memory(
    api: Api, live: LiveServer
) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    for n in range(3):
        room = await api.go_live(host, f"live {n}")
        async with api.room(room["id"], viewer.token) as ws:
            await ws.recv_type("welcome")
            assert (await ws.gift(f"g{n}"))["type"] == "gift_ok"
            path = f"/api/rooms/{room['id']}/goal"
            assert (
                await api.call("PUT", path, host.token, json={"title": "t", "coins": 5})
            ).is_success
            ended = await api.call("POST", f"/api/rooms/{room['id']}/end", host.token)
            assert ended.status_code == 200
            await ws.closed()
        await api.call("GET", f"/api/rooms/{room['id']}")  # reading an ended room keeps nothing
    assert live.runtime.gifts.books.rooms_in_memory() == 0


async def test_earnings_up_to_the_first_day_of_the_calendar_is_not_a_500(api: Api) -> None:
    # The default `from` (30 days before `to`) fell before 0001-01-01: OverflowError, 500.
    user = await api.signup()
    r = await api.call("GET", "/api/earnings?to=0001-01-01", user.token)
    assert r.status_code == 200, r.text
    assert r.json()["from"] == "0001-01-01" and r.json()["diamonds"] == 0


async def test_a_statement_month_in_non_ascii_digits_is_invalid_not_a_500(api: Api) -> None:
    # `\d` matched Arabic-Indic digits; `int()` read them, and the month went into the
    # Content-Disposition header, which must be latin-1: UnicodeEncodeError, 500.
    user = await api.signup()
    for month in ("٢٠٢٦-١١", "２０２６-１１"):
        r = await api.call("GET", f"/api/wallet/statement.csv?month={month}", user.token)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid"
    r = await api.call("GET", "/api/earnings?from=٢٠٢٦-01-01", user.token)
    assert r.status_code == 400 and "YYYY-MM-DD" in r.json()["error"]["message"], r.text


async def test_a_client_that_hangs_up_mid_body_leaves_no_error_in_the_log(
    api: Api, live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Reading the body raised starlette's ClientDisconnect out of the handler: uvicorn logged
    # "Exception in ASGI application" with a traceback for every careless client.
    _, writer = await asyncio.open_connection("127.0.0.1", live.port)
    writer.write(b'POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"na')
    await writer.drain()
    await asyncio.sleep(0.1)  # the handler is waiting for the rest of the body
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    await asyncio.sleep(0.2)
    assert (await api.call("GET", "/healthz")).status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_a_drain_with_an_idle_tcp_connection_open_still_waits_for_close_handshakes(
    live: LiveServer,
) -> None:
    # Found by scripts/crash_test.py --fault term: a connection with no request yet has no
    # scope (uvicorn sets it to None), and the drain died on it with an AttributeError.
    host = Api(live.url)
    try:
        user = await host.signup()
        room = await host.go_live(user)
        _, idle = await asyncio.open_connection("127.0.0.1", live.port)
        async with host.room(room["id"], user.token) as ws:
            await ws.recv_type("welcome")
            await live.drain()  # raises what the drain task raised
            assert await ws.closed() == (1001, "the server is shutting down")
        idle.close()
    finally:
        await host.close()
