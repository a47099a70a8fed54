"""The LedgerStore port: everything the services ask of durable storage.

Adapters (`sqlite`, later `postgres`) are chosen by URL in `open_store`. Expected outcomes
(`name_taken`, `insufficient_coins`, a duplicate request id) come back as values; exceptions
from a store mean the store could not do its job:

    StoreError
      +-- StoreUnavailable   locked too long, disk full, connection lost: answer `unavailable`

A batch of gifts and room commands commits in one transaction (group commit). The store does
the guarded debits and the writes; a `BatchPlanner` from the services decides, synchronously
and in order, what each accepted gift means for its room (seq, streak, first gift).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from server.domain.catalog import Gift, Package
from server.domain.errors import Refusal
from server.domain.ledger import AuditInput
from server.domain.limits import Limit
from server.domain.money import RoomId, TransferId, UserId
from server.domain.payouts import Payable, PayoutStatus
from server.domain.rooms import RoomBook, RoomEvent, RoomStatus


class StoreError(Exception):
    """The store failed; nothing of the failed operation was written."""


class StoreUnavailable(StoreError):
    """A transient failure (lock wait exceeded, disk full, connection lost)."""


# --- rows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRow:
    id: UserId
    name: str
    birthdate: dt.date
    created_ms: int


@dataclass(frozen=True, slots=True)
class RoomRow:
    id: RoomId
    host: UserId
    host_name: str
    title: str
    status: RoomStatus
    seq: int
    started_ms: int
    ended_ms: int | None
    overlay_version: int
    goal_title: str | None
    goal_coins: int | None
    goal_progress: int


@dataclass(frozen=True, slots=True)
class TransactionRow:
    id: TransferId
    kind: str  # recharge, gift_sent, gift_received
    coins: int  # signed, for the caller
    diamonds: int  # signed, for the caller
    at_ms: int
    room: RoomId | None
    gift_id: str | None
    count: int | None
    counterparty: UserId | None
    counterparty_name: str | None
    package_id: str | None
    price_cents: int | None
    currency: str | None
    coins_after: int | None
    diamonds_after: int | None
    cost_millicents: int | None = None  # gifts and refunds: what the coins moved had cost
    gift_diamonds: int | None = None  # gifts: the diamonds the host received
    refund_of: TransferId | None = None  # a refund: the recharge it refunded
    refunded_by: TransferId | None = None  # a refunded recharge: its refund's transfer


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An idempotent HTTP call's first answer, kept to answer repeats."""

    request_hash: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One ledger entry on a user's account, for a statement."""

    transfer: int
    kind: str
    at_ms: int
    coins: int  # signed, for this user
    diamonds: int  # signed, for this user
    balance_after: int | None  # of the account this entry is on
    room: int | None
    gift_id: str | None
    count: int | None
    package_id: str | None
    price_cents: int | None
    currency: str | None
    refund_of: int | None
    payout: int | None
    other: str | None  # the other user of a gift
    cost_millicents: int | None = None  # gifts and refunds: what the coins moved had cost
    gift_diamonds: int | None = None  # gifts: the diamonds the host received


@dataclass(frozen=True, slots=True)
class EarningsRow:
    day: int  # UTC days since the epoch
    room: int
    title: str
    started_ms: int
    diamonds: int
    gifts: int


@dataclass(frozen=True, slots=True)
class RoomGiftRow:
    """One gift transfer into a room, as the ledger holds it (for the operator's checks)."""

    transfer: TransferId
    at_ms: int
    sender: UserId
    sender_name: str
    request_id: str | None  # None: a gift transfer no request id points at (never expected)
    seq: int | None
    gift_id: str
    count: int
    coins: int  # debited from the sender's coin account
    diamonds: int  # credited to the host's diamond account


@dataclass(frozen=True, slots=True)
class PayoutRow:
    id: int
    user: UserId
    diamonds: int
    cents: int
    status: PayoutStatus
    created_ms: int
    settled_ms: int | None


@dataclass(frozen=True, slots=True)
class Refunded:
    """A refund's stored answer; `provider_ref` is set only when this call made the refund."""

    response: StoredResponse
    provider_ref: str | None = None
    price_cents: int = 0


@dataclass(frozen=True, slots=True)
class GiftOk:
    seq: int
    coins_after: int
    coins_spent: int
    diamonds: int
    cost_millicents: int  # what the coins spent cost the sender (domain.pricing)


# --- the write batch --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GiftCommand:
    sender: UserId
    sender_name: str
    request_id: str
    room: RoomId
    host: UserId
    gift: Gift
    count: int
    coins: int
    diamonds: int
    at_ms: int


class RoomAction(StrEnum):
    EXPIRE_STREAKS = "expire_streaks"
    END = "end"
    SET_GOAL = "set_goal"


@dataclass(frozen=True, slots=True)
class RoomCommand:
    room: RoomId
    action: RoomAction
    at_ms: int
    goal_title: str = ""
    goal_coins: int = 0


Command = GiftCommand | RoomCommand


@dataclass(frozen=True, slots=True)
class GiftAccepted:
    ok: GiftOk
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class GiftRefused:
    refusal: Refusal


@dataclass(frozen=True, slots=True)
class RoomDone:
    changed: bool


Outcome = GiftAccepted | GiftRefused | RoomDone


@dataclass(slots=True)
class BatchResult:
    outcomes: list[Outcome]
    events: list[tuple[RoomEvent, bytes]] = field(default_factory=list)  # committed, in order


