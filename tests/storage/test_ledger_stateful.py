"""The ledger under random use: a Hypothesis state machine over the real SQLite store.

Random sequences of sign-ups, going live and ending, recharges (fresh and repeated idempotency
keys), gift batches (several senders, duplicate request ids, self-gifts, insufficient coins,
spending limits), refunds, limit changes, payout requests and settlements, time passing, and
concurrent races of these, run against a fresh SQLite file per sequence. A plain model
predicts every answer, and after every step the store must agree with it:

- the audit, recomputed from the journal, balances;
- every user's coins and diamonds equal the model's, and none is negative;
- the reserve holds exactly the diamonds of the model's pending payouts;
- coins issued = held + spent + refunded, and every system total equals the model's;
- the counts of transfers and entries, each user's limit and today's spend equal the model's;
- each leg's balance-after in a user's history is the running sum of their legs up to it.

A race (`asyncio.gather`) may commit in either order: its answers must be those of one serial
order, and the model follows the order the store chose. Some rules probe a boundary on
purpose (gifts at a spending limit, a payout at the daily cap after a settled one), where a
random draw would rarely land.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from server.domain.catalog import Gift, Package
from server.domain.errors import Code, Refusal
from server.domain.ledger import AuditInput, audit
from server.domain.limits import DAY_MS, Limit, day_of
from server.domain.money import Rates, RoomId, TransferId, UserId
from server.domain.payouts import Payable, PayoutStatus, check_request
from server.domain.rooms import EventKind, RoomBook, RoomEvent, RoomStatus
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
    PayoutRow,
    Refunded,
    RoomAction,
    RoomCommand,
    RoomDone,
    RoomRow,
    StoredResponse,
    TransactionRow,
    UserRow,
)

T = TypeVar("T")

NOW_MS = 1_795_521_600_000
STREAK_WINDOW_MS = 3000
REFUND_WINDOW_MS = 10**15  # never closes here: the other refund rules are under test
# Two diamonds a coin and 30 cents per 100 diamonds: a swapped unit or a rounding slip shows.
RATES = Rates(diamonds_per_coin=2, cents_per_100_diamonds=30)
PAYOUT_MINIMUM_DIAMONDS = 20
PAYOUT_DAILY_CENTS_MAX = 60  # 200 diamonds a day: reached within a few steps
USERS_MAX = 6
HISTORY_MAX = 10_000
PROVIDER_REF = "test-charge"
GIFTS = {
    gift.id: gift
    for gift in (
        Gift("rose", "Rose", 1, True, "small"),
        Gift("doughnut", "Doughnut", 30, True, "small"),
        Gift("corgi", "Corgi", 299, False, "medium"),
    )
}
PACKAGES = {
    package.id: package
    for package in (Package("coins_65", 65, 99, "USD"), Package("coins_330", 330, 499, "USD"))
}
BIRTHDATES = (dt.date(1990, 1, 1), dt.date(2015, 6, 1))  # the store does not care about age


class Planner:
    """The rooms' books as the gift service keeps them: loaded from the store, planned on."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.books: dict[RoomId, RoomBook] = {}

    def book_for_batch(self, room: RoomId) -> RoomBook:
        return self.books[room]

    def encode(self, event: RoomEvent) -> bytes:
        return encode_event(event)

    async def write(self, commands: Sequence[Command]) -> BatchResult:
        for room in {c.room for c in commands} - set(self.books):
            book = await self.store.load_book(room, STREAK_WINDOW_MS)
            assert book is not None
            self.books[room] = book
        return await self.store.write_batch(commands, self)


def respond(transfer: TransferId, coins_after: int) -> tuple[int, bytes]:
    return 200, orjson.dumps({"transaction_id": transfer, "coins": coins_after})


def respond_payout(row: PayoutRow) -> tuple[int, bytes]:
    doc = {"id": row.id, "diamonds": row.diamonds, "cents": row.cents, "status": row.status}
    return 202, orjson.dumps(doc)


def code(answer: object) -> object:
    """A refusal's code, or the answer itself (which then differs from any expected code)."""
    return answer.code if isinstance(answer, Refusal) else answer


def label(answer: object) -> str:
    if isinstance(answer, Refusal):
        return answer.code.value
    if isinstance(answer, GiftRefused):
        return answer.refusal.code.value
    if isinstance(answer, GiftAccepted):
        return "duplicate" if answer.duplicate else "accepted"
    if isinstance(answer, Refunded):
        return "refunded" if answer.provider_ref is not None else "first answer again"
    return type(answer).__name__


