"""The worker processes of `bench_peers.py`: viewers, and the source of the events.

Every server is measured with the same viewers (`scripts.viewload`: `scripts.wsview.Viewer`s
spread over worker processes) and one source process, whose work differs only in how events
enter the server:

- giftcast: real gifts from real senders over the contract's WebSocket, paced open-loop
  (`scripts.fansend`, as in `bench_fanout.py`); an event's send instant is when its gift was
  sent, and its seq comes back in the `gift_ok`;
- a peer: one publisher connection to `/publish` sending the event JSON (`peer_event`, shaped
  like giftcast's gift event) at the same rate; event n carries seq n, and its send instant is
  the instant it was due, so a peer that makes the publisher wait is charged for the wait.

The workers are spawned by `benchkit.run_workers`, which hands every one the same `Timeline`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import orjson
from websockets.asyncio.client import connect

from scripts.benchkit import WS_MAX_SIZE_BYTES, close_all, report_ready
from scripts.fansend import SendersPlan, senders_worker, sleep_until, window_cpu
from scripts.viewload import ViewerPlan, ViewerResult, viewer_worker

PEER_ROOM_ID = 1
PEER_SENDERS = 40  # sender names cycle like giftcast's 40 bench senders


# --- plans and results --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublisherPlan:
    worker: int
    url: str  # ws://127.0.0.1:PORT/publish
    rate_per_s: float
    sender_prefix: str  # sender names look like giftcast's bench users: {prefix}{k}


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


Plan = ViewerPlan | PublisherPlan | SendersPlan
Result = ViewerResult | SourceResult


async def worker_main(plan: Plan, conn: Connection) -> Result:
    """The one entry point `run_workers` spawns; dispatches on the plan."""
    if isinstance(plan, ViewerPlan):
        return await viewer_worker(plan, conn)
    if isinstance(plan, PublisherPlan):
        return await publisher_worker(plan, conn)
    return await gift_senders_worker(plan, conn)


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


async def gift_senders_worker(plan: SendersPlan, conn: Connection) -> SourceResult:
    """bench_fanout's open-loop gift senders, with their answers turned into a SourceResult."""
    fan = await senders_worker(plan, conn)
    return SourceResult(
        plan.worker,
        sent_at=fan.sent_at,
        send_lag_s_max=fan.send_lag_s_max,
        errors=fan.errors,
        lost_requests=fan.lost,
        closed=fan.closed,
        violations=fan.violations.kept,
        cpu_s=fan.cpu_s,
    )
