"""The LedgerStore contract, run over every adapter; then the database's own guards (SQLite).

Each adapter opens a fresh, real database per test. Every test that uses `store` ends with the
ledger audited from its journal: it must still balance.

A gift batch needs a `BatchPlanner`: `Planner` below is the smallest one, holding `RoomBook`s
loaded through the store itself, as the gift service does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.domain.catalog import Gift, Package
from server.domain.errors import Code
from server.domain.ledger import SystemAccount, audit, coin_account, diamond_account
from server.domain.money import Rates, RoomId, TransferId, UserId
from server.domain.rooms import EventKind, RoomBook, RoomEvent, RoomStatus, StreakView
from server.protocol.messages import encode_event
from server.storage import open_store
from server.storage.base import (
    BatchResult,
    Command,
    GiftAccepted,
    GiftCommand,
    GiftOk,
    GiftRefused,
    LedgerStore,
    RoomAction,
    RoomCommand,
    RoomDone,
    RoomRow,
    StoredResponse,
    UserRow,
)

# One line per adapter: a fresh, empty database URL for a test's temporary directory.
ADAPTERS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp}/x.db",
}

NOW_MS = 1_795_521_600_000
WINDOW_MS = 3000
BORN = dt.date(1990, 1, 1)
RATES = Rates()
ROSE = Gift("rose", "Rose", 1, True, "small")
TIKTOK = Gift("tiktok", "TikTok", 1, True, "small")
CORGI = Gift("corgi", "Corgi", 299, False, "medium")
COINS_65 = Package("coins_65", 65, 99, "USD")
COINS_330 = Package("coins_330", 330, 499, "USD")


@pytest.fixture(params=list(ADAPTERS))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return ADAPTERS[request.param](tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[LedgerStore]:
    opened = await open_store(store_url)
    try:
        yield opened
        report = audit(await opened.audit_input())
        assert report.balanced, report
    finally:
        await opened.close()


class Planner:
    """The rooms' books as the gift service keeps them: loaded from the store, planned on."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.books: dict[RoomId, RoomBook] = {}

    async def load(self, room: RoomId) -> RoomBook:
        book = await self.store.load_book(room, WINDOW_MS)
        assert book is not None
        self.books[room] = book
        return book

    def book_for_batch(self, room: RoomId) -> RoomBook:
        return self.books[room]

    def encode(self, event: RoomEvent) -> bytes:
        return encode_event(event)

    async def write(self, *commands: Command) -> BatchResult:
        for room in {c.room for c in commands} - set(self.books):
            await self.load(room)
        return await self.store.write_batch(commands, self)


# --- helpers ------------------------------------------------------------------------------


async def adult(store: LedgerStore, name: str) -> UserRow:
    row = await store.create_user(name, BORN, NOW_MS)
    assert row is not None
    return row


def respond(transfer: TransferId, coins_after: int) -> tuple[int, bytes]:
    return 200, orjson.dumps({"transaction_id": transfer, "coins": coins_after})


async def topup(
    store: LedgerStore, user: UserRow, package: Package = COINS_330, key: str | None = None
) -> StoredResponse:
    key = key or uuid.uuid4().hex
    return await store.recharge(
        user.id, package, "test-charge", key, f"hash:{package.id}", NOW_MS, respond
    )


async def go_live(store: LedgerStore, host: UserRow) -> RoomRow:
    room = await store.create_room(host.id, "my live", NOW_MS, 1)
    assert room is not None
    return room


def send(
    sender: UserRow,
    room: RoomRow,
    request_id: str,
    gift: Gift = ROSE,
    count: int = 1,
    at_ms: int = NOW_MS,
) -> GiftCommand:
    coins = gift.coins * count
    return GiftCommand(
        sender=sender.id,
        sender_name=sender.name,
        request_id=request_id,
        room=room.id,
        host=room.host,
        gift=gift,
        count=count,
        coins=coins,
        diamonds=RATES.diamonds_for(coins),
        at_ms=at_ms,
    )


def seqs(bodies: Sequence[bytes] | None) -> list[int]:
    assert bodies is not None
    return [orjson.loads(body)["seq"] for body in bodies]


def refused(outcome: object) -> Code:
    assert isinstance(outcome, GiftRefused), outcome
    return outcome.refusal.code


# --- users and balances ------------------------------------------------------------------


