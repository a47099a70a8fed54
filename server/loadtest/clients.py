"""One simulated room socket: a viewer (cheap or sampled) or an overlay, and what they share
with senders (`sender.py`): connecting, reading the welcome, resuming with `since`.

States of a `RoomClient` (`state`): NEW -> OPEN <-> RESUMING -> DONE. A dropped socket (the
simulation drops some on purpose; the server closes a slow one with 1013) is RESUMING: it
reconnects with `since` = the last seq it saw and gets every missed event once. DONE is final:
the room ended (`room_ended`, close 1000, 4404), the viewer left, or the run is over.

A cheap viewer does not decode frames: it counts events (`"type":` keys) and finds the last
`seq` with a byte search. A sampled viewer (and every overlay) decodes every frame, keeps the
room's numbered events in order for the verifier, and measures delivery latency: the time
from the event's `at` (when the server accepted the gift) to its arrival here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from server.loadtest.records import StreamRecord
from server.loadtest.stats import Tick

WS_MAX_SIZE_BYTES = 64 * 1024 * 1024
OPEN_TIMEOUT_S = 20.0
RETRY_DELAYS_S = (0.1, 0.3, 1.0, 2.0, 3.0)
ENDED_CLOSE_CODES = frozenset({4404})
REFUSED_CLOSE_CODES = frozenset({4401, 4403, 4404, 4429})


class State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    RESUMING = "resuming"
    DONE = "done"


@dataclass(slots=True)
class Shared:
    """What every client of a worker shares: where to connect, the figures, the phase."""

    ws_base: str
    tick: Tick
    rng: random.Random
    drop_per_s: float  # chance per second that a socket is dropped on purpose
    running: asyncio.Event = field(default_factory=asyncio.Event)  # gifting under way
    finishing: asyncio.Event = field(default_factory=asyncio.Event)  # rooms are ending
    open_sockets: int = 0
    connect_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))


def _at_ms(at: str) -> float:
    return dt.datetime.fromisoformat(at).timestamp() * 1000


def last_seq_in(frame: bytes) -> int | None:
    """The last `"seq":N` in an encoded frame (events come in order), without decoding it."""
    at = frame.rfind(b'"seq":')
    if at < 0:
        return None
    end = at + 6
    while end < len(frame) and 48 <= frame[end] <= 57:
        end += 1
    return int(frame[at + 6 : end]) if end > at + 6 else None


def count_events(frame: bytes) -> int:
    """Room messages in a frame: a `batch` holds several, anything else is one."""
    if frame.startswith(b'{"type":"batch"'):
        return frame.count(b'"type":') - 1
    return 1


class RoomClient:
    """A socket on one room that resumes with `since` until it is DONE."""

    def __init__(
        self, shared: Shared, room: int, token: str, who: str, sampled: bool, overlay: bool
    ) -> None:
        self.shared = shared
        self.room = room
        self.token = token
        self.who = who
        self.sampled = sampled
        self.overlay = overlay
        self.state = State.NEW
        self.last_seq: int | None = None
        self.stream: StreamRecord | None = None
        self.ws: ClientConnection | None = None
        self.leave = asyncio.Event()  # set: close and stop (a viewer leaving, or the end)

    def url(self) -> str:
        kind = "overlay" if self.overlay else "rooms"
        url = f"{self.shared.ws_base}/ws/{kind}/{self.room}?token={self.token}"
        if self.last_seq is not None:
            url += f"&since={self.last_seq}"
        return url

    async def open(self) -> dict[str, Any]:
        """Connect and read the welcome; raises ConnectionClosed / OSError / TimeoutError."""
        async with self.shared.connect_gate:
            return await self._open()

    async def _open(self) -> dict[str, Any]:
        ws = await connect(
            self.url(),
            compression=None,
            max_size=WS_MAX_SIZE_BYTES,
            ping_interval=None,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=2,
            proxy=None,
        )
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                welcome = orjson.loads(await ws.recv(decode=False))
        except BaseException:
            ws.transport.abort()
            raise
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            ws.transport.abort()
            raise ConnectionError(f"the first message was not a welcome: {welcome!r}"[:200])
        self.ws = ws
        self.shared.open_sockets += 1
        if self.last_seq is None:
            self.last_seq = int(welcome["seq"])
            if self.sampled:
                self.stream = StreamRecord(self.room, self.who, self.last_seq)
        self.state = State.OPEN
        return welcome

    async def run(self) -> None:
        """Read until DONE, resuming with `since` after every drop."""
        failures = 0
        while self.state is not State.DONE and not self.leave.is_set():
            if self.ws is None:
                try:
                    await self.open()
                    await self.on_open()
                    failures = 0
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else 1006
                    self.count_error(f"close_{code}_before_welcome")
                    if code in REFUSED_CLOSE_CODES:
                        self.state = State.DONE
                        return
                    failures += 1
                except (OSError, TimeoutError, InvalidHandshake, ConnectionError) as exc:
                    label = (
                        f"http_{exc.response.status_code}"
                        if isinstance(exc, InvalidStatus)
                        else type(exc).__name__
                    )
                    self.count_error(f"connect_{label}")
                    failures += 1
                if self.ws is None:
                    if failures > len(RETRY_DELAYS_S):
                        self.state = State.DONE
                        return
                    await asyncio.sleep(RETRY_DELAYS_S[failures - 1])
                    continue
            await self._read()

    async def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        dropper = asyncio.create_task(self._drop_later(ws))
        try:
            while not self.leave.is_set():
                frame = await ws.recv(decode=False)
                self.on_frame(frame)
                if self.state is State.DONE:
                    break
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            if code in ENDED_CLOSE_CODES or (code == 1000 and self.shared.finishing.is_set()):
                self.state = State.DONE
            elif not self.leave.is_set() and not getattr(ws, "dropped_on_purpose", False):
                self.count_error(f"close_{code}")
        finally:
            dropper.cancel()
            self.shared.open_sockets -= 1
            self.ws = None
            if self.leave.is_set() or self.state is State.DONE:
                self.state = State.DONE
                ws.transport.abort()
            else:
                self.state = State.RESUMING
                self.shared.tick.reconnects += 1
            await self.on_close()

    async def _drop_later(self, ws: ClientConnection) -> None:
        """Drop the socket abruptly at a random time, as a flaky mobile network would."""
        if self.shared.drop_per_s <= 0:
            return
        await self.shared.running.wait()
        await asyncio.sleep(self.shared.rng.expovariate(self.shared.drop_per_s))
        if not self.shared.finishing.is_set():
            ws.dropped_on_purpose = True  # type: ignore[attr-defined]
            ws.transport.abort()

    def on_frame(self, frame: bytes) -> None:
        tick = self.shared.tick
        tick.frames += 1
        if not self.sampled:
            tick.events += count_events(frame)
            seq = last_seq_in(frame)
            if seq is not None:
                self.last_seq = seq
            if b'"type":"room_ended"' in frame:
                self.state = State.DONE
            return
        doc = orjson.loads(frame)
        events = doc["events"] if doc.get("type") == "batch" else [doc]
        tick.events += len(events)
        now_ms = time.time() * 1000
        for e in events:
            self.on_event(e, now_ms)

    def on_event(self, e: dict[str, Any], now_ms: float) -> None:
        kind = e.get("type")
        if kind == "resync":  # history no longer reaches: start again from now
            assert self.stream is not None
            self.stream.resynced = True
            self.last_seq = None
            with contextlib.suppress(Exception):
                assert self.ws is not None
                self.ws.dropped_on_purpose = True  # type: ignore[attr-defined]
                self.ws.transport.abort()
            return
        if kind not in ("gift", "streak_end", "room_ended"):
            return
        seq = int(e["seq"])
        if self.last_seq is not None and seq != self.last_seq + 1:
            self.count_error("stream_gap" if seq > self.last_seq + 1 else "stream_repeat")
        self.last_seq = max(seq, self.last_seq or 0)
        if self.stream is not None:
            if kind == "gift":
                self.stream.events.append(
                    (
                        seq,
                        "gift",
                        int(e["sender"]["id"]),
                        str(e["gift"]["id"]),
                        int(e["count"]),
                        int(e["coins"]),
                        int(e["diamonds"]),
                    )
                )
                self.shared.tick.delivery_ms.add(now_ms - _at_ms(e["at"]))
            else:
                self.stream.events.append((seq, str(kind), 0, "", 0, 0, 0))
        if kind == "room_ended":
            if self.stream is not None:
                self.stream.ended = True
            self.state = State.DONE

    def count_error(self, code: str) -> None:
        self.shared.tick.errors[code] += 1

    async def on_open(self) -> None:
        """After each welcome (senders resend what is unanswered)."""

    async def on_close(self) -> None:
        """After each socket ends."""

    def close_now(self) -> None:
        self.leave.set()
        if self.ws is not None:
            self.ws.transport.abort()
