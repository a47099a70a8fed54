"""Group-commit benchmark: what the gift writer costs per gift, with no network in the way.

What it measures
----------------
`bench_gifts.py` measures the whole server with the load generator on the same cores, so its
figures move by 10-20% from run to run. This one measures the part the writer thread does
alone: `store.write_batch` (the SQLite adapter's group commit, the same function the server
runs), on a real SQLite file opened the way the server opens it (WAL, `synchronous = FULL`,
the server's cache and checkpoint settings). `--senders` users with coins gift to `--rooms`
live rooms, sender i in room i mod rooms, in batches of `--batch` gifts; after `--warmup`
batches it times `--batches` more and prints the wall time per batch (mean, p50, p99) and per
gift, and the process's CPU time per gift. Then it checks the ledger: the audit balanced, every
gift accepted, and the coins debited equal to the gifts.

How to run
----------
From the repository root, with the project installed (`bash scripts/test.sh` once)::

    .venv/bin/python scripts/bench_commit.py          # 1,000 senders, 100 rooms, 500 a batch
    .venv/bin/python scripts/bench_commit.py --batches 20 --senders 50 --rooms 5

The database lives in a temporary directory, removed at the end. Every count is bounded. The
last block prints one `name: value` per line, ending with `result: PASS` or `FAIL`; exit
status 0 pass, 1 a check failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import Settings
from server.domain.catalog import Gift, Package
from server.domain.ledger import audit
from server.domain.money import Rates, RoomId, TransferId
from server.domain.rooms import RoomBook, RoomEvent
from server.protocol.messages import encode_event
from server.storage.base import GiftAccepted, GiftCommand, LedgerStore, UserRow
from server.storage.sqlite import SqliteStore
from server.web.runtime import load_catalog

SENDERS_MAX = 20_000
ROOMS_MAX = 2_000
BATCH_MAX = 5_000
BATCHES_MAX = 1_000
BORN = dt.date(1990, 1, 1)


class Planner:
    """The rooms' books, as the gift service keeps them for a batch."""

    def __init__(self, books: dict[RoomId, RoomBook]) -> None:
        self.books = books

    def book_for_batch(self, room: RoomId) -> RoomBook:
        return self.books[room]

    def encode(self, event: RoomEvent) -> bytes:
        return encode_event(event)


def _respond(transfer: TransferId, coins_after: int) -> tuple[int, bytes]:
    return 200, b"{}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--senders", type=int, default=1000, help="gift senders (1000)")
    p.add_argument("--rooms", type=int, default=100, help="live rooms (100)")
    p.add_argument("--batch", type=int, default=500, help="gifts per group commit (500)")
    p.add_argument("--batches", type=int, default=100, help="timed batches (100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed batches first (10)")
    ns = p.parse_args(argv)
    problems = []
    if not 1 <= ns.senders <= SENDERS_MAX:
        problems.append(f"--senders must be 1-{SENDERS_MAX}")
    if not 1 <= ns.rooms <= min(ROOMS_MAX, ns.senders):
        problems.append(f"--rooms must be 1-{ROOMS_MAX} and at most --senders")
    if not 1 <= ns.batch <= BATCH_MAX:
        problems.append(f"--batch must be 1-{BATCH_MAX}")
    if not 1 <= ns.batches <= BATCHES_MAX or not 0 <= ns.warmup <= BATCHES_MAX:
        problems.append(f"--batches must be 1-{BATCHES_MAX}, --warmup 0-{BATCHES_MAX}")
    if problems:
        p.error("; ".join(problems))
    return ns


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, directory: Path) -> bool:
    settings = Settings()
    catalog = load_catalog("")
    gift: Gift = min(catalog.gifts.values(), key=lambda g: g.coins)
    package: Package = max(catalog.packages.values(), key=lambda p: p.coins)
    rates = Rates(settings.diamonds_per_coin, settings.cents_per_100_diamonds)
    total = (args.warmup + args.batches) * args.batch
    per_sender = -(-total // args.senders) * gift.coins
    store = await SqliteStore.open(
        f"sqlite:///{directory / 'ledger.db'}",
        settings.db_busy_timeout_ms,
        settings.db_cache_mib,
        settings.db_checkpoint_pages,
    )
    try:
        now_ms = int(time.time() * 1000)
        hosts, rooms = [], []
        for i in range(args.rooms):
            host = await store.create_user(f"host{i}", BORN, now_ms)
            assert host is not None
            room = await store.create_room(host.id, f"room {i}", now_ms, 1)
            assert room is not None
            hosts.append(host)
            rooms.append(room)
        senders = []
        for i in range(args.senders):
            sender = await store.create_user(f"sender{i}", BORN, now_ms)
            assert sender is not None
            for k in range(-(-per_sender // package.coins)):
                await store.recharge(sender.id, package, "bench", f"k{k}", "h", now_ms, _respond)
            senders.append(sender)
        books = {}
        for room in rooms:
            book = await store.load_book(room.id, settings.streak_window_ms)
            assert book is not None
            books[room.id] = book
        planner = Planner(books)
        coins_before = sum([(await store.balances(s.id))[0] for s in senders])

        walls: list[float] = []
        cpu_start = 0.0
        accepted = 0
        for b in range(args.warmup + args.batches):
            if b == args.warmup:
                cpu_start = time.process_time()
            at_ms = int(time.time() * 1000)
            commands = []
            for k in range(args.batch):
                n = b * args.batch + k
                sender, room = senders[n % args.senders], rooms[(n % args.senders) % args.rooms]
                commands.append(
                    GiftCommand(
                        sender.id,
                        sender.name,
                        f"g{n}",
                        room.id,
                        room.host,
                        gift,
                        1,
                        gift.coins,
                        rates.diamonds_for(gift.coins),
                        at_ms,
                    )
                )
            started = time.perf_counter()
            result = await store.write_batch(commands, planner)
            if b >= args.warmup:
                walls.append(time.perf_counter() - started)
            accepted += sum(isinstance(o, GiftAccepted) for o in result.outcomes)
        cpu_s = time.process_time() - cpu_start
        return await report(args, store, walls, cpu_s, accepted, total, coins_before, senders, gift)
    finally:
        await store.close()


async def report(
    args: argparse.Namespace,
    store: LedgerStore,
    walls: list[float],
    cpu_s: float,
    accepted: int,
    total: int,
    coins_before: int,
    senders: Sequence[UserRow],
    gift: Gift,
) -> bool:
    coins_after = sum([(await store.balances(s.id))[0] for s in senders])
    balanced = audit(await store.audit_input()).balanced
    timed = args.batches * args.batch
    figures = {
        "senders": args.senders,
        "rooms": args.rooms,
        "gifts_per_batch": args.batch,
        "batches_timed": args.batches,
        "batch_ms_mean": 1000 * sum(walls) / len(walls),
        "batch_ms_p50": 1000 * percentile(walls, 0.5),
        "batch_ms_p99": 1000 * percentile(walls, 0.99),
        "us_per_gift_wall": 1e6 * sum(walls) / timed,
        "us_per_gift_cpu": 1e6 * cpu_s / timed,
        "gifts_per_s_one_writer": timed / sum(walls),
        "gifts_accepted": accepted,
        "coins_debited": coins_before - coins_after,
        "audit_balanced": str(balanced).lower(),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.1f}" if isinstance(value, float) else f"{name}: {value}")
    ok = balanced and accepted == total and coins_before - coins_after == total * gift.coins
    print(f"result: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="giftcast-commit-") as directory:
        ok = asyncio.run(run(args, Path(directory)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