async def test_users_and_case_insensitive_names(store: LedgerStore) -> None:
    alice = await adult(store, "alice")
    assert (alice.name, alice.birthdate, alice.created_ms) == ("alice", BORN, NOW_MS)
    assert await store.get_user(alice.id) == alice
    for taken in ("alice", "ALICE", "Alice", "aLiCe"):
        assert await store.create_user(taken, BORN, NOW_MS) is None
    bob = await adult(store, "Bob")
    assert bob.id != alice.id
    assert await store.create_user("bob", BORN, NOW_MS) is None
    assert await store.get_user(UserId(10_000)) is None
    assert await store.balances(alice.id) == (0, 0)
    assert await store.balances(UserId(10_000)) == (0, 0)


# --- recharges and idempotency -----------------------------------------------------------


async def test_a_recharge_credits_once_per_key(store: LedgerStore) -> None:
    alice = await adult(store, "alice")
    bob = await adult(store, "bob")
    first = await topup(store, alice, COINS_330, key="k1")
    assert first.status == 200
    assert orjson.loads(first.body)["coins"] == 330
    assert await store.balances(alice.id) == (330, 0)

    again = await topup(store, alice, COINS_330, key="k1")
    assert again == first
    assert await store.stored_response(alice.id, "k1") == first
    assert await store.balances(alice.id) == (330, 0)

    # The first answer comes back even when the repeat asks for something else: the caller
    # compares the request hashes and answers `idempotency_conflict`.
    other = await topup(store, alice, COINS_65, key="k1")
    assert other.request_hash == "hash:coins_330"
    assert await store.balances(alice.id) == (330, 0)

    await topup(store, alice, COINS_65, key="k2")
    assert await store.balances(alice.id) == (395, 0)
    # Keys are scoped to their user.
    assert await store.stored_response(bob.id, "k1") is None
    await topup(store, bob, COINS_65, key="k1")
    assert await store.balances(bob.id) == (65, 0)
    assert await store.balances(alice.id) == (395, 0)

    items = await store.transactions(alice.id, 10, None)
    assert [(t.kind, t.coins, t.coins_after) for t in items] == [
        ("recharge", 65, 395),
        ("recharge", 330, 330),
    ]
    assert (items[0].package_id, items[0].price_cents, items[0].currency) == ("coins_65", 99, "USD")


async def test_concurrent_recharges_with_one_key_credit_once(store: LedgerStore) -> None:
    alice = await adult(store, "alice")
    answers = await asyncio.gather(*(topup(store, alice, key="same") for _ in range(20)))
    assert len(set(answers)) == 1
    assert await store.balances(alice.id) == (330, 0)
    assert (await store.audit_input()).transfers == 1


async def test_concurrent_recharges_with_different_keys_all_credit(store: LedgerStore) -> None:
    alice = await adult(store, "alice")
    answers = await asyncio.gather(*(topup(store, alice, COINS_65, key=f"k{n}") for n in range(20)))
    assert sorted(orjson.loads(a.body)["coins"] for a in answers) == [65 * n for n in range(1, 21)]
    assert await store.balances(alice.id) == (65 * 20, 0)


# --- gifts ----------------------------------------------------------------------------------


async def test_an_accepted_gift_debits_the_sender_and_credits_the_host(
    store: LedgerStore,
) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    planner = Planner(store)

    result = await planner.write(send(alice, room, "r1", CORGI))

    # 330 coins bought for $4.99: 299 of them cost 499,000 * 299 // 330 millicents
    ok = GiftOk(seq=1, coins_after=31, coins_spent=299, diamonds=299, cost_millicents=452_124)
    assert result.outcomes == [GiftAccepted(ok)]
    ((event, body),) = result.events
    assert (event.kind, event.seq, event.first) == (EventKind.GIFT, 1, True)
    assert body == encode_event(event)
    assert await store.balances(alice.id) == (31, 0)
    assert await store.balances(host.id) == (0, 299)
    assert await store.find_gift(alice.id, "r1") == ok
    assert await store.find_gift(host.id, "r1") is None
    found = await store.get_room(room.id)
    assert found is not None and found.seq == 1

    sent = await store.transactions(alice.id, 10, None)
    assert [(t.kind, t.coins, t.counterparty) for t in sent] == [
        ("gift_sent", -299, host.id),
        ("recharge", 330, None),
    ]
    received = await store.transactions(host.id, 10, None)
    assert [(t.kind, t.diamonds, t.counterparty_name) for t in received] == [
        ("gift_received", 299, "alice")
    ]