# --- the model ----------------------------------------------------------------------------


@dataclass
class RoomModel:
    host: UserId
    live: bool = True
    seq: int = 0


@dataclass
class PayoutModel:
    user: UserId
    diamonds: int
    cents: int
    status: PayoutStatus
    created_ms: int
    settled_ms: int | None = None


@dataclass
class Model:
    """What the store should hold, kept the simple way: plain dicts and counters."""

    now_ms: int = NOW_MS
    names: dict[UserId, str] = field(default_factory=dict)
    coins: dict[UserId, int] = field(default_factory=dict)
    diamonds: dict[UserId, int] = field(default_factory=dict)
    rooms: dict[RoomId, RoomModel] = field(default_factory=dict)
    accepted: dict[tuple[UserId, str], GiftOk] = field(default_factory=dict)
    # Idempotency keys are one space per user, shared by recharges, refunds and payouts.
    answers: dict[tuple[UserId, str], StoredResponse] = field(default_factory=dict)
    recharges: dict[TransferId, tuple[UserId, Package]] = field(default_factory=dict)
    refunded: set[TransferId] = field(default_factory=set)
    limits: dict[UserId, Limit] = field(default_factory=dict)
    spent_on: dict[tuple[UserId, int], int] = field(default_factory=dict)
    payouts: dict[int, PayoutModel] = field(default_factory=dict)
    coins_issued: int = 0
    coins_spent: int = 0
    coins_refunded: int = 0
    diamonds_issued: int = 0
    diamonds_paid_out: int = 0
    transfers: int = 0
    entries: int = 0

    def post(self, entries: int) -> None:
        self.transfers += 1
        self.entries += entries

    @property
    def reserved(self) -> int:
        return sum(p.diamonds for p in self.payouts.values() if p.status is PayoutStatus.PENDING)

    def paid_out_today(self, user: UserId, now_ms: int) -> int:
        """Cents of the user's payouts requested today and not failed."""
        day_start = day_of(now_ms) * DAY_MS
        return sum(
            p.cents
            for p in self.payouts.values()
            if p.user == user and p.created_ms >= day_start and p.status is not PayoutStatus.FAILED
        )


@dataclass(frozen=True)
class Seen:
    """What the store shows of one user."""

    balances: tuple[int, int]
    limit: Limit
    spent_today: int
    history: list[TransactionRow]


Check = Callable[[Model, object], tuple[object, object]]


@dataclass(frozen=True)
class Op:
    """One store call and its judge: `check(model, answer)` returns (expected, observed) and
    moves the model on as if the answer were right; a mismatch makes the two differ."""

    name: str
    call: Callable[[], Coroutine[Any, Any, object]]
    check: Check


def check_gift(m: Model, c: GiftCommand, outcome: object) -> tuple[object, object]:
    key = (c.sender, c.request_id)
    first = m.accepted.get(key)
    if first is not None:
        return GiftAccepted(first, duplicate=True), outcome
    refusal = outcome.refusal.code if isinstance(outcome, GiftRefused) else outcome
    room = m.rooms[c.room]
    if not room.live:
        return Code.ROOM_NOT_LIVE, refusal
    if c.sender == room.host:
        return Code.SELF_GIFT, refusal
    day = day_of(c.at_ms)
    daily = m.limits.get(c.sender, Limit()).at(c.at_ms).daily_coins
    if daily is not None and m.spent_on.get((c.sender, day), 0) + c.coins > daily:
        return Code.SPENDING_LIMIT, refusal
    if m.coins[c.sender] < c.coins:
        return Code.INSUFFICIENT_COINS, refusal
    if not isinstance(outcome, GiftAccepted):
        return "accepted", outcome
    expected = (False, m.coins[c.sender] - c.coins, c.coins, c.diamonds)
    ok = outcome.ok
    observed = (outcome.duplicate, ok.coins_after, ok.coins_spent, ok.diamonds)
    m.accepted[key] = ok
    m.coins[c.sender] -= c.coins
    m.diamonds[c.host] += c.diamonds
    m.spent_on[(c.sender, day)] = m.spent_on.get((c.sender, day), 0) + c.coins
    m.coins_spent += c.coins
    m.diamonds_issued += c.diamonds
    m.post(entries=4)
    return expected, observed