class BatchPlanner(Protocol):
    """Room rules the store consults inside its transaction; called in command order."""

    def book_for_batch(self, room: RoomId) -> RoomBook: ...

    def encode(self, event: RoomEvent) -> bytes: ...


# --- the port ---------------------------------------------------------------------------


class LedgerStore(Protocol):
    url_for_logs: str

    async def close(self) -> None: ...

    # users
    async def create_user(self, name: str, birthdate: dt.date, now_ms: int) -> UserRow | None:
        """None when the name is taken (names are unique without regard to case)."""
        ...

    async def get_user(self, user: UserId) -> UserRow | None: ...

    async def balances(self, user: UserId) -> tuple[int, int]:
        """(coins, diamonds)."""
        ...

    async def cost_basis(self, user: UserId) -> int:
        """What the user paid, in millicents, for the coins they hold (domain.pricing)."""
        ...

    # money
    async def recharge(
        self,
        user: UserId,
        package: Package,
        provider_ref: str,
        idempotency_key: str,
        request_hash: str,
        now_ms: int,
        respond: ResponseMaker,
    ) -> StoredResponse:
        """Credit a package's coins and keep the answer under the key, in one transaction.

        When the key was used before, nothing is written and the first answer comes back
        (the caller compares `request_hash`)."""
        ...

    async def stored_response(self, user: UserId, key: str) -> StoredResponse | None: ...

    async def refund(
        self,
        user: UserId,
        recharge: TransferId,
        idempotency_key: str,
        request_hash: str,
        now_ms: int,
        window_ms: int,
        respond: ResponseMaker,
    ) -> Refunded | Refusal:
        """Take a recharge's coins back, in one transaction, if every rule allows it:
        the caller's own recharge (`not_found`), not refunded before (`already_refunded`),
        within `window_ms` (`refund_window_closed`), and the balance still covers it
        (`coins_already_spent`: a guarded debit, so a racing gift or refund cannot pass)."""
        ...

    async def transactions(
        self, user: UserId, limit: int, before: int | None
    ) -> list[TransactionRow]: ...

    async def find_gift(self, sender: UserId, request_id: str) -> GiftOk | None: ...

    # payouts
    async def request_payout(
        self,
        user: UserId,
        due: Payable,
        idempotency_key: str,
        request_hash: str,
        now_ms: int,
        daily_cents_max: int,
        respond: Callable[[PayoutRow], tuple[int, bytes]],
    ) -> StoredResponse | Refusal:
        """Reserve `due.diamonds` (guarded: `insufficient_diamonds`) and record a pending
        payout, unless today's payouts would pass `daily_cents_max`; in one transaction."""
        ...

    async def payouts(self, user: UserId, limit: int) -> list[PayoutRow]: ...

    async def get_payout(self, payout: int) -> PayoutRow | None: ...

    async def pending_payouts(self, created_before_ms: int, limit: int) -> list[PayoutRow]: ...

    async def settle_payout(self, payout: int, outcome: str, now_ms: int) -> PayoutRow | Refusal:
        """Post (paid) or void (failed: the diamonds come back) a pending payout, once."""
        ...

    # reports
    async def opening_balances(self, user: UserId, before_ms: int) -> tuple[int, int]: ...

    async def statement(
        self, user: UserId, from_ms: int, to_ms: int, limit: int
    ) -> list[StatementLine]: ...

    async def earnings(
        self, user: UserId, from_ms: int, to_ms: int, limit: int
    ) -> list[EarningsRow]: ...

    async def room_gifts(
        self, room: RoomId, host: UserId, after: int, limit: int
    ) -> list[RoomGiftRow]:
        """The room's gift transfers with id > `after`, oldest first, at most `limit`: read
        from the host's diamond entries, with each sender's coin entry and request id."""
        ...

    # spending limits
    async def limit(self, user: UserId) -> Limit: ...

    async def change_limit(self, user: UserId, change: Callable[[Limit], Limit]) -> Limit:
        """Apply `change` to the user's limit in one transaction; the new limit."""
        ...

    async def spent_between(self, user: UserId, from_ms: int, to_ms: int) -> int:
        """Coins the user gave away as gifts in [from_ms, to_ms), both on quarter hours
        (`SPEND_QUARTER_MS`): a day's start and end in any time zone."""
        ...

    async def write_batch(self, commands: Sequence[Command], planner: BatchPlanner) -> BatchResult:
        """Run every command in one transaction; on failure nothing is written (raises)."""
        ...

    # rooms
    async def create_room(
        self, host: UserId, title: str, now_ms: int, live_rooms_max: int
    ) -> RoomRow | None:
        """None when the host already has `live_rooms_max` live rooms."""
        ...

    async def get_room(self, room: RoomId) -> RoomRow | None: ...

    async def live_rooms(self, limit: int) -> list[RoomRow]: ...

    async def bump_overlay_version(self, room: RoomId) -> int: ...

    async def load_book(self, room: RoomId, streak_window_ms: int) -> RoomBook | None: ...

    async def events_after(self, room: RoomId, since: int, limit: int) -> list[bytes] | None:
        """Encoded events with seq > since, oldest first; None when history no longer reaches."""
        ...

    async def prune_events(self, room: RoomId, keep: int) -> None: ...

    # audit
    async def audit_input(self) -> AuditInput: ...


class ResponseMaker(Protocol):
    def __call__(self, transfer: TransferId, coins_after: int, /) -> tuple[int, bytes]: ...
