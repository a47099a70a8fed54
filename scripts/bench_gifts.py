"""Gift benchmark: how many gifts a second the server acknowledges, and how fast.

What it measures
----------------
`--senders` users, each signed up and recharged with coins, are spread round-robin over
`--rooms` live rooms (each room hosted by its own user). Every sender holds one WebSocket to its
room (`/ws/rooms/{id}?token=...`) and sends `{"type": "gift", "id": ..., "gift_id": "rose",
"count": 1}`, in one of two ways:

- closed loop (the default, `--pace 0`): a sender keeps exactly one gift outstanding: it sends,
  waits for the `gift_ok` or `error` carrying that id, then sends the next. The ack latency
  runs from the send to the answer, for answers inside the measured window.
- open loop (`--pace R`): each sender sends R gifts a second on its own fixed schedule, the
  senders' phases staggered over one period (so N senders offer an even N x R a second),
  whatever the answers do, with up to 32 gifts in flight; a gift due while 32 are unanswered
  waits for an answer and is sent late (`capped_sends`). The ack latency runs from the instant
  the gift was DUE, not sent, for gifts due inside the window, so a server that holds answers
  back is charged for the gifts that piled up behind them (no coordinated omission). It prints
  the offered rate (N x R) and the achieved one.

Why both: with one gift outstanding per sender, Little's law makes the mean latency equal to
senders / throughput, so 1,000 closed-loop senders at 10,000 gifts/s have a mean ack latency
of 100 ms by arithmetic, whatever the server does. The issue's target, "10,000 gifts/s from
1,000 senders over 100 rooms, p99 ack under 100 ms", is an open-loop target: 1,000 senders
each at the contract's 10 gifts/s, `--senders 1000 --rooms 100 --pace 10`. The closed loop
measures the most the server acknowledges; the open loop, the latency at a given load.

After `--warmup` seconds it measures for `--duration` seconds: gifts acknowledged per second,
ack latency p50 / p90 / p99 / max (`time.monotonic()` in the sending process, so it includes
the load generator's own delay), errors by code. A `rate_limited` answer holds the sender's
next sends for its `retry_after_ms`; `insufficient_coins` stops the sender. A request still
without an answer `--grace` seconds after sending stopped is lost. The server's peak RSS
(VmHWM) and the CPU seconds it used during the measured window are read from /proc, and the
load generator's CPU in the window, per worker process (`loadgen_worker_cores`); a worker
above 0.9 of a core prints a warning, since it, not the server, may then be what was measured.

The senders (`scripts/giftload.py` on `scripts/wssend.py`) are raw non-blocking sockets on an
epoll loop, not an asyncio client: a sender parses only the frames that name one of its
request ids (a `bytes in` test) and drops its room's event frames unparsed.

Then it checks the money, and exits 1 loudly on any mismatch or loss:

- `GET /api/admin/audit` answers `"balanced": true`;
- per sender, the coins lost according to `GET /api/me` (before minus after) equal the sum of
  `coins_spent` acknowledged to it, and its last acknowledged balance is its balance after;
- per host, the diamonds gained equal the `diamonds` acknowledged for gifts in its room;
- no room `seq` is acknowledged twice, and every `gift_ok` is self-consistent: the price and
  diamonds of a Rose, never `duplicate`, and the balances a sender was acknowledged are its
  coins minus one price per gift (in order in the closed loop, as a set when paced).

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_gifts.py                        # 500 senders, 50 rooms, 10 s
    python scripts/bench_gifts.py --senders 50 --rooms 5 --duration 3 --json /tmp/gifts.json
    python scripts/bench_gifts.py --senders 1000 --rooms 100 --pace 10   # the issue's target

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
import math
import os
import secrets
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a file (`python scripts/bench_gifts.py`), sys.path[0] is scripts/ itself, so the
# `scripts` package is not importable; put the repository root first. Under
# `python -m scripts.bench_gifts` __package__ is "scripts" and this is skipped.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Ruff's E402 accepts imports after a `sys.path` change, so these need no suppression.
from scripts.benchkit import (
    RATE_PER_USER_MAX,
    WORKERS_MAX,
    Account,
    Api,
    BenchArgs,
    BenchError,
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
    over_http,
    peak_rss_mib,
    percentile,
    prepare,
    run_workers,
    target_problems,
    window_problems,
)
from scripts.giftload import SenderPlan, WorkerPlan, WorkerResult, worker_main
from scripts.wssend import GIFT_IN_FLIGHT_MAX

WORKERS_READY_TIMEOUT_S = 180.0

SENDERS_MAX = 10_000
ROOMS_MAX = 1_000
GRACE_S_MAX = 60.0
RECHARGES_MAX = 20
PACE_PER_S_MIN = 0.1
PACE_PER_S_MAX = 1_000.0
PACED_RATE_PER_S_MAX = 100_000.0
LOADGEN_CORES_SATURATED = 0.9  # a worker busier than this in the window: figures are suspect

log = logger("bench_gifts")


# --- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Args(BenchArgs):
    """The common `BenchArgs`, then this benchmark's own."""

    senders: int
    rooms: int
    grace_s: float
    recharges: int | None
    pace_per_s: float


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--senders", type=int, default=500, help="gift senders (default 500)")
    p.add_argument("--rooms", type=int, default=50, help="rooms, one host each (default 50)")
    p.add_argument(
        "--pace", type=float, default=0.0, help="gifts/s per sender, open loop (0: closed loop)"
    )
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
        pace_per_s=ns.pace,
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
    if a.pace_per_s and not PACE_PER_S_MIN <= a.pace_per_s <= PACE_PER_S_MAX:
        yield f"--pace must be 0 (closed loop) or {PACE_PER_S_MIN:g}-{PACE_PER_S_MAX:g} gifts/s"
    if a.pace_per_s * a.senders > PACED_RATE_PER_S_MAX:
        yield f"--pace x --senders must stay under {PACED_RATE_PER_S_MAX:,} gifts/s"
    yield from target_problems(a)