async def test_a_duplicate_request_id_in_one_batch_answers_the_first_outcome(
    store: LedgerStore,
) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    result = await Planner(store).write(
        send(alice, room, "r1", ROSE, 5),
        send(alice, room, "r1", CORGI),  # the same id again, whatever it asks for
        send(alice, room, "r2", ROSE),
    )
    first = GiftOk(seq=1, coins_after=325, coins_spent=5, diamonds=5, cost_millicents=7_560)
    assert result.outcomes == [
        GiftAccepted(first),
        GiftAccepted(first, duplicate=True),
        # the next coin costs what is left of the basis, averaged: 491,440 // 325
        GiftAccepted(
            GiftOk(seq=2, coins_after=324, coins_spent=1, diamonds=1, cost_millicents=1_512)
        ),
    ]
    assert [e.seq for e, _ in result.events] == [1, 2]
    assert await store.balances(alice.id) == (324, 0)


async def test_a_duplicate_request_id_across_batches_answers_the_first_outcome(
    store: LedgerStore,
) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    planner = Planner(store)
    (first,) = (await planner.write(send(alice, room, "r1", CORGI))).outcomes
    assert isinstance(first, GiftAccepted) and not first.duplicate

    again = await planner.write(send(alice, room, "r1", CORGI, at_ms=NOW_MS + 10))
    assert again.outcomes == [GiftAccepted(first.ok, duplicate=True)]
    assert again.events == []
    assert await store.balances(alice.id) == (31, 0)
    assert await store.balances(host.id) == (0, 299)
    found = await store.get_room(room.id)
    assert found is not None and found.seq == 1
    # The id belongs to its sender: someone else may use it.
    bob = await adult(store, "bob")
    await topup(store, bob)
    (other,) = (await planner.write(send(bob, room, "r1", ROSE))).outcomes
    assert other == GiftAccepted(
        GiftOk(seq=2, coins_after=329, coins_spent=1, diamonds=1, cost_millicents=1_512)
    )


async def test_insufficient_coins_are_refused_without_writes(store: LedgerStore) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice, COINS_65)
    room = await go_live(store, host)
    planner = Planner(store)
    before = await store.audit_input()

    result = await planner.write(send(alice, room, "r1", CORGI))

    (outcome,) = result.outcomes
    assert refused(outcome) is Code.INSUFFICIENT_COINS
    assert isinstance(outcome, GiftRefused)
    assert "299" in outcome.refusal.message and "65" in outcome.refusal.message
    assert result.events == []
    assert await store.balances(alice.id) == (65, 0)
    assert await store.balances(host.id) == (0, 0)
    assert await store.find_gift(alice.id, "r1") is None
    after = await store.audit_input()
    assert (after.transfers, after.entries) == (before.transfers, before.entries)
    found = await store.get_room(room.id)
    assert found is not None and found.seq == 0
    assert planner.books[room.id].seq == 0
    assert await store.events_after(room.id, 0, 10) == []

    # Only accepted gifts are remembered: the same id, resent with coins, is judged afresh.
    await topup(store, alice, COINS_330)
    (retry,) = (await planner.write(send(alice, room, "r1", CORGI))).outcomes
    # 65 coins for $0.99 and 330 for $4.99: 299 of the 395 cost 598,000 * 299 // 395 millicents
    assert retry == GiftAccepted(
        GiftOk(seq=1, coins_after=96, coins_spent=299, diamonds=299, cost_millicents=452_663)
    )


async def test_the_guarded_debit_runs_gift_by_gift_within_a_batch(store: LedgerStore) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)  # 330: one corgi, not two
    room = await go_live(store, host)
    result = await Planner(store).write(
        send(alice, room, "r1", CORGI),
        send(alice, room, "r2", CORGI),
        send(alice, room, "r3", ROSE, 31),
        send(alice, room, "r4", ROSE),
    )
    assert [type(o) for o in result.outcomes] == [
        GiftAccepted,
        GiftRefused,
        GiftAccepted,
        GiftRefused,
    ]
    assert refused(result.outcomes[1]) is Code.INSUFFICIENT_COINS
    assert [e.seq for e, _ in result.events] == [1, 2]
    assert await store.balances(alice.id) == (0, 0)
    assert await store.balances(host.id) == (0, 330)


