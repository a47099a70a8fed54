"""Soak: a steady gift load for a long time, watching the server for slow leaks.

What it does
------------
Starts `python -m server serve` on a temporary SQLite database (as the benchmarks do), signs up
`--viewers` viewers spread over `--rooms` live rooms, and for `--duration-s` seconds (default
30 minutes) each viewer sends `--rate` gifts a second over its WebSocket, waiting for each
answer. Every `--reconnect-s` each viewer closes its socket and opens a new one (connection
churn), and whenever a viewer runs low it recharges over HTTP with an Idempotency-Key.

Every `--sample-s` it records the server's resident memory and open file descriptors (from
/proc/PID) and its live asyncio tasks, WebSocket connections and gift queue (from
`GET /api/admin/stats`). It also samples the idle server before the load starts and after it
stops (no sockets open), where the task and descriptor counts must be back where they began.

Checks (exit 1 on any failure): every gift is answered, and only ever `gift_ok` or
`rate_limited`; the audit is balanced; the coins the viewers lost equal the
gifts acknowledged to them (nothing lost, nothing duplicated); after the load the idle server
has at most `--slack-tasks` more tasks and `--slack-fds` more descriptors than before it; and
the RSS at the end of the load is at most `--rss-growth-mib-max` above the RSS once warmed up
(the first sample after 10% of the run).

    python scripts/soak.py                        # 30 minutes, 16 viewers, 4 rooms, 4 gifts/s
    python scripts/soak.py --duration-s 60 --json /tmp/soak.json

Only loopback; every count and duration is bounded. Exit 0 pass, 1 a check failed, 2 set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchkit import (
    Account,
    Api,
    BenchError,
    Server,
    http_client,
    open_socket,
    parse_setting,
    raise_nofile_limit,
    start_server,
    stop_server,
    wait_healthy,
    ws_base_url,
)

DURATION_S_MAX = 4 * 3600
VIEWERS_MAX = 500
ROOMS_MAX = 100
RATE_MAX = 50.0
PACKAGE_ID = "coins_330"
PACKAGE_COINS = 330
RECHARGE_BELOW_COINS = 100
ANSWER_TIMEOUT_S = 15.0


@dataclass
class Sample:
    at_s: float
    rss_mib: float
    fds: int
    tasks: int
    ws: int
    queue: int


@dataclass
class Viewer:
    account: Account
    room: str
    acked: int = 0
    recharges: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0


def proc_figures(pid: int) -> tuple[float, int]:
    """RSS in MiB and open descriptors of `pid`, read from /proc."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def sample(api: Api, server: Server, started: float) -> Sample:
    stats = await api.call("GET", "/api/admin/stats", token=server.admin_token)
    assert server.pid is not None
    rss_mib, fds = proc_figures(server.pid)
    return Sample(
        round(time.monotonic() - started, 1),
        round(rss_mib, 1),
        fds,
        int(stats["tasks"]),
        int(stats["ws_connections"]),
        int(stats["gift_queue"]),
    )


async def run_viewer(api: Api, base_ws: str, v: Viewer, a: argparse.Namespace, end: float) -> None:
    n = 0
    gap_s = 1 / a.rate
    while time.monotonic() < end:
        url = f"{base_ws}/ws/rooms/{v.room}?token={v.account.token}"
        ws, welcome = await open_socket(url)
        coins = int(welcome["you"]["coins"])
        reconnect_at = min(end, time.monotonic() + a.reconnect_s)
        try:
            while time.monotonic() < reconnect_at:
                if coins < RECHARGE_BELOW_COINS:
                    v.recharges += 1
                    doc = await api.call(
                        "POST",
                        "/api/wallet/recharge",
                        token=v.account.token,
                        body={"package_id": PACKAGE_ID},
                        idempotency_key=f"soak-{v.account.id}-{v.recharges}",
                    )
                    coins = int(doc["coins"])
                n += 1
                request_id = f"s{v.account.id}-{n}"
                sent_at = time.monotonic()
                await ws.send(
                    orjson.dumps({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1})
                )
                answer = await answer_for(ws, request_id)
                if answer is None:
                    v.unanswered += 1
                elif answer["type"] == "gift_ok":
                    v.acked += 1
                    coins = int(answer["coins"])
                else:
                    v.errors[str(answer.get("code"))] += 1
                await asyncio.sleep(max(0.0, gap_s - (time.monotonic() - sent_at)))
        finally:
            await ws.close()


async def answer_for(ws: Any, request_id: str) -> dict[str, Any] | None:
    """The `gift_ok` or `error` for `request_id`, skipping room events; None on a timeout."""
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while True:
                doc = orjson.loads(await ws.recv(decode=False))
                docs = doc["events"] if doc.get("type") == "batch" else [doc]
                for d in docs:
                    if d.get("id") == request_id and d.get("type") in ("gift_ok", "error"):
                        return dict(d)
    except TimeoutError:
        return None


