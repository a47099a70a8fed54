"""Careless and silent clients: a viewer that reads nothing, a peer that never answers pings,
a client that asks for compression. Each is provoked over real sockets; the room goes on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.http_helpers import eventually
from tests.e2e.ws_helpers import (
    Doc,
    refusal_code,
    room_url,
    stage,
    welcome,
    with_settings,
)
from tests.support.client import Api, Socket
from tests.support.live import LiveServer

PER_ROUND = 500  # gifts per sender per round
ROUNDS_MAX = 20


@asynccontextmanager
async def stalled(url: str) -> AsyncIterator[ClientConnection]:
    """A WebSocket whose client stops reading once one message is queued: the kernel's small
    receive buffer fills, then the server's send buffer, and the server cannot write more."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host_port = url.split("/")[2].split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host_port[0], int(host_port[1])))
    async with connect(url, sock=sock, compression=None, max_queue=1, max_size=2**24) as ws:
        yield ws


def numbered_seqs(frames: list[Doc]) -> list[int]:
    seqs = []
    for frame in frames:
        for doc in frame["events"] if frame.get("type") == "batch" else [frame]:
            if doc.get("type") in ("gift", "streak_end", "room_ended"):
                seqs.append(doc["seq"])
    return seqs


async def pipelined(sock: Socket, prefix: str, count: int) -> list[Doc]:
    """Send `count` roses without waiting, then read every answer."""
    for i in range(count):
        await sock.send({"type": "gift", "id": f"{prefix}{i}", "gift_id": "rose", "count": 1})
    got: list[Doc] = []
    others: list[Doc] = []  # room events, kept for whoever reads the socket next
    while len(got) < count:
        doc = await sock.recv(timeout=30)
        (got if doc["type"] in ("gift_ok", "error") else others).append(doc)
    sock.backlog[:0] = others
    return got


async def last_seq(sock: Socket, seq: int) -> list[int]:
    """Numbered events' seqs until `seq` is seen."""
    seen: list[int] = []
    while not seen or seen[-1] < seq:
        doc = await sock.recv(timeout=30)
        if doc["type"] in ("gift", "streak_end", "room_ended"):
            seen.append(doc["seq"])
    return seen


def cut_off(live: LiveServer, user: int) -> bool:
    """Whether the server has given up on `user`'s socket (it cannot tell the client yet:
    the client reads nothing, so even the close frame waits behind the full buffers)."""
    return any(
        conn.user == user and conn.aborted
        for channel in live.runtime.hub.rooms.values()
        for conn in channel.conns
    )


# One event per frame, no coalescing window: the outbox fills by events. A reading socket
# never holds more than one commit's events (at most 64) and 64 unanswered gifts; a socket
# that reads nothing fills its kernel buffers (megabytes on loopback), then its outbox.
@with_settings(
    outbox_frames_max=256,
    batch_events_per_frame_max=1,
    fanout_flush_ms=0,
    gift_batch_max=64,
    gift_rate_per_s=100_000,
    gift_burst=100_000,
)
async def test_a_viewer_that_reads_nothing_is_closed_1013_and_resumes_with_since(
    api: Api, live: LiveServer
) -> None:
    s = await stage(api, ["fast", "slow", "s1", "s2", "s3"], package="coins_33035")
    fast, slow, *senders = s.viewers
    async with (
        api.room(s.id, fast.token) as watcher,
        api.room(s.id, senders[0].token) as out1,
        api.room(s.id, senders[1].token) as out2,
        api.room(s.id, senders[2].token) as out3,
        stalled(room_url(api, s.id, slow.token)) as lagging,
    ):
        for sock in (watcher, out1, out2, out3):
            await welcome(sock)
        first = orjson.loads(await lagging.recv())
        assert first["type"] == "welcome" and first["seq"] == 0, first
        final, rounds = 0, 0
        upto = [0, 0, 0, 0]  # the last seq each reading socket has seen
        while not cut_off(live, slow.id):
            rounds += 1
            assert rounds <= ROUNDS_MAX, "the viewer that reads nothing was never cut off"
            done = await asyncio.gather(
                *(
                    pipelined(out, f"r{rounds}-{n}-", PER_ROUND)
                    for n, out in enumerate((out1, out2, out3))
                )
            )
            answers = [a for per_sender in done for a in per_sender]
            assert {a["type"] for a in answers} == {"gift_ok"}, answers[:3]
            final = max(final, *(a["seq"] for a in answers))
            # Everyone else gets every event, in order, while the slow viewer reads nothing.
            readers = (watcher, out1, out2, out3)
            for i, seen in enumerate(await asyncio.gather(*(last_seq(r, final) for r in readers))):
                assert seen == list(range(upto[i] + 1, seen[-1] + 1)), "a reader lost events"
                upto[i] = seen[-1]
        # Now the slow viewer reads: what was already on the wire, then the close.
        frames: list[Doc] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(orjson.loads(await asyncio.wait_for(lagging.recv(), 10)))
        rcvd = closed.value.rcvd
        assert rcvd is not None, "no close frame"
        assert (rcvd.code, rcvd.reason) == (1013, "too far behind; reconnect with since")
        got = numbered_seqs(frames)
        assert got == list(range(1, len(got) + 1)), "what it got before the cut is in order"
        assert len(got) < final  # it was cut off before the end
    # It resumes with `since` and gets exactly what it missed (the room keeps the last
    # 1,000 events at least; further back it is told to resync).
    async with api.room(s.id, slow.token, since=len(got)) as resumed:
        await welcome(resumed)
        doc = await resumed.recv()
        if doc["type"] != "resync":
            resumed.backlog.insert(0, doc)
            assert await last_seq(resumed, final) == list(range(len(got) + 1, final + 1))
    spent = sum(3 for _ in range(rounds)) * PER_ROUND
    coins = [(await api.me(sender))["coins"] for sender in senders]
    assert sum(33035 - c for c in coins) == spent


async def silent_peer(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a WebSocket by hand, then go silent: it never reads, writes or answers a ping."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


@with_settings(ws_heartbeat_interval_s=0.2, ws_heartbeat_timeout_s=0.2, connections_per_user_max=1)
async def test_a_silent_peer_is_dropped_by_the_heartbeat_and_its_place_freed(
    api: Api, live: LiveServer
) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    _, writer = await silent_peer(live.port, f"/ws/rooms/{s.id}?token={alice.token}")
    try:
        # While the silent socket holds alice's one place, her second socket is refused...
        assert await refusal_code(room_url(api, s.id, alice.token)) == 4429

        async def second_socket() -> str:
            async with api.room(s.id, alice.token) as ws:
                try:
                    return str((await ws.recv())["type"])
                except ConnectionClosed as closed:
                    return f"closed {closed.rcvd.code if closed.rcvd else None}"

        # ...until the heartbeat finds the first one dead and lets it go.
        assert (
            await eventually(second_socket, lambda got: got == "welcome", timeout=10) == "welcome"
        )
        described = (await api.call("GET", f"/api/rooms/{s.id}")).json()
        assert described["viewers"] == 0, described
    finally:
        writer.close()
