"""Closed-loop gift benchmark: how many gifts a second the server acknowledges, and how fast.

What it measures
----------------
`--senders` users, each signed up and recharged with coins, are spread round-robin over
`--rooms` live rooms (each room hosted by its own user). Every sender holds one WebSocket to its
room (`/ws/rooms/{id}?token=...`) and keeps exactly one gift outstanding: it sends
`{"type": "gift", "id": ..., "gift_id": "rose", "count": 1}`, waits for the `gift_ok` or
`error` carrying that id, then sends the next. After `--warmup` seconds it measures for
`--duration` seconds: gifts acknowledged per second, and the ack latency (send to answer) as
p50 / p99 / max, measured with `time.monotonic()` in the sending process (so it includes the
load generator's own scheduling delay). Errors are counted by code. A request still without an
answer `--grace` seconds after sending stopped is lost. The server's peak RSS (VmHWM) and the
CPU seconds it used during the measured window are read from /proc.

Then it checks the money, and exits 1 loudly on any mismatch or loss:

- `GET /api/admin/audit` answers `"balanced": true`;
- per sender, the coins lost according to `GET /api/me` (before minus after) equal the sum of
  `coins_spent` acknowledged to it, and its last acknowledged balance is its balance after;
- per host, the diamonds gained equal the `diamonds` acknowledged for gifts in its room;
- no room `seq` is acknowledged twice, and every `gift_ok` is self-consistent.

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_gifts.py                        # 500 senders, 50 rooms, 10 s
    python scripts/bench_gifts.py --senders 50 --rooms 5 --duration 3 --json /tmp/gifts.json

By default it starts its own server (`python -m server serve --port 0`, SQLite in a temporary
directory, the per-user gift rate limit raised to `--rate-per-user`) and stops it with SIGTERM at
the end. `--url http://127.0.0.1:PORT` targets a running server instead; its admin token is then
read from `GIFTCAST_ADMIN_TOKEN` and `--server-pid` enables the RSS / CPU figures. Only
127.0.0.1 and localhost are accepted as targets; every count and duration is bounded.

The final block prints one `name: value` per line (`gifts_per_s_acked: 5123.4`), ending with
`result: PASS` or `result: FAIL`. Exit status: 0 pass, 1 a check failed, 2 bad arguments or
set-up failure.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import sys
import time
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

# Run as a file (`python scripts/bench_gifts.py`), sys.path[0] is scripts/ itself, so the
# `scripts` package is not importable; put the repository root first. Under
# `python -m scripts.bench_gifts` __package__ is "scripts" and this is skipped.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Ruff's E402 accepts imports after a `sys.path` change, so these need no suppression.
from scripts.benchkit import (
    GIFT_ID,
    RATE_PER_USER_MAX,
    WORKERS_MAX,
    WS_CONNECT_CONCURRENCY,
    Account,
    Api,
    BenchArgs,
    BenchError,
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
    over_http,
    peak_rss_mib,
    percentile,
    prepare,
    report_ready,
    run_workers,
    target_problems,
    window_problems,
    ws_base_url,
)

WORKERS_READY_TIMEOUT_S = 180.0

SENDERS_MAX = 10_000
ROOMS_MAX = 1_000
GRACE_S_MAX = 60.0
RECHARGES_MAX = 20

log = logger("bench_gifts")


# --- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Args(BenchArgs):
    """The common `BenchArgs`, then this benchmark's own."""

    senders: int
    rooms: int
    grace_s: float
    recharges: int | None


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--senders", type=int, default=500, help="gift senders (default 500)")
    p.add_argument("--rooms", type=int, default=50, help="rooms, one host each (default 50)")
    add_window_arguments(p)
    p.add_argument("--grace", type=float, default=5.0, help="seconds to await last answers (5)")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes (2)")
    add_server_arguments(p)
    p.add_argument("--recharges", type=int, default=None, help="recharges of the biggest package")
    add_target_arguments(p)
    ns = p.parse_args(argv)
    args = Args.from_command_line(
        ns,
        senders=ns.senders,
        rooms=ns.rooms,
        grace_s=ns.grace,
        recharges=ns.recharges,
    )
    exit_on_problems(p, argument_problems(args))
    return args