# --- set-up of users, rooms and coins -----------------------------------------------------


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
    per_sender_rate = args.pace_per_s or min(10_000.0, 100_000.0 / args.senders)
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


def run_load(
    args: Args, host_port: str, fx: Fixture, server_pid: int | None
) -> RunOutcome[WorkerResult]:
    plans = [
        WorkerPlan(
            worker=w,
            host_port=host_port,
            senders=tuple(fx.plans[w :: args.workers]),
            gift_coins=fx.gift_coins,
            diamonds_per_coin=fx.diamonds_per_coin,
            pace_per_s=args.pace_per_s,
            total_senders=args.senders,
            in_flight_max=GIFT_IN_FLIGHT_MAX,
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
    worker_cores = [r.cpu_s / args.duration_s for r in res]
    saturated = [w for w, cores in enumerate(worker_cores) if cores > LOADGEN_CORES_SATURATED]
    for w in saturated:
        log(
            f"warning: load generator worker {w} used {worker_cores[w]:.2f} of a core in the"
            " measured window: it may be what was measured, not the server"
        )
    paced = args.pace_per_s > 0
    return {
        "cpus": os.cpu_count(),
        "senders": args.senders,
        "rooms": args.rooms,
        "workers": args.workers,
        "warmup_s": args.warmup_s,
        "duration_s": args.duration_s,
        "rate_per_user": args.rate_per_user if args.url is None else "server's own",
        "recharges_per_sender": fx.recharges,
        "loop": f"open, {args.pace_per_s:g} gifts/s per sender" if paced else "closed",
        "gifts_per_s_offered": args.pace_per_s * args.senders if paced else None,
        "gifts_sent": sum(o.sent for o in outcomes),
        "gifts_acked": sum(o.acked for o in outcomes),
        "gifts_acked_measured": len(latencies),
        "gifts_per_s_acked": sum(r.acked_in_window for r in res) / args.duration_s,
        "ack_latency_ms_p50": percentile(latencies, 50),
        "ack_latency_ms_p90": percentile(latencies, 90),
        "ack_latency_ms_p99": percentile(latencies, 99),
        "ack_latency_ms_max": latencies[-1] if latencies else None,
        "errors": sum(errors.values()),
        "errors_by_code": counts_text(errors),
        "lost": lost,
        "senders_stopped_early": counts_text(stopped),
        "contract_violations": violations,
        "in_flight_max": GIFT_IN_FLIGHT_MAX if paced else 1,
        "capped_sends": sum(r.capped_sends for r in res) if paced else None,
        "send_behind_ms_max": max(r.behind_s_max for r in res) * 1000 if paced else None,
        "gifts_unsent": sum(r.unsent for r in res) if paced else None,
        **cpu_figures(run.server_cpu_s, args.duration_s, sum(r.cpu_s for r in res)),
        "loadgen_worker_cores": ",".join(f"{cores:.2f}" for cores in worker_cores),
        "loadgen_saturated": bool(saturated),
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
    outcome = run_load(args, server.base_url.removeprefix("http://"), fx, server.pid)
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
