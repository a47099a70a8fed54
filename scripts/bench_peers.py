"""Peer benchmark: the same fan-out workload against giftcast and against small peer servers.

What it measures
----------------
One room, V viewers, events entering at R per second; every viewer must receive every event.
The servers (`--servers`, all by default):

- `giftcast`: real gifts (Roses) from `--senders` senders over the contract's WebSocket, at R
  gifts/s in total, open loop, as in `bench_fanout.py`; giftcast coalesces the room's events
  into `batch` frames (`fanout_flush_ms`, 100 ms);
- `ws_broadcast`: a bare `websockets` server using `websockets.broadcast` (the Python floor);
- `starlette_naive`: Starlette + uvicorn, `for ws in viewers: await ws.send_text(msg)`;
- `node_ws`: Node with the `ws` package (installed by `npm ci` on first use; left out, saying
  why, when `node` or `npm` is missing).

A peer gets the same events as JSON from one publisher connection (event n carries seq n; it is
shaped like giftcast's `gift` event) at the same rate R, and sends each event as one frame to
every viewer (`scripts/peers/`). Events, not frames, are counted. All servers face the same
viewers (`scripts/wsview.py`: raw asyncio protocols in `--workers` processes, counting each
frame with constant work), so the load generator costs the same per frame for all.

For each server and each V in `--viewers`, after `--warmup` seconds it measures `--duration`
seconds (then viewers listen `--drain` more seconds) and reports:

- events delivered per second: gift events received by viewers inside the window;
- delivery latency p50 / p99: receipt instant minus the event's send instant (giftcast: when
  its gift was sent; a peer: when its event was due), over events sent in the window, for up
  to 200 sampled viewers; an event a sampled viewer never got counts as infinitely late
  (printed `lost`);
- server CPU seconds per million deliveries (utime + stime from /proc/PID/stat over the
  window) and its peak RSS (VmHWM);
- missing: (viewer, event) pairs sent but not received by the end of the drain, whether
  skipped (a gap) or still queued in an overloaded server;
- the load generator's own CPU and the rest of the machine's (from /proc/stat), in cores:
  a shared machine shows up there;
- each server's ratio to giftcast at the same V (`giftcast x`: giftcast's events/s over its).

How to run
----------
From the repository root, with the project installed (`bash scripts/test.sh` once)::

    .venv/bin/python scripts/bench_peers.py                  # V = 1000 and 5000, R = 500/s
    .venv/bin/python scripts/bench_peers.py --quick          # V = 50, R = 50/s, 2 s each
    .venv/bin/python scripts/bench_peers.py --servers giftcast --viewers 5000 --rate 500

It prints a Markdown table, the issue's targets with the figures against them, and `result:
PASS` or `FAIL`. Exit status: 0 pass; 1 giftcast lost or repeated an event, a socket was
closed by a server, or a contract check failed; 2 bad arguments or set-up failure. A peer that
cannot keep up is reported (missing, latency), not failed. Only 127.0.0.1; every count and
duration is bounded.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import bench_fanout
from scripts.benchkit import (
    RATE_PER_USER_MAX,
    WORKERS_MAX,
    BenchArgs,
    BenchError,
    add_server_arguments,
    add_window_arguments,
    exit_on_problems,
    logger,
    peak_rss_mib,
    prepare,
    raise_nofile_limit,
    run_workers,
    start_server,
    stop_server,
    window_problems,
)
from scripts.fansend import SendersPlan
from scripts.peerkit import GIFTCAST, SERVER_NAMES, node_problem, start_peer, stop_peer
from scripts.peerload import Plan, PublisherPlan, Result, worker_main
from scripts.peertable import Row, row_of, table_text, target_lines
from scripts.viewload import ViewerPlan

VIEWERS_MAX = 15_000
RATE_PER_S_MAX = 5_000.0
SENDERS_MAX = 1_000
DRAIN_S_MAX = 60.0
LATENCY_VIEWERS_SAMPLED = 200
WORKERS_READY_TIMEOUT_S = 300.0
VIEWER_PAUSE_MS = 5.0
VIEWER_PAUSE_MS_MAX = 50.0
QUICK = {"viewers": (50,), "rate": 50.0, "duration": 2.0, "warmup": 0.5, "drain": 1.5}

log = logger("bench_peers")


@dataclass(frozen=True, slots=True)
class Args(BenchArgs):
    servers: tuple[str, ...]
    viewer_counts: tuple[int, ...]
    rate_per_s: float
    senders: int
    drain_s: float
    viewer_pause_ms: float


def csv_of(kind: type[int] | type[str]) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(part) for part in text.split(",") if part)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--servers",
        type=csv_of(str),
        default=SERVER_NAMES,
        help=f"comma-separated, from {','.join(SERVER_NAMES)} (default: all)",
    )
    p.add_argument("--viewers", type=csv_of(int), default=(1000, 5000), help="(1000,5000)")
    p.add_argument("--rate", type=float, default=500.0, help="events (gifts)/s (default 500)")
    p.add_argument("--senders", type=int, default=40, help="giftcast's gift senders (40)")
    add_window_arguments(p)
    p.add_argument("--drain", type=float, default=5.0, help="seconds viewers listen after (5)")
    p.add_argument("--workers", type=int, default=4, help="viewer processes (default 4)")
    p.add_argument(
        "--viewer-pause-ms",
        type=float,
        default=VIEWER_PAUSE_MS,
        help=f"viewer processes rest this long between rounds of reads ({VIEWER_PAUSE_MS:g})",
    )
    p.add_argument("--quick", action="store_true", help="V=50, 50/s, 2 s each: a smoke run")
    p.add_argument("--json", dest="json_path", type=Path, default=None, help="write figures")
    add_server_arguments(p)
    p.set_defaults(url=None, server_pid=None)
    ns = p.parse_args(argv)
    if ns.quick:
        ns.viewers, ns.rate, ns.duration = QUICK["viewers"], QUICK["rate"], QUICK["duration"]
        ns.warmup, ns.drain, ns.workers, ns.senders = QUICK["warmup"], QUICK["drain"], 1, 5
    args = Args.from_command_line(
        ns,
        servers=ns.servers,
        viewer_counts=ns.viewers,
        rate_per_s=ns.rate,
        senders=ns.senders,
        drain_s=ns.drain,
        viewer_pause_ms=ns.viewer_pause_ms,
    )
    exit_on_problems(p, argument_problems(args))
    return args


def argument_problems(a: Args) -> Iterator[str]:
    unknown = sorted(set(a.servers) - set(SERVER_NAMES))
    if unknown or not a.servers:
        yield f"--servers takes names from {', '.join(SERVER_NAMES)} (got {unknown or 'none'})"
    if not a.viewer_counts or not all(1 <= v <= VIEWERS_MAX for v in a.viewer_counts):
        yield f"--viewers takes counts of 1-{VIEWERS_MAX}"
    if not 1.0 <= a.rate_per_s <= RATE_PER_S_MAX:
        yield f"--rate must be 1-{RATE_PER_S_MAX:g} events/s"
    if not 1 <= a.senders <= SENDERS_MAX:
        yield f"--senders must be 1-{SENDERS_MAX}"
    yield from window_problems(a)
    if not 1.0 <= a.drain_s <= DRAIN_S_MAX:
        yield f"--drain must be 1-{DRAIN_S_MAX:g} s"
    if not 1 <= a.workers <= min([WORKERS_MAX, *a.viewer_counts]):
        yield f"--workers must be 1-{WORKERS_MAX} and at most the smallest --viewers"
    if not 0 <= a.viewer_pause_ms <= VIEWER_PAUSE_MS_MAX:
        yield f"--viewer-pause-ms must be 0-{VIEWER_PAUSE_MS_MAX:g}"
    if not 1 <= a.rate_per_user <= RATE_PER_USER_MAX:
        yield f"--rate-per-user must be 1-{RATE_PER_USER_MAX}"
    if a.rate_per_s * (a.warmup_s + a.duration_s) > 1_000_000:
        yield "rate x (warmup + duration) must stay under 1,000,000 events"


# --- one run: a server at one V ---------------------------------------------------------


def viewer_plans(
    args: Args, host_port: str, paths: list[str], first_seq: int, welcome_seq: int | None
) -> list[Plan]:
    stride = max(1, len(paths) // LATENCY_VIEWERS_SAMPLED)
    tagged = [(path, i % stride == 0) for i, path in enumerate(paths)]
    return [
        ViewerPlan(
            w,
            host_port,
            tuple(tagged[w :: args.workers]),
            first_seq,
            welcome_seq,
            args.viewer_pause_ms / 1000,
        )
        for w in range(args.workers)
    ]


def run_plans(args: Args, plans: list[Plan], pid: int) -> tuple[list[Result], Any]:
    outcome = run_workers(
        worker_main,
        plans,
        args,
        after_s=args.drain_s,
        ready_timeout_s=WORKERS_READY_TIMEOUT_S,
        server_pid=pid,
        log=log,
    )
    return outcome.results, outcome


def measure_giftcast(args: Args, viewers: int, run_id: str) -> Row:
    fan_args = bench_fanout.Args(
        duration_s=args.duration_s,
        warmup_s=args.warmup_s,
        workers=args.workers,
        rate_per_user=args.rate_per_user,
        url=None,
        server_pid=None,
        json_path=None,
        settings=args.settings,
        viewers=viewers,
        senders=args.senders,
        rate_per_s=args.rate_per_s,
        drain_s=args.drain_s,
    )
    server = start_server(args.rate_per_user, viewers + args.senders + 1000, args.settings)
    try:
        log(f"giftcast: pid {server.pid}, setting up {viewers} viewers, {args.senders} senders")
        fx = prepare(server, "set up", log, lambda api: bench_fanout.set_up(api, fan_args, run_id))
        host_port = server.base_url.removeprefix("http://")
        room = f"/ws/rooms/{fx.room_id}?token="
        plans = viewer_plans(
            args, host_port, [room + t for t in fx.viewer_tokens], fx.first_seq, fx.first_seq - 1
        )
        senders = SendersPlan(
            worker=len(plans),
            ws_base=f"ws://{host_port}",
            room_id=fx.room_id,
            senders=tuple(fx.senders),
            total_senders=args.senders,
            rate_per_s=args.rate_per_s,
        )
        plans.append(senders)
        assert server.pid is not None
        results, outcome = run_plans(args, plans, server.pid)
        rss = peak_rss_mib(server.pid)
    finally:
        code = stop_server(server)
    row = row_of(GIFTCAST, viewers, args, results, outcome, rss, fx.first_seq)
    if code != 0:
        row.failures.append(f"giftcast exited with {code} on SIGTERM")
    return row


def measure_peer(name: str, args: Args, viewers: int, run_id: str) -> Row:
    peer = start_peer(name)
    try:
        log(f"{name}: pid {peer.pid} at {peer.host_port}")
        plans = viewer_plans(args, peer.host_port, ["/viewer"] * viewers, 1, None)
        url = f"ws://{peer.host_port}/publish"
        plans.append(PublisherPlan(len(plans), url, args.rate_per_s, f"bf{run_id}s"))
        results, outcome = run_plans(args, plans, peer.pid)
        rss = peak_rss_mib(peer.pid)
    finally:
        problem = stop_peer(peer)
    row = row_of(name, viewers, args, results, outcome, rss, 1)
    if problem:
        row.failures.append(problem)
    return row


# --- main ---------------------------------------------------------------------------------


def benchmark(args: Args) -> tuple[list[Row], list[str]]:
    notes: list[str] = []
    servers = list(args.servers)
    if "node_ws" in servers:
        problem = node_problem()
        if problem:
            notes.append(f"node_ws NOT MEASURED: {problem}")
            log(notes[-1])
            servers.remove("node_ws")
    rows: list[Row] = []
    for viewers in args.viewer_counts:
        for name in servers:
            run_id = secrets.token_hex(3)
            log(f"== {name}, {viewers} viewers, {args.rate_per_s:g} events/s")
            if name == GIFTCAST:
                rows.append(measure_giftcast(args, viewers, run_id))
            else:
                rows.append(measure_peer(name, args, viewers, run_id))
            log(rows[-1].summary())
    return rows, notes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile_limit()
    needed = max(args.viewer_counts) + args.senders + 256
    if needed > nofile:
        print(f"bench_peers: {needed} sockets exceed the open-file limit {nofile}", file=sys.stderr)
        return 2
    try:
        rows, notes = benchmark(args)
    except BenchError as exc:
        print(f"bench_peers: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_peers: interrupted; the servers and workers were stopped", file=sys.stderr)
        return 130
    failures = [f"{row.server} at {row.viewers} viewers: {f}" for row in rows for f in row.failures]
    targets = target_lines(rows, args.rate_per_s)
    print()
    print(table_text(rows, args))
    print()
    for line in [*targets, *notes]:
        print(line)
    for failure in failures:
        print(f"failure: {failure}")
    print(f"result: {'FAIL' if failures else 'PASS'}")
    if args.json_path is not None:
        document = {
            "rows": [row.figures for row in rows],
            "targets": targets,
            "notes": notes,
            "failures": failures,
            "result": "FAIL" if failures else "PASS",
        }
        args.json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