async def test_an_ended_room_refuses_gifts_and_ends_once(store: LedgerStore) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    planner = Planner(store)
    await planner.write(send(alice, room, "r1", ROSE))  # opens a streak

    ended = await planner.write(RoomCommand(room.id, RoomAction.END, NOW_MS + 100))
    assert ended.outcomes == [RoomDone(changed=True)]
    assert [(e.kind, e.seq) for e, _ in ended.events] == [
        (EventKind.STREAK_END, 2),
        (EventKind.ROOM_ENDED, 3),
    ]
    found = await store.get_room(room.id)
    assert found is not None
    assert (found.status, found.seq, found.ended_ms) == (RoomStatus.ENDED, 3, NOW_MS + 100)
    assert room.id not in [r.id for r in await store.live_rooms(10)]

    late = await planner.write(send(alice, room, "r2", ROSE, at_ms=NOW_MS + 200))
    assert refused(late.outcomes[0]) is Code.ROOM_NOT_LIVE
    assert late.events == []
    assert await store.balances(alice.id) == (329, 0)

    twice = await planner.write(RoomCommand(room.id, RoomAction.END, NOW_MS + 300))
    assert twice.outcomes == [RoomDone(changed=False)]
    assert twice.events == []
    found = await store.get_room(room.id)
    assert found is not None and (found.seq, found.ended_ms) == (3, NOW_MS + 100)
    # A reloaded book knows the room has ended.
    assert (await planner.load(room.id)).status is RoomStatus.ENDED


async def test_a_host_cannot_gift_in_their_own_room(store: LedgerStore) -> None:
    host = await adult(store, "host")
    await topup(store, host)
    room = await go_live(store, host)
    result = await Planner(store).write(send(host, room, "r1", ROSE))
    assert refused(result.outcomes[0]) is Code.SELF_GIFT
    assert await store.balances(host.id) == (330, 0)


# --- room history -------------------------------------------------------------------------


async def test_events_after_replays_in_order(store: LedgerStore) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    planner = Planner(store)
    written: list[bytes] = []
    for n in range(5):
        result = await planner.write(send(alice, room, f"r{n}", CORGI if n == 2 else ROSE))
        written += [body for _, body in result.events]
    assert seqs(written) == [1, 2, 3, 4, 5, 6]  # the corgi ends a streak first

    assert await store.events_after(room.id, 0, 100) == written
    assert await store.events_after(room.id, 2, 100) == written[2:]
    assert await store.events_after(room.id, 0, 2) == written[:2]
    assert await store.events_after(room.id, 5, 100) == written[5:]
    assert await store.events_after(room.id, 6, 100) == []


async def test_events_after_a_since_ahead_of_the_room_is_a_resync(store: LedgerStore) -> None:
    """The client knows of events this room never numbered: its state is from elsewhere."""
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    await Planner(store).write(send(alice, room, "r1"), send(alice, room, "r2"))
    assert await store.events_after(room.id, 2, 100) == []
    assert [await store.events_after(room.id, 2 + ahead, 100) for ahead in (1, 2, 1000)] == [
        None,
        None,
        None,
    ]


async def test_events_after_pruned_history_is_a_resync(store: LedgerStore) -> None:
    host, alice = await adult(store, "host"), await adult(store, "alice")
    await topup(store, alice)
    room = await go_live(store, host)
    planner = Planner(store)
    for n in range(6):
        await planner.write(send(alice, room, f"r{n}", CORGI if n == 0 else ROSE))

    await store.prune_events(room.id, keep=2)  # keeps seq 5 and 6
    assert await store.events_after(room.id, 0, 100) is None
    assert await store.events_after(room.id, 3, 100) is None
    assert seqs(await store.events_after(room.id, 4, 100)) == [5, 6]
    assert await store.events_after(room.id, 6, 100) == []

    await store.prune_events(room.id, keep=0)
    assert await store.events_after(room.id, 5, 100) is None
    assert await store.events_after(room.id, 6, 100) == []
    # Pruning history loses no money and no room state.
    assert await store.balances(alice.id) == (330 - 299 - 5, 0)
    book = await store.load_book(room.id, WINDOW_MS)
    assert book is not None and book.seq == 6


async def test_events_after_an_unknown_room_does_not_crash(store: LedgerStore) -> None:
    assert await store.events_after(RoomId(999), 0, 10) in (None, [])


# --- the book after a restart ---------------------------------------------------------------


