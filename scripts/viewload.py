"""A worker process of viewers for the fan-out benchmarks (`bench_fanout.py`, `bench_peers.py`).

Its viewers are `scripts.wsview.Viewer`s on one `ViewerPool` (a plain epoll loop, constant
work per frame), all watching the same server. The worker is spawned by
`benchkit.run_workers`: it opens every viewer, reports ready, answers pings while the others
join, then reads until the `Timeline`'s end and returns a `ViewerResult`: per viewer the next
seq it expected and the events it skipped, the events repeated and late, sockets closed by the
server, the gifts received in the window, the latency samples of the `sampled` viewers, and
its own CPU seconds in the measured window. `latencies_ms` turns the samples of every worker
into delivery latencies.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import orjson

from scripts.benchkit import WS_CONNECT_CONCURRENCY, BenchError, Timeline
from scripts.wsclient import ClientError
from scripts.wsview import FrameTable, ViewerPool

CONNECT_TIMEOUT_S = 240.0  # every viewer of a worker connected and welcomed


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
    gaps: list[int] = field(default_factory=list)  # per viewer: events skipped, never received
    repeated: int = 0  # events a viewer received twice
    late: int = 0  # events a viewer received after a later one (out of order)
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
        res.repeated += viewer.repeated
        res.late += viewer.late
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


def latencies_ms(
    seen: list[ViewerResult], sent_at: dict[int, float], tl: Timeline, expected: int
) -> list[float]:
    """Sampled viewers' delivery latencies of the events sent in the window, ascending; an
    event a sampled viewer never received is `inf` (`expected`: how many were sent)."""
    found: list[float] = []
    for r in seen:
        for frames, times in r.samples:
            got = 0
            for index, received in zip(frames, times, strict=True):
                for seq in r.frame_gifts[index]:
                    sent = sent_at.get(seq)
                    if sent is not None and tl.measure_from <= sent < tl.stop_sending:
                        found.append((received - sent) * 1000)
                        got += 1
            found.extend([math.inf] * max(0, expected - got))
    found.sort()
    return found