def check_batch(m: Model, commands: Sequence[Command], answer: object) -> tuple[object, object]:
    if not isinstance(answer, BatchResult) or len(answer.outcomes) != len(commands):
        return "one outcome per command", answer
    expected: list[object] = []
    observed: list[object] = []
    new_gifts: list[tuple[UserId | None, int, int]] = []  # (sender, seq, coins) of new gifts
    ended: list[RoomId] = []
    for command, outcome in zip(commands, answer.outcomes, strict=True):
        if isinstance(command, RoomCommand):
            room = m.rooms[command.room]
            expected.append(RoomDone(changed=room.live))
            observed.append(outcome)
            if room.live:
                ended.append(command.room)
            room.live = False
            continue
        fresh = (command.sender, command.request_id) not in m.accepted
        want, got = check_gift(m, command, outcome)
        expected.append(want)
        observed.append(got)
        if fresh and isinstance(outcome, GiftAccepted) and not outcome.duplicate:
            new_gifts.append((command.sender, outcome.ok.seq, command.coins))
    # Room events: numbered on from each room's seq without a gap; one `gift` per new gift.
    seqs: dict[RoomId, list[int]] = {}
    for made, body in answer.events:
        seqs.setdefault(made.room, []).append(made.seq)
        expected.append(encode_event(made))
        observed.append(body)
    for numbered, numbers in seqs.items():
        start = m.rooms[numbered].seq + 1
        expected.append((numbered, list(range(start, start + len(numbers)))))
        observed.append((numbered, numbers))
        m.rooms[numbered].seq = numbers[-1]
    gifts = [(e.sender, e.seq, e.coins) for e, _ in answer.events if e.kind is EventKind.GIFT]
    expected.append(sorted(new_gifts, key=repr))
    observed.append(sorted(gifts, key=repr))
    rooms_ended = [e.room for e, _ in answer.events if e.kind is EventKind.ROOM_ENDED]
    expected.append(ended)
    observed.append(rooms_ended)
    return expected, observed


# --- the machine --------------------------------------------------------------------------

KEYS = st.one_of(st.none(), st.integers(0, 2))  # None: a fresh key; a number: maybe a repeat
ORDER = st.permutations(range(2))
GIFT_NAMES = st.sampled_from(list(GIFTS))
OUTCOMES = st.sampled_from(["paid", "failed", "paid", "failed", "lost"])


