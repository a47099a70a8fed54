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
  sent that gift, matched through the `seq` in the sender's `gift_ok`, over the gifts sent in
  the window, for up to 200 sampled viewers spread over the workers; both are
  `time.monotonic()` readings, system-wide on Linux, so they compare across the worker
  processes. It includes the load generator's own delay (see `send_lag_ms_max`, the CPU
  figures below and `loadgen_round_ms_max`);
- the server's peak RSS (VmHWM) and the CPU seconds it used during the measured window;
- the load generator's CPU seconds in the window, viewers and senders apart, and each worker
  process's share of a core (`loadgen_worker_cores`, viewers first, the senders last); a
  worker above 0.9 of a core prints a warning (it, not the server, may be what was measured).

Viewers are `scripts/wsview.py`'s (`scripts/viewload.py` runs them): non-blocking sockets read
by a plain epoll loop, each distinct frame parsed once per process, a viewer tracking the next
`seq` it expects, so a frame costs a viewer a comparison however many events it carries. A
viewer process rests 5 ms between rounds of reads, so receipt instants are up to 5 ms plus one
round late. Frames are single events or `{"type": "batch", "events": [...]}`. After the
senders stop, viewers listen `--drain` more seconds. A loss is any viewer missing any `seq`
from the run's first up to the last acknowledged; a viewer receiving a `seq` twice (doubled)
or after a later one (out of order) is counted apart; a gift request never answered is a lost
request. Any of these, a socket closed by the server, a welcome at the wrong seq or a
malformed answer fails the run (exit 1).

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_fanout.py                       # 2000 viewers, 40 senders, 200/s, 10 s
    python scripts/bench_fanout.py --viewers 200 --rate 100 --duration 3 --json /tmp/fan.json

