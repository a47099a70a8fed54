"""The open-loop gift senders of the fan-out benchmarks (`bench_fanout.py`, `bench_peers.py`).

One worker process holds every sender's WebSocket to the room (`websockets`' asyncio client:
a few dozen sockets, hundreds of gifts a second, cheap enough) and sends Rose gifts on a fixed
schedule whatever the answers do: sender k of S sends at `tl.start + k/R`, then every S/R
seconds (R the total rate), until `tl.stop_sending`, then awaits the last answers until
`tl.end`. It records, per acknowledged seq, the instant its gift was sent (viewers' receipts
are matched to it), the ack latencies of gifts sent in the measured window, errors by code,
requests never answered (lost), sockets closed by the server, how far behind schedule a send
ever was, contract violations in the answers, and its CPU seconds in the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from scripts.benchkit import (
    GIFT_ID,
    WS_CONNECT_CONCURRENCY,
    Timeline,
    Violations,
    close_all,
    close_label,
    open_socket,
    report_ready,
)
from scripts.wssend import answers_in


@dataclass(frozen=True, slots=True)
class SenderPlan:
    slot: int  # 0..S-1: its place in the evenly paced schedule
    tag: str  # request-id prefix, unique per sender
    token: str


@dataclass(frozen=True, slots=True)
class SendersPlan:
    worker: int
    ws_base: str  # ws://127.0.0.1:PORT
    room_id: str
    senders: tuple[SenderPlan, ...]
    total_senders: int
    rate_per_s: float  # all senders together


@dataclass(slots=True)
class SendersResult:
    worker: int
    sent: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # acknowledged seq -> send instant
    ack_latencies_ms: list[float] = field(default_factory=list)  # gifts sent in the window
    errors: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    send_lag_s_max: float = 0.0
    violations: Violations = field(default_factory=Violations)
    cpu_s: float = 0.0  # inside the measured window


async def senders_worker(plan: SendersPlan, conn: Connection) -> SendersResult:
    """Open every sender's socket, report ready, then send on schedule until the end."""
    res = SendersResult(plan.worker)
    sockets: dict[int, ClientConnection] = {}
    sem = asyncio.Semaphore(WS_CONNECT_CONCURRENCY)
    room_url = f"{plan.ws_base}/ws/rooms/{quote(plan.room_id)}?token="

    async def join(sp: SenderPlan) -> None:
        async with sem:
            sockets[sp.slot], _ = await open_socket(room_url + quote(sp.token))

    try:
        await asyncio.gather(*(join(sp) for sp in plan.senders))
        tl = await report_ready(conn, len(sockets))
        cpu = window_cpu(tl)
        await asyncio.gather(
            *(run_open_sender(sockets[sp.slot], sp, plan, tl, res) for sp in plan.senders)
        )
        await sleep_until(tl.end)
        res.cpu_s = cpu()
    finally:
        await close_all(sockets.values())
    return res


def window_cpu(tl: Timeline) -> Callable[[], float]:
    """This process's CPU seconds between `tl.measure_from` and `tl.stop_sending`; call the
    returned function after `tl.stop_sending`."""
    loop = asyncio.get_running_loop()
    marks: list[float] = []
    for instant in (tl.measure_from, tl.stop_sending):
        loop.call_at(instant, lambda: marks.append(time.process_time()))
    return lambda: marks[1] - marks[0] if len(marks) == 2 else 0.0


async def sleep_until(instant: float) -> None:
    await asyncio.sleep(max(0.0, instant - time.monotonic()))


@dataclass(slots=True)
class OpenSender:
    """One sender's requests in flight; `settled` is set once all were sent and answered."""

    pending: dict[str, float] = field(default_factory=dict)  # request id -> send instant
    done_sending: bool = False
    closed: str = ""  # the close code, if the server closed this socket
    settled: asyncio.Event = field(default_factory=asyncio.Event)


async def read_answers(
    ws: ClientConnection, state: OpenSender, tl: Timeline, res: SendersResult
) -> None:
    try:
        while True:
            raw = await ws.recv(decode=False)
            # Room events arrive on this socket too; only answers are worth parsing.
            if b"gift_ok" not in raw and b"error" not in raw:
                continue
            for answer in answers_in(orjson.loads(raw)):
                sent_at = state.pending.pop(str(answer.get("id")), None)
                if sent_at is None:
                    res.violations.add(f"an answer for no request in flight: {answer}")
                    continue
                if answer["type"] == "error":
                    res.errors[str(answer.get("code"))] += 1
                    continue
                seq = answer.get("seq")
                if not isinstance(seq, int) or seq in res.sent_at or answer.get("duplicate"):
                    res.violations.add(f"gift_ok with a bad, repeated or duplicate seq: {answer}")
                    continue
                res.sent_at[seq] = sent_at
                if tl.measure_from <= sent_at < tl.stop_sending:
                    res.ack_latencies_ms.append((time.monotonic() - sent_at) * 1000)
            if state.done_sending and not state.pending:
                state.settled.set()
    except ConnectionClosed as exc:
        state.closed = close_label(exc)


async def run_open_sender(
    ws: ClientConnection, sp: SenderPlan, plan: SendersPlan, tl: Timeline, res: SendersResult
) -> None:
    """Send on schedule whatever the answers do (open loop), then await the last answers."""
    period_s = plan.total_senders / plan.rate_per_s
    first_due = tl.start + sp.slot / plan.rate_per_s
    state = OpenSender()
    reader = asyncio.create_task(read_answers(ws, state, tl, res))
    n = 0
    try:
        while (due := first_due + n * period_s) < tl.stop_sending and not reader.done():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            request_id = f"{sp.tag}.{n}"
            n += 1
            frame = orjson.dumps({"type": "gift", "id": request_id, "gift_id": GIFT_ID, "count": 1})
            sent_at = time.monotonic()
            res.send_lag_s_max = max(res.send_lag_s_max, sent_at - due)
            state.pending[request_id] = sent_at
            res.sent += 1
            await ws.send(frame.decode())
        state.done_sending = True
        if not state.pending:
            state.settled.set()
        settled = asyncio.create_task(state.settled.wait())
        await asyncio.wait(
            {reader, settled},
            timeout=max(0.0, tl.end - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        settled.cancel()
    except ConnectionClosed as exc:
        state.closed = close_label(exc)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    res.lost += len(state.pending)
    if state.closed:
        res.closed[state.closed] += 1