def argument_problems(a: Args) -> Iterator[str]:
    if not 1 <= a.senders <= SENDERS_MAX:
        yield f"--senders must be 1-{SENDERS_MAX}"
    if not 1 <= a.rooms <= min(ROOMS_MAX, a.senders):
        yield f"--rooms must be 1-{ROOMS_MAX} and at most --senders"
    yield from window_problems(a)
    if not 1.0 <= a.grace_s <= GRACE_S_MAX:
        yield f"--grace must be 1-{GRACE_S_MAX:g} s"
    if not 1 <= a.workers <= min(WORKERS_MAX, a.senders):
        yield f"--workers must be 1-{WORKERS_MAX} and at most --senders"
    if not 1 <= a.rate_per_user <= RATE_PER_USER_MAX:
        yield f"--rate-per-user must be 1-{RATE_PER_USER_MAX}"
    if a.recharges is not None and not 1 <= a.recharges <= RECHARGES_MAX:
        yield f"--recharges must be 1-{RECHARGES_MAX}"
    yield from target_problems(a)


# --- set-up of users, rooms and coins -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderPlan:
    index: int
    tag: str  # request-id prefix, unique per sender
    token: str
    room_id: str
    coins_before: int


@dataclass(frozen=True, slots=True)
class Fixture:
    hosts: list[Account]
    room_ids: list[str]
    senders: list[Account]
    plans: list[SenderPlan]
    host_diamonds_before: list[int]
    gift_coins: int
    diamonds_per_coin: int
    recharges: int


async def set_up(api: Api, args: Args, run: str) -> Fixture:
    prices = await api.prices()
    gift_coins = prices.gift_coins
    # One gift outstanding per sender bounds its rate by the round trip; assume generously.
    per_sender_rate = min(10_000.0, 100_000.0 / args.senders)
    needed = per_sender_rate * (args.warmup_s + args.duration_s + 1.0) * gift_coins
    recharges = args.recharges or max(1, math.ceil(needed / prices.package_coins))

    hosts = await bounded_gather(args.rooms, lambda i: api.sign_up(f"bg{run}h{i}"))
    room_ids = await bounded_gather(args.rooms, lambda i: api.go_live(hosts[i], f"bench {i}"))

    async def sender(i: int) -> tuple[Account, int]:
        account = await api.sign_up_with_coins(
            f"bg{run}s{i}", prices.package_id, recharges, f"bench-{run}-{i}"
        )
        return account, int_field(await api.me(account), "coins")

    signed = await bounded_gather(args.senders, sender)
    host_mes = await bounded_gather(args.rooms, lambda i: api.me(hosts[i]))
    host_diamonds = [int_field(me, "diamonds") for me in host_mes]
    plans = [
        SenderPlan(i, f"{run}s{i}", acct.token, room_ids[i % args.rooms], coins)
        for i, (acct, coins) in enumerate(signed)
    ]
    return Fixture(
        hosts,
        room_ids,
        [acct for acct, _ in signed],
        plans,
        host_diamonds,
        gift_coins,
        int(prices.catalog.get("diamonds_per_coin", 1)),
        recharges,
    )


# --- the load-generating workers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    worker: int
    ws_base: str
    senders: tuple[SenderPlan, ...]
    gift_coins: int
    diamonds_per_coin: int


@dataclass(slots=True)
class SenderOutcome:
    index: int
    sent: int = 0
    acked: int = 0
    coins_spent: int = 0
    diamonds: int = 0
    last_balance: int | None = None
    stopped: str = ""  # why it stopped before the end, if it did


@dataclass(slots=True)
class WorkerResult:
    worker: int
    senders: list[SenderOutcome] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # acks inside the measured window
    errors: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    violations: Violations = field(default_factory=Violations)
    room_seqs: dict[str, list[int]] = field(default_factory=dict)
    cpu_s: float = 0.0