By default it starts its own server (`python -m server serve --port 0`, SQLite in a temporary
directory, the per-user gift rate limit raised to `--rate-per-user`) and stops it with SIGTERM at
the end. `--url http://127.0.0.1:PORT` targets a running server instead (`--server-pid` enables
the RSS / CPU figures). Only 127.0.0.1 and localhost are accepted; every count and duration is
bounded. Viewers are spread over `--workers` processes; the senders (`scripts/fansend.py`,
`websockets`' asyncio client) run in one more process of their own, so that bursts of viewer
frames do not delay the sends.

The final block prints one `name: value` per line (`events_delivered_per_s: 398000.0`), ending
with `result: PASS` or `result: FAIL`. Exit status: 0 pass, 1 a check failed, 2 bad arguments
or set-up failure.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Run as a file (`python scripts/bench_fanout.py`), sys.path[0] is scripts/ itself, so the
# `scripts` package is not importable; put the repository root first. Under
# `python -m scripts.bench_fanout` __package__ is "scripts" and this is skipped.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Ruff's E402 accepts imports after a `sys.path` change, so these need no suppression.
from scripts.benchkit import (
    RATE_PER_USER_MAX,
    WORKERS_MAX,
    Api,
    BenchArgs,
    RunOutcome,
    Server,
    add_server_arguments,
    add_target_arguments,
    add_window_arguments,
    bench_main,
    bounded_gather,
    counts_text,
    cpu_figures,
    exit_on_problems,
    int_field,
    logger,
    peak_rss_mib,
    percentile,
    prepare,
    run_workers,
    target_problems,
    window_problems,
)
from scripts.fansend import SenderPlan, SendersPlan, SendersResult, senders_worker
from scripts.viewload import ViewerPlan, ViewerResult, latencies_ms, viewer_worker

WORKERS_READY_TIMEOUT_S = 300.0
LOADGEN_LAG_S_MAX = 0.1  # senders later than this behind schedule: figures are suspect
LOADGEN_CORES_SATURATED = 0.9  # a worker busier than this in the window: figures are suspect
LATENCY_VIEWERS_SAMPLED = 200  # viewers noting each receipt instant, spread over the workers
VIEWER_PAUSE_S = 0.005  # viewer processes rest between rounds of reads (wsview.ViewerPool)

VIEWERS_MAX = 15_000
SENDERS_MAX = 1_000
RATE_PER_S_MAX = 5_000.0
DRAIN_S_MAX = 30.0
VIEWER_EVENTS_MAX = 50_000_000  # viewers x events: bounds a run's deliveries

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


Plan = ViewerPlan | SendersPlan
Result = ViewerResult | SendersResult


async def worker_main(plan: Plan, conn: Connection) -> Result:
    """The one entry point `run_workers` spawns: a process of viewers or of senders."""
    if isinstance(plan, ViewerPlan):
        return await viewer_worker(plan, conn)
    return await senders_worker(plan, conn)


def run_load(args: Args, host_port: str, fx: Fixture, server_pid: int | None) -> RunOutcome[Result]:
    # Viewers over `--workers` processes; the senders in one more of their own, so that a burst
    # of viewer frames never delays a send past its schedule.
    room = f"/ws/rooms/{quote(fx.room_id)}?token="
    stride = max(1, args.viewers // LATENCY_VIEWERS_SAMPLED)
    tagged = [(room + quote(t), i % stride == 0) for i, t in enumerate(fx.viewer_tokens)]
    plans: list[Plan] = [
        ViewerPlan(
            w,
            host_port,
            tuple(tagged[w :: args.workers]),
            fx.first_seq,
            fx.first_seq - 1,
            VIEWER_PAUSE_S,
        )
        for w in range(args.workers)
    ]
    plans.append(
        SendersPlan(
            worker=args.workers,
            ws_base=f"ws://{host_port}",
            room_id=fx.room_id,
            senders=tuple(fx.senders),
            total_senders=args.senders,
            rate_per_s=args.rate_per_s,
        )
    )
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
    args: Args, fx: Fixture, run: RunOutcome[Result]
) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    tl, base = run.timeline, fx.first_seq
    seen = [r for r in run.results if isinstance(r, ViewerResult)]
    sources = [r for r in run.results if isinstance(r, SendersResult)]
    sent_at: dict[int, float] = {}
    acked_twice = 0
    for s in sources:
        acked_twice += len(sent_at.keys() & s.sent_at.keys())
        sent_at |= s.sent_at
    if acked_twice:
        failures.append(f"{acked_twice} seqs were acknowledged to two different gifts")
    if not sent_at:
        failures.append("no gift was acknowledged")
    first, last = (min(sent_at), max(sent_at)) if sent_at else (base, base - 1)

    # Loss: every viewer must have received every seq from the run's first up to the last
    # acknowledged one, exactly once and in order.
    missing = viewers_missing = 0
    for r in seen:
        for next_seq, gaps in zip(r.next_seqs, r.gaps, strict=True):
            lost = gaps + max(0, last + 1 - next_seq)
            missing += lost
            viewers_missing += lost > 0
    doubled = sum(r.repeated for r in seen)
    out_of_order = sum(r.late for r in seen)
    if missing:
        failures.append(
            f"{missing} viewer-events lost: {viewers_missing} viewers missed seqs in "
            f"[{base}, {last}]"
        )
    if doubled:
        failures.append(f"{doubled} viewer-events delivered twice (same seq to the same viewer)")
    if out_of_order:
        failures.append(f"{out_of_order} viewer-events out of order (after a later seq)")

    latencies = latencies_ms(seen, sent_at, tl, 0)  # received events only: losses fail above
    acks = sorted(x for s in sources for x in s.ack_latencies_ms)
    errors: Counter[str] = Counter()
    viewers_closed: Counter[str] = Counter()
    senders_closed: Counter[str] = Counter()
    for r in seen:
        viewers_closed.update(r.closed)
    for s in sources:
        errors.update(s.errors)
        senders_closed.update(s.closed)
    lost_requests = sum(s.lost for s in sources)
    welcome_mismatches = sum(r.welcome_mismatches for r in seen)
    violations = sum(s.violations.count for s in sources) + welcome_mismatches
    if lost_requests:
        failures.append(f"{lost_requests} gift requests never answered (lost)")
    if viewers_closed or senders_closed:
        failures.append(
            f"sockets closed by the server: viewers {dict(viewers_closed)}, "
            f"senders {dict(senders_closed)}"
        )
    if violations:
        examples = [v for s in sources for v in s.violations.kept][:5]
        if welcome_mismatches:
            examples.insert(0, f"{welcome_mismatches} welcomes not at seq {base - 1}")
        failures.append(f"{violations} contract violations, e.g. {examples}")
    in_window = sum(1 for t in sent_at.values() if tl.measure_from <= t < tl.stop_sending)
    send_lag_s = max((s.send_lag_s_max for s in sources), default=0.0)
    if send_lag_s > LOADGEN_LAG_S_MAX:
        log(
            f"warning: senders fell {send_lag_s * 1000:.0f} ms behind schedule; the load generator"
            " (or another process) is short of CPU, and latencies include its delay"
        )
    worker_cores = [r.cpu_s / args.duration_s for r in run.results]
    saturated = [w for w, cores in enumerate(worker_cores) if cores > LOADGEN_CORES_SATURATED]
    for w in saturated:
        log(
            f"warning: load generator worker {w} used {worker_cores[w]:.2f} of a core in the"
            " measured window: it may be what was measured, not the server"
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
        "gifts_sent": sum(s.sent for s in sources),
        "gifts_acked": len(sent_at),
        "gifts_per_s_achieved": in_window / args.duration_s,
        "events_delivered_per_s": sum(r.delivered_in_window for r in seen) / args.duration_s,
        "delivery_latency_ms_p50": percentile(latencies, 50),
        "delivery_latency_ms_p90": percentile(latencies, 90),
        "delivery_latency_ms_p99": percentile(latencies, 99),
        "delivery_latency_ms_max": latencies[-1] if latencies else None,
        "latency_viewers_sampled": sum(len(r.samples) for r in seen),
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
        **cpu_figures(run.server_cpu_s, args.duration_s, sum(r.cpu_s for r in run.results)),
        "loadgen_viewers_cpu_s": sum(r.cpu_s for r in seen),
        "loadgen_senders_cpu_s": sum(s.cpu_s for s in sources),
        "loadgen_worker_cores": ",".join(f"{cores:.2f}" for cores in worker_cores),
        "loadgen_saturated": bool(saturated),
        "loadgen_round_ms_max": max((r.round_s_max for r in seen), default=0.0) * 1000,
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
    outcome = run_load(args, server.base_url.removeprefix("http://"), fx, server.pid)
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
