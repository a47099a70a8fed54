"""A viewer whose transport is paused for writing: frames wait in its outbox, in order.

The server writes each frame straight into the socket's transport; only while the transport is
paused (its buffer over the high-water mark because the client reads nothing) do frames wait in
the socket's outbox, and they go out in order when it resumes. Provoked over real sockets: a
client with a tiny receive buffer stops reading until the server shows a non-empty outbox.
The server's end of that one socket gets a small kernel send buffer too (loopback would
otherwise hold megabytes before the transport pauses).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.web.conn import Conn
from server.web.ws_protocol import GiftcastWSProtocol
from tests.e2e.http_helpers import eventually
from tests.e2e.ws_helpers import Doc, Stage, room_url, stage, welcome, with_settings
from tests.support.client import Api, Socket
from tests.support.live import LiveServer

PER_ROUND = 50  # gifts per sender per round
ROUNDS_MAX = 40
NUMBERED = ("gift", "streak_end", "room_ended")

# One event per frame and no coalescing window: many frames, quickly. The outbox is large
# enough that the stalled viewer is never cut off (that policy has its own test).
PAUSING = {
    "outbox_frames_max": 100_000,
    "batch_events_per_frame_max": 1,
    "fanout_flush_ms": 0,
    "gift_batch_max": 64,
    "gift_rate_per_s": 100_000,
    "gift_burst": 100_000,
}


@asynccontextmanager
async def not_reading(url: str) -> AsyncIterator[ClientConnection]:
    """A WebSocket with a 4 KiB receive buffer that reads nothing until the test reads it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = url.split("/")[2].split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    async with connect(url, sock=sock, compression=None, max_queue=1, max_size=2**24) as ws:
        yield ws


def conns_of(live: LiveServer, user: int) -> list[Conn]:
    return [
        conn
        for channel in live.runtime.hub.rooms.values()
        for conn in channel.conns
        if conn.user == user
    ]


def shrink_send_buffer(live: LiveServer, user: int) -> None:
    """The kernel's send buffer of the server's end of `user`'s socket: 4 KiB."""
    (conn,) = conns_of(live, user)
    assert isinstance(conn.sock, GiftcastWSProtocol)
    conn.sock.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
    )


def queued(live: LiveServer, user: int) -> int:
    """Frames waiting in `user`'s outbox (the transport is paused for writing)."""
    return sum(len(conn.outbox) for conn in conns_of(live, user))


async def pipelined(sock: Socket, prefix: str, count: int) -> int:
    """Send `count` roses without waiting, read every answer; the highest seq acknowledged."""
    for i in range(count):
        await sock.send({"type": "gift", "id": f"{prefix}{i}", "gift_id": "rose", "count": 1})
    top, answered, others = 0, 0, []
    while answered < count:
        doc = await sock.recv(timeout=30)
        if doc["type"] in ("gift_ok", "error"):
            assert doc["type"] == "gift_ok", doc
            top, answered = max(top, doc["seq"]), answered + 1
        else:
            others.append(doc)
    return top


async def until_paused(live: LiveServer, s: Stage, senders: list[Socket], slow: int) -> int:
    """Gifts until `slow`'s outbox holds frames; the last seq acknowledged."""
    shrink_send_buffer(live, slow)
    final, rounds = 0, 0
    while not queued(live, slow):
        rounds += 1
        assert rounds <= ROUNDS_MAX, "the stalled viewer's transport never paused"
        tops = await asyncio.gather(
            *(pipelined(out, f"r{rounds}-{n}-", PER_ROUND) for n, out in enumerate(senders))
        )
        final = max(final, *tops)
    return final


