"""Database faults, provoked for real: another process holding SQLite's write lock, and a
client that vanishes in the middle of a call that moves money.

In each, the caller gets `unavailable` (or nothing, having gone), nothing is half-applied,
no transaction is left open, and the service resumes by itself once the fault clears.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from scripts.faultkit import WriteLockHolder, write_lock_is_free
from server.storage.sqlite import path_from_url
from tests.support.client import Api
from tests.support.live import LiveServer

BUSY_MS = 300  # how long the server waits for the lock before answering `unavailable`


def db_path(live: LiveServer) -> Path:
    return path_from_url(live.settings.db_url)


async def recharge(
    api: Api, token: str, key: str, package: str = "coins_65"
) -> tuple[int, dict[str, Any]]:
    r = await api.call(
        "POST",
        "/api/wallet/recharge",
        token,
        json={"package_id": package},
        headers={"Idempotency-Key": key},
    )
    return r.status_code, r.json()


@pytest.mark.parametrize("settings_overrides", [{"db_busy_timeout_ms": BUSY_MS}], indirect=True)
async def test_a_write_lock_held_by_another_process_answers_unavailable_then_resumes(
    live: LiveServer, api: Api
) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("before"))["type"] == "gift_ok"
        holder = await WriteLockHolder.hold(db_path(live))
        try:
            during = await ws.gift("during", timeout=10)
            assert during["type"] == "error" and during["code"] == "unavailable", during
            status, body = await recharge(api, viewer.token, "topup-1")
            assert (status, body["error"]["code"]) == (503, "unavailable"), body
            signup = await api.call(
                "POST", "/api/users", json={"name": "late", "birthdate": "1990-01-01"}
            )
            assert signup.status_code == 503, signup.text
            # Reads go on (WAL): the balance shows nothing half-applied.
            assert (await api.me(viewer))["coins"] == 64
        finally:
            await holder.release()
        # The same request ids, resent once the lock is free: one outcome each.
        again = await ws.gift("during")
        assert again["type"] == "gift_ok" and not again.get("duplicate"), again
        status, body = await recharge(api, viewer.token, "topup-1")
        assert status == 200, body
        status, repeat = await recharge(api, viewer.token, "topup-1")
        assert status == 200 and repeat == body
    assert (await api.me(viewer))["coins"] == 64 - 1 + 65
    assert await write_lock_is_free(db_path(live)) == "free"


async def vanish(live: LiveServer, head: str, body: bytes) -> None:
    """Send `head` and `body` over a raw TCP connection, then reset it (SO_LINGER 0): the
    client is gone without a word, as when a phone loses its signal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(0.05)  # let the server start on it
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    del reader


def recharge_head(token: str, key: str, length: int) -> str:
    return (
        "POST /api/wallet/recharge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )


async def test_a_client_vanishing_mid_call_leaves_no_transaction_open(
    live: LiveServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = await api.signup()
    body = b'{"package_id": "coins_65"}'
    # Gone halfway through the body: nothing happens.
    await vanish(live, recharge_head(viewer.token, "half", len(body)), body[:10])
    # Gone right after the whole request, before the answer: it happens once.
    await vanish(live, recharge_head(viewer.token, "whole", len(body)), body)
    await asyncio.sleep(0.3)
    assert await write_lock_is_free(db_path(live)) == "free"
    # The retries get one outcome each: the half-sent call runs now, the whole one is the same.
    status, half = await recharge(api, viewer.token, "half")
    assert status == 200, half
    status, whole = await recharge(api, viewer.token, "whole")
    assert status == 200, whole
    assert (await api.me(viewer))["coins"] == 130
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]


async def test_a_viewer_vanishing_right_after_a_gift_gets_one_outcome_on_resend(
    live: LiveServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        await ws.send({"type": "gift", "id": "lost-signal", "gift_id": "rose", "count": 5})
        transport = ws.ws.transport
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        transport.abort()  # a reset, no close frame
    await asyncio.sleep(0.3)
    assert await write_lock_is_free(db_path(live)) == "free"
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        again = await ws.gift("lost-signal", count=5)
        assert again["type"] == "gift_ok", again
        assert again["coins"] == 60
    assert (await api.me(viewer))["coins"] == 60
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]


PRUNE_SOON = {"db_busy_timeout_ms": BUSY_MS, "room_events_prune_every": 1}


@pytest.mark.parametrize(
    "settings_overrides", [{**PRUNE_SOON, "room_update_interval_ms": 500}], indirect=True
)
async def test_history_pruning_that_meets_a_held_lock_is_put_off_not_a_dead_task(
    live: LiveServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("a"))["type"] == "gift_ok"  # prunes at once (the first update)
        assert (await ws.gift("b"))["type"] == "gift_ok"  # prunes with the next update, 500 ms on
        holder = await WriteLockHolder.hold(db_path(live))
        try:
            await asyncio.sleep(0.5 + 2 * BUSY_MS / 1000)  # the prune meets the lock and gives up
        finally:
            await holder.release()
        assert (await ws.gift("c"))["type"] == "gift_ok"
    dead = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not dead, [r.getMessage() for r in dead]
    assert any("history put off" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("settings_overrides", [{"db_busy_timeout_ms": BUSY_MS}], indirect=True)
async def test_callers_queued_behind_a_held_lock_each_wait_the_timeout_once_not_in_turn(
    live: LiveServer, api: Api
) -> None:
    callers = [await api.signup() for _ in range(10)]
    holder = await WriteLockHolder.hold(db_path(live))
    # The lock is held for far longer than one timeout but far shorter than ten in a row:
    # every caller must have had its `unavailable` before it is released.

    async def release_later() -> None:
        await asyncio.sleep(7 * BUSY_MS / 1000)
        await holder.release()

    release = asyncio.create_task(release_later())
    try:
        answers = await asyncio.gather(
            *(recharge(api, c.token, f"queued-{i}") for i, c in enumerate(callers))
        )
    finally:
        await release
    assert [(status, body.get("error", {}).get("code")) for status, body in answers] == [
        (503, "unavailable")
    ] * len(callers), answers
    for caller in callers:
        assert (await api.me(caller))["coins"] == 0
