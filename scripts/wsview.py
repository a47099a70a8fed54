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
- `Viewer` keeps, per viewer, the next seq it expects: a frame starting at that seq advances
  it; a frame starting beyond it counts the gap as missing; a frame starting below it counts
  its events as repeated (a duplicate or out of order). What is still missing at the end is
  counted by `Viewer.missing_after`.
- It counts gift events received inside the measured window, and for the few `sampled`
  viewers it notes (frame, receipt instant) for delivery latency, worked out afterwards.

Numbered events are the contract's `gift`, `streak_end` and `room_ended` (seq rises by 1 per
event); a frame is one event or a `{"type": "batch", "events": [...]}`. Only 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import math
import os
import select
import socket
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

SEQ_EVENT_TYPES = frozenset({"gift", "streak_end", "room_ended"})
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HANDSHAKE_BYTES_MAX = 16 * 1024
FRAME_BYTES_MAX = 64 * 1024 * 1024
FRAMES_DISTINCT_MAX = 1_000_000  # per worker: a bound on the table's memory
RECV_BYTES = 256 * 1024

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ViewerError(Exception):
    """The server broke the protocol or refused the viewer; the message says how."""


@dataclass(frozen=True, slots=True)
class FrameInfo:
    raw: bytes
    lo: int  # first numbered seq in the frame, 0 when it has none
    hi: int  # last numbered seq
    numbered: int  # how many numbered events
    gift_seqs: tuple[int, ...]


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
    return FrameInfo(raw, seqs[0], seqs[-1], len(seqs), tuple(gifts))


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
                raise ViewerError(f"more than {FRAMES_DISTINCT_MAX} distinct frames")
            found = len(frames)
            frames.append(frame_info(raw))
            self._index[raw] = found
        return found