async def soak(server: Server, a: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    async with http_client(server.base_url) as client:
        api = Api(client)
        await wait_healthy(api)
        hosts = [await api.sign_up(f"soakhost{i}") for i in range(a.rooms)]
        rooms = [await api.go_live(h, f"soak {i}") for i, h in enumerate(hosts)]
        viewers = [
            Viewer(await api.sign_up(f"soakviewer{i}"), rooms[i % a.rooms])
            for i in range(a.viewers)
        ]
        started = time.monotonic()
        idle_before = await sample(api, server, started)
        print(f"idle before: {idle_before}", flush=True)
        end = started + a.duration_s
        samples: list[Sample] = []

        async def sampler() -> None:
            while time.monotonic() < end:
                await asyncio.sleep(min(a.sample_s, max(0.0, end - time.monotonic())))
                s = await sample(api, server, started)
                samples.append(s)
                print(f"sample: {s}", flush=True)

        base_ws = ws_base_url(server)
        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(run_viewer(api, base_ws, v, a, end) for v in viewers))
        await sampling
        await asyncio.sleep(2)  # let the server notice the closed sockets
        idle_after = await sample(api, server, started)
        print(f"idle after: {idle_after}", flush=True)
        audit = await api.call("GET", "/api/admin/audit", token=server.admin_token)
        lost = 0
        for v in viewers:
            me = await api.me(v.account)
            spent = v.recharges * PACKAGE_COINS - int(me["coins"])
            lost += abs(spent - v.acked)  # a rose costs 1 coin
    return figures(a, viewers, samples, idle_before, idle_after, audit, lost)


def figures(
    a: argparse.Namespace,
    viewers: list[Viewer],
    samples: list[Sample],
    before: Sample,
    after: Sample,
    audit: dict[str, Any],
    lost: int,
) -> tuple[dict[str, Any], list[str]]:
    warm = next((s for s in samples if s.at_s >= a.duration_s / 10), samples[0])
    last = samples[-1]
    errors = sum((v.errors for v in viewers), Counter[str]())
    out: dict[str, Any] = {
        "duration_s": a.duration_s,
        "viewers": a.viewers,
        "rooms": a.rooms,
        "gifts_acknowledged": sum(v.acked for v in viewers),
        "gift_errors": dict(errors),
        "unanswered": sum(v.unanswered for v in viewers),
        "recharges": sum(v.recharges for v in viewers),
        "samples": len(samples),
        "rss_mib_warm": warm.rss_mib,
        "rss_mib_last": last.rss_mib,
        "rss_mib_max": max(s.rss_mib for s in samples),
        "fds_idle_before": before.fds,
        "fds_idle_after": after.fds,
        "fds_max_under_load": max(s.fds for s in samples),
        "tasks_idle_before": before.tasks,
        "tasks_idle_after": after.tasks,
        "tasks_max_under_load": max(s.tasks for s in samples),
        "audit_balanced": audit.get("balanced"),
        "lost": lost,
    }
    failures = []
    if not out["gifts_acknowledged"]:
        failures.append("no gift was acknowledged")
    unexpected = {code: n for code, n in errors.items() if code not in ("rate_limited",)}
    if unexpected or out["unanswered"]:
        failures.append(f"errors {unexpected}, {out['unanswered']} unanswered under a steady load")
    if lost:
        failures.append(f"coins spent differ from gifts acknowledged by {lost}")
    if audit.get("balanced") is not True:
        failures.append(f"audit not balanced: {audit}")
    if after.tasks > before.tasks + a.slack_tasks:
        failures.append(f"tasks grew idle-to-idle: {before.tasks} -> {after.tasks}")
    if after.fds > before.fds + a.slack_fds:
        failures.append(f"open fds grew idle-to-idle: {before.fds} -> {after.fds}")
    if last.rss_mib - warm.rss_mib > a.rss_growth_mib_max:
        failures.append(f"RSS grew {warm.rss_mib} -> {last.rss_mib} MiB under the same load")
    return out, failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration-s", type=float, default=1800.0)
    p.add_argument("--viewers", type=int, default=16)
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--rate", type=float, default=4.0, help="gifts a second per viewer")
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--reconnect-s", type=float, default=60.0)
    p.add_argument("--rss-growth-mib-max", type=float, default=16.0)
    p.add_argument("--slack-tasks", type=int, default=2)
    p.add_argument("--slack-fds", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--set",
        type=parse_setting,
        action="append",
        metavar="NAME=VALUE",
        help="a server setting, e.g. accepted_ids_cached_max=10000 (GIFTCAST_NAME=VALUE)",
    )
    a = p.parse_args(argv)
    problems = []
    if not 1 <= a.duration_s <= DURATION_S_MAX:
        problems.append(f"--duration-s must be 1..{DURATION_S_MAX}")
    if not 1 <= a.viewers <= VIEWERS_MAX or not 1 <= a.rooms <= min(ROOMS_MAX, a.viewers):
        problems.append(f"--viewers 1..{VIEWERS_MAX}, --rooms 1..min(100, viewers)")
    if not 0 < a.rate <= RATE_MAX or not 0.5 <= a.sample_s <= 600 or a.reconnect_s < 1:
        problems.append(f"--rate 0..{RATE_MAX}, --sample-s 0.5..600, --reconnect-s >= 1")
    if problems:
        p.error("; ".join(problems))
    raise_nofile_limit()
    # Stopped from outside (kill PID): stop the server we started, too. SIGINT is often
    # ignored in a background job, so SIGTERM is the way to end a soak early.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = dict(a.set or [])
    server = start_server(
        rate_per_user=max(10, int(a.rate * 2)), connections_max=2000, settings=settings
    )
    try:
        out, failures = asyncio.run(soak(server, a))
    except BenchError as exc:
        print(f"soak could not run: {exc}", file=sys.stderr)
        stop_server(server)
        return 2
    except BaseException:
        stop_server(server)
        raise
    code = stop_server(server)
    out["server_exit"] = code
    out["settings"] = settings
    if code != 0:
        failures.append(f"the server exited {code} on SIGTERM")
    for name, value in out.items():
        print(f"{name}: {value}")
    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"result: {'FAIL' if failures else 'PASS'}")
    if a.json is not None:
        a.json.write_text(orjson.dumps({**out, "failures": failures}).decode())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
