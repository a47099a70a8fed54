"""A cheap WebSocket viewer for fan-out benchmarks: thousands per process, work per frame.

`websockets`' client costs tens of microseconds a frame and parsing every event costs more:
with 5,000 viewers receiving hundreds of events a second, that load generator, not the server,
would be measured. So a viewer here is a non-blocking socket speaking just enough of RFC 6455
for a receive-only client (handshake, unmasked server frames, fragments, ping -> pong, close),
read by a plain epoll loop (`ViewerPool`), and the work per frame is constant, however many
events the frame carries:

- `FrameTable` (one per worker process) parses each distinct frame once with orjson: the seqs
  of its numbered events and of its gifts. Every viewer of a worker receives the same frames
  in the same order, so a viewer finds its next frame by comparing bytes with the frame after
  the one it saw last (a `memcmp`), and falls back to a dict lookup when that misses.
- `Viewer` keeps, per viewer, the next seq it expects: a frame starting at that seq and
  running on without a hole advances it; any other frame is taken event by event: a seq
  beyond the expected one counts the gap as missing, a seq below it is late (it fills a gap:
  out of order) or repeated (a duplicate). What is still missing at the end is counted by
  `Viewer.missing_after`.
- It counts gift events received inside the measured window, and for the few `sampled`
  viewers it notes (frame, receipt instant) for delivery latency, worked out afterwards.

The wire (handshake, frames, the epoll pool) is `scripts/wsclient.py`'s, shared with the gift
senders of `scripts/wssend.py`.

Numbered events are the contract's `gift`, `streak_end` and `room_ended` (seq rises by 1 per
event); a frame is one event or a `{"type": "batch", "events": [...]}`. Only 127.0.0.1.
"""

from __future__ import annotations

import math
import socket
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from scripts.wsclient import ClientError, ClientPool, WsClient

SEQ_EVENT_TYPES = frozenset({"gift", "streak_end", "room_ended"})
FRAMES_DISTINCT_MAX = 1_000_000  # per worker: a bound on the table's memory
HOLES_KEPT = 64  # per viewer: skipped seq ranges remembered, to tell late from repeated


@dataclass(frozen=True, slots=True)
class FrameInfo:
    raw: bytes
    lo: int  # first numbered seq in the frame, 0 when it has none
    hi: int  # last numbered seq
    numbered: int  # how many numbered events
    gift_seqs: tuple[int, ...]
    seqs: tuple[int, ...] = ()  # every numbered seq, in frame order
    in_line: bool = True  # seqs are exactly lo, lo + 1, ..., hi


def frame_info(raw: bytes) -> FrameInfo:
    """Parse one frame: its numbered events and its gifts."""
    message = orjson.loads(raw)
    items = message.get("events") if isinstance(message, dict) else None
    if not (isinstance(message, dict) and message.get("type") == "batch"):
        items = [message]
    seqs: list[int] = []
    gifts: list[int] = []
    for event in items if isinstance(items, list) else []:
        if isinstance(event, dict) and event.get("type") in SEQ_EVENT_TYPES:
            seq = event.get("seq")
            if type(seq) is int:
                seqs.append(seq)
                if event["type"] == "gift":
                    gifts.append(seq)
    if not seqs:
        return FrameInfo(raw, 0, 0, 0, ())
    lo, hi = seqs[0], seqs[-1]
    in_line = seqs == list(range(lo, hi + 1))
    return FrameInfo(raw, lo, hi, len(seqs), tuple(gifts), tuple(seqs), in_line)


class FrameTable:
    """The distinct frames one worker's viewers received, in first-seen order, and the
    measured window (`window_from` <= receipt < `window_to`, on `time.monotonic()`)."""

    def __init__(self) -> None:
        self.frames: list[FrameInfo] = []
        self._index: dict[bytes, int] = {}
        self.window_from = math.inf
        self.window_to = math.inf

    def find(self, raw: bytes, hint: int) -> int:
        frames = self.frames
        if hint < len(frames) and frames[hint].raw == raw:
            return hint
        found = self._index.get(raw)
        if found is None:
            if len(frames) >= FRAMES_DISTINCT_MAX:
                raise ClientError(f"more than {FRAMES_DISTINCT_MAX} distinct frames")
            found = len(frames)
            frames.append(frame_info(raw))
            self._index[raw] = found
        return found