def find_answer(message: Any, request_id: str) -> dict[str, Any] | None:
    """The `gift_ok` / `error` for `request_id` in a frame (a single message or a batch)."""
    candidates = message.get("events", []) if isinstance(message, dict) else []
    for m in [message, *candidates]:
        if (
            isinstance(m, dict)
            and m.get("type") in ("gift_ok", "error")
            and m.get("id") == request_id
        ):
            return m
    return None


async def await_answer(ws: ClientConnection, request_id: str, deadline: float) -> dict[str, Any]:
    # Room events arrive on the same socket; only frames naming the id are worth parsing.
    needle = b'"' + request_id.encode() + b'"'
    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
        while True:
            raw = await ws.recv(decode=False)
            if needle in raw:
                answer = find_answer(orjson.loads(raw), request_id)
                if answer is not None:
                    return answer


async def run_sender(
    ws: ClientConnection, sp: SenderPlan, plan: WorkerPlan, tl: Timeline, res: WorkerResult
) -> SenderOutcome:
    out = SenderOutcome(sp.index)
    balance = sp.coins_before
    seqs = res.room_seqs.setdefault(sp.room_id, [])
    await asyncio.sleep(max(0.0, tl.start - time.monotonic()))
    while time.monotonic() < tl.stop_sending:
        request_id = f"{sp.tag}.{out.sent}"
        frame = orjson.dumps({"type": "gift", "id": request_id, "gift_id": GIFT_ID, "count": 1})
        out.sent += 1
        sent_at = time.monotonic()
        try:
            await ws.send(frame.decode())
            answer = await await_answer(ws, request_id, tl.end)
        except TimeoutError:
            res.lost += 1
            out.stopped = "no answer"
            break
        except ConnectionClosed as exc:
            res.lost += 1
            res.closed[close_label(exc)] += 1
            out.stopped = f"closed {close_label(exc)}"
            break
        acked_at = time.monotonic()
        if answer["type"] == "error":
            code = str(answer.get("code"))
            res.errors[code] += 1
            if code == "insufficient_coins":
                out.stopped = code
                break
            if code == "rate_limited":
                pause_s = int(answer.get("retry_after_ms", 100)) / 1000
                await asyncio.sleep(min(pause_s, max(0.0, tl.stop_sending - time.monotonic())))
            continue
        spent, diamonds, seq = answer.get("coins_spent"), answer.get("diamonds"), answer.get("seq")
        if spent != plan.gift_coins or diamonds != spent * plan.diamonds_per_coin:
            res.violations.add(f"gift_ok {request_id}: coins_spent={spent} diamonds={diamonds}")
        if answer.get("coins") != balance - plan.gift_coins:
            expected = balance - plan.gift_coins
            res.violations.add(
                f"gift_ok {request_id}: balance {answer.get('coins')}, not {expected}"
            )
        if answer.get("duplicate"):
            res.violations.add(f"gift_ok {request_id}: duplicate for a fresh id")
        if not isinstance(seq, int):
            res.violations.add(f"gift_ok {request_id}: seq {seq!r}")
        else:
            seqs.append(seq)
        out.acked += 1
        out.coins_spent += spent if isinstance(spent, int) else 0
        out.diamonds += diamonds if isinstance(diamonds, int) else 0
        balance = answer["coins"] if isinstance(answer.get("coins"), int) else balance
        out.last_balance = balance
        if tl.measure_from <= acked_at < tl.stop_sending:
            res.latencies_ms.append((acked_at - sent_at) * 1000)
    return out