class Viewer:
    """One receive-only WebSocket viewer over a non-blocking socket, fed by `ViewerPool`.

    `welcome` is the first message once it came; `error` says why the viewer failed."""

    def __init__(
        self, sock: socket.socket, host_port: str, path: str, table: FrameTable, sampled: bool
    ) -> None:
        self.sock = sock
        self.request, self._accept = handshake(host_port, path)
        self._table = table
        self._open = False
        self._buf = b""
        self._fragments: list[bytes] = []
        self._hint = 0
        self.welcome: dict[str, Any] | None = None
        self.error = ""
        self.next_seq = 0  # set from the welcome by the caller
        self.gaps = 0  # numbered events skipped over (a later one arrived first)
        self.repeated = 0  # numbered events at or below one already seen
        self.delivered_in_window = 0  # gift events received inside the window
        self.gifts_received = 0
        self.closed_with = ""  # the close code, if the server closed the socket
        self.sampled = sampled
        self.sample_frames = array("l")  # frame index of each gift-carrying frame (sampled only)
        self.sample_times = array("d")  # and its receipt instant

    def feed(self, data: bytes, now: float) -> None:
        """Bytes read from the socket at `now`; an empty `data` is the end of the stream."""
        if not data:
            self.closed_with = self.closed_with or "no close frame"
            self.error = self.error or "connection closed by the server"
            return
        try:
            if self._buf:
                data = self._buf + data
                self._buf = b""
            if not self._open:
                data = self._read_handshake(data)
            self._read_frames(data, now)
        except ViewerError as exc:
            self.error = str(exc)
            self.closed_with = self.closed_with or f"protocol error: {exc}"[:200]

    def missing_after(self, last_seq: int) -> int:
        """Numbered events up to `last_seq` this viewer never received."""
        return self.gaps + max(0, last_seq + 1 - self.next_seq)

    def send_close(self) -> None:
        """Send a close frame (1000), if the socket takes it now."""
        if self._open:
            with contextlib.suppress(OSError):
                self.sock.send(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))

    # --- the wire ---------------------------------------------------------------------------

    def _read_handshake(self, data: bytes) -> bytes:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > HANDSHAKE_BYTES_MAX:
                raise ViewerError("handshake response too long")
            self._buf = data
            return b""
        head = data[:end].decode("latin-1")
        status = head.split("\r\n", 1)[0]
        if not status.startswith("HTTP/1.1 101"):
            raise ViewerError(f"handshake refused: {status!r}")
        accepted = any(
            line.split(":", 1)[0].strip().lower() == "sec-websocket-accept"
            and line.split(":", 1)[1].strip() == self._accept
            for line in head.split("\r\n")[1:]
        )
        if not accepted:
            raise ViewerError("handshake without the right Sec-WebSocket-Accept")
        self._open = True
        return data[end + 4 :]

    def _read_frames(self, data: bytes, now: float) -> None:
        pos, size = 0, len(data)
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            if b1 & 0x80:
                raise ViewerError("a masked frame from the server")
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if length > FRAME_BYTES_MAX:
                raise ViewerError(f"a frame of {length} bytes")
            end = pos + head + length
            if end > size:
                break
            payload = data[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode <= OP_BINARY:  # continuation, text or binary
                if b0 & 0x80 and not self._fragments:
                    self._on_message(payload, now)
                else:
                    self._fragments.append(payload)
                    if b0 & 0x80:
                        whole = b"".join(self._fragments)
                        self._fragments.clear()
                        self._on_message(whole, now)
            elif opcode == OP_PING:
                with contextlib.suppress(OSError):
                    self.sock.send(client_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.closed_with = str(code)
                self.send_close()  # echo the close, as RFC 6455 asks
                raise ViewerError(f"closed by the server with {code}")
        if pos < size:
            self._buf = data[pos:]

    def _on_message(self, raw: bytes, now: float) -> None:
        if self.welcome is None:
            welcome = orjson.loads(raw)
            if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
                raise ViewerError(f"first message was not a welcome: {raw[:200]!r}")
            self.welcome = welcome
            return
        table = self._table
        index = table.find(raw, self._hint)
        self._hint = index + 1
        info = table.frames[index]
        if info.numbered:
            expected = self.next_seq
            if info.lo == expected:
                self.next_seq = info.hi + 1
            elif info.lo > expected:
                self.gaps += info.lo - expected
                self.next_seq = info.hi + 1
            else:
                self.repeated += min(info.numbered, expected - info.lo)
                self.next_seq = max(expected, info.hi + 1)
            self.gaps += info.hi - info.lo + 1 - info.numbered
        gifts = len(info.gift_seqs)
        if gifts:
            self.gifts_received += gifts
            if table.window_from <= now < table.window_to:
                self.delivered_in_window += gifts
            if self.sampled:
                self.sample_frames.append(index)
                self.sample_times.append(now)


class ViewerPool:
    """Many viewers of one server in one process, driven by a plain epoll loop.

    Not asyncio: a viewer only reads, and a loop of `epoll.poll` + `recv` costs a fraction of
    asyncio's callbacks per read. After each round of reads the pool sleeps `pause_s`, so that
    each `recv` picks up the frames that arrived meanwhile rather than one at a time; receipt
    instants are those of the `recv`, at most `pause_s` plus one round late."""

    def __init__(self, host_port: str, table: FrameTable, pause_s: float) -> None:
        host, port = host_port.rsplit(":", 1)
        self.address = (host, int(port))
        self.host_port = host_port
        self.table = table
        self.pause_s = pause_s
        self.viewers: list[Viewer] = []
        self._epoll = select.epoll()
        self._by_fd: dict[int, Viewer] = {}
        self.rounds = 0  # rounds of reads that found data, by `serve`
        self.reads = 0
        self.round_s_max = 0.0  # the longest: frames wait up to this (plus the pause) unread

    def connect(
        self, specs: Sequence[tuple[str, bool]], concurrency: int, timeout_s: float
    ) -> None:
        """Open a viewer per (path, sampled), `concurrency` handshakes at a time, and wait for
        every welcome; a refusal, a close or `timeout_s` raises ViewerError."""
        todo = list(reversed(specs))
        waiting: dict[int, Viewer] = {}
        deadline = time.monotonic() + timeout_s
        while todo or waiting:
            while todo and len(waiting) < concurrency:
                path, sampled = todo.pop()
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                viewer = Viewer(sock, self.host_port, path, self.table, sampled)
                self.viewers.append(viewer)
                err = sock.connect_ex(self.address)
                if err not in (0, errno.EINPROGRESS):
                    raise ViewerError(f"connect: {os.strerror(err)}")
                self._by_fd[sock.fileno()] = viewer
                waiting[sock.fileno()] = viewer
                self._epoll.register(sock.fileno(), select.EPOLLOUT)
            if time.monotonic() > deadline:
                raise ViewerError(
                    f"{len(waiting) + len(todo)} viewers not welcomed in {timeout_s:g} s"
                )
            for fd, mask in self._epoll.poll(0.05):
                viewer = self._by_fd[fd]
                if fd in waiting and mask & select.EPOLLOUT:
                    err = viewer.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise ViewerError(f"connect: {os.strerror(err)}")
                    viewer.sock.send(viewer.request)
                    self._epoll.modify(fd, select.EPOLLIN)
                    continue
                self._read(fd, viewer, time.monotonic())
                if viewer.error:
                    raise ViewerError(f"a viewer failed before its welcome: {viewer.error}")
                if viewer.welcome is not None:
                    waiting.pop(fd, None)

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

    def _read(self, fd: int, viewer: Viewer, now: float) -> None:
        try:
            data = viewer.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            viewer.error = viewer.error or repr(exc)
            viewer.closed_with = viewer.closed_with or "reset"
            data = b""
        viewer.feed(data, now)
        if not data or viewer.error:
            self._epoll.unregister(fd)
            del self._by_fd[fd]

    def close(self) -> None:
        """Send every open viewer a close frame and close every socket."""
        for viewer in self.viewers:
            if viewer.sock.fileno() in self._by_fd:
                viewer.send_close()
            viewer.sock.close()
        self._by_fd.clear()
        self._epoll.close()


def handshake(host_port: str, path: str) -> tuple[bytes, str]:
    """The upgrade request, and the Sec-WebSocket-Accept the server must answer with."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    return request.encode(), accept


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A small (<126 bytes) masked control frame from the client."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked
