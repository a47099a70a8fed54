"""Idle-viewer memory benchmark: what each connected, silent viewer costs the server in RAM.

What it measures
----------------
`--viewers` signed-up users (one socket each) join `--rooms` live rooms over
`/ws/rooms/{id}?token=...` and then sit idle: no gifts, nothing to read but heartbeats. The
server's resident memory (VmRSS from /proc) is read once the users exist but before any socket
opens, and again after every viewer has its welcome and the server has been idle for
`--settle` seconds. Their difference over the number of viewers is the memory per idle viewer,
in KiB; the target is at most 24 KiB with 10,000 connected. It also prints the server's peak
RSS and checks that every socket is still open at the end (none closed by the server).

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_idle.py                     # 10,000 viewers in 10 rooms
    python scripts/bench_idle.py --viewers 1000 --rooms 2 --settle 1

It starts its own server on a temporary SQLite database (stopped with SIGTERM at the end), or
targets `--url http://127.0.0.1:PORT --server-pid PID`. Loopback only; every count is bounded.
Sockets are spread over `--workers` processes. Exit status: 0 pass, 1 a check failed, 2 bad
arguments or set-up failure.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchkit import (
    WORKERS_MAX,
    Api,
    BenchArgs,
    BenchError,
    Server,
    add_server_arguments,
    add_target_arguments,
    bench_main,
    bounded_gather,
    close_all,
    collect,
    exit_on_problems,
    logger,
    open_socket,
    peak_rss_mib,
    prepare,
    raise_nofile_limit,
    target_problems,
    ws_base_url,
)

VIEWERS_MAX = 15_000
ROOMS_MAX = 1_000
SETTLE_S_MAX = 60.0
READY_TIMEOUT_S = 600.0
TARGET_KIB_PER_VIEWER = 24.0

log = logger("bench_idle")


@dataclass(frozen=True, slots=True)
class Args(BenchArgs):
    viewers: int
    rooms: int
    settle_s: float


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--viewers", type=int, default=10_000, help="idle viewers (default 10000)")
    p.add_argument("--rooms", type=int, default=10, help="live rooms they watch (default 10)")
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before reading (5)")
    p.add_argument("--workers", type=int, default=2, help="client processes (default 2)")
    add_server_arguments(p)
    add_target_arguments(p)
    ns = p.parse_args(argv)
    ns.duration, ns.warmup = 1.0, 0.0
    args = Args.from_command_line(ns, viewers=ns.viewers, rooms=ns.rooms, settle_s=ns.settle)
    exit_on_problems(p, argument_problems(args))
    return args


def argument_problems(a: Args) -> Iterator[str]:
    if not 1 <= a.viewers <= VIEWERS_MAX:
        yield f"--viewers must be 1-{VIEWERS_MAX}"
    if not 1 <= a.rooms <= min(ROOMS_MAX, a.viewers):
        yield f"--rooms must be 1-{ROOMS_MAX} and at most --viewers"
    if not 0.0 <= a.settle_s <= SETTLE_S_MAX:
        yield f"--settle must be 0-{SETTLE_S_MAX:g} s"
    if not 1 <= a.workers <= WORKERS_MAX:
        yield f"--workers must be 1-{WORKERS_MAX}"
    yield from target_problems(a)


def rss_kib(pid: int | None) -> int | None:
    """The current resident set size (VmRSS), in KiB."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


async def set_up(api: Api, args: Args, run: str) -> list[str]:
    """Hosts live in `--rooms` rooms and one user per viewer; each viewer's socket URL path."""
    rooms: list[str] = []
    for r in range(args.rooms):
        host = await api.sign_up(f"idle{run}h{r}")
        rooms.append(await api.go_live(host, f"idle room {r}"))

    async def viewer(i: int) -> str:
        account = await api.sign_up(f"idle{run}v{i}")
        return f"/ws/rooms/{rooms[i % len(rooms)]}?token={quote(account.token)}"

    return await bounded_gather(args.viewers, viewer)


def worker(base: str, paths: list[str], conn: Connection) -> None:
    raise_nofile_limit()

    async def main() -> None:
        sockets: list[ClientConnection] = []

        async def one(i: int) -> None:
            ws, _ = await open_socket(base + paths[i])
            sockets.append(ws)

        try:
            await bounded_gather(len(paths), one)
            conn.send(("ready", len(sockets)))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
            still_open = sum(1 for ws in sockets if ws.close_code is None)
            conn.send(("result", still_open))
        finally:
            await close_all(sockets)

    try:
        asyncio.run(main())
    except Exception as exc:  # reported to the parent, which fails the run loudly
        conn.send(("failed", f"idle worker: {exc!r}"))


def benchmark(args: Args, server: Server) -> tuple[dict[str, Any], list[str]]:
    run = secrets.token_hex(3)
    paths = prepare(
        server,
        f"setting up {args.rooms} rooms and {args.viewers} viewers",
        log,
        lambda api: set_up(api, args, run),
    )
    time.sleep(1.0)  # let the sign-ups' garbage settle before the baseline
    before = rss_kib(server.pid)
    log(f"server RSS before the sockets: {before} KiB; connecting {args.viewers} viewers")
    ctx = mp.get_context("spawn")
    conns: list[Connection] = []
    procs: list[Any] = []
    failures: list[str] = []
    try:
        for w in range(args.workers):
            parent, child = ctx.Pipe()
            share = paths[w :: args.workers]
            proc = ctx.Process(target=worker, args=(ws_base_url(server), share, child), daemon=True)
            proc.start()
            child.close()
            conns.append(parent)
            procs.append(proc)
        connected = sum(collect(conns, "ready", READY_TIMEOUT_S))
        log(f"{connected} viewers connected; idle for {args.settle_s:g} s")
        time.sleep(args.settle_s)
        after = rss_kib(server.pid)
        for conn in conns:
            conn.send("stop")
        still_open = sum(collect(conns, "result", 60))
    finally:
        for proc in procs:
            proc.join(20)
            if proc.is_alive():
                proc.kill()
                proc.join()
    if connected != args.viewers:
        failures.append(f"{connected} of {args.viewers} viewers connected")
    if still_open != connected:
        failures.append(f"{connected - still_open} sockets were closed while idle")
    per_viewer = None
    if before is not None and after is not None and connected:
        per_viewer = (after - before) / connected
        if per_viewer > TARGET_KIB_PER_VIEWER:
            failures.append(
                f"{per_viewer:.1f} KiB per idle viewer (target {TARGET_KIB_PER_VIEWER:g})"
            )
    figures: dict[str, Any] = {
        "viewers": connected,
        "rooms": args.rooms,
        "server_rss_before_mib": None if before is None else before / 1024,
        "server_rss_after_mib": None if after is None else after / 1024,
        "kib_per_idle_viewer": per_viewer,
        "target_kib_per_idle_viewer": TARGET_KIB_PER_VIEWER,
        "server_peak_rss_mib": peak_rss_mib(server.pid),
    }
    return figures, failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url is not None and args.server_pid is None:
        print("bench_idle: with --url, give --server-pid (memory is what it measures)")
        return 2
    try:
        return bench_main(
            "bench_idle",
            args,
            lambda server: benchmark(args, server),
            sockets=args.viewers,
            too_many_sockets=f"{args.viewers} sockets exceed the limit",
            audit_token_needed=False,
        )
    except BenchError as exc:
        print(f"bench_idle: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