async def discard_until_closed(ws: ClientConnection) -> None:
    """Read and drop frames, so that the closing handshake is never stuck behind them."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()


def numbered_in(frames: list[Doc]) -> list[int]:
    seqs = []
    for frame in frames:
        for doc in frame["events"] if frame.get("type") == "batch" else [frame]:
            if doc.get("type") in NUMBERED:
                seqs.append(doc["seq"])
    return seqs


@with_settings(**PAUSING)
async def test_a_paused_viewer_gets_every_event_in_order_once_it_reads_again(
    api: Api, live: LiveServer
) -> None:
    s = await stage(api, ["slow", "s1", "s2"], package="coins_33035")
    slow, *givers = s.viewers
    async with (
        api.room(s.id, givers[0].token) as out1,
        api.room(s.id, givers[1].token) as out2,
        not_reading(room_url(api, s.id, slow.token)) as lagging,
    ):
        for sock in (out1, out2):
            await welcome(sock)
        first = orjson.loads(await lagging.recv())
        assert first["type"] == "welcome" and first["seq"] == 0, first
        final = await until_paused(live, s, [out1, out2], slow.id)
        senders_read = [asyncio.create_task(discard_until_closed(o.ws)) for o in (out1, out2)]
        # It reads again: everything, in order, once; the outbox empties; the socket lives on.
        seqs: list[int] = []
        while not seqs or seqs[-1] < final:
            seqs += numbered_in([orjson.loads(await asyncio.wait_for(lagging.recv(), 10))])
        assert seqs == list(range(1, final + 1))
        assert queued(live, slow.id) == 0
        await lagging.send(orjson.dumps({"type": "ping"}).decode())
        while (doc := orjson.loads(await asyncio.wait_for(lagging.recv(), 10)))["type"] != "pong":
            assert doc["type"] != "gift", doc  # nothing after `final` was sent
        slow_read = asyncio.create_task(discard_until_closed(lagging))
    await asyncio.gather(*senders_read, slow_read)
    coins = [(await api.me(giver))["coins"] for giver in givers]
    assert sum(33035 - c for c in coins) == final


# Room updates at once, so that the senders leaving would be announced while the stalled
# viewer still waits for its close (the bug: a `viewers` frame after `room_ended`).
@with_settings(**PAUSING, room_update_interval_ms=0)
async def test_a_live_ending_while_a_viewer_is_paused_closes_1000_after_every_event(
    api: Api, live: LiveServer
) -> None:
    s = await stage(api, ["slow", "s1", "s2"], package="coins_33035")
    slow, *givers = s.viewers
    async with (
        api.room(s.id, givers[0].token) as out1,
        api.room(s.id, givers[1].token) as out2,
        not_reading(room_url(api, s.id, slow.token)) as lagging,
    ):
        for sock in (out1, out2):
            await welcome(sock)
        await lagging.recv()  # the welcome
        final = await until_paused(live, s, [out1, out2], slow.id)
        senders_read = [asyncio.create_task(discard_until_closed(o.ws)) for o in (out1, out2)]
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
        assert r.status_code == 200, r.text
        await asyncio.gather(*senders_read)  # the senders got their 1000 and left

        async def members() -> int:
            return sum(len(channel.conns) for channel in live.runtime.hub.rooms.values())

        assert await eventually(members, lambda n: n == 1) == 1  # only the stalled viewer
        await asyncio.sleep(0.05)  # room updates due now would be sent now
        frames: list[Doc] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(orjson.loads(await asyncio.wait_for(lagging.recv(), 10)))
    rcvd = closed.value.rcvd
    assert rcvd is not None, "no close frame"
    assert (rcvd.code, rcvd.reason) == (1000, "the live has ended")
    seqs = numbered_in(frames)
    # Every gift and streak_end, then room_ended, and nothing after it.
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= final + 1
    last = frames[-1]["events"][-1] if frames[-1]["type"] == "batch" else frames[-1]
    assert last["type"] == "room_ended", frames[-3:]


@with_settings(**PAUSING)
async def test_a_shutdown_while_a_viewer_is_paused_closes_1001_after_every_event(
    api: Api, live: LiveServer
) -> None:
    s = await stage(api, ["slow", "s1", "s2"], package="coins_33035")
    slow, *givers = s.viewers
    async with (
        api.room(s.id, givers[0].token) as out1,
        api.room(s.id, givers[1].token) as out2,
        not_reading(room_url(api, s.id, slow.token)) as lagging,
    ):
        for sock in (out1, out2):
            await welcome(sock)
        await lagging.recv()  # the welcome
        final = await until_paused(live, s, [out1, out2], slow.id)
        senders_read = [asyncio.create_task(discard_until_closed(o.ws)) for o in (out1, out2)]
        draining = asyncio.create_task(live.drain())
        frames: list[Doc] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(orjson.loads(await asyncio.wait_for(lagging.recv(), 10)))
        await draining
    await asyncio.gather(*senders_read)
    rcvd = closed.value.rcvd
    assert rcvd is not None, "no close frame"
    assert (rcvd.code, rcvd.reason) == (1001, "the server is shutting down")
    assert numbered_in(frames)[:final] == list(range(1, final + 1))
