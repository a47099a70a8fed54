"""Fan-out benchmark: one room, many viewers, gifts at a steady rate; delivery latency and loss.

What it measures
----------------
One live room (hosted by its own user), `--viewers` signed-up users watching it over
`/ws/rooms/{id}?token=...`, and `--senders` users with coins sending Rose gifts open-loop at a
total of `--rate` gifts per second, paced evenly (sender k of S sends at t0 + k/R, then every
S/R seconds, whether or not earlier gifts were answered). After `--warmup` seconds it measures
for `--duration` seconds:

- achieved gifts/s (gifts acknowledged with `gift_ok`, by send time) against the target;
- viewer-events delivered per second (each `gift` event counted once per viewer);
- delivery latency: the instant a viewer received a `gift` event minus the instant its sender
  sent that gift, matched through the `seq` in the sender's `gift_ok`; both are
  `time.monotonic()` readings, system-wide on Linux, so they compare across the worker
  processes. It includes the load generator's own scheduling delay (see `send_lag_ms_max` and
  `loadgen_cpu_s`);
- the server's peak RSS (VmHWM) and the CPU seconds it used during the measured window.

Viewers accept frames that are single events or `{"type": "batch", "events": [...]}`. After
the senders stop, viewers listen `--drain` more seconds. A loss is any viewer missing any `seq`
between the first and the last `seq` acknowledged during the run, or seeing one twice; a gift
request never answered is a lost request. Any loss, a socket closed by the server, out-of-order
events or a malformed answer fails the run (exit 1).

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_fanout.py                       # 2000 viewers, 40 senders, 200/s, 10 s
    python scripts/bench_fanout.py --viewers 200 --rate 100 --duration 3 --json /tmp/fan.json

By default it starts its own server (`python -m server serve --port 0`, SQLite in a temporary
directory, the per-user gift rate limit raised to `--rate-per-user`) and stops it with SIGTERM at
the end. `--url http://127.0.0.1:PORT` targets a running server instead (`--server-pid` enables
the RSS / CPU figures). Only 127.0.0.1 and localhost are accepted; every count and duration is
bounded. Viewers are spread over `--workers` processes; the senders run in one more process of
their own, so that bursts of viewer frames do not delay the sends.

The final block prints one `name: value` per line (`events_delivered_per_s: 398000.0`), ending
with `result: PASS` or `result: FAIL`. Exit status: 0 pass, 1 a check failed, 2 bad arguments
or set-up failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import sys
import time
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

# Run as a file (`python scripts/bench_fanout.py`), sys.path[0] is scripts/ itself, so the
# `scripts` package is not importable; put the repository root first. Under
# `python -m scripts.bench_fanout` __package__ is "scripts" and this is skipped.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Ruff's E402 accepts imports after a `sys.path` change, so these need no suppression.
from scripts.benchkit import (
    GIFT_ID,
    RATE_PER_USER_MAX,
    WORKERS_MAX,
    WS_CONNECT_CONCURRENCY,
    Api,
    BenchArgs,
    RunOutcome,
    Server,
    Timeline,
    Violations,
    add_server_arguments,
    add_target_arguments,
    add_window_arguments,
    bench_main,
    bounded_gather,
    close_all,
    close_label,
    counts_text,
    cpu_figures,
    exit_on_problems,
    int_field,
    logger,
    open_socket,
    peak_rss_mib,
    percentile,
    prepare,
    report_ready,
    run_workers,
    target_problems,
    window_problems,
    ws_base_url,
)

WORKERS_READY_TIMEOUT_S = 300.0
LOADGEN_LAG_S_MAX = 0.1  # senders later than this behind schedule: figures are suspect
FRAME_CACHE_MAX = 4096  # parsed frames kept per worker: every viewer gets the same bytes
SEQ_EVENT_TYPES = frozenset({"gift", "streak_end", "room_ended"})

VIEWERS_MAX = 15_000
SENDERS_MAX = 1_000
RATE_PER_S_MAX = 5_000.0
DRAIN_S_MAX = 30.0
VIEWER_EVENTS_MAX = 50_000_000  # viewers x events: bounds the memory for the loss tables

log = logger("bench_fanout")


# --- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Args(BenchArgs):
    """The common `BenchArgs`, then this benchmark's own."""

    viewers: int
    senders: int
    rate_per_s: float
    drain_s: float


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--viewers", type=int, default=2000, help="viewer sockets (default 2000)")
    p.add_argument("--senders", type=int, default=40, help="gift senders (default 40)")
    p.add_argument("--rate", type=float, default=200.0, help="total gifts/s, open loop (200)")
    add_window_arguments(p)
    p.add_argument("--drain", type=float, default=3.0, help="seconds viewers listen after (3)")
    p.add_argument("--workers", type=int, default=2, help="viewer processes (default 2)")
    add_server_arguments(p)
    add_target_arguments(p)
    ns = p.parse_args(argv)
    args = Args.from_command_line(
        ns,
        viewers=ns.viewers,
        senders=ns.senders,
        rate_per_s=ns.rate,
        drain_s=ns.drain,
    )
    exit_on_problems(p, argument_problems(args))
    return args


