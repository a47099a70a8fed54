"""The room hub: which sockets are in which room, and getting frames to them.

Each socket (`Conn`) is written synchronously through the `giftcast.socket` extension
(`direct_socket.py`): a frame goes straight into the transport when it is writable, and into
the socket's bounded outbox only while the transport is paused for writing; the outbox drains,
in order, when the transport resumes. No task, future or ASGI call per frame. A room's events
are coalesced for up to `fanout_flush_ms` (the first event after a quiet spell goes out at
once), encoded and framed once (a `batch` when there are several), and the same bytes are
written to every socket of the room. A big room's flush is costly (each write is a system call
of ~7-20 us: 5,000 sockets take 40-100 ms), so a room waits at least `FLUSH_BUSY_FACTOR` times
its last flush's duration from one flush's start to the next, up to `fanout_flush_max_ms`
(`flush_gap_s`): the loop never flushes one room back to back, and gifts, answers and other
rooms get at least a third of it. A socket whose outbox is full is closed with 1013 at
once; it resumes with `since`. One slow or dead viewer never delays anyone else.

Connection states: JOINING (welcome and replay go first; live frames are held) -> LIVE ->
CLOSING (the outbox drains, then the close frame goes with the chosen code) -> CLOSED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import TypeVar

from server.config import Settings
from server.domain.money import RoomId, UserId
from server.protocol.messages import dumps, encode_batch
from server.pubsub.base import Broker
from server.services.room_books import Published
from server.web.conn import (
    CLOSE_NORMAL,
    CLOSE_UNAUTHORIZED,
    Conn,
    ConnKind,
)
from server.web.direct_socket import text_frame

log = logging.getLogger("giftcast.hub")
K = TypeVar("K")
FLUSH_BUSY_FACTOR = 1.5


def flush_gap_s(base_s: float, max_s: float, last_duration_s: float) -> float:
    """How long after a flush starts the room's next one may start.

    At 5,000 viewers and 500 gifts/s, a fixed 100 ms gap left the loop flushing back to back
    (each flush took ~100 ms on 2 shared cores) and delivery p99 grew to 370-600 ms. With
    the gap 1.5 times the last flush's duration it was 157-244 ms over six runs; 1.25 and 2
    times did no better, 3 times gave 600 ms (the gap itself became the latency). See
    docs/performance.md."""
    return min(max_s, max(base_s, FLUSH_BUSY_FACTOR * last_duration_s))


class RoomChannel:
    __slots__ = (
        "conns",
        "ending",
        "flush_handle",
        "gap",
        "last_flush",
        "last_seq",
        "last_viewers",
        "pending",
        "room",
        "viewers",
        "viewers_due",
        "viewers_handle",
    )

    def __init__(self, room: RoomId, last_seq: int) -> None:
        self.room = room
        self.conns: set[Conn] = set()
        self.pending: list[bytes] = []
        self.last_seq = last_seq
        self.ending = False
        self.flush_handle: asyncio.Handle | None = None
        self.gap = 0.0  # seconds from one flush's start to the next's (flush_gap_s)
        self.last_flush = 0.0
        self.viewers: Counter[UserId] = Counter()
        self.last_viewers = 0
        self.viewers_due = 0.0
        self.viewers_handle: asyncio.Handle | None = None


def envelope(published: Published) -> bytes:
    flag = b"e" if published.ends_room else b"-"
    return b"%d|%s|" % (published.seq, flag) + published.frame


class Hub:
    def __init__(self, settings: Settings, broker: Broker) -> None:
        self.settings = settings
        self.broker = broker
        self.rooms: dict[RoomId, RoomChannel] = {}
        self.by_user: Counter[UserId] = Counter()
        self.by_ip: Counter[str] = Counter()
        self.viewer_slots: Counter[RoomId] = Counter()  # viewer sockets per room (the cap)
        self.flush_s = settings.fanout_flush_ms / 1000
        self.flush_max_s = settings.fanout_flush_max_ms / 1000
        self.update_s = settings.room_update_interval_ms / 1000
        self.frames_sent = 0

    async def start(self) -> None:
        await self.broker.start(self.deliver)

    # --- publishing ---------------------------------------------------------------------

    def publish(self, published: Published) -> None:
        """Called by the gift writer after each commit; never waits."""
        self.broker.publish(published.room, envelope(published))

    def deliver(self, room: RoomId, message: bytes) -> None:
        channel = self.rooms.get(room)
        if channel is None:
            return
        seq_raw, flag, frame = message.split(b"|", 2)
        seq = int(seq_raw)
        if seq:
            if seq <= channel.last_seq:
                return  # already delivered (a broker may repeat itself)
            channel.last_seq = seq
        channel.pending.append(frame)
        if flag == b"e":
            channel.ending = True
        self._schedule_flush(channel)

    def _schedule_flush(self, channel: RoomChannel) -> None:
        if channel.flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        at = max(loop.time(), channel.last_flush + max(self.flush_s, channel.gap))
        channel.flush_handle = loop.call_at(at, self._flush, channel)

    def _flush(self, channel: RoomChannel) -> None:
        if channel.flush_handle is not None:
            channel.flush_handle.cancel()
            channel.flush_handle = None
        channel.last_flush = asyncio.get_running_loop().time()
        pending, channel.pending = channel.pending, []
        if pending:
            started = time.monotonic()
            limit = self.settings.batch_events_per_frame_max
            for start in range(0, len(pending), limit):
                chunk = pending[start : start + limit]
                frame = text_frame(chunk[0] if len(chunk) == 1 else encode_batch(chunk))
                for conn in channel.conns:
                    conn.push(frame)
                self.frames_sent += len(channel.conns)
            took = time.monotonic() - started
            channel.gap = flush_gap_s(self.flush_s, self.flush_max_s, took)
        if channel.ending:
            for conn in list(channel.conns):
                conn.close_after_drain(CLOSE_NORMAL, "the live has ended")

    # --- membership ---------------------------------------------------------------------

    def admit(self, user: UserId | None, client_ip: str, room: RoomId, kind: ConnKind) -> str:
        """Reserve a place for one more socket under every cap; empty on success, else why not.

        The place is taken here, synchronously, so sockets connecting at the same moment
        cannot all pass the check before any joins. `release` gives it back."""
        s = self.settings
        if user is not None and self.by_user[user] >= s.connections_per_user_max:
            return f"at most {s.connections_per_user_max} connections per user"
        if self.by_ip[client_ip] >= s.connections_per_ip_max:
            return f"at most {s.connections_per_ip_max} connections per address"
        if kind is ConnKind.VIEWER and self.viewer_slots[room] >= s.viewers_per_room_max:
            return f"this room is full ({s.viewers_per_room_max} viewers)"
        if user is not None:
            self.by_user[user] += 1
        self.by_ip[client_ip] += 1
        if kind is ConnKind.VIEWER:
            self.viewer_slots[room] += 1
        return ""

    def release(self, user: UserId | None, client_ip: str, room: RoomId, kind: ConnKind) -> None:
        if user is not None:
            _decrement(self.by_user, user)
        _decrement(self.by_ip, client_ip)
        if kind is ConnKind.VIEWER:
            _decrement(self.viewer_slots, room)

    async def join(self, conn: Conn, published_seq: int) -> int:
        """Add a socket to its room; returns the seq its welcome stands at.

        Pending events are flushed first, so the new socket gets exactly the events numbered
        after the returned seq as live frames (held until its replay is sent)."""
        channel = self.rooms.get(conn.room)
        if channel is None:
            channel = RoomChannel(conn.room, published_seq)
            self.rooms[conn.room] = channel
            await self.broker.subscribe(conn.room)
        else:
            self._flush(channel)
        channel.conns.add(conn)
        if conn.kind is ConnKind.VIEWER and conn.user is not None:
            channel.viewers[conn.user] += 1
            self._viewers_changed(channel)
        return channel.last_seq

    async def leave(self, conn: Conn) -> None:
        channel = self.rooms.get(conn.room)
        if channel is None or conn not in channel.conns:
            return
        channel.conns.discard(conn)
        if conn.kind is ConnKind.VIEWER and conn.user is not None:
            _decrement(channel.viewers, conn.user)
            self._viewers_changed(channel)
        if not channel.conns:
            for handle in (channel.flush_handle, channel.viewers_handle):
                if handle is not None:
                    handle.cancel()
            del self.rooms[conn.room]
            await self.broker.unsubscribe(conn.room)

    def viewer_count(self, room: RoomId) -> int:
        channel = self.rooms.get(room)
        return len(channel.viewers) if channel is not None else 0

    def _viewers_changed(self, channel: RoomChannel) -> None:
        if channel.viewers_handle is not None:
            return
        loop = asyncio.get_running_loop()
        at = max(loop.time(), channel.viewers_due)
        channel.viewers_handle = loop.call_at(at, self._send_viewers, channel)

    def _send_viewers(self, channel: RoomChannel) -> None:
        channel.viewers_handle = None
        count = len(channel.viewers)
        if count == channel.last_viewers or self.rooms.get(channel.room) is not channel:
            return
        if channel.ending:
            return  # nothing follows `room_ended` (its sockets may take frames until closed)
        channel.last_viewers = count
        channel.viewers_due = asyncio.get_running_loop().time() + self.update_s
        channel.pending.append(dumps({"type": "viewers", "count": count}))
        self._schedule_flush(channel)

    def close_overlays(self, room: RoomId, older_than_version: int) -> None:
        channel = self.rooms.get(room)
        if channel is None:
            return
        for conn in list(channel.conns):
            if conn.kind is ConnKind.OVERLAY and conn.overlay_version < older_than_version:
                conn.abort(CLOSE_UNAUTHORIZED, "this overlay token was replaced")

    def close_all(self, code: int, reason: str) -> list[Conn]:
        conns = [conn for channel in self.rooms.values() for conn in channel.conns]
        for channel in self.rooms.values():
            self._flush(channel)
        for conn in conns:
            conn.close_after_drain(code, reason)
        return conns


def _decrement(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