class Viewer(WsClient):
    """A receive-only viewer: counts the room's numbered events and notes latency samples.

    The usual frame starts at the seq expected next and runs on without a hole, and costs
    a comparison. Any other frame takes the slow path, event by event: a seq beyond the
    expected one leaves a hole (counted in `gaps`, the first HOLES_KEPT holes remembered);
    a seq below it is `late` when it fills a remembered hole (out of order: it was skipped,
    then came), else `repeated` (a duplicate)."""

    def __init__(
        self, sock: socket.socket, host_port: str, path: str, table: FrameTable, sampled: bool
    ) -> None:
        super().__init__(sock, host_port, path)
        self._table = table
        self._hint = 0
        self.next_seq = 0  # set from the welcome by the caller
        self.gaps = 0  # numbered events skipped over and never received
        self.repeated = 0  # numbered events received twice
        self.late = 0  # numbered events received after a later one (they filled a gap)
        self._holes: list[tuple[int, int]] = []  # skipped seqs, lo..hi inclusive
        self.delivered_in_window = 0  # gift events received inside the window
        self.gifts_received = 0
        self.sampled = sampled
        self.sample_frames = array("l")  # frame index of each gift-carrying frame (sampled only)
        self.sample_times = array("d")  # and its receipt instant

    def missing_after(self, last_seq: int) -> int:
        """Numbered events up to `last_seq` this viewer never received."""
        return self.gaps + max(0, last_seq + 1 - self.next_seq)

    def on_message(self, raw: bytes, now: float) -> None:
        table = self._table
        index = table.find(raw, self._hint)
        self._hint = index + 1
        info = table.frames[index]
        if info.numbered:
            if info.lo == self.next_seq and info.in_line:
                self.next_seq = info.hi + 1
            else:
                self._out_of_line(info.seqs)
        gifts = len(info.gift_seqs)
        if gifts:
            self.gifts_received += gifts
            if table.window_from <= now < table.window_to:
                self.delivered_in_window += gifts
            if self.sampled:
                self.sample_frames.append(index)
                self.sample_times.append(now)

    def _out_of_line(self, seqs: tuple[int, ...]) -> None:
        for seq in seqs:
            expected = self.next_seq
            if seq >= expected:
                if seq > expected:
                    self.gaps += seq - expected
                    if len(self._holes) < HOLES_KEPT:
                        self._holes.append((expected, seq - 1))
                self.next_seq = seq + 1
            elif self._fill(seq):
                self.gaps -= 1
                self.late += 1
            else:
                self.repeated += 1

    def _fill(self, seq: int) -> bool:
        """Take `seq` out of the hole holding it; False when no remembered hole does."""
        for i, (lo, hi) in enumerate(self._holes):
            if lo <= seq <= hi:
                self._holes[i : i + 1] = [
                    (a, b) for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b
                ]
                del self._holes[HOLES_KEPT:]
                return True
        return False


class ViewerPool(ClientPool[Viewer]):
    """Many viewers of one server in one process, driven by a plain epoll loop.

    Not asyncio: a viewer only reads, and a loop of `epoll.poll` + `recv` costs a fraction of
    asyncio's callbacks per read. After each round of reads the pool sleeps `pause_s`, so that
    each `recv` picks up the frames that arrived meanwhile rather than one at a time; receipt
    instants are those of the `recv`, at most `pause_s` plus one round late."""

    def __init__(self, host_port: str, table: FrameTable, pause_s: float) -> None:
        super().__init__(host_port)
        self.table = table
        self.pause_s = pause_s
        self.viewers = self.clients
        self.rounds = 0  # rounds of reads that found data, by `serve`
        self.reads = 0
        self.round_s_max = 0.0  # the longest: frames wait up to this (plus the pause) unread

    def connect(
        self, specs: Sequence[tuple[str, bool]], concurrency: int, timeout_s: float
    ) -> None:
        """Open a viewer per (path, sampled), `concurrency` handshakes at a time, and wait for
        every welcome; a refusal, a close or `timeout_s` raises ClientError."""

        def make(sock: socket.socket, i: int) -> Viewer:
            path, sampled = specs[i]
            return Viewer(sock, self.host_port, path, self.table, sampled)

        self.open(make, len(specs), concurrency, timeout_s)

    def serve(self, until: Callable[[], bool], tick: Callable[[float], None]) -> None:
        """Read every viewer's frames until `until()`; `tick(now)` runs after each round."""
        by_fd, poll, pause_s = self._by_fd, self._epoll.poll, self.pause_s
        while not until():
            ready = poll(0.02, len(by_fd) + 1)  # every ready socket, not just 1,023
            now = time.monotonic()  # after the wait: the round's frames are here by now
            for fd, _ in ready:
                viewer = by_fd.get(fd)
                if viewer is not None:
                    self._read(fd, viewer, now)
            if ready:
                self.rounds += 1
                self.reads += len(ready)
                self.round_s_max = max(self.round_s_max, time.monotonic() - now)
            tick(now)
            if pause_s:
                time.sleep(pause_s)