def argument_problems(a: Args) -> Iterator[str]:
    if not 1 <= a.viewers <= VIEWERS_MAX:
        yield f"--viewers must be 1-{VIEWERS_MAX}"
    if not 1 <= a.senders <= SENDERS_MAX:
        yield f"--senders must be 1-{SENDERS_MAX}"
    if not 1.0 <= a.rate_per_s <= RATE_PER_S_MAX:
        yield f"--rate must be 1-{RATE_PER_S_MAX:g} gifts/s"
    yield from window_problems(a)
    if not 1.0 <= a.drain_s <= DRAIN_S_MAX:
        yield f"--drain must be 1-{DRAIN_S_MAX:g} s"
    if not 1 <= a.workers <= min(WORKERS_MAX, a.viewers):
        yield f"--workers must be 1-{WORKERS_MAX} and at most --viewers"
    if not 1 <= a.rate_per_user <= RATE_PER_USER_MAX:
        yield f"--rate-per-user must be 1-{RATE_PER_USER_MAX}"
    if a.viewers * a.rate_per_s * (a.warmup_s + a.duration_s) > VIEWER_EVENTS_MAX:
        yield f"viewers x rate x (warmup + duration) must stay under {VIEWER_EVENTS_MAX:,}"
    yield from target_problems(a)


# --- set-up of the room, viewers and senders ----------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderPlan:
    slot: int  # 0..S-1: its place in the evenly paced schedule
    tag: str  # request-id prefix, unique per sender
    token: str


@dataclass(frozen=True, slots=True)
class Fixture:
    room_id: str
    first_seq: int  # the first seq this run can produce
    viewer_tokens: list[str]
    senders: list[SenderPlan]
    recharges: int


async def set_up(api: Api, args: Args, run: str) -> Fixture:
    prices = await api.prices()
    per_sender = math.ceil(args.rate_per_s / args.senders * (args.warmup_s + args.duration_s + 1))
    recharges = max(1, math.ceil((per_sender + 1) * prices.gift_coins / prices.package_coins))

    host = await api.sign_up(f"bf{run}h")
    room_id = await api.go_live(host, "fan-out bench")
    first_seq = int_field(await api.call("GET", f"/api/rooms/{quote(room_id)}"), "seq") + 1
    viewers = await bounded_gather(args.viewers, lambda i: api.sign_up(f"bf{run}v{i}"))

    async def sender(i: int) -> SenderPlan:
        account = await api.sign_up_with_coins(
            f"bf{run}s{i}", prices.package_id, recharges, f"bench-{run}-{i}"
        )
        return SenderPlan(i, f"{run}s{i}", account.token)

    senders = await bounded_gather(args.senders, sender)
    return Fixture(room_id, first_seq, [v.token for v in viewers], senders, recharges)


# --- the load-generating workers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    worker: int
    ws_base: str
    room_id: str
    first_seq: int
    seq_slots: int  # size of each viewer's seq table, from first_seq on
    viewer_tokens: tuple[str, ...]
    senders: tuple[SenderPlan, ...]
    total_senders: int
    rate_per_s: float


