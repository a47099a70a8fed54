"""Overload: when the gift queue is full, the server refuses at once, from memory.

`unavailable` is not an outcome (the client resends the same id), so a full queue is answered
without the ledger lookup a rules refusal needs: shedding load must cost less than accepting
it. It once cost a database read each, so 10,000 gifts/s offered got 1,300/s accepted against
4,900/s when not overloaded (`scripts/bench_gifts.py --pace 10`).

The queue is filled for real: another process holds SQLite's write lock, so the writer is
stuck on its first gift and the next ones wait in the queue.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from scripts.faultkit import WriteLockHolder
from scripts.wsclient import client_frame
from server.storage.sqlite import path_from_url
from tests.support.client import Api
from tests.support.live import LiveServer

OP_TEXT = 0x1


def gift_doc(request_id: str) -> bytes:
    return orjson.dumps({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1})


@pytest.mark.parametrize(
    "settings_overrides", [{"gift_queue_max": 2, "db_busy_timeout_ms": 10_000}], indirect=True
)
async def test_a_full_gift_queue_is_refused_at_once_and_the_queued_gifts_commit(
    live: LiveServer, api: Api
) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("warm"))["type"] == "gift_ok"
        holder = await WriteLockHolder.hold(path_from_url(live.settings.db_url))
        try:
            await ws.send_raw(gift_doc("in-writer").decode())
            await asyncio.sleep(0.3)  # the writer takes it and waits for the lock
            await ws.send_raw(gift_doc("queued-1").decode())
            await ws.send_raw(gift_doc("queued-2").decode())
            await asyncio.sleep(0.2)
            # One TCP write: the refused gift and a ping reach the server together.
            transport = ws.ws.transport
            transport.write(
                client_frame(OP_TEXT, gift_doc("shed")) + client_frame(OP_TEXT, b'{"type":"ping"}')
            )
            first = await ws.recv_type("error", "pong", "gift_ok")
            second = await ws.recv_type("error", "pong", "gift_ok")
            # The refusal is written before the server reads on: ahead of the pong.
            assert first.get("id") == "shed" and first["code"] == "unavailable", (first, second)
            assert second["type"] == "pong", second
        finally:
            await holder.release()
        answers: dict[str, str] = {}
        while len(answers) < 3:
            doc = await ws.recv_type("gift_ok", "error", timeout=15)
            answers[doc["id"]] = doc["type"]
        assert answers == {"in-writer": "gift_ok", "queued-1": "gift_ok", "queued-2": "gift_ok"}
        again = await ws.gift("shed")
        assert again["type"] == "gift_ok" and not again.get("duplicate"), again
    assert (await api.me(viewer))["coins"] == 65 - 5
    assert (await api.audit())["balanced"]