def book_state(book: RoomBook) -> dict[str, Any]:
    return {
        "room": book.room,
        "host": book.host,
        "status": book.status,
        "seq": book.seq,
        "top": book.top(10),
        "spent": book.spent,
        "names": book.names,
        "goal": None
        if book.goal is None
        else (book.goal.title, book.goal.coins, book.goal.progress),
        "streaks": {
            uid: (s.id, s.sender, s.sender_name, s.gift, s.total, s.last_ms)
            for uid, s in book.streaks.items()
        },
    }


async def test_load_book_rebuilds_the_room_after_reopening(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        host = await adult(store, "host")
        alice, bob, carol = [await adult(store, n) for n in ("alice", "bob", "carol")]
        for user in (alice, bob, carol):
            await topup(store, user)
        room = await go_live(store, host)
        planner = Planner(store)
        await planner.write(send(bob, room, "b1", ROSE, 10, at_ms=NOW_MS))
        await planner.write(
            RoomCommand(room.id, RoomAction.SET_GOAL, NOW_MS + 1, "new mic", 1000),
            send(alice, room, "a1", ROSE, 2, at_ms=NOW_MS + 10),
            send(carol, room, "c1", ROSE, at_ms=NOW_MS + 20),
            send(alice, room, "a2", ROSE, 1, at_ms=NOW_MS + 1000),  # alice's streak: 3
        )
        await planner.write(
            send(carol, room, "c2", TIKTOK, at_ms=NOW_MS + 1500),  # ends carol's rose streak
            send(alice, room, "a3", ROSE, 7, at_ms=NOW_MS + 2000),  # alice's streak: 10
            send(bob, room, "b2", CORGI, at_ms=NOW_MS + 2500),  # ends bob's, no new streak
        )
        before = planner.books[room.id]
        assert set(before.streaks) == {alice.id, carol.id}
        expected = book_state(before)
        assert expected["top"] == [
            (bob.id, "bob", 309),
            (alice.id, "alice", 10),
            (carol.id, "carol", 2),
        ]
        assert expected["goal"] == ("new mic", 1000, 10 + 1 + 1 + 299)
    finally:
        await store.close()

    reopened = await open_store(store_url)
    try:
        book = await reopened.load_book(room.id, WINDOW_MS)
        assert book is not None
        assert book_state(book) == expected
        assert await reopened.load_book(RoomId(999), WINDOW_MS) is None

        # The room goes on where it left off: alice's streak continues, bob is no longer new.
        planner = Planner(reopened)
        result = await planner.write(
            send(alice, room, "a4", ROSE, at_ms=NOW_MS + 2500 + WINDOW_MS - 500),
            send(bob, room, "b3", ROSE, at_ms=NOW_MS + 4000),
            send(alice, room, "a1", ROSE, at_ms=NOW_MS + 4001),  # a resend, after a restart
        )
        (a4, _), (b3, _) = result.events
        assert (a4.seq, a4.first) == (expected["seq"] + 1, False)
        assert a4.streak == StreakView(before.streaks[alice.id].id, 11, ended=False)
        assert (b3.first, b3.streak) == (False, StreakView(b3.seq, 1, ended=False))
        assert result.outcomes[2] == GiftAccepted(
            GiftOk(seq=2, coins_after=328, coins_spent=2, diamonds=2, cost_millicents=3_024),
            duplicate=True,
        )

        # Streaks that expired and were recorded stay ended after a reload.
        await planner.write(RoomCommand(room.id, RoomAction.EXPIRE_STREAKS, NOW_MS + 60_000))
        assert planner.books[room.id].streaks == {}
        again = await reopened.load_book(room.id, WINDOW_MS)
        assert again is not None
        assert book_state(again) == book_state(planner.books[room.id])
        assert again.streaks == {}
        report = audit(await reopened.audit_input())
        assert report.balanced, report
    finally:
        await reopened.close()


# --- the audit ----------------------------------------------------------------------------


async def test_the_audit_totals_after_a_busy_session(store: LedgerStore) -> None:
    host, alice, bob = [await adult(store, n) for n in ("host", "alice", "bob")]
    await topup(store, alice, COINS_330)
    await topup(store, bob, COINS_65)
    room = await go_live(store, host)
    planner = Planner(store)
    await planner.write(
        send(alice, room, "a1", CORGI),
        send(bob, room, "b1", CORGI),  # refused: 65 coins
        send(bob, room, "b2", ROSE, 60),
        send(alice, room, "a1", CORGI),  # duplicate
    )
    await planner.write(RoomCommand(room.id, RoomAction.END, NOW_MS + 1))
    report = audit(await store.audit_input())
    assert report.balanced, report
    assert report.totals == {
        "coin": {"sum": 0, "issued": 395, "held_by_users": 31 + 5, "spent": 359, "refunded": 0},
        "diamond": {"sum": 0, "issued": 359, "held_by_users": 359, "reserved": 0, "paid_out": 0},
        # $4.99 + $0.99 paid; alice's corgi cost 452,124, bob's 60 roses 99,000 * 60 // 65
        "coin_cost_millicents": {
            "paid": 598_000,
            "held": 598_000 - 452_124 - 91_384,
            "gifted": 452_124 + 91_384,
            "refunded": 0,
        },
    }
    assert (report.transfers, report.entries) == (4, 2 * 2 + 2 * 4)


# --- the database enforces the invariants a second time (SQLite) ---------------------------


@pytest.fixture
async def sqlite_ledger(tmp_path: Path) -> AsyncIterator[tuple[LedgerStore, Path, UserRow]]:
    """A SQLite store holding one recharge and one gift; yields (store, file, sender)."""
    path = tmp_path / "x.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        host, alice = await adult(store, "host"), await adult(store, "alice")
        await topup(store, alice)
        room = await go_live(store, host)
        await Planner(store).write(send(alice, room, "r1", CORGI))
        yield store, path, alice
    finally:
        await store.close()


def execute(path: Path, sql: str, params: Sequence[Any] = ()) -> None:
    with closing(sqlite3.connect(path, timeout=5, isolation_level=None)) as conn:
        conn.execute(sql, params)


BREAKS: list[tuple[str, str, str]] = [
    ("user balance below zero", "UPDATE accounts SET balance = -1 WHERE id = {coin}", "CHECK"),
    ("edit an entry", "UPDATE entries SET amount = amount + 1", "append-only"),
    ("delete an entry", "DELETE FROM entries", "append-only"),
    ("edit a transfer", "UPDATE transfers SET kind = 'gift'", "append-only"),
    ("delete a transfer", "DELETE FROM transfers", "append-only"),
    (
        "a second event with a room's seq",
        "INSERT INTO room_events (room_id, seq, kind, at_ms, body)"
        " VALUES (1, 1, 'gift', 0, x'7b7d')",
        "UNIQUE",
    ),
    (
        "a second gift with a sender's request id",
        "INSERT INTO gift_requests (sender_id, request_id, room_id, seq, transfer_id,"
        " coins_after, coins_spent, diamonds) VALUES ({alice}, 'r1', 1, 9, 9, 0, 0, 0)",
        "UNIQUE",
    ),
]


@pytest.mark.parametrize(
    ("sql", "says"), [(s, w) for _, s, w in BREAKS], ids=[n for n, _, _ in BREAKS]
)
async def test_sqlite_refuses_to_break_an_invariant(
    sqlite_ledger: tuple[LedgerStore, Path, UserRow], sql: str, says: str
) -> None:
    store, path, alice = sqlite_ledger
    statement = sql.format(coin=coin_account(alice.id), alice=alice.id)
    with pytest.raises(sqlite3.IntegrityError, match=says):
        execute(path, statement)
    report = audit(await store.audit_input())
    assert report.balanced, report
    assert await store.balances(alice.id) == (31, 0)


async def test_sqlite_system_account_tampering_is_caught_by_the_audit(
    sqlite_ledger: tuple[LedgerStore, Path, UserRow],
) -> None:
    store, path, _ = sqlite_ledger
    assert int(SystemAccount.COINS_SPENT) == 2
    execute(path, "UPDATE accounts SET balance = balance + 5 WHERE id = 2")
    report = audit(await store.audit_input())
    assert not report.balanced
    assert [(v.rule, v.account) for v in report.violations] == [
        ("balance_equals_entries", "coins_spent")
    ]
    assert "stored 304, entries sum to 299" in report.violations[0].detail


async def test_sqlite_a_diamond_account_cannot_go_negative_either(
    sqlite_ledger: tuple[LedgerStore, Path, UserRow],
) -> None:
    _, path, alice = sqlite_ledger
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        execute(path, "UPDATE accounts SET balance = -1 WHERE id = ?", (diamond_account(alice.id),))