@dataclass(slots=True)
class WorkerResult:
    """What a worker reports; per-seq tables are indexed by `seq - first_seq`."""

    worker: int
    viewer_counts: list[bytes] = field(default_factory=list)  # per viewer: times each seq seen
    viewers_closed: Counter[str] = field(default_factory=Counter)
    recv_times: list[array[float]] = field(default_factory=list)  # per seq: viewers' receipts
    delivered_in_window: int = 0
    out_of_order: int = 0
    out_of_range: int = 0
    sent: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # acknowledged seq -> send instant
    ack_latencies_ms: list[float] = field(default_factory=list)  # gifts sent in the window
    errors: Counter[str] = field(default_factory=Counter)
    senders_closed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    send_lag_s_max: float = 0.0
    violations: Violations = field(default_factory=Violations)
    cpu_s: float = 0.0


def seq_events(raw: bytes) -> tuple[tuple[int, bool], ...]:
    """(seq, is_gift) for each numbered event of a frame, a single event or a batch."""
    message = orjson.loads(raw)
    if isinstance(message, dict) and message.get("type") == "batch":
        items = message.get("events")
    else:
        items = [message]
    found: list[tuple[int, bool]] = []
    for event in items if isinstance(items, list) else []:
        if isinstance(event, dict) and event.get("type") in SEQ_EVENT_TYPES:
            seq = event.get("seq")
            if isinstance(seq, int):
                found.append((seq, event["type"] == "gift"))
    return tuple(found)


class FrameCache:
    """Every viewer of a worker receives the same frame bytes; parse each frame once."""

    def __init__(self) -> None:
        self._parsed: dict[bytes, tuple[tuple[int, bool], ...]] = {}

    def events(self, raw: bytes) -> tuple[tuple[int, bool], ...]:
        found = self._parsed.get(raw)
        if found is None:
            found = seq_events(raw)
            if len(self._parsed) >= FRAME_CACHE_MAX:
                self._parsed.clear()
            self._parsed[raw] = found
        return found


async def run_viewer(
    ws: ClientConnection,
    counts: bytearray,
    plan: WorkerPlan,
    tl: Timeline,
    res: WorkerResult,
    cache: FrameCache,
) -> None:
    """Count every numbered event by seq until `tl.end`; note the first receipt time."""
    base, slots, times = plan.first_seq, plan.seq_slots, res.recv_times
    window_from, window_to = tl.measure_from, tl.stop_sending
    last = base - 1
    try:
        async with asyncio.timeout(max(0.0, tl.end - time.monotonic())):
            while True:
                raw = await ws.recv(decode=False)
                now = time.monotonic()
                for seq, is_gift in cache.events(raw):
                    index = seq - base
                    if not 0 <= index < slots:
                        res.out_of_range += 1
                        continue
                    seen = counts[index]
                    if seen:  # a duplicate: counted, judged by the parent
                        counts[index] = min(255, seen + 1)
                        continue
                    counts[index] = 1
                    if seq < last:
                        res.out_of_order += 1
                    last = max(last, seq)
                    if is_gift:
                        times[index].append(now)
                        if window_from <= now < window_to:
                            res.delivered_in_window += 1
    except TimeoutError:
        return
    except ConnectionClosed as exc:
        res.viewers_closed[close_label(exc)] += 1


def answers_in(message: Any) -> list[dict[str, Any]]:
    """The `gift_ok` / `error` answers in a frame, a single message or a batch."""
    candidates = message.get("events", []) if isinstance(message, dict) else []
    return [
        m
        for m in [message, *(candidates if isinstance(candidates, list) else [])]
        if isinstance(m, dict) and m.get("type") in ("gift_ok", "error")
    ]


@dataclass(slots=True)
class OpenSender:
    """One sender's requests in flight; `settled` is set once all were sent and answered."""

    pending: dict[str, float] = field(default_factory=dict)  # request id -> send instant
    done_sending: bool = False
    closed: str = ""  # the close code, if the server closed this socket
    settled: asyncio.Event = field(default_factory=asyncio.Event)


