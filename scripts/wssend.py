"""Cheap gift senders: a thousand WebSockets in one process sending gifts, on one epoll loop.

`websockets`' asyncio client costs tens of microseconds a frame, and a sender's socket also
receives its room's event frames, which it must read but has no use for. So a `Sender` is a
`scripts.wsclient.WsClient` (non-blocking socket, just enough RFC 6455) whose work per frame is
one `bytes in` test: only a frame naming one of its own request ids (`"<tag>.`, where the
request ids are `<tag>.<n>`) is parsed; room events are dropped unparsed. Gifts go out as
masked text frames through a small per-socket output buffer.

`SenderPool` sends in one of two ways (`pace_per_s`):

- closed loop (0): a sender keeps exactly one gift outstanding: it sends at `start`, then again
  as soon as the answer came, until `stop_sending`; a latency counts from the instant it sent;
- open loop (> 0): sender j of N is due to send gift k at `start + j / (N x pace) + k / pace`
  (phases staggered over the senders, so the total is an even N x pace a second), whatever the
  answers do, with up to `in_flight_max` gifts unanswered. A gift due while that many are
  unanswered waits for an answer and is sent late (`capped_sends` counts such gifts, `behind`
  is how late the last send was); its latency still counts from the instant it was DUE, so a
  slow server is charged for the gifts it held back (no coordinated omission). Gifts due
  before `stop_sending` are sent even after it, until `end`.

Either way the contract's answers steer a sender: `rate_limited` holds its sends until
`retry_after_ms` has passed (the held gifts count from when they were due), and
`insufficient_coins` stops it. Every answer is handed to `on_answer(sender, answer, origin,
now)`, `origin` the instant its latency counts from (None: no request of this sender was
waiting for that id). A socket the server closes stops its sender; what it had in flight
stays in `pending`, which the caller counts as lost. Only 127.0.0.1.
"""

from __future__ import annotations

import heapq
import math
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import orjson

from scripts.wsclient import OP_TEXT, ClientPool, WsClient, client_frame

GIFT_IN_FLIGHT_MAX = 32  # open loop: a sender's unanswered gifts; the server holds up to 64
OUT_BYTES_MAX = 1024 * 1024  # a sender's unsent bytes; past it the server is not reading

AnswerHandler = Callable[["Sender", dict[str, Any], float | None, float], None]


def answers_in(message: Any) -> list[dict[str, Any]]:
    """The `gift_ok` / `error` answers in a frame, a single message or a batch."""
    candidates = message.get("events", []) if isinstance(message, dict) else []
    return [
        m
        for m in [message, *(candidates if isinstance(candidates, list) else [])]
        if isinstance(m, dict) and m.get("type") in ("gift_ok", "error")
    ]