async def worker_main(plan: WorkerPlan, conn: Connection) -> WorkerResult:
    res = WorkerResult(plan.worker)
    sockets: dict[int, ClientConnection] = {}
    sem = asyncio.Semaphore(WS_CONNECT_CONCURRENCY)

    async def join(sp: SenderPlan) -> None:
        async with sem:
            ws, welcome = await open_socket(
                f"{plan.ws_base}/ws/rooms/{quote(sp.room_id)}?token={quote(sp.token)}"
            )
        sockets[sp.index] = ws
        you = welcome.get("you")
        if not isinstance(you, dict) or you.get("coins") != sp.coins_before:
            res.violations.add(
                f"welcome of sender {sp.index}: you={you!r}, coins {sp.coins_before}"
            )

    try:
        await asyncio.gather(*(join(sp) for sp in plan.senders))
        tl = await report_ready(conn, len(sockets))
        cpu_before = time.process_time()
        res.senders = list(
            await asyncio.gather(
                *(run_sender(sockets[sp.index], sp, plan, tl, res) for sp in plan.senders)
            )
        )
        res.cpu_s = time.process_time() - cpu_before
    finally:
        await close_all(sockets.values())
    return res


def run_load(
    args: Args, ws_base: str, fx: Fixture, server_pid: int | None
) -> RunOutcome[WorkerResult]:
    plans = [
        WorkerPlan(
            w, ws_base, tuple(fx.plans[w :: args.workers]), fx.gift_coins, fx.diamonds_per_coin
        )
        for w in range(args.workers)
    ]
    return run_workers(
        worker_main,
        plans,
        args,
        after_s=args.grace_s,
        ready_timeout_s=WORKERS_READY_TIMEOUT_S,
        server_pid=server_pid,
        log=log,
    )


# --- verification and report --------------------------------------------------------------


async def verify(
    api: Api, admin_token: str, fx: Fixture, results: list[WorkerResult]
) -> tuple[dict[str, Any], list[str]]:
    """The money checks: audit, per-sender coins, per-host diamonds, unique seqs."""
    failures: list[str] = []
    outcomes = sorted((o for r in results for o in r.senders), key=lambda o: o.index)
    mes = await bounded_gather(len(fx.senders), lambda i: api.me(fx.senders[i]))
    coins_after = [int_field(me, "coins") for me in mes]
    coins_debited = sum(
        p.coins_before - after for p, after in zip(fx.plans, coins_after, strict=True)
    )
    coins_acked = sum(o.coins_spent for o in outcomes)
    wrong = [
        f"sender {p.index}: debited {p.coins_before - after}, acked {o.coins_spent}, "
        f"last acked balance {o.last_balance}, balance now {after}"
        for p, o, after in zip(fx.plans, outcomes, coins_after, strict=True)
        if p.coins_before - after != o.coins_spent
        or (o.last_balance is not None and o.last_balance != after)
    ]
    if coins_acked != coins_debited or wrong:
        failures.append(
            f"coins acknowledged ({coins_acked}) != coins debited by GET /api/me ({coins_debited});"
            f" {len(wrong)} senders differ, e.g. {wrong[:3]}"
        )
    room_of = {p.index: p.room_id for p in fx.plans}
    diamonds_acked: Counter[str] = Counter()
    for o in outcomes:
        diamonds_acked[room_of[o.index]] += o.diamonds
    host_mes = await bounded_gather(len(fx.hosts), lambda i: api.me(fx.hosts[i]))
    gained = [
        int_field(me, "diamonds") - d
        for me, d in zip(host_mes, fx.host_diamonds_before, strict=True)
    ]
    wrong_hosts = [
        f"room {room}: host gained {g}, acked {diamonds_acked[room]}"
        for room, g in zip(fx.room_ids, gained, strict=True)
        if g != diamonds_acked[room]
    ]
    if wrong_hosts:
        failures.append(f"host diamonds differ from acknowledged diamonds: {wrong_hosts[:3]}")
    audit = await api.call("GET", "/api/admin/audit", token=admin_token)
    balanced = isinstance(audit, dict) and audit.get("balanced") is True
    if not balanced:
        failures.append(f"GET /api/admin/audit is not balanced: {str(audit)[:500]}")
    seqs: dict[str, list[int]] = {}
    for r in results:
        for room, room_seqs in r.room_seqs.items():
            seqs.setdefault(room, []).extend(room_seqs)
    doubled = sum(len(s) - len(set(s)) for s in seqs.values())
    holes = sum(max(s) - min(s) + 1 - len(set(s)) for s in seqs.values() if s)
    if doubled:
        failures.append(f"{doubled} room seqs were acknowledged to two different gifts")
    figures = {
        "audit_balanced": balanced,
        "coins_acked": coins_acked,
        "coins_debited": coins_debited,
        "diamonds_acked": sum(diamonds_acked.values()),
        "host_diamonds_gained": sum(gained),
        "seq_doubled": doubled,
        "seq_holes": holes,  # seqs no gift_ok named: other events (streak_end), or a gap
    }
    return figures, failures