async def read_answers(
    ws: ClientConnection, state: OpenSender, tl: Timeline, res: WorkerResult
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
    ws: ClientConnection, sp: SenderPlan, plan: WorkerPlan, tl: Timeline, res: WorkerResult
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
        res.senders_closed[state.closed] += 1


async def worker_main(plan: WorkerPlan, conn: Connection) -> WorkerResult:
    res = WorkerResult(plan.worker, recv_times=[array("d") for _ in range(plan.seq_slots)])
    viewers: list[ClientConnection] = []
    senders: dict[int, ClientConnection] = {}
    sem = asyncio.Semaphore(WS_CONNECT_CONCURRENCY)
    room_url = f"{plan.ws_base}/ws/rooms/{quote(plan.room_id)}?token="

    async def join_viewer(token: str) -> None:
        async with sem:
            ws, welcome = await open_socket(room_url + quote(token))
        viewers.append(ws)
        if welcome.get("seq") != plan.first_seq - 1:
            res.violations.add(
                f"welcome seq {welcome.get('seq')!r}, room was at {plan.first_seq - 1}"
            )

    async def join_sender(sp: SenderPlan) -> None:
        async with sem:
            senders[sp.slot], _ = await open_socket(room_url + quote(sp.token))

    try:
        await asyncio.gather(
            *(join_viewer(t) for t in plan.viewer_tokens), *(join_sender(s) for s in plan.senders)
        )
        tl = await report_ready(conn, len(viewers) + len(senders))
        cpu_before = time.process_time()
        cache = FrameCache()
        counts = [bytearray(plan.seq_slots) for _ in viewers]
        watching = [
            asyncio.create_task(run_viewer(ws, c, plan, tl, res, cache))
            for ws, c in zip(viewers, counts, strict=True)
        ]
        await asyncio.gather(
            *(run_open_sender(senders[s.slot], s, plan, tl, res) for s in plan.senders)
        )
        await asyncio.gather(*watching)
        res.viewer_counts = [bytes(c) for c in counts]
        res.cpu_s = time.process_time() - cpu_before
    finally:
        await close_all([*viewers, *senders.values()])
    return res


def run_load(
    args: Args, ws_base: str, fx: Fixture, server_pid: int | None
) -> RunOutcome[WorkerResult]:
    seq_slots = int(args.rate_per_s * (args.warmup_s + args.duration_s)) + 2 * args.senders + 1000
    # Viewers over `--workers` processes; the senders in one more of their own, so that a burst
    # of viewer frames never delays a send past its schedule.
    groups: list[tuple[tuple[str, ...], tuple[SenderPlan, ...]]] = [
        (tuple(fx.viewer_tokens[w :: args.workers]), ()) for w in range(args.workers)
    ]
    groups.append(((), tuple(fx.senders)))
    plans = [
        WorkerPlan(
            worker=w,
            ws_base=ws_base,
            room_id=fx.room_id,
            first_seq=fx.first_seq,
            seq_slots=seq_slots,
            viewer_tokens=viewer_tokens,
            senders=senders,
            total_senders=args.senders,
            rate_per_s=args.rate_per_s,
        )
        for w, (viewer_tokens, senders) in enumerate(groups)
    ]
    return run_workers(
        worker_main,
        plans,
        args,
        after_s=args.drain_s,
        ready_timeout_s=WORKERS_READY_TIMEOUT_S,
        server_pid=server_pid,
        log=log,
    )


# --- figures and checks -------------------------------------------------------------------


def figures_of(
    args: Args, fx: Fixture, run: RunOutcome[WorkerResult]
) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    res, tl, base = run.results, run.timeline, fx.first_seq
    sent_at: dict[int, float] = {}
    acked_twice = 0
    for r in res:
        acked_twice += len(sent_at.keys() & r.sent_at.keys())
        sent_at |= r.sent_at
    if acked_twice:
        failures.append(f"{acked_twice} seqs were acknowledged to two different gifts")
    if not sent_at:
        failures.append("no gift was acknowledged")
    first, last = (min(sent_at), max(sent_at)) if sent_at else (base, base - 1)

    # Loss: every viewer must have seen every seq in [first, last] exactly once.
    missing = doubled = viewers_missing = 0
    for r in res:
        for counts in r.viewer_counts:
            window = counts[first - base : last - base + 1]
            zeros, ones = window.count(0), window.count(1)
            missing += zeros
            doubled += len(window) - zeros - ones
            viewers_missing += zeros > 0
    if missing:
        failures.append(
            f"{missing} viewer-events lost: {viewers_missing} viewers missed seqs in "
            f"[{first}, {last}]"
        )
    if doubled:
        failures.append(f"{doubled} viewer-events delivered twice (same seq to the same viewer)")

    latencies: list[float] = []
    for r in res:
        for index, times in enumerate(r.recv_times):
            sent = sent_at.get(base + index)
            if times and sent is not None and tl.measure_from <= sent < tl.stop_sending:
                latencies.extend([(t - sent) * 1000 for t in times])
    latencies.sort()
    acks = sorted(x for r in res for x in r.ack_latencies_ms)
    errors: Counter[str] = Counter()
    viewers_closed: Counter[str] = Counter()
    senders_closed: Counter[str] = Counter()
    for r in res:
        errors.update(r.errors)
        viewers_closed.update(r.viewers_closed)
        senders_closed.update(r.senders_closed)
    lost_requests = sum(r.lost for r in res)
    out_of_order = sum(r.out_of_order for r in res)
    out_of_range = sum(r.out_of_range for r in res)
    violations = sum(r.violations.count for r in res)
    if lost_requests:
        failures.append(f"{lost_requests} gift requests never answered (lost)")
    if viewers_closed or senders_closed:
        failures.append(
            f"sockets closed by the server: viewers {dict(viewers_closed)}, "
            f"senders {dict(senders_closed)}"
        )
    if out_of_order or out_of_range:
        failures.append(f"{out_of_order} events out of order, {out_of_range} with unexpected seqs")
    if violations:
        examples = [v for r in res for v in r.violations.kept][:5]
        failures.append(f"{violations} contract violations, e.g. {examples}")
    in_window = sum(1 for t in sent_at.values() if tl.measure_from <= t < tl.stop_sending)
    send_lag_s = max(r.send_lag_s_max for r in res)
    if send_lag_s > LOADGEN_LAG_S_MAX:
        log(
            f"warning: senders fell {send_lag_s * 1000:.0f} ms behind schedule; the load generator"
            " (or another process) is short of CPU, and latencies include its delay"
        )
    figures: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "viewers": args.viewers,
        "senders": args.senders,
        "workers": args.workers,
        "warmup_s": args.warmup_s,
        "duration_s": args.duration_s,
        "drain_s": args.drain_s,
        "rate_per_user": args.rate_per_user if args.url is None else "server's own",
        "gifts_per_s_target": args.rate_per_s,
        "gifts_sent": sum(r.sent for r in res),
        "gifts_acked": len(sent_at),
        "gifts_per_s_achieved": in_window / args.duration_s,
        "events_delivered_per_s": sum(r.delivered_in_window for r in res) / args.duration_s,
        "delivery_latency_ms_p50": percentile(latencies, 50),
        "delivery_latency_ms_p90": percentile(latencies, 90),
        "delivery_latency_ms_p99": percentile(latencies, 99),
        "delivery_latency_ms_max": latencies[-1] if latencies else None,
        "ack_latency_ms_p50": percentile(acks, 50),
        "ack_latency_ms_p99": percentile(acks, 99),
        "send_lag_ms_max": send_lag_s * 1000,
        "loadgen_behind_schedule": send_lag_s > LOADGEN_LAG_S_MAX,
        "errors": sum(errors.values()),
        "errors_by_code": counts_text(errors),
        "lost_requests": lost_requests,
        "seq_first": first,
        "seq_last": last,
        "lost_events": missing,
        "doubled_events": doubled,
        "viewers_with_loss": viewers_missing,
        "out_of_order": out_of_order,
        "contract_violations": violations,
        **cpu_figures(run.server_cpu_s, args.duration_s, sum(r.cpu_s for r in res)),
    }
    return figures, failures


# --- main ---------------------------------------------------------------------------------


def benchmark(args: Args, server: Server) -> tuple[dict[str, Any], list[str]]:
    run_id = secrets.token_hex(3)
    fx = prepare(
        server,
        f"setting up {args.viewers} viewers and {args.senders} senders",
        log,
        lambda api: set_up(api, args, run_id),
    )
    log(f"connecting {args.viewers + args.senders} sockets from {args.workers} workers")
    outcome = run_load(args, ws_base_url(server), fx, server.pid)
    figures, failures = figures_of(args, fx, outcome)
    figures["server_peak_rss_mib"] = peak_rss_mib(server.pid)
    return figures, failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main(
        "bench_fanout",
        args,
        lambda server: benchmark(args, server),
        sockets=args.viewers + args.senders,
        too_many_sockets=f"{args.viewers + args.senders} sockets exceed the limit",
        audit_token_needed=False,
    )


if __name__ == "__main__":
    sys.exit(main())
