"""LedgerStore on SQLite: WAL, `BEGIN IMMEDIATE`, `synchronous=FULL` (durable commits).

Two aiosqlite connections: one writer, on which every write transaction runs as a single
function on aiosqlite's worker thread (one thread hop per transaction, so a group commit of
hundreds of gifts costs one hop), and one reader, which in WAL mode never sees a write that
has not committed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from server.domain.catalog import Package
from server.domain.errors import Refusal
from server.domain.ledger import (
    AuditInput,
    SystemAccount,
    TransferKind,
    coin_account,
    diamond_account,
)
from server.domain.limits import SPEND_QUARTER_MS, Limit
from server.domain.money import RoomId, TransferId, UserId
from server.domain.payouts import Payable
from server.storage import sqlite_reports as reports
from server.storage.base import (
    BatchPlanner,
    BatchResult,
    Command,
    EarningsRow,
    GiftOk,
    PayoutRow,
    Refunded,
    ResponseMaker,
    RoomGiftRow,
    StatementLine,
    StoredResponse,
    StoreUnavailable,
    TransactionRow,
    UserRow,
)
from server.storage.sqlite_batch import LIMIT_COLUMNS, limit_from_row, write_batch
from server.storage.sqlite_costs import cost_totals
from server.storage.sqlite_money import (
    PAYOUT_COLUMNS,
    change_limit_tx,
    payout_row,
    recharge_tx,
    refund_tx,
    request_payout_tx,
    settle_payout_tx,
)
from server.storage.sqlite_rooms import RoomQueries
from server.storage.sqlite_schema import MIGRATIONS

T = TypeVar("T")


SQLITE_MIN = (3, 35, 0)  # RETURNING (3.35); UPDATE ... FROM (3.33); 32,766 parameters (3.32)


def require_sqlite(version: tuple[int, int, int]) -> None:
    """Refuse to start on an SQLite too old for the statements the adapter uses."""
    if version < SQLITE_MIN:
        have, need = ".".join(map(str, version)), ".".join(map(str, SQLITE_MIN))
        raise ValueError(f"giftcast needs SQLite {need} or later; this Python links SQLite {have}")


def path_from_url(url: str) -> Path:
    if not url.startswith("sqlite://"):
        raise ValueError(f"not an sqlite URL: {url}")
    rest = url.removeprefix("sqlite://")
    if rest.startswith("/"):
        rest = rest[1:]  # sqlite:///relative/path or sqlite:////absolute/path
    return Path(rest)


class SqliteStore(RoomQueries):
    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        busy_timeout_ms: int = 5000,
    ):
        self.path = path
        self.url_for_logs = f"sqlite:///{path}"
        self._w = writer
        self._r = reader
        self._busy_timeout_ms = busy_timeout_ms
        self._w_busy_ms = busy_timeout_ms  # the writer's busy_timeout now (writer thread only)

    @classmethod
    async def open(
        cls,
        url: str,
        busy_timeout_ms: int = 5000,
        cache_mib: int = 64,
        checkpoint_pages: int = 10_000,
    ) -> SqliteStore:
        require_sqlite(sqlite3.sqlite_version_info)
        path = path_from_url(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        reader = await aiosqlite.connect(path, isolation_level=None)
        for conn in (writer, reader):
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await writer.execute("PRAGMA journal_mode = WAL")
        await writer.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
        await writer.execute(f"PRAGMA journal_size_limit = {int(checkpoint_pages) * 2 * 4096}")
        for conn in (writer, reader):
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute(f"PRAGMA cache_size = {-1024 * int(cache_mib)}")  # KiB if < 0
        store = cls(path, writer, reader, int(busy_timeout_ms))
        await store._tx(_migrate)
        return store

    async def close(self) -> None:
        await self._r.close()
        await self._w.close()

    async def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one `BEGIN IMMEDIATE` transaction on the writer's thread.

        A caller waits at most `busy_timeout_ms` in all, counted from this call: the time
        spent queued behind other transactions comes off SQLite's own wait for the lock.
        Without that, while another process held the lock, each queued call waited the full
        timeout after the one before it (six recharges: answered after 5, 10, ... 30 s)."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000

        def run() -> T:
            conn: sqlite3.Connection = self._w._conn
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise sqlite3.OperationalError(
                    f"database is locked: waited {self._busy_timeout_ms} ms for the writer"
                )
            # Set only when it changes: the common case (not queued long) costs nothing.
            wait_ms = self._busy_timeout_ms if left_ms > self._busy_timeout_ms - 50 else left_ms
            if wait_ms != self._w_busy_ms:
                conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
                self._w_busy_ms = wait_ms
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        try:
            return await self._w._execute(run)  # type: ignore[no-untyped-call,no-any-return]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(await self._r.execute_fetchall(sql, params))
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    # --- users --------------------------------------------------------------------------

    async def create_user(self, name: str, birthdate: dt.date, now_ms: int) -> UserRow | None:
        def fn(conn: sqlite3.Connection) -> UserRow | None:
            try:
                cur = conn.execute(
                    "INSERT INTO users (name, birthdate, created_ms) VALUES (?, ?, ?)",
                    (name, birthdate.isoformat(), now_ms),
                )
            except sqlite3.IntegrityError:
                return None
            uid = UserId(int(cur.lastrowid or 0))
            conn.executemany(
                "INSERT INTO accounts (id, user_id, asset) VALUES (?, ?, ?)",
                [(coin_account(uid), uid, "coin"), (diamond_account(uid), uid, "diamond")],
            )
            return UserRow(uid, name, birthdate, now_ms)

        return await self._tx(fn)

    async def get_user(self, user: UserId) -> UserRow | None:
        rows = await self._read(
            "SELECT id, name, birthdate, created_ms FROM users WHERE id = ?", (user,)
        )
        if not rows:
            return None
        r = rows[0]
        return UserRow(UserId(r[0]), r[1], dt.date.fromisoformat(r[2]), r[3])

    async def balances(self, user: UserId) -> tuple[int, int]:
        rows = await self._read(
            "SELECT id, balance FROM accounts WHERE id IN (?, ?)",
            (coin_account(user), diamond_account(user)),
        )
        found = dict(rows)
        return found.get(coin_account(user), 0), found.get(diamond_account(user), 0)

    async def cost_basis(self, user: UserId) -> int:
        rows = await self._read("SELECT millicents FROM coin_costs WHERE user_id = ?", (user,))
        return int(rows[0][0]) if rows else 0

    # --- money --------------------------------------------------------------------------

    async def stored_response(self, user: UserId, key: str) -> StoredResponse | None:
        rows = await self._read(
            "SELECT request_hash, status, body FROM idempotency WHERE user_id = ? AND key = ?",
            (user, key),
        )
        return StoredResponse(rows[0][0], rows[0][1], bytes(rows[0][2])) if rows else None

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
        return await self._tx(
            lambda conn: recharge_tx(
                conn, user, package, provider_ref, idempotency_key, request_hash, now_ms, respond
            )
        )

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
        return await self._tx(
            lambda conn: refund_tx(
                conn, user, recharge, idempotency_key, request_hash, now_ms, window_ms, respond
            )
        )

    async def transactions(
        self, user: UserId, limit: int, before: int | None
    ) -> list[TransactionRow]:
        rows = await self._read(
            "SELECT t.id, t.kind, e.account_id, e.amount, t.at_ms, t.room_id, t.gift_id,"
            " t.count, t.user_id, t.counterparty_id, t.package_id, t.price_cents, t.currency,"
            " e.balance_after, t.cost_millicents, CASE WHEN t.kind = 'gift' THEN"
            " (SELECT -x.amount FROM entries x WHERE x.account_id = ? AND x.transfer_id = t.id)"
            " END, t.refund_of, CASE WHEN t.kind = 'recharge' THEN"
            " (SELECT r.transfer_id FROM refunds r WHERE r.recharge_id = t.id) END"
            " FROM entries e JOIN transfers t ON t.id = e.transfer_id"
            " WHERE e.account_id IN (?, ?) AND e.transfer_id < ?"
            " ORDER BY e.transfer_id DESC, e.account_id LIMIT ?",
            (
                SystemAccount.DIAMONDS_ISSUED,
                coin_account(user),
                diamond_account(user),
                before or 2**62,
                limit + 1,
            ),
        )
        names = await self._names({r[8] for r in rows} | {r[9] for r in rows if r[9]})
        items: list[TransactionRow] = []
        for r in rows:
            is_coin = r[2] == coin_account(user)
            kind = r[1]
            other: int | None = None
            if kind == TransferKind.GIFT.value:
                kind = "gift_sent" if is_coin else "gift_received"
                other = r[9] if is_coin else r[8]
            items.append(
                TransactionRow(
                    id=TransferId(r[0]),
                    kind=kind,
                    coins=r[3] if is_coin else 0,
                    diamonds=0 if is_coin else r[3],
                    at_ms=r[4],
                    room=r[5],
                    gift_id=r[6],
                    count=r[7],
                    counterparty=UserId(other) if other else None,
                    counterparty_name=names.get(other) if other else None,
                    package_id=r[10],
                    price_cents=r[11],
                    currency=r[12],
                    coins_after=r[13] if is_coin else None,
                    diamonds_after=None if is_coin else r[13],
                    cost_millicents=r[14],
                    gift_diamonds=r[15],
                    refund_of=TransferId(r[16]) if r[16] else None,
                    refunded_by=TransferId(r[17]) if r[17] else None,
                )
            )
        return items

    async def _names(self, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = await self._read(f"SELECT id, name FROM users WHERE id IN ({marks})", tuple(ids))
        return {r[0]: r[1] for r in rows}

    async def find_gift(self, sender: UserId, request_id: str) -> GiftOk | None:
        rows = await self._read(
            "SELECT g.seq, g.coins_after, g.coins_spent, g.diamonds, t.cost_millicents"
            " FROM gift_requests g JOIN transfers t ON t.id = g.transfer_id"
            " WHERE g.sender_id = ? AND g.request_id = ?",
            (sender, request_id),
        )
        return GiftOk(*rows[0]) if rows else None

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
        return await self._tx(
            lambda conn: request_payout_tx(
                conn, user, due, idempotency_key, request_hash, now_ms, daily_cents_max, respond
            )
        )

    async def payouts(self, user: UserId, limit: int) -> list[PayoutRow]:
        rows = await self._read(
            f"SELECT {PAYOUT_COLUMNS} FROM payouts WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            (user, limit),
        )
        return [payout_row(r) for r in rows]

    async def get_payout(self, payout: int) -> PayoutRow | None:
        rows = await self._read(f"SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = ?", (payout,))
        return payout_row(rows[0]) if rows else None

    async def pending_payouts(self, created_before_ms: int, limit: int) -> list[PayoutRow]:
        rows = await self._read(
            f"SELECT {PAYOUT_COLUMNS} FROM payouts WHERE status = 'pending' AND created_ms <= ?"
            " ORDER BY created_ms LIMIT ?",
            (created_before_ms, limit),
        )
        return [payout_row(r) for r in rows]

    async def settle_payout(self, payout: int, outcome: str, now_ms: int) -> PayoutRow | Refusal:
        return await self._tx(lambda conn: settle_payout_tx(conn, payout, outcome, now_ms))

    async def opening_balances(self, user: UserId, before_ms: int) -> tuple[int, int]:
        return await reports.opening_balances(self._read, user, before_ms)

    async def statement(
        self, user: UserId, from_ms: int, to_ms: int, limit: int
    ) -> list[StatementLine]:
        return await reports.statement_lines(self._read, user, from_ms, to_ms, limit)

    async def earnings(
        self, user: UserId, from_ms: int, to_ms: int, limit: int
    ) -> list[EarningsRow]:
        return await reports.earnings(self._read, user, from_ms, to_ms, limit)

    async def room_gifts(
        self, room: RoomId, host: UserId, after: int, limit: int
    ) -> list[RoomGiftRow]:
        return await reports.room_gifts(self._read, room, host, after, limit)

    async def limit(self, user: UserId) -> Limit:
        rows = await self._read(
            f"SELECT {LIMIT_COLUMNS} FROM spending_limits WHERE user_id = ?",
            (user,),
        )
        return limit_from_row(rows[0]) if rows else Limit()

    async def change_limit(self, user: UserId, change: Callable[[Limit], Limit]) -> Limit:
        return await self._tx(lambda conn: change_limit_tx(conn, user, change))

    async def spent_between(self, user: UserId, from_ms: int, to_ms: int) -> int:
        rows = await self._read(
            "SELECT coalesce(sum(coins), 0) FROM spend_quarters"
            " WHERE user_id = ? AND quarter >= ? AND quarter < ?",
            (user, from_ms // SPEND_QUARTER_MS, to_ms // SPEND_QUARTER_MS),
        )
        return int(rows[0][0])

    async def write_batch(self, commands: Sequence[Command], planner: BatchPlanner) -> BatchResult:
        return await self._tx(lambda conn: write_batch(conn, commands, planner))

    # --- audit --------------------------------------------------------------------------

    async def audit_input(self) -> AuditInput:
        def fn(conn: sqlite3.Connection) -> AuditInput:
            sums = dict(
                conn.execute("SELECT account_id, sum(amount) FROM entries GROUP BY account_id")
            )
            stored = dict(conn.execute("SELECT id, balance FROM accounts"))
            unbalanced = conn.execute(
                "SELECT e.transfer_id, a.asset, sum(e.amount) FROM entries e"
                " JOIN accounts a ON a.id = e.account_id"
                " GROUP BY e.transfer_id, a.asset HAVING sum(e.amount) != 0"
            ).fetchall()
            (transfers,) = conn.execute("SELECT count(*) FROM transfers").fetchone()
            (entries,) = conn.execute("SELECT count(*) FROM entries").fetchone()
            (pending,) = conn.execute(
                "SELECT coalesce(sum(diamonds), 0) FROM payouts WHERE status = 'pending'"
            ).fetchone()
            return AuditInput(
                sums, stored, unbalanced, transfers, entries, pending, cost_totals(conn)
            )

        # A read, but run as one transaction so every figure comes from the same snapshot.
        return await self._tx(fn)


# --- synchronous helpers, run on the writer thread inside a transaction ----------------


def _migrate(conn: sqlite3.Connection) -> None:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    version = 0
    if has_meta:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this server ({len(MIGRATIONS)})"
        )
    for step in MIGRATIONS[version:]:
        if not isinstance(step, str):
            step(conn)
            continue
        for statement in step.split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(len(MIGRATIONS)),),
    )
