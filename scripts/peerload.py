"""The worker processes of `bench_peers.py`: viewers, and the source of the events.

Every server is measured with the same viewers (`scripts.wsview.Viewer`, spread over worker
processes) and one source process, whose work differs only in how events enter the server:

- giftcast: real gifts from real senders over the contract's WebSocket, paced open-loop
  (`bench_fanout.run_open_sender`); an event's send instant is when its gift was sent, and its
  seq comes back in the `gift_ok`;
- a peer: one publisher connection to `/publish` sending the event JSON (`peer_event`, shaped
  like giftcast's gift event) at the same rate; event n carries seq n, and its send instant is
  the instant it was due, so a peer that makes the publisher wait is charged for the wait.

The workers are spawned by `benchkit.run_workers`, which hands every one the same `Timeline`.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection, connect

from scripts import bench_fanout
from scripts.benchkit import (
    WS_CONNECT_CONCURRENCY,
    WS_MAX_SIZE_BYTES,
    BenchError,
    Timeline,
    close_all,
    open_socket,
    report_ready,
)
from scripts.wsclient import ClientError
from scripts.wsview import FrameTable, ViewerPool

CONNECT_TIMEOUT_S = 240.0  # every viewer of a worker connected and welcomed
PEER_ROOM_ID = 1
PEER_SENDERS = 40  # sender names cycle like giftcast's 40 bench senders


# --- plans and results --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ViewerPlan:
    worker: int
    host_port: str  # 127.0.0.1:PORT
    viewers: tuple[tuple[str, bool], ...]  # (request path, sampled for latency) per viewer
    first_seq: int  # the seq of the first event
    welcome_seq: int | None  # the seq a welcome must carry (giftcast), None for peers
    pause_s: float  # between rounds of reads (wsview.ViewerPool)


@dataclass(slots=True)
class ViewerResult:
    worker: int
    next_seqs: list[int] = field(default_factory=list)  # per viewer, at the end
    gaps: list[int] = field(default_factory=list)  # per viewer
    repeated: int = 0
    delivered_in_window: int = 0
    gifts_received: int = 0
    closed: Counter[str] = field(default_factory=Counter)
    welcome_mismatches: int = 0
    frame_gifts: list[tuple[int, ...]] = field(default_factory=list)  # gift seqs per frame
    samples: list[tuple[array[int], array[float]]] = field(default_factory=list)
    sample_gift: bytes = b""  # one gift event as received, to compare sizes
    cpu_s: float = 0.0  # inside the measured window
    reads_per_round: float = 0.0
    round_s_max: float = 0.0


@dataclass(frozen=True, slots=True)
class PublisherPlan:
    worker: int
    url: str  # ws://127.0.0.1:PORT/publish
    rate_per_s: float
    sender_prefix: str  # sender names look like giftcast's bench users: {prefix}{k}


@dataclass(frozen=True, slots=True)
class GiftSendersPlan:
    worker: int
    fanout: bench_fanout.WorkerPlan  # bench_fanout's plan, with senders only


@dataclass(slots=True)
class SourceResult:
    worker: int
    sent_at: dict[int, float] = field(default_factory=dict)  # seq -> send instant
    send_lag_s_max: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    lost_requests: int = 0
    closed: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # inside the measured window


Plan = ViewerPlan | PublisherPlan | GiftSendersPlan
Result = ViewerResult | SourceResult


async def worker_main(plan: Plan, conn: Connection) -> Result:
    """The one entry point `run_workers` spawns; dispatches on the plan."""
    if isinstance(plan, ViewerPlan):
        return await viewer_worker(plan, conn)
    if isinstance(plan, PublisherPlan):
        return await publisher_worker(plan, conn)
    return await gift_senders_worker(plan, conn)


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


# --- viewers ------------------------------------------------------------------------------


async def viewer_worker(plan: ViewerPlan, conn: Connection) -> ViewerResult:
    """Runs synchronously (a `ViewerPool`, not asyncio): this process does nothing else."""
    table = FrameTable()
    pool = ViewerPool(plan.host_port, table, plan.pause_s)
    res = ViewerResult(plan.worker)
    try:
        pool.connect(plan.viewers, WS_CONNECT_CONCURRENCY, CONNECT_TIMEOUT_S)
        for viewer in pool.viewers:
            viewer.next_seq = plan.first_seq
            assert viewer.welcome is not None
            if plan.welcome_seq is not None and viewer.welcome.get("seq") != plan.welcome_seq:
                res.welcome_mismatches += 1
        conn.send(("ready", len(pool.viewers)))
        pool.serve(until=conn.poll, tick=lambda now: None)  # pings answered while others join
        tl: Timeline = conn.recv()
        table.window_from, table.window_to = tl.measure_from, tl.stop_sending
        marks: list[float] = []

        def tick(now: float) -> None:
            if len(marks) < 2 and now >= (tl.measure_from, tl.stop_sending)[len(marks)]:
                marks.append(time.process_time())

        pool.rounds = pool.reads = 0
        pool.round_s_max = 0.0
        pool.serve(until=lambda: time.monotonic() >= tl.end, tick=tick)
        res.reads_per_round = pool.reads / max(1, pool.rounds)
        res.round_s_max = pool.round_s_max
        res.cpu_s = marks[1] - marks[0] if len(marks) == 2 else 0.0
    except ClientError as exc:
        raise BenchError(str(exc)) from None
    finally:
        pool.close()
    for viewer in pool.viewers:
        res.next_seqs.append(viewer.next_seq)
        res.gaps.append(viewer.gaps)
        res.repeated += viewer.repeated + viewer.late  # a duplicate or out of order
        res.delivered_in_window += viewer.delivered_in_window
        res.gifts_received += viewer.gifts_received
        if viewer.closed_with:
            res.closed[viewer.closed_with] += 1
        if viewer.sampled:
            res.samples.append((viewer.sample_frames, viewer.sample_times))
    res.frame_gifts = [info.gift_seqs for info in table.frames]
    res.sample_gift = first_gift_event(table)
    return res


def first_gift_event(table: FrameTable) -> bytes:
    for info in table.frames:
        if info.gift_seqs:
            message = orjson.loads(info.raw)
            events = message["events"] if message.get("type") == "batch" else [message]
            for event in events:
                if event.get("type") == "gift":
                    return orjson.dumps(event)
    return b""


# --- the peers' publisher -----------------------------------------------------------------


def peer_event(seq: int, at_ms: int, sender_prefix: str) -> bytes:
    """Event `seq` for a peer: a Rose in a streak, with the fields and about the size of the
    `gift` event giftcast sends (`at` is the wall-clock instant it was due)."""
    k = seq % PEER_SENDERS
    name = f"{sender_prefix}{k}"
    streak_total = seq // PEER_SENDERS + 1
    seconds, millis = divmod(at_ms, 1000)
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return orjson.dumps(
        {
            "type": "gift",
            "seq": seq,
            "at": at,
            "room": PEER_ROOM_ID,
            "sender": {"id": 5002 + k, "name": name},
            "gift": {"id": "rose", "name": "Rose", "coins": 1, "animation": "small"},
            "count": 1,
            "coins": 1,
            "diamonds": 1,
            "streak": {"id": 1 + k, "total": streak_total, "ended": False},
            "shoutout": f"{name} sent Rose x{streak_total}",
            "first": streak_total == 1,
        }
    )


async def publisher_worker(plan: PublisherPlan, conn: Connection) -> SourceResult:
    """Send event 1, 2, ... at `rate_per_s` from `tl.start` until `tl.stop_sending`, whatever
    the server does (open loop); keep the connection open until `tl.end`."""
    res = SourceResult(plan.worker)
    ws = await connect(
        plan.url, compression=None, max_size=WS_MAX_SIZE_BYTES, ping_interval=None, proxy=None
    )
    try:
        tl = await report_ready(conn, 1)
        cpu = window_cpu(tl)
        wall_offset = time.time() - time.monotonic()
        period_s = 1.0 / plan.rate_per_s
        seq = 0
        while (due := tl.start + seq * period_s) < tl.stop_sending:
            await sleep_until(due)
            seq += 1
            res.sent_at[seq] = due
            res.send_lag_s_max = max(res.send_lag_s_max, time.monotonic() - due)
            event = peer_event(seq, int((due + wall_offset) * 1000), plan.sender_prefix)
            await ws.send(event.decode())
        await sleep_until(tl.end)
        res.cpu_s = cpu()
    finally:
        await close_all([ws])
    return res


# --- giftcast's gift senders --------------------------------------------------------------


async def gift_senders_worker(plan: GiftSendersPlan, conn: Connection) -> SourceResult:
    """bench_fanout's open-loop gift senders, with their answers turned into a SourceResult."""
    fp = plan.fanout
    fan = bench_fanout.WorkerResult(fp.worker)
    sockets: dict[int, ClientConnection] = {}
    sem = asyncio.Semaphore(WS_CONNECT_CONCURRENCY)
    room_url = f"{fp.ws_base}/ws/rooms/{quote(fp.room_id)}?token="

    async def join(sp: bench_fanout.SenderPlan) -> None:
        async with sem:
            sockets[sp.slot], _ = await open_socket(room_url + quote(sp.token))

    try:
        await asyncio.gather(*(join(sp) for sp in fp.senders))
        tl = await report_ready(conn, len(sockets))
        cpu = window_cpu(tl)
        await asyncio.gather(
            *(bench_fanout.run_open_sender(sockets[sp.slot], sp, fp, tl, fan) for sp in fp.senders)
        )
        await sleep_until(tl.end)
        cpu_s = cpu()
    finally:
        await close_all(sockets.values())
    return SourceResult(
        plan.worker,
        sent_at=fan.sent_at,
        send_lag_s_max=fan.send_lag_s_max,
        errors=fan.errors,
        lost_requests=fan.lost,
        closed=fan.senders_closed,
        violations=fan.violations.kept,
        cpu_s=cpu_s,
    )