def measure_figures(
    args: Args, fx: Fixture, run: RunOutcome[WorkerResult]
) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    res = run.results
    latencies = sorted(x for r in res for x in r.latencies_ms)
    errors: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for r in res:
        errors.update(r.errors)
        closed.update(r.closed)
    lost = sum(r.lost for r in res)
    violations = sum(r.violations.count for r in res)
    outcomes = [o for r in res for o in r.senders]
    stopped = Counter(o.stopped for o in outcomes if o.stopped)
    if lost:
        failures.append(
            f"{lost} gift requests lost: no answer within {args.grace_s:g} s of the end"
        )
    if violations:
        examples = [v for r in res for v in r.violations.kept][:5]
        failures.append(f"{violations} contract violations in answers, e.g. {examples}")
    if closed:
        failures.append(f"sockets closed by the server during the run: {dict(closed)}")
    return {
        "cpus": os.cpu_count(),
        "senders": args.senders,
        "rooms": args.rooms,
        "workers": args.workers,
        "warmup_s": args.warmup_s,
        "duration_s": args.duration_s,
        "rate_per_user": args.rate_per_user if args.url is None else "server's own",
        "recharges_per_sender": fx.recharges,
        "gifts_sent": sum(o.sent for o in outcomes),
        "gifts_acked": sum(o.acked for o in outcomes),
        "gifts_acked_measured": len(latencies),
        "gifts_per_s_acked": len(latencies) / args.duration_s,
        "ack_latency_ms_p50": percentile(latencies, 50),
        "ack_latency_ms_p90": percentile(latencies, 90),
        "ack_latency_ms_p99": percentile(latencies, 99),
        "ack_latency_ms_max": latencies[-1] if latencies else None,
        "errors": sum(errors.values()),
        "errors_by_code": counts_text(errors),
        "lost": lost,
        "senders_stopped_early": counts_text(stopped),
        "contract_violations": violations,
        **cpu_figures(run.server_cpu_s, args.duration_s, sum(r.cpu_s for r in res)),
    }, failures


# --- main ---------------------------------------------------------------------------------


def benchmark(args: Args, server: Server) -> tuple[dict[str, Any], list[str]]:
    run_id = secrets.token_hex(3)
    fx = prepare(
        server,
        f"setting up {args.rooms} rooms and {args.senders} senders on {server.base_url}",
        log,
        lambda api: set_up(api, args, run_id),
    )
    log(f"connecting {args.senders} sockets from {args.workers} workers")
    outcome = run_load(args, ws_base_url(server), fx, server.pid)
    figures, failures = measure_figures(args, fx, outcome)

    async def check(api: Api) -> tuple[dict[str, Any], list[str]]:
        return await verify(api, server.admin_token, fx, outcome.results)

    try:
        checked, check_failures = over_http(server.base_url, check)
    except BenchError as exc:  # the figures above still get printed
        checked, check_failures = {}, [f"could not verify the money: {exc}"]
    figures |= checked
    figures["server_peak_rss_mib"] = peak_rss_mib(server.pid)
    return figures, failures + check_failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main(
        "bench_gifts",
        args,
        lambda server: benchmark(args, server),
        sockets=args.senders + args.rooms,
        too_many_sockets=f"{args.senders} sockets exceed the open-file limit",
        audit_token_needed=True,
    )


if __name__ == "__main__":
    sys.exit(main())