@settings(
    max_examples=200,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
class LedgerMachine(RuleBasedStateMachine):
    users = Bundle[UserId]("users")
    rooms = Bundle[RoomId]("rooms")
    recharges = Bundle[TransferId]("recharges")
    payouts = Bundle[int]("payouts")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="giftcast-stateful-")
        self.loop = asyncio.new_event_loop()
        self.store = self.run(open_store(f"sqlite:///{self.dir}/x.db"))
        self.planner = Planner(self.store)
        self.model = Model()
        self.fresh = itertools.count()

    def teardown(self) -> None:
        try:
            self.run(self.store.close())  # stops aiosqlite's threads, or the process cannot exit
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- plumbing -----------------------------------------------------------------------

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(step)

    def key(self, n: int | None) -> str:
        return f"fresh-{next(self.fresh)}" if n is None else f"k{n}"

    def step(self, op: Op) -> object:
        answer = self.run(op.call())
        transfers = self.model.transfers
        expected, observed = op.check(self.model, answer)
        assert expected == observed, f"{op.name}: expected {expected!r}, got {observed!r}"
        self.tell(op.name, answer, moved=self.model.transfers != transfers)
        return answer

    def tell(self, name: str, answer: object, moved: bool = True) -> None:
        """Which outcomes the run reached (`pytest --hypothesis-show-statistics`)."""
        if isinstance(answer, BatchResult):
            for outcome in answer.outcomes:
                event(f"{name}: {label(outcome)}")
        elif isinstance(answer, StoredResponse) and not moved:
            event(f"{name}: first answer again")
        else:
            event(f"{name}: {label(answer)}")

    def race(self, ops: Sequence[Op], order: Sequence[int]) -> list[object]:
        """Start the calls together (in `order`); the answers must be one serial order's."""

        async def together() -> list[object]:
            # Every call runs to its end before any failure is raised: no task is left behind.
            started = await asyncio.gather(*(ops[i].call() for i in order), return_exceptions=True)
            answers: list[object] = [None] * len(ops)
            for i, answer in zip(order, started, strict=True):
                if isinstance(answer, BaseException):
                    raise answer
                answers[i] = answer
            return answers

        answers = self.run(together())
        tried = []
        started_order = tuple(order)
        others = [p for p in itertools.permutations(range(len(ops))) if p != started_order]
        for serial in [started_order, *others]:
            model = copy.deepcopy(self.model)
            judged = {i: ops[i].check(model, answers[i]) for i in serial}
            if all(expected == observed for expected, observed in judged.values()):
                self.model = model
                for op, answer in zip(ops, answers, strict=True):
                    self.tell(f"race {op.name}", answer)
                if list(serial) != list(order):
                    event("race: committed in another order than started")
                return answers
            tried.append((serial, [judged[i] for i in range(len(ops))]))
        raise AssertionError(f"the answers {answers!r} match no serial order: {tried!r}")

    def gift(
        self, sender: UserId, room: RoomId, gift_id: str, count: int, request: int
    ) -> GiftCommand:
        gift = GIFTS[gift_id]
        coins = gift.coins * count
        return GiftCommand(
            sender=sender,
            sender_name=self.model.names[sender],
            request_id=f"r{request}",
            room=room,
            host=self.model.rooms[room].host,
            gift=gift,
            count=count,
            coins=coins,
            diamonds=RATES.diamonds_for(coins),
            at_ms=self.model.now_ms,
        )

    # --- the calls, each with its judge -------------------------------------------------

    def recharge_op(self, user: UserId, package: Package, key: str) -> Op:
        request = f"recharge:{package.id}"
        now = self.model.now_ms

        def check(m: Model, answer: object) -> tuple[object, object]:
            kept = m.answers.get((user, key))
            if kept is not None:
                return kept, answer
            if not isinstance(answer, StoredResponse):
                return "recharged", answer
            body = orjson.loads(answer.body)
            transfer = TransferId(body["transaction_id"])
            expected = (200, request, m.coins[user] + package.coins, False)
            observed = (answer.status, answer.request_hash, body["coins"], transfer in m.recharges)
            m.answers[(user, key)] = answer
            m.recharges[transfer] = (user, package)
            m.coins[user] += package.coins
            m.coins_issued += package.coins
            m.post(entries=2)
            return expected, observed

        return Op(
            "recharge",
            lambda: self.store.recharge(user, package, PROVIDER_REF, key, request, now, respond),
            check,
        )

    def refund_op(self, caller: UserId, recharge: TransferId, key: str) -> Op:
        request = f"refund:{recharge}"
        now = self.model.now_ms

        def check(m: Model, answer: object) -> tuple[object, object]:
            kept = m.answers.get((caller, key))
            if kept is not None:
                return Refunded(kept), answer
            found = m.recharges.get(recharge)
            if found is None or found[0] != caller:
                return Code.NOT_FOUND, code(answer)
            if recharge in m.refunded:
                return Code.ALREADY_REFUNDED, code(answer)
            _, package = found
            if m.coins[caller] < package.coins:
                return Code.COINS_ALREADY_SPENT, code(answer)
            if not isinstance(answer, Refunded):
                return "refunded", answer
            body = orjson.loads(answer.response.body)
            expected = (
                200,
                request,
                m.coins[caller] - package.coins,
                PROVIDER_REF,
                package.price_cents,
            )
            observed = (
                answer.response.status,
                answer.response.request_hash,
                body["coins"],
                answer.provider_ref,
                answer.price_cents,
            )
            m.answers[(caller, key)] = answer.response
            m.refunded.add(recharge)
            m.coins[caller] -= package.coins
            m.coins_refunded += package.coins
            m.post(entries=2)
            return expected, observed

        return Op(
            "refund",
            lambda: self.store.refund(
                caller, recharge, key, request, now, REFUND_WINDOW_MS, respond
            ),
            check,
        )

    def batch_op(self, commands: Sequence[Command]) -> Op:
        return Op(
            "batch",
            lambda: self.planner.write(commands),
            lambda m, answer: check_batch(m, commands, answer),
        )

    def payout_op(self, user: UserId, due: Payable, key: str) -> Op:
        request = f"payout:{due.diamonds}"
        now = self.model.now_ms

        def check(m: Model, answer: object) -> tuple[object, object]:
            kept = m.answers.get((user, key))
            if kept is not None:
                return kept, answer
            if m.paid_out_today(user, now) + due.cents > PAYOUT_DAILY_CENTS_MAX:
                return Code.PAYOUT_LIMIT, code(answer)
            if m.diamonds[user] < due.diamonds:
                return Code.INSUFFICIENT_DIAMONDS, code(answer)
            if not isinstance(answer, StoredResponse):
                return "requested", answer
            body = orjson.loads(answer.body)
            payout = int(body["id"])
            expected = (202, request, due.diamonds, due.cents, "pending", False)
            observed = (
                answer.status,
                answer.request_hash,
                body["diamonds"],
                body["cents"],
                body["status"],
                payout in m.payouts,
            )
            m.answers[(user, key)] = answer
            m.payouts[payout] = PayoutModel(
                user, due.diamonds, due.cents, PayoutStatus.PENDING, now
            )
            m.diamonds[user] -= due.diamonds
            m.post(entries=2)
            return expected, observed

        return Op(
            "payout",
            lambda: self.store.request_payout(
                user, due, key, request, now, PAYOUT_DAILY_CENTS_MAX, respond_payout
            ),
            check,
        )

    def settle_op(self, payout: int, outcome: str) -> Op:
        now = self.model.now_ms

        def check(m: Model, answer: object) -> tuple[object, object]:
            found = m.payouts.get(payout)
            if found is None:
                return Code.NOT_FOUND, code(answer)
            if outcome not in (PayoutStatus.PAID.value, PayoutStatus.FAILED.value):
                return Code.INVALID, code(answer)
            if found.status is not PayoutStatus.PENDING:
                return Code.ALREADY_SETTLED, code(answer)
            status = PayoutStatus(outcome)
            expected = PayoutRow(
                payout, found.user, found.diamonds, found.cents, status, found.created_ms, now
            )
            found.status = status
            found.settled_ms = now
            if status is PayoutStatus.PAID:
                m.diamonds_paid_out += found.diamonds
            else:
                m.diamonds[found.user] += found.diamonds
            m.post(entries=2)
            return expected, answer

        return Op("settle", lambda: self.store.settle_payout(payout, outcome, now), check)

    # --- rules --------------------------------------------------------------------------

    def sign_up_one(self, minor: bool, clash: bool) -> UserRow | None:
        m = self.model
        name = f"user{len(m.names)}"
        if clash and m.names:
            name = m.names[min(m.names)].upper()  # names are unique without regard to case
        birthdate = BIRTHDATES[minor]
        row = self.run(self.store.create_user(name, birthdate, m.now_ms))
        if clash and m.names:
            assert row is None, row
            return None
        assert row is not None
        assert (row.name, row.birthdate, row.created_ms) == (name, birthdate, m.now_ms)
        assert row.id not in m.names
        m.names[row.id] = name
        m.coins[row.id] = 0
        m.diamonds[row.id] = 0
        return row

    def opening_cast(self) -> None:
        """Four users with 330 coins each, the last two live. Run by whichever initializer
        comes first, so that gifts can succeed from the first step."""
        if self.model.names:
            return
        users = [self.sign_up_one(minor=n == 1, clash=False) for n in range(4)]
        for row in users:
            assert row is not None
            self.step(self.recharge_op(row.id, PACKAGES["coins_330"], self.key(None)))
        for row in users[2:]:
            assert row is not None
            self.go_live(row.id)

    @initialize(target=users)
    def opening_users(self) -> MultipleResults[UserId]:
        self.opening_cast()
        return multiple(*self.model.names)

    @initialize(target=rooms)
    def opening_rooms(self) -> MultipleResults[RoomId]:
        self.opening_cast()
        return multiple(*self.model.rooms)

    @initialize(target=recharges)
    def opening_recharges(self) -> MultipleResults[TransferId]:
        self.opening_cast()
        return multiple(*self.model.recharges)

    @precondition(lambda self: len(self.model.names) < USERS_MAX)
    @rule(target=users, minor=st.booleans(), clash=st.booleans())
    def sign_up(self, minor: bool, clash: bool) -> MultipleResults[UserId]:
        row = self.sign_up_one(minor, clash)
        return multiple() if row is None else multiple(row.id)

    @rule(target=rooms, host=users)
    def go_live(self, host: UserId) -> MultipleResults[RoomId]:
        m = self.model
        row = self.run(self.store.create_room(host, "my live", m.now_ms, 1))
        if any(r.host == host and r.live for r in m.rooms.values()):
            assert row is None, row  # one live room per host
            return multiple()
        assert isinstance(row, RoomRow), row
        assert (row.host, row.status, row.seq, row.started_ms) == (
            host,
            RoomStatus.LIVE,
            0,
            m.now_ms,
        )
        assert row.id not in m.rooms
        m.rooms[row.id] = RoomModel(host)
        return multiple(row.id)

    @precondition(lambda self: sum(r.live for r in self.model.rooms.values()) >= 2)
    @rule(room=rooms)
    def end_live(self, room: RoomId) -> None:
        self.step(self.batch_op([RoomCommand(room, RoomAction.END, self.model.now_ms)]))

    @rule(
        target=recharges,
        user=users,
        package=st.sampled_from(sorted(PACKAGES)),
        key=KEYS,
    )
    def recharge(self, user: UserId, package: str, key: int | None) -> MultipleResults[TransferId]:
        before = set(self.model.recharges)
        self.step(self.recharge_op(user, PACKAGES[package], self.key(key)))
        return multiple(*(set(self.model.recharges) - before))

    # Hypothesis skips a rule whose argument is an empty bundle, not one nested in a list.
    @precondition(lambda self: bool(self.model.rooms))
    @rule(
        gifts=st.lists(
            st.tuples(users, rooms, GIFT_NAMES, st.integers(1, 12), st.integers(0, 7)),
            min_size=1,
            max_size=6,
        )
    )
    def gift_batch(self, gifts: list[tuple[UserId, RoomId, str, int, int]]) -> None:
        self.step(self.batch_op([self.gift(*spec) for spec in gifts]))

    @rule(recharge=recharges, caller=st.one_of(st.none(), users), key=KEYS)
    def refund(self, recharge: TransferId, caller: UserId | None, key: int | None) -> None:
        owner = self.model.recharges[recharge][0]
        self.step(self.refund_op(owner if caller is None else caller, recharge, self.key(key)))

    @rule(
        user=users,
        daily=st.one_of(st.integers(0, 40), st.none(), st.integers(41, 1000)),
        probe=st.one_of(st.none(), st.integers(-1, 1)),
    )
    def change_limit(self, user: UserId, daily: int | None, probe: int | None) -> None:
        """Ask for a daily limit of what was spent today plus `daily` (None: no limit). Then,
        with a `probe`, send roses worth what is left today plus `probe`, and one more rose:
        gifts on both sides of the limit."""
        m = self.model
        now = m.now_ms
        today = day_of(now)
        requested = None if daily is None else m.spent_on.get((user, today), 0) + daily
        expected = m.limits.get(user, Limit()).change(requested, now)
        changed = self.run(self.store.change_limit(user, lambda old: old.change(requested, now)))
        assert changed == expected, (changed, expected)
        m.limits[user] = expected
        limit = expected.at(now).daily_coins
        rooms = [r for r, room in sorted(m.rooms.items()) if room.live and room.host != user]
        if probe is None or limit is None or not rooms:
            return  # nothing to probe: no limit in force, or nowhere to gift
        left = max(0, limit - m.spent_on.get((user, today), 0))
        roses = max(1, left + probe)
        requests = [r for r in range(8) if (user, f"r{r}") not in m.accepted][:2]
        gifts = [(roses, n) for n in requests[:1]] + [(1, n) for n in requests[1:]]
        commands = [self.gift(user, rooms[0], "rose", count, n) for count, n in gifts]
        if commands:
            self.step(self.batch_op(commands))

    def payout_due(self, requested: int) -> Payable | None:
        due = check_request(requested, PAYOUT_MINIMUM_DIAMONDS, RATES.cents_per_100_diamonds)
        if isinstance(due, Refusal):
            assert due.code is Code.BELOW_MINIMUM and requested < PAYOUT_MINIMUM_DIAMONDS, due
            return None
        assert 0 < due.diamonds <= requested, due
        assert due.cents == RATES.cents_for_diamonds(due.diamonds), due
        return due

    @rule(
        target=payouts,
        user=st.one_of(st.none(), users),
        room=rooms,
        requested=st.integers(10, 300),
        key=KEYS,
    )
    def request_payout(
        self, user: UserId | None, room: RoomId, requested: int, key: int | None
    ) -> MultipleResults[int]:
        """A payout request by the room's host (`user` None), who may have diamonds, or by
        anyone; `check_request` turns the diamonds asked for into a payable amount first."""
        user = self.model.rooms[room].host if user is None else user
        due = self.payout_due(requested)
        if due is None:
            return multiple()
        before = set(self.model.payouts)
        self.step(self.payout_op(user, due, self.key(key)))
        return multiple(*(set(self.model.payouts) - before))

    @rule(payout=payouts, outcome=OUTCOMES, ghost=st.integers(0, 3))
    def settle(self, payout: int, outcome: str, ghost: int) -> None:
        """Settle a payout; `ghost` 3: one that does not exist."""
        self.step(self.settle_op(payout + 10_000 if ghost == 3 else payout, outcome))

    @rule(
        target=payouts,
        room=rooms,
        outcome=st.sampled_from(["paid", "failed"]),
        probe=st.integers(-1, 1),
    )
    def cash_out_twice(self, room: RoomId, outcome: str, probe: int) -> MultipleResults[int]:
        """A host cashes out the minimum and the payout is settled; then the host asks for
        what is left of today's cap plus `probe` cents. A payout settled paid still counts
        toward the cap, a failed one no longer does."""
        m = self.model
        host = m.rooms[room].host
        before = set(m.payouts)
        first = self.payout_due(PAYOUT_MINIMUM_DIAMONDS)
        assert first is not None
        self.step(self.payout_op(host, first, self.key(None)))
        for payout in set(m.payouts) - before:
            self.step(self.settle_op(payout, outcome))
        left = PAYOUT_DAILY_CENTS_MAX - m.paid_out_today(host, m.now_ms)
        cents = max(1, left + probe)
        worth = -(-cents * 100 // RATES.cents_per_100_diamonds)  # the fewest diamonds worth it
        then = self.payout_due(max(PAYOUT_MINIMUM_DIAMONDS, worth))
        assert then is not None
        self.step(self.payout_op(host, then, self.key(None)))
        return multiple(*(set(m.payouts) - before))

    @rule(ms=st.sampled_from([1_000, 3_600_000, 9 * 3_600_000, DAY_MS]))
    def time_passes(self, ms: int) -> None:
        self.model.now_ms += ms

    # --- races --------------------------------------------------------------------------

    @rule(
        recharge=recharges,
        room=rooms,
        gifts=st.lists(
            st.tuples(GIFT_NAMES, st.integers(1, 12), st.integers(0, 7)), min_size=1, max_size=4
        ),
        order=ORDER,
    )
    def race_refund_and_gifts(
        self,
        recharge: TransferId,
        room: RoomId,
        gifts: list[tuple[str, int, int]],
        order: list[int],
    ) -> None:
        """A refund and gifts spending the same coins: at most what the wallet holds goes."""
        owner = self.model.recharges[recharge][0]
        commands = [self.gift(owner, room, *spec) for spec in gifts]
        refund = self.refund_op(owner, recharge, self.key(None))
        self.race([refund, self.batch_op(commands)], order)

    @rule(recharge=recharges, order=ORDER)
    def race_two_refunds(self, recharge: TransferId, order: list[int]) -> None:
        owner = self.model.recharges[recharge][0]
        ops = [self.refund_op(owner, recharge, self.key(None)) for _ in range(2)]
        self.race(ops, order)

    @rule(user=users, package=st.sampled_from(sorted(PACKAGES)), order=ORDER)
    def race_two_recharges_one_key(self, user: UserId, package: str, order: list[int]) -> None:
        key = self.key(None)
        self.race([self.recharge_op(user, PACKAGES[package], key) for _ in range(2)], order)

    @rule(payout=payouts, outcomes=st.tuples(OUTCOMES, OUTCOMES), order=ORDER)
    def race_two_settles(self, payout: int, outcomes: tuple[str, str], order: list[int]) -> None:
        self.race([self.settle_op(payout, outcome) for outcome in outcomes], order)

    @rule(
        target=payouts,
        room=rooms,
        shares=st.tuples(st.integers(40, 100), st.integers(40, 100)),
        order=ORDER,
    )
    def race_two_payouts(
        self, room: RoomId, shares: tuple[int, int], order: list[int]
    ) -> MultipleResults[int]:
        """A host's two requests, each within the balance (in percent), together often not."""
        user = self.model.rooms[room].host
        have = self.model.diamonds[user]
        dues = [self.payout_due(max(PAYOUT_MINIMUM_DIAMONDS, have * s // 100)) for s in shares]
        before = set(self.model.payouts)
        ops = [self.payout_op(user, due, self.key(None)) for due in dues if due is not None]
        self.race(ops, order)
        return multiple(*(set(self.model.payouts) - before))

    @rule(
        target=payouts,
        room=rooms,
        share=st.integers(40, 100),
        gifts=st.lists(
            st.tuples(users, GIFT_NAMES, st.integers(1, 12), st.integers(0, 7)),
            min_size=1,
            max_size=4,
        ),
        order=ORDER,
    )
    def race_payout_and_gifts_to_the_host(
        self,
        room: RoomId,
        share: int,
        gifts: list[tuple[UserId, str, int, int]],
        order: list[int],
    ) -> MultipleResults[int]:
        """The host cashes out while gifts credit their diamonds."""
        host = self.model.rooms[room].host
        due = self.payout_due(
            max(PAYOUT_MINIMUM_DIAMONDS, self.model.diamonds[host] * share // 100)
        )
        assert due is not None
        commands = [self.gift(s, room, g, n, r) for s, g, n, r in gifts]
        before = set(self.model.payouts)
        self.race([self.payout_op(host, due, self.key(None)), self.batch_op(commands)], order)
        return multiple(*(set(self.model.payouts) - before))

    # --- after every step ---------------------------------------------------------------

    async def look(self) -> tuple[AuditInput, dict[UserId, Seen]]:
        """Everything the checks read, in one trip through the loop (reads run together)."""
        today = day_of(self.model.now_ms)

        async def seen(user: UserId) -> Seen:
            balances, limit, spent, history = await asyncio.gather(
                self.store.balances(user),
                self.store.limit(user),
                self.store.spent_between(user, today * DAY_MS, (today + 1) * DAY_MS),
                self.store.transactions(user, HISTORY_MAX, None),
            )
            return Seen(balances, limit, spent, history)

        audited = asyncio.ensure_future(self.store.audit_input())
        users = sorted(self.model.names)
        views = await asyncio.gather(*(seen(user) for user in users))
        return await audited, dict(zip(users, views, strict=True))

    @invariant(check_during_init=True)
    def the_store_agrees_with_the_model(self) -> None:
        data, users = self.run(self.look())
        self.check_ledger(data)
        for user, seen in users.items():
            self.check_user(user, seen)

    def check_ledger(self, data: AuditInput) -> None:
        """The audit balances, and its totals and counts are the model's."""
        m = self.model
        report = audit(data)
        assert report.balanced, report.violations
        coin, diamond = report.totals["coin"], report.totals["diamond"]
        assert coin["issued"] == coin["held_by_users"] + coin["spent"] + coin["refunded"], coin
        assert data.pending_payout_diamonds == diamond["reserved"] == m.reserved, (
            data.pending_payout_diamonds,
            diamond,
            m.reserved,
        )
        assert dict(coin) == {
            "sum": 0,
            "issued": m.coins_issued,
            "held_by_users": sum(m.coins.values()),
            "spent": m.coins_spent,
            "refunded": m.coins_refunded,
        }, coin
        assert dict(diamond) == {
            "sum": 0,
            "issued": m.diamonds_issued,
            "held_by_users": sum(m.diamonds.values()),
            "reserved": m.reserved,
            "paid_out": m.diamonds_paid_out,
        }, diamond
        assert (data.transfers, data.entries) == (m.transfers, m.entries)

    def check_user(self, user: UserId, seen: Seen) -> None:
        """Balances, limit and today's spend are the model's; none is negative; each leg's
        balance-after is the running sum of the user's legs up to it."""
        m = self.model
        assert seen.balances == (m.coins[user], m.diamonds[user]), (user, seen.balances)
        assert min(seen.balances) >= 0, (user, seen.balances)
        assert seen.limit == m.limits.get(user, Limit()), (user, seen.limit)
        today = m.spent_on.get((user, day_of(m.now_ms)), 0)
        assert seen.spent_today == today, (user, seen.spent_today)
        assert len(seen.history) < HISTORY_MAX
        coins = diamonds = 0
        for item in reversed(seen.history):  # oldest first
            coins += item.coins
            diamonds += item.diamonds
            if item.coins:
                assert (item.diamonds, item.coins_after) == (0, coins), (user, item)
            else:
                assert item.diamonds_after == diamonds, (user, item)
        assert (coins, diamonds) == seen.balances, (user, seen.history)


# A failing sequence is shrunk for up to five minutes (Hypothesis's own cap) before the minimal
# one is printed; the suite's 120 s timeout would cut that short and lose it.
TestLedgerStateful = pytest.mark.timeout(600)(LedgerMachine.TestCase)