class Sender(WsClient):
    """One gift sender: its requests in flight, its schedule, why it stopped."""

    def __init__(
        self,
        sock: socket.socket,
        host_port: str,
        path: str,
        *,
        slot: int,
        index: int,
        tag: str,
        gift_id: str,
        on_answer: AnswerHandler,
    ) -> None:
        super().__init__(sock, host_port, path)
        self.slot = slot  # its place in its pool's `clients`
        self.index = index  # the caller's number for it
        self.tag = tag
        self._needle = b'"' + tag.encode() + b"."
        self._gift_id = gift_id
        self._on_answer = on_answer
        self.pending: dict[str, float] = {}  # request id -> the instant its latency counts from
        self.sent = 0
        self.next_due = math.inf  # open loop: when the next gift is due
        self.resume_at = 0.0  # after `rate_limited`: no send before this instant
        self.stopped = ""  # why it stopped sending before the end, if it did
        self.capped = False  # open loop: a gift is due but `in_flight_max` are unanswered
        self.capped_sends = 0  # gifts sent late because of that
        self.behind_s_max = 0.0  # open loop: the latest a gift was sent after it was due
        self.wake_at = math.inf  # the pool's timer for this sender
        self.out = b""  # framed bytes the socket did not take yet
        self.watching_out = False  # the pool waits for the socket to take `out`

    def on_message(self, raw: bytes, now: float) -> None:
        if self._needle not in raw:  # a room event: nothing of this sender's
            return
        for answer in answers_in(orjson.loads(raw)):
            request_id = answer.get("id")
            origin = self.pending.pop(request_id, None) if isinstance(request_id, str) else None
            if origin is not None and answer["type"] == "error":
                code = answer.get("code")
                if code == "rate_limited":
                    wait_ms = answer.get("retry_after_ms")
                    wait_s = wait_ms / 1000 if isinstance(wait_ms, int) else 0.1
                    self.resume_at = max(self.resume_at, now + wait_s)
                elif code == "insufficient_coins":
                    self.stopped = "insufficient_coins"
            self._on_answer(self, answer, origin, now)

    def send_gift(self, origin: float) -> None:
        """Send the next gift; its latency will count from `origin`."""
        request_id = f"{self.tag}.{self.sent}"
        self.sent += 1
        self.pending[request_id] = origin
        message = {"type": "gift", "id": request_id, "gift_id": self._gift_id, "count": 1}
        self.write(client_frame(OP_TEXT, orjson.dumps(message)))

    def write(self, data: bytes) -> None:
        """Send `data` now as far as the socket takes it; keep the rest in `out`."""
        if not self.out:
            try:
                data = data[self.sock.send(data) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                self.error = self.error or repr(exc)
                self.closed_with = self.closed_with or "reset"
                return
        self.out += data
        if len(self.out) > OUT_BYTES_MAX:
            self.error = f"over {OUT_BYTES_MAX} bytes unsent: the server stopped reading"
            self.closed_with = self.closed_with or "not reading"

    def done(self, stop_sending: float) -> bool:
        """Nothing in flight, nothing more to send."""
        return not self.pending and bool(
            self.stopped or self.error or self.next_due >= stop_sending
        )


class SenderPool(ClientPool[Sender]):
    """Many senders of one server in one process, driven by a plain epoll loop (module doc)."""

    def __init__(self, host_port: str, pace_per_s: float, in_flight_max: int) -> None:
        super().__init__(host_port)
        self.pace_per_s = pace_per_s
        self.in_flight_max = in_flight_max if pace_per_s else 1
        self._timers: list[tuple[float, int]] = []  # (instant, index in self.clients)
        self._stop_sending = -math.inf  # nothing is sent before `run` sets it

    def idle(self, until: Callable[[], bool]) -> None:
        """Read (and answer pings) until `until()`, sending nothing."""
        while not until():
            self._round(0.05)

    def run(
        self,
        start: float,
        stop_sending: float,
        end: float,
        phases: list[float],
        tick: Callable[[float], None],
    ) -> None:
        """Send from `start` (sender i's first gift `phases[i]` after it, open loop) until
        `stop_sending`; return once every sender is done or at `end`. `tick(now)` runs after
        each round."""
        self._stop_sending = stop_sending
        for sender in self.clients:
            if self.pace_per_s:
                sender.next_due = start + phases[sender.slot]
            self._wake(sender, sender.next_due if self.pace_per_s else start)
        while True:
            now = time.monotonic()
            if now >= end or (now >= stop_sending and self._all_done()):
                return
            timers = self._timers
            while timers and timers[0][0] <= now:
                at, slot = heapq.heappop(timers)
                sender = self.clients[slot]
                if at == sender.wake_at:
                    sender.wake_at = math.inf
                self._pump(sender, now)
                self._settle(sender.sock.fileno(), sender)
            wait = min(end, timers[0][0] if timers else end) - time.monotonic()
            if now >= stop_sending:
                wait = min(wait, 0.05)  # look again whether everyone is done
            self._round(max(0.0, wait))
            tick(time.monotonic())

    # --- inside the loop ----------------------------------------------------------------

    def _round(self, wait_s: float) -> None:
        """One `epoll.poll`: flush, read and pump every ready sender."""
        ready = self._epoll.poll(wait_s, len(self._by_fd) + 1)
        now = time.monotonic()
        for fd, events in ready:
            sender = self._by_fd.get(fd)
            if sender is None:
                continue
            if events & select.EPOLLOUT and sender.out:
                out, sender.out = sender.out, b""
                sender.write(out)
            if events & ~select.EPOLLOUT:
                self._read(fd, sender, now)
            if not sender.error:
                self._pump(sender, now)
            self._settle(fd, sender)

    def _pump(self, sender: Sender, now: float) -> None:
        """Send what is due now; set the timer for what is due later."""
        if sender.stopped or sender.error or self._stop_sending == -math.inf:
            return
        stop, cap = self._stop_sending, self.in_flight_max
        if not self.pace_per_s:  # closed loop: the next gift once the last was answered
            if sender.pending or now >= stop:
                return
            if now < sender.resume_at:
                self._wake(sender, sender.resume_at)
                return
            sender.send_gift(now)
        else:
            while sender.next_due <= now and sender.next_due < stop and now >= sender.resume_at:
                if len(sender.pending) >= cap:
                    sender.capped = True
                    break
                if sender.capped:
                    sender.capped_sends += 1
                sender.behind_s_max = max(sender.behind_s_max, now - sender.next_due)
                sender.send_gift(sender.next_due)
                sender.next_due += 1.0 / self.pace_per_s
            else:
                sender.capped = False
            if sender.next_due < stop and not sender.capped:
                self._wake(sender, max(sender.next_due, sender.resume_at))

    def _wake(self, sender: Sender, at: float) -> None:
        if at < sender.wake_at:
            sender.wake_at = at
            heapq.heappush(self._timers, (at, sender.slot))

    def _settle(self, fd: int, sender: Sender) -> None:
        """After a send or a read: drop a failed sender; watch for room to write `out`."""
        if sender.error:
            if fd in self._by_fd:
                self._epoll.unregister(fd)
                del self._by_fd[fd]
            sender.stopped = sender.stopped or f"closed {sender.closed_with}"
        elif bool(sender.out) != sender.watching_out and fd in self._by_fd:
            sender.watching_out = bool(sender.out)
            mask = select.EPOLLIN | (select.EPOLLOUT if sender.watching_out else 0)
            self._epoll.modify(fd, mask)

    def _all_done(self) -> bool:
        return all(sender.done(self._stop_sending) for sender in self.clients)
